//! The metadata checksums, one function per checksummed structure, each used both by the
//! reader to verify and by the writer to set (as e2fsprogs' `lib/ext2fs/csum.c` does).
//!
//! With `metadata_csum` every checksum is a CRC32C ([`crc32c_le`]: the raw reflected update,
//! no inversions) seeded with the file system's seed ([`crate::Superblock::csum_seed`]);
//! those of an inode's own blocks (extent blocks, directory blocks) start from the inode's
//! seed ([`inode_seed`]). Without it, `gdt_csum` protects group descriptors with a CRC16.

use crate::crc;
use crate::format::{dirent, dx, extent, gd, inode, sb, xattr, GOOD_OLD_INODE_SIZE};
use crate::le::{put_u16, put_u32, u16_at, u32_at, u8_at};
use crate::Superblock;

pub use crate::crc::crc32c_le;

/// The file system seed without `metadata_csum_seed`: the crc32c of the uuid.
pub fn fs_seed(uuid: &[u8; 16]) -> u32 {
    crc32c_le(!0, uuid)
}

/// Where every checksum of one inode's own metadata starts: the file system's seed, then
/// the inode number and its generation (4 little-endian bytes each).
pub fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    crc32c_le(
        crc32c_le(fs_seed, &ino.to_le_bytes()),
        &generation.to_le_bytes(),
    )
}

// The superblock: the crc32c (seed !0) of everything before the checksum field.

fn superblock(raw: &[u8]) -> u32 {
    crc32c_le(!0, &raw[..sb::CHECKSUM])
}

pub fn superblock_ok(raw: &[u8]) -> bool {
    superblock(raw) == u32_at(raw, sb::CHECKSUM)
}

pub fn set_superblock(raw: &mut [u8]) {
    let c = superblock(raw);
    put_u32(raw, sb::CHECKSUM, c);
}

// Group descriptors: the group number and the descriptor without its checksum field, as
// the low 16 bits of a crc32c, or with gdt_csum alone a crc16 seeded with the uuid.

/// The checksum a descriptor must hold, `None` when the file system has none.
fn group_desc(sb: &Superblock, group: u32, desc: &[u8]) -> Option<u16> {
    let g = group.to_le_bytes();
    let after = desc.get(gd::CHECKSUM + 2..).unwrap_or(&[]);
    if sb.metadata_csum() {
        let mut c = crc32c_le(sb.csum_seed, &g);
        c = crc32c_le(c, &desc[..gd::CHECKSUM]);
        c = crc32c_le(c, &[0, 0]);
        c = crc32c_le(c, after);
        Some((c & 0xffff) as u16)
    } else if sb.group_csums() {
        let mut c = crc::crc16(!0, &sb.uuid);
        c = crc::crc16(c, &g);
        c = crc::crc16(c, &desc[..gd::CHECKSUM]);
        Some(crc::crc16(c, after))
    } else {
        None
    }
}

pub fn group_desc_ok(sb: &Superblock, group: u32, desc: &[u8]) -> bool {
    group_desc(sb, group, desc).is_none_or(|c| c == u16_at(desc, gd::CHECKSUM))
}

pub fn set_group_desc(sb: &Superblock, group: u32, desc: &mut [u8]) {
    if let Some(c) = group_desc(sb, group, desc) {
        put_u16(desc, gd::CHECKSUM, c);
    }
}

/// A block or inode bitmap: the crc32c of its `bits / 8` bytes, stored in two halves in
/// the group descriptor (the high half only in 64-byte descriptors).
pub fn bitmap(fs_seed: u32, bitmap: &[u8], bits: u32) -> u32 {
    let n = (bits as usize / 8).min(bitmap.len());
    crc32c_le(fs_seed, &bitmap[..n])
}

// Inodes: the inode number, the generation and the whole record with both checksum
// halves taken as zero. A record without room for the high half keeps the low 16 bits.

/// Whether the record's extra fields reach the high half of the checksum.
fn inode_has_hi(raw: &[u8]) -> bool {
    raw.len() > GOOD_OLD_INODE_SIZE
        && usize::from(u16_at(raw, inode::EXTRA_ISIZE))
            >= inode::CHECKSUM_HI + 2 - GOOD_OLD_INODE_SIZE
}

