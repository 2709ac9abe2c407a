//! Which parts of a file are written out and which stay holes, as `ext4-rdump` stages a file
//! and as `ext4-ingest` copies one image's file into another: one rule, so that a seed
//! built through a staged tree and one built image to image hold their data in the same
//! blocks.
//!
//! Runs of zeros covering whole [`HOLE_GRAIN`]-aligned pieces of the file stay holes (as
//! `cp --sparse=always` leaves them); every other byte is data.

/// Zero runs of at least this many bytes (aligned in the file) stay holes.
pub const HOLE_GRAIN: usize = 4096;

/// The parts of `bytes` (file data at `offset`) to write: everything but the runs of zeros
/// that cover whole [`HOLE_GRAIN`]-aligned pieces of the file.
pub fn data_runs(offset: u64, bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out: Vec<(u64, &[u8])> = Vec::new();
    let mut i = 0usize;
    let mut start: Option<usize> = None;
    while i < bytes.len() {
        // The piece from i to the next aligned offset of the file.
        let abs = offset + i as u64;
        let to_edge = HOLE_GRAIN - (abs % HOLE_GRAIN as u64) as usize;
        let end = (i + to_edge).min(bytes.len());
        let piece = &bytes[i..end];
        let whole = piece.len() == HOLE_GRAIN;
        if whole && is_zero(piece) {
            if let Some(s) = start.take() {
                out.push((offset + s as u64, &bytes[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
        i = end;
    }
    if let Some(s) = start {
        out.push((offset + s as u64, &bytes[s..]));
    }
    out
}

/// Whether every byte is zero.
pub fn is_zero(piece: &[u8]) -> bool {
    let (words, tail) = piece.split_at(piece.len() / 8 * 8);
    words
        .chunks_exact(8)
        .all(|w| w.iter().fold(0u8, |a, b| a | b) == 0)
        && tail.iter().all(|&b| b == 0)
}

/// The data ranges a file written by [`data_runs`] has on a file system of 4 KiB blocks:
/// each run widened to whole blocks, neighbours merged, nothing past the size.
#[derive(Debug, Default)]
pub struct StagedMap {
    ranges: Vec<(u64, u64)>,
}

impl StagedMap {
    /// The file's stored bytes at `offset` (in increasing order, as a reader streams them).
    pub fn add(&mut self, offset: u64, bytes: &[u8]) {
        let grain = HOLE_GRAIN as u64;
        for (at, run) in data_runs(offset, bytes) {
            let start = at / grain * grain;
            let end = (at + run.len() as u64).div_ceil(grain) * grain;
            match self.ranges.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(end),
                _ => self.ranges.push((start, end)),
            }
        }
    }

    /// The ranges, the last cut at `size`.
    pub fn finish(mut self, size: u64) -> Vec<(u64, u64)> {
        self.ranges.retain(|r| r.0 < size);
        if let Some(last) = self.ranges.last_mut() {
            last.1 = last.1.min(size);
        }
        self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_zero_pieces_stay_holes() {
        let mut data = vec![1u8; 3 * HOLE_GRAIN + 10];
        data[HOLE_GRAIN..2 * HOLE_GRAIN].fill(0);
        let runs = data_runs(0, &data);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].0, 0);
        assert_eq!(runs[1].0, 2 * HOLE_GRAIN as u64);
        // A zero tail shorter than a piece is data.
        let tail = vec![0u8; 100];
        assert_eq!(data_runs(8192, &tail).len(), 1);
    }

    #[test]
    fn the_staged_map_widens_to_blocks() {
        let mut m = StagedMap::default();
        m.add(0, &[1; 10]);
        m.add(4096 * 3, &[0; 4096]);
        m.add(4096 * 5 + 7, &[2; 3]);
        assert_eq!(
            m.finish(4096 * 5 + 10),
            [(0, 4096), (4096 * 5, 4096 * 5 + 10)]
        );
    }
}
