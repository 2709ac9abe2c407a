//! The superblock: geometry, features, and the checks that make every later computation
//! safe; and, for the writer, the fields it changes written back with a new checksum.

use crate::csum;
use crate::error::{Checksummed, Error, Result};
use crate::format::{
    gd, sb, Compat, Incompat, RoCompat, SbFlags, State, GOOD_OLD_FIRST_INO, GOOD_OLD_INODE_SIZE,
    SUPERBLOCK_SIZE,
};
use crate::le::{put_u16, put_u32, u16_at, u32_at, u8_at};

/// Incompatible features this reader understands. Reading ignores none of the others: each
/// one changes the on-disk format.
const SUPPORTED_INCOMPAT: Incompat = Incompat::FILETYPE
    .union(Incompat::RECOVER)
    .union(Incompat::META_BG)
    .union(Incompat::EXTENTS)
    .union(Incompat::BIT64)
    .union(Incompat::MMP)
    .union(Incompat::FLEX_BG)
    .union(Incompat::EA_INODE)
    .union(Incompat::CSUM_SEED)
    .union(Incompat::LARGEDIR)
    .union(Incompat::INLINE_DATA)
    .union(Incompat::CASEFOLD);

/// The parsed and validated superblock.
///
/// The geometry and identity fields are as mkfs wrote them. [`Superblock::encode`] writes
/// back what a writer may change: the free counts, the three feature words and the state;
/// the other fields are not written back.
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
    pub feature_compat: Compat,
    pub feature_incompat: Incompat,
    pub feature_ro_compat: RoCompat,
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
    pub state: State,
    /// `s_flags`: the signedness of directory hashes.
    pub flags: SbFlags,
    /// `s_hash_seed` as four little-endian words (all zeros: the default seed).
    pub hash_seed: [u32; 4],
    /// `s_def_hash_version` as stored (0..=2 for the classic algorithms).
    pub def_hash_version: u8,
    /// `s_min_extra_isize`: the `i_extra_isize` every inode must have at least (0: none).
    pub min_extra_isize: u16,
    /// `s_reserved_gdt_blocks`: descriptor blocks kept for growing the file system.
    pub reserved_gdt_blocks: u16,
    pub free_blocks_count: u64,
    pub free_inodes_count: u32,
    /// The 1024 bytes as read, for the fields this type does not hold.
    raw: Raw,
}

/// The superblock's bytes, shown by their length only.
#[derive(Clone)]
struct Raw(Vec<u8>);

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} bytes]", self.0.len())
    }
}

/// Block and group geometry, checked so that every later offset computation fits.
struct Geometry {
    block_size: u32,
    blocks_count: u64,
    first_data_block: u32,
    blocks_per_group: u32,
    inodes_per_group: u32,
    group_count: u32,
    inodes_count: u32,
}

fn bad<T>(reason: String) -> Result<T> {
    Err(Error::BadSuperblock { reason })
}

