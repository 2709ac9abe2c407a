//! The on-disk format, defined once: every offset, magic number, flag and feature bit the
//! reader and the writer use. Offsets are in bytes from the start of their structure and
//! every field is little-endian. The layouts are those of e2fsprogs' `lib/ext2fs/ext2_fs.h`
//! (`struct ext2_super_block`, `ext4_group_desc`, `ext2_inode_large`, `ext2_dir_entry_2`),
//! `ext3_extents.h` and `ext2_ext_attr.h`.

use bitflags::bitflags;

/// Where the primary superblock starts, whatever the block size.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// The size of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// The root directory's inode number.
pub const ROOT_INO: u32 = 2;
/// The first inode number of revision 0 file systems (inodes 1 to 10 are reserved).
pub const GOOD_OLD_FIRST_INO: u32 = 11;
/// The size of a revision 0 inode, and of the base part of every inode.
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// The most names one inode may have (`EXT4_LINK_MAX`); a directory with more
/// subdirectories has a link count of 1 (the `dir_nlink` feature).
pub const LINK_MAX: u32 = 65000;
/// The longest name in a directory.
pub const NAME_MAX: usize = 255;

/// `struct ext2_super_block`.
pub mod sb {
    pub const INODES_COUNT: usize = 0x0;
    pub const BLOCKS_COUNT_LO: usize = 0x4;
    pub const FREE_BLOCKS_COUNT_LO: usize = 0xc;
    pub const FREE_INODES_COUNT: usize = 0x10;
    pub const FIRST_DATA_BLOCK: usize = 0x14;
    pub const LOG_BLOCK_SIZE: usize = 0x18;
    pub const LOG_CLUSTER_SIZE: usize = 0x1c;
    pub const BLOCKS_PER_GROUP: usize = 0x20;
    pub const INODES_PER_GROUP: usize = 0x28;
    pub const WTIME: usize = 0x30;
    pub const MAGIC: usize = 0x38;
    pub const STATE: usize = 0x3a;
    pub const REV_LEVEL: usize = 0x4c;
    pub const FIRST_INO: usize = 0x54;
    pub const INODE_SIZE: usize = 0x58;
    pub const FEATURE_COMPAT: usize = 0x5c;
    pub const FEATURE_INCOMPAT: usize = 0x60;
    pub const FEATURE_RO_COMPAT: usize = 0x64;
    pub const UUID: usize = 0x68;
    pub const VOLUME_NAME: usize = 0x78;
    pub const RESERVED_GDT_BLOCKS: usize = 0xce;
    /// Four little-endian words.
    pub const HASH_SEED: usize = 0xec;
    pub const DEF_HASH_VERSION: usize = 0xfc;
    pub const DESC_SIZE: usize = 0xfe;
    pub const FIRST_META_BG: usize = 0x104;
    pub const MKFS_TIME: usize = 0x108;
    pub const BLOCKS_COUNT_HI: usize = 0x150;
    pub const FREE_BLOCKS_COUNT_HI: usize = 0x158;
    pub const MIN_EXTRA_ISIZE: usize = 0x15c;
    pub const FLAGS: usize = 0x160;
    pub const CHECKSUM_TYPE: usize = 0x175;
    /// Two words: the groups holding backups with `sparse_super2`.
    pub const BACKUP_BGS: usize = 0x24c;
    pub const CHECKSUM_SEED: usize = 0x270;
    /// The crc32c of the 0x3fc bytes before it.
    pub const CHECKSUM: usize = 0x3fc;

    pub const MAGIC_VALUE: u16 = 0xef53;
    /// `s_checksum_type` of crc32c, the only one defined.
    pub const CHECKSUM_TYPE_CRC32C: u8 = 1;
    /// Revision 0: fixed 128-byte inodes, first inode 11, no feature words.
    pub const GOOD_OLD_REV: u32 = 0;
    /// The largest `s_log_block_size`: blocks of 1024 << 6 = 64 KiB.
    pub const MAX_LOG_BLOCK_SIZE: u32 = 6;
}

