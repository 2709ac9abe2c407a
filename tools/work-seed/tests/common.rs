//! Helpers shared by the work-seed test files: the script, this build's tools, rootfs images.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::{code, run, stderr, TempDir};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/work-seed");
pub const WORK_DISK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/work-disk");
pub const SCRIPT_LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/work-seed-lib.sh");
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
        "work-seed-fs",
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

/// work-disk with this build's tools on PATH.
pub fn work_disk_command() -> Command {
    let mut cmd = Command::new(WORK_DISK);
    cmd.env("PATH", path_with(&bin_dir()));
    cmd
}

/// A small seed-like image (64 MiB, a few files) for work-disk.
pub fn small_seed(t: &TempDir) -> PathBuf {
    let tree = t.join("seed-tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), vec![5u8; 300_000]).unwrap();
    let image = t.join("seed.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    image
}

/// An executable sh script `name` in `dir`.
pub fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The program `name` as this build's PATH finds it (a tool of the build, or the system's).
pub fn real_program(name: &str) -> PathBuf {
    let here = bin_dir().join(name);
    if here.is_file() {
        return here;
    }
    let path = path_with(&bin_dir());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found"))
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
