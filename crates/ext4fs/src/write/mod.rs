//! The writer: adds a tree to an image made by `mkfs.ext4` (or `mkfs.ext2`/`mkfs.ext3`).
//!
//! ```no_run
//! use ext4fs::write::{Meta, Writer, ROOT};
//! let image = std::fs::OpenOptions::new().read(true).write(true).open("seed.ext4")?;
//! let mut w = Writer::open(image)?;
//! let meta = Meta::default().with_mode(0o755);
//! let etc = w.mkdir(ROOT, b"etc", &meta)?;
//! let src = std::fs::File::open("hosts")?;
//! w.add_file(etc, b"hosts", &meta.clone().with_mode(0o644), &mut &src)?;
//! w.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it writes: directories, regular files (holes kept, data copied straight into the
//! image's blocks), fast and slow symlinks, fifos, sockets, character and block devices,
//! hard links, extended attributes (in the inode when they fit, else in one block that every
//! inode with the same set shares), the 12 mode bits, 32-bit owners, the four times with
//! nanoseconds. Inodes and blocks come from the bitmaps in order, so the same calls on the
//! same image give the same bytes; files are laid out one after the other in call order,
//! mapped by extent trees (any depth, one slot left free in every tree block as e2fsprogs
//! leaves it) or, without the `extent` feature, by block maps. How full blocks are filled,
//! and why, is written down in `docs/ext4-writer-layout.md`.
//! Directories are kept in memory (names only) and written when closed or at
//! [`Writer::finish`], with a hash index beyond one block when the image has `dir_index`.
//! Group descriptors (free counts, `*_UNINIT` flags, unused inodes), bitmaps, the superblock
//! and every checksum are brought up to date; backups of the superblock and descriptors are
//! left as mkfs wrote them (e2fsck does not compare their counts); the journal and the
//! orphan file are left alone.
//!
//! What it refuses, by name: images that need recovery, have errors or were not cleanly
//! unmounted, and the features `meta_bg`, `bigalloc`, `mmp`, `quota`, `readonly`,
//! `orphan_present`, unknown ones, and 64 KiB blocks. `inline_data`, `encrypt`, `casefold`
//! and `ea_inode` are accepted and left unused.
//!
//! After any error other than [`WriteError::EntryRefused`] the image is inconsistent and
//! must be thrown away; an entry refused leaves nothing of itself behind.

pub mod dir;
mod error;
mod extent;
mod group;
mod inode;
mod source;
mod xattr;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

pub use dir::{build_dir_blocks, DirBlocks, DirParams};
pub use error::{WResult, WriteError};
pub use source::{Dense, Source};

use crate::csum;
use crate::format::{
    dirent, inode::BLOCK_LEN, Compat, Incompat, InodeFlags, RoCompat, State, GOOD_OLD_INODE_SIZE,
    LINK_MAX, NAME_MAX, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};
use crate::inode::Time;
use crate::superblock::Superblock;
use crate::{Fs, Xattr};
use error::corrupt;
use extent::{Mapping, Piece};
use group::Groups;
use inode::Base;
use xattr::Stored;

/// The root directory's inode number: the parent of the tree's top entries.
pub const ROOT: u32 = crate::format::ROOT_INO;
/// Files up to this size are read whole into memory and written run by run, their holes
/// and all-zero blocks left unallocated (as mke2fs -d does); larger ones are copied range
/// by range, holes kept.
const SMALL_FILE: u64 = 64 * 1024;

/// Owner, permissions, times and extended attributes of a new inode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// The 12 permission bits (setuid, setgid, sticky, rwx); other bits are ignored.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub crtime: Time,
    /// Full names (`user.x`, `security.selinux`, `system.posix_acl_access` in the xattr
    /// form); `user.`, `trusted.`, `security.` and the two POSIX ACLs are stored.
    pub xattrs: Vec<Xattr>,
}

impl Meta {
    #[must_use]
    pub fn with_mode(mut self, mode: u16) -> Meta {
        self.mode = mode;
        self
    }
}

/// A special file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Fifo,
    Socket,
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
}

