//! The writer leaves slack in extent trees as e2fsprogs does: one free slot in every leaf
//! and index block. A guest that punches a hole in an extent of such a file needs one
//! more entry in that leaf; with the slot there the kernel adds it in place, where a full
//! leaf would be split and e2fsck would then say the tree "could be narrower".

use std::fs;
use std::os::unix::fs::FileExt;

use ext4fs::write::{Meta, Writer, ROOT};
use testkit::{
    e2fsck_clean, have, is_root, mkfs_from_tree, run, stderr, stdout, tool, Mount, TempDir,
};

/// Islands of data in the source: 400 extents of 4 KiB, 8 KiB apart.
const ISLANDS: u64 = 400;
const ISLAND: u64 = 4096;
const STRIDE: u64 = 8192;

#[test]
fn holes_punched_by_the_kernel_leave_e2fsck_nothing_to_optimise() {
    let test = "holes_punched_by_the_kernel_leave_e2fsck_nothing_to_optimise";
    if !(have("mke2fs") && have("e2fsck") && have("fallocate")) {
        testkit::skip(test, "e2fsprogs or fallocate is not installed");
        return;
    }
    if !is_root() {
        testkit::skip(test, "loop mounts need root");
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    // 1 KiB blocks: 84 entries a tree block, so 400 extents need five leaves.
    mkfs_from_tree(&image, "64M", None, &["-t", "ext4", "-b", "1024"]);
    let src_path = dir.join("islands");
    let src = fs::File::create(&src_path).unwrap();
    for i in 0..ISLANDS {
        let data: Vec<u8> = (0..ISLAND).map(|b| (b * 7 + i) as u8 | 1).collect();
        src.write_all_at(&data, i * STRIDE).unwrap();
    }
    drop(src);
    let img = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut w = Writer::open(img).unwrap();
    let src = fs::File::open(&src_path).unwrap();
    w.add_file(
        ROOT,
        b"islands",
        &Meta::default().with_mode(0o644),
        &mut &src,
    )
    .unwrap();
    w.finish().unwrap();
    e2fsck_clean(&image).unwrap();

    // One hole in each leaf: the second KiB of islands spread over the file, which splits
    // each of those extents in two.
    {
        let mnt = Mount::image(&image, "rw").unwrap();
        for i in [10, 100, 190, 280, 370] {
            let out = run(tool("fallocate")
                .args(["--punch-hole", "--offset"])
                .arg((i * STRIDE + 1024).to_string())
                .args(["--length", "1024"])
                .arg(mnt.join("islands")));
            assert!(out.status.success(), "fallocate: {}", stderr(&out));
        }
    }
    let out = run(tool("e2fsck").arg("-fn").arg(&image));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success() && !text.contains("could be") && !text.contains("Optimize"),
        "e2fsck -fn after the kernel punched holes:\n{text}"
    );
}