impl Superblock {
    /// Parse the 1024 bytes at offset 1024 of the image.
    pub fn parse(b: &[u8]) -> Result<Superblock> {
        check_header(b)?;
        let incompat = Incompat::from_bits_retain(u32_at(b, sb::FEATURE_INCOMPAT));
        let ro_compat = RoCompat::from_bits_retain(u32_at(b, sb::FEATURE_RO_COMPAT));
        let geo = geometry(b, incompat, ro_compat)?;
        let rev_level = u32_at(b, sb::REV_LEVEL);
        let (inode_size, first_ino) = if rev_level == sb::GOOD_OLD_REV {
            (GOOD_OLD_INODE_SIZE as u32, GOOD_OLD_FIRST_INO)
        } else {
            (
                u32::from(u16_at(b, sb::INODE_SIZE)),
                u32_at(b, sb::FIRST_INO),
            )
        };
        if inode_size < GOOD_OLD_INODE_SIZE as u32
            || !inode_size.is_power_of_two()
            || inode_size > geo.block_size
        {
            return bad(format!("inode size {inode_size}"));
        }
        if first_ino < GOOD_OLD_FIRST_INO || first_ino > geo.inodes_count {
            return bad(format!("first inode {first_ino}"));
        }
        let desc_size = desc_size(b, incompat)?;
        let uuid = bytes16(b, sb::UUID);
        let csum_seed = if incompat.contains(Incompat::CSUM_SEED) {
            u32_at(b, sb::CHECKSUM_SEED)
        } else {
            csum::fs_seed(&uuid)
        };
        let free_blocks_hi = if incompat.contains(Incompat::BIT64) {
            u64::from(u32_at(b, sb::FREE_BLOCKS_COUNT_HI)) << 32
        } else {
            0
        };
        Ok(Superblock {
            inodes_count: geo.inodes_count,
            blocks_count: geo.blocks_count,
            first_data_block: geo.first_data_block,
            block_size: geo.block_size,
            blocks_per_group: geo.blocks_per_group,
            inodes_per_group: geo.inodes_per_group,
            inode_size,
            first_ino,
            rev_level,
            feature_compat: Compat::from_bits_retain(u32_at(b, sb::FEATURE_COMPAT)),
            feature_incompat: incompat,
            feature_ro_compat: ro_compat,
            uuid,
            desc_size,
            first_meta_bg: u32_at(b, sb::FIRST_META_BG),
            backup_bgs: [u32_at(b, sb::BACKUP_BGS), u32_at(b, sb::BACKUP_BGS + 4)],
            group_count: geo.group_count,
            csum_seed,
            volume_name: bytes16(b, sb::VOLUME_NAME),
            mkfs_time: u32_at(b, sb::MKFS_TIME),
            write_time: u32_at(b, sb::WTIME),
            state: State::from_bits_retain(u16_at(b, sb::STATE)),
            flags: SbFlags::from_bits_retain(u32_at(b, sb::FLAGS)),
            hash_seed: [0, 1, 2, 3].map(|i| u32_at(b, sb::HASH_SEED + 4 * i)),
            def_hash_version: u8_at(b, sb::DEF_HASH_VERSION),
            min_extra_isize: u16_at(b, sb::MIN_EXTRA_ISIZE),
            reserved_gdt_blocks: u16_at(b, sb::RESERVED_GDT_BLOCKS),
            free_blocks_count: u64::from(u32_at(b, sb::FREE_BLOCKS_COUNT_LO)) | free_blocks_hi,
            free_inodes_count: u32_at(b, sb::FREE_INODES_COUNT),
            raw: Raw(b[..SUPERBLOCK_SIZE].to_vec()),
        })
    }