/// What [`Writer::finish`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inodes created.
    pub inodes: u64,
    /// Directories written with a hash index.
    pub indexed_dirs: u64,
    pub free_blocks: u64,
    pub free_inodes: u64,
}

/// A directory being filled: its entries wait in memory until it is closed.
struct Dir {
    parent: u32,
    /// The inode record, all but its size, links and block mapping.
    record: Vec<u8>,
    entries: Vec<(Vec<u8>, u32, u8)>,
    names: HashSet<Vec<u8>>,
    subdirs: u32,
    /// Extra 512-byte sectors the record already counts (its xattr block).
    xattr_sectors: u64,
    /// An existing directory's blocks and its record as found (`i_block`, flags).
    old: Option<(Vec<u64>, Vec<u8>)>,
}

/// An image being written; see the module documentation.
pub struct Writer {
    g: Groups,
    /// The image as opened, for the directories it already holds.
    reader: Fs,
    open_dirs: BTreeMap<u32, Dir>,
    closed_dirs: HashSet<u32>,
    existing: Vec<(Vec<u8>, u32, u8)>,
    /// File type (`EXT2_FT_*`) of every non-directory inode created, for hard links.
    kinds: HashMap<u32, u8>,
    extra_links: BTreeMap<u32, u32>,
    xattr_blocks: HashMap<Vec<Stored>, (u64, u32)>,
    summary: Summary,
}

fn unsupported<T>(feature: &str) -> WResult<T> {
    Err(WriteError::Unsupported {
        feature: feature.to_string(),
    })
}

fn refused<T>(name: &[u8], why: impl Into<String>) -> WResult<T> {
    Err(WriteError::EntryRefused {
        name: name.to_vec(),
        why: why.into(),
    })
}

/// Read-only compatible features the writer keeps consistent (or that do not concern it).
const RO_COMPAT_OK: RoCompat = RoCompat::SPARSE_SUPER
    .union(RoCompat::LARGE_FILE)
    .union(RoCompat::HUGE_FILE)
    .union(RoCompat::GDT_CSUM)
    .union(RoCompat::DIR_NLINK)
    .union(RoCompat::EXTRA_ISIZE)
    .union(RoCompat::METADATA_CSUM)
    // Inodes get project 0.
    .union(RoCompat::PROJECT)
    .union(RoCompat::SHARED_BLOCKS)
    .union(RoCompat::VERITY);

/// Incompatible features the writer refuses, by name (the reader refuses the ones it
/// does not know itself).
const INCOMPAT_REFUSED: Incompat = Incompat::META_BG
    .union(Incompat::MMP)
    .union(Incompat::JOURNAL_DEV);

impl Writer {
    /// Open an image (read and write) to add entries to its root directory.
    pub fn open(file: File) -> WResult<Writer> {
        let mut raw_sb = vec![0u8; SUPERBLOCK_SIZE];
        file.read_exact_at(&mut raw_sb, SUPERBLOCK_OFFSET)?;
        let sb = Superblock::parse(&raw_sb)?;
        check_features(&sb)?;
        let len = file.metadata()?.len();
        if sb
            .blocks_count
            .checked_mul(u64::from(sb.block_size))
            .is_none_or(|need| need > len)
        {
            return corrupt(format!(
                "the image file ({len} bytes) is shorter than its {} blocks",
                sb.blocks_count
            ));
        }
        let reader = Fs::open(file.try_clone()?)?;
        let g = Groups::open(file, sb)?;
        let root = load_dir(&reader, &g, ROOT, ROOT)?;
        let existing = root.entries.clone();
        let mut open_dirs = BTreeMap::new();
        open_dirs.insert(ROOT, root);
        Ok(Writer {
            g,
            reader,
            open_dirs,
            closed_dirs: HashSet::new(),
            existing,
            kinds: HashMap::new(),
            extra_links: BTreeMap::new(),
            xattr_blocks: HashMap::new(),
            summary: Summary::default(),
        })
    }

    /// The entries of the image's root directory as it was opened (name, inode,
    /// `EXT2_FT_*` type), `.` and `..` left out.
    pub fn root_entries(&self) -> &[(Vec<u8>, u32, u8)] {
        &self.existing
    }

