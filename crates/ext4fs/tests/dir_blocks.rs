//! Directory blocks from `build_dir_blocks` inside real images made by `mkfs.ext4`, checked
//! by `e2fsck -fn` (which recomputes every hash and checks each leaf against its index
//! range), by `debugfs htree`, read back by this crate, and (as root) loop-mounted: the
//! kernel finds every name through the index.
//!
//! The setup: `mkfs.ext4 -d` places a regular file whose size is exactly the directory's
//! block count, and ten small files. The directory's blocks are written over the regular
//! file's blocks, every entry names one of the ten files, then debugfs turns the regular
//! file into a directory (mode, index flag, link counts) and links it as `/d`.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use ext4fs::dirhash::effective_version;
use ext4fs::write::{build_dir_blocks, DirBlocks, DirParams};
use ext4fs::{Backing, Compat, Content, DirEntry, EntryKind, Fs, Incompat, Ino, SbFlags};
use testkit::{
    debugfs, e2fsck_clean, have, is_root, mkfs_from_tree, run, skip, stderr, stdout, tool, TempDir,
};

const FILES: usize = 10;
const SEED: &str = "6b33f586-a183-4d0c-9ac5-a0f1c4bbd2f7";

/// Deterministic names: `n` distinct names whose lengths `len(i)` gives, of any byte but
/// NUL and '/'.
fn make_names(n: usize, len: impl Fn(usize) -> usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        let want = len(i).clamp(1, 255);
        i += 1;
        let mut name = Vec::with_capacity(want);
        while name.len() < want {
            let b = (next() % 256) as u8;
            if b != 0 && b != b'/' {
                name.push(b);
            }
        }
        if name != b"." && name != b".." && seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

fn params(fs: &Fs, raw_sb: &[u8], ino: Ino, generation: u32) -> DirParams {
    let sb = fs.superblock();
    let word = |off: usize| u32::from_le_bytes(raw_sb[off..off + 4].try_into().unwrap());
    DirParams {
        block_size: sb.block_size,
        csum_seed: sb.metadata_csum().then_some(sb.csum_seed),
        ino,
        generation,
        // s_def_hash_version at 0xfc, s_flags at 0x160, s_hash_seed at 0xec.
        hash_version: effective_version(raw_sb[0xfc], SbFlags::from_bits_retain(word(0x160))),
        hash_seed: [word(0xec), word(0xf0), word(0xf4), word(0xf8)],
        indexed: sb.has_compat(Compat::DIR_INDEX),
        large_dir: sb.has_incompat(Incompat::LARGEDIR),
        filetype: sb.has_incompat(Incompat::FILETYPE),
    }
}

fn open(image: &Path) -> (Fs, Vec<u8>) {
    let f = fs::File::open(image).unwrap();
    let mut raw = vec![0u8; 1024];
    f.read_exact_at(&mut raw, 1024).unwrap();
    (Fs::open(f).unwrap(), raw)
}

fn make_image(tmp: &TempDir, image: &Path, mkfs: &[&str], blob_bytes: usize) {
    let tree = tmp.join("tree");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir(&tree).unwrap();
    for k in 0..FILES {
        fs::write(tree.join(format!("f{k}")), b"x").unwrap();
    }
    // Not zeros: mkfs.ext4 -d leaves zero blocks unallocated.
    fs::write(tree.join("blob"), vec![0xa5u8; blob_bytes.max(1)]).unwrap();
    let mut args = vec!["-t", "ext4", "-U", SEED];
    let seed = format!("hash_seed={SEED}");
    args.extend(["-E", &seed]);
    args.extend(mkfs);
    mkfs_from_tree(image, "64M", Some(&tree), &args);
}

/// Put a directory of `names` into an image made with `mkfs`, check it, and return what
/// was built.
// One scenario read top to bottom: build, check with e2fsck and debugfs, read back.
#[allow(clippy::too_many_lines)]
fn roundtrip(test: &str, mkfs: &[&str], names: &[Vec<u8>]) -> Option<DirBlocks> {
    if !have("mke2fs") || !have("e2fsck") || !have("debugfs") {
        skip(test, "e2fsprogs not found");
        return None;
    }
    let tmp = TempDir::new();
    let image = tmp.join("img");
    // First image: learn the geometry and hash settings (the same in the second, which
    // only has a blob of the right size); the block count does not depend on inode numbers.
    make_image(&tmp, &image, mkfs, 1);
    let (fs, raw) = open(&image);
    let some = |n| Ino::new(n).unwrap();
    let probe: Vec<_> = names
        .iter()
        .map(|n| DirEntry::new(n, some(11), EntryKind::File))
        .collect();
    let p = params(&fs, &raw, some(12), 0);
    let blocks = build_dir_blocks(some(12), Ino::ROOT, &probe, &p)
        .unwrap()
        .blocks
        .len();
    let bs = fs.block_size() as usize;
    drop(fs);

    make_image(&tmp, &image, mkfs, blocks * bs);
    let (fs, raw) = open(&image);
    let blob = fs.inode(fs.lookup(b"/blob").unwrap()).unwrap();
    let files: Vec<Ino> = (0..FILES)
        .map(|k| fs.lookup(format!("/f{k}").as_bytes()).unwrap())
        .collect();
    let entries: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| DirEntry::new(n, files[i % FILES], EntryKind::File))
        .collect();
    let p = params(&fs, &raw, blob.ino, blob.generation);
    let built = build_dir_blocks(blob.ino, Ino::ROOT, &entries, &p).unwrap();
    assert_eq!(built.blocks.len(), blocks);
    let Content::Runs(runs) = fs.content(&blob).unwrap() else {
        panic!("blob is inline")
    };
    let out = fs::OpenOptions::new().write(true).open(&image).unwrap();
    let mut written = 0;
    for run in runs {
        let Backing::Data { physical } = run.backing else {
            panic!("blob has a hole")
        };
        for i in 0..run.len {
            let block = &built.blocks[(run.logical + i) as usize];
            out.write_all_at(block, (physical + i) * bs as u64).unwrap();
            written += 1;
        }
    }
    assert_eq!(written, blocks);
    drop(out);
    let root_links = fs.inode(Ino::ROOT).unwrap().links_count;
    let index_flag = if built.indexed { 0x1000 } else { 0 };
    let mut script = format!(
        "sif /blob mode 040755\nsif /blob flags {:#x}\nsif /blob links_count 2\n",
        blob.flags.bits() | index_flag
    );
    for ino in &files {
        let links = 1 + entries.iter().filter(|e| e.ino == *ino).count();
        writeln!(script, "sif <{ino}> links_count {links}").unwrap();
    }
    writeln!(
        script,
        "unlink /blob\nlink <{}> /d\nsif / links_count {}",
        blob.ino,
        root_links + 1
    )
    .unwrap();
    // The blob's group now holds one more directory.
    let group = (blob.ino.get() - 1) / fs.superblock().inodes_per_group;
    let dirs = used_dirs(&image, group);
    writeln!(
        script,
        "set_bg {group} used_dirs_count {}\nset_bg {group} checksum calc",
        dirs + 1
    )
    .unwrap();
    drop(fs);
    let script_path = tmp.join("script");
    fs::write(&script_path, script).unwrap();
    let done = run(tool("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script_path)
        .arg(&image));
    assert!(done.status.success(), "{}", stdout(&done));

    if let Err(e) = e2fsck_clean(&image) {
        panic!("{test}: {e}");
    }
    let htree = debugfs(&image, "htree /d");
    if built.indexed {
        assert!(htree.contains("Root node dump"), "{htree}");
    } else {
        assert!(!htree.contains("Root node dump"), "{htree}");
    }
    // debugfs sees every name in the directory, and so does this crate.
    let (fs, _) = open(&image);
    let d = fs.inode(fs.lookup(b"/d").unwrap()).unwrap();
    assert_eq!(d.has_flag(ext4fs::InodeFlags::INDEX), built.indexed);
    let read: BTreeSet<Vec<u8>> = fs
        .read_dir(&d)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut want: BTreeSet<Vec<u8>> = names.iter().cloned().collect();
    want.insert(b".".to_vec());
    want.insert(b"..".to_vec());
    assert!(read == want, "{test}: names read back differ");
    lookup_finds_every_name(test, &image, &entries);
    kernel_finds_every_name(test, &tmp, &image, &entries);
    Some(built)
}

/// Unmounts on drop (lazily, should the mount be busy).
struct Unmount<'a>(&'a Path);
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if !run(tool("umount").arg(self.0)).status.success() {
            let _ = run(tool("umount").arg("-l").arg(self.0));
        }
    }
}