    /// The superblock's 1024 bytes: as read, with the free counts, the feature words and
    /// the state of this value, and (with metadata_csum) a new checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.raw.0.clone();
        put_u32(
            &mut b,
            sb::FREE_BLOCKS_COUNT_LO,
            self.free_blocks_count as u32,
        );
        if self.has_incompat(Incompat::BIT64) {
            put_u32(
                &mut b,
                sb::FREE_BLOCKS_COUNT_HI,
                (self.free_blocks_count >> 32) as u32,
            );
        }
        put_u32(&mut b, sb::FREE_INODES_COUNT, self.free_inodes_count);
        put_u32(&mut b, sb::FEATURE_COMPAT, self.feature_compat.bits());
        put_u32(&mut b, sb::FEATURE_INCOMPAT, self.feature_incompat.bits());
        put_u32(&mut b, sb::FEATURE_RO_COMPAT, self.feature_ro_compat.bits());
        put_u16(&mut b, sb::STATE, self.state.bits());
        if self.metadata_csum() {
            csum::set_superblock(&mut b);
        }
        b
    }

    pub fn has_incompat(&self, features: Incompat) -> bool {
        self.feature_incompat.intersects(features)
    }

    pub fn has_ro_compat(&self, features: RoCompat) -> bool {
        self.feature_ro_compat.intersects(features)
    }

    pub fn has_compat(&self, features: Compat) -> bool {
        self.feature_compat.intersects(features)
    }

    pub fn metadata_csum(&self) -> bool {
        self.has_ro_compat(RoCompat::METADATA_CSUM)
    }

    /// Whether group descriptors carry a checksum and `*_UNINIT` flags (`gdt_csum` or
    /// `metadata_csum`).
    pub fn group_csums(&self) -> bool {
        self.has_ro_compat(RoCompat::METADATA_CSUM | RoCompat::GDT_CSUM)
    }

    /// Whether the journal must be replayed before the file system is consistent.
    pub fn needs_recovery(&self) -> bool {
        self.has_incompat(Incompat::RECOVER)
    }

    /// The directory hash version to compute with: `s_def_hash_version` with the
    /// superblock's char signedness applied (see [`crate::dirhash::effective_version`]).
    pub fn dir_hash_version(&self) -> u8 {
        crate::dirhash::effective_version(self.def_hash_version, self.flags)
    }

    /// Group descriptors that fit in one block.
    pub fn descs_per_block(&self) -> u32 {
        self.block_size / self.desc_size
    }

    /// The first block of a group.
    pub fn group_first_block(&self, group: u32) -> u64 {
        u64::from(self.first_data_block) + u64::from(group) * u64::from(self.blocks_per_group)
    }

    /// The group holding `block` (which must lie in the file system).
    pub fn group_of_block(&self, block: u64) -> u32 {
        ((block - u64::from(self.first_data_block)) / u64::from(self.blocks_per_group)) as u32
    }

    /// The group of inode `ino` and its index in that group's table.
    pub fn inode_location(&self, ino: crate::Ino) -> (u32, u32) {
        let i = ino.get() - 1;
        (i / self.inodes_per_group, i % self.inodes_per_group)
    }

    /// Blocks of one group's inode table.
    pub fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.inodes_per_group) * u64::from(self.inode_size))
            .div_ceil(u64::from(self.block_size))
    }

    /// Whether a group holds a superblock backup (and so the descriptors in meta_bg).
    /// e2fsprogs `ext2fs_bg_has_super`.
    pub fn group_has_super(&self, group: u32) -> bool {
        if group == 0 {
            return true;
        }
        if self.has_compat(Compat::SPARSE_SUPER2) {
            return self.backup_bgs.contains(&group);
        }
        if group <= 1 || !self.has_ro_compat(RoCompat::SPARSE_SUPER) {
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
        let block = if self.has_incompat(Incompat::META_BG) && index >= self.first_meta_bg {
            let first = index * per_block;
            self.group_first_block(first) + u64::from(self.group_has_super(first))
        } else {
            u64::from(self.first_data_block) + 1 + u64::from(index)
        };
        (block, offset)
    }
}

/// The magic number, the incompatible features (refused by name when unknown) and the
/// checksum.
fn check_header(b: &[u8]) -> Result<()> {
    if b.len() < SUPERBLOCK_SIZE {
        return Err(Error::NotExt4 {
            reason: "image shorter than a superblock".into(),
        });
    }
    if u16_at(b, sb::MAGIC) != sb::MAGIC_VALUE {
        return Err(Error::NotExt4 {
            reason: "bad magic number in superblock".into(),
        });
    }
    let incompat = Incompat::from_bits_retain(u32_at(b, sb::FEATURE_INCOMPAT));
    let unknown = incompat.difference(SUPPORTED_INCOMPAT);
    if let Some(first) = unknown.iter().next() {
        let feature = first.name().unwrap_or("unknown incompatible feature");
        return Err(Error::UnsupportedFeature { feature });
    }
    let ro_compat = RoCompat::from_bits_retain(u32_at(b, sb::FEATURE_RO_COMPAT));
    if ro_compat.contains(RoCompat::METADATA_CSUM) {
        let kind = u8_at(b, sb::CHECKSUM_TYPE);
        if kind != sb::CHECKSUM_TYPE_CRC32C {
            return bad(format!("unknown checksum type {kind}"));
        }
        if !csum::superblock_ok(b) {
            return Err(Error::ChecksumMismatch {
                what: Checksummed::Superblock,
            });
        }
    }
    Ok(())
}