fn inode_csum(fs_seed: u32, ino: u32, raw: &[u8]) -> u32 {
    let generation = u32_at(raw, inode::GENERATION);
    let mut c = crc32c_le(
        inode_seed(fs_seed, ino, generation),
        &raw[..inode::CHECKSUM_LO],
    );
    c = crc32c_le(c, &[0, 0]);
    if inode_has_hi(raw) {
        c = crc32c_le(c, &raw[inode::CHECKSUM_LO + 2..inode::CHECKSUM_HI]);
        c = crc32c_le(c, &[0, 0]);
        crc32c_le(c, &raw[inode::CHECKSUM_HI + 2..])
    } else {
        crc32c_le(c, &raw[inode::CHECKSUM_LO + 2..]) & 0xffff
    }
}

/// Verify an inode record (e2fsprogs `ext2fs_inode_csum_verify`). An all-zero record
/// (never used) is accepted as e2fsprogs does.
pub fn inode_ok(fs_seed: u32, ino: u32, raw: &[u8]) -> bool {
    if raw.len() < GOOD_OLD_INODE_SIZE {
        return false;
    }
    let mut stored = u32::from(u16_at(raw, inode::CHECKSUM_LO));
    if inode_has_hi(raw) {
        stored |= u32::from(u16_at(raw, inode::CHECKSUM_HI)) << 16;
    }
    inode_csum(fs_seed, ino, raw) == stored || raw.iter().all(|&b| b == 0)
}

pub fn set_inode(fs_seed: u32, ino: u32, raw: &mut [u8]) {
    let c = inode_csum(fs_seed, ino, raw);
    put_u16(raw, inode::CHECKSUM_LO, c as u16);
    if inode_has_hi(raw) {
        put_u16(raw, inode::CHECKSUM_HI, (c >> 16) as u16);
    }
}

// Directory leaf blocks: the 12-byte tail at the end of the block holds the crc32c, from
// the inode's seed, of everything before the tail.

/// Whether a block ends in a well-formed checksum tail (inode 0, record 12, no name, type
/// 0xde).
pub fn has_dir_tail(block: &[u8]) -> bool {
    let Some(t) = block.len().checked_sub(dirent::TAIL_SIZE) else {
        return false;
    };
    u32_at(block, t + dirent::INODE) == 0
        && usize::from(u16_at(block, t + dirent::REC_LEN)) == dirent::TAIL_SIZE
        && u8_at(block, t + dirent::NAME_LEN) == 0
        && u8_at(block, t + dirent::FILE_TYPE) == dirent::TAIL_FILE_TYPE
}

fn dir_leaf(inode_seed: u32, block: &[u8]) -> u32 {
    crc32c_le(inode_seed, &block[..block.len() - dirent::TAIL_SIZE])
}

/// Verify a leaf whose tail [`has_dir_tail`].
pub fn dir_leaf_ok(inode_seed: u32, block: &[u8]) -> bool {
    dir_leaf(inode_seed, block)
        == u32_at(
            block,
            block.len() - dirent::TAIL_SIZE + dirent::TAIL_CHECKSUM,
        )
}

/// Write the tail of a leaf block (its last 12 bytes) and its checksum.
pub fn set_dir_leaf(inode_seed: u32, block: &mut [u8]) {
    let t = block.len() - dirent::TAIL_SIZE;
    block[t..].fill(0);
    put_u16(block, t + dirent::REC_LEN, dirent::TAIL_SIZE as u16);
    block[t + dirent::FILE_TYPE] = dirent::TAIL_FILE_TYPE;
    let c = dir_leaf(inode_seed, block);
    put_u32(block, t + dirent::TAIL_CHECKSUM, c);
}

// Htree nodes (the root and interior blocks): the crc32c, from the inode's seed, of the
// block up to the last used (hash, block) pair, then of the dx_tail with its checksum
// taken as zero. The tail follows the last possible pair.

/// Where a node's dx_tail starts, from the index's count/limit header at `index`; `None`
/// when the count passes the limit or the tail does not fit the block.
pub fn dx_tail(block: &[u8], index: usize) -> Option<usize> {
    let limit = usize::from(u16_at(block, index + dx::LIMIT));
    let count = usize::from(u16_at(block, index + dx::COUNT));
    let tail = index + limit * dx::ENTRY_SIZE;
    (count <= limit && tail + dx::TAIL_SIZE <= block.len()).then_some(tail)
}

fn dx_node(inode_seed: u32, block: &[u8], index: usize, tail: usize) -> u32 {
    let count = usize::from(u16_at(block, index + dx::COUNT));
    let mut c = crc32c_le(inode_seed, &block[..index + count * dx::ENTRY_SIZE]);
    c = crc32c_le(c, &block[tail..tail + dx::TAIL_CHECKSUM]);
    crc32c_le(c, &[0; 4])
}

