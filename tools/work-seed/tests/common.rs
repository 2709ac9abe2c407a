//! Helpers shared by the work-seed test files: the script, this build's tools, rootfs images.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::{code, run, stderr, TempDir};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/work-seed");
pub const WORK_DISK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/work-disk");
pub const MAKE_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample/make-rootfs");

/// The directory of this build's binaries (target/debug): the test executable is in deps/.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    for tool in [
        "ext4-rdump",
        "ext4-ls",
        "seed-size",
        "ext4-ingest",
        "clonecp",
        "work-seed-summary",
    ] {
        assert!(
            dir.join(tool).is_file(),
            "{} is not built: run `cargo test --workspace` (or `make test`)",
            dir.join(tool).display()
        );
    }
    dir
}

/// PATH with `dir` first, and e2fsprogs' sbin directories last.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut p = dir.as_os_str().to_owned();
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p.push(":/usr/sbin:/sbin");
    p
}

/// The script with this build's tools on PATH.
pub fn work_seed_command() -> Command {
    let mut cmd = Command::new(SCRIPT);
    cmd.env("PATH", path_with(&bin_dir()));
    cmd
}

pub fn work_seed(args: &[impl AsRef<OsStr>]) -> Output {
    run(work_seed_command().args(args))
}

/// `work-disk ARGS` with this build's tools on PATH.
pub fn work_disk(args: &[impl AsRef<OsStr>]) -> Output {
    run(Command::new(WORK_DISK)
        .args(args)
        .env("PATH", path_with(&bin_dir())))
}

/// The built-in sample rootfs, made in `t`.
pub fn sample_rootfs(t: &TempDir) -> PathBuf {
    let image = t.join("rootfs.ext4");
    let out = run(Command::new(MAKE_ROOTFS)
        .arg(&image)
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "make-rootfs: {}", stderr(&out));
    image
}

/// A rootfs built from `tree` with mkfs.ext4 -d.
pub fn rootfs_from(t: &TempDir, tree: &Path, size: &str) -> PathBuf {
    let image = t.join("custom.ext4");
    testkit::mkfs_from_tree(&image, size, Some(tree), &["-t", "ext4"]);
    image
}

/// The names of work-seed's temporary images in `dir`.
pub fn temp_files_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".work-seed."))
        .collect()
}
