//! Where a file's bytes are: the extent tree (e2fsprogs lib/ext2fs/ext3_extents.h) or the
//! ext2/ext3 block map (12 direct, one single, double and triple indirect pointer), turned
//! into one list of runs with the holes made explicit.

use std::collections::HashSet;

use crate::crc::crc32c_le;
use crate::error::{Checksummed, Error, Result};
use crate::le::{u16_at, u32_at};
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

const EXTENT_MAGIC: u16 = 0xf30a;
/// The kernel's bound on the depth of an extent tree (`EXT4_MAX_EXTENT_DEPTH`).
const MAX_DEPTH: u16 = 5;
const INIT_MAX_LEN: u32 = 32768;

/// Collects runs in logical order, merging neighbours and rejecting overlaps.
struct Runs {
    list: Vec<Run>,
    /// Logical blocks of the file (by its size): runs past it are dropped, runs into it cut.
    end: u64,
    next: u64,
    /// Data blocks still allowed: a file cannot hold more than the image has, so a hostile
    /// tree that maps the same blocks over and over stops here.
    budget: u64,
}

impl Runs {
    fn new(end: u64, budget: u64) -> Runs {
        Runs {
            list: Vec::new(),
            end,
            next: 0,
            budget,
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
        if let Some(last) = self.list.last_mut() {
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
        self.list.push(Run {
            logical,
            len,
            backing,
        });
        Ok(())
    }

    /// The runs with holes filled in up to `end`.
    fn finish(self) -> Vec<Run> {
        let mut out = Vec::with_capacity(self.list.len() * 2 + 1);
        let mut at = 0;
        for r in self.list {
            if r.logical > at {
                out.push(Run {
                    logical: at,
                    len: r.logical - at,
                    backing: Backing::Hole,
                });
            }
            at = r.logical + r.len;
            out.push(r);
        }
        if at < self.end {
            out.push(Run {
                logical: at,
                len: self.end - at,
                backing: Backing::Hole,
            });
        }
        out
    }
}

impl Fs {
    /// The runs of a file, directory or slow symlink covering exactly its size (rounded up to
    /// whole blocks), holes included, in logical order.
    pub fn data_map(&self, inode: &crate::Inode) -> Result<Vec<Run>> {
        let bs = u64::from(self.sb.block_size);
        let end = inode.size.div_ceil(bs);
        let mut runs = Runs::new(end, self.image_blocks);
        let mut visited = HashSet::new();
        if inode.has_flag(crate::inode::flags::EXTENTS) {
            let root = inode.block;
            self.walk_extents(inode, &root, None, &mut visited, &mut runs)?;
        } else {
            let per_block = bs / 4;
            let capacity = 12 + per_block + per_block * per_block + per_block.pow(3);
            if end > capacity {
                return Err(Error::BadInode {
                    ino: inode.ino,
                    reason: format!("size {} beyond what a block map can address", inode.size),
                });
            }
            for i in 0..15 {
                let ptr = u64::from(u32_at(&inode.block, i * 4));
                let (level, start) = match i {
                    0..=11 => (0, i as u64),
                    12 => (1, 12),
                    13 => (2, 12 + per_block),
                    _ => (3, 12 + per_block + per_block * per_block),
                };
                if start >= end {
                    break;
                }
                self.walk_indirect(inode, ptr, level, start, &mut visited, &mut runs)?;
            }
        }
        Ok(runs.finish())
    }

    fn walk_extents(
        &self,
        inode: &crate::Inode,
        node: &[u8],
        parent: Option<(u16, u64)>,
        visited: &mut HashSet<u64>,
        runs: &mut Runs,
    ) -> Result<()> {
        let ino = inode.ino;
        let bad = |reason: String| match parent {
            None => Error::BadInode {
                ino,
                reason: format!("extent tree root: {reason}"),
            },
            Some((_, block)) => Error::BadBlock {
                ino,
                block,
                reason: format!("extent block: {reason}"),
            },
        };
        if u16_at(node, 0) != EXTENT_MAGIC {
            return Err(bad("bad extent header magic".into()));
        }
        let entries = usize::from(u16_at(node, 2));
        let max = usize::from(u16_at(node, 4));
        let depth = u16_at(node, 6);
        if entries > max || 12 + max * 12 > node.len() {
            return Err(bad(format!("{entries} of {max} entries")));
        }
        match parent {
            None if depth > MAX_DEPTH => return Err(bad(format!("depth {depth}"))),
            Some((parent_depth, _)) if depth + 1 != parent_depth => {
                return Err(bad(format!("depth {depth} under depth {parent_depth}")))
            }
            _ => {}
        }
        let fs_blocks = self.sb.blocks_count;
        for i in 0..entries {
            let e = &node[12 + i * 12..24 + i * 12];
            let logical = u64::from(u32_at(e, 0));
            if depth == 0 {
                let raw_len = u32::from(u16_at(e, 4));
                let (len, unwritten) = if raw_len > INIT_MAX_LEN {
                    (raw_len - INIT_MAX_LEN, true)
                } else {
                    (raw_len, false)
                };
                let physical = u64::from(u16_at(e, 6)) << 32 | u64::from(u32_at(e, 8));
                if len == 0 {
                    return Err(bad(format!("empty extent at logical block {logical}")));
                }
                let len = u64::from(len);
                if physical == 0 || physical.saturating_add(len) > fs_blocks {
                    return Err(bad(format!(
                        "extent of {len} blocks at block {physical} outside the file system"
                    )));
                }
                let backing = if unwritten {
                    Backing::Unwritten
                } else {
                    Backing::Data { physical }
                };
                runs.push(logical, len, backing).map_err(bad)?;
            } else {
                let child = u64::from(u32_at(e, 4)) | u64::from(u16_at(e, 8)) << 32;
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
                let mut buf = vec![0u8; self.sb.block_size as usize];
                self.read_block(child, &mut buf)?;
                if self.sb.metadata_csum() && !extent_block_csum_ok(&buf, inode, self.sb.csum_seed)
                {
                    return Err(Error::ChecksumMismatch {
                        what: Checksummed::ExtentBlock { ino, block: child },
                    });
                }
                self.walk_extents(inode, &buf, Some((depth, child)), visited, runs)?;
            }
        }
        Ok(())
    }

    fn walk_indirect(
        &self,
        inode: &crate::Inode,
        ptr: u64,
        level: u32,
        start: u64,
        visited: &mut HashSet<u64>,
        runs: &mut Runs,
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
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.read_block(ptr, &mut buf)?;
        let per_block = u64::from(self.sb.block_size / 4);
        let span = per_block.pow(level - 1);
        for (i, chunk) in buf.chunks_exact(4).enumerate() {
            let child_start = start + i as u64 * span;
            if child_start >= runs.end {
                break;
            }
            let child = u64::from(u32_at(chunk, 0));
            self.walk_indirect(inode, child, level - 1, child_start, visited, runs)?;
        }
        Ok(())
    }
}

/// Verify the `ext4_extent_tail` after `eh_max` entries of an extent block.
fn extent_block_csum_ok(block: &[u8], inode: &crate::Inode, seed: u32) -> bool {
    let max = usize::from(u16_at(block, 4));
    let tail = 12 + max * 12;
    if tail + 4 > block.len() {
        return false;
    }
    let mut crc = crc32c_le(seed, &inode.ino.to_le_bytes());
    crc = crc32c_le(crc, &inode.generation.to_le_bytes());
    crc32c_le(crc, &block[..tail]) == u32_at(block, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_fill_holes_and_clip() {
        let mut r = Runs::new(10, 100);
        r.push(0, 2, Backing::Data { physical: 100 }).unwrap();
        r.push(2, 1, Backing::Data { physical: 102 }).unwrap();
        r.push(5, 2, Backing::Unwritten).unwrap();
        r.push(8, 10, Backing::Data { physical: 7 }).unwrap();
        r.push(20, 1, Backing::Data { physical: 9 }).unwrap();
        let got = r.finish();
        assert_eq!(
            got,
            vec![
                Run {
                    logical: 0,
                    len: 3,
                    backing: Backing::Data { physical: 100 }
                },
                Run {
                    logical: 3,
                    len: 2,
                    backing: Backing::Hole
                },
                Run {
                    logical: 5,
                    len: 2,
                    backing: Backing::Unwritten
                },
                Run {
                    logical: 7,
                    len: 1,
                    backing: Backing::Hole
                },
                Run {
                    logical: 8,
                    len: 2,
                    backing: Backing::Data { physical: 7 }
                },
            ]
        );
    }

    #[test]
    fn overlapping_runs_are_refused() {
        let mut r = Runs::new(10, 100);
        r.push(4, 2, Backing::Hole).unwrap();
        assert!(r.push(5, 1, Backing::Hole).is_err());
        let mut r = Runs::new(0, 100);
        r.push(0, 1, Backing::Unwritten).unwrap();
        assert_eq!(r.finish(), vec![]);
    }
}