/// The kernel, which looks names up through the index (and checks every checksum), finds
/// each name with its inode, and lists them all. Needs root for the loop mount.
fn kernel_finds_every_name(test: &str, tmp: &TempDir, image: &Path, entries: &[DirEntry]) {
    if !is_root() {
        skip(test, "the kernel check needs root to loop-mount the image");
        return;
    }
    let point = tmp.join("mnt");
    fs::create_dir(&point).unwrap();
    let out = run(tool("mount")
        .args(["-t", "ext4", "-o", "loop,ro"])
        .arg(image)
        .arg(&point));
    if !out.status.success() {
        skip(test, &format!("cannot loop-mount: {}", stderr(&out)));
        return;
    }
    let _guard = Unmount(&point);
    let dir = point.join("d");
    for e in entries {
        let name = &e.name;
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        let meta = fs::symlink_metadata(&path)
            .unwrap_or_else(|e| panic!("{test}: kernel lookup of {name:?}: {e}"));
        assert_eq!(meta.ino(), u64::from(e.ino), "{test}: inode of {name:?}");
    }
    let listed = fs::read_dir(&dir).unwrap().count();
    assert_eq!(listed, entries.len(), "{test}: kernel readdir");
}

/// A group's used-directories count, as `debugfs stats` prints it.
fn used_dirs(image: &Path, group: u32) -> u32 {
    let stats = debugfs(image, "stats");
    let head = format!(" Group {group:2}: ");
    let at = stats.find(&head).expect("group in stats");
    let line = stats[at..].lines().nth(1).expect("counts line");
    let words: Vec<&str> = line.split(", ").collect();
    let field = words
        .iter()
        .find(|w| w.ends_with("used directories"))
        .expect("dirs");
    field.split_whitespace().next().unwrap().parse().unwrap()
}

