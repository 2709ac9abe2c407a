//! Trees at the scale the issue tracker asked for, through the whole build: a /root holding
//! a chain of 10,000 directories, and one directory of 50,000 files, each giving a seed that
//! e2fsck passes and `work-seed --check` finds equal to its rootfs.
//!
//! mke2fs -d 1.47.0 aborts on chains past about 2,000 levels and inserts each name of a
//! wide directory by scanning the whole directory, so these rootfs images are written with
//! this build's ext4-ingest instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{code, run, stderr, stdout, TempDir};

use crate::common;
use common::{bin_dir, path_with, work_seed, work_seed_command};

/// A rootfs image of `size` holding `tree` (whose `root/` becomes its /root).
fn rootfs_by_ingest(t: &TempDir, tree: &Path, size: &str) -> PathBuf {
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, size, None, &["-t", "ext4"]);
    let out = run(Command::new(bin_dir().join("ext4-ingest"))
        .arg(&image)
        .arg(tree)
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "ext4-ingest: {}", stderr(&out));
    image
}

/// Build the seed of `rootfs` and check it: e2fsck clean, equal to the rootfs's /root.
fn build_and_check(t: &TempDir, rootfs: &Path) -> PathBuf {
    let seed = t.join("rootfs.work-seed.ext4");
    let out = work_seed(&[rootfs]);
    assert_eq!(code(&out), 0, "work-seed: {}", stderr(&out));
    testkit::e2fsck_clean(&seed).unwrap();
    let out = run(work_seed_command().arg("--check").arg(rootfs).arg(&seed));
    assert_eq!(
        code(&out),
        0,
        "work-seed --check: {}{}",
        stdout(&out),
        stderr(&out)
    );
    seed
}

#[test]
fn a_root_of_ten_thousand_nested_directories_builds_a_faithful_seed() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root")).unwrap();
    testkit::deep_chain(&tree.join("root"), 10_000);
    let rootfs = rootfs_by_ingest(&t, &tree, "256M");
    build_and_check(&t, &rootfs);
}

#[test]
fn a_directory_of_fifty_thousand_files_is_hash_indexed_in_the_seed() {
    let t = TempDir::new();
    let tree = t.join("tree");
    let wide = tree.join("root/wide");
    fs::create_dir_all(&wide).unwrap();
    for i in 0..50_000 {
        fs::File::create(wide.join(format!("file-{i:06}"))).unwrap();
    }
    let rootfs = rootfs_by_ingest(&t, &tree, "256M");
    let seed = build_and_check(&t, &rootfs);
    let htree = testkit::debugfs(&seed, "htree /wide");
    assert!(
        htree.contains("Root node dump"),
        "/wide is not hash-indexed in the seed: {}",
        htree.lines().take(3).collect::<Vec<_>>().join(" / ")
    );
}