    /// Open a directory the image's root already holds (its `lost+found`) to add entries
    /// to it; returns its inode number. Its other entries are kept.
    pub fn reopen_dir(&mut self, name: &[u8]) -> WResult<u32> {
        let Some(&(_, ino, ft)) = self.existing.iter().find(|(n, _, _)| n == name) else {
            return refused(name, "the image's root holds no such entry");
        };
        if ft != 2 {
            return refused(name, "the image holds it, and not as a directory");
        }
        if self.open_dirs.contains_key(&ino) || self.closed_dirs.contains(&ino) {
            return refused(name, "directory opened twice");
        }
        let dir = load_dir(&self.reader, &self.g, ino, ROOT)?;
        self.open_dirs.insert(ino, dir);
        Ok(ino)
    }

    /// Free blocks and free inodes, as the group descriptors count them now.
    pub fn free(&self) -> (u64, u64) {
        let inodes = (0..self.g.sb.group_count)
            .map(|g| u64::from(self.g.free_inodes(g)))
            .sum();
        (self.g.total_free_blocks(), inodes)
    }

    /// Inodes the image has in all.
    pub fn inodes_count(&self) -> u32 {
        self.g.sb.inodes_count
    }

    /// The block size of the image.
    pub fn block_size(&self) -> u32 {
        self.g.sb.block_size
    }

    /// Give the root directory these owner, permissions, times and xattrs.
    pub fn set_root(&mut self, meta: &Meta) -> WResult<()> {
        self.set_meta(ROOT, meta)
    }

    /// Give an open directory (the root, a reopened or a new one) these owner, permissions,
    /// times and xattrs, in place of what it had.
    pub fn set_meta(&mut self, dir: u32, meta: &Meta) -> WResult<()> {
        let set = self.stored_xattrs(b".", meta)?;
        let Some(d) = self.open_dirs.get(&dir) else {
            return refused(b".", format!("inode {dir} is not an open directory"));
        };
        let (flags, generation) = (inode::flags(&d.record), inode::generation(&d.record));
        let mut record = self.record(b".", 0o040_000, meta, &set)?;
        // Keep what mkfs set beyond ours (flags, generation).
        inode::set_flags(&mut record, flags);
        inode::set_generation(&mut record, generation);
        let sectors = inode::blocks(&record);
        if let Some(d) = self.open_dirs.get_mut(&dir) {
            d.record = record;
            d.xattr_sectors = sectors;
        }
        Ok(())
    }

