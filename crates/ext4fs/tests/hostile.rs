//! Images made by `mkfs.ext4 -d` and then patched the way a hostile image would be: each
//! read must end in a clear error, never a crash or a runaway.

use std::fs;

use ext4fs::Fs;
use testkit::{mkfs_from_tree, TempDir};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn xattr_value_inodes_pointing_at_each_other_do_not_overflow_the_stack() {
    if !testkit::need(
        "xattr_value_inodes_pointing_at_each_other_do_not_overflow_the_stack",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("a"), [b'a'; 100]).unwrap();
    fs::write(tree.join("b"), [b'b'; 100]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &[
            "-b",
            "4096",
            "-I",
            "256",
            "-O",
            "inline_data,^metadata_csum",
        ],
    );
    let fs0 = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let a = fs0.lookup(b"/a").unwrap();
    let b = fs0.lookup(b"/b").unwrap();
    let mut bytes = fs::read(&image).unwrap();
    // Each file's inline tail (system.data) now claims to live in the other's inode, and
    // both inodes claim to be xattr value inodes that keep their data inline.
    for (path, other) in [("/a", b), ("/b", a)] {
        let (block, offset) = testkit::inode_location(&image, path);
        let at = (block * 4096 + offset) as usize;
        let flags = u32_at(&bytes, at + 0x20) | 0x20_0000 | 0x1000_0000;
        put_u32(&mut bytes, at + 0x20, flags);
        let extra = usize::from(u16::from_le_bytes([bytes[at + 0x80], bytes[at + 0x81]]));
        let area = at + 128 + extra;
        assert_eq!(
            u32_at(&bytes, area),
            0xea02_0000,
            "{path}: no in-inode xattrs"
        );
        put_u32(&mut bytes, area + 4 + 4, other.get()); // e_value_inum of the first entry
    }
    let fs = Fs::from_bytes(bytes).unwrap();
    let inode = fs.inode(a).unwrap();
    assert!(fs.content(&inode).is_err());
    assert!(fs.xattrs_lenient(&inode).1.is_some());
}

#[test]
fn a_directory_mapping_one_block_many_times_is_refused() {
    if !testkit::need(
        "a_directory_mapping_one_block_many_times_is_refused",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), b"x").unwrap();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"],
    );
    let (block, offset) = testkit::inode_location(&image, "/d");
    let at = (block * 4096 + offset) as usize;
    let mut bytes = fs::read(&image).unwrap();
    // The root of the extent tree: four extents, all of them the directory's one block.
    // Extents of 32768 blocks over a sparse image make gigabytes of entries this way.
    let root = at + 0x28;
    assert_eq!(&bytes[root..root + 2], &0xf30au16.to_le_bytes());
    let physical = u32_at(&bytes, root + 12 + 8);
    bytes[root + 2..root + 4].copy_from_slice(&4u16.to_le_bytes());
    for i in 0..4u32 {
        let e = root + 12 + i as usize * 12;
        put_u32(&mut bytes, e, i);
        bytes[e + 4..e + 6].copy_from_slice(&1u16.to_le_bytes());
        bytes[e + 6..e + 8].copy_from_slice(&0u16.to_le_bytes());
        put_u32(&mut bytes, e + 8, physical);
    }
    put_u32(&mut bytes, at + 4, 4 * 4096); // i_size
    let fs = Fs::from_bytes(bytes).unwrap();
    let dir = fs.inode(fs.lookup(b"/d").unwrap()).unwrap();
    let err = fs.read_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("used twice"), "{err}");
}

#[test]
fn a_lookup_through_symlinks_of_thousands_of_components_is_bounded() {
    if !testkit::need(
        "a_lookup_through_symlinks_of_thousands_of_components_is_bounded",
        &["mke2fs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    for i in 0..200 {
        fs::write(tree.join(format!("f{i}")), b"").unwrap();
    }
    // Each link climbs 1360 times from the root to the root, then names the next: 54,000
    // components, each a read of the root directory (of 20,000 entries: 106 s).
    for i in 0..40 {
        let next = if i < 39 {
            format!("s{:02}", i + 1)
        } else {
            "d".into()
        };
        let target = format!("{}{next}", "../".repeat(1360));
        std::os::unix::fs::symlink(target, tree.join(format!("s{i:02}"))).unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    let fs = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let start = std::time::Instant::now();
    let err = fs.lookup(b"/s00").unwrap_err().to_string();
    assert!(err.contains("too many levels of symbolic links"), "{err}");
    assert!(start.elapsed().as_secs() < 10);
    // The same climb, short enough, still resolves.
    assert_eq!(
        fs.lookup(b"/d/../d/../../d").unwrap(),
        fs.lookup(b"/d").unwrap()
    );
}