/// The interior levels of an indexed directory (`dx_root_info.indirect_levels`).
fn levels(built: &DirBlocks) -> u8 {
    assert!(built.indexed);
    built.blocks[0][30]
}

#[test]
fn one_and_fifty_entries_make_one_linear_block() {
    for n in [1, 50] {
        let names = make_names(n, |i| 1 + i * 5 % 70);
        let b = roundtrip("one_and_fifty_entries", &["-b", "4096"], &names).unwrap_or_else(|| {
            DirBlocks {
                blocks: vec![vec![]],
                indexed: false,
            }
        });
        assert_eq!((b.blocks.len(), b.indexed), (1, false));
    }
}

#[test]
fn three_thousand_names_of_1_to_255_bytes_make_a_tree() {
    let names = make_names(3000, |i| 1 + i % 255);
    if let Some(b) = roundtrip("three_thousand_names", &["-b", "4096"], &names) {
        assert_eq!(levels(&b), 0);
    }
}

#[test]
fn a_hundred_thousand_names_make_two_levels() {
    let names = make_names(100_000, |i| 8 + i % 17);
    if let Some(b) = roundtrip("a_hundred_thousand_names", &["-b", "4096"], &names) {
        assert_eq!(levels(&b), 1);
    }
}

#[test]
fn one_kib_blocks() {
    let names = make_names(3000, |i| 1 + i % 255);
    roundtrip("one_kib_blocks", &["-b", "1024"], &names);
    let names = make_names(100_000, |i| 8 + i % 17);
    if let Some(b) = roundtrip("one_kib_blocks", &["-b", "1024"], &names) {
        assert_eq!(levels(&b), 1);
    }
}