    /// Make a directory `name` in directory `parent`; returns its inode number.
    pub fn mkdir(&mut self, parent: u32, name: &[u8], meta: &Meta) -> WResult<u32> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let ino = self.g.alloc_inode(true)?;
        let record = self.record(name, 0o040_000, meta, &set)?;
        let xattr_sectors = inode::blocks(&record);
        self.add_entry(parent, name, ino, 2, true);
        self.open_dirs.insert(
            ino,
            Dir {
                parent,
                record,
                entries: Vec::new(),
                names: HashSet::new(),
                subdirs: 0,
                xattr_sectors,
                old: None,
            },
        );
        self.summary.inodes += 1;
        Ok(ino)
    }

    /// Add a regular file whose bytes come from `src`; returns its inode number.
    pub fn add_file(
        &mut self,
        parent: u32,
        name: &[u8],
        meta: &Meta,
        src: &mut dyn Source,
    ) -> WResult<u32> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let size = src.size()?;
        let bs = u64::from(self.g.sb.block_size);
        let ino = self.g.alloc_inode(false)?;
        let mut record = self.record(name, 0o100_000, meta, &set)?;
        let mut pieces: Vec<Piece> = Vec::new();
        if size <= SMALL_FILE {
            // Read whole into its blocks, zero tail included: one read, one write per run
            // of blocks holding data, no hole search. A hole reads as zeros, so a block of
            // zeros is left a hole whether the host stored it or not.
            let blocks = size.div_ceil(bs);
            let mut buf = vec![0u8; (blocks * bs) as usize];
            src.read_at(&mut buf[..size as usize], 0)?;
            let zero = |b: u64| {
                let at = (b * bs) as usize;
                buf[at..at + bs as usize].iter().all(|&x| x == 0)
            };
            let mut first = 0;
            while first < blocks {
                if zero(first) {
                    first += 1;
                    continue;
                }
                let mut run = 1;
                while first + run < blocks && !zero(first + run) {
                    run += 1;
                }
                let (physical, len) = self.g.alloc_run(run)?;
                let at = (first * bs) as usize;
                let end = ((first + len) * bs) as usize;
                self.g.file.write_all_at(&buf[at..end], physical * bs)?;
                pieces.push(Piece {
                    logical: first,
                    physical,
                    len,
                });
                first += len;
            }
        }
        let mut pos = if size <= SMALL_FILE { size } else { 0 };
        while let Some((start, end)) = src.next_data(pos, size)? {
            let mut first = start / bs;
            let last = end.min(size).div_ceil(bs);
            first = first.max(pos.div_ceil(bs));
            while first < last {
                let (physical, len) = self.g.alloc_run(last - first)?;
                let from = first * bs;
                let upto = ((first + len) * bs).min(size);
                src.copy_to(from, upto - from, &self.g.file, physical * bs)?;
                let tail = (len * bs) - (upto - from);
                if tail > 0 {
                    let zeros = vec![0u8; tail as usize];
                    self.g
                        .file
                        .write_all_at(&zeros, physical * bs + (upto - from))?;
                }
                match pieces.last_mut() {
                    Some(p) if p.logical + p.len == first && p.physical + p.len == physical => {
                        p.len += len;
                    }
                    _ => pieces.push(Piece {
                        logical: first,
                        physical,
                        len,
                    }),
                }
                first += len;
            }
            pos = last * bs;
            if pos >= size {
                break;
            }
        }
        let data_blocks: u64 = pieces.iter().map(|p| p.len).sum();
        self.map_into(&mut record, ino, &pieces, data_blocks, name)?;
        inode::set_size(&mut record, size);
        if size >= 1 << 31 {
            self.g.sb.feature_ro_compat |= RoCompat::LARGE_FILE;
        }
        inode::set_links(&mut record, 1);
        self.g.write_inode(ino, &mut record)?;
        self.add_entry(parent, name, ino, 1, false);
        self.kinds.insert(ino, 1);
        self.summary.inodes += 1;
        Ok(ino)
    }

    /// Add a symbolic link to `target` (1 to 4095 bytes, less than a block).
    pub fn symlink(
        &mut self,
        parent: u32,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> WResult<u32> {
        self.check_entry(parent, name)?;
        if target.is_empty() || target.len() > 4095 || target.contains(&0) {
            return refused(name, "symlink target empty, too long or holding a NUL");
        }
        let bs = self.g.sb.block_size as usize;
        if target.len() >= bs {
            return refused(
                name,
                format!("symlink target longer than a {bs}-byte block"),
            );
        }
        let set = self.stored_xattrs(name, meta)?;
        let ino = self.g.alloc_inode(false)?;
        let mut record = self.record(name, 0o120_000, meta, &set)?;
        if target.len() < 60 {
            let mut block = [0u8; 60];
            block[..target.len()].copy_from_slice(target);
            inode::set_i_block(&mut record, &block);
        } else {
            let (physical, _) = self.g.alloc_run(1)?;
            let mut buf = vec![0u8; bs];
            buf[..target.len()].copy_from_slice(target);
            self.g.write_block(physical, &buf)?;
            let piece = Piece {
                logical: 0,
                physical,
                len: 1,
            };
            self.map_into(&mut record, ino, &[piece], 1, name)?;
        }
        inode::set_size(&mut record, target.len() as u64);
        inode::set_links(&mut record, 1);
        self.g.write_inode(ino, &mut record)?;
        self.add_entry(parent, name, ino, 7, false);
        self.kinds.insert(ino, 7);
        self.summary.inodes += 1;
        Ok(ino)
    }

    /// Add a fifo, socket or device node.
    pub fn special(
        &mut self,
        parent: u32,
        name: &[u8],
        kind: Special,
        meta: &Meta,
    ) -> WResult<u32> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let (type_bits, ft, dev) = match kind {
            Special::Fifo => (0o010_000, 5, None),
            Special::Socket => (0o140_000, 6, None),
            Special::CharDevice { major, minor } => (0o020_000, 3, Some((major, minor))),
            Special::BlockDevice { major, minor } => (0o060_000, 4, Some((major, minor))),
        };
        if let Some((major, minor)) = dev {
            if major > 0xfff || minor > 0xf_ffff {
                return refused(name, format!("device number {major}:{minor} out of range"));
            }
        }
        let ino = self.g.alloc_inode(false)?;
        let mut record = self.record(name, type_bits, meta, &set)?;
        if let Some((major, minor)) = dev {
            let mut block = [0u8; 60];
            // The old 8:8 form when it fits, else the new one (kernel ext4_do_update_inode).
            if major < 256 && minor < 256 {
                block[0..4].copy_from_slice(&((major << 8) | minor).to_le_bytes());
            } else {
                let new = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                block[4..8].copy_from_slice(&new.to_le_bytes());
            }
            inode::set_i_block(&mut record, &block);
        }
        inode::set_links(&mut record, 1);
        self.g.write_inode(ino, &mut record)?;
        self.add_entry(parent, name, ino, ft, false);
        self.kinds.insert(ino, ft);
        self.summary.inodes += 1;
        Ok(ino)
    }

    /// Give the non-directory inode `ino` (made by this writer) another name.
    pub fn link(&mut self, parent: u32, name: &[u8], ino: u32) -> WResult<()> {
        self.check_entry(parent, name)?;
        let Some(&ft) = self.kinds.get(&ino) else {
            return refused(name, format!("inode {ino} is not a file this writer made"));
        };
        let extra = self.extra_links.entry(ino).or_insert(0);
        if *extra + 1 >= LINK_MAX {
            return refused(name, "too many links");
        }
        *extra += 1;
        self.add_entry(parent, name, ino, ft, false);
        Ok(())
    }

    /// Write directory `dir`'s blocks now (its entries are complete); memory goes back.
    pub fn close_dir(&mut self, dir: u32) -> WResult<()> {
        let Some(d) = self.open_dirs.remove(&dir) else {
            return refused(b"", format!("inode {dir} is not an open directory"));
        };
        self.closed_dirs.insert(dir);
        let sb = self.g.sb.clone();
        let params = DirParams {
            block_size: sb.block_size,
            csum_seed: sb.metadata_csum().then_some(sb.csum_seed),
            ino: dir,
            generation: inode::generation(&d.record),
            hash_version: sb.dir_hash_version(),
            hash_seed: sb.hash_seed,
            indexed: sb.has_compat(Compat::DIR_INDEX),
            large_dir: sb.has_incompat(Incompat::LARGEDIR),
            filetype: sb.has_incompat(Incompat::FILETYPE),
        };
        let built = build_dir_blocks(dir, d.parent, &d.entries, &params)?;
        let blocks = built.blocks;
        let bs = u64::from(sb.block_size);
        let mut n = blocks.len() as u64;
        let mut record = d.record;
        let reuse = d
            .old
            .as_ref()
            .filter(|(old, _)| !built.indexed && blocks.len() <= old.len());
        if let Some((old, found)) = reuse {
            // Fits where it was (an empty lost+found keeps its spare blocks for e2fsck).
            let empty = empty_dir_block(&params);
            for (i, &b) in old.iter().enumerate() {
                self.g.write_block(b, blocks.get(i).unwrap_or(&empty))?;
            }
            n = old.len() as u64;
            inode::set_i_block(&mut record, &inode::i_block(found));
            inode::set_flags(&mut record, inode::flags(found));
            let sectors = d.xattr_sectors + n * (bs / 512);
            inode::set_blocks(&mut record, sectors, true, sb.block_size);
        } else {
            if let Some((old, _)) = &d.old {
                for &b in old {
                    self.g.free_block(b)?;
                }
            }
            let mut pieces: Vec<Piece> = Vec::new();
            let mut logical = 0u64;
            while logical < n {
                let (physical, len) = self.g.alloc_run(n - logical)?;
                for i in 0..len {
                    self.g
                        .write_block(physical + i, &blocks[(logical + i) as usize])?;
                }
                pieces.push(Piece {
                    logical,
                    physical,
                    len,
                });
                logical += len;
            }
            // Drop any old mapping, keep the xattr block count.
            inode::set_i_block(&mut record, &[0; BLOCK_LEN]);
            let flags = inode::flags(&record) - (InodeFlags::EXTENTS | InodeFlags::INDEX);
            inode::set_flags(&mut record, flags);
            inode::set_blocks(&mut record, d.xattr_sectors, true, sb.block_size);
            self.map_into(&mut record, dir, &pieces, n, b"")?;
        }
        inode::set_size(&mut record, n * bs);
        if built.indexed {
            inode::add_flags(&mut record, InodeFlags::INDEX);
            self.summary.indexed_dirs += 1;
        }
        let links = 2 + d.subdirs;
        if links >= LINK_MAX {
            inode::set_links(&mut record, 1);
            self.g.sb.feature_ro_compat |= RoCompat::DIR_NLINK;
        } else {
            inode::set_links(&mut record, links as u16);
        }
        self.g.write_inode(dir, &mut record)
    }

    /// Write every open directory, the link counts, the shared xattr blocks, bitmaps,
    /// descriptors and the superblock.
    pub fn finish(mut self) -> WResult<Summary> {
        let open: Vec<u32> = self.open_dirs.keys().copied().collect();
        for dir in open {
            self.close_dir(dir)?;
        }
        for (&ino, &extra) in &self.extra_links {
            let mut raw = self.g.read_inode(ino)?;
            let links = u32::from(inode::links(&raw)) + extra;
            inode::set_links(&mut raw, links.min(u32::from(u16::MAX)) as u16);
            self.g.write_inode(ino, &mut raw)?;
        }
        let bs = self.g.sb.block_size as usize;
        let seed = self.g.sb.metadata_csum().then_some(self.g.sb.csum_seed);
        let mut blocks: Vec<_> = self.xattr_blocks.iter().collect();
        blocks.sort_by_key(|(_, &(b, _))| b);
        for (set, &(block, refs)) in blocks {
            let data = xattr::block(bs, set, refs, block, seed);
            self.g.write_block(block, &data)?;
        }
        self.g.flush()?;
        let free_blocks = self.g.total_free_blocks();
        let free_inodes: u64 = (0..self.g.sb.group_count)
            .map(|g| u64::from(self.g.free_inodes(g)))
            .sum();
        self.g.sb.free_blocks_count = free_blocks;
        self.g.sb.free_inodes_count = free_inodes as u32;
        self.g
            .file
            .write_all_at(&self.g.sb.encode(), SUPERBLOCK_OFFSET)?;
        self.summary.free_blocks = free_blocks;
        self.summary.free_inodes = free_inodes;
        Ok(self.summary)
    }

    fn check_entry(&self, parent: u32, name: &[u8]) -> WResult<()> {
        if name.is_empty() || name.len() > NAME_MAX || name.contains(&b'/') || name.contains(&0) {
            return refused(name, "a name must be 1 to 255 bytes without '/' or NUL");
        }
        if name == b"." || name == b".." {
            return refused(name, "'.' and '..' are made by the writer");
        }
        let Some(dir) = self.open_dirs.get(&parent) else {
            return refused(
                name,
                format!("parent inode {parent} is not an open directory"),
            );
        };
        if dir.names.contains(name) {
            return refused(name, "the name exists already");
        }
        if dir.entries.len() >= (1 << 26) {
            return refused(name, "directory too large");
        }
        Ok(())
    }

    fn add_entry(&mut self, parent: u32, name: &[u8], ino: u32, ft: u8, subdir: bool) {
        if let Some(dir) = self.open_dirs.get_mut(&parent) {
            dir.names.insert(name.to_vec());
            dir.entries.push((name.to_vec(), ino, ft));
            if subdir {
                dir.subdirs += 1;
            }
        }
    }

    fn stored_xattrs(&self, name: &[u8], meta: &Meta) -> WResult<Vec<Stored>> {
        let mut set = Vec::new();
        for x in &meta.xattrs {
            match xattr::to_stored(x) {
                Ok(s) => set.push(s),
                Err(why) => return refused(name, why),
            }
        }
        xattr::sort(&mut set);
        if !set.is_empty() && !self.g.sb.has_compat(Compat::EXT_ATTR) {
            return refused(
                name,
                "extended attributes, and the image lacks the ext_attr feature",
            );
        }
        if !set.is_empty() && !self.fits_inode(&set) {
            let bs = self.g.sb.block_size as usize;
            if !xattr::fits_block(bs, &set) {
                return refused(
                    name,
                    format!(
                        "extended attributes larger than a block ({} bytes of names and values for a {bs}-byte block)",
                        xattr::size(&set)
                    ),
                );
            }
            if !self.xattr_blocks.contains_key(&set) && self.g.total_free_blocks() == 0 {
                return Err(WriteError::OutOfSpace);
            }
        }
        Ok(set)
    }

    fn fits_inode(&self, set: &[Stored]) -> bool {
        let room = (self.g.sb.inode_size as usize)
            .saturating_sub(inode::xattr_area() + crate::format::xattr::INODE_HEADER);
        self.g.sb.inode_size as usize > GOOD_OLD_INODE_SIZE && xattr::size(set) <= room
    }

    /// A new record: type and mode, owners, times, xattrs (in the inode or a shared block).
    fn record(
        &mut self,
        _name: &[u8],
        type_bits: u16,
        meta: &Meta,
        set: &[Stored],
    ) -> WResult<Vec<u8>> {
        let base = Base {
            mode: type_bits | (meta.mode & 0o7777),
            uid: meta.uid,
            gid: meta.gid,
            atime: meta.atime,
            mtime: meta.mtime,
            ctime: meta.ctime,
            crtime: meta.crtime,
        };
        let isize = self.g.sb.inode_size;
        let mut record = inode::new_record(isize, &base);
        if set.is_empty() {
            return Ok(record);
        }
        if self.fits_inode(set) {
            xattr::in_inode(&mut record[inode::xattr_area()..], set);
            return Ok(record);
        }
        let block = if let Some(entry) = self.xattr_blocks.get_mut(set) {
            entry.1 += 1;
            entry.0
        } else {
            let (block, _) = self.g.alloc_run(1)?;
            self.xattr_blocks.insert(set.to_vec(), (block, 1));
            block
        };
        inode::set_file_acl(&mut record, block);
        inode::set_blocks(
            &mut record,
            u64::from(self.g.sb.block_size / 512),
            true,
            self.g.sb.block_size,
        );
        Ok(record)
    }

    /// Map `pieces` into the record (extent tree or block map) and count its blocks.
    fn map_into(
        &mut self,
        record: &mut [u8],
        ino: u32,
        pieces: &[Piece],
        data_blocks: u64,
        name: &[u8],
    ) -> WResult<()> {
        let mapping: Mapping = if self.g.sb.has_incompat(Incompat::EXTENTS) {
            let generation = inode::generation(record);
            extent::extent_tree(&mut self.g, ino, generation, pieces)
        } else {
            extent::block_map(&mut self.g, pieces)
        }
        .map_err(|e| match e {
            WriteError::EntryRefused { why, .. } => WriteError::EntryRefused {
                name: name.to_vec(),
                why,
            },
            other => other,
        })?;
        inode::set_i_block(record, &mapping.i_block);
        inode::add_flags(record, mapping.flags);
        let per = u64::from(self.g.sb.block_size / 512);
        let sectors = inode::blocks(record) + (data_blocks + mapping.tree_blocks) * per;
        let huge = self.g.sb.has_ro_compat(RoCompat::HUGE_FILE);
        if !inode::set_blocks(record, sectors, huge, self.g.sb.block_size) {
            return refused(name, "file too large for this image");
        }
        Ok(())
    }
}