/// `struct ext4_group_desc`: the low halves in the first 32 bytes, the high halves (with
/// the `64bit` feature and a descriptor size of 64 or more) after them.
pub mod gd {
    pub const BLOCK_BITMAP_LO: usize = 0x0;
    pub const INODE_BITMAP_LO: usize = 0x4;
    pub const INODE_TABLE_LO: usize = 0x8;
    pub const FREE_BLOCKS_COUNT_LO: usize = 0xc;
    pub const FREE_INODES_COUNT_LO: usize = 0xe;
    pub const USED_DIRS_COUNT_LO: usize = 0x10;
    pub const FLAGS: usize = 0x12;
    pub const BLOCK_BITMAP_CSUM_LO: usize = 0x18;
    pub const INODE_BITMAP_CSUM_LO: usize = 0x1a;
    pub const ITABLE_UNUSED_LO: usize = 0x1c;
    /// crc16 (gdt_csum) or the low 16 bits of a crc32c (metadata_csum).
    pub const CHECKSUM: usize = 0x1e;
    pub const BLOCK_BITMAP_HI: usize = 0x20;
    pub const INODE_BITMAP_HI: usize = 0x24;
    pub const INODE_TABLE_HI: usize = 0x28;
    pub const FREE_BLOCKS_COUNT_HI: usize = 0x2c;
    pub const FREE_INODES_COUNT_HI: usize = 0x2e;
    pub const USED_DIRS_COUNT_HI: usize = 0x30;
    pub const ITABLE_UNUSED_HI: usize = 0x32;
    pub const BLOCK_BITMAP_CSUM_HI: usize = 0x38;
    pub const INODE_BITMAP_CSUM_HI: usize = 0x3a;

    /// The descriptor size without `64bit`.
    pub const SIZE: u32 = 32;
    /// The smallest descriptor size with `64bit`: the one that holds the high halves.
    pub const SIZE_64BIT: u32 = 64;
}

/// `struct ext2_inode_large`: 128 bytes of base record, then `i_extra_isize` bytes of
/// extra fields, then the in-inode extended attributes.
pub mod inode {
    pub const MODE: usize = 0x0;
    pub const UID: usize = 0x2;
    pub const SIZE_LO: usize = 0x4;
    pub const ATIME: usize = 0x8;
    pub const CTIME: usize = 0xc;
    pub const MTIME: usize = 0x10;
    pub const DTIME: usize = 0x14;
    pub const GID: usize = 0x18;
    pub const LINKS_COUNT: usize = 0x1a;
    pub const BLOCKS_LO: usize = 0x1c;
    pub const FLAGS: usize = 0x20;
    /// `i_block`: the extent root, the block map, a fast symlink's target, a device
    /// number or inline data.
    pub const BLOCK: usize = 0x28;
    pub const BLOCK_LEN: usize = 60;
    pub const GENERATION: usize = 0x64;
    pub const FILE_ACL_LO: usize = 0x68;
    pub const SIZE_HIGH: usize = 0x6c;
    pub const BLOCKS_HIGH: usize = 0x74;
    pub const FILE_ACL_HIGH: usize = 0x76;
    pub const UID_HIGH: usize = 0x78;
    pub const GID_HIGH: usize = 0x7a;
    pub const CHECKSUM_LO: usize = 0x7c;
    /// The first extra field: how many extra bytes follow the base record.
    pub const EXTRA_ISIZE: usize = 0x80;
    pub const CHECKSUM_HI: usize = 0x82;
    pub const CTIME_EXTRA: usize = 0x84;
    pub const MTIME_EXTRA: usize = 0x88;
    pub const ATIME_EXTRA: usize = 0x8c;
    pub const CRTIME: usize = 0x90;
    pub const CRTIME_EXTRA: usize = 0x94;
    /// The `i_extra_isize` the writer gives its inodes: every extra field up to and
    /// including `i_projid` (0x9c + 4 - 128 bytes).
    pub const WRITER_EXTRA_ISIZE: u16 = 32;
}

