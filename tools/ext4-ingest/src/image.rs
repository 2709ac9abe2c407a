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

const INCOMPAT_META_BG: u32 = 0x10;
const COMPAT_EXT_ATTR: u32 = 0x8;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const BG_INODE_UNINIT: u16 = 0x1;

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
    pub inodes_per_group: u32,
    pub first_ino: u32,
    pub first_data_block: u32,
    pub desc_size: u32,
    pub incompat: u32,
    pub ro_compat: u32,
    /// The ext_attr feature: without it debugfs's `ea_set` does nothing, silently (§3.4).
    pub ext_attr: bool,
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
            inodes_per_group: le32(b, 0x28),
            first_ino: if le32(b, 0x4c) == 0 {
                11
            } else {
                le32(b, 0x54)
            },
            first_data_block: le32(b, 0x14),
            desc_size: if incompat & INCOMPAT_64BIT != 0 {
                u32::from(le16(b, 0xfe))
            } else {
                32
            },
            incompat,
            ro_compat: le32(b, 0x64),
            ext_attr: le32(b, 0x5c) & COMPAT_EXT_ATTR != 0,
        })
    }
}

/// A model of libext2fs's inode allocator (alloc.c `ext2fs_new_inode`): the first free
/// inode at or after the start of the parent directory's group (never below `s_first_ino`),
/// wrapping around. debugfs allocates this way, so the script can name every new inode by
/// number (`<N>`) instead of by a path that debugfs would look up for each `sif`; every
/// `Allocated inode: N` debugfs prints is checked against the model.
#[derive(Debug, Clone)]
pub struct Allocator {
    used: Vec<u64>,
    count: u32,
    per_group: u32,
    first: u32,
}

impl Allocator {
    /// An allocator whose used inodes are `used` (1-based numbers).
    pub fn new(
        count: u32,
        per_group: u32,
        first: u32,
        used: impl IntoIterator<Item = u32>,
    ) -> Allocator {
        let mut a = Allocator {
            used: vec![0; count as usize / 64 + 2],
            count,
            per_group: per_group.max(1),
            first: first.max(1),
        };
        for i in used {
            a.mark(i);
        }
        a
    }

    fn mark(&mut self, ino: u32) {
        if ino >= 1 && ino <= self.count {
            self.used[ino as usize / 64] |= 1 << (ino % 64);
        }
    }

    /// The first free inode in `from..=to`, a word at a time.
    fn first_free(&self, from: u32, to: u32) -> Option<u32> {
        let mut i = from;
        while i <= to {
            let word = self.used[i as usize / 64] | ((1u64 << (i % 64)) - 1);
            if word == u64::MAX {
                i = (i / 64 + 1) * 64;
                continue;
            }
            let found = (i / 64) * 64 + word.trailing_ones();
            return (found <= to).then_some(found);
        }
        None
    }

    pub fn free(&mut self, ino: u32) {
        if ino <= self.count {
            self.used[ino as usize / 64] &= !(1 << (ino % 64));
        }
    }

    /// The inode debugfs will give a new entry of directory `parent`, now marked used.
    pub fn alloc(&mut self, parent: u32) -> Option<u32> {
        let group = parent.saturating_sub(1) / self.per_group;
        let start = (group * self.per_group + 1).max(self.first);
        if start > self.count {
            return None;
        }
        let found = self
            .first_free(start, self.count)
            .or_else(|| self.first_free(self.first, start - 1))?;
        self.mark(found);
        Some(found)
    }
}

/// Read the inode bitmaps into an [`Allocator`]; `None` for layouts the model does not
/// cover (meta_bg), in which case the script names entries by path.
pub fn allocator(file: &File, sb: &Superblock) -> Result<Option<Allocator>> {
    if sb.incompat & INCOMPAT_META_BG != 0 || sb.inodes_per_group == 0 || sb.desc_size < 32 {
        return Ok(None);
    }
    let groups = sb.inodes_count.div_ceil(sb.inodes_per_group);
    let csum = sb.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0;
    let mut table = vec![0u8; groups as usize * sb.desc_size as usize];
    let at = (u64::from(sb.first_data_block) + 1) * sb.block_size;
    file.read_exact_at(&mut table, at)
        .context("reading the group descriptors")?;
    let mut used = Vec::new();
    let mut bitmap = vec![0u8; sb.inodes_per_group.div_ceil(8) as usize];
    for g in 0..groups {
        let d = &table[(g * sb.desc_size) as usize..][..sb.desc_size as usize];
        if csum && le16(d, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let mut block = u64::from(le32(d, 0x4));
        if sb.desc_size >= 64 {
            block |= u64::from(le32(d, 0x24)) << 32;
        }
        file.read_exact_at(&mut bitmap, block * sb.block_size)
            .context("reading an inode bitmap")?;
        for i in 0..sb.inodes_per_group {
            if bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                used.push(g * sb.inodes_per_group + i + 1);
            }
        }
    }
    Ok(Some(Allocator::new(
        sb.inodes_count,
        sb.inodes_per_group,
        sb.first_ino,
        used,
    )))
}

/// The image opened for writing, exclusively locked (`flock`) until dropped.
pub struct Locked {
    pub file: Flock<File>,
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
        file: lock,
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
    fn allocation_follows_the_parent_group_and_wraps() {
        // 2 groups of 16, inodes 1..=11 used.
        let mut a = Allocator::new(32, 16, 11, 1..=11);
        assert_eq!(a.alloc(2), Some(12));
        assert_eq!(a.alloc(2), Some(13));
        // A parent in group 1 starts there.
        assert_eq!(a.alloc(20), Some(17));
        a.free(12);
        assert_eq!(a.alloc(2), Some(12));
        // Group 1 full from 17 on: wraps to the first free after s_first_ino.
        let mut b = Allocator::new(32, 16, 11, (1..=11).chain(17..=32));
        assert_eq!(b.alloc(20), Some(12));
        let mut full = Allocator::new(16, 16, 11, 1..=16);
        assert_eq!(full.alloc(2), None);
        // Across words.
        let mut c = Allocator::new(300, 300, 11, (1..=11).chain(13..=200));
        assert_eq!(c.alloc(2), Some(12));
        assert_eq!(c.alloc(2), Some(201));
        let mut d = Allocator::new(300, 100, 11, (1..=11).chain(101..=300));
        assert_eq!(d.alloc(150), Some(12));
    }

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