/// Verify a node whose tail is at `tail` ([`dx_tail`]).
pub fn dx_node_ok(inode_seed: u32, block: &[u8], index: usize, tail: usize) -> bool {
    dx_node(inode_seed, block, index, tail) == u32_at(block, tail + dx::TAIL_CHECKSUM)
}

/// Set the checksum of a node whose count/limit header is at `index`.
pub fn set_dx_node(inode_seed: u32, block: &mut [u8], index: usize) {
    if let Some(tail) = dx_tail(block, index) {
        let c = dx_node(inode_seed, block, index, tail);
        put_u32(block, tail + dx::TAIL_CHECKSUM, c);
    }
}

// Extent tree blocks: the crc32c, from the inode's seed, of the header and all `eh_max`
// entries, stored right after them.

/// Where an extent block's checksum sits, from its `eh_max`; `None` when past the block.
fn extent_tail(block: &[u8]) -> Option<usize> {
    let max = usize::from(u16_at(block, extent::HEADER_MAX));
    let tail = extent::HEADER_SIZE + max * extent::ENTRY_SIZE;
    (tail + extent::TAIL_SIZE <= block.len()).then_some(tail)
}

pub fn extent_block_ok(inode_seed: u32, block: &[u8]) -> bool {
    extent_tail(block).is_some_and(|t| crc32c_le(inode_seed, &block[..t]) == u32_at(block, t))
}

pub fn set_extent_block(inode_seed: u32, block: &mut [u8]) {
    if let Some(t) = extent_tail(block) {
        let c = crc32c_le(inode_seed, &block[..t]);
        put_u32(block, t, c);
    }
}

// Extended attribute blocks: the crc32c, from the file system's seed, of the block's
// number (8 little-endian bytes) and the block with its checksum taken as zero.

fn xattr_block(fs_seed: u32, block_nr: u64, block: &[u8]) -> u32 {
    let mut c = crc32c_le(fs_seed, &block_nr.to_le_bytes());
    c = crc32c_le(c, &block[..xattr::BLOCK_CHECKSUM]);
    c = crc32c_le(c, &[0; 4]);
    crc32c_le(c, &block[xattr::BLOCK_CHECKSUM + 4..])
}

pub fn xattr_block_ok(fs_seed: u32, block_nr: u64, block: &[u8]) -> bool {
    xattr_block(fs_seed, block_nr, block) == u32_at(block, xattr::BLOCK_CHECKSUM)
}

pub fn set_xattr_block(fs_seed: u32, block_nr: u64, block: &mut [u8]) {
    let c = xattr_block(fs_seed, block_nr, block);
    put_u32(block, xattr::BLOCK_CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_verify_agree() {
        let mut raw = vec![7u8; 256];
        raw[inode::EXTRA_ISIZE..inode::EXTRA_ISIZE + 2].copy_from_slice(&32u16.to_le_bytes());
        set_inode(0xdead, 12, &mut raw);
        assert!(inode_ok(0xdead, 12, &raw));
        assert!(!inode_ok(0xdead, 13, &raw));
        assert!(inode_ok(1, 1, &[0; 256]), "never used");

        let mut leaf = vec![1u8; 1024];
        set_dir_leaf(5, &mut leaf);
        assert!(has_dir_tail(&leaf) && dir_leaf_ok(5, &leaf));
        leaf[3] ^= 1;
        assert!(!dir_leaf_ok(5, &leaf));

        let mut ext = vec![0u8; 1024];
        ext[extent::HEADER_MAX] = 84;
        set_extent_block(9, &mut ext);
        assert!(extent_block_ok(9, &ext));
        ext[extent::HEADER_MAX] = 85; // the tail would pass the block
        assert!(!extent_block_ok(9, &ext));

        let mut x = vec![3u8; 1024];
        set_xattr_block(4, 100, &mut x);
        assert!(xattr_block_ok(4, 100, &x) && !xattr_block_ok(4, 101, &x));
    }

    #[test]
    fn dx_tails_are_found_only_where_they_fit() {
        let mut b = vec![0u8; 1024];
        let index = dx::ROOT_ENTRIES;
        b[index..index + 2].copy_from_slice(&123u16.to_le_bytes()); // limit
        b[index + 2..index + 4].copy_from_slice(&2u16.to_le_bytes()); // count
        let tail = dx_tail(&b, index).unwrap();
        assert_eq!(tail, index + 123 * 8);
        set_dx_node(7, &mut b, index);
        assert!(dx_node_ok(7, &b, index, tail));
        b[index + 2..index + 4].copy_from_slice(&124u16.to_le_bytes());
        assert_eq!(dx_tail(&b, index), None, "count past the limit");
    }
}
