//! Inodes: `struct ext2_inode_large`, decoded.

use crate::format::{inode as off, InodeFlags, GOOD_OLD_INODE_SIZE};
use crate::le::{u16_at, u32_at, u48_at};
use crate::{EntryKind, Ino};

/// A time with nanoseconds; `sec` may be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

impl Time {
    /// Decode a 32-bit seconds field and its `_extra` word (2 epoch bits, 30 nanosecond
    /// bits); kernel `ext4_decode_extra_time`. Nanoseconds beyond a second read as 0.
    pub fn decode(seconds: u32, extra: Option<u32>) -> Time {
        let mut sec = i64::from(seconds as i32);
        let mut nsec = 0;
        if let Some(extra) = extra {
            sec += i64::from(extra & 3) << 32;
            nsec = extra >> 2;
            if nsec > 999_999_999 {
                nsec = 0;
            }
        }
        Time { sec, nsec }
    }
}

/// A decoded inode. `i_block` and the in-inode xattr area are kept raw for the readers that
/// interpret them (extents, block map, inline data, fast symlink, device numbers).
#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: Ino,
    /// The full `i_mode` (type and 12 permission bits).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links_count: u16,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub crtime: Option<Time>,
    pub dtime: u32,
    pub flags: InodeFlags,
    pub generation: u32,
    /// The external xattr block, 0 if none.
    pub file_acl: u64,
    /// Space used, in 512-byte units.
    pub blocks_512: u64,
    /// The 60 bytes of `i_block`.
    pub block: [u8; 60],
    /// The in-inode extended attribute area (after `i_extra_isize`), possibly empty.
    pub inline_xattrs: Vec<u8>,
}

impl Inode {
    /// Parse an on-disk inode of `raw.len()` bytes (the superblock's inode size, >= 128).
    /// Returns a reason on an inconsistent inode.
    pub fn parse(
        ino: Ino,
        raw: &[u8],
        huge_file_fs: bool,
        block_size: u32,
    ) -> Result<Inode, String> {
        const BASE: usize = GOOD_OLD_INODE_SIZE;
        if raw.len() < BASE {
            return Err(format!("inode record of {} bytes", raw.len()));
        }
        let extra_isize = if raw.len() > BASE {
            usize::from(u16_at(raw, off::EXTRA_ISIZE))
        } else {
            0
        };
        if BASE + extra_isize > raw.len() || extra_isize % 4 != 0 {
            return Err(format!("extra inode size {extra_isize}"));
        }
        let extra = |at: usize| (BASE + extra_isize >= at + 4).then(|| u32_at(raw, at));
        let flags = InodeFlags::from_bits_retain(u32_at(raw, off::FLAGS));
        let mut blocks = if huge_file_fs {
            u48_at(raw, off::BLOCKS_LO, off::BLOCKS_HIGH)
        } else {
            u64::from(u32_at(raw, off::BLOCKS_LO))
        };
        if huge_file_fs && flags.contains(InodeFlags::HUGE_FILE) {
            // Counted in file system blocks rather than sectors.
            blocks = blocks.saturating_mul(u64::from(block_size / 512));
        }
        let mut block = [0u8; off::BLOCK_LEN];
        block.copy_from_slice(&raw[off::BLOCK..off::BLOCK + off::BLOCK_LEN]);
        let high16 =
            |lo: usize, hi: usize| u32::from(u16_at(raw, lo)) | u32::from(u16_at(raw, hi)) << 16;
        Ok(Inode {
            ino,
            mode: u16_at(raw, off::MODE),
            uid: high16(off::UID, off::UID_HIGH),
            gid: high16(off::GID, off::GID_HIGH),
            size: u64::from(u32_at(raw, off::SIZE_LO))
                | u64::from(u32_at(raw, off::SIZE_HIGH)) << 32,
            links_count: u16_at(raw, off::LINKS_COUNT),
            atime: Time::decode(u32_at(raw, off::ATIME), extra(off::ATIME_EXTRA)),
            ctime: Time::decode(u32_at(raw, off::CTIME), extra(off::CTIME_EXTRA)),
            mtime: Time::decode(u32_at(raw, off::MTIME), extra(off::MTIME_EXTRA)),
            crtime: extra(off::CRTIME).map(|s| Time::decode(s, extra(off::CRTIME_EXTRA))),
            dtime: u32_at(raw, off::DTIME),
            flags,
            generation: u32_at(raw, off::GENERATION),
            file_acl: u48_at(raw, off::FILE_ACL_LO, off::FILE_ACL_HIGH),
            blocks_512: blocks,
            block,
            inline_xattrs: raw[BASE + extra_isize..].to_vec(),
        })
    }

    /// What the inode is, from its mode; `None` for a mode of no known kind.
    pub fn kind(&self) -> Option<EntryKind> {
        EntryKind::from_mode(u32::from(self.mode))
    }

