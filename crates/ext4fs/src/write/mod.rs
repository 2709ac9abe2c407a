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

pub(crate) mod dir;
mod error;
mod extent;
mod file;
mod group;
mod inode;
mod open_dir;
mod source;
mod xattr;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

pub use dir::{build_dir_blocks, DirBlocks, DirParams};
pub use error::{WResult, WriteError};
pub use source::{Dense, Source};

use crate::format::{
    Compat, Incompat, RoCompat, State, GOOD_OLD_INODE_SIZE, NAME_MAX, SUPERBLOCK_OFFSET,
    SUPERBLOCK_SIZE,
};
use crate::inode::Time;
use crate::superblock::Superblock;
use crate::{DirEntry, EntryKind, Fs, Ino, Xattr};
use error::corrupt;
use extent::{Mapping, Piece};
use group::Groups;
use inode::Base;
use open_dir::OpenDir;
use xattr::Stored;

/// A directory of the image the writer holds open, to add entries to: what every call
/// that adds an entry takes as the parent. Only [`Writer::mkdir`], [`Writer::reopen_dir`]
/// and [`ROOT`] make one, so a parent cannot be mistaken for the inode a hard link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirIno(Ino);

impl DirIno {
    /// The directory's inode number.
    pub fn ino(self) -> Ino {
        self.0
    }
}

/// The root directory: the parent of the tree's top entries.
pub const ROOT: DirIno = DirIno(Ino::ROOT);

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

impl Special {
    fn kind(self) -> EntryKind {
        match self {
            Special::Fifo => EntryKind::Fifo,
            Special::Socket => EntryKind::Socket,
            Special::CharDevice { .. } => EntryKind::CharDevice,
            Special::BlockDevice { .. } => EntryKind::BlockDevice,
        }
    }
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

/// An image being written; see the module documentation.
pub struct Writer {
    g: Groups,
    /// The image as opened, for the directories it already holds.
    reader: Fs,
    open_dirs: BTreeMap<Ino, OpenDir>,
    closed_dirs: HashSet<Ino>,
    /// The root's entries as the image held them.
    existing: Vec<DirEntry>,
    /// The kind of every non-directory inode created, for hard links.
    kinds: HashMap<Ino, EntryKind>,
    extra_links: BTreeMap<Ino, u32>,
    /// Shared xattr blocks: the set, its block and how many inodes use it.
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
        let root = OpenDir::load(&reader, &g, Ino::ROOT, Ino::ROOT)?;
        let existing = root.entries.clone();
        let mut open_dirs = BTreeMap::new();
        open_dirs.insert(Ino::ROOT, root);
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

    /// The entries of the image's root directory as it was opened, `.` and `..` left
    /// out; the kind of each is its inode's.
    pub fn root_entries(&self) -> &[DirEntry] {
        &self.existing
    }

    /// Open a directory the image's root already holds (its `lost+found`) to add entries
    /// to it. Its other entries are kept.
    pub fn reopen_dir(&mut self, name: &[u8]) -> WResult<DirIno> {
        let Some(e) = self.existing.iter().find(|e| e.name == name) else {
            return refused(name, "the image's root holds no such entry");
        };
        let ino = e.ino;
        if e.kind != Some(EntryKind::Directory) {
            return refused(name, "the image holds it, and not as a directory");
        }
        if self.open_dirs.contains_key(&ino) || self.closed_dirs.contains(&ino) {
            return refused(name, "directory opened twice");
        }
        let dir = OpenDir::load(&self.reader, &self.g, ino, Ino::ROOT)?;
        self.open_dirs.insert(ino, dir);
        Ok(DirIno(ino))
    }