/// `struct ext2_dir_entry_2` and the checksum tail of a directory block.
pub mod dirent {
    pub const INODE: usize = 0;
    pub const REC_LEN: usize = 4;
    pub const NAME_LEN: usize = 6;
    pub const FILE_TYPE: usize = 7;
    pub const NAME: usize = 8;
    /// The header before the name.
    pub const HEADER: usize = 8;
    /// The 12-byte fake entry that ends a leaf block with `metadata_csum`: inode 0, record
    /// 12, name length 0, this type, then the crc32c.
    pub const TAIL_SIZE: usize = 12;
    pub const TAIL_FILE_TYPE: u8 = 0xde;
    /// Where the crc32c sits inside the tail.
    pub const TAIL_CHECKSUM: usize = 8;
    /// `.` and `..` take 12 bytes each.
    pub const DOT_REC_LEN: usize = 12;
}

/// The hash tree (htree) of an indexed directory: `dx_root_info`, `dx_countlimit`,
/// `dx_entry`, `dx_tail`.
pub mod dx {
    /// In block 0, after `.` and `..` (12 bytes each): the 8-byte root info.
    pub const ROOT_INFO: usize = 24;
    pub const ROOT_INFO_HASH_VERSION: usize = 24 + 4;
    pub const ROOT_INFO_LENGTH: usize = 24 + 5;
    pub const ROOT_INFO_LEVELS: usize = 24 + 6;
    pub const ROOT_INFO_LEN: u8 = 8;
    /// Where the root's index starts, after the root info.
    pub const ROOT_ENTRIES: usize = 32;
    /// Where an interior node's index starts, after its fake entry spanning the block.
    pub const NODE_ENTRIES: usize = 8;
    /// One (hash, block) pair; the first pair's hash is replaced by `limit` and `count`.
    pub const ENTRY_SIZE: usize = 8;
    pub const LIMIT: usize = 0;
    pub const COUNT: usize = 2;
    /// The tail after the last possible pair with `metadata_csum`: a reserved word, then
    /// the crc32c.
    pub const TAIL_SIZE: usize = 8;
    pub const TAIL_CHECKSUM: usize = 4;
}

/// Extent trees: `ext3_extent_header`, `ext3_extent` (leaves), `ext3_extent_idx` (index
/// nodes) and the tail after `eh_max` entries of a tree block.
pub mod extent {
    pub const MAGIC: u16 = 0xf30a;
    pub const HEADER_MAGIC: usize = 0;
    pub const HEADER_ENTRIES: usize = 2;
    pub const HEADER_MAX: usize = 4;
    pub const HEADER_DEPTH: usize = 6;
    pub const HEADER_SIZE: usize = 12;
    pub const ENTRY_SIZE: usize = 12;
    /// Both kinds start with the first logical block they cover.
    pub const FIRST_BLOCK: usize = 0;
    pub const LEAF_LEN: usize = 4;
    pub const LEAF_START_HI: usize = 6;
    pub const LEAF_START_LO: usize = 8;
    pub const INDEX_LEAF_LO: usize = 4;
    pub const INDEX_LEAF_HI: usize = 8;
    /// The crc32c after `eh_max` entries of a tree block.
    pub const TAIL_SIZE: usize = 4;
    /// Entries of the root in `i_block`.
    pub const ROOT_MAX: usize = 4;
    /// The longest initialised extent; a length above it marks an unwritten extent of
    /// (length - this) blocks.
    pub const INIT_MAX_LEN: u32 = 32768;
    /// The kernel's bound on the depth of a tree (`EXT4_MAX_EXTENT_DEPTH`).
    pub const MAX_DEPTH: u16 = 5;
}

