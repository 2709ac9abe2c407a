//! A stand-in for the directory block builder (linear blocks only), until the hash-indexed
//! one lands; same signature.

use crate::crc::crc32c_le;
use crate::error::Result;

/// What building a directory's blocks needs to know about the image and the directory.
#[derive(Debug, Clone)]
pub struct DirParams {
    pub block_size: u32,
    /// The file system's checksum seed when metadata_csum is on.
    pub csum_seed: Option<u32>,
    pub ino: u32,
    pub generation: u32,
    pub hash_version: u8,
    pub hash_seed: [u32; 4],
    pub indexed: bool,
    pub large_dir: bool,
    pub filetype: bool,
}

/// A directory's contents, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirBlocks {
    /// The logical blocks in order, each `block_size` bytes.
    pub blocks: Vec<Vec<u8>>,
    /// Block 0 is the root of a hash tree (the inode gets `EXT4_INDEX_FL`).
    pub indexed: bool,
}

/// The logical blocks of a directory, in order, checksums filled in.
pub fn build_dir_blocks(
    self_ino: u32,
    parent_ino: u32,
    entries: &[(Vec<u8>, u32, u8)],
    p: &DirParams,
) -> Result<DirBlocks> {
    let bs = p.block_size as usize;
    let end = if p.csum_seed.is_some() { bs - 12 } else { bs };
    let mut blocks = Vec::new();
    let mut cur = vec![0u8; bs];
    let mut at = 0usize;
    let mut last: Option<usize> = None;
    let dots: [(&[u8], u32, u8); 2] = [(b".", self_ino, 2), (b"..", parent_ino, 2)];
    let all = dots
        .iter()
        .map(|&(n, i, t)| (n, i, t))
        .chain(entries.iter().map(|(n, i, t)| (n.as_slice(), *i, *t)));
    for (name, ino, ft) in all {
        let need = (8 + name.len() + 3) & !3;
        if at + need > end {
            finish_block(&mut cur, last, end, p);
            blocks.push(std::mem::replace(&mut cur, vec![0u8; bs]));
            at = 0;
        }
        cur[at..at + 4].copy_from_slice(&ino.to_le_bytes());
        cur[at + 4..at + 6].copy_from_slice(&(need as u16).to_le_bytes());
        cur[at + 6] = name.len() as u8;
        cur[at + 7] = if p.filetype { ft } else { 0 };
        cur[at + 8..at + 8 + name.len()].copy_from_slice(name);
        last = Some(at);
        at += need;
    }
    finish_block(&mut cur, last, end, p);
    blocks.push(cur);
    Ok(DirBlocks {
        blocks,
        indexed: false,
    })
}

fn finish_block(cur: &mut [u8], last: Option<usize>, end: usize, p: &DirParams) {
    if let Some(l) = last {
        let len = (end - l) as u16;
        cur[l + 4..l + 6].copy_from_slice(&len.to_le_bytes());
    }
    if let Some(seed) = p.csum_seed {
        let bs = cur.len();
        cur[bs - 12 + 4..bs - 12 + 6].copy_from_slice(&12u16.to_le_bytes());
        cur[bs - 12 + 7] = 0xde;
        let s = crc32c_le(
            crc32c_le(seed, &p.ino.to_le_bytes()),
            &p.generation.to_le_bytes(),
        );
        let c = crc32c_le(s, &cur[..bs - 12]);
        cur[bs - 4..].copy_from_slice(&c.to_le_bytes());
    }
}
