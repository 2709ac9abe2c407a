//! The work budget, tried as an attacker would: small images whose listing or lookup would
//! cost far more than they hold. Each run must stay within generous limits of CPU, memory
//! and output, measured by the kernel.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::process::Command;

use ext4fs::{Backing, Content, Fs};
use testkit::bounded::{run_within, Limits};
use testkit::craft::share_map;
use testkit::debugfs_script;
use testkit::{mkfs_from_tree, TempDir};

/// Directories sharing /root's blocks.
const DIRS: usize = 1500;
/// Entries of the huge linear directory, more than the old lookup cache kept (2^18).
const ENTRIES: usize = 270_000;
const BS: usize = 4096;

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
    let tree = t.join("src");
    fs::create_dir_all(tree.join("root")).unwrap();
    for i in 0..3000 {
        fs::write(tree.join(format!("root/name-{i:04}")), b"").unwrap();
    }
    for i in 0..DIRS {
        fs::create_dir(tree.join(format!("d{i:04}"))).unwrap();
    }
    let image = t.join("img");
    // Without metadata_csum: a directory block's checksum is seeded with its inode's
    // number, which would give the sharing away.
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-N", "6000", "-O", "^metadata_csum"],
    );
    let targets: Vec<String> = (0..DIRS).map(|i| format!("/d{i:04}")).collect();
    share_map(&image, "/root", &targets);
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
    let per_block = BS / 12;
    let blocks = ENTRIES.div_ceil(per_block);
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("b"), vec![1u8; blocks * BS]).unwrap();
    fs::write(tree.join("f"), b"f").unwrap();
    let target = format!("b/..{}", "/b/..".repeat(818));
    std::os::unix::fs::symlink(&target, tree.join("root")).unwrap();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"],
    );
    // `b` becomes a linear directory of 270,000 entries naming `f`.
    let fs0 = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let b = fs0.inode(fs0.lookup(b"/b").unwrap()).unwrap();
    let f = fs0.lookup(b"/f").unwrap().get();
    let Content::Runs(runs) = fs0.content(&b).unwrap() else {
        panic!("b is inline")
    };
    let entry = |ino: u32, rec: usize, name: &[u8], kind: u8| {
        let mut e = ino.to_le_bytes().to_vec();
        e.extend_from_slice(&u16::try_from(rec).unwrap().to_le_bytes());
        e.push(u8::try_from(name.len()).unwrap());
        e.push(kind);
        e.extend_from_slice(name);
        e.resize(rec, 0);
        e
    };
    let out = fs::OpenOptions::new().write(true).open(&image).unwrap();
    let mut logical = 0;
    for run in runs {
        let Backing::Data { physical } = run.backing else {
            panic!("b has a hole")
        };
        for i in 0..run.len {
            let mut block = Vec::with_capacity(BS);
            if logical == 0 {
                block.extend(entry(b.ino.get(), 12, b".", 2));
                block.extend(entry(2, 12, b"..", 2));
            }
            while block.len() + 24 <= BS {
                block.extend(entry(f, 12, b"x", 1));
            }
            let rest = BS - block.len();
            block.extend(entry(f, rest, b"x", 1));
            out.write_all_at(&block, (physical + i) * BS as u64)
                .unwrap();
            logical += 1;
        }
    }
    drop(out);
    debugfs_script(&image, "sif /b mode 040755\nsif /b links_count 2\n");

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
