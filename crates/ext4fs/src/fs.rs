//! An open image: the superblock, the group descriptors it reads on demand, inodes, file
//! contents and path lookup. Directories, block maps and xattrs are read in `dir`, `map`
//! and `xattr`, each structure's blocks in one place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::sync::Mutex;

use crate::budget::{default_budget, Claims, Meter};
use crate::csum;
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
/// Components walked in one [`Fs::lookup`]: 40 targets of 4095 bytes could make 80,000.
/// Each step reads a few blocks of an indexed directory, or scans a linear one up to the
/// name, and is charged to the budget.
const MAX_LOOKUP_STEPS: u32 = 4096;

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

/// An open image, with its work budget (see [`default_budget`]).
#[derive(Debug)]
pub struct Fs {
    file: Source,
    pub(crate) sb: Superblock,
    /// Blocks the image file really holds (or the superblock's count for a device).
    pub(crate) image_blocks: u64,
    /// Bytes the image holds: see [`Fs::allocated_bytes`].
    allocated: u64,
    groups: Mutex<HashMap<u32, Group>>,
    meter: Meter,
    claims: Mutex<Claims>,
    /// The last few extended attribute blocks read, checked: such a block is shared by
    /// design (refcounted), often by every file of a tree, and is read and charged once
    /// while it stays here (each attribute delivered is still charged).
    pub(crate) xattr_blocks: Mutex<std::collections::VecDeque<(u64, std::sync::Arc<[u8]>)>>,
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
    /// Open an image: read and validate its superblock. The work budget is
    /// [`default_budget`] of [`Fs::allocated_bytes`].
    pub fn open(file: File) -> Result<Fs> {
        let meta = file.metadata()?;
        let (len, held) = if meta.file_type().is_block_device() {
            // A device's metadata says 0 bytes; its end says how large it is, all of it
            // there to be read.
            let size = (&file).seek(io::SeekFrom::End(0))?;
            (size, size)
        } else {
            (meta.len(), meta.blocks().saturating_mul(512))
        };
        Fs::from_source(Source::File(file), len, held)
    }

    /// Open an image held in memory (tests, fuzzing).
    pub fn from_bytes(image: Vec<u8>) -> Result<Fs> {
        let len = image.len() as u64;
        Fs::from_source(Source::Memory(image), len, len)
    }

    /// `len`: the image's length (0 for a device that cannot tell); `held`: the bytes
    /// its storage holds (a sparse file's allocated blocks).
    fn from_source(file: Source, len: u64, held: u64) -> Result<Fs> {
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
        let bs = u64::from(sb.block_size);
        let used = sb.blocks_count.saturating_sub(sb.free_blocks_count);
        let allocated = used.saturating_mul(bs).min(held);
        Ok(Fs {
            file,
            sb,
            image_blocks,
            allocated,
            groups: Mutex::new(HashMap::new()),
            meter: Meter::new(default_budget(allocated)),
            claims: Mutex::new(Claims::default()),
            xattr_blocks: Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// The image's allocated size, what the work budget derives from: the smaller of
    /// what its storage holds (a file's allocated blocks, `st_blocks`, or a block
    /// device's size) and the blocks its superblock says are in use. A sparse file of any
    /// apparent length counts only what it holds; a superblock claiming every block is
    /// used counts no more than the file holds.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// The work budget in bytes: see [`default_budget`].
    pub fn budget(&self) -> u64 {
        self.meter.limit()
    }

    /// Replace the work budget (a tool's `--budget`).
    pub fn set_budget(&mut self, bytes: u64) {
        self.meter.set_limit(bytes);
    }

    /// The work done so far, in the budget's bytes.
    pub fn work_done(&self) -> u64 {
        self.meter.used()
    }

    /// Whether the budget is spent (every read fails from then on).
    pub fn over_budget(&self) -> bool {
        self.meter.used() > self.meter.limit()
    }

    /// Inode `ino` and its kind: an inode whose mode names no kind is an error, as one that
    /// cannot be read is.
    pub fn typed_inode(&self, ino: Ino) -> Result<(Inode, EntryKind)> {
        let inode = self.inode(ino)?;
        let kind = inode.checked_kind()?;
        Ok((inode, kind))
    }

    /// [`Error::OverBudget`] once the budget is spent: a walk asks between entries, and
    /// stops with this one error rather than one per entry left.
    pub fn check_budget(&self) -> Result<()> {
        if self.over_budget() {
            return Err(Error::OverBudget {
                limit: self.budget(),
            });
        }
        Ok(())
    }

    /// Count `units` of work against the budget.
    pub(crate) fn charge(&self, units: u64) -> Result<()> {
        self.meter.charge(units)
    }

    /// Claim metadata blocks `start .. start + len` for inode `owner`: `Err` when one of
    /// them belongs to another inode already.
    pub(crate) fn claim(&self, owner: Ino, start: u64, len: u64) -> Result<()> {
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        claims
            .claim(owner, start, len)
            .map_err(|(block, other)| Error::Claimed {
                ino: owner,
                block,
                owner: other,
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
    /// (file data comes through [`Fs::read_blocks`]). Charged its size; the caller claims
    /// it first when it belongs to one inode.
    pub(crate) fn read_block(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        self.read_blocks(block, buf)
    }

    /// Read `buf.len()` bytes starting at physical block `first`; every block touched must
    /// lie inside the file system. Charged one unit per byte.
    pub fn read_blocks(&self, first: u64, buf: &mut [u8]) -> Result<()> {
        self.charge(buf.len() as u64)?;
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
        self.charge(raw.len() as u64)?;
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
        self.charge(raw.len() as u64)?;
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
            let found = self.find_entry(&dir, &name)?;
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
