//! The content digest of `--hash`: a SHA-256 that costs nothing per hole.
//!
//! A file's bytes are taken in 4 KiB pieces from its start (the last piece may be shorter).
//! Each piece is fed to SHA-256 as it is, except that every maximal run of *n* whole
//! pieces that are all zeros (holes, unwritten extents or stored zeros alike) is fed as one
//! all-zero 4 KiB piece followed by *n* as an 8-byte big-endian number. So:
//! - the digest depends on the content only, never on where the image keeps it;
//! - a file with no all-zero 4 KiB piece gets exactly what `sha256sum` prints;
//! - a run of zeros of any length costs one piece to hash, and a hole is never read: a
//!   sparse file of terabytes is hashed as fast as its stored bytes;
//! - two different contents never give the same stream: reading the stream back piece by
//!   piece, an all-zero piece is always followed by its run's length, so the content can be
//!   rebuilt from it; and the stream of a file that has a zero run holds an all-zero piece
//!   where `sha256sum`'s stream of a file without one cannot.

use sha2::{Digest as _, Sha256};

/// The piece size.
pub const PIECE: usize = 4096;

const ZERO_PIECE: [u8; PIECE] = [0; PIECE];

/// A content digest being computed.
pub struct ContentDigest {
    sha: Sha256,
    /// The bytes of the piece being gathered (fewer than [`PIECE`]).
    partial: Box<[u8; PIECE]>,
    partial_len: usize,
    /// All-zero pieces seen and not yet fed.
    zero_run: u64,
}

impl Default for ContentDigest {
    fn default() -> Self {
        ContentDigest {
            sha: Sha256::new(),
            partial: Box::new([0; PIECE]),
            partial_len: 0,
            zero_run: 0,
        }
    }
}

impl ContentDigest {
    pub fn new() -> ContentDigest {
        ContentDigest::default()
    }

    /// The next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (PIECE - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < PIECE {
                return;
            }
            self.partial_len = 0;
            let piece = *self.partial;
            self.piece(&piece);
        }
        let mut pieces = data.chunks_exact(PIECE);
        for piece in &mut pieces {
            self.piece(piece);
        }
        let rest = pieces.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// The next `count` bytes of the file are zeros (a hole): O(1) whatever `count`.
    pub fn update_zeros(&mut self, mut count: u64) {
        if self.partial_len > 0 {
            let take = ((PIECE - self.partial_len) as u64).min(count) as usize;
            self.update(&ZERO_PIECE[..take]);
            count -= take as u64;
        }
        if count == 0 {
            return;
        }
        // The piece being gathered is empty now: whole pieces of zeros join the run.
        self.zero_run += count / PIECE as u64;
        let rest = (count % PIECE as u64) as usize;
        self.partial[..rest].fill(0);
        self.partial_len = rest;
    }

    fn piece(&mut self, piece: &[u8]) {
        if piece == ZERO_PIECE {
            self.zero_run += 1;
        } else {
            self.end_run();
            self.sha.update(piece);
        }
    }

    fn end_run(&mut self) {
        if self.zero_run > 0 {
            self.sha.update(ZERO_PIECE);
            self.sha.update(self.zero_run.to_be_bytes());
            self.zero_run = 0;
        }
    }

    pub fn finish(mut self) -> [u8; 32] {
        self.end_run();
        self.sha.update(&self.partial[..self.partial_len]);
        self.sha.finalize().into()
    }
}

/// Lower-case hex, as `sha256sum` prints.
pub fn hex(digest: &[u8; 32]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn digest(data: &[u8]) -> String {
        let mut d = ContentDigest::new();
        d.update(data);
        hex(&d.finish())
    }

    fn sha256sum(data: &[u8]) -> String {
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha256sum (coreutils)");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    /// The construction written out plainly, as a reader would check it.
    fn by_the_definition(data: &[u8]) -> String {
        let mut stream = Vec::new();
        let mut run = 0u64;
        for piece in data.chunks(PIECE) {
            if piece.len() == PIECE && piece.iter().all(|&b| b == 0) {
                run += 1;
                continue;
            }
            if run > 0 {
                stream.extend_from_slice(&[0; PIECE]);
                stream.extend_from_slice(&run.to_be_bytes());
                run = 0;
            }
            stream.extend_from_slice(piece);
        }
        if run > 0 {
            stream.extend_from_slice(&[0; PIECE]);
            stream.extend_from_slice(&run.to_be_bytes());
        }
        sha256sum(&stream)
    }

    #[test]
    fn a_file_without_a_zero_piece_gets_sha256sum() {
        let data: Vec<u8> = (0..3 * PIECE as u32 + 100)
            .map(|i| (i * 7 + i / 13) as u8 | 1)
            .collect();
        for len in [0, 1, 55, 64, 65, PIECE - 1, PIECE, PIECE + 1, data.len()] {
            assert_eq!(
                digest(&data[..len]),
                sha256sum(&data[..len]),
                "length {len}"
            );
        }
        // A short last piece of zeros is not a zero piece.
        assert_eq!(digest(&[0; 100]), sha256sum(&[0; 100]));
    }

    #[test]
    fn holes_and_stored_zeros_are_the_same_content() {
        let mut data = vec![7u8; 10 * PIECE + 123];
        data[PIECE + 5..6 * PIECE + 17].fill(0);
        data[9 * PIECE..].fill(0);
        let want = by_the_definition(&data);
        assert_eq!(digest(&data), want);
        // The same bytes fed as data and holes in odd pieces.
        let mut d = ContentDigest::new();
        let mut at = 0;
        for (i, piece) in data.chunks(1000).enumerate() {
            if i % 3 == 1 && piece.iter().all(|&b| b == 0) {
                d.update_zeros(piece.len() as u64);
            } else {
                d.update(piece);
            }
            at += piece.len();
        }
        assert_eq!(at, data.len());
        assert_eq!(hex(&d.finish()), want);
        assert_ne!(want, sha256sum(&data));
    }

    #[test]
    fn a_huge_hole_costs_nothing() {
        let mut d = ContentDigest::new();
        d.update(b"start");
        d.update_zeros(1 << 50);
        d.update(b"end");
        let mut stream = b"start".to_vec();
        stream.resize(PIECE, 0);
        stream.extend_from_slice(&[0; PIECE]);
        stream.extend_from_slice(&(((1u64 << 50) + 5) / PIECE as u64 - 1).to_be_bytes());
        stream.resize(stream.len() + ((1usize << 50) + 5) % PIECE, 0);
        stream.extend_from_slice(b"end");
        assert_eq!(hex(&d.finish()), sha256sum(&stream));
    }
}
