//! Mapping a file's logical blocks to the physical ones: extent trees of any depth (the
//! `extent` feature) or the classic block map of ext2/ext3 (12 direct pointers, then one
//! single, one double and one triple indirect block).

use super::error::{WResult, WriteError};
use super::group::Groups;
use super::inode::{inode_seed, EXTENTS_FL};
use crate::crc::crc32c_le;

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
    pub i_block: [u8; 60],
    pub flags: u32,
    pub tree_blocks: u64,
}

const MAGIC: u16 = 0xf30a;
/// The longest initialized extent (the top bit of `ee_len` marks unwritten ones).
const MAX_LEN: u64 = 32768;

fn header(buf: &mut [u8], entries: usize, max: usize, depth: u16) {
    buf[0..2].copy_from_slice(&MAGIC.to_le_bytes());
    buf[2..4].copy_from_slice(&(entries as u16).to_le_bytes());
    buf[4..6].copy_from_slice(&(max as u16).to_le_bytes());
    buf[6..8].copy_from_slice(&depth.to_le_bytes());
}

/// One 12-byte entry: a leaf (logical, len, physical) or an index (logical, child).
fn entry(buf: &mut [u8], at: usize, logical: u32, leaf: Option<u16>, physical: u64) {
    let e = &mut buf[12 + at * 12..24 + at * 12];
    e[0..4].copy_from_slice(&logical.to_le_bytes());
    if let Some(len) = leaf {
        e[4..6].copy_from_slice(&len.to_le_bytes());
        e[6..8].copy_from_slice(&((physical >> 32) as u16).to_le_bytes());
        e[8..12].copy_from_slice(&(physical as u32).to_le_bytes());
    } else {
        e[4..8].copy_from_slice(&(physical as u32).to_le_bytes());
        e[8..10].copy_from_slice(&((physical >> 32) as u16).to_le_bytes());
    }
}

fn too_large() -> WriteError {
    WriteError::EntryRefused {
        name: Vec::new(),
        why: "file too large for this image".into(),
    }
}

/// Build an extent tree over `pieces` (sorted, not overlapping), allocating its blocks.
pub(crate) fn extent_tree(g: &mut Groups, ino: u32, pieces: &[Piece]) -> WResult<Mapping> {
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
    let per_block = (bs - 12) / 12;
    let seed =
        g.sb.metadata_csum()
            .then(|| inode_seed(g.sb.csum_seed, ino, 0));
    let mut i_block = [0u8; 60];
    if extents.len() <= 4 {
        header(&mut i_block, extents.len(), 4, 0);
        for (i, &(l, n, p)) in extents.iter().enumerate() {
            entry(&mut i_block, i, l, Some(n), p);
        }
        return Ok(Mapping {
            i_block,
            flags: EXTENTS_FL,
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
        let block = write_node(g, &mut buf, per_block, seed)?;
        tree_blocks += 1;
        level.push((chunk[0].0, block));
    }
    while level.len() > 4 {
        depth += 1;
        let mut up = Vec::new();
        for chunk in level.chunks(per_block) {
            buf.fill(0);
            header(&mut buf, chunk.len(), per_block, depth);
            for (i, &(l, child)) in chunk.iter().enumerate() {
                entry(&mut buf, i, l, None, child);
            }
            let block = write_node(g, &mut buf, per_block, seed)?;
            tree_blocks += 1;
            up.push((chunk[0].0, block));
        }
        level = up;
    }
    header(&mut i_block, level.len(), 4, depth + 1);
    for (i, &(l, child)) in level.iter().enumerate() {
        entry(&mut i_block, i, l, None, child);
    }
    Ok(Mapping {
        i_block,
        flags: EXTENTS_FL,
        tree_blocks,
    })
}

fn write_node(g: &mut Groups, buf: &mut [u8], per_block: usize, seed: Option<u32>) -> WResult<u64> {
    let (block, _) = g.alloc_run(1)?;
    if let Some(seed) = seed {
        let tail = 12 + 12 * per_block;
        let c = crc32c_le(seed, &buf[..tail]);
        buf[tail..tail + 4].copy_from_slice(&c.to_le_bytes());
    }
    g.write_block(block, buf)?;
    Ok(block)
}

/// Build a classic block map over `pieces`, allocating its indirect blocks.
pub(crate) fn block_map(g: &mut Groups, pieces: &[Piece]) -> WResult<Mapping> {
    let per = u64::from(g.sb.block_size / 4);
    // Logical -> physical, one u32 per mapped block, in order.
    let mut map: Vec<(u64, u32)> = Vec::new();
    for p in pieces {
        for i in 0..p.len {
            let phys = u32::try_from(p.physical + i).map_err(|_| too_large())?;
            map.push((p.logical + i, phys));
        }
    }
    let mut i_block = [0u8; 60];
    let mut tree_blocks = 0;
    let mut start = 0usize;
    for (logical, phys) in &map {
        if *logical < 12 {
            let at = *logical as usize * 4;
            i_block[at..at + 4].copy_from_slice(&phys.to_le_bytes());
            start += 1;
        }
    }
    let mut base = 12u64;
    let mut span = per;
    for slot in 12..15 {
        let end = base.saturating_add(span);
        let upto = start + map[start..].partition_point(|&(l, _)| l < end);
        if upto > start {
            let block = indirect(g, &map[start..upto], base, span, per, &mut tree_blocks)?;
            i_block[slot * 4..slot * 4 + 4].copy_from_slice(&block.to_le_bytes());
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
        flags: 0,
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
        let at = slot as usize * 4;
        buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
        rest = &rest[n..];
    }
    let (block, _) = g.alloc_run(1)?;
    *count += 1;
    g.write_block(block, &buf)?;
    u32::try_from(block).map_err(|_| too_large())
}
