//! The physical blocks already written out, so that no block is written twice.
//!
//! No two inodes share a block in a sound file system; a hostile one makes many inodes name
//! the same few blocks, which would be written out (or held as directory entries) once per
//! inode, up to the apparent size of a sparse image each. Both outputs (the staged tree and
//! the tar stream) claim every inode's blocks before writing it.

use std::collections::BTreeMap;

use ext4fs::{Backing, Fs, Inode};

/// Claimed physical blocks: start -> end, neighbours merged, so a sound image holds few
/// ranges.
#[derive(Debug, Default)]
pub struct Claims(BTreeMap<u64, u64>);

impl Claims {
    /// Claim `[start, end)`: false when any of it was claimed already.
    pub fn take(&mut self, start: u64, end: u64) -> bool {
        let before = self.0.range(..end).next_back().map(|(&s, &e)| (s, e));
        if before.is_some_and(|(_, e)| e > start) {
            return false;
        }
        let mut new = (start, end);
        if let Some((s, _)) = before.filter(|&(_, e)| e == start) {
            self.0.remove(&s);
            new.0 = s;
        }
        if let Some(e) = self.0.remove(&end) {
            new.1 = e;
        }
        self.0.insert(new.0, new.1);
        true
    }

    /// Claim the data blocks of `inode`: `Err` with a reason when one of them was claimed
    /// already (by another inode or earlier in its own map), or the map cannot be read.
    pub fn claim(&mut self, fs: &Fs, inode: &Inode) -> Result<(), String> {
        if inode.has_flag(ext4fs::InodeFlags::INLINE_DATA) {
            return Ok(());
        }
        let mut shared = false;
        fs.for_each_run(inode, &mut |run| {
            let Backing::Data { physical } = run.backing else {
                return true;
            };
            shared = !self.take(physical, physical + run.len);
            !shared
        })
        .map_err(|e| e.to_string())?;
        if shared {
            return Err(
                "data blocks used twice (by this entry or one already extracted); skipped".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_are_refused_and_neighbours_merged() {
        let mut c = Claims::default();
        assert!(c.take(10, 20));
        assert!(c.take(20, 30));
        assert!(c.take(0, 10));
        assert_eq!(c.0.len(), 1);
        assert!(!c.take(29, 31));
        assert!(!c.take(5, 6));
        assert!(c.take(30, 31));
    }
}
