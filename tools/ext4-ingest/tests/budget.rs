//! The reader's work budget, for the image read as the source (`--from-image`): tried as
//! an attacker would, with an image that describes far more reading than it holds.

use std::process::Command;

use testkit::bounded::{run_within, Limits};
use testkit::craft;
use testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// 6,000 files of a 64 KiB-block image share one extended attribute block (sound: such
/// blocks are refcounted) holding a 60,000-byte value, which each file must be given:
/// 360 MB of attributes from an image holding about 2 MiB. The budget stops the walk once, with one line
/// naming it and exit 2; before, every entry after the budget was refused one by one and
/// the run ended with exit 1, as if the image had been written but for a few entries.
#[test]
fn a_source_image_past_its_budget_stops_the_run_with_one_line() {
    if !testkit::need(
        "a_source_image_past_its_budget_stops_the_run_with_one_line",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let source =
        craft::shared_xattr_block(t.path(), craft::XATTR_SHARERS, craft::XATTR_SHARED_VALUE);
    let fs1 = ext4fs::Fs::open(std::fs::File::open(&source).unwrap()).unwrap();
    assert!(
        (craft::XATTR_SHARERS as u64) << 16 > fs1.budget(),
        "the test needs more reading than the budget of {}",
        fs1.budget()
    );
    drop(fs1);
    let dest = t.join("dest.img");
    testkit::mkfs_from_tree(&dest, "64M", None, &["-t", "ext4", "-N", "8192"]);

    let used = run_within(
        Command::new(BIN)
            .arg("--from-image")
            .arg(&source)
            .arg(&dest),
        &Limits {
            cpu_seconds: 30,
            ..Limits::default()
        },
    );
    assert!(used.within_limits(), "{}", used.describe());
    assert_eq!(used.code(), Some(2), "{}", used.describe());
    assert_eq!(used.stderr.lines().count(), 1, "{}", used.describe());
    let err = &used.stderr;
    assert!(
        err.contains(&format!("reading {}", seedkit::quote(&source)))
            && err.contains("more work than its budget"),
        "{err}"
    );
    // The image written into is the caller's: the line says it is unusable once writing
    // started; stopped before, it is as mkfs made it.
    if !err.contains("is unusable, rebuild it") {
        testkit::e2fsck_clean(&dest).unwrap();
        assert!(!testkit::debugfs(&dest, "ls /").contains("f0000"));
    }
}

/// The same sharing with a small value is an honest image (one label on every file): the
/// block is read once, not once per file (6,000 x 64 KiB would pass the budget), and every
/// file is written with its attribute.
#[test]
fn files_sharing_a_small_attribute_block_are_read_within_the_budget() {
    if !testkit::need(
        "files_sharing_a_small_attribute_block_are_read_within_the_budget",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let source = craft::shared_xattr_block(t.path(), craft::XATTR_SHARERS, 200);
    let fs1 = ext4fs::Fs::open(std::fs::File::open(&source).unwrap()).unwrap();
    assert!((craft::XATTR_SHARERS as u64) << 16 > fs1.budget());
    drop(fs1);
    let dest = t.join("dest.img");
    testkit::mkfs_from_tree(&dest, "128M", None, &["-t", "ext4", "-N", "8192"]);
    let used = run_within(
        Command::new(BIN)
            .arg("--verify")
            .arg("--from-image")
            .arg(&source)
            .arg(&dest),
        &Limits {
            cpu_seconds: 60,
            ..Limits::default()
        },
    );
    assert!(used.within_limits(), "{}", used.describe());
    assert_eq!(used.code(), Some(0), "{}", used.describe());
    let attr = testkit::debugfs(&dest, "ea_get /f5999 user.shared");
    assert!(attr.contains("vvvv"), "{attr}");
}
