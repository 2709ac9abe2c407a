//! Hostile images, crafted the way an attacker would: a real image made by `mkfs.ext4 -d`,
//! then inodes edited with `debugfs` (which keeps every checksum right) or bytes patched
//! where debugfs has no command for the change.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{debugfs, debugfs_script, inode_location};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The raw on-disk inode of `path` (its first 160 bytes).
pub fn raw_inode(image: &Path, path: &str) -> Vec<u8> {
    let (block, offset) = inode_location(image, path);
    let bs = block_size(image);
    let f = fs::File::open(image).expect("open the image");
    let mut raw = vec![0u8; 160];
    f.read_exact_at(&mut raw, block * bs + offset)
        .expect("read the inode");
    raw
}

/// The image's block size, as its superblock says.
pub fn block_size(image: &Path) -> u64 {
    let f = fs::File::open(image).expect("open the image");
    let mut sb = [0u8; 4];
    f.read_exact_at(&mut sb, 1024 + 0x18)
        .expect("read the superblock");
    1024 << u32_at(&sb, 0)
}

/// Give each inode of `targets` the block map of `source`: its `i_block` (an extent tree
/// root or the block pointers), its size and its flags. Every target then walks the same
/// tree, or lists the same directory blocks, as `source` does: what no sound file system
/// holds, and what each inode reading its own blocks would pay for once per inode.
pub fn share_map(image: &Path, source: &str, targets: &[String]) {
    let raw = raw_inode(image, source);
    let words: Vec<u32> = (0..15).map(|i| u32_at(&raw, 0x28 + 4 * i)).collect();
    let size = u64::from(u32_at(&raw, 0x4)) | u64::from(u32_at(&raw, 0x6c)) << 32;
    let flags = u32_at(&raw, 0x20);
    let mut script = String::new();
    for t in targets {
        for (i, w) in words.iter().enumerate() {
            let field = match i {
                12 => "block[IND]".to_string(),
                13 => "block[DIND]".to_string(),
                14 => "block[TIND]".to_string(),
                _ => format!("block[{i}]"),
            };
            writeln!(script, "sif {t} {field} {w:#x}").expect("format");
        }
        writeln!(script, "sif {t} size {size}\nsif {t} flags {flags:#x}").expect("format");
    }
    debugfs_script(image, &script);
}

/// The physical blocks of the extent tree of `path` below its root (index and leaf
/// blocks), from `debugfs ex`: (is a leaf, block).
pub fn extent_tree_blocks(image: &Path, path: &str) -> Vec<(bool, u64)> {
    let text = debugfs(image, format!("ex {path}"));
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // " 0/ 1   1/  3     0 -   165    86            166": an index row names one block.
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 8 {
            continue;
        }
        let (Ok(level), Ok(depth)) = (t[0].trim_end_matches('/').parse::<u32>(), t[1].parse())
        else {
            continue;
        };
        if level < depth {
            let block = t[7].parse().expect("an index row's block");
            out.push((level + 1 == depth, block));
        }
    }
    out
}

/// Mark every extent of `path` unwritten (allocated, reading as zeros), by patching its
/// leaf blocks: for images without `metadata_csum` (whose extent blocks carry no checksum)
/// and an extent tree deeper than its root. Returns how many extents were marked.
pub fn make_unwritten(image: &Path, path: &str) -> usize {
    let bs = block_size(image);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .expect("open the image");
    let mut marked = 0;
    for (leaf, block) in extent_tree_blocks(image, path) {
        if !leaf {
            continue;
        }
        let mut buf = vec![0u8; usize::try_from(bs).expect("block size")];
        f.read_exact_at(&mut buf, block * bs).expect("read a leaf");
        let entries = usize::from(u16::from_le_bytes([buf[2], buf[3]]));
        for i in 0..entries {
            let at = 12 + 12 * i + 4;
            let len = u16::from_le_bytes([buf[at], buf[at + 1]]);
            if len <= 32768 {
                buf[at..at + 2].copy_from_slice(&(len + 32768).to_le_bytes());
                marked += 1;
            }
        }
        f.write_all_at(&buf, block * bs).expect("write a leaf");
    }
    marked
}

/// A host file of `blocks` one-byte data blocks of `block_size` bytes, each after a hole
/// of one block: `mkfs.ext4 -d` makes one extent of each (it leaves zero blocks out).
pub fn fragmented_file(path: &Path, blocks: u64, block_size: u64) {
    let f = fs::File::create(path).expect("create");
    for i in 0..blocks {
        f.write_all_at(b"x", 2 * i * block_size).expect("write");
    }
}
