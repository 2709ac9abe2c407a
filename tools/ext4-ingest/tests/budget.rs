//! The reader's work budget, for the image read as the source (`--from-image`): tried as
//! an attacker would, with an image that describes far more reading than it holds.

use std::process::Command;

use testkit::bounded::{run_within, Limits};
use testkit::craft;
use testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// 6,000 files of a 64 KiB-block image share one extended attribute block (sound: such
/// blocks are refcounted). Every file's xattrs cost the whole block: 375 MiB of reading
/// from an image holding about 2 MiB. The budget stops the walk once, with one line
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
    let source = craft::shared_xattr_block(t.path(), craft::XATTR_SHARERS);
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
    // The image written into is the caller's: the line says what it is now.
    assert!(err.contains("is unusable, rebuild it"), "{err}");
}
