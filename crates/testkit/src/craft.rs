//! Hostile images, crafted the way an attacker would: a real image made by `mkfs.ext4 -d`,
//! then inodes edited with `debugfs` (which keeps every checksum right) or bytes patched
//! where debugfs has no command for the change. The images of the work-budget findings are
//! built here once ([`all`]), for their own tests and for the amplification table.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{debugfs, debugfs_script, inode_location, mkfs_from_tree};

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

/// The data extents of `path`, from `debugfs ex`: (first logical block, first physical
/// block, length).
pub fn data_extents(image: &Path, path: &str) -> Vec<(u64, u64, u64)> {
    let text = debugfs(image, format!("ex {path}"));
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // " 1/ 1   1/ 83     0 -     0    80 -    80      1 ": a leaf row.
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 11 || t[0].trim_end_matches('/') != t[1] {
            continue;
        }
        let n = |i: usize| t[i].parse::<u64>().expect("a number in debugfs ex");
        out.push((n(4), n(7), n(10)));
    }
    out
}

/// Finding: files sharing one tree of unwritten extents. `files` empty files `/fNNN` each
/// given the extent tree of `/big`: `extents` one-block extents (1 KiB blocks, so a tree
/// of leaf blocks under an index block), all marked unwritten. Without metadata_csum, whose
/// extent block checksums (seeded with the inode) would give the sharing away.
pub fn shared_unwritten_tree(dir: &Path, files: usize, extents: u64) -> PathBuf {
    let tree = dir.join("src-unwritten");
    fs::create_dir(&tree).expect("mkdir");
    fragmented_file(&tree.join("big"), extents, 1024);
    for i in 0..files {
        fs::write(tree.join(format!("f{i:03}")), b"").expect("write");
    }
    let image = dir.join("shared-unwritten-tree.img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &[
            "-t",
            "ext4",
            "-b",
            "1024",
            "-O",
            "^metadata_csum,^has_journal",
        ],
    );
    let _ = fs::remove_dir_all(&tree);
    assert_eq!(
        make_unwritten(&image, "/big"),
        usize::try_from(extents).expect("count")
    );
    share_map(&image, "/big", &numbered("/f", files));
    image
}

/// `/f000`, `/f001`, ... (or with another prefix).
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

/// Finding: directories sharing one set of blocks. `/root` holds `names` empty files;
/// `dirs` empty directories `/dNNN` are given its blocks. Without metadata_csum (a
/// directory block's checksum is seeded with its inode).
pub fn directories_sharing_blocks(dir: &Path, dirs: usize, names: usize) -> PathBuf {
    let tree = dir.join("src-dirs");
    fs::create_dir_all(tree.join("root")).expect("mkdir");
    for i in 0..names {
        fs::write(tree.join(format!("root/name-{i:04}")), b"").expect("write");
    }
    for d in numbered("d", dirs) {
        fs::create_dir(tree.join(d)).expect("mkdir");
    }
    let image = dir.join("directories-sharing-blocks.img");
    let inodes = (names + dirs + 64).to_string();
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-N", &inodes, "-O", "^metadata_csum"],
    );
    let _ = fs::remove_dir_all(&tree);
    share_map(&image, "/root", &numbered("/d", dirs));
    image
}

/// Finding: a deduplicated image (`shared_blocks`, so files may share data) where `files`
/// files `/fNNN` all name the 1 MiB of `/data`, inside a sparse image file of `apparent`
/// bytes.
pub fn dedup_in_sparse_file(dir: &Path, files: usize, apparent: u64) -> PathBuf {
    let tree = dir.join("src-dedup");
    fs::create_dir(&tree).expect("mkdir");
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251 + 1) as u8).collect();
    fs::write(tree.join("data"), data).expect("write");
    for i in 0..files {
        fs::write(tree.join(format!("f{i:03}")), b"").expect("write");
    }
    let image = dir.join("dedup-in-sparse-file.img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-O", "^has_journal"],
    );
    let _ = fs::remove_dir_all(&tree);
    debugfs_script(&image, "feature shared_blocks\n");
    share_map(&image, "/data", &numbered("/f", files));
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .expect("open the image")
        .set_len(apparent)
        .expect("extend the image");
    image
}