    /// Its kind, or [`Error::BadInode`] when its mode names none (a corrupt inode).
    pub fn checked_kind(&self) -> crate::Result<EntryKind> {
        self.kind().ok_or_else(|| crate::Error::BadInode {
            ino: self.ino,
            reason: format!("no valid type (mode {:o})", self.mode),
        })
    }

    /// The 12 permission bits.
    pub fn permissions(&self) -> u32 {
        u32::from(self.mode) & 0o7777
    }

    pub fn has_flag(&self, flag: InodeFlags) -> bool {
        self.flags.intersects(flag)
    }

    /// Device numbers of a character or block device: old 8:8 encoding in `i_block[0]`,
    /// else the new 12:20 one in `i_block[1]` (kernel `old_decode_dev` / `new_decode_dev`).
    pub fn rdev(&self) -> (u32, u32) {
        let old = u32_at(&self.block, 0);
        if old != 0 {
            ((old >> 8) & 0xff, old & 0xff)
        } else {
            let dev = u32_at(&self.block, 4);
            ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
        }
    }
}

/// The `i_block` of a character or block device with these numbers: the old 8:8 encoding
/// in `i_block[0]` when both fit a byte, else the new 12:20 one in `i_block[1]` (kernel
/// `ext4_do_update_inode`), as [`Inode::rdev`] reads them back. `None` when the numbers do
/// not fit 12 and 20 bits.
pub(crate) fn device_block(major: u32, minor: u32) -> Option<[u8; off::BLOCK_LEN]> {
    if major > 0xfff || minor > 0xf_ffff {
        return None;
    }
    let mut block = [0u8; off::BLOCK_LEN];
    if major < 256 && minor < 256 {
        block[0..4].copy_from_slice(&((major << 8) | minor).to_le_bytes());
    } else {
        let new = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        block[4..8].copy_from_slice(&new.to_le_bytes());
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_extra_times() {
        assert_eq!(Time::decode(5, None), Time { sec: 5, nsec: 0 });
        assert_eq!(Time::decode(u32::MAX, None), Time { sec: -1, nsec: 0 });
        // epoch bit 1 moves a negative 32-bit value past 2038.
        let t = Time::decode(0x8000_0000, Some(1 | (7 << 2)));
        assert_eq!(
            t,
            Time {
                sec: (1 << 32) - (1 << 31),
                nsec: 7
            }
        );
        assert_eq!(Time::decode(1, Some(u32::MAX)).nsec, 0);
    }

    #[test]
    fn parses_a_large_inode() {
        let mut raw = vec![0u8; 256];
        raw[0..2].copy_from_slice(&0o104_755u16.to_le_bytes());
        raw[2..4].copy_from_slice(&1u16.to_le_bytes());
        raw[0x78..0x7a].copy_from_slice(&2u16.to_le_bytes());
        raw[4..8].copy_from_slice(&10u32.to_le_bytes());
        raw[0x6c..0x70].copy_from_slice(&1u32.to_le_bytes());
        raw[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        raw[0x88..0x8c].copy_from_slice(&(123u32 << 2).to_le_bytes());
        let i = Inode::parse(Ino::new(7).unwrap(), &raw, true, 4096).unwrap();
        assert_eq!(i.kind(), Some(EntryKind::File));
        assert_eq!(i.permissions(), 0o4755);
        assert_eq!(i.uid, 0x2_0001);
        assert_eq!(i.size, (1 << 32) + 10);
        assert_eq!(i.mtime.nsec, 123);
        assert!(i.crtime.is_some());
        assert_eq!(i.inline_xattrs.len(), 256 - 160);
        raw[0x80] = 200;
        assert!(Inode::parse(Ino::new(7).unwrap(), &raw, true, 4096).is_err());
    }

    #[test]
    fn device_numbers() {
        let mut raw = vec![0u8; 128];
        raw[0x28..0x2c].copy_from_slice(&0x0103u32.to_le_bytes());
        assert_eq!(
            Inode::parse(Ino::ROOT, &raw, false, 4096).unwrap().rdev(),
            (1, 3)
        );
        raw[0x28..0x2c].copy_from_slice(&0u32.to_le_bytes());
        // major 259, minor 0x12345: minor low byte, major, minor high bits.
        let dev: u32 = 0x45 | (259 << 8) | (0x123 << 20);
        raw[0x2c..0x30].copy_from_slice(&dev.to_le_bytes());
        assert_eq!(
            Inode::parse(Ino::ROOT, &raw, false, 4096).unwrap().rdev(),
            (259, 0x12345)
        );
        for (major, minor) in [(1, 3), (259, 0x12345), (0xfff, 0xf_ffff), (0, 256)] {
            let mut raw = vec![0u8; 128];
            raw[0x28..0x64].copy_from_slice(&device_block(major, minor).unwrap());
            let i = Inode::parse(Ino::ROOT, &raw, false, 4096).unwrap();
            assert_eq!(i.rdev(), (major, minor));
        }
        assert!(device_block(0x1000, 0).is_none() && device_block(0, 0x10_0000).is_none());
    }
}
