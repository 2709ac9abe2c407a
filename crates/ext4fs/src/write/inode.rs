//! Inode records: `struct ext2_inode_large` written field by field.

use crate::format::{inode as off, InodeFlags, GOOD_OLD_INODE_SIZE};
use crate::inode::Time;
use crate::le::{put_u16, put_u32, put_u48, u16_at, u32_at, u48_at};

/// The 32 low bits of the seconds and the `_extra` word: 2 epoch bits (seconds past the
/// signed 32-bit range, kernel `ext4_encode_extra_time`) and 30 bits of nanoseconds.
pub(crate) fn encode_time(t: Time) -> (u32, u32) {
    let low = t.sec as u32;
    let epoch = ((t.sec - i64::from(low as i32)) >> 32) as u32 & 3;
    (low, epoch | (t.nsec.min(999_999_999) << 2))
}

/// What every inode the writer makes holds, before its type-specific parts.
pub(crate) struct Base {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub crtime: Time,
}

/// A fresh record of `inode_size` bytes with mode, owners, times and the extra size.
pub(crate) fn new_record(inode_size: u32, b: &Base) -> Vec<u8> {
    let mut raw = vec![0u8; inode_size as usize];
    put_u16(&mut raw, off::MODE, b.mode);
    put_u16(&mut raw, off::UID, b.uid as u16);
    put_u16(&mut raw, off::UID_HIGH, (b.uid >> 16) as u16);
    put_u16(&mut raw, off::GID, b.gid as u16);
    put_u16(&mut raw, off::GID_HIGH, (b.gid >> 16) as u16);
    let large = inode_size as usize > GOOD_OLD_INODE_SIZE;
    if large {
        put_u16(&mut raw, off::EXTRA_ISIZE, off::WRITER_EXTRA_ISIZE);
    }
    for (t, at, extra) in [
        (b.atime, off::ATIME, off::ATIME_EXTRA),
        (b.ctime, off::CTIME, off::CTIME_EXTRA),
        (b.mtime, off::MTIME, off::MTIME_EXTRA),
        (b.crtime, off::CRTIME, off::CRTIME_EXTRA),
    ] {
        let (low, ext) = encode_time(t);
        if at != off::CRTIME || large {
            put_u32(&mut raw, at, low);
        }
        if large {
            put_u32(&mut raw, extra, ext);
        }
    }
    raw
}

/// Where the in-inode xattr area starts in the writer's records (after its extra fields).
pub(crate) fn xattr_area() -> usize {
    GOOD_OLD_INODE_SIZE + usize::from(off::WRITER_EXTRA_ISIZE)
}

pub(crate) fn set_links(raw: &mut [u8], links: u16) {
    put_u16(raw, off::LINKS_COUNT, links);
}

pub(crate) fn links(raw: &[u8]) -> u16 {
    u16_at(raw, off::LINKS_COUNT)
}

pub(crate) fn set_size(raw: &mut [u8], size: u64) {
    put_u32(raw, off::SIZE_LO, size as u32);
    put_u32(raw, off::SIZE_HIGH, (size >> 32) as u32);
}

pub(crate) fn flags(raw: &[u8]) -> InodeFlags {
    InodeFlags::from_bits_retain(u32_at(raw, off::FLAGS))
}

pub(crate) fn set_flags(raw: &mut [u8], flags: InodeFlags) {
    put_u32(raw, off::FLAGS, flags.bits());
}

pub(crate) fn add_flags(raw: &mut [u8], flags: InodeFlags) {
    let old = self::flags(raw);
    set_flags(raw, old | flags);
}

pub(crate) fn generation(raw: &[u8]) -> u32 {
    u32_at(raw, off::GENERATION)
}

pub(crate) fn set_generation(raw: &mut [u8], generation: u32) {
    put_u32(raw, off::GENERATION, generation);
}

/// `i_blocks` from a count of 512-byte sectors; past 2^48 sectors the count is kept in
/// file system blocks (`HUGE_FILE_FL`). Returns false when it cannot be represented.
pub(crate) fn set_blocks(raw: &mut [u8], sectors: u64, huge_file: bool, block_size: u32) -> bool {
    let (count, flag) = if sectors < 1 << 32 {
        (sectors, InodeFlags::empty())
    } else if !huge_file {
        return false;
    } else if sectors < 1 << 48 {
        (sectors, InodeFlags::empty())
    } else {
        (sectors / u64::from(block_size / 512), InodeFlags::HUGE_FILE)
    };
    if count >= 1 << 48 {
        return false;
    }
    put_u48(raw, off::BLOCKS_LO, off::BLOCKS_HIGH, count);
    add_flags(raw, flag);
    true
}

pub(crate) fn blocks(raw: &[u8]) -> u64 {
    u48_at(raw, off::BLOCKS_LO, off::BLOCKS_HIGH)
}

pub(crate) fn set_file_acl(raw: &mut [u8], block: u64) {
    put_u48(raw, off::FILE_ACL_LO, off::FILE_ACL_HIGH, block);
}

pub(crate) fn i_block(raw: &[u8]) -> [u8; off::BLOCK_LEN] {
    let mut block = [0u8; off::BLOCK_LEN];
    block.copy_from_slice(&raw[off::BLOCK..off::BLOCK + off::BLOCK_LEN]);
    block
}

pub(crate) fn set_i_block(raw: &mut [u8], block: &[u8; off::BLOCK_LEN]) {
    raw[off::BLOCK..off::BLOCK + off::BLOCK_LEN].copy_from_slice(block);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_time_round_trips_through_the_reader() {
        for sec in [0i64, -1, 1 << 31, (1 << 33) + 5, -(1 << 31), 0x3_7fff_ffff] {
            let (low, extra) = encode_time(Time { sec, nsec: 7 });
            assert_eq!(
                Time::decode(low, Some(extra)),
                Time { sec, nsec: 7 },
                "{sec}"
            );
        }
    }

    #[test]
    fn checksum_is_what_the_reader_accepts() {
        let b = Base {
            mode: 0o100_644,
            uid: 70000,
            gid: 5,
            atime: Time { sec: 1, nsec: 2 },
            mtime: Time::default(),
            ctime: Time::default(),
            crtime: Time::default(),
        };
        let mut raw = new_record(256, &b);
        crate::csum::set_inode(0xdead, 12, &mut raw);
        assert!(crate::csum::inode_ok(0xdead, 12, &raw));
        let i = crate::Inode::parse(crate::Ino::new(12).unwrap(), &raw, true, 4096).unwrap();
        assert_eq!((i.uid, i.gid, i.atime.nsec), (70000, 5, 2));
    }
}