/// Block size, counts and group sizes, each in range.
fn geometry(b: &[u8], incompat: Incompat, ro_compat: RoCompat) -> Result<Geometry> {
    let log_block = u32_at(b, sb::LOG_BLOCK_SIZE);
    if log_block > sb::MAX_LOG_BLOCK_SIZE {
        return bad(format!("block size 1024 << {log_block} is over 64 KiB"));
    }
    let block_size = 1024u32 << log_block;
    let blocks_hi = if incompat.contains(Incompat::BIT64) {
        u64::from(u32_at(b, sb::BLOCKS_COUNT_HI)) << 32
    } else {
        0
    };
    let blocks_count = u64::from(u32_at(b, sb::BLOCKS_COUNT_LO)) | blocks_hi;
    // Every byte offset computed later (block * size + offset) then fits in a u64.
    if blocks_count.checked_mul(u64::from(block_size)).is_none() {
        return bad(format!("{blocks_count} blocks of {block_size} bytes"));
    }
    let first_data_block = u32_at(b, sb::FIRST_DATA_BLOCK);
    if u64::from(first_data_block) >= blocks_count {
        return bad(format!(
            "first data block {first_data_block} beyond {blocks_count} blocks"
        ));
    }
    let blocks_per_group = u32_at(b, sb::BLOCKS_PER_GROUP);
    // bigalloc groups hold clusters_per_group clusters of 2^n blocks each.
    let cluster_shift = if ro_compat.contains(RoCompat::BIGALLOC) {
        u32_at(b, sb::LOG_CLUSTER_SIZE).saturating_sub(log_block)
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
    let inodes_per_group = u32_at(b, sb::INODES_PER_GROUP);
    if inodes_per_group == 0 || inodes_per_group > block_size * 8 {
        return bad(format!("{inodes_per_group} inodes per group"));
    }
    let groups = (blocks_count - u64::from(first_data_block)).div_ceil(u64::from(blocks_per_group));
    let Ok(group_count) = u32::try_from(groups) else {
        return bad(format!("{groups} block groups"));
    };
    let inodes_count = u32_at(b, sb::INODES_COUNT);
    if inodes_count == 0
        || u64::from(inodes_count) > u64::from(group_count) * u64::from(inodes_per_group)
    {
        return bad(format!(
            "{inodes_count} inodes in {group_count} groups of {inodes_per_group}"
        ));
    }
    Ok(Geometry {
        block_size,
        blocks_count,
        first_data_block,
        blocks_per_group,
        inodes_per_group,
        group_count,
        inodes_count,
    })
}

/// The group descriptor size: 32 bytes, or with `64bit` a power of two from 64 to 1024.
fn desc_size(b: &[u8], incompat: Incompat) -> Result<u32> {
    if !incompat.contains(Incompat::BIT64) {
        return Ok(gd::SIZE);
    }
    let d = u32::from(u16_at(b, sb::DESC_SIZE));
    if !(gd::SIZE_64BIT..=1024).contains(&d) || !d.is_power_of_two() {
        return bad(format!("group descriptor size {d}"));
    }
    Ok(d)
}

fn bytes16(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(src) = b.get(at..at + 16) {
        out.copy_from_slice(src);
    }
    out
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
        b[0x38..0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
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
        let mut b = sample();
        b[0x63] = 0x80; // a bit no version defines
        assert!(Superblock::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("unknown incompatible feature"));
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
        csum::set_superblock(&mut b);
        assert!(Superblock::parse(&b).is_ok());
        b[0x3fc] ^= 1;
        assert_eq!(
            Superblock::parse(&b).unwrap_err().to_string(),
            "checksum mismatch in the superblock"
        );
    }

    #[test]
    fn encode_writes_back_counts_and_features_only() {
        let mut b = sample();
        b[0x65] = 0x4; // metadata_csum
        b[0x175] = 1;
        b[0x200] = 0x5a; // a field this type does not hold
        csum::set_superblock(&mut b);
        let mut sb = Superblock::parse(&b).unwrap();
        assert_eq!(sb.encode(), b, "unchanged, the same bytes");
        sb.free_blocks_count = 77;
        sb.free_inodes_count = 5;
        sb.feature_ro_compat |= RoCompat::LARGE_FILE;
        sb.block_size = 1024; // not written back
        let out = sb.encode();
        let again = Superblock::parse(&out).unwrap();
        assert_eq!((again.free_blocks_count, again.free_inodes_count), (77, 5));
        assert!(again.has_ro_compat(RoCompat::LARGE_FILE));
        assert_eq!((again.block_size, out[0x200]), (4096, 0x5a));
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