/// The block map of ext2 and ext3 (inodes without `EXTENTS`): `i_block` holds 12 direct
/// block numbers, then one single, one double and one triple indirect block; an indirect
/// block is a list of 4-byte block numbers.
pub mod blockmap {
    pub const DIRECT: usize = 12;
    pub const SINGLE: usize = 12;
    pub const DOUBLE: usize = 13;
    pub const TRIPLE: usize = 14;
    pub const POINTERS: usize = 15;
    pub const POINTER_SIZE: usize = 4;
}

/// Extended attributes: the block header, the entries (in a block or in the inode).
pub mod xattr {
    pub const MAGIC: u32 = 0xea02_0000;
    pub const BLOCK_MAGIC: usize = 0x0;
    pub const BLOCK_REFCOUNT: usize = 0x4;
    pub const BLOCK_BLOCKS: usize = 0x8;
    pub const BLOCK_HASH: usize = 0xc;
    pub const BLOCK_CHECKSUM: usize = 0x10;
    /// The block header's size; entries follow it.
    pub const BLOCK_HEADER: usize = 32;
    pub const ENTRY_NAME_LEN: usize = 0;
    pub const ENTRY_NAME_INDEX: usize = 1;
    pub const ENTRY_VALUE_OFFS: usize = 2;
    pub const ENTRY_VALUE_INUM: usize = 4;
    pub const ENTRY_VALUE_SIZE: usize = 8;
    pub const ENTRY_HASH: usize = 12;
    pub const ENTRY_NAME: usize = 16;
    /// The zero word that ends a list of entries.
    pub const END_LEN: usize = 4;
    /// The in-inode area (after `i_extra_isize`) opens with the magic word; value offsets
    /// there count from the end of it.
    pub const INODE_HEADER: usize = 4;
    /// The largest value Linux accepts (`XATTR_SIZE_MAX`).
    pub const VALUE_MAX: u32 = 65536;

    /// Name indexes: the prefix an entry's name is stored without.
    pub const INDEX_NONE: u8 = 0;
    pub const INDEX_USER: u8 = 1;
    pub const INDEX_POSIX_ACL_ACCESS: u8 = 2;
    pub const INDEX_POSIX_ACL_DEFAULT: u8 = 3;
    pub const INDEX_TRUSTED: u8 = 4;
    pub const INDEX_LUSTRE: u8 = 5;
    pub const INDEX_SECURITY: u8 = 6;
    pub const INDEX_SYSTEM: u8 = 7;
    pub const INDEX_RICHACL: u8 = 8;
    pub const INDEX_GNU: u8 = 10;

    /// The name of inline data's tail (`system.data`, index 7).
    pub const INLINE_DATA_NAME: &[u8] = b"system.data";
    pub const POSIX_ACL_ACCESS: &[u8] = b"system.posix_acl_access";
    pub const POSIX_ACL_DEFAULT: &[u8] = b"system.posix_acl_default";
}

/// POSIX ACLs: ext4's compact form (`ext4_acl_header` version 1) and the xattr form every
/// tool exchanges (`posix_acl_xattr_header` version 2, 8-byte entries).
pub mod acl {
    pub const EXT4_VERSION: u32 = 1;
    pub const XATTR_VERSION: u32 = 2;
    /// Tags with an id (named user and group): 8 bytes in both forms.
    pub const USER: u16 = 0x02;
    pub const GROUP: u16 = 0x08;
    /// Tags without one: 4 bytes in ext4's form, 8 in the xattr form (id -1).
    pub const USER_OBJ: u16 = 0x01;
    pub const GROUP_OBJ: u16 = 0x04;
    pub const MASK: u16 = 0x10;
    pub const OTHER: u16 = 0x20;
}

