//! Inode records: `struct ext2_inode_large` written field by field.

use crate::crc::crc32c_le;
use crate::inode::Time;

/// Inode flags the writer sets.
pub(crate) const EXTENTS_FL: u32 = 0x8_0000;
pub(crate) const INDEX_FL: u32 = 0x1000;
pub(crate) const HUGE_FILE_FL: u32 = 0x4_0000;

/// Extra bytes after the 128-byte base record: up to and including `i_projid`.
pub(crate) const EXTRA_ISIZE: u16 = 32;

fn put16(raw: &mut [u8], off: usize, v: u16) {
    if let Some(d) = raw.get_mut(off..off + 2) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn put32(raw: &mut [u8], off: usize, v: u32) {
    if let Some(d) = raw.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

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
    put16(&mut raw, 0x0, b.mode);
    put16(&mut raw, 0x2, b.uid as u16);
    put16(&mut raw, 0x78, (b.uid >> 16) as u16);
    put16(&mut raw, 0x18, b.gid as u16);
    put16(&mut raw, 0x7a, (b.gid >> 16) as u16);
    let large = inode_size > 128;
    if large {
        put16(&mut raw, 0x80, EXTRA_ISIZE);
    }
    for (t, off, extra) in [
        (b.atime, 0x8, 0x8c),
        (b.ctime, 0xc, 0x84),
        (b.mtime, 0x10, 0x88),
        (b.crtime, 0x90, 0x94),
    ] {
        let (low, ext) = encode_time(t);
        if off != 0x90 || large {
            put32(&mut raw, off, low);
        }
        if large {
            put32(&mut raw, extra, ext);
        }
    }
    raw
}

pub(crate) fn set_links(raw: &mut [u8], links: u16) {
    put16(raw, 0x1a, links);
}

pub(crate) fn links(raw: &[u8]) -> u16 {
    crate::le::u16_at(raw, 0x1a)
}

pub(crate) fn set_size(raw: &mut [u8], size: u64) {
    put32(raw, 0x4, size as u32);
    put32(raw, 0x6c, (size >> 32) as u32);
}

pub(crate) fn add_flags(raw: &mut [u8], flags: u32) {
    let old = crate::le::u32_at(raw, 0x20);
    put32(raw, 0x20, old | flags);
}

/// `i_blocks` from a count of 512-byte sectors; past 2^48 sectors the count is kept in
/// file system blocks (`HUGE_FILE_FL`). Returns false when it cannot be represented.
pub(crate) fn set_blocks(raw: &mut [u8], sectors: u64, huge_file: bool, block_size: u32) -> bool {
    let (count, flag) = if sectors < 1 << 32 {
        (sectors, 0)
    } else if !huge_file {
        return false;
    } else if sectors < 1 << 48 {
        (sectors, 0)
    } else {
        (sectors / u64::from(block_size / 512), HUGE_FILE_FL)
    };
    if count >= 1 << 48 {
        return false;
    }
    put32(raw, 0x1c, count as u32);
    put16(raw, 0x74, (count >> 32) as u16);
    add_flags(raw, flag);
    true
}

pub(crate) fn blocks(raw: &[u8]) -> u64 {
    u64::from(crate::le::u32_at(raw, 0x1c)) | u64::from(crate::le::u16_at(raw, 0x74)) << 32
}

pub(crate) fn set_file_acl(raw: &mut [u8], block: u64) {
    put32(raw, 0x68, block as u32);
    put16(raw, 0x76, (block >> 32) as u16);
}

pub(crate) fn set_i_block(raw: &mut [u8], block: &[u8; 60]) {
    raw[0x28..0x64].copy_from_slice(block);
}

/// Fill in the metadata_csum of a record (e2fsprogs `ext2fs_inode_csum_set`): crc32c over
/// the inode number, the generation and the record with both checksum halves zeroed.
pub(crate) fn set_checksum(raw: &mut [u8], ino: u32, seed: u32) {
    let has_hi = raw.len() > 128 && crate::le::u16_at(raw, 0x80) >= 4;
    put16(raw, 0x7c, 0);
    if has_hi {
        put16(raw, 0x82, 0);
    }
    let mut crc = crc32c_le(seed, &ino.to_le_bytes());
    crc = crc32c_le(crc, &raw[0x64..0x68]);
    crc = crc32c_le(crc, raw);
    put16(raw, 0x7c, crc as u16);
    if has_hi {
        put16(raw, 0x82, (crc >> 16) as u16);
    }
}

/// The per-inode checksum seed (extent blocks, directory blocks).
pub(crate) fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    crc32c_le(
        crc32c_le(fs_seed, &ino.to_le_bytes()),
        &generation.to_le_bytes(),
    )
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
        set_checksum(&mut raw, 12, 0xdead);
        assert!(crate::inode::checksum_ok(&raw, 12, 0xdead));
        let i = crate::Inode::parse(12, &raw, true, 4096).unwrap();
        assert_eq!((i.uid, i.gid, i.atime.nsec), (70000, 5, 2));
    }
}
