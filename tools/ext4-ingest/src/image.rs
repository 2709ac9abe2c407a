//! The target image: its superblock (is it ext4, how much room is left, when was it made)
//! and the exclusive lock held while writing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use seedkit::quote;

const EXT4_MAGIC: u16 = 0xef53;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;

/// What we need from the superblock (ext4 on-disk layout, `struct ext4_super_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub inodes_count: u32,
    pub free_inodes: u32,
    pub blocks_count: u64,
    pub free_blocks: u64,
    pub block_size: u64,
    pub mkfs_time: u32,
    pub write_time: u32,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Superblock {
    /// Parse the 1024 bytes at offset 1024; `Err` says why this is no ext4 file system.
    pub fn parse(b: &[u8]) -> Result<Superblock, &'static str> {
        if b.len() < 1024 || le16(b, 0x38) != EXT4_MAGIC {
            return Err("no ext2/3/4 superblock (bad magic number)");
        }
        let incompat = le32(b, 0x60);
        if incompat & INCOMPAT_EXTENTS == 0 {
            return Err("not ext4 (no extents feature)");
        }
        if incompat & INCOMPAT_RECOVER != 0 {
            return Err("its journal needs recovery (run e2fsck first)");
        }
        let log = le32(b, 0x18);
        if log > 6 {
            return Err("bad block size in the superblock");
        }
        let hi = |at: usize| {
            if incompat & INCOMPAT_64BIT != 0 {
                u64::from(le32(b, at)) << 32
            } else {
                0
            }
        };
        Ok(Superblock {
            inodes_count: le32(b, 0x0),
            free_inodes: le32(b, 0x10),
            blocks_count: u64::from(le32(b, 0x4)) | hi(0x150),
            free_blocks: u64::from(le32(b, 0xc)) | hi(0x158),
            block_size: 1024 << log,
            mkfs_time: le32(b, 0x108),
            write_time: le32(b, 0x30),
        })
    }
}

/// The image opened for writing, exclusively locked (`flock`) until dropped.
pub struct Locked {
    _lock: Flock<File>,
    pub superblock: Superblock,
}

/// Open and lock `path`, refusing anything that is not an ext4 image.
pub fn lock(path: &Path) -> Result<Locked> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the image {}", quote(path)))?;
    if !file
        .metadata()
        .with_context(|| format!("opening the image {}", quote(path)))?
        .is_file()
    {
        bail!("opening the image {}: not a regular file", quote(path));
    }
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
            "locking the image {}: another process holds it (is another ext4-ingest writing it?)",
            quote(path)
        ),
        Err((_, e)) => {
            return Err(std::io::Error::from(e))
                .with_context(|| format!("locking the image {}", quote(path)))
        }
    };
    let superblock = read_superblock(&lock, path)?;
    Ok(Locked {
        _lock: lock,
        superblock,
    })
}

/// Read and check the superblock of an open image.
pub fn read_superblock(file: &File, path: &Path) -> Result<Superblock> {
    let mut buf = vec![0u8; 1024];
    let n = file
        .read_at(&mut buf, 1024)
        .with_context(|| format!("reading the image {}", quote(path)))?;
    buf.truncate(n);
    Superblock::parse(&buf).map_err(|why| {
        anyhow::anyhow!(
            "reading the image {}: not an ext4 file system: {why}",
            quote(path)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_ext4() {
        assert!(Superblock::parse(&[0u8; 1024]).is_err());
        let mut b = vec![0u8; 1024];
        b[0x38..0x3a].copy_from_slice(&EXT4_MAGIC.to_le_bytes());
        assert_eq!(
            Superblock::parse(&b).unwrap_err(),
            "not ext4 (no extents feature)"
        );
        b[0x60] = 0x40;
        b[0x18] = 2;
        b[0x10] = 7;
        let sb = Superblock::parse(&b).unwrap();
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.free_inodes, 7);
    }
}
