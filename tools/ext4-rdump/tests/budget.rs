//! The work budget, tried as an attacker would: small images that describe far more work
//! than they hold. Each must be refused or stopped, never worked through.

use crate::common;

use std::fs;
use std::process::Command;

use testkit::bounded::{run_within, Limits};
use testkit::craft;
use testkit::{code, stderr, TempDir};

/// The inodes that share what one holds, in each image below.
const FILES: usize = 300;

/// Many files whose extent trees all lead into one tree of unwritten extents. Unwritten
/// extents are no data, so the data-block claims never saw them, and each file walked the
/// whole tree again: 1,000 files sharing an 8,000-leaf tree took hours. The tree's blocks
/// now belong to the first inode that reaches them; every other file is refused at its
/// first step into them, and reported.
#[test]
fn files_sharing_one_tree_of_unwritten_extents_are_refused_at_once() {
    if !testkit::need(
        "files_sharing_one_tree_of_unwritten_extents_are_refused_at_once",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    // 2,000 one-block extents: 24 leaf blocks of 1 KiB under an index block.
    let image = craft::shared_unwritten_tree(t.path(), FILES, 2000);

    let dest = t.join("out");
    let used = run_within(
        Command::new(common::BIN).arg("-o").arg(&dest).arg(&image),
        &Limits::default(),
    );
    assert!(used.within_limits(), "{}", used.describe());
    assert_eq!(used.code(), Some(1), "{}", used.describe());
    let refused = used.warnings("it belongs to inode");
    assert_eq!(
        refused,
        FILES as u64,
        "one of the {} sharers is read: {}",
        FILES + 1,
        used.describe()
    );
    let staged = fs::read_dir(&dest)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "lost+found")
        .count();
    assert_eq!(staged, 1, "only the first sharer is staged");
}

/// The default budget read the image file's apparent length: the same hostile image in a
/// 64 GiB sparse file got a budget of 8 x 64 GiB. Here 300 inodes of a deduplicated image
/// (`shared_blocks`: sharing data is allowed) name one 1 MiB extent: 300 MiB to stage from
/// an image holding 1 MiB. The budget now derives from what the file holds, so the sparse
/// tail changes nothing: stopped at 8 x its allocated size + 256 MiB, exit 2, nothing left.
#[test]
fn a_sparse_image_file_gets_the_budget_of_what_it_holds() {
    if !testkit::need(
        "a_sparse_image_file_gets_the_budget_of_what_it_holds",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = craft::dedup_in_sparse_file(t.path(), FILES, 64 << 30);
    let fs1 = ext4fs::Fs::open(fs::File::open(&image).unwrap()).unwrap();
    // The 8 MiB made by mkfs, whatever the sparse tail: what is in use of them.
    assert!(fs1.allocated_bytes() < 8 << 20, "{}", fs1.allocated_bytes());
    let budget = fs1.budget();
    assert_eq!(budget, ext4fs::default_budget(fs1.allocated_bytes()));
    assert!(
        budget < (FILES as u64) << 20,
        "the test needs a budget below what it stages"
    );

    let work = t.join("work");
    fs::create_dir(&work).unwrap();
    let out = common::rdump(&[
        "-o".as_ref(),
        work.join("out").as_os_str(),
        image.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains(&format!("the budget of {budget} bytes")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "something left behind"
    );
}
