//! An open image: the superblock, the group descriptors it reads on demand, inodes, file
//! contents and path lookup. Directories, block maps and xattrs are read in `dir`, `map`
//! and `xattr`, each structure's blocks in one place.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use crate::csum;
use crate::dir::DirEntry;
use crate::error::{Checksummed, Error, Result};
use crate::format::{
    gd, BgFlags, Incompat, InodeFlags, RoCompat, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};
use crate::le::{u16_at, u32_at};
use crate::map::{Backing, Run};
use crate::superblock::Superblock;
use crate::{EntryKind, Ino, Inode};

/// Longest symlink target accepted (Linux `PATH_MAX` less the NUL).
pub const SYMLINK_MAX: u64 = 4095;
/// Symbolic links followed in one [`Fs::lookup`] (Linux `MAXSYMLINKS`).
const MAX_SYMLINKS: u32 = 40;
/// Components walked in one [`Fs::lookup`]: 40 targets of 4095 bytes could make 80,000,
/// each a linear read of a directory that a hostile image makes large.
const MAX_LOOKUP_STEPS: u32 = 4096;
/// Directory entries one [`Fs::lookup`] keeps, so that `../../..` does not read the same
/// directory again for each component.
const LOOKUP_CACHE_ENTRIES: usize = 1 << 18;

/// The largest piece [`Fs::for_each_chunk`] hands out.
const CHUNK_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy)]
struct Group {
    inode_table: u64,
    flags: BgFlags,
}

/// Where the image's bytes come from.
#[derive(Debug)]
enum Source {
    File(File),
    Memory(Vec<u8>),
}

/// An open image.
#[derive(Debug)]
pub struct Fs {
    file: Source,
    pub(crate) sb: Superblock,
    /// Blocks the image file really holds (or the superblock's count for a device).
    pub(crate) image_blocks: u64,
    groups: Mutex<HashMap<u32, Group>>,
}

/// The contents of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Stored in the inode (inline_data): these bytes, at most the file's size. A size
    /// past them is valid: the rest of the file reads as zeros, as the kernel reads it.
    Inline(Vec<u8>),
    /// Stored in blocks: runs covering the size rounded up to whole blocks.
    Runs(Vec<Run>),
}

impl Fs {
    /// Open an image: read and validate its superblock.
    pub fn open(file: File) -> Result<Fs> {
        let len = file.metadata()?.len();
        Fs::from_source(Source::File(file), len)
    }

    /// Open an image held in memory (tests, fuzzing).
    pub fn from_bytes(image: Vec<u8>) -> Result<Fs> {
        let len = image.len() as u64;
        Fs::from_source(Source::Memory(image), len)
    }