/// Finding: a path through a huge directory again and again. `/b` is a linear directory
/// of `entries` names (all `x`, naming `/f`), and `/root` a symlink of 819 `b/..` pairs
/// (4,094 bytes), which leads back to `/`. Without metadata_csum: the blocks are written
/// by hand.
pub fn lookup_through_huge_directory(dir: &Path, entries: usize) -> PathBuf {
    const BS: usize = 4096;
    let blocks = (entries * 12).div_ceil(BS - 24);
    let tree = dir.join("src-lookup");
    fs::create_dir(&tree).expect("mkdir");
    fs::write(tree.join("b"), vec![1u8; blocks * BS]).expect("write");
    fs::write(tree.join("f"), b"f").expect("write");
    let target = format!("b/..{}", "/b/..".repeat(818));
    std::os::unix::fs::symlink(&target, tree.join("root")).expect("symlink");
    let image = dir.join("lookup-through-huge-directory.img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"],
    );
    let _ = fs::remove_dir_all(&tree);
    let b_ino = inode_number(image.as_path(), "/b");
    let f_ino = inode_number(image.as_path(), "/f");
    let entry = |ino: u32, rec: usize, name: &[u8], kind: u8| {
        let mut e = ino.to_le_bytes().to_vec();
        e.extend_from_slice(&u16::try_from(rec).expect("a record length").to_le_bytes());
        e.push(u8::try_from(name.len()).expect("a name length"));
        e.push(kind);
        e.extend_from_slice(name);
        e.resize(rec, 0);
        e
    };
    let out = fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .expect("open the image");
    for (logical, physical, len) in data_extents(&image, "/b") {
        for i in 0..len {
            let mut block = Vec::with_capacity(BS);
            if logical + i == 0 {
                block.extend(entry(b_ino, 12, b".", 2));
                block.extend(entry(2, 12, b"..", 2));
            }
            while block.len() + 24 <= BS {
                block.extend(entry(f_ino, 12, b"x", 1));
            }
            let rest = BS - block.len();
            block.extend(entry(f_ino, rest, b"x", 1));
            out.write_all_at(&block, (physical + i) * BS as u64)
                .expect("write a directory block");
        }
    }
    drop(out);
    debugfs_script(&image, "sif /b mode 040755\nsif /b links_count 2\n");
    image
}

/// Finding: an empty file whose size says `apparent` bytes (all hole), in `/root` of a
/// 4 MiB image that e2fsck passes.
pub fn sparse_file_of(dir: &Path, apparent: u64) -> PathBuf {
    let tree = dir.join("src-sparse");
    fs::create_dir_all(tree.join("root")).expect("mkdir");
    fs::write(tree.join("root/huge"), b"").expect("write");
    let image = dir.join("sparse-file.img");
    mkfs_from_tree(&image, "4M", Some(&tree), &["-t", "ext4"]);
    let _ = fs::remove_dir_all(&tree);
    debugfs_script(&image, &format!("sif /root/huge size {apparent}\n"));
    image
}

/// Files sharing one extended attribute block, as a deduplicated set of xattrs is stored
/// (refcounted, so sharing is sound), in an image of 64 KiB blocks. `/f0000` holds one
/// attribute of `value_len` bytes, too large for its inode, so in a block; `files - 1`
/// more empty files are given that block. With a small value this is an honest image
/// (a label every file carries); with a value near 64 KiB, every reader that hands each
/// file its attributes reads a few hundred MiB from an image holding a few MiB.
pub fn shared_xattr_block(dir: &Path, files: usize, value_len: usize) -> PathBuf {
    let tree = dir.join("src-xattr");
    fs::create_dir(&tree).expect("mkdir");
    for i in 0..files {
        fs::write(tree.join(format!("f{i:04}")), b"").expect("write");
    }
    let image = dir.join("shared-xattr-block.img");
    let inodes = (files + 64).to_string();
    mkfs_from_tree(
        &image,
        "64M",
        Some(&tree),
        &[
            "-t",
            "ext4",
            "-b",
            "65536",
            "-N",
            &inodes,
            "-O",
            "^has_journal",
        ],
    );
    let _ = fs::remove_dir_all(&tree);
    let value = dir.join("xattr-value");
    fs::write(&value, vec![b'v'; value_len]).expect("write");
    debugfs_script(
        &image,
        &format!("ea_set -f {} /f0000 user.shared\n", value.display()),
    );
    let _ = fs::remove_file(&value);
    let block = raw_inode(&image, "/f0000");
    let block = u32_at(&block, 0x68);
    assert_ne!(block, 0, "the attribute went to a block");
    let mut script = String::new();
    for i in 1..files {
        writeln!(script, "sif /f{i:04} file_acl {block}").expect("format");
    }
    debugfs_script(&image, &script);
    image
}

/// The sharers of [`shared_xattr_block`] in [`all`], and the value they share: 6,000 x
/// 60,000 bytes delivered, past the budget of its few MiB.
pub const XATTR_SHARERS: usize = 6000;
pub const XATTR_SHARED_VALUE: usize = 60_000;

/// The inode number of `path`, as debugfs says.
pub fn inode_number(image: &Path, path: &str) -> u32 {
    let text = debugfs(image, format!("stat {path}"));
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("debugfs stat: Inode: N")
}

/// Every crafted image of the findings, at the sizes their tests use, built in `dir`:
/// (what it attacks, the image).
pub fn all(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "shared unwritten extent tree",
            shared_unwritten_tree(dir, 300, 2000),
        ),
        (
            "directories sharing blocks",
            directories_sharing_blocks(dir, 1500, 3000),
        ),
        (
            "dedup in a 64 GiB sparse file",
            dedup_in_sparse_file(dir, 300, 64 << 30),
        ),
        (
            "lookup through a huge directory",
            lookup_through_huge_directory(dir, 270_000),
        ),
        ("a 2 TiB sparse file", sparse_file_of(dir, 2 << 40)),
        (
            "files sharing a 64 KiB xattr block",
            shared_xattr_block(dir, XATTR_SHARERS, XATTR_SHARED_VALUE),
        ),
    ]
}