/// An existing directory of the image, read to be rewritten with more entries: its blocks
/// must be plain data blocks (no extent tree or indirect block, no inline data, no xattr
/// block).
fn load_dir(reader: &Fs, g: &Groups, ino: u32, parent: u32) -> WResult<Dir> {
    let inode = reader.inode(ino)?;
    if inode.file_type() != Some(crate::FileType::Directory) {
        return corrupt(format!("inode {ino} is not a directory"));
    }
    if inode.has_flag(InodeFlags::INLINE_DATA) || inode.file_acl != 0 {
        return unsupported("existing directory with inline data or an xattr block");
    }
    let mut blocks = Vec::new();
    for r in reader.data_map(&inode)? {
        if let crate::Backing::Data { physical } = r.backing {
            if blocks.len() as u64 + r.len > 1 << 16 {
                return unsupported("existing directory of over 65536 blocks");
            }
            blocks.extend(physical..physical.saturating_add(r.len));
        }
    }
    let sectors = u64::from(g.sb.block_size / 512);
    if blocks.len() as u64 * sectors != inode.blocks_512 {
        return unsupported("existing directory with an extent tree or indirect blocks");
    }
    let mut dir = Dir {
        parent,
        record: g.read_inode(ino)?,
        entries: Vec::new(),
        names: HashSet::new(),
        subdirs: 0,
        xattr_sectors: 0,
        old: None,
    };
    for e in reader.read_dir(&inode)? {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let ft = match reader.inode(e.ino)?.file_type() {
            Some(t) => file_type_code(t),
            None => return corrupt(format!("inode {} has no type", e.ino)),
        };
        if ft == 2 {
            dir.subdirs += 1;
        }
        if !dir.names.insert(e.name.clone()) {
            return corrupt(format!("directory inode {ino} holds a name twice"));
        }
        dir.entries.push((e.name, e.ino, ft));
    }
    dir.old = Some((blocks, dir.record.clone()));
    Ok(dir)
}

