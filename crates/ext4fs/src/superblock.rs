//! The superblock: geometry, features, and the checks that make every later computation safe.
//! Layout: e2fsprogs lib/ext2fs/ext2_fs.h `struct ext2_super_block`.

use crate::crc::crc32c_le;
use crate::error::{Checksummed, Error, Result};
use crate::le::{u16_at, u32_at, u8_at};

pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_SIZE: usize = 1024;
const MAGIC: u16 = 0xef53;

pub mod compat {
    pub const EXT_ATTR: u32 = 0x8;
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const DIR_INDEX: u32 = 0x20;
    pub const SPARSE_SUPER2: u32 = 0x200;
}

pub mod incompat {
    pub const COMPRESSION: u32 = 0x1;
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
}

pub mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const BIGALLOC: u32 = 0x200;
    pub const METADATA_CSUM: u32 = 0x400;
    /// Blocks may be shared between files (deduplicated images, Android's e2fsdroid -s).
    pub const SHARED_BLOCKS: u32 = 0x4000;
}

/// Incompatible features this reader understands. Reading ignores none of the others: each
/// one changes the on-disk format.
const SUPPORTED_INCOMPAT: u32 = incompat::FILETYPE
    | incompat::RECOVER
    | incompat::META_BG
    | incompat::EXTENTS
    | incompat::BIT64
    | incompat::MMP
    | incompat::FLEX_BG
    | incompat::EA_INODE
    | incompat::CSUM_SEED
    | incompat::LARGEDIR
    | incompat::INLINE_DATA
    | incompat::CASEFOLD;

/// The names of the incompatible feature bits, as `tune2fs -l` prints them.
const INCOMPAT_NAMES: [(u32, &str); 17] = [
    (incompat::COMPRESSION, "compression"),
    (incompat::FILETYPE, "filetype"),
    (incompat::RECOVER, "needs_recovery"),
    (incompat::JOURNAL_DEV, "journal_dev"),
    (incompat::META_BG, "meta_bg"),
    (incompat::EXTENTS, "extent"),
    (incompat::BIT64, "64bit"),
    (incompat::MMP, "mmp"),
    (incompat::FLEX_BG, "flex_bg"),
    (incompat::EA_INODE, "ea_inode"),
    (incompat::DIRDATA, "dirdata"),
    (incompat::CSUM_SEED, "metadata_csum_seed"),
    (incompat::LARGEDIR, "large_dir"),
    (incompat::INLINE_DATA, "inline_data"),
    (incompat::ENCRYPT, "encrypt"),
    (incompat::CASEFOLD, "casefold"),
    (0x40000, "encrypted_casefold"),
];

/// The parsed and validated superblock.
#[derive(Debug, Clone)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub first_data_block: u32,
    pub block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inode_size: u32,
    pub first_ino: u32,
    pub rev_level: u32,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub desc_size: u32,
    pub first_meta_bg: u32,
    pub backup_bgs: [u32; 2],
    pub group_count: u32,
    /// The seed of every metadata checksum (`s_checksum_seed` or crc32c of the uuid).
    pub csum_seed: u32,
    pub volume_name: [u8; 16],
    /// `s_mkfs_time` and `s_wtime` (seconds, low 32 bits).
    pub mkfs_time: u32,
    pub write_time: u32,
}