    /// Free blocks and free inodes, as the group descriptors count them now.
    pub fn free(&self) -> (u64, u64) {
        (self.g.total_free_blocks(), self.g.total_free_inodes())
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
    pub fn set_meta(&mut self, dir: DirIno, meta: &Meta) -> WResult<()> {
        let set = self.stored_xattrs(b".", meta)?;
        let Some(d) = self.open_dirs.get(&dir.0) else {
            return refused(b".", format!("inode {} is not an open directory", dir.0));
        };
        let (flags, generation) = (inode::flags(&d.record), inode::generation(&d.record));
        let mut record = self.record(EntryKind::Directory, meta, &set)?;
        // Keep what mkfs set beyond ours (flags, generation).
        inode::set_flags(&mut record, flags);
        inode::set_generation(&mut record, generation);
        let sectors = inode::blocks(&record);
        if let Some(d) = self.open_dirs.get_mut(&dir.0) {
            d.record = record;
            d.xattr_sectors = sectors;
        }
        Ok(())
    }

    /// Make a directory `name` in directory `parent`.
    pub fn mkdir(&mut self, parent: DirIno, name: &[u8], meta: &Meta) -> WResult<DirIno> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let ino = self.g.alloc_inode(true)?;
        let record = self.record(EntryKind::Directory, meta, &set)?;
        self.add_entry(parent, name, ino, EntryKind::Directory);
        self.open_dirs.insert(ino, OpenDir::new(parent.0, record));
        self.summary.inodes += 1;
        Ok(DirIno(ino))
    }

    /// Add a regular file whose bytes come from `src`; returns its inode number.
    pub fn add_file(
        &mut self,
        parent: DirIno,
        name: &[u8],
        meta: &Meta,
        src: &mut dyn Source,
    ) -> WResult<Ino> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let size = src.size()?;
        let bs = u64::from(self.g.sb.block_size);
        // Refused before anything is allocated: an entry refused leaves nothing behind.
        if size.div_ceil(bs) > self.max_file_blocks() {
            return refused(
                name,
                format!("a file of {size} bytes, larger than this image's files can be"),
            );
        }
        let ino = self.g.alloc_inode(false)?;
        let mut record = self.record(EntryKind::File, meta, &set)?;
        let pieces = file::copy(&mut self.g, src, size)?;
        let data_blocks: u64 = pieces.iter().map(|p| p.len).sum();
        self.map_into(&mut record, ino, &pieces, data_blocks, name)?;
        inode::set_size(&mut record, size);
        if size >= 1 << 31 {
            self.g.sb.feature_ro_compat |= RoCompat::LARGE_FILE;
        }
        self.add_inode(parent, name, ino, EntryKind::File, &mut record)
    }

