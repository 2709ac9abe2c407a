//! Directory blocks for a new directory: one linear block while everything fits, beyond that
//! a hash tree (htree) when the file system has `dir_index`, else linear blocks.
//!
//! The layout facts relied on are written down in `docs/ext4-htree.md`.

use crate::csum;
use crate::dir::rec_len_to_disk;
use crate::dirhash::{dirhash, version, DirHash};
use crate::error::{Error, Result};
use crate::format::{dirent, dx, NAME_MAX};
use crate::le::{put_u16, put_u32};
use crate::{DirEntry, EntryKind, Ino};

/// What the builder needs to know about the file system and the directory's inode.
#[derive(Debug, Clone)]
pub struct DirParams {
    pub block_size: u32,
    /// The file system's checksum seed when metadata_csum is on (`None` when it is off).
    pub csum_seed: Option<u32>,
    /// The directory's inode number (the one the checksums are computed for).
    pub ino: Ino,
    /// The directory inode's `i_generation` (part of every block checksum).
    pub generation: u32,
    /// `s_def_hash_version` with the superblock's unsigned-char flag applied (0..=5, see
    /// [`crate::dirhash::effective_version`]).
    pub hash_version: u8,
    /// `s_hash_seed` as four little-endian words.
    pub hash_seed: [u32; 4],
    /// The `dir_index` feature: multi-block directories get a hash tree.
    pub indexed: bool,
    /// The `large_dir` feature: a third tree level, and directories over 4 GiB.
    pub large_dir: bool,
    /// The `filetype` feature: entries carry their type (else the byte is 0).
    pub filetype: bool,
}

/// A directory's contents, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirBlocks {
    /// The logical blocks 0, 1, ... in order, each `block_size` bytes; the directory's
    /// `i_size` is their total.
    pub blocks: Vec<Vec<u8>>,
    /// Block 0 is the root of a hash tree: the writer must set `EXT4_INDEX_FL` (0x1000,
    /// [`crate::InodeFlags::INDEX`]) on the directory's inode, and must leave it clear
    /// when this is false.
    pub indexed: bool,
}

/// Build the blocks of directory `self_ino` whose parent is `parent_ino`, holding `entries`
/// besides `.` and `..` (an entry without a kind gets the type byte 0, unknown).
///
/// Linear when `.`, `..` and every entry fit one block; otherwise a hash tree when
/// `p.indexed` (root in block 0, interior nodes next, then the leaves in hash order), or
/// linear blocks in the order given when not. The same input gives the same bytes.
/// [`DirBlocks::indexed`] says whether the inode must carry `EXT4_INDEX_FL`.
///
/// Refused: a name empty, over 255 bytes, containing `/` or NUL, or `.`/`..`; a name given
/// twice; a hash version this crate does not compute; a tree deeper than the file
/// system allows (two levels, three with `large_dir`); a block size that is not a power of
/// two from 1024 to 65536; `p.ino` other than `self_ino`.
///
/// Work is linear in the entries but for one sort (n log n): by hash when indexed, by
/// name (to find a name given twice) when linear.
pub fn build_dir_blocks(
    self_ino: Ino,
    parent_ino: Ino,
    entries: &[DirEntry],
    p: &DirParams,
) -> Result<DirBlocks> {
    let refuse = |what: &'static str| Error::Unsupported {
        ino: self_ino,
        what,
    };
    if !p.block_size.is_power_of_two() || !(1024..=65536).contains(&p.block_size) {
        return Err(refuse("a directory block size outside 1024..=65536"));
    }
    if p.ino != self_ino {
        return Err(refuse("directory parameters for another inode"));
    }
    for e in entries {
        check_name(&e.name).map_err(refuse)?;
    }
    let b = Builder::new(self_ino, p);
    let bs = b.bs;
    let dots = 2 * rec_size(2);
    let total = entries
        .iter()
        .try_fold(dots, |sum, e| sum.checked_add(rec_size(e.name.len())))
        .ok_or_else(|| refuse("a directory too large"))?;
    if !p.indexed || total <= b.leaf_room() {
        no_duplicates(entries.iter().map(|e| e.name.as_slice()))
            .map_err(|()| refuse("a name given twice in one directory"))?;
        let blocks = b.linear(parent_ino, entries);
        if !p.large_dir && (blocks.len() as u64) * (bs as u64) >= 1 << 32 {
            return Err(refuse("a directory of 4 GiB or more without large_dir"));
        }
        return Ok(DirBlocks {
            blocks,
            indexed: false,
        });
    }
    let mut order: Vec<(DirHash, usize)> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        tick();
        let h = dirhash(p.hash_version, &p.hash_seed, &e.name)
            .ok_or_else(|| refuse("a directory hash other than legacy, half_md4 or tea"))?;
        order.push((h, i));
    }
    order.sort_unstable_by(|x, y| {
        tick();
        (x.0, &entries[x.1].name).cmp(&(y.0, &entries[y.1].name))
    });
    // Equal names have equal hashes, so sorted by (hash, name) they are neighbours.
    if order.windows(2).any(|w| {
        tick();
        entries[w[0].1].name == entries[w[1].1].name
    }) {
        return Err(refuse("a name given twice in one directory"));
    }
    let leaves = b.pack_leaves(entries, &order);
    let tree = b.plan_tree(leaves.len()).ok_or_else(|| {
        refuse(if p.large_dir {
            "a directory too large for a three-level hash tree"
        } else {
            "a directory too large for a two-level hash tree (large_dir is off)"
        })
    })?;
    let count = 1 + tree.nodes.iter().map(Vec::len).sum::<usize>() + leaves.len();
    if !p.large_dir && (count as u64) * (bs as u64) >= 1 << 32 {
        return Err(refuse("a directory of 4 GiB or more without large_dir"));
    }
    if u32::try_from(count).is_err() {
        return Err(refuse("a directory of more than 2^32 blocks"));
    }
    let blocks = b.indexed(parent_ino, entries, &order, &leaves, &tree);
    Ok(DirBlocks {
        blocks,
        indexed: true,
    })
}

