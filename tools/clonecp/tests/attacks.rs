//! clonecp run as root beside other users: nobody else can redirect the copy or get a
//! set-user-ID root program out of it, a killed run leaves nothing that is not reclaimed,
//! and the copy is durable before it is published.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use testkit::names;
use testkit::{code, stderr, TempDir};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

/// A file of `nobody`'s with `mode`, as another user's program would be.
fn nobodys_program(path: &Path, mode: u32) {
    fs::write(path, b"#!/bin/sh\necho hello\n").unwrap();
    std::os::unix::fs::chown(path, Some(testkit::NOBODY), Some(testkit::NOBODY)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn another_users_set_user_id_program_copied_by_root_loses_its_set_id_bits() {
    const TEST: &str = "another_users_set_user_id_program_copied_by_root_loses_its_set_id_bits";
    if !testkit::is_root() {
        testkit::skip(
            TEST,
            "needs root, whose copy of another user's file changes owner",
        );
        return;
    }
    let t = TempDir::new();
    for (src_mode, copied) in [(0o4755, 0o755), (0o2755, 0o755), (0o6711, 0o711)] {
        let src = t.join("theirs");
        nobodys_program(&src, src_mode);
        let dst = t.join("mine");
        let out = common::run([src.as_os_str(), dst.as_os_str()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let meta = fs::metadata(&dst).unwrap();
        assert_eq!(meta.uid(), 0);
        assert_eq!(
            mode(&dst),
            copied,
            "{src_mode:o}: a set-ID program of root's made from nobody's"
        );
        // --keep-setid is the caller's explicit trust.
        let kept = t.join("kept");
        let out = common::run(["--keep-setid".as_ref(), src.as_os_str(), kept.as_os_str()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(mode(&kept), src_mode);
        for f in [&src, &dst, &kept] {
            fs::remove_file(f).unwrap();
        }
    }
    // The same owner: the bits stay, as with cp -p.
    let src = t.join("own");
    fs::write(&src, b"x").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o4755)).unwrap();
    let out = common::run([src.as_os_str(), t.join("own2").as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&t.join("own2")), 0o4755);
}

/// As `nobody`, in `dir`: wait for clonecp's temporary copy to appear and rename a file of
/// nobody's (`evil`) over it, so that the rename that follows publishes nobody's file.
fn swap_in_evil(dir: &Path) -> std::process::Child {
    let script = "while :; do for f in .*clonecp* .*clonecp*/*; do \
        [ -f \"$f\" ] && mv -f evil \"$f\" 2>/dev/null && exit 0; done; done";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).current_dir(dir);
    testkit::spawn(
        testkit::unprivileged(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

#[test]
fn a_user_who_may_write_in_dsts_directory_cannot_swap_the_copy() {
    const TEST: &str = "a_user_who_may_write_in_dsts_directory_cannot_swap_the_copy";
    if !testkit::is_root() {
        testkit::skip(TEST, "needs root, and nobody as the other user");
        return;
    }
    let t = TempDir::new();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = t.join("seed.img");
    fs::write(&src, common::pattern(3, 1 << 20)).unwrap();
    for (dir_mode, refused) in [(0o777, true), (0o1777, false)] {
        let shared = t.join(format!("shared{dir_mode:o}"));
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(dir_mode)).unwrap();
        let evil = shared.join("evil");
        fs::write(&evil, b"nobody's content").unwrap();
        std::os::unix::fs::chown(&evil, Some(testkit::NOBODY), Some(testkit::NOBODY)).unwrap();
        let dst = shared.join("vm.img");
        fs::write(&dst, b"old").unwrap();
        // Each flush held for a while: the window between the copy and its rename.
        let mut cmd = common::clonecp();
        cmd.arg("-f").arg(&src).arg(&dst);
        let Some(mut traced) = testkit::trace::delayed(&cmd, "fsync", 500_000) else {
            testkit::skip(TEST, "strace is not installed");
            return;
        };
        let mut attacker = swap_in_evil(&shared);
        let out = testkit::run(&mut traced);
        let _ = attacker.kill();
        let _ = attacker.wait();
        if refused {
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            assert!(stderr(&out).contains("not sticky"), "{}", stderr(&out));
            assert_eq!(fs::read(&dst).unwrap(), b"old");
        } else {
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            assert_eq!(
                fs::read(&dst).unwrap(),
                fs::read(&src).unwrap(),
                "DST is not the copy"
            );
        }
        assert_eq!(names(&shared), ["evil", "vm.img"]);
    }
}

#[test]
fn a_copy_killed_with_sigkill_is_reclaimed_by_the_next_run() {
    let t = TempDir::new();
    let src = t.join("src");
    {
        use std::io::Write;
        let chunk = common::pattern(9, 1 << 20);
        let mut f = fs::File::create(&src).unwrap();
        for _ in 0..256 {
            f.write_all(&chunk).unwrap();
        }
    }
    let dst = t.join("dst");
    // Some of the copy written, wherever clonecp writes it.
    let partly_copied = || {
        fs::read_dir(t.path()).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let copy = if name.starts_with(".clonecp.") {
                e.path().join("copy")
            } else if name == "src" {
                return false;
            } else {
                e.path()
            };
            fs::metadata(copy).is_ok_and(|m| m.is_file() && m.len() > 0)
        })
    };
    let out = testkit::signal_when(
        common::clonecp().arg("--reflink=never").arg(&src).arg(&dst),
        nix::sys::signal::Signal::SIGKILL,
        |_| partly_copied(),
    );
    assert!(out.status.code().is_none(), "not killed: {:?}", out.status);
    assert!(!dst.exists(), "a torn copy at DST");
    let left: Vec<String> = names(t.path())
        .into_iter()
        .filter(|n| n.starts_with(".clonecp."))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // The next run in the same directory removes it, says so, and makes its own copy.
    let out = common::run([src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("clonecp: removed '{}", t.join(&left[0]).display()))
            || err.contains(&left[0]) && err.contains("removed"),
        "{err}"
    );
    assert_eq!(names(t.path()), ["dst", "src"]);
    assert!(common::same_content(&src, &dst));
}

#[test]
fn the_copy_is_flushed_renamed_and_its_directory_flushed_in_that_order() {
    let t = TempDir::new();
    let src = t.join("src");
    common::sparse_image(&src, 4 << 20, 3, 8192);
    for force in [false, true] {
        let dst = t.join(format!("dst{force}"));
        let mut cmd = common::clonecp();
        if force {
            fs::write(&dst, b"old").unwrap();
            cmd.arg("-f");
        }
        cmd.arg(&src).arg(&dst);
        let Some((out, trace)) = testkit::trace::strace(&cmd, testkit::trace::PUBLISH_CALLS) else {
            testkit::skip(
                "the_copy_is_flushed_renamed_and_its_directory_flushed_in_that_order",
                "strace is not installed",
            );
            return;
        };
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        testkit::trace::assert_published_durably(
            &trace,
            "/.clonecp.",
            "copy",
            t.path(),
            &format!("dst{force}"),
        );
    }
}
