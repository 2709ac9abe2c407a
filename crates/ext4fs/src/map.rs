//! Where a file's bytes are: the extent tree (e2fsprogs lib/ext2fs/ext3_extents.h) or the
//! ext2/ext3 block map (12 direct, one single, double and triple indirect pointer), turned
//! into one list of runs with the holes made explicit.

use std::collections::HashSet;

use crate::budget::ENTRY_COST;
use crate::csum;
use crate::error::{Checksummed, Error, Result};
use crate::format::{blockmap, extent, InodeFlags};
use crate::le::{u16_at, u32_at, u48_at};
use crate::Fs;

/// What backs a run of logical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Data at this physical block (the first of the run).
    Data { physical: u64 },
    /// Allocated but unwritten: reads as zeros.
    Unwritten,
    /// Not allocated: reads as zeros and stays a hole.
    Hole,
}

/// A run of logical blocks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First logical block.
    pub logical: u64,
    /// Length in blocks (never 0).
    pub len: u64,
    pub backing: Backing,
}

/// Receives runs in logical order, merging neighbours, rejecting overlaps and making holes
/// explicit, and hands each finished run to a sink (so no list of runs is ever held).
struct Runs<'s> {
    /// The last run, held back while the next one may extend it.
    pending: Option<Run>,
    /// Where the runs handed out so far end.
    at: u64,
    /// Logical blocks of the file (by its size): runs past it are dropped, runs into it cut.
    end: u64,
    next: u64,
    /// Data blocks still allowed: a file cannot hold more than the image has, so a hostile
    /// tree that maps the same blocks over and over stops here.
    budget: u64,
    sink: &'s mut dyn FnMut(Run) -> bool,
    /// The sink asked to stop.
    stopped: bool,
}

impl<'s> Runs<'s> {
    fn new(end: u64, budget: u64, sink: &'s mut dyn FnMut(Run) -> bool) -> Runs<'s> {
        Runs {
            pending: None,
            at: 0,
            end,
            next: 0,
            budget,
            sink,
            stopped: false,
        }
    }

    /// Add a run; `Err` with a reason when it overlaps or precedes what came before.
    fn push(&mut self, logical: u64, len: u64, backing: Backing) -> Result<(), String> {
        if logical < self.next {
            return Err(format!(
                "logical block {logical} mapped twice or out of order"
            ));
        }
        self.next = logical + len;
        if logical >= self.end {
            return Ok(());
        }
        let len = len.min(self.end - logical);
        if matches!(backing, Backing::Data { .. }) {
            if len > self.budget {
                return Err("maps more blocks than the image holds".into());
            }
            self.budget -= len;
        }
        if let Some(last) = self.pending.as_mut() {
            let contiguous = last.logical + last.len == logical;
            let merged = match (last.backing, backing) {
                (Backing::Data { physical: a }, Backing::Data { physical: b }) => {
                    a.checked_add(last.len) == Some(b)
                }
                (Backing::Unwritten, Backing::Unwritten) => true,
                _ => false,
            };
            if contiguous && merged {
                last.len += len;
                return Ok(());
            }
        }
        if let Some(last) = self.pending.take() {
            self.emit(last);
        }
        self.pending = Some(Run {
            logical,
            len,
            backing,
        });
        Ok(())
    }

    fn emit(&mut self, r: Run) {
        if self.stopped {
            return;
        }
        if r.logical > self.at {
            let hole = Run {
                logical: self.at,
                len: r.logical - self.at,
                backing: Backing::Hole,
            };
            if !(self.sink)(hole) {
                self.stopped = true;
                return;
            }
        }
        self.at = r.logical + r.len;
        if !(self.sink)(r) {
            self.stopped = true;
        }
    }

    /// Hand out the last run and the hole up to `end`.
    fn finish(mut self) {
        if let Some(last) = self.pending.take() {
            self.emit(last);
        }
        if self.at < self.end && !self.stopped {
            let hole = Run {
                logical: self.at,
                len: self.end - self.at,
                backing: Backing::Hole,
            };
            (self.sink)(hole);
        }
    }
}

impl Fs {
    /// The runs of a file, directory or slow symlink covering exactly its size (rounded up to
    /// whole blocks), holes included, in logical order.
    pub fn data_map(&self, inode: &crate::Inode) -> Result<Vec<Run>> {
        let mut list = Vec::new();
        self.for_each_run(inode, &mut |r| {
            list.push(r);
            true
        })?;
        Ok(list)
    }

