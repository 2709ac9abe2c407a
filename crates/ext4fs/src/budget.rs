//! The reader's work budget, and the claims that keep one metadata block to one inode.
//!
//! A hostile image is small on disk but can describe work without bound: a thousand
//! inodes whose extent trees all lead to one tree of millions of extents, directories
//! that all name the same blocks, a path that looks a name up thousands of times in a
//! large directory. Two rules bound it by what the image holds:
//!
//! - **Claims.** Every metadata block the reader follows on behalf of an inode (extent
//!   index and leaf blocks, indirect blocks, directory blocks) belongs to the first inode
//!   that reaches it. Another inode reaching it is corrupt ([`Error::Claimed`]): that inode
//!   is refused, the others are read. The same inode reading it again (a second walk of its
//!   map) is allowed, and charged. Extended attribute blocks are shared on purpose (their
//!   header counts the inodes using them): they are charged at every read, never claimed.
//!   Without claims each inode could walk the same blocks again, so the work would grow
//!   with the number of inodes times the size of what they share.
//! - **The meter.** Every open image has a budget of work in bytes: a metadata block read
//!   costs its size, an inode its size, a directory, extent or xattr entry
//!   [`ENTRY_COST`], and every byte of file data read for the caller one. Past the budget
//!   every call fails with [`Error::OverBudget`]. The default budget is
//!   [`default_budget`] of the image's allocated size (see [`crate::Fs::allocated_bytes`]):
//!   reading a sound image costs about once or twice what it holds, so ordinary images stay
//!   far inside it, and a crafted one stops after a few seconds of work at most.
//!
//! The claims' memory grows with the blocks read (a few dozen bytes per claimed range,
//! each range at least one block charged), so the budget bounds it too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::Ino;

/// The default budget is this many times the image's allocated size ...
pub const BUDGET_MULTIPLE: u64 = 8;
/// ... plus this much, so that a small image still reads its path lookups and its odd
/// hard link without running short.
pub const BUDGET_FLOOR: u64 = 256 << 20;

/// What reading one directory, extent or xattr entry costs beyond its bytes: the
/// decoding and the copy of a name, as much work as copying a few dozen bytes.
pub const ENTRY_COST: u64 = 32;

/// The work budget of an image whose allocated size is `allocated` bytes:
/// [`BUDGET_MULTIPLE`] times it plus [`BUDGET_FLOOR`].
pub fn default_budget(allocated: u64) -> u64 {
    allocated
        .saturating_mul(BUDGET_MULTIPLE)
        .saturating_add(BUDGET_FLOOR)
}

/// The work done and the budget it may not pass.
#[derive(Debug)]
pub(crate) struct Meter {
    limit: u64,
    used: AtomicU64,
}

impl Meter {
    pub(crate) fn new(limit: u64) -> Meter {
        Meter {
            limit,
            used: AtomicU64::new(0),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Count `units` of work; `Err` once the total passes the budget (and from then on,
    /// whatever is charged).
    pub(crate) fn charge(&self, units: u64) -> Result<()> {
        let before = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_add(units))
            })
            .unwrap_or(u64::MAX);
        if before.saturating_add(units) > self.limit {
            return Err(Error::OverBudget { limit: self.limit });
        }
        Ok(())
    }
}

/// Which inode each claimed block belongs to: ranges of blocks (start -> end, owner), never
/// overlapping, neighbours of one owner merged, so a sound image holds about one range per
/// directory and extent block run.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    ranges: BTreeMap<u64, (u64, Ino)>,
}

impl Claims {
    /// Claim blocks `start .. start + len` for `owner`. `Err((block, other))` when one of
    /// them belongs to another inode (nothing is claimed then).
    pub(crate) fn claim(&mut self, owner: Ino, start: u64, len: u64) -> Result<(), (u64, Ino)> {
        let end = start.saturating_add(len);
        let mut merged = (start, end);
        let mut absorbed = Vec::new();
        // Ranges overlapping or touching [start, end), from the last one down.
        for (&s, &(e, who)) in self.ranges.range(..=end).rev() {
            if e < start {
                break;
            }
            let overlaps = e > start && s < end;
            if who != owner {
                if overlaps {
                    return Err((s.max(start), who));
                }
                continue;
            }
            merged = (merged.0.min(s), merged.1.max(e));
            absorbed.push(s);
        }
        for s in absorbed {
            self.ranges.remove(&s);
        }
        self.ranges.insert(merged.0, (merged.1, owner));
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(n: u32) -> Ino {
        Ino::new(n).unwrap()
    }

    #[test]
    fn the_meter_fails_past_its_limit_and_stays_failed() {
        let m = Meter::new(100);
        assert!(m.charge(60).is_ok());
        assert!(m.charge(40).is_ok());
        let err = m.charge(1).unwrap_err();
        assert!(matches!(err, Error::OverBudget { limit: 100 }), "{err}");
        assert!(m.charge(0).is_err());
        assert!(m.charge(u64::MAX).is_err());
        assert_eq!(m.used(), u64::MAX);
    }

    #[test]
    fn claims_belong_to_the_first_inode() {
        let mut c = Claims::default();
        assert!(c.claim(ino(12), 100, 4).is_ok());
        // The same inode again, wholly or in part: a re-walk.
        assert!(c.claim(ino(12), 102, 1).is_ok());
        assert!(c.claim(ino(12), 98, 4).is_ok());
        assert_eq!(c.len(), 1);
        // Another inode on any of those blocks.
        assert_eq!(c.claim(ino(13), 103, 10), Err((103, ino(12))));
        assert_eq!(c.claim(ino(13), 90, 9), Err((98, ino(12))));
        // Right beside them is free.
        assert!(c.claim(ino(13), 104, 2).is_ok());
        assert!(c.claim(ino(13), 90, 8).is_ok());
        assert_eq!(c.len(), 3);
        // Neighbours of one owner merge.
        assert!(c.claim(ino(12), 106, 1).is_ok());
        assert!(c.claim(ino(12), 107, 1).is_ok());
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn a_claim_across_two_of_ones_own_ranges_joins_them() {
        let mut c = Claims::default();
        c.claim(ino(5), 10, 2).unwrap();
        c.claim(ino(5), 20, 2).unwrap();
        c.claim(ino(5), 11, 10).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.claim(ino(6), 21, 1), Err((21, ino(5))));
    }

    #[test]
    fn the_default_budget_saturates() {
        assert_eq!(default_budget(0), BUDGET_FLOOR);
        assert_eq!(default_budget(1 << 20), (8 << 20) + BUDGET_FLOOR);
        assert_eq!(default_budget(u64::MAX), u64::MAX);
    }
}