/// The hash algorithms of indexed directories (`s_def_hash_version`, the dx root's hash
/// field): 0..=2 on disk; 3..=5 are their unsigned-char variants, which exist only in
/// memory (an on-disk dx root names 0..=2, the superblock's flags say the signedness).
pub mod hash_version {
    pub const LEGACY: u8 = 0;
    pub const HALF_MD4: u8 = 1;
    pub const TEA: u8 = 2;
    pub const LEGACY_UNSIGNED: u8 = 3;
    pub const HALF_MD4_UNSIGNED: u8 = 4;
    pub const TEA_UNSIGNED: u8 = 5;
    /// Case-folded encrypted directories only.
    pub const SIPHASH: u8 = 6;
    /// What an unsigned variant adds to its algorithm's number.
    pub const UNSIGNED_DELTA: u8 = 3;
}

bitflags! {
    /// Compatible features (`s_feature_compat`): an implementation that does not know
    /// one may still read and write the file system.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Compat: u32 {
        const DIR_PREALLOC = 0x1;
        const IMAGIC_INODES = 0x2;
        const HAS_JOURNAL = 0x4;
        const EXT_ATTR = 0x8;
        const RESIZE_INODE = 0x10;
        const DIR_INDEX = 0x20;
        const SPARSE_SUPER2 = 0x200;
        const FAST_COMMIT = 0x400;
        const STABLE_INODES = 0x800;
        const ORPHAN_FILE = 0x1000;
    }
}

bitflags! {
    /// Incompatible features (`s_feature_incompat`): each changes the format, so an
    /// implementation must refuse a file system with one it does not know.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Incompat: u32 {
        const COMPRESSION = 0x1;
        const FILETYPE = 0x2;
        const RECOVER = 0x4;
        const JOURNAL_DEV = 0x8;
        const META_BG = 0x10;
        const EXTENTS = 0x40;
        const BIT64 = 0x80;
        const MMP = 0x100;
        const FLEX_BG = 0x200;
        const EA_INODE = 0x400;
        const DIRDATA = 0x1000;
        const CSUM_SEED = 0x2000;
        const LARGEDIR = 0x4000;
        const INLINE_DATA = 0x8000;
        const ENCRYPT = 0x10000;
        const CASEFOLD = 0x20000;
        const ENCRYPTED_CASEFOLD = 0x40000;
    }
}

bitflags! {
    /// Read-only compatible features (`s_feature_ro_compat`): an implementation that does
    /// not know one may read the file system but must not write it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RoCompat: u32 {
        const SPARSE_SUPER = 0x1;
        const LARGE_FILE = 0x2;
        const BTREE_DIR = 0x4;
        const HUGE_FILE = 0x8;
        const GDT_CSUM = 0x10;
        const DIR_NLINK = 0x20;
        const EXTRA_ISIZE = 0x40;
        const HAS_SNAPSHOT = 0x80;
        const QUOTA = 0x100;
        const BIGALLOC = 0x200;
        const METADATA_CSUM = 0x400;
        const REPLICA = 0x800;
        const READONLY = 0x1000;
        const PROJECT = 0x2000;
        /// Blocks may be shared between files (deduplicated images, Android's
        /// `e2fsdroid -s`).
        const SHARED_BLOCKS = 0x4000;
        const VERITY = 0x8000;
        const ORPHAN_PRESENT = 0x1_0000;
    }
}

impl Incompat {
    /// The name `tune2fs -l` prints for one feature bit, if it is a known one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Incompat::COMPRESSION => "compression",
            Incompat::FILETYPE => "filetype",
            Incompat::RECOVER => "needs_recovery",
            Incompat::JOURNAL_DEV => "journal_dev",
            Incompat::META_BG => "meta_bg",
            Incompat::EXTENTS => "extent",
            Incompat::BIT64 => "64bit",
            Incompat::MMP => "mmp",
            Incompat::FLEX_BG => "flex_bg",
            Incompat::EA_INODE => "ea_inode",
            Incompat::DIRDATA => "dirdata",
            Incompat::CSUM_SEED => "metadata_csum_seed",
            Incompat::LARGEDIR => "large_dir",
            Incompat::INLINE_DATA => "inline_data",
            Incompat::ENCRYPT => "encrypt",
            Incompat::CASEFOLD => "casefold",
            Incompat::ENCRYPTED_CASEFOLD => "encrypted_casefold",
            _ => return None,
        })
    }
}

