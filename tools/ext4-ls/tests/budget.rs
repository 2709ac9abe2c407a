//! The work budget, tried as an attacker would: small images whose listing or lookup would
//! cost far more than they hold. Each run must stay within generous limits of CPU, memory
//! and output, measured by the kernel.

use crate::common;

use std::fs;
use std::process::Command;

use ext4fs::Fs;
use testkit::bounded::{run_within, Limits};
use testkit::{craft, TempDir};

/// Directories sharing /root's blocks.
const DIRS: usize = 1500;
/// Entries of the huge linear directory, more than the old lookup cache kept (2^18).
const ENTRIES: usize = 270_000;

/// What the issue allows a listing of an image of `allocated` bytes to print.
fn output_bound(allocated: u64) -> u64 {
    4 * allocated + (1 << 20)
}

/// 1,500 directories that all name /root's blocks (3,000 names): each was listed again,
/// 4.5 million lines from an 8 MiB image, and `--diff` held them all. Directory blocks now
/// belong to the first directory that reads them: the others are refused, once each.
#[test]
fn directories_sharing_one_set_of_blocks_are_listed_once() {
    if !testkit::need(
        "directories_sharing_one_set_of_blocks_are_listed_once",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = craft::directories_sharing_blocks(t.path(), DIRS, 3000);
    let allocated = Fs::open(fs::File::open(&image).unwrap())
        .unwrap()
        .allocated_bytes();
    let limits = Limits {
        output_bytes: output_bound(allocated),
        memory_bytes: 1 << 30,
        ..Limits::default()
    };

    let used = run_within(Command::new(common::BIN).arg("-R").arg(&image), &limits);
    assert!(used.within_limits(), "ext4-ls -R: {}", used.describe());
    assert_eq!(used.code(), Some(1), "{}", used.describe());
    let refused = used.warnings("it belongs to inode");
    // The first of the 1,501 directories is listed; each other one is refused once.
    assert_eq!(refused, DIRS as u64, "{}", used.describe());

    let used = run_within(
        Command::new(common::BIN)
            .arg("--diff")
            .arg(&image)
            .arg(&image),
        &limits,
    );
    assert!(used.within_limits(), "ext4-ls --diff: {}", used.describe());
    assert_eq!(used.code(), Some(2), "{}", used.describe());
}

/// A /root that is a symlink of 819 `b/..` pairs, where `b` is a directory of 270,000
/// names: each `..` was looked up by reading all of `b` again (too large to keep), minutes
/// of work for one path. A lookup now reads `..` from a directory's first block, and a
/// name in an indexed directory through its index: a few blocks per step.
#[test]
fn a_path_through_a_huge_directory_again_and_again_is_looked_up_cheaply() {
    if !testkit::need(
        "a_path_through_a_huge_directory_again_and_again_is_looked_up_cheaply",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = craft::lookup_through_huge_directory(t.path(), ENTRIES);

    let used = run_within(
        Command::new(common::BIN).arg(&image).arg("/root"),
        &Limits {
            cpu_seconds: 30,
            ..Limits::default()
        },
    );
    assert!(used.within_limits(), "{}", used.describe());
    assert_eq!(used.code(), Some(0), "{}", used.describe());
    let listed = String::from_utf8_lossy(&used.stdout);
    assert!(listed.lines().any(|l| l.ends_with(" f")), "{listed}");
}
