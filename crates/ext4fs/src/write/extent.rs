//! Mapping a file's logical blocks to the physical ones: extent trees of any depth (the
//! `extent` feature) or the classic block map of ext2/ext3 (12 direct pointers, then one
//! single, one double and one triple indirect block).

use super::error::{WResult, WriteError};
use super::group::Groups;
use crate::csum;
use crate::format::{blockmap, extent, inode::BLOCK_LEN, InodeFlags};
use crate::le::{put_u16, put_u32, put_u48};
use crate::Ino;

/// One contiguous piece of a file: `len` blocks from `logical`, stored at `physical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub logical: u64,
    pub physical: u64,
    pub len: u64,
}

/// The inode's `i_block`, its flags, and the mapping blocks allocated (counted in
/// `i_blocks`).
pub(crate) struct Mapping {
    pub i_block: [u8; BLOCK_LEN],
    pub flags: InodeFlags,
    pub tree_blocks: u64,
}

/// The longest initialized extent (longer lengths mark unwritten ones).
const MAX_LEN: u64 = extent::INIT_MAX_LEN as u64;

fn header(buf: &mut [u8], entries: usize, max: usize, depth: u16) {
    put_u16(buf, extent::HEADER_MAGIC, extent::MAGIC);
    put_u16(buf, extent::HEADER_ENTRIES, entries as u16);
    put_u16(buf, extent::HEADER_MAX, max as u16);
    put_u16(buf, extent::HEADER_DEPTH, depth);
}

/// One 12-byte entry of a tree block or of the root.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Leaf(Extent),
    Index(Node),
}

impl Entry {
    fn logical(self) -> u32 {
        match self {
            Entry::Leaf(e) => e.logical,
            Entry::Index(n) => n.logical,
        }
    }
}

/// Write entry number `at` of the node in `buf`.
fn entry(buf: &mut [u8], at: usize, e: Entry) {
    let start = extent::HEADER_SIZE + at * extent::ENTRY_SIZE;
    let b = &mut buf[start..start + extent::ENTRY_SIZE];
    put_u32(b, extent::FIRST_BLOCK, e.logical());
    match e {
        Entry::Leaf(e) => {
            put_u16(b, extent::LEAF_LEN, e.len);
            put_u48(b, extent::LEAF_START_LO, extent::LEAF_START_HI, e.physical);
        }
        Entry::Index(n) => put_u48(b, extent::INDEX_LEAF_LO, extent::INDEX_LEAF_HI, n.block),
    }
}

/// Write a node's header and entries into `buf` (the root's 60 bytes or a tree block).
fn fill_node(buf: &mut [u8], max: usize, depth: u16, entries: &[Entry]) {
    header(buf, entries.len(), max, depth);
    for (i, &e) in entries.iter().enumerate() {
        entry(buf, i, e);
    }
}

fn too_large() -> WriteError {
    WriteError::EntryRefused {
        name: Vec::new(),
        why: "file too large for this image".into(),
    }
}

/// One leaf entry: `len` blocks (at most [`MAX_LEN`]) from `logical`, at `physical`.
#[derive(Debug, Clone, Copy)]
struct Extent {
    logical: u32,
    len: u16,
    physical: u64,
}

/// One entry of an index level: the first logical block a tree block covers, and where
/// that block is.
#[derive(Debug, Clone, Copy)]
struct Node {
    logical: u32,
    block: u64,
}

/// Split `pieces` into extents of at most [`MAX_LEN`] blocks; logical block numbers are
/// 32 bits.
fn extents(pieces: &[Piece]) -> WResult<Vec<Extent>> {
    let mut out = Vec::new();
    for p in pieces {
        let mut done = 0;
        while done < p.len {
            let n = (p.len - done).min(MAX_LEN);
            let logical = u32::try_from(p.logical + done).map_err(|_| too_large())?;
            u32::try_from(p.logical + done + n - 1).map_err(|_| too_large())?;
            out.push(Extent {
                logical,
                len: n as u16,
                physical: p.physical + done,
            });
            done += n;
        }
    }
    Ok(out)
}

/// Build an extent tree over `pieces` (sorted, not overlapping), allocating its blocks.
///
/// Up to four extents sit in the inode. Beyond that the tree is built level by level from
/// the leaves, and every tree block is filled with one entry fewer than it holds, as
/// e2fsprogs leaves the blocks of a file it writes from start to end (when appending to a
/// full block it moves only the last entry to the new one). A later change to the file
/// that needs one more entry in a block (a hole punched in an extent splits it) then fits
/// in place; a full block would be split in two half-empty ones, which e2fsck reports as
/// a tree that "could be narrower". The root in the inode is filled (four entries), as
/// e2fsprogs fills it.
pub(crate) fn extent_tree(
    g: &mut Groups,
    ino: Ino,
    generation: u32,
    pieces: &[Piece],
) -> WResult<Mapping> {
    let extents = extents(pieces)?;
    let mut i_block = [0u8; BLOCK_LEN];
    let leaves: Vec<Entry> = extents.into_iter().map(Entry::Leaf).collect();
    if leaves.len() <= extent::ROOT_MAX {
        fill_node(&mut i_block, extent::ROOT_MAX, 0, &leaves);
        return Ok(Mapping {
            i_block,
            flags: InodeFlags::EXTENTS,
            tree_blocks: 0,
        });
    }
    let mut tree = TreeWriter::new(g, ino, generation);
    let mut level = leaves;
    let mut depth = 0u16;
    while level.len() > extent::ROOT_MAX {
        let mut up = Vec::with_capacity(level.len().div_ceil(tree.fill));
        for chunk in level.chunks(tree.fill) {
            up.push(Entry::Index(tree.node(depth, chunk)?));
        }
        level = up;
        depth += 1;
    }
    fill_node(&mut i_block, extent::ROOT_MAX, depth, &level);
    Ok(Mapping {
        i_block,
        flags: InodeFlags::EXTENTS,
        tree_blocks: tree.blocks,
    })
}

