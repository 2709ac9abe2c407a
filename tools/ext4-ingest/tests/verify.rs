//! `--verify` is only worth its name if it catches an image that does not hold the tree.
//! Here debugfs (found on PATH, as ext4-ingest finds it) is wrapped so that, once the
//! writing session has ended and before ext4-ingest reads the image back, one data block
//! of a written file is changed on disk: the verification must fail, name the file, and
//! say the content differs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{code, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// A directory with a `debugfs` that runs the real one and then, after a writing session
/// (`-w -f -`), does `after` with `$IMAGE` set to the image and `$REAL` to the real debugfs;
/// it leaves `ran` in `$MARKS` to show it did.
fn wrapped_debugfs(t: &TempDir, after: &str) -> PathBuf {
    let dir = t.join("wrap");
    fs::create_dir_all(&dir).unwrap();
    let real = PathBuf::from(testkit::tool("debugfs").get_program());
    let script = format!(
        "#!/bin/sh\nREAL='{}'\n\"$REAL\" \"$@\"; rc=$?\n\
         if [ \"$1 $2 $3\" = '-w -f -' ]; then\n  IMAGE=$4\n  {after}\n  echo ran >\"$MARKS\"\nfi\nexit $rc\n",
        real.display()
    );
    let path = dir.join("debugfs");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn ingest_verify(t: &TempDir, wrap: &Path) -> (std::process::Output, PathBuf) {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    let data: Vec<u8> = (0..16_384u32).map(|i| (i * 7 % 251) as u8 | 1).collect();
    fs::write(tree.join("d/victim"), &data).unwrap();
    fs::write(tree.join("other"), b"left alone").unwrap();
    let image = t.join("image.ext4");
    testkit::mkfs_from_tree(&image, "16M", None, &["-t", "ext4", "-b", "4096"]);
    let mut path = wrap.as_os_str().to_owned();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let out = testkit::run(
        Command::new(BIN)
            .arg("--verify")
            .arg(&image)
            .arg(&tree)
            .env("PATH", path)
            .env("MARKS", t.join("marks")),
    );
    (out, image)
}

#[test]
fn verify_catches_a_data_block_changed_after_the_write() {
    let t = TempDir::new();
    // debugfs's `bmap` gives the physical block of the file's first block; one byte of it
    // is overwritten in place.
    let wrap = wrapped_debugfs(
        &t,
        "blk=$(\"$REAL\" -R 'bmap /d/victim 0' \"$IMAGE\" 2>/dev/null)\n  \
         printf 'Z' | dd of=\"$IMAGE\" bs=1 seek=$((blk * 4096 + 100)) conv=notrunc 2>/dev/null",
    );
    let (out, _) = ingest_verify(&t, &wrap);
    assert!(
        t.join("marks").is_file(),
        "the wrapped debugfs never wrote: ext4-ingest no longer writes through debugfs, \
         and this test must find another way in"
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "verify passed a corrupted image: {err}");
    assert!(
        err.contains("'d/victim'") && err.contains("content differs"),
        "{err}"
    );
    assert!(err.contains("the image differs from the tree"), "{err}");
}

#[test]
fn verify_passes_the_same_run_without_the_corruption() {
    // The control: the wrapper alone changes nothing.
    let t = TempDir::new();
    let wrap = wrapped_debugfs(&t, ":");
    let (out, image) = ingest_verify(&t, &wrap);
    assert!(t.join("marks").is_file());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    testkit::e2fsck_clean(&image).unwrap();
}
