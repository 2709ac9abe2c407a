//! work-seed under attack: whoever else can change OUTPUT's directory, or signals the build,
//! never gets the seed written anywhere but OUTPUT, nor anything left behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{code, run, stderr, TempDir};

use crate::common;
use common::{bin_dir, sample_rootfs, temp_files_in, SCRIPT};

/// A directory holding an `e2fsck` that runs the real one, then does `swap` to OUTPUT (in
/// `$SWAP_OUTPUT`, aiming at `$SWAP_TARGET`): the last step before work-seed's rename, so
/// the swap lands exactly in the window an attacker would aim for.
fn e2fsck_that_swaps(t: &TempDir, swap: &str) -> PathBuf {
    let dir = t.join("wrap");
    fs::create_dir(&dir).unwrap();
    let real = PathBuf::from(testkit::tool("e2fsck").get_program());
    let script = format!(
        "#!/bin/sh\n'{}' \"$@\"; rc=$?\nrm -f \"$SWAP_OUTPUT\"\n{swap}\nexit $rc\n",
        real.display()
    );
    let path = dir.join("e2fsck");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with_both(wrap: &Path) -> std::ffi::OsString {
    let mut p = wrap.as_os_str().to_owned();
    p.push(":");
    p.push(common::path_with(&bin_dir()));
    p
}

#[test]
fn an_output_swapped_for_a_symlink_to_a_directory_is_replaced_not_followed() {
    // mv -f moved the seed into the directory the symlink named, and the build said "built".
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let victim = t.join("victim");
    fs::create_dir(&victim).unwrap();
    let seed = t.join("seed.ext4");
    let wrap = e2fsck_that_swaps(&t, "ln -s \"$SWAP_TARGET\" \"$SWAP_OUTPUT\"");
    let out = run(Command::new(SCRIPT)
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with_both(&wrap))
        .env("SWAP_OUTPUT", &seed)
        .env("SWAP_TARGET", &victim));
    let left: Vec<_> = fs::read_dir(&victim).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the seed went into the directory: {left:?}"
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let meta = fs::symlink_metadata(&seed).unwrap();
    assert!(meta.is_file(), "OUTPUT is not the seed: {meta:?}");
    testkit::e2fsck_clean(&seed).unwrap();
    assert!(temp_files_in(t.path()).is_empty());
}

#[test]
fn an_output_swapped_for_a_directory_fails_and_leaves_it_alone() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let seed = t.join("seed.ext4");
    let wrap = e2fsck_that_swaps(&t, "mkdir \"$SWAP_OUTPUT\"");
    let out = run(Command::new(SCRIPT)
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with_both(&wrap))
        .env("SWAP_OUTPUT", &seed));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("work-seed: building"),
        "{}",
        stderr(&out)
    );
    assert!(seed.is_dir());
    let left: Vec<_> = fs::read_dir(&seed).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the seed went into the directory: {left:?}"
    );
    assert!(temp_files_in(t.path()).is_empty());
}

/// The first `program` on PATH.
fn on_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

#[test]
fn a_temporary_image_in_a_world_writable_directory_cannot_be_swapped_for_a_symlink() {
    // In a directory anyone may write (no sticky bit), another user swapped the temporary
    // image for a symlink: truncate, mkfs.ext4 and ext4-ingest then wrote through it.
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let victim = t.join("victim");
    fs::write(&victim, b"precious").unwrap();
    let shared = t.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    // The other user's move, made deterministic: just before the first write by name.
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    let truncate = wrap.join("truncate");
    fs::write(
        &truncate,
        format!(
            "#!/bin/sh\nfor last; do :; done\nrm -f \"$last\"\nln -s \"$VICTIM\" \"$last\"\nexec '{}' \"$@\"\n",
            on_path("truncate").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&truncate, fs::Permissions::from_mode(0o755)).unwrap();
    let seed = shared.join("seed.ext4");
    let out = run(Command::new(SCRIPT)
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with_both(&wrap))
        .env("VICTIM", &victim));
    let victim_now = fs::read(&victim).unwrap();
    assert!(
        victim_now == b"precious",
        "written through the symlink: now {} bytes",
        victim_now.len()
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is writable by others and not sticky"),
        "{}",
        stderr(&out)
    );
    assert!(!seed.exists());
    assert!(temp_files_in(&shared).is_empty());
}

#[test]
fn a_sticky_world_writable_directory_is_accepted() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let shared = t.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let seed = shared.join("seed.ext4");
    let out = common::work_seed(&[&rootfs, &seed]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    testkit::e2fsck_clean(&seed).unwrap();
}

#[test]
fn the_build_needs_neither_mv_nor_date() {
    // The rename onto OUTPUT is work-seed-fs's renameat relative to the opened directory,
    // and the stage times its own clock: neither GNU mv -T nor date +%N, which POSIX lacks.
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    for tool in ["mv", "date"] {
        let path = wrap.join(tool);
        fs::write(
            &path,
            format!("#!/bin/sh\necho '{tool}: not here' >&2\nexit 1\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let seed = t.join("seed.ext4");
    let out = run(Command::new(SCRIPT)
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with_both(&wrap)));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    testkit::e2fsck_clean(&seed).unwrap();
    assert!(temp_files_in(t.path()).is_empty());
}

#[test]
fn a_failed_listing_of_root_fails_the_build() {
    // The seed's UUID and hash seed come from a listing of /root; the listing's errors were
    // thrown away (`2>/dev/null || :`), so a failed listing quietly gave another seed than
    // the same rootfs gives: no longer reproducible, and nobody told.
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    common::script(
        &wrap,
        "ext4-ls",
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" -R \"*) \
             echo \"ext4-ls: reading '/root': Input/output error\" >&2; exit 2 ;; esac\n\
             exec '{}' \"$@\"\n",
            bin_dir().join("ext4-ls").display()
        ),
    );
    let seed = t.join("seed.ext4");
    let out = run(Command::new(SCRIPT)
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with_both(&wrap)));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Input/output error"), "{err}");
    assert!(err.contains("listing /root of"), "{err}");
    assert!(!seed.exists());
    assert!(temp_files_in(t.path()).is_empty());
}

/// Finding 4 of issue 15: 2,000 names past a file's link count at the end of 200
/// directories of 255-byte names made work-seed print 100 MB on stderr (ext4-rdump's
/// warnings, each with its whole path). Now it is a few KiB, and no record is printed for
/// a build that failed, by either route.
#[test]
fn a_rootfs_that_fails_everywhere_gives_bounded_diagnostics() {
    let t = TempDir::new();
    let rootfs = t.join("rootfs.ext4");
    testkit::names_past_the_link_count(&rootfs, 200, 2000);
    for staged in [false, true] {
        let mut cmd = common::work_seed_command();
        if staged {
            cmd.arg("--staged");
        }
        let out = testkit::run_within(
            cmd.arg("--json").arg(&rootfs).arg(t.join("seed.ext4")),
            std::time::Duration::from_secs(300),
        );
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(
            out.stderr.len() < 80 << 10,
            "{} bytes on stderr",
            out.stderr.len()
        );
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        if staged {
            assert!(
                err.contains("ext4-rdump: ... and 1,990 more like this: extracting '...': "),
                "{err}"
            );
        } else {
            assert!(err.contains("listing /root of"), "{err}");
        }
        assert!(temp_files_in(t.path()).is_empty());
    }
}