/// Writes the blocks of one extent tree.
struct TreeWriter<'g> {
    g: &'g mut Groups,
    /// Entries a block holds (`eh_max`).
    per_block: usize,
    /// Entries written to a block: one fewer than it holds.
    fill: usize,
    /// The inode's checksum seed, with metadata_csum.
    seed: Option<u32>,
    buf: Vec<u8>,
    /// Tree blocks allocated (counted in `i_blocks`).
    blocks: u64,
}

impl<'g> TreeWriter<'g> {
    fn new(g: &'g mut Groups, ino: Ino, generation: u32) -> TreeWriter<'g> {
        let bs = g.sb.block_size as usize;
        let per_block = (bs - extent::HEADER_SIZE) / extent::ENTRY_SIZE;
        let seed =
            g.sb.metadata_csum()
                .then(|| csum::inode_seed(g.sb.csum_seed, ino.get(), generation));
        TreeWriter {
            g,
            per_block,
            fill: per_block - 1,
            seed,
            buf: vec![0u8; bs],
            blocks: 0,
        }
    }

    /// Write one tree block at `depth` (0: a leaf) holding `entries` (at least one);
    /// returns the entry that points at it.
    fn node(&mut self, depth: u16, entries: &[Entry]) -> WResult<Node> {
        self.buf.fill(0);
        fill_node(&mut self.buf, self.per_block, depth, entries);
        let block = write_node(self.g, &mut self.buf, self.seed)?;
        self.blocks += 1;
        Ok(Node {
            logical: entries.first().map_or(0, |e| e.logical()),
            block,
        })
    }
}

fn write_node(g: &mut Groups, buf: &mut [u8], seed: Option<u32>) -> WResult<u64> {
    let (block, _) = g.alloc_run(1)?;
    if let Some(seed) = seed {
        csum::set_extent_block(seed, buf);
    }
    g.write_block(block, buf)?;
    Ok(block)
}

/// Build a classic block map over `pieces`, allocating its indirect blocks.
pub(crate) fn block_map(g: &mut Groups, pieces: &[Piece]) -> WResult<Mapping> {
    let per = u64::from(g.sb.block_size) / blockmap::POINTER_SIZE as u64;
    // Logical -> physical, one u32 per mapped block, in order.
    let mut map: Vec<(u64, u32)> = Vec::new();
    for p in pieces {
        for i in 0..p.len {
            let phys = u32::try_from(p.physical + i).map_err(|_| too_large())?;
            map.push((p.logical + i, phys));
        }
    }
    let mut i_block = [0u8; BLOCK_LEN];
    let mut tree_blocks = 0;
    let mut start = 0usize;
    for (logical, phys) in &map {
        if *logical < blockmap::DIRECT as u64 {
            put_u32(
                &mut i_block,
                *logical as usize * blockmap::POINTER_SIZE,
                *phys,
            );
            start += 1;
        }
    }
    let mut base = blockmap::DIRECT as u64;
    let mut span = per;
    for slot in [blockmap::SINGLE, blockmap::DOUBLE, blockmap::TRIPLE] {
        let end = base.saturating_add(span);
        let upto = start + map[start..].partition_point(|&(l, _)| l < end);
        if upto > start {
            let block = indirect(g, &map[start..upto], base, span, per, &mut tree_blocks)?;
            put_u32(&mut i_block, slot * blockmap::POINTER_SIZE, block);
        }
        start = upto;
        base = end;
        span = span.saturating_mul(per);
    }
    if start < map.len() {
        return Err(too_large());
    }
    Ok(Mapping {
        i_block,
        flags: InodeFlags::empty(),
        tree_blocks,
    })
}

/// One indirect block covering `span` logical blocks from `base`; `map` is what falls in it.
fn indirect(
    g: &mut Groups,
    map: &[(u64, u32)],
    base: u64,
    span: u64,
    per: u64,
    count: &mut u64,
) -> WResult<u32> {
    let child_span = span / per;
    let mut buf = vec![0u8; g.sb.block_size as usize];
    let mut rest = map;
    while let Some(&(first, _)) = rest.first() {
        let slot = (first - base) / child_span;
        let slot_end = base + (slot + 1) * child_span;
        let n = rest.partition_point(|&(l, _)| l < slot_end);
        let value = if child_span == 1 {
            rest[0].1
        } else {
            indirect(
                g,
                &rest[..n],
                base + slot * child_span,
                child_span,
                per,
                count,
            )?
        };
        put_u32(&mut buf, slot as usize * blockmap::POINTER_SIZE, value);
        rest = &rest[n..];
    }
    let (block, _) = g.alloc_run(1)?;
    *count += 1;
    g.write_block(block, &buf)?;
    u32::try_from(block).map_err(|_| too_large())
}
