//! Mapping a file's logical blocks to the physical ones: extent trees of any depth (the
//! `extent` feature) or the classic block map of ext2/ext3 (12 direct pointers, then one
//! single, one double and one triple indirect block).

use super::error::{WResult, WriteError};
use super::group::Groups;
use crate::csum;
use crate::format::{blockmap, extent, inode::BLOCK_LEN, InodeFlags};
use crate::le::{put_u16, put_u32, put_u48};

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

/// One 12-byte entry: a leaf (logical, len, physical) or an index (logical, child).
fn entry(buf: &mut [u8], at: usize, logical: u32, leaf: Option<u16>, physical: u64) {
    let start = extent::HEADER_SIZE + at * extent::ENTRY_SIZE;
    let e = &mut buf[start..start + extent::ENTRY_SIZE];
    put_u32(e, extent::FIRST_BLOCK, logical);
    if let Some(len) = leaf {
        put_u16(e, extent::LEAF_LEN, len);
        put_u48(e, extent::LEAF_START_LO, extent::LEAF_START_HI, physical);
    } else {
        put_u48(e, extent::INDEX_LEAF_LO, extent::INDEX_LEAF_HI, physical);
    }
}

fn too_large() -> WriteError {
    WriteError::EntryRefused {
        name: Vec::new(),
        why: "file too large for this image".into(),
    }
}

/// Build an extent tree over `pieces` (sorted, not overlapping), allocating its blocks.
pub(crate) fn extent_tree(
    g: &mut Groups,
    ino: u32,
    generation: u32,
    pieces: &[Piece],
) -> WResult<Mapping> {
    // Split into extents of at most MAX_LEN blocks; logical numbers are 32 bits.
    let mut extents: Vec<(u32, u16, u64)> = Vec::new();
    for p in pieces {
        let mut done = 0;
        while done < p.len {
            let n = (p.len - done).min(MAX_LEN);
            let logical = u32::try_from(p.logical + done).map_err(|_| too_large())?;
            u32::try_from(p.logical + done + n - 1).map_err(|_| too_large())?;
            extents.push((logical, n as u16, p.physical + done));
            done += n;
        }
    }
    let bs = g.sb.block_size as usize;
    let per_block = (bs - extent::HEADER_SIZE) / extent::ENTRY_SIZE;
    let seed =
        g.sb.metadata_csum()
            .then(|| csum::inode_seed(g.sb.csum_seed, ino, generation));
    let mut i_block = [0u8; BLOCK_LEN];
    if extents.len() <= extent::ROOT_MAX {
        header(&mut i_block, extents.len(), extent::ROOT_MAX, 0);
        for (i, &(l, n, p)) in extents.iter().enumerate() {
            entry(&mut i_block, i, l, Some(n), p);
        }
        return Ok(Mapping {
            i_block,
            flags: InodeFlags::EXTENTS,
            tree_blocks: 0,
        });
    }
    // Level by level from the leaves: (first logical block, block number) of each node.
    let mut tree_blocks = 0;
    let mut depth = 0u16;
    let mut level: Vec<(u32, u64)> = Vec::new();
    let mut buf = vec![0u8; bs];
    for chunk in extents.chunks(per_block) {
        buf.fill(0);
        header(&mut buf, chunk.len(), per_block, 0);
        for (i, &(l, n, p)) in chunk.iter().enumerate() {
            entry(&mut buf, i, l, Some(n), p);
        }
        let block = write_node(g, &mut buf, seed)?;
        tree_blocks += 1;
        level.push((chunk[0].0, block));
    }
    while level.len() > extent::ROOT_MAX {
        depth += 1;
        let mut up = Vec::new();
        for chunk in level.chunks(per_block) {
            buf.fill(0);
            header(&mut buf, chunk.len(), per_block, depth);
            for (i, &(l, child)) in chunk.iter().enumerate() {
                entry(&mut buf, i, l, None, child);
            }
            let block = write_node(g, &mut buf, seed)?;
            tree_blocks += 1;
            up.push((chunk[0].0, block));
        }
        level = up;
    }
    header(&mut i_block, level.len(), extent::ROOT_MAX, depth + 1);
    for (i, &(l, child)) in level.iter().enumerate() {
        entry(&mut i_block, i, l, None, child);
    }
    Ok(Mapping {
        i_block,
        flags: InodeFlags::EXTENTS,
        tree_blocks,
    })
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