    /// Add a symbolic link to `target` (1 to 4095 bytes, less than a block).
    pub fn symlink(
        &mut self,
        parent: DirIno,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> WResult<Ino> {
        self.check_entry(parent, name)?;
        if target.is_empty() || target.len() as u64 > crate::SYMLINK_MAX || target.contains(&0) {
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
        let mut record = self.record(EntryKind::Symlink, meta, &set)?;
        let mut block = [0u8; crate::format::inode::BLOCK_LEN];
        if target.len() < block.len() {
            // A fast symlink: the target in i_block.
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
        self.add_inode(parent, name, ino, EntryKind::Symlink, &mut record)
    }

    /// Add a fifo, socket or device node.
    pub fn special(
        &mut self,
        parent: DirIno,
        name: &[u8],
        special: Special,
        meta: &Meta,
    ) -> WResult<Ino> {
        self.check_entry(parent, name)?;
        let set = self.stored_xattrs(name, meta)?;
        let device = match special {
            Special::CharDevice { major, minor } | Special::BlockDevice { major, minor } => {
                let Some(block) = crate::inode::device_block(major, minor) else {
                    return refused(name, format!("device number {major}:{minor} out of range"));
                };
                Some(block)
            }
            Special::Fifo | Special::Socket => None,
        };
        let ino = self.g.alloc_inode(false)?;
        let mut record = self.record(special.kind(), meta, &set)?;
        if let Some(block) = device {
            inode::set_i_block(&mut record, &block);
        }
        self.add_inode(parent, name, ino, special.kind(), &mut record)
    }

    /// Give the non-directory inode `ino` (made by this writer) another name.
    pub fn link(&mut self, parent: DirIno, name: &[u8], ino: Ino) -> WResult<()> {
        self.check_entry(parent, name)?;
        let Some(&kind) = self.kinds.get(&ino) else {
            return refused(name, format!("inode {ino} is not a file this writer made"));
        };
        let extra = self.extra_links.entry(ino).or_insert(0);
        if *extra + 1 >= crate::format::LINK_MAX {
            return refused(name, "too many links");
        }
        *extra += 1;
        self.add_entry(parent, name, ino, kind);
        Ok(())
    }

    /// Write directory `dir`'s blocks now (its entries are complete); memory goes back.
    pub fn close_dir(&mut self, dir: DirIno) -> WResult<()> {
        let Some(d) = self.open_dirs.remove(&dir.0) else {
            return refused(b"", format!("inode {} is not an open directory", dir.0));
        };
        self.closed_dirs.insert(dir.0);
        self.write_dir(dir.0, d)
    }

    /// Write every open directory, the link counts, the shared xattr blocks, bitmaps,
    /// descriptors and the superblock.
    pub fn finish(mut self) -> WResult<Summary> {
        let open: Vec<Ino> = self.open_dirs.keys().copied().collect();
        for dir in open {
            self.close_dir(DirIno(dir))?;
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
        let free_inodes = self.g.total_free_inodes();
        self.g.sb.free_blocks_count = free_blocks;
        self.g.sb.free_inodes_count = free_inodes as u32;
        self.g
            .file
            .write_all_at(&self.g.sb.encode(), SUPERBLOCK_OFFSET)?;
        self.summary.free_blocks = free_blocks;
        self.summary.free_inodes = free_inodes;
        Ok(self.summary)
    }

    fn check_entry(&self, parent: DirIno, name: &[u8]) -> WResult<()> {
        if name.is_empty() || name.len() > NAME_MAX || name.contains(&b'/') || name.contains(&0) {
            return refused(name, "a name must be 1 to 255 bytes without '/' or NUL");
        }
        if name == b"." || name == b".." {
            return refused(name, "'.' and '..' are made by the writer");
        }
        let Some(dir) = self.open_dirs.get(&parent.0) else {
            return refused(
                name,
                format!("parent inode {} is not an open directory", parent.0),
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

    fn add_entry(&mut self, parent: DirIno, name: &[u8], ino: Ino, kind: EntryKind) {
        if let Some(dir) = self.open_dirs.get_mut(&parent.0) {
            dir.names.insert(name.to_vec());
            dir.entries.push(DirEntry::new(name, ino, kind));
            if kind == EntryKind::Directory {
                dir.subdirs += 1;
            }
        }
    }

    /// Write the record of a new non-directory inode (one link) and its entry.
    fn add_inode(
        &mut self,
        parent: DirIno,
        name: &[u8],
        ino: Ino,
        kind: EntryKind,
        record: &mut [u8],
    ) -> WResult<Ino> {
        inode::set_links(record, 1);
        self.g.write_inode(ino, record)?;
        self.add_entry(parent, name, ino, kind);
        self.kinds.insert(ino, kind);
        self.summary.inodes += 1;
        Ok(ino)
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
    fn record(&mut self, kind: EntryKind, meta: &Meta, set: &[Stored]) -> WResult<Vec<u8>> {
        let base = Base {
            mode: kind.type_bits() as u16 | (meta.mode & 0o7777),
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

    /// The most logical blocks a file may have: 2^32 with extents (their logical numbers are
    /// 32 bits), else what 12 direct pointers and the three indirect levels reach.
    fn max_file_blocks(&self) -> u64 {
        if self.g.sb.has_incompat(Incompat::EXTENTS) {
            1 << 32
        } else {
            let per = u64::from(self.g.sb.block_size / 4);
            12 + per + per * per + per * per * per
        }
    }

    /// Map `pieces` into the record (extent tree or block map) and count its blocks.
    fn map_into(
        &mut self,
        record: &mut [u8],
        ino: Ino,
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