impl Superblock {
    /// Parse the 1024 bytes at offset 1024 of the image.
    pub fn parse(b: &[u8]) -> Result<Superblock> {
        if b.len() < SUPERBLOCK_SIZE {
            return Err(Error::NotExt4 {
                reason: "image shorter than a superblock".into(),
            });
        }
        if u16_at(b, 0x38) != MAGIC {
            return Err(Error::NotExt4 {
                reason: "bad magic number in superblock".into(),
            });
        }
        let bad = |reason: String| Err(Error::BadSuperblock { reason });
        let feature_compat = u32_at(b, 0x5c);
        let feature_incompat = u32_at(b, 0x60);
        let feature_ro_compat = u32_at(b, 0x64);
        let unknown = feature_incompat & !SUPPORTED_INCOMPAT;
        if unknown != 0 {
            let feature = INCOMPAT_NAMES
                .iter()
                .find(|(bit, _)| unknown & bit != 0)
                .map_or("unknown incompatible feature", |(_, name)| name);
            return Err(Error::UnsupportedFeature { feature });
        }
        let metadata_csum = feature_ro_compat & ro_compat::METADATA_CSUM != 0;
        if metadata_csum {
            if u8_at(b, 0x175) != 1 {
                return bad(format!("unknown checksum type {}", u8_at(b, 0x175)));
            }
            let want = u32_at(b, 0x3fc);
            if crc32c_le(!0, &b[..0x3fc]) != want {
                return Err(Error::ChecksumMismatch {
                    what: Checksummed::Superblock,
                });
            }
        }

        let log_block = u32_at(b, 0x18);
        if log_block > 6 {
            return bad(format!("block size 1024 << {log_block} is over 64 KiB"));
        }
        let block_size = 1024u32 << log_block;
        let rev_level = u32_at(b, 0x4c);
        let (inode_size, first_ino) = if rev_level == 0 {
            (128, 11)
        } else {
            (u32::from(u16_at(b, 0x58)), u32_at(b, 0x54))
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return bad(format!("inode size {inode_size}"));
        }
        let bit64 = feature_incompat & incompat::BIT64 != 0;
        let blocks_count = u64::from(u32_at(b, 0x4))
            | if bit64 {
                u64::from(u32_at(b, 0x150)) << 32
            } else {
                0
            };
        // Every byte offset computed later (block * size + offset) then fits in a u64.
        if blocks_count.checked_mul(u64::from(block_size)).is_none() {
            return bad(format!("{blocks_count} blocks of {block_size} bytes"));
        }
        let first_data_block = u32_at(b, 0x14);
        if u64::from(first_data_block) >= blocks_count {
            return bad(format!(
                "first data block {first_data_block} beyond {blocks_count} blocks"
            ));
        }
        let blocks_per_group = u32_at(b, 0x20);
        // bigalloc groups hold clusters_per_group clusters of 2^n blocks each.
        let cluster_shift = if feature_ro_compat & ro_compat::BIGALLOC != 0 {
            u32_at(b, 0x1c).saturating_sub(log_block)
        } else {
            0
        };
        if cluster_shift > 16 {
            return bad(format!("cluster size 2^{cluster_shift} blocks"));
        }
        let max_per_group = (u64::from(block_size) * 8) << cluster_shift;
        if blocks_per_group == 0 || u64::from(blocks_per_group) > max_per_group {
            return bad(format!("{blocks_per_group} blocks per group"));
        }
        let inodes_per_group = u32_at(b, 0x28);
        if inodes_per_group == 0 || inodes_per_group > block_size * 8 {
            return bad(format!("{inodes_per_group} inodes per group"));
        }
        let groups =
            (blocks_count - u64::from(first_data_block)).div_ceil(u64::from(blocks_per_group));
        let Ok(group_count) = u32::try_from(groups) else {
            return bad(format!("{groups} block groups"));
        };
        let inodes_count = u32_at(b, 0x0);
        if inodes_count == 0
            || u64::from(inodes_count) > u64::from(group_count) * u64::from(inodes_per_group)
        {
            return bad(format!(
                "{inodes_count} inodes in {group_count} groups of {inodes_per_group}"
            ));
        }
        if first_ino < 11 || first_ino > inodes_count {
            return bad(format!("first inode {first_ino}"));
        }
        let desc_size = if bit64 {
            let d = u32::from(u16_at(b, 0xfe));
            if !(64..=1024).contains(&d) || !d.is_power_of_two() {
                return bad(format!("group descriptor size {d}"));
            }
            d
        } else {
            32
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let mut volume_name = [0u8; 16];
        volume_name.copy_from_slice(&b[0x78..0x88]);
        let csum_seed = if feature_incompat & incompat::CSUM_SEED != 0 {
            u32_at(b, 0x270)
        } else {
            crc32c_le(!0, &uuid)
        };
        Ok(Superblock {
            inodes_count,
            blocks_count,
            first_data_block,
            block_size,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            first_ino,
            rev_level,
            feature_compat,
            feature_incompat,
            feature_ro_compat,
            uuid,
            desc_size,
            first_meta_bg: u32_at(b, 0x104),
            backup_bgs: [u32_at(b, 0x24c), u32_at(b, 0x250)],
            group_count,
            csum_seed,
            volume_name,
            mkfs_time: u32_at(b, 0x108),
            write_time: u32_at(b, 0x30),
        })
    }

    pub fn has_incompat(&self, bit: u32) -> bool {
        self.feature_incompat & bit != 0
    }

    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.feature_ro_compat & bit != 0
    }

    pub fn has_compat(&self, bit: u32) -> bool {
        self.feature_compat & bit != 0
    }