// Steps of work done on this thread, counted by the tests to show that building grows
// with the entries as n log n at worst, whatever the machine's speed.
#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One step of work (each entry placed, hashed or scanned, each comparison, each index
/// block); counted only in tests.
#[inline]
fn tick() {
    #[cfg(test)]
    WORK.with(|w| w.set(w.get() + 1));
}

fn check_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("an empty name in a directory")
    } else if name.len() > NAME_MAX {
        Err("a name over 255 bytes")
    } else if name.contains(&b'/') || name.contains(&0) {
        Err("a name containing '/' or NUL")
    } else if name == b"." || name == b".." {
        Err("an entry named '.' or '..'")
    } else {
        Ok(())
    }
}

/// Err when a name appears twice (sorts references to the names: n log n).
fn no_duplicates<'a>(names: impl Iterator<Item = &'a [u8]>) -> Result<(), ()> {
    let mut v: Vec<&[u8]> = names.collect();
    v.sort_unstable_by(|a, b| {
        tick();
        a.cmp(b)
    });
    if v.windows(2).any(|w| {
        tick();
        w[0] == w[1]
    }) {
        Err(())
    } else {
        Ok(())
    }
}

/// The bytes an entry with a name of `len` bytes takes: 8 of header, the name, rounded up
/// to 4.
fn rec_size(len: usize) -> usize {
    (dirent::HEADER + len + 3) & !3
}

/// One planned leaf: the entries (indexes into `order`) and its key in the index.
struct Leaf {
    range: std::ops::Range<usize>,
    /// The smallest major hash in the leaf, with the low bit set when that hash also ends
    /// the previous leaf (a run of equal hashes continued).
    key: u32,
}

/// The index blocks below the root.
struct Tree {
    /// Interior levels below the root, top first: each node is a range of the next level
    /// down (the last level's ranges are leaf ranges).
    nodes: Vec<Vec<std::ops::Range<usize>>>,
}

struct Builder<'p> {
    p: &'p DirParams,
    bs: usize,
    ino: Ino,
    /// crc32c of the fs seed, inode number and generation: where every block's sum starts.
    inode_seed: Option<u32>,
}

