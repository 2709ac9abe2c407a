//! The reader's work budget and its claims, on real images made by `mkfs.ext4 -d` and then
//! edited the way a hostile image would be.

use std::fs;

use ext4fs::{Error, Fs};
use testkit::craft::{fragmented_file, share_map};
use testkit::{mkfs_from_tree, TempDir};

fn open(image: &std::path::Path) -> Fs {
    Fs::open(fs::File::open(image).unwrap()).unwrap()
}

#[test]
fn an_extent_tree_belongs_to_the_first_inode_that_walks_it() {
    if !testkit::need(
        "an_extent_tree_belongs_to_the_first_inode_that_walks_it",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fragmented_file(&tree.join("big"), 500, 1024);
    fs::write(tree.join("other"), b"").unwrap();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "4M",
        Some(&tree),
        &[
            "-t",
            "ext4",
            "-b",
            "1024",
            "-O",
            "^has_journal,^metadata_csum",
        ],
    );
    share_map(&image, "/big", &["/other".to_string()]);
    let fs = open(&image);
    let big = fs.inode(fs.lookup(b"/big").unwrap()).unwrap();
    let other = fs.inode(fs.lookup(b"/other").unwrap()).unwrap();
    // Its owner reads it as often as it likes (each walk charged); no one else can.
    let runs = fs.data_map(&big).unwrap();
    assert!(runs.len() > 900, "{} runs", runs.len());
    let once = fs.work_done();
    assert_eq!(fs.data_map(&big).unwrap(), runs);
    assert!(fs.work_done() > once);
    let err = fs.data_map(&other).unwrap_err();
    assert!(
        matches!(err, Error::Claimed { ino, owner, .. } if ino == other.ino && owner == big.ino),
        "{err}"
    );
    // Whoever comes first owns it: in another reading of the image, `other` does.
    let fs = open(&image);
    assert_eq!(fs.data_map(&other).unwrap(), runs);
    assert!(matches!(
        fs.data_map(&big).unwrap_err(),
        Error::Claimed { .. }
    ));
}

#[test]
fn past_the_budget_every_read_fails_alike() {
    if !testkit::need(
        "past_the_budget_every_read_fails_alike",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("data"), vec![7u8; 1 << 20]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let mut fs = open(&image);
    let data = fs.inode(fs.lookup(b"/data").unwrap()).unwrap();
    let root = fs.inode(ext4fs::Ino::ROOT).unwrap();
    fs.set_budget(fs.work_done() + (512 << 10));
    let mut read = 0;
    let err = fs
        .for_each_chunk(&data, &mut |_, b| {
            read += b.len();
            true
        })
        .unwrap_err();
    assert!(matches!(err, Error::OverBudget { .. }), "{err}");
    assert!(read < 1 << 20);
    assert!(fs.over_budget());
    for e in [
        fs.inode(data.ino).unwrap_err(),
        fs.lookup(b"/data").unwrap_err(),
        fs.read_dir(&root).unwrap_err(),
    ] {
        assert!(matches!(e, Error::OverBudget { .. }), "{e}");
    }
}

#[test]
fn the_budget_derives_from_what_the_image_holds() {
    if !testkit::need(
        "the_budget_derives_from_what_the_image_holds",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = t.join("img");
    mkfs_from_tree(&image, "64M", None, &["-t", "ext4", "-O", "^has_journal"]);
    let fs = open(&image);
    let sb = fs.superblock();
    let used = (sb.blocks_count - sb.free_blocks_count) * u64::from(sb.block_size);
    let held = testkit::allocated_bytes(&image);
    assert_eq!(fs.allocated_bytes(), used.min(held));
    assert!(fs.allocated_bytes() < 8 << 20, "{}", fs.allocated_bytes());
    assert_eq!(fs.budget(), ext4fs::default_budget(fs.allocated_bytes()));
    // A sparse tail of any length adds nothing.
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    assert_eq!(open(&image).allocated_bytes(), fs.allocated_bytes());
}
