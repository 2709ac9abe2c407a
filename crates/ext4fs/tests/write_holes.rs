//! Small files keep their holes: the writer's one-read path for files up to 64 KiB must not
//! allocate blocks that the host file does not hold as data.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ext4fs::write::{Meta, Writer, ROOT};
use testkit::{debugfs, e2fsck_clean, have, mkfs_from_tree, TempDir};

/// The blocks (of 4 KiB) that debugfs says the file at `path` holds.
fn blocks(image: &Path, path: &str) -> u64 {
    let stat = debugfs(image, format!("stat {path}"));
    let count: u64 = stat
        .split("Blockcount: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Blockcount in {stat}"));
    count / 8
}

#[test]
fn a_small_sparse_file_keeps_its_holes() {
    if !(have("mke2fs") && have("e2fsck") && have("debugfs")) {
        testkit::skip(
            "a_small_sparse_file_keeps_its_holes",
            "e2fsprogs is not installed",
        );
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    mkfs_from_tree(&image, "16M", None, &["-t", "ext4", "-b", "4096"]);
    // 64 KiB with data in its first and last 4 KiB only, and 60 KiB whose only data is
    // one byte: the holes and the zero blocks stay unallocated, as mke2fs -d leaves them.
    let ends = dir.join("ends");
    let f = fs::File::create(&ends).unwrap();
    f.write_all_at(&[0xa5; 4096], 0).unwrap();
    f.write_all_at(&[0x5a; 4096], 60 * 1024).unwrap();
    let one = dir.join("one");
    let g = fs::File::create(&one).unwrap();
    g.write_all_at(&vec![0u8; 60 * 1024], 0).unwrap();
    g.write_all_at(b"x", 30 * 1024).unwrap();

    let rw = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut w = Writer::open(rw).unwrap();
    let meta = Meta::default().with_mode(0o644);
    for (name, path) in [("ends", &ends), ("one", &one)] {
        let src = fs::File::open(path).unwrap();
        w.add_file(ROOT, name.as_bytes(), &meta, &mut &src).unwrap();
    }
    w.finish().unwrap();

    e2fsck_clean(&image).unwrap();
    assert_eq!(
        blocks(&image, "/ends"),
        2,
        "only the two data blocks are allocated"
    );
    assert_eq!(
        blocks(&image, "/one"),
        1,
        "only the block holding the byte is allocated"
    );
    for (name, path) in [("ends", &ends), ("one", &one)] {
        let out = dir.join(format!("{name}.out"));
        debugfs(&image, format!("dump /{name} {}", out.display()));
        assert_eq!(fs::read(&out).unwrap(), fs::read(path).unwrap(), "{name}");
    }
}