    pub fn metadata_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::METADATA_CSUM)
    }

    /// Whether the journal must be replayed before the file system is consistent.
    pub fn needs_recovery(&self) -> bool {
        self.has_incompat(incompat::RECOVER)
    }

    /// Group descriptors that fit in one block.
    pub fn descs_per_block(&self) -> u32 {
        self.block_size / self.desc_size
    }

    /// The first block of a group.
    pub fn group_first_block(&self, group: u32) -> u64 {
        u64::from(self.first_data_block) + u64::from(group) * u64::from(self.blocks_per_group)
    }

    /// Whether a group holds a superblock backup (and so the descriptors in meta_bg).
    /// e2fsprogs `ext2fs_bg_has_super`.
    pub fn group_has_super(&self, group: u32) -> bool {
        if group == 0 {
            return true;
        }
        if self.has_compat(compat::SPARSE_SUPER2) {
            return self.backup_bgs.contains(&group);
        }
        if group <= 1 || !self.has_ro_compat(ro_compat::SPARSE_SUPER) {
            return true;
        }
        if group & 1 == 0 {
            return false;
        }
        [3u32, 5, 7].iter().any(|&base| is_power_of(group, base))
    }

    /// The block holding the descriptor of `group`, and the descriptor's byte offset in it.
    /// e2fsprogs `ext2fs_descriptor_block_loc2`.
    pub fn descriptor_location(&self, group: u32) -> (u64, u32) {
        let per_block = self.descs_per_block();
        let index = group / per_block;
        let offset = (group % per_block) * self.desc_size;
        let block = if self.has_incompat(incompat::META_BG) && index >= self.first_meta_bg {
            let first = index * per_block;
            self.group_first_block(first) + u64::from(self.group_has_super(first))
        } else {
            u64::from(self.first_data_block) + 1 + u64::from(index)
        };
        (block, offset)
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n > 1 && n % base == 0 {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid superblock: 4 KiB blocks, 1 group of 8192 blocks, 128-byte inodes.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_SIZE];
        let put =
            |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put(&mut b, 0x0, 2048); // inodes
        put(&mut b, 0x4, 8192); // blocks
        put(&mut b, 0x18, 2); // 4 KiB
        put(&mut b, 0x20, 32768);
        put(&mut b, 0x28, 2048);
        put(&mut b, 0x4c, 1);
        put(&mut b, 0x54, 11);
        b[0x58..0x5a].copy_from_slice(&256u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&MAGIC.to_le_bytes());
        b
    }

    #[test]
    fn parses_geometry() {
        let sb = Superblock::parse(&sample()).unwrap();
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.group_count, 1);
        assert_eq!(sb.inode_size, 256);
        assert_eq!(sb.descriptor_location(0), (1, 0));
    }

    #[test]
    fn refuses_bad_magic_and_unknown_features_by_name() {
        let mut b = sample();
        b[0x38] = 0;
        assert!(matches!(Superblock::parse(&b), Err(Error::NotExt4 { .. })));
        let mut b = sample();
        b[0x62] = 0x1; // incompat 0x10000: encrypt
        let err = Superblock::parse(&b).unwrap_err();
        assert_eq!(err.to_string(), "unsupported file system feature: encrypt");
        let mut b = sample();
        b[0x60] = 0x1;
        assert!(Superblock::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("compression"));
    }

    #[test]
    fn refuses_impossible_geometry() {
        for (off, v) in [
            (0x18usize, 7u32),
            (0x20, 0),
            (0x28, 0),
            (0x28, 1 << 20),
            (0x0, 0),
        ] {
            let mut b = sample();
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
            assert!(Superblock::parse(&b).is_err(), "field {off:#x} = {v}");
        }
    }

    #[test]
    fn refuses_a_block_count_past_the_byte_range() {
        let mut b = sample();
        b[0x60] = 0x80; // 64bit
        b[0xfe] = 64;
        b[0x150..0x154].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        let err = Superblock::parse(&b).unwrap_err().to_string();
        assert!(err.contains("blocks of 4096 bytes"), "{err}");
    }

    #[test]
    fn checks_the_superblock_checksum() {
        let mut b = sample();
        b[0x64] = 0; // ro_compat
        b[0x65] = 0x4; // metadata_csum
        b[0x175] = 1;
        let sum = crc32c_le(!0, &b[..0x3fc]);
        b[0x3fc..0x400].copy_from_slice(&sum.to_le_bytes());
        assert!(Superblock::parse(&b).is_ok());
        b[0x3fc] ^= 1;
        assert_eq!(
            Superblock::parse(&b).unwrap_err().to_string(),
            "checksum mismatch in the superblock"
        );
    }

    #[test]
    fn backup_groups() {
        let mut b = sample();
        b[0x64] = 1; // sparse_super
        let sb = Superblock::parse(&b).unwrap();
        let with: Vec<u32> = (0..60).filter(|&g| sb.group_has_super(g)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }
}