impl<'p> Builder<'p> {
    fn new(ino: Ino, p: &'p DirParams) -> Builder<'p> {
        let inode_seed = p
            .csum_seed
            .map(|seed| csum::inode_seed(seed, ino.get(), p.generation));
        Builder {
            p,
            bs: p.block_size as usize,
            ino,
            inode_seed,
        }
    }

    /// Bytes of a leaf available to entries.
    fn leaf_room(&self) -> usize {
        self.bs
            - if self.inode_seed.is_some() {
                dirent::TAIL_SIZE
            } else {
                0
            }
    }

    fn dx_limit(&self, start: usize) -> usize {
        let tail = if self.inode_seed.is_some() {
            dx::TAIL_SIZE
        } else {
            0
        };
        (self.bs - start - tail) / dx::ENTRY_SIZE
    }

    /// The type byte of an entry: its kind's code with `filetype`, else 0.
    fn type_byte(&self, kind: Option<EntryKind>) -> u8 {
        match kind {
            Some(k) if self.p.filetype => k.dirent_code(),
            _ => 0,
        }
    }

    /// Append an entry at `at`; its rec_len is its own size (fixed up by `close_leaf` for
    /// the last one).
    fn put(&self, block: &mut [u8], at: usize, e: &DirEntry) -> usize {
        tick();
        let size = rec_size(e.name.len());
        put_u32(block, at + dirent::INODE, e.ino.get());
        put_u16(block, at + dirent::REC_LEN, rec_len_to_disk(size, self.bs));
        block[at + dirent::NAME_LEN] = e.name.len() as u8;
        block[at + dirent::FILE_TYPE] = self.type_byte(e.kind);
        block[at + dirent::NAME..at + dirent::NAME + e.name.len()].copy_from_slice(&e.name);
        size
    }

    /// `.` and `..` at the start of block 0.
    fn dots(&self, block: &mut [u8], parent: Ino) -> usize {
        let at = self.put(
            block,
            0,
            &DirEntry::new(b".", self.ino, EntryKind::Directory),
        );
        at + self.put(
            block,
            at,
            &DirEntry::new(b"..", parent, EntryKind::Directory),
        )
    }

    /// Stretch the last entry (at `last`) to the end of the room, and add the checksum tail.
    fn close_leaf(&self, block: &mut [u8], last: usize) {
        let room = self.leaf_room();
        put_u16(
            block,
            last + dirent::REC_LEN,
            rec_len_to_disk(room - last, self.bs),
        );
        if let Some(seed) = self.inode_seed {
            csum::set_dir_leaf(seed, block);
        }
    }

    /// Linear blocks: `.` and `..` first, then the entries in the order given.
    fn linear(&self, parent: Ino, entries: &[DirEntry]) -> Vec<Vec<u8>> {
        let room = self.leaf_room();
        let mut blocks = Vec::new();
        let mut block = vec![0u8; self.bs];
        let mut at = self.dots(&mut block, parent);
        let mut last = dirent::DOT_REC_LEN;
        for e in entries {
            if at + rec_size(e.name.len()) > room {
                self.close_leaf(&mut block, last);
                blocks.push(std::mem::replace(&mut block, vec![0u8; self.bs]));
                at = 0;
            }
            last = at;
            at += self.put(&mut block, at, e);
        }
        self.close_leaf(&mut block, last);
        blocks.push(block);
        blocks
    }

    /// Split the hash-ordered entries into leaves, filling each: a run of equal major
    /// hashes that does not fit what is left of a leaf starts a new one when it fits a
    /// whole leaf, so a hash run is split only when it is longer than a leaf.
    fn pack_leaves(&self, entries: &[DirEntry], order: &[(DirHash, usize)]) -> Vec<Leaf> {
        let room = self.leaf_room();
        let size = |k: usize| rec_size(entries[order[k].1].name.len());
        let mut leaves: Vec<Leaf> = Vec::new();
        let mut start = 0;
        let mut used = 0;
        let mut run_start = 0;
        while run_start < order.len() {
            let major = order[run_start].0.major;
            let mut run_end = run_start;
            let mut run_bytes = 0;
            while run_end < order.len() && order[run_end].0.major == major {
                tick();
                run_bytes += size(run_end);
                run_end += 1;
            }
            if used + run_bytes > room && used > 0 && run_bytes <= room {
                leaves.push(Leaf {
                    range: start..run_start,
                    key: 0,
                });
                start = run_start;
                used = 0;
            }
            for k in run_start..run_end {
                tick();
                if used + size(k) > room {
                    leaves.push(Leaf {
                        range: start..k,
                        key: 0,
                    });
                    start = k;
                    used = 0;
                }
                used += size(k);
            }
            run_start = run_end;
        }
        leaves.push(Leaf {
            range: start..order.len(),
            key: 0,
        });
        for i in 1..leaves.len() {
            let first = order[leaves[i].range.start].0.major;
            let prev_last = order[leaves[i - 1].range.end - 1].0.major;
            leaves[i].key = first | u32::from(first == prev_last);
        }
        leaves
    }

    /// How many interior levels `leaves` leaves need, and their nodes; `None` when more
    /// than the file system allows.
    fn plan_tree(&self, leaves: usize) -> Option<Tree> {
        let root_limit = self.dx_limit(dx::ROOT_ENTRIES);
        let node_limit = self.dx_limit(dx::NODE_ENTRIES);
        let max_levels = if self.p.large_dir { 2 } else { 1 };
        let mut nodes: Vec<Vec<std::ops::Range<usize>>> = Vec::new();
        let mut width = leaves;
        while width > root_limit {
            if nodes.len() == max_levels {
                return None;
            }
            let level: Vec<_> = (0..width)
                .step_by(node_limit)
                .map(|s| {
                    tick();
                    s..(s + node_limit).min(width)
                })
                .collect();
            width = level.len();
            nodes.push(level);
        }
        nodes.reverse();
        Some(Tree { nodes })
    }

    /// Root, interior nodes (top level first), then leaves.
    fn indexed(
        &self,
        parent: Ino,
        entries: &[DirEntry],
        order: &[(DirHash, usize)],
        leaves: &[Leaf],
        tree: &Tree,
    ) -> Vec<Vec<u8>> {
        let interior: usize = tree.nodes.iter().map(Vec::len).sum();
        let mut blocks = Vec::with_capacity(1 + interior + leaves.len());
        // The keys and block numbers of each level, bottom (leaves) first.
        let first_leaf = 1 + interior;
        let mut keys: Vec<u32> = leaves.iter().map(|l| l.key).collect();
        let mut numbers: Vec<u32> = (0..leaves.len()).map(|i| (first_leaf + i) as u32).collect();
        let mut next_block = first_leaf;
        let mut levels: Vec<Vec<Vec<u8>>> = Vec::with_capacity(tree.nodes.len());
        for level in tree.nodes.iter().rev() {
            next_block -= level.len();
            let mut made = Vec::with_capacity(level.len());
            let mut level_keys = Vec::with_capacity(level.len());
            for range in level {
                tick();
                let mut block = vec![0u8; self.bs];
                // A fake empty entry spanning the block hides the index from linear readers.
                put_u16(
                    &mut block,
                    dirent::REC_LEN,
                    rec_len_to_disk(self.bs, self.bs),
                );
                self.put_index(
                    &mut block,
                    dx::NODE_ENTRIES,
                    &keys[range.clone()],
                    &numbers[range.clone()],
                );
                made.push(block);
                level_keys.push(keys[range.start]);
            }
            numbers = (next_block..next_block + level.len())
                .map(|n| n as u32)
                .collect();
            keys = level_keys;
            levels.push(made);
        }
        let mut root = vec![0u8; self.bs];
        let dotdot = dirent::DOT_REC_LEN;
        self.dots(&mut root, parent);
        let dotdot_len = rec_len_to_disk(self.bs - dotdot, self.bs);
        put_u16(&mut root, dotdot + dirent::REC_LEN, dotdot_len);
        // dx_root_info: reserved word, hash version as stored (the signedness is the
        // superblock's), its own length, the interior levels, flags.
        root[dx::ROOT_INFO_HASH_VERSION] = if self.p.hash_version >= version::LEGACY_UNSIGNED {
            self.p.hash_version - version::UNSIGNED_DELTA
        } else {
            self.p.hash_version
        };
        root[dx::ROOT_INFO_LENGTH] = dx::ROOT_INFO_LEN;
        root[dx::ROOT_INFO_LEVELS] = tree.nodes.len() as u8;
        self.put_index(&mut root, dx::ROOT_ENTRIES, &keys, &numbers);
        blocks.push(root);
        blocks.extend(levels.into_iter().rev().flatten());
        for leaf in leaves {
            let mut block = vec![0u8; self.bs];
            let mut at = 0;
            let mut last = 0;
            for &(_, i) in &order[leaf.range.clone()] {
                last = at;
                at += self.put(&mut block, at, &entries[i]);
            }
            self.close_leaf(&mut block, last);
            blocks.push(block);
        }
        blocks
    }

    /// Write an index (count/limit header, then hash/block pairs, the first pair's hash
    /// replaced by the header) at `start`, and its dx_tail checksum.
    fn put_index(&self, block: &mut [u8], start: usize, keys: &[u32], numbers: &[u32]) {
        let limit = self.dx_limit(start);
        put_u16(block, start + dx::LIMIT, limit as u16);
        put_u16(block, start + dx::COUNT, keys.len() as u16);
        for (i, (&key, &number)) in keys.iter().zip(numbers).enumerate() {
            let at = start + dx::ENTRY_SIZE * i;
            if i > 0 {
                put_u32(block, at, key);
            }
            put_u32(block, at + 4, number);
        }
        if let Some(seed) = self.inode_seed {
            csum::set_dx_node(seed, block, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csum::crc32c_le;
    use crate::dir::{parse_entries, DirEntry};
    use crate::{EntryKind, Ino};

    fn ino(n: u32) -> Ino {
        Ino::new(n).unwrap()
    }

    /// The directory the tests build, and its parent.
    const D: Option<Ino> = Ino::new(12);
    const P: Option<Ino> = Ino::new(2);

    fn build(entries: &[DirEntry], p: &DirParams) -> Result<DirBlocks> {
        build_dir_blocks(D.unwrap(), P.unwrap(), entries, p)
    }

    fn file(name: &[u8], n: u32) -> DirEntry {
        DirEntry::new(name, ino(n), EntryKind::File)
    }
    use crate::le::{u16_at, u32_at, u8_at};

    fn params(block_size: u32, csum: bool) -> DirParams {
        DirParams {
            block_size,
            csum_seed: csum.then_some(0x1234_5678),
            ino: ino(12),
            generation: 0xdead_beef,
            hash_version: version::HALF_MD4_UNSIGNED,
            hash_seed: [1, 2, 3, 4],
            indexed: true,
            large_dir: false,
            filetype: true,
        }
    }

    fn named(n: usize, len: impl Fn(usize) -> usize) -> Vec<DirEntry> {
        (0..n)
            .map(|i| {
                let mut name = format!("{i}-").into_bytes();
                name.resize(len(i).max(name.len()), b'x' + (i % 3) as u8);
                file(&name, 100 + i as u32)
            })
            .collect()
    }

    fn rec(b: &[u8], at: usize) -> usize {
        let raw = u16_at(b, at + 4);
        if b.len() < 65536 {
            usize::from(raw)
        } else if raw == 0xffff {
            65536
        } else {
            usize::from(raw & 0xfffc) | (usize::from(raw & 3) << 16)
        }
    }

    /// A leaf's entries, after checking its record chain and checksum tail.
    fn leaf(b: &[u8], p: &DirParams) -> Vec<DirEntry> {
        let bs = b.len();
        let room = if p.csum_seed.is_some() { bs - 12 } else { bs };
        if let Some(seed) = p.csum_seed {
            assert_eq!(u32_at(b, room), 0);
            assert_eq!((u16_at(b, room + 4), u8_at(b, room + 7)), (12, 0xde));
            let mut c = crc32c_le(seed, &p.ino.get().to_le_bytes());
            c = crc32c_le(c, &p.generation.to_le_bytes());
            assert_eq!(crc32c_le(c, &b[..room]), u32_at(b, room + 8));
        }
        let mut out = Vec::new();
        parse_entries(&b[..room], bs, p.filetype, &mut out).unwrap();
        out
    }

    fn dx_csum_ok(b: &[u8], start: usize, p: &DirParams) {
        let Some(seed) = p.csum_seed else { return };
        let limit = usize::from(u16_at(b, start));
        let count = usize::from(u16_at(b, start + 2));
        let tail = start + 8 * limit;
        assert!(tail + 8 <= b.len());
        let mut c = crc32c_le(seed, &p.ino.get().to_le_bytes());
        c = crc32c_le(c, &p.generation.to_le_bytes());
        c = crc32c_le(c, &b[..start + 8 * count]);
        c = crc32c_le(c, &[0; 8]);
        assert_eq!(c, u32_at(b, tail + 4));
    }

    /// What a walk of the index needs and collects.
    struct Walk<'a> {
        blocks: &'a [Vec<u8>],
        p: &'a DirParams,
        seen: Vec<bool>,
        /// (leaf block, low key, high key) for every leaf.
        leaves: Vec<(usize, u32, u64)>,
    }

    impl Walk<'_> {
        /// Walk the index at `start` of block `b`, whose keys lie in `lo..hi`.
        fn node(&mut self, b: usize, start: usize, depth: u8, lo: u32, hi: u64) {
            let blk = &self.blocks[b];
            dx_csum_ok(blk, start, self.p);
            let count = usize::from(u16_at(blk, start + 2));
            assert!(count >= 1 && count <= usize::from(u16_at(blk, start)));
            for i in 0..count {
                let key = if i == 0 {
                    lo
                } else {
                    u32_at(blk, start + 8 * i)
                };
                let next = if i + 1 < count {
                    u64::from(u32_at(blk, start + 8 * (i + 1)))
                } else {
                    hi
                };
                assert!(u64::from(key) < next, "keys increase");
                let child = u32_at(blk, start + 8 * i + 4) as usize;
                assert!(!self.seen[child], "block {child} referenced twice");
                self.seen[child] = true;
                if depth == 0 {
                    self.leaves.push((child, key, next));
                } else {
                    let c = &self.blocks[child];
                    assert_eq!((u32_at(c, 0), rec(c, 0)), (0, c.len()));
                    self.node(child, 8, depth - 1, key, next);
                }
            }
        }
    }

    /// Check every layout rule, and that the names and inodes are exactly `.`, `..` and
    /// `entries`. Returns the number of interior levels (None when linear).
    fn check(d: &DirBlocks, entries: &[DirEntry], p: &DirParams) -> Option<u8> {
        let bs = p.block_size as usize;
        assert!(d.blocks.iter().all(|b| b.len() == bs));
        let mut got: Vec<DirEntry> = Vec::new();
        let levels = if d.indexed {
            let root = &d.blocks[0];
            assert_eq!(
                (u32_at(root, 0), rec(root, 0), &root[8..10]),
                (p.ino.get(), 12, &b".\0"[..])
            );
            assert_eq!(rec(root, 12), bs - 12);
            assert_eq!(
                (u32_at(root, 24), root[28], root[29], root[31]),
                (0, p.hash_version % 3, 8, 0)
            );
            let depth = root[30];
            assert!(depth <= if p.large_dir { 2 } else { 1 });
            let mut w = Walk {
                blocks: &d.blocks,
                p,
                seen: vec![false; d.blocks.len()],
                leaves: Vec::new(),
            };
            w.seen[0] = true;
            w.node(0, 32, depth, 0, 1 << 32);
            assert!(w.seen.iter().all(|&s| s), "every block is in the tree");
            for (b, lo, hi) in w.leaves {
                for e in leaf(&d.blocks[b], p) {
                    let h = dirhash(p.hash_version, &p.hash_seed, &e.name)
                        .unwrap()
                        .major;
                    // In range: from the key (continuation bit aside) up to the next key,
                    // which it may equal only when the next leaf continues its run.
                    assert!(h >= lo & !1, "hash {h:x} below leaf {b}'s key {lo:x}");
                    assert!(
                        u64::from(h) < hi & !1 || (u64::from(h) == hi & !1 && hi & 1 == 1),
                        "hash {h:x} of leaf {b} reaches {hi:x}"
                    );
                    got.push(e);
                }
            }
            got.sort();
            Some(depth)
        } else {
            for b in &d.blocks {
                got.extend(leaf(b, p));
            }
            let kind = p.filetype.then_some(EntryKind::Directory);
            assert_eq!(
                (&got[0].name[..], got[0].ino, got[0].kind),
                (&b"."[..], p.ino, kind)
            );
            assert_eq!(got[1].name, b"..");
            got.drain(..2);
            None
        };
        let mut want: Vec<_> = entries
            .iter()
            .map(|e| DirEntry {
                kind: e.kind.filter(|_| p.filetype),
                ..e.clone()
            })
            .collect();
        if d.indexed {
            want.sort();
        }
        assert!(got == want, "names differ");
        levels
    }

    #[test]
    fn small_directories_are_one_linear_block() {
        for csum in [false, true] {
            let p = params(4096, csum);
            for n in [0, 1, 50] {
                let e = named(n, |_| 20);
                let d = build(&e, &p).unwrap();
                assert_eq!((d.blocks.len(), d.indexed), (1, false));
                assert_eq!(check(&d, &e, &p), None);
            }
        }
    }

    #[test]
    fn a_full_block_stays_linear_and_one_more_entry_makes_a_tree() {
        for csum in [false, true] {
            let p = params(1024, csum);
            let room = if csum { 1012 } else { 1024 };
            // 24 bytes of dots, 20-byte records (12-byte names), then one record of 20 to
            // 36 bytes that ends exactly at the end of the room.
            let fit = (room - 24) / 20 - 1;
            let mut e = named(fit, |_| 12);
            let last = room - 24 - 20 * fit;
            e.push(file(&vec![b'z'; last - 8], 7));
            let d = build(&e, &p).unwrap();
            assert_eq!((d.blocks.len(), d.indexed), (1, false));
            check(&d, &e, &p);
            e.push(file(b"one-more", 8));
            let d = build(&e, &p).unwrap();
            assert!(d.indexed);
            assert_eq!(check(&d, &e, &p), Some(0));
        }
    }

    #[test]
    fn trees_of_one_and_two_levels_in_every_geometry() {
        for bs in [1024, 2048, 4096, 65536] {
            for csum in [false, true] {
                for filetype in [true, false] {
                    let p = DirParams {
                        filetype,
                        ..params(bs, csum)
                    };
                    let sizes: &[usize] = if bs == 1024 { &[3000, 20_000] } else { &[3000] };
                    for &n in sizes {
                        let e = named(n, |i| 1 + i % 255);
                        let d = build(&e, &p).unwrap();
                        let depth = check(&d, &e, &p).unwrap();
                        if bs == 1024 && n == 20_000 {
                            assert_eq!(depth, 1);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn three_levels_only_with_large_dir() {
        // 1 KiB blocks hold three 255-byte names a leaf, and two levels index at most
        // 124 x 127 leaves: 50,000 such names need a third level.
        let p = params(1024, false);
        let e = named(50_000, |_| 255);
        let err = build(&e, &p).unwrap_err();
        assert!(err.to_string().contains("large_dir"), "{err}");
        let p = DirParams {
            large_dir: true,
            ..p
        };
        let d = build(&e, &p).unwrap();
        assert_eq!(check(&d, &e, &p), Some(2));
    }

    #[test]
    fn hash_versions_are_stored_without_their_signedness() {
        for v in 0..6 {
            let p = DirParams {
                hash_version: v,
                ..params(1024, true)
            };
            let e = named(200, |_| 30);
            let d = build(&e, &p).unwrap();
            assert_eq!(d.blocks[0][28], v % 3);
            check(&d, &e, &p);
        }
    }

    fn leaves_for(majors: &[u32], name_len: usize, p: &DirParams) -> Vec<Leaf> {
        let entries: Vec<_> = (0..majors.len())
            .map(|i| file(&vec![b'a'; name_len], i as u32 + 1))
            .collect();
        let order: Vec<_> = majors
            .iter()
            .enumerate()
            .map(|(i, &major)| (DirHash { major, minor: 0 }, i))
            .collect();
        Builder::new(ino(12), p).pack_leaves(&entries, &order)
    }

    #[test]
    fn a_hash_run_longer_than_a_leaf_continues_with_the_collision_bit() {
        // 255-byte names: three a 1 KiB leaf. Ten names of one hash need four leaves.
        let p = params(1024, true);
        let mut majors = vec![0x10];
        majors.extend([0x20; 10]);
        majors.push(0x30);
        let leaves = leaves_for(&majors, 255, &p);
        let shape: Vec<_> = leaves.iter().map(|l| (l.range.clone(), l.key)).collect();
        assert_eq!(
            shape,
            vec![(0..3, 0), (3..6, 0x21), (6..9, 0x21), (9..12, 0x21)]
        );
    }

    #[test]
    fn a_hash_run_that_fits_a_leaf_is_not_split() {
        // Two names fill two thirds of a leaf; a run of two more would fit only one of
        // them, so it starts the next leaf whole.
        let p = params(1024, true);
        let leaves = leaves_for(&[0x10, 0x18, 0x20, 0x20, 0x30], 255, &p);
        let shape: Vec<_> = leaves.iter().map(|l| (l.range.clone(), l.key)).collect();
        assert_eq!(shape, vec![(0..2, 0), (2..5, 0x20)]);
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let p = params(4096, true);
        let entries = named(5000, |i| 1 + i % 200);
        let first = build(&entries, &p).unwrap();
        assert!(build(&entries, &p).unwrap() == first);
        // Indexed blocks do not depend on the order the names came in.
        let mut reversed = entries.clone();
        reversed.reverse();
        assert!(build(&reversed, &p).unwrap() == first);
    }

    #[test]
    fn without_dir_index_big_directories_are_linear() {
        for csum in [false, true] {
            let p = DirParams {
                indexed: false,
                ..params(1024, csum)
            };
            let e = named(3000, |i| 1 + i % 255);
            let d = build(&e, &p).unwrap();
            assert!(!d.indexed && d.blocks.len() > 100);
            assert_eq!(check(&d, &e, &p), None);
        }
    }

    /// Work per entry for `n` entries, with names of 8 to 40 bytes.
    fn work_per_entry(n: usize, p: &DirParams) -> f64 {
        let entries = named(n, |i| 8 + i % 33);
        WORK.with(|w| w.set(0));
        let d = build(&entries, p).unwrap();
        assert!(d.indexed);
        WORK.with(std::cell::Cell::get) as f64 / n as f64
    }

    #[test]
    fn work_grows_linearly_bar_one_sort() {
        // From 12,500 to 50,000 entries, n log n work per entry grows by
        // log(50000) / log(12500), about 1.15; anything quadratic by 4.
        for p in [params(4096, true), params(1024, false)] {
            let small = work_per_entry(12_500, &p);
            let big = work_per_entry(50_000, &p);
            assert!(big / small < 1.3, "{small:.1} -> {big:.1} steps per entry");
            // The sort makes about log2(50,000) = 16 comparisons per entry; the rest is a
            // few steps per entry (measured: 21 in all).
            assert!(big < 16.0 + 10.0, "{big:.1} steps per entry");
        }
    }

    #[test]
    fn impossible_inputs_are_errors() {
        let p = params(4096, true);
        let one = |name: &[u8], n: u32| vec![file(name, n)];
        for (e, why) in [
            (one(&[b'a'; 256], 5), "over 255"),
            (one(b"", 5), "empty"),
            (one(b"a/b", 5), "'/'"),
            (one(b"a\0b", 5), "NUL"),
            (one(b".", 5), "'.'"),
            (one(b"..", 5), "'.'"),
            (vec![file(b"x", 5), file(b"x", 6)], "twice"),
        ] {
            let err = build(&e, &p).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        // A name given twice in a directory big enough to be indexed.
        let mut e = named(3000, |_| 40);
        e.push(e[1234].clone());
        let err = build(&e, &p).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        for v in [version::SIPHASH, 7, 255] {
            let q = DirParams {
                hash_version: v,
                ..params(4096, true)
            };
            let e = named(3000, |_| 40);
            assert!(build(&e, &q).is_err());
        }
        for bs in [0, 512, 3000, 131_072] {
            assert!(build(&[], &params(bs, true)).is_err());
        }
        assert!(build_dir_blocks(ino(13), ino(2), &[], &p).is_err());
    }
}
