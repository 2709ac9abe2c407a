//! What `--hash` reads of a file's content: its digest ([`crate::digest`]), each inode once,
//! within a budget of stored bytes read.

use std::collections::HashMap;

use ext4fs::{Fs, Ino, Inode};

use crate::digest::ContentDigest;
use crate::Source;

/// Stored bytes one image may have read for its files' content in one run: twice what the
/// image file holds, plus 1 GiB (the superblock's size for a device). A sound image stores
/// each block once and each inode is read once; a hostile one can point every inode at the
/// same blocks. Holes cost nothing and are not counted.
pub fn data_budget(source: &Source) -> u64 {
    let image_bytes = if source.len > 0 {
        source.len
    } else {
        source
            .fs
            .superblock()
            .blocks_count
            .saturating_mul(u64::from(source.fs.block_size()))
    };
    image_bytes.saturating_mul(2).saturating_add(1 << 30)
}

/// The content digests of one image: each inode hashed once (every name of a hard-linked
/// file shares it), within [`data_budget`].
pub struct Hasher {
    data_left: u64,
    done: HashMap<Ino, Result<[u8; 32], String>>,
}

impl Hasher {
    pub fn for_image(source: &Source) -> Hasher {
        Hasher {
            data_left: data_budget(source),
            done: HashMap::new(),
        }
    }

    /// The digest of a regular file's content.
    pub fn digest(&mut self, fs: &Fs, inode: &Inode) -> Result<[u8; 32], String> {
        if let Some(known) = self.done.get(&inode.ino) {
            return known.clone();
        }
        let result = content_digest(fs, inode, &mut self.data_left);
        self.done.insert(inode.ino, result.clone());
        result
    }
}

/// The digest of a regular file's content: its stored bytes read in order, each gap
/// between them (a hole or an unwritten extent) fed as zeros without a read.
fn content_digest(fs: &Fs, inode: &Inode, data_left: &mut u64) -> Result<[u8; 32], String> {
    let mut d = ContentDigest::new();
    let mut pos = 0u64;
    let mut problem = None;
    fs.for_each_chunk(inode, &mut |offset, bytes| {
        if offset < pos {
            problem = Some(format!("content out of order at byte {offset}"));
            return false;
        }
        let len = bytes.len() as u64;
        if len > *data_left {
            problem = Some("the image's files name more data than it holds: not hashed".into());
            return false;
        }
        *data_left -= len;
        d.update_zeros(offset - pos);
        d.update(bytes);
        pos = offset + len;
        true
    })
    .map_err(|e| format!("reading the content: {e}"))?;
    if let Some(p) = problem {
        return Err(p);
    }
    d.update_zeros(inode.size.saturating_sub(pos));
    Ok(d.finish())
}