#[test]
fn without_metadata_csum() {
    let names = make_names(3000, |i| 1 + i % 255);
    roundtrip(
        "without_metadata_csum",
        &["-b", "1024", "-O", "^metadata_csum"],
        &names,
    );
    roundtrip(
        "without_metadata_csum",
        &["-b", "4096", "-O", "^metadata_csum"],
        &names,
    );
}

#[test]
fn without_dir_index_big_directories_stay_linear() {
    let names = make_names(3000, |i| 1 + i % 255);
    if let Some(b) = roundtrip(
        "without_dir_index",
        &["-b", "1024", "-O", "^dir_index"],
        &names,
    ) {
        assert!(!b.indexed && b.blocks.len() > 1);
    }
}

#[test]
fn without_filetype() {
    let names = make_names(3000, |i| 1 + i % 255);
    roundtrip(
        "without_filetype",
        &["-b", "1024", "-O", "^filetype"],
        &names,
    );
}

#[test]
fn large_dir_takes_a_third_level() {
    // 255-byte names, three to a 1 KiB leaf: two levels index 123 x 126 leaves.
    let names = make_names(48_000, |_| 255);
    if let Some(b) = roundtrip("large_dir", &["-b", "1024", "-O", "large_dir"], &names) {
        assert_eq!(levels(&b), 2);
    }
}

#[test]
fn a_tree_of_one_leaf() {
    // Entries that overflow block 0 by a few bytes fit one leaf (which has no `.` and `..`).
    let mut names = make_names(49, |_| 12);
    names.push(vec![b'z'; 16]);
    if let Some(b) = roundtrip("a_tree_of_one_leaf", &["-b", "1024"], &names) {
        assert_eq!((b.blocks.len(), levels(&b)), (2, 0));
    }
}

/// This crate's lookup finds each name (a sample of a large directory) with its inode, and
/// none that is not there; through an index it reads a few blocks per lookup, not the
/// directory.
fn lookup_finds_every_name(test: &str, image: &Path, entries: &[DirEntry]) {
    let (mut fs, _) = open(image);
    // Thousands of lookups, each a scan of a large linear directory, are more work than
    // one run of a tool may do.
    fs.set_budget(u64::MAX);
    let d = fs.inode(fs.lookup(b"/d").unwrap()).unwrap();
    let bs = u64::from(fs.block_size());
    let step = (entries.len() / 2000).max(1);
    let mut most = 0;
    for e in entries.iter().step_by(step) {
        let mut path = b"/d/".to_vec();
        path.extend_from_slice(&e.name);
        let before = fs.work_done();
        let found = fs.lookup(&path);
        most = most.max(fs.work_done() - before);
        assert_eq!(found.unwrap(), e.ino, "{test}: lookup of {:?}", e.name);
    }
    for absent in [&b"absent name"[..], b"\xff\xfe", &[b'z'; 255]] {
        if entries.iter().any(|e| e.name == absent) {
            continue;
        }
        let mut path = b"/d/".to_vec();
        path.extend_from_slice(absent);
        let err = fs.lookup(&path).unwrap_err();
        assert!(
            matches!(err, ext4fs::Error::NotFound { .. }),
            "{test}: {err}"
        );
    }
    if d.has_flag(ext4fs::InodeFlags::INDEX) {
        // The root directory, two inodes, then the index: root, up to two interior levels
        // and a leaf (with its entries), maybe a next leaf for a run of equal hashes.
        let bound = 12 * bs + 16 * 1024;
        assert!(most <= bound, "{test}: a lookup cost {most} > {bound}");
    }
}