    /// The same runs handed to `sink` one by one as the map is read, without holding them:
    /// memory stays flat whatever the number of extents. `sink` returns false to stop early.
    /// A corrupt map is an error after the runs before the corruption were handed out.
    pub fn for_each_run(
        &self,
        inode: &crate::Inode,
        sink: &mut dyn FnMut(Run) -> bool,
    ) -> Result<()> {
        let bs = u64::from(self.sb.block_size);
        let end = inode.size.div_ceil(bs);
        let mut runs = Runs::new(end, self.image_blocks, sink);
        let mut visited = HashSet::new();
        if inode.has_flag(InodeFlags::EXTENTS) {
            let root = inode.block;
            self.walk_extents(inode, &root, None, &mut visited, &mut runs)?;
        } else {
            let per_block = bs / blockmap::POINTER_SIZE as u64;
            let direct = blockmap::DIRECT as u64;
            let capacity = direct + per_block + per_block * per_block + per_block.pow(3);
            if end > capacity {
                return Err(Error::BadInode {
                    ino: inode.ino,
                    reason: format!("size {} beyond what a block map can address", inode.size),
                });
            }
            for i in 0..blockmap::POINTERS {
                let ptr = u64::from(u32_at(&inode.block, i * blockmap::POINTER_SIZE));
                let (level, start) = match i {
                    blockmap::SINGLE => (1, direct),
                    blockmap::DOUBLE => (2, direct + per_block),
                    blockmap::TRIPLE => (3, direct + per_block + per_block * per_block),
                    _ => (0, i as u64),
                };
                if start >= end {
                    break;
                }
                self.walk_indirect(inode, ptr, level, start, &mut visited, &mut runs)?;
                if runs.stopped {
                    break;
                }
            }
        }
        runs.finish();
        Ok(())
    }