impl RoCompat {
    /// The name `tune2fs -l` prints for one feature bit, if it is a known one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            RoCompat::SPARSE_SUPER => "sparse_super",
            RoCompat::LARGE_FILE => "large_file",
            RoCompat::BTREE_DIR => "btree_dir",
            RoCompat::HUGE_FILE => "huge_file",
            RoCompat::GDT_CSUM => "uninit_bg",
            RoCompat::DIR_NLINK => "dir_nlink",
            RoCompat::EXTRA_ISIZE => "extra_isize",
            RoCompat::HAS_SNAPSHOT => "has_snapshot",
            RoCompat::QUOTA => "quota",
            RoCompat::BIGALLOC => "bigalloc",
            RoCompat::METADATA_CSUM => "metadata_csum",
            RoCompat::REPLICA => "replica",
            RoCompat::READONLY => "read-only",
            RoCompat::PROJECT => "project",
            RoCompat::SHARED_BLOCKS => "shared_blocks",
            RoCompat::VERITY => "verity",
            RoCompat::ORPHAN_PRESENT => "orphan_present",
            _ => return None,
        })
    }
}

bitflags! {
    /// `s_state`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct State: u16 {
        /// Cleanly unmounted.
        const VALID = 0x1;
        /// Errors were detected.
        const ERROR = 0x2;
        const ORPHAN = 0x4;
    }
}

bitflags! {
    /// `s_flags`: how this file system's directory hashes read name bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct SbFlags: u32 {
        const SIGNED_HASH = 0x1;
        const UNSIGNED_HASH = 0x2;
        const TEST_FILESYS = 0x4;
    }
}

bitflags! {
    /// `bg_flags` of a group descriptor (with `gdt_csum` or `metadata_csum`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct BgFlags: u16 {
        /// The inode table and bitmap are not initialised: every inode is free.
        const INODE_UNINIT = 0x1;
        /// The block bitmap is not initialised: only the group's metadata is in use.
        const BLOCK_UNINIT = 0x2;
        const ITABLE_ZEROED = 0x4;
    }
}

bitflags! {
    /// `i_flags` of an inode.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct InodeFlags: u32 {
        const ENCRYPT = 0x800;
        /// A hash-indexed directory.
        const INDEX = 0x1000;
        /// `i_blocks` counts file system blocks, not 512-byte sectors.
        const HUGE_FILE = 0x4_0000;
        /// `i_block` holds an extent tree.
        const EXTENTS = 0x8_0000;
        /// The inode holds an extended attribute's value.
        const EA_INODE = 0x20_0000;
        /// The data is in `i_block` and the `system.data` attribute.
        const INLINE_DATA = 0x1000_0000;
        /// A directory whose names are looked up without regard to case (`casefold`).
        const CASEFOLD = 0x4000_0000;
    }
}

/// The `S_IFMT` bits of a mode.
pub const S_IFMT: u16 = 0o170_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tune2fs_names() {
        assert_eq!(Incompat::BIT64.name(), Some("64bit"));
        assert_eq!(Incompat::from_bits_retain(0x80_0000).name(), None);
        assert_eq!(RoCompat::GDT_CSUM.name(), Some("uninit_bg"));
        // Several bits at once are not one feature.
        assert_eq!((Incompat::MMP | Incompat::BIT64).name(), None);
    }

    #[test]
    fn unknown_bits_are_kept() {
        let f = InodeFlags::from_bits_retain(0x8000_0001);
        assert_eq!(f.bits(), 0x8000_0001);
    }
}