/// A directory block holding no entry (one unused record spanning it), checksummed.
fn empty_dir_block(p: &DirParams) -> Vec<u8> {
    let bs = p.block_size as usize;
    let mut b = vec![0u8; bs];
    let end = if p.csum_seed.is_some() {
        bs - dirent::TAIL_SIZE
    } else {
        bs
    };
    crate::le::put_u16(&mut b, dirent::REC_LEN, end as u16);
    if let Some(seed) = p.csum_seed {
        csum::set_dir_leaf(csum::inode_seed(seed, p.ino, p.generation), &mut b);
    }
    b
}

fn file_type_code(t: crate::FileType) -> u8 {
    match t {
        crate::FileType::Regular => 1,
        crate::FileType::Directory => 2,
        crate::FileType::CharDevice => 3,
        crate::FileType::BlockDevice => 4,
        crate::FileType::Fifo => 5,
        crate::FileType::Socket => 6,
        crate::FileType::Symlink => 7,
    }
}

fn check_features(sb: &Superblock) -> WResult<()> {
    if sb.needs_recovery() {
        return unsupported("feature needs_recovery (the journal must be replayed first)");
    }
    if let Some(bit) = sb
        .feature_incompat
        .intersection(INCOMPAT_REFUSED)
        .iter()
        .next()
    {
        let name = bit.name().unwrap_or("unknown");
        return unsupported(&format!("feature {name}"));
    }
    let unknown = sb.feature_ro_compat.difference(RO_COMPAT_OK);
    if let Some(bit) = unknown.iter().next() {
        return match bit.name() {
            Some(name) => unsupported(&format!("feature {name}")),
            None => unsupported(&format!("read-only compatible feature {:#x}", bit.bits())),
        };
    }
    if sb.block_size > 32768 {
        return unsupported(&format!("block size {}", sb.block_size));
    }
    if !sb.state.contains(State::VALID) || sb.state.contains(State::ERROR) {
        return corrupt(
            "the file system was not cleanly unmounted or has errors; run e2fsck".into(),
        );
    }
    let min_extra = sb.min_extra_isize;
    if sb.inode_size as usize > GOOD_OLD_INODE_SIZE
        && min_extra != 0
        && min_extra < crate::format::inode::WRITER_EXTRA_ISIZE
    {
        return unsupported("extra inode size below 32");
    }
    if sb.rev_level == crate::format::sb::GOOD_OLD_REV {
        return unsupported("revision 0 file system");
    }
    Ok(())
}
