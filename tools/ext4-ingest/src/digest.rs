//! A digest of a file's content kept while it streams by, for `--verify` of a source that
//! cannot be read twice (a tar stream), and computed again from the image.
//!
//! Holes and zeros do not change it: it hashes each 4 KiB piece of the file that holds a
//! non-zero byte, with the piece's index, then the size. So the stream's segments (a sparse
//! map, however cut) and the image's runs (blocks of zeros left unallocated) give the same
//! digest for the same bytes. The hash is the standard library's SipHash with fixed keys:
//! the digests are compared within one run, never stored.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

const PIECE: usize = 4096;

pub struct Digest {
    h: DefaultHasher,
    /// The piece being filled, and its index.
    piece: Vec<u8>,
    index: u64,
}

impl Default for Digest {
    fn default() -> Digest {
        Digest {
            h: DefaultHasher::new(),
            piece: vec![0; PIECE],
            index: 0,
        }
    }
}

impl Digest {
    /// Bytes of the file at `offset`; offsets come in increasing order.
    pub fn feed(&mut self, offset: u64, mut bytes: &[u8]) {
        let mut at = offset;
        while !bytes.is_empty() {
            let index = at / PIECE as u64;
            if index != self.index {
                self.flush();
                self.index = index;
            }
            let start = (at % PIECE as u64) as usize;
            let n = (PIECE - start).min(bytes.len());
            self.piece[start..start + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            at += n as u64;
        }
    }

    fn flush(&mut self) {
        if self.piece.iter().any(|&b| b != 0) {
            self.index.hash(&mut self.h);
            self.piece.hash(&mut self.h);
            self.piece.fill(0);
        }
    }

    /// The digest of a file of `size` bytes fed so far.
    pub fn finish(mut self, size: u64) -> u64 {
        self.flush();
        size.hash(&mut self.h);
        self.h.finish()
    }
}

/// The digest of a regular file of the image.
pub fn of_inode(fs: &ext4fs::Fs, inode: &ext4fs::Inode) -> ext4fs::Result<u64> {
    let mut d = Digest::default();
    fs.for_each_chunk(inode, &mut |offset, bytes| {
        d.feed(offset, bytes);
        true
    })?;
    Ok(d.finish(inode.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(parts: &[(u64, &[u8])], size: u64) -> u64 {
        let mut d = Digest::default();
        for (o, b) in parts {
            d.feed(*o, b);
        }
        d.finish(size)
    }

    #[test]
    fn holes_zeros_and_cuts_do_not_change_it() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let whole = digest(&[(100_000, &data)], 200_000);
        let cut = digest(&[(100_000, &data[..777]), (100_777, &data[777..])], 200_000);
        let zeros = vec![0u8; 100_000];
        let dense = digest(&[(0, &zeros), (100_000, &data)], 200_000);
        assert_eq!(whole, cut);
        assert_eq!(whole, dense);
        assert_ne!(whole, digest(&[(100_001, &data)], 200_000));
        assert_ne!(whole, digest(&[(100_000, &data)], 200_001));
    }
}