    fn from_source(file: Source, len: u64) -> Result<Fs> {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        match read_source(&file, &mut raw, SUPERBLOCK_OFFSET) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Error::NotExt4 {
                    reason: "image shorter than a superblock".into(),
                })
            }
            Err(e) => return Err(Error::Io(e)),
        }
        let sb = Superblock::parse(&raw)?;
        let image_blocks = if len == 0 {
            sb.blocks_count
        } else {
            (len / u64::from(sb.block_size)).min(sb.blocks_count)
        };
        Ok(Fs {
            file,
            sb,
            image_blocks,
            groups: Mutex::new(HashMap::new()),
        })
    }

    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    /// Whether the journal holds transactions not yet applied (the image is read as it is,
    /// as debugfs does).
    pub fn needs_recovery(&self) -> bool {
        self.sb.needs_recovery()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        match read_source(&self.file, buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::ShortImage {
                offset,
                len: buf.len(),
            }),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Read one metadata block (`buf` is one block long): every extent, indirect,
    /// directory and xattr block the reader uses comes through here, and nothing else does
    /// (file data comes through [`Fs::read_blocks`]); the place to count or bound the
    /// metadata a walk reads.
    pub(crate) fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        self.read_blocks(block, buf)
    }

    /// Read `buf.len()` bytes starting at physical block `first`; every block touched must
    /// lie inside the file system.
    pub fn read_blocks(&self, first: u64, buf: &mut [u8]) -> Result<()> {
        let bs = u64::from(self.sb.block_size);
        let blocks = (buf.len() as u64).div_ceil(bs);
        if first
            .checked_add(blocks)
            .is_none_or(|end| end > self.sb.blocks_count)
        {
            return Err(Error::BadSuperblock {
                reason: format!("read of {blocks} blocks at {first} beyond the file system"),
            });
        }
        self.read_at(buf, first * bs)
    }

    fn group(&self, group: u32) -> Result<Group> {
        if let Some(g) = self.groups.lock().ok().and_then(|m| m.get(&group).copied()) {
            return Ok(g);
        }
        let bad = |reason: String| Error::BadGroupDescriptor { group, reason };
        if group >= self.sb.group_count {
            return Err(bad(format!("only {} groups", self.sb.group_count)));
        }
        let (block, offset) = self.sb.descriptor_location(group);
        if block >= self.sb.blocks_count {
            return Err(bad(format!(
                "descriptor block {block} outside the file system"
            )));
        }
        let mut raw = vec![0u8; self.sb.desc_size as usize];
        self.read_at(
            &mut raw,
            block * u64::from(self.sb.block_size) + u64::from(offset),
        )?;
        // Only metadata_csum is verified: a gdt_csum mismatch is left to e2fsck, as the
        // reader has always done.
        if self.sb.metadata_csum() && !csum::group_desc_ok(&self.sb, group, &raw) {
            return Err(Error::ChecksumMismatch {
                what: Checksummed::GroupDescriptor { group },
            });
        }
        let mut inode_table = u64::from(u32_at(&raw, gd::INODE_TABLE_LO));
        if self.sb.desc_size >= gd::SIZE_64BIT {
            inode_table |= u64::from(u32_at(&raw, gd::INODE_TABLE_HI)) << 32;
        }
        let table_blocks = self.sb.inode_table_blocks();
        if inode_table == 0
            || inode_table
                .checked_add(table_blocks)
                .is_none_or(|end| end > self.sb.blocks_count)
        {
            return Err(bad(format!("inode table at block {inode_table}")));
        }
        let g = Group {
            inode_table,
            flags: BgFlags::from_bits_retain(u16_at(&raw, gd::FLAGS)),
        };
        if let Ok(mut m) = self.groups.lock() {
            m.insert(group, g);
        }
        Ok(g)
    }

    /// Read and decode inode `ino`, verifying its checksum.
    pub fn inode(&self, ino: Ino) -> Result<Inode> {
        if ino.get() > self.sb.inodes_count {
            return Err(Error::BadInode {
                ino,
                reason: format!("outside 1..={}", self.sb.inodes_count),
            });
        }
        let (group, index) = self.sb.inode_location(ino);
        let g = self.group(group)?;
        if self.sb.group_csums() && g.flags.contains(BgFlags::INODE_UNINIT) {
            return Err(Error::BadInode {
                ino,
                reason: "in a block group whose inodes are not initialised".into(),
            });
        }
        let mut raw = vec![0u8; self.sb.inode_size as usize];
        let offset = g.inode_table * u64::from(self.sb.block_size)
            + u64::from(index) * u64::from(self.sb.inode_size);
        self.read_at(&mut raw, offset)?;
        if self.sb.metadata_csum() && !csum::inode_ok(self.sb.csum_seed, ino.get(), &raw) {
            return Err(Error::ChecksumMismatch {
                what: Checksummed::Inode { ino },
            });
        }
        let huge = self.sb.has_ro_compat(RoCompat::HUGE_FILE);
        Inode::parse(ino, &raw, huge, self.sb.block_size)
            .map_err(|reason| Error::BadInode { ino, reason })
    }

    /// Where a regular file's bytes are.
    pub fn content(&self, inode: &Inode) -> Result<Content> {
        if inode.has_flag(InodeFlags::INLINE_DATA) {
            Ok(Content::Inline(self.inline_data(inode)?))
        } else {
            Ok(Content::Runs(self.data_map(inode)?))
        }
    }

    fn inline_data(&self, inode: &Inode) -> Result<Vec<u8>> {
        if !self.sb.has_incompat(Incompat::INLINE_DATA) {
            return Err(Error::BadInode {
                ino: inode.ino,
                reason: "inline data flag without the inline_data feature".into(),
            });
        }
        let mut data = inode.block.to_vec();
        if inode.size > data.len() as u64 {
            data.extend(self.inline_data_tail(inode)?);
        }
        // A size past the stored bytes is valid (mke2fs -d stores a file of zeros so, and
        // e2fsck accepts it): the kernel reads the rest as zeros, and so do we.
        data.truncate(usize::try_from(inode.size).unwrap_or(usize::MAX));
        Ok(data)
    }

    /// Stream a file's stored bytes, in order, to `sink(offset, bytes)` in pieces of at most
    /// 1 MiB; holes and unwritten runs are skipped (they read as zeros), nothing past the
    /// size is given. `sink` returns false to stop early. Memory stays flat.
    pub fn for_each_chunk(
        &self,
        inode: &Inode,
        sink: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<()> {
        if inode.has_flag(InodeFlags::INLINE_DATA) {
            let data = self.inline_data(inode)?;
            sink(0, &data);
            return Ok(());
        }
        let bs = u64::from(self.sb.block_size);
        let mut buf = Vec::new();
        let mut failure = None;
        self.for_each_run(inode, &mut |run| {
            let Backing::Data { physical } = run.backing else {
                return true;
            };
            let start = run.logical * bs;
            let end = ((run.logical + run.len) * bs).min(inode.size);
            let mut pos = start;
            while pos < end {
                let n = (end - pos).min(CHUNK_BYTES) as usize;
                if buf.len() < n {
                    buf.resize(n, 0);
                }
                if let Err(e) = self.read_blocks(physical + (pos - start) / bs, &mut buf[..n]) {
                    failure = Some(e);
                    return false;
                }
                if !sink(pos, &buf[..n]) {
                    return false;
                }
                pos += n as u64;
            }
            true
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// The first `limit` bytes (at most) of a file, holes and unwritten runs as zeros; for
    /// small things: symlink targets, xattr values.
    pub fn read_small(&self, inode: &Inode, limit: u64) -> Result<Vec<u8>> {
        let want = inode.size.min(limit);
        let runs = match self.content(inode)? {
            Content::Inline(mut data) => {
                data.resize(want as usize, 0);
                return Ok(data);
            }
            Content::Runs(runs) => runs,
        };
        let bs = u64::from(self.sb.block_size);
        let mut out = vec![0u8; want as usize];
        for run in runs {
            let start = run.logical * bs;
            if start >= want {
                break;
            }
            let Backing::Data { physical } = run.backing else {
                continue;
            };
            let end = (start + run.len * bs).min(want);
            self.read_blocks(physical, &mut out[start as usize..end as usize])?;
        }
        Ok(out)
    }

    /// A symlink's target. Fast symlinks (no data block) hold it in `i_block`.
    pub fn symlink_target(&self, inode: &Inode) -> Result<Vec<u8>> {
        let ino = inode.ino;
        let bad = |reason: String| Error::BadInode {
            ino,
            reason: format!("symlink: {reason}"),
        };
        if inode.size == 0 || inode.size > SYMLINK_MAX {
            return Err(bad(format!("target of {} bytes", inode.size)));
        }
        let xattr_blocks = if inode.file_acl == 0 {
            0
        } else {
            u64::from(self.sb.block_size / 512)
        };
        let fast = !inode.has_flag(InodeFlags::INLINE_DATA) && inode.blocks_512 <= xattr_blocks;
        let target = if fast {
            let len = inode.size as usize;
            match inode.block.get(..len) {
                Some(t) => t.to_vec(),
                None => return Err(bad(format!("fast symlink of {len} bytes"))),
            }
        } else {
            if !inode.has_flag(InodeFlags::INLINE_DATA)
                && inode.size > u64::from(self.sb.block_size)
            {
                return Err(bad(format!("target of {} bytes in one block", inode.size)));
            }
            self.read_small(inode, SYMLINK_MAX)?
        };
        Ok(target)
    }

    /// The inode at `path` (absolute or relative to the root), following symlinks inside
    /// the image as the kernel would, at most 40 of them.
    pub fn lookup(&self, path: &[u8]) -> Result<Ino> {
        self.resolve(path, true)
    }

    /// Like [`Fs::lookup`], but a symlink as the last component is not followed: its own
    /// inode is returned, as `lstat` does.
    pub fn lookup_nofollow(&self, path: &[u8]) -> Result<Ino> {
        self.resolve(path, false)
    }

    fn resolve(&self, path: &[u8], follow_last: bool) -> Result<Ino> {
        let mut todo: Vec<Vec<u8>> = components(path);
        let mut current = Ino::ROOT;
        let mut walked = Vec::new();
        let mut links = 0;
        let mut steps = 0;
        let mut listings: HashMap<Ino, Vec<DirEntry>> = HashMap::new();
        let mut cached = 0;
        while let Some(name) = todo.pop() {
            steps += 1;
            if steps > MAX_LOOKUP_STEPS {
                return Err(Error::SymlinkLoop { path: walked });
            }
            let dir = self.inode(current)?;
            if dir.kind() != Some(EntryKind::Directory) {
                return Err(Error::NotADirectory { path: walked });
            }
            walked.push(b'/');
            walked.extend_from_slice(&name);
            let found = if let Some(list) = listings.get(&current) {
                list.iter().find(|e| e.name == name).cloned()
            } else {
                let list = self.read_dir(&dir)?;
                let found = list.iter().find(|e| e.name == name).cloned();
                if cached + list.len() <= LOOKUP_CACHE_ENTRIES {
                    cached += list.len();
                    listings.insert(current, list);
                }
                found
            };
            let Some(entry) = found else {
                return Err(Error::NotFound { path: walked });
            };
            let inode = self.inode(entry.ino)?;
            if inode.kind() == Some(EntryKind::Symlink) && (follow_last || !todo.is_empty()) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop { path: walked });
                }
                let target = self.symlink_target(&inode)?;
                if target.first() == Some(&b'/') {
                    current = Ino::ROOT;
                }
                todo.extend(components(&target));
            } else {
                current = entry.ino;
            }
        }
        Ok(current)
    }
}

fn read_source(source: &Source, buf: &mut [u8], offset: u64) -> io::Result<()> {
    match source {
        Source::File(f) => f.read_exact_at(buf, offset),
        Source::Memory(m) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            match start
                .checked_add(buf.len())
                .and_then(|end| m.get(start..end))
            {
                Some(src) => {
                    buf.copy_from_slice(src);
                    Ok(())
                }
                None => Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }
}

/// The components of a path, last first (a stack), without empty ones and `.`.
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_empty_memory_images_are_not_ext4() {
        for len in [0, 1500, 2047] {
            let err = Fs::from_bytes(vec![0; len]).unwrap_err();
            assert!(matches!(err, Error::NotExt4 { .. }), "{len}: {err}");
        }
    }

    #[test]
    fn components_are_a_stack() {
        assert_eq!(components(b"/a//./b/"), vec![b"b".to_vec(), b"a".to_vec()]);
        assert!(components(b"/").is_empty());
    }
}
