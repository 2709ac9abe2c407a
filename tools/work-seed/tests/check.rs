//! `work-seed --check ROOTFS SEED`: is this seed still the seed of this rootfs?

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use testkit::{code, stderr, stdout, TempDir};

use crate::common::{self, work_seed};

/// A rootfs whose /root holds a file, a directory, a file with an xattr and one to remove.
fn rootfs(t: &TempDir, name: &str, change: bool) -> PathBuf {
    let tree = t.join(format!("{name}.tree"));
    let root = tree.join("root");
    fs::create_dir_all(root.join("d")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), b"vm\n").unwrap();
    fs::write(
        root.join("d/notes"),
        if change { b"second" } else { b"first!" },
    )
    .unwrap();
    fs::write(root.join("script"), b"#!/bin/sh\n").unwrap();
    let mode = if change { 0o700 } else { 0o755 };
    fs::set_permissions(root.join("script"), fs::Permissions::from_mode(mode)).unwrap();
    fs::write(root.join("tagged"), b"t").unwrap();
    let value: &[u8] = if change { b"two" } else { b"one" };
    assert!(testkit::set_xattr(&root.join("tagged"), "user.tag", value));
    if !change {
        fs::write(root.join("only-in-the-first"), b"x").unwrap();
    }
    for p in ["d/notes", "script", "tagged", "only-in-the-first", "d", "."] {
        if root.join(p).exists() {
            testkit::set_times(&root.join(p), (1, 0), (1_600_000_000, 0));
        }
    }
    let image = t.join(format!("{name}.ext4"));
    testkit::mkfs_from_tree(&image, "16M", Some(&tree), &["-t", "ext4"]);
    image
}

#[test]
fn check_agrees_with_its_own_seed_and_finds_each_difference() {
    let t = TempDir::new();
    let first = rootfs(&t, "first", false);
    let second = rootfs(&t, "second", true);
    let seed = t.join("seed.ext4");
    let out = work_seed(&["-q".as_ref(), first.as_os_str(), seed.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = work_seed(&["--check".as_ref(), first.as_os_str(), seed.as_os_str()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "");

    let out = work_seed(&["--check".as_ref(), second.as_os_str(), seed.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "changed d/notes (content)\n\
         extra only-in-the-first\n\
         changed script (mode 0700 -> 0755)\n\
         changed tagged (xattrs)\n",
        "{}",
        stderr(&out)
    );

    let out = work_seed(&[
        "--check".as_ref(),
        "--json".as_ref(),
        second.as_os_str(),
        seed.as_os_str(),
    ]);
    assert_eq!(code(&out), 1);
    let records: Vec<seedkit::records::LsDiff> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[1].change, seedkit::records::Change::Extra);
    assert_eq!(records[0].fields, ["content"]);
}

#[test]
fn check_of_a_missing_seed_is_an_error() {
    let t = TempDir::new();
    let first = rootfs(&t, "first", false);
    let out = work_seed(&[
        "--check".as_ref(),
        first.as_os_str(),
        t.join("absent.ext4").as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("absent.ext4"), "{}", stderr(&out));
}

/// Finding 10 of issue 15: `--check` printed a tenant's bidirectional and zero-width
/// characters raw, so `invoice\u{202e}fdp.sh` read as another name; they are escaped now.
#[test]
fn check_escapes_bidi_and_zero_width_names() {
    let t = TempDir::new();
    let mut images = Vec::new();
    for (side, content) in [("a", "one"), ("b", "two")] {
        let root = t.join(side).join("root");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("invoice\u{202e}fdp.sh"), content).unwrap();
        fs::write(root.join(format!("{side}\u{200b}")), content).unwrap();
        for p in ["invoice\u{202e}fdp.sh", "."] {
            testkit::set_times(&root.join(p), (1, 0), (1_600_000_000, 0));
        }
        let image = t.join(format!("{side}.ext4"));
        testkit::mkfs_from_tree(&image, "8M", Some(&t.join(side)), &["-t", "ext4"]);
        images.push(image);
    }
    let seed = t.join("seed.ext4");
    let out = work_seed(&["-q".as_ref(), images[0].as_os_str(), seed.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = work_seed(&["--check".as_ref(), images[1].as_os_str(), seed.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "extra 'a\\u{200b}'\n\
         missing 'b\\u{200b}'\n\
         changed 'invoice\\u{202e}fdp.sh' (content)\n"
    );
}

/// Finding 9 of issue 15: `work-seed --check` on a fifo (as the rootfs or as the seed)
/// never returned; it is an error at once.
#[test]
fn check_of_a_fifo_is_an_error_at_once() {
    let t = TempDir::new();
    let first = rootfs(&t, "first", false);
    let fifo = t.join("fifo");
    testkit::mkfifo(&fifo);
    for args in [[&fifo, &first], [&first, &fifo]] {
        let out = testkit::run_within(
            common::work_seed_command().arg("--check").args(args),
            std::time::Duration::from_secs(20),
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("not an image: a fifo"), "{args:?}: {err}");
    }
}