    fn walk_extents(
        &self,
        inode: &crate::Inode,
        node: &[u8],
        parent: Option<(u16, u64)>,
        visited: &mut HashSet<u64>,
        runs: &mut Runs<'_>,
    ) -> Result<()> {
        let ino = inode.ino;
        let bad = |reason: String| extent_error(ino, parent, &reason);
        let (entries, depth) = self.extent_node(ino, node, parent)?;
        let fs_blocks = self.sb.blocks_count;
        for i in 0..entries {
            let at = extent::HEADER_SIZE + i * extent::ENTRY_SIZE;
            let e = &node[at..at + extent::ENTRY_SIZE];
            let logical = u64::from(u32_at(e, extent::FIRST_BLOCK));
            if depth == 0 {
                let (len, backing) = leaf_extent(e, fs_blocks).map_err(&bad)?;
                runs.push(logical, len, backing).map_err(bad)?;
                if runs.stopped {
                    return Ok(());
                }
            } else {
                let child = u48_at(e, extent::INDEX_LEAF_LO, extent::INDEX_LEAF_HI);
                if logical < runs.next && i > 0 {
                    return Err(bad(format!(
                        "index at logical block {logical} out of order"
                    )));
                }
                if logical >= runs.end {
                    break;
                }
                if child == 0 || child >= fs_blocks {
                    return Err(bad(format!("index points at block {child}")));
                }
                if !visited.insert(child) {
                    return Err(bad(format!("extent block {child} used twice")));
                }
                self.claim(ino, child, 1)?;
                let buf = self.extent_block(inode, child)?;
                self.walk_extents(inode, &buf, Some((depth, child)), visited, runs)?;
                if runs.stopped {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Check an extent tree node's header (under `parent`: its depth and block, `None` for
    /// the root in the inode) and charge its entries; returns (entries, depth).
    fn extent_node(
        &self,
        ino: crate::Ino,
        node: &[u8],
        parent: Option<(u16, u64)>,
    ) -> Result<(usize, u16)> {
        let bad = |reason: String| extent_error(ino, parent, &reason);
        if u16_at(node, extent::HEADER_MAGIC) != extent::MAGIC {
            return Err(bad("bad extent header magic".into()));
        }
        let entries = usize::from(u16_at(node, extent::HEADER_ENTRIES));
        let max = usize::from(u16_at(node, extent::HEADER_MAX));
        let depth = u16_at(node, extent::HEADER_DEPTH);
        if entries > max || extent::HEADER_SIZE + max * extent::ENTRY_SIZE > node.len() {
            return Err(bad(format!("{entries} of {max} entries")));
        }
        match parent {
            None if depth > extent::MAX_DEPTH => return Err(bad(format!("depth {depth}"))),
            Some((parent_depth, _)) if depth + 1 != parent_depth => {
                return Err(bad(format!("depth {depth} under depth {parent_depth}")))
            }
            _ => {}
        }
        // Every entry counts, unwritten ones too: they cost the walk as much as the others.
        self.charge(entries as u64 * ENTRY_COST)?;
        Ok((entries, depth))
    }

    /// The physical block behind logical block `logical` of `inode`, reading only the
    /// path of its map that leads there (as the kernel maps one block); `None` for a hole,
    /// an unwritten block or a block past the size.
    pub(crate) fn map_block(&self, inode: &crate::Inode, logical: u64) -> Result<Option<u64>> {
        let bs = u64::from(self.sb.block_size);
        if logical >= inode.size.div_ceil(bs) {
            return Ok(None);
        }
        if inode.has_flag(InodeFlags::EXTENTS) {
            self.map_extent_block(inode, logical)
        } else {
            self.map_indirect_block(inode, logical)
        }
    }

    fn map_extent_block(&self, inode: &crate::Inode, logical: u64) -> Result<Option<u64>> {
        let ino = inode.ino;
        let fs_blocks = self.sb.blocks_count;
        let mut node = inode.block.to_vec();
        let mut parent = None;
        // Each level is one shallower than its parent, so this ends within MAX_DEPTH steps.
        loop {
            let (entries, depth) = self.extent_node(ino, &node, parent)?;
            let bad = |reason: String| extent_error(ino, parent, &reason);
            let entry = |i: usize| &node[extent::HEADER_SIZE + i * extent::ENTRY_SIZE..];
            // The last entry starting at or before `logical`.
            let Some(i) = (0..entries)
                .rev()
                .find(|&i| u64::from(u32_at(entry(i), extent::FIRST_BLOCK)) <= logical)
            else {
                return Ok(None);
            };
            let e = entry(i);
            let first = u64::from(u32_at(e, extent::FIRST_BLOCK));
            if depth == 0 {
                let (len, backing) = leaf_extent(e, fs_blocks).map_err(bad)?;
                return Ok(match backing {
                    Backing::Data { physical } if logical < first + len => {
                        Some(physical + (logical - first))
                    }
                    _ => None,
                });
            }
            let child = u48_at(e, extent::INDEX_LEAF_LO, extent::INDEX_LEAF_HI);
            if child == 0 || child >= fs_blocks {
                return Err(bad(format!("index points at block {child}")));
            }
            self.claim(ino, child, 1)?;
            node = self.extent_block(inode, child)?;
            parent = Some((depth, child));
        }
    }

    fn map_indirect_block(&self, inode: &crate::Inode, logical: u64) -> Result<Option<u64>> {
        let per_block = u64::from(self.sb.block_size) / blockmap::POINTER_SIZE as u64;
        let direct = blockmap::DIRECT as u64;
        // Which pointer of `i_block`, how many levels of indirect blocks below it, and the
        // index among the blocks it maps.
        let (slot, levels, mut index) = if logical < direct {
            (logical as usize, 0, 0)
        } else if logical - direct < per_block {
            (blockmap::SINGLE, 1, logical - direct)
        } else if logical - direct - per_block < per_block * per_block {
            (blockmap::DOUBLE, 2, logical - direct - per_block)
        } else {
            let index = logical - direct - per_block - per_block * per_block;
            if index >= per_block.pow(3) {
                return Ok(None);
            }
            (blockmap::TRIPLE, 3, index)
        };
        let mut ptr = u64::from(u32_at(&inode.block, slot * blockmap::POINTER_SIZE));
        let mut buf = vec![0u8; self.sb.block_size as usize];
        for level in (0..levels).rev() {
            if ptr == 0 {
                return Ok(None);
            }
            if ptr >= self.sb.blocks_count {
                return Err(Error::BadInode {
                    ino: inode.ino,
                    reason: format!("block pointer {ptr} outside the file system"),
                });
            }
            self.claim(inode.ino, ptr, 1)?;
            self.read_block(ptr, &mut buf)?;
            let span = per_block.pow(level);
            let at = (index / span) as usize * blockmap::POINTER_SIZE;
            index %= span;
            ptr = u64::from(u32_at(&buf, at));
        }
        if ptr >= self.sb.blocks_count {
            return Err(Error::BadInode {
                ino: inode.ino,
                reason: format!("block pointer {ptr} outside the file system"),
            });
        }
        Ok((ptr != 0).then_some(ptr))
    }

    /// Read an extent tree block and verify its checksum.
    fn extent_block(&self, inode: &crate::Inode, block: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.read_block(block, &mut buf)?;
        let seed = csum::inode_seed(self.sb.csum_seed, inode.ino.get(), inode.generation);
        if self.sb.metadata_csum() && !csum::extent_block_ok(seed, &buf) {
            return Err(Error::ChecksumMismatch {
                what: Checksummed::ExtentBlock {
                    ino: inode.ino,
                    block,
                },
            });
        }
        Ok(buf)
    }

    fn walk_indirect(
        &self,
        inode: &crate::Inode,
        ptr: u64,
        level: u32,
        start: u64,
        visited: &mut HashSet<u64>,
        runs: &mut Runs<'_>,
    ) -> Result<()> {
        if ptr == 0 || start >= runs.end {
            return Ok(());
        }
        let bad = |reason: String| Error::BadInode {
            ino: inode.ino,
            reason,
        };
        if ptr >= self.sb.blocks_count {
            return Err(bad(format!("block pointer {ptr} outside the file system")));
        }
        if level == 0 {
            return runs
                .push(start, 1, Backing::Data { physical: ptr })
                .map_err(bad);
        }
        if !visited.insert(ptr) {
            return Err(bad(format!("indirect block {ptr} used twice")));
        }
        self.claim(inode.ino, ptr, 1)?;
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.read_block(ptr, &mut buf)?;
        let per_block = u64::from(self.sb.block_size) / blockmap::POINTER_SIZE as u64;
        let span = per_block.pow(level - 1);
        for (i, chunk) in buf.chunks_exact(blockmap::POINTER_SIZE).enumerate() {
            let child_start = start + i as u64 * span;
            if child_start >= runs.end {
                break;
            }
            let child = u64::from(u32_at(chunk, 0));
            self.walk_indirect(inode, child, level - 1, child_start, visited, runs)?;
            if runs.stopped {
                break;
            }
        }
        Ok(())
    }
}

/// An error in an extent tree node: the root (in the inode) or the block under `parent`.
fn extent_error(ino: crate::Ino, parent: Option<(u16, u64)>, reason: &str) -> Error {
    match parent {
        None => Error::BadInode {
            ino,
            reason: format!("extent tree root: {reason}"),
        },
        Some((_, block)) => Error::BadBlock {
            ino,
            block,
            reason: format!("extent block: {reason}"),
        },
    }
}

/// A leaf entry's length and what backs it, checked against the file system's size.
fn leaf_extent(e: &[u8], fs_blocks: u64) -> Result<(u64, Backing), String> {
    let logical = u32_at(e, extent::FIRST_BLOCK);
    let raw_len = u32::from(u16_at(e, extent::LEAF_LEN));
    let (len, unwritten) = if raw_len > extent::INIT_MAX_LEN {
        (raw_len - extent::INIT_MAX_LEN, true)
    } else {
        (raw_len, false)
    };
    let physical = u48_at(e, extent::LEAF_START_LO, extent::LEAF_START_HI);
    if len == 0 {
        return Err(format!("empty extent at logical block {logical}"));
    }
    let len = u64::from(len);
    if physical == 0 || physical.saturating_add(len) > fs_blocks {
        return Err(format!(
            "extent of {len} blocks at block {physical} outside the file system"
        ));
    }
    let backing = if unwritten {
        Backing::Unwritten
    } else {
        Backing::Data { physical }
    };
    Ok((len, backing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(end: u64, pushes: &[(u64, u64, Backing)]) -> Result<Vec<Run>, String> {
        let mut out = Vec::new();
        let mut sink = |r| {
            out.push(r);
            true
        };
        let mut runs = Runs::new(end, 100, &mut sink);
        for &(l, n, b) in pushes {
            runs.push(l, n, b)?;
        }
        runs.finish();
        Ok(out)
    }

    #[test]
    fn runs_merge_fill_holes_and_clip() {
        let got = collect(
            10,
            &[
                (0, 2, Backing::Data { physical: 100 }),
                (2, 1, Backing::Data { physical: 102 }),
                (5, 2, Backing::Unwritten),
                (8, 10, Backing::Data { physical: 7 }),
                (20, 1, Backing::Data { physical: 9 }),
            ],
        )
        .unwrap();
        let run = |logical, len, backing| Run {
            logical,
            len,
            backing,
        };
        assert_eq!(
            got,
            vec![
                run(0, 3, Backing::Data { physical: 100 }),
                run(3, 2, Backing::Hole),
                run(5, 2, Backing::Unwritten),
                run(7, 1, Backing::Hole),
                run(8, 2, Backing::Data { physical: 7 }),
            ]
        );
        assert_eq!(collect(4, &[]).unwrap(), vec![run(0, 4, Backing::Hole)]);
    }

    #[test]
    fn overlapping_runs_and_too_many_blocks_are_refused() {
        assert!(collect(10, &[(4, 2, Backing::Hole), (5, 1, Backing::Hole)]).is_err());
        assert!(collect(1000, &[(0, 101, Backing::Data { physical: 1 })]).is_err());
        assert_eq!(collect(0, &[(0, 1, Backing::Unwritten)]).unwrap(), vec![]);
    }
}
