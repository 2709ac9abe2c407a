//! Directories, listed linearly block by block whether or not they are hash-indexed: the
//! htree's interior blocks hold one empty entry spanning the block, and its root hides its
//! index inside the `..` entry, so a linear read sees every name once (kernel
//! `ext4_readdir` on a non-htree walk does the same). Looking one name up goes through the
//! index instead, as the kernel's `ext4_find_entry` does: a few blocks, whatever the size
//! of the directory.

use std::collections::BTreeMap;

use crate::budget::ENTRY_COST;
use crate::csum;
use crate::error::{Checksummed, Error, Result};
use crate::format::{dirent, dx, hash_version, Compat, Incompat, InodeFlags};
use crate::le::{u16_at, u32_at, u8_at};
use crate::map::Backing;
use crate::{EntryKind, Fs, Ino, Inode};

/// One name in a directory: what the reader finds, and what the writer is given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: Ino,
    /// The kind the entry claims (its `EXT2_FT_*` byte); `None` without the `filetype`
    /// feature, for 0 (unknown) and for codes no version defines. The inode's own mode is
    /// what it is; a hostile image can make the two disagree.
    pub kind: Option<EntryKind>,
}

impl DirEntry {
    pub fn new(name: &[u8], ino: Ino, kind: EntryKind) -> DirEntry {
        DirEntry {
            name: name.to_vec(),
            ino,
            kind: Some(kind),
        }
    }
}

/// What a walk of a directory's hash index found.
enum Dx {
    Found(DirEntry),
    /// Not in the leaf the index leads to: the name is not there.
    Absent,
    /// The index cannot be used (not one the kernel would walk): scan instead.
    Unusable,
}

/// One block of a hash index being walked: its (hash, block) pairs and the one taken.
struct DxFrame {
    block: Vec<u8>,
    /// Where the pairs start; the first pair's hash is the limit and the count.
    start: usize,
    count: usize,
    at: usize,
}

impl DxFrame {
    /// The frame of `block`, whose pairs start at `start`, positioned at the last pair
    /// whose hash is at most `target`; `None` when its count or limit is impossible.
    fn new(block: Vec<u8>, start: usize, target: u32) -> Option<DxFrame> {
        let limit = usize::from(u16_at(&block, start + dx::LIMIT));
        let count = usize::from(u16_at(&block, start + dx::COUNT));
        if count == 0 || count > limit || start + limit * dx::ENTRY_SIZE > block.len() {
            return None;
        }
        let mut frame = DxFrame {
            block,
            start,
            count,
            at: 0,
        };
        // Pairs are sorted by hash; the first one covers everything below the second.
        let (mut lo, mut hi) = (1, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if frame.hash(mid) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        frame.at = lo - 1;
        Some(frame)
    }

    fn hash(&self, i: usize) -> u32 {
        u32_at(&self.block, self.start + i * dx::ENTRY_SIZE)
    }

    /// The logical block the pair taken leads to (the top nibble is not part of it).
    fn child(&self) -> u64 {
        u64::from(u32_at(&self.block, self.start + self.at * dx::ENTRY_SIZE + 4) & 0x0fff_ffff)
    }
}

/// Decode a `rec_len`; 64 KiB blocks need the two low bits (kernel `ext4_rec_len_from_disk`).
pub(crate) fn rec_len(raw: u16, block_size: usize) -> usize {
    let len = usize::from(raw);
    if block_size < 65536 {
        len
    } else if raw == 0xffff || raw == 0 {
        65536
    } else {
        (len & 0xfffc) | ((len & 3) << 16)
    }
}

/// Encode a `rec_len`: 65536 does not fit 16 bits, so 64 KiB blocks fold the high bits
/// into the two low ones (always zero, lengths being multiples of 4).
pub(crate) fn rec_len_to_disk(len: usize, block_size: usize) -> u16 {
    if block_size < 65536 {
        len as u16
    } else if len >= 65536 {
        0xffff
    } else {
        ((len & 0xfffc) | ((len >> 16) & 3)) as u16
    }
}

/// Parse the entries of one region (a block without its checksum tail, or part of an inline
/// directory), appending the live ones; returns how many records it holds (empty ones too).
pub(crate) fn parse_entries(
    region: &[u8],
    block_size: usize,
    filetype: bool,
    out: &mut Vec<DirEntry>,
) -> Result<usize, String> {
    let mut off = 0;
    let mut records = 0;
    while off < region.len() {
        records += 1;
        if off + dirent::HEADER > region.len() {
            return Err(format!("entry header at offset {off} truncated"));
        }
        let ino = u32_at(region, off + dirent::INODE);
        let len = rec_len(u16_at(region, off + dirent::REC_LEN), block_size);
        let (name_len, file_type) = if filetype {
            let name_len = u8_at(region, off + dirent::NAME_LEN);
            (
                usize::from(name_len),
                u8_at(region, off + dirent::FILE_TYPE),
            )
        } else {
            (usize::from(u16_at(region, off + dirent::NAME_LEN)), 0)
        };
        if len < dirent::HEADER || len % 4 != 0 || off + len > region.len() {
            return Err(format!("entry at offset {off} has record length {len}"));
        }
        if dirent::HEADER + name_len > len {
            return Err(format!(
                "entry at offset {off}: name of {name_len} bytes in {len}"
            ));
        }
        if let Some(ino) = Ino::new(ino) {
            out.push(DirEntry {
                name: region[off + dirent::NAME..off + dirent::NAME + name_len].to_vec(),
                ino,
                kind: EntryKind::from_dirent_code(file_type),
            });
        }
        off += len;
    }
    Ok(records)
}

impl Fs {
    /// Every entry of a directory, `.` and `..` included (synthesised for inline
    /// directories), in on-disk order. Fails on the first corrupt block.
    pub fn read_dir(&self, dir: &Inode) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        self.for_each_dir_entry(dir, &mut |e| out.push(e))?;
        Ok(out)
    }

    /// The entries [`Fs::read_dir`] gives, handed to `sink` one block at a time instead of
    /// held together: a caller that keeps them more compactly needs no more memory than
    /// that. The entries of a corrupt block are not given, and the error ends the read.
    pub fn for_each_dir_entry(&self, dir: &Inode, sink: &mut dyn FnMut(DirEntry)) -> Result<()> {
        self.entries_of(dir, u64::MAX, &mut |e| {
            sink(e);
            true
        })
    }

    /// The entries of the first `max_blocks` blocks of `dir` (all of an inline one), to
    /// `sink` until it returns false (a lookup stops at its match). Each block is claimed
    /// for `dir`, and charged with its entries.
    fn entries_of(
        &self,
        dir: &Inode,
        max_blocks: u64,
        sink: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<()> {
        let ino = dir.ino;
        if dir.kind() != Some(EntryKind::Directory) {
            return Err(Error::BadInode {
                ino,
                reason: "not a directory".into(),
            });
        }
        let filetype = self.sb.has_incompat(Incompat::FILETYPE);
        let bs = self.sb.block_size as usize;
        let mut entries = Vec::new();
        if dir.has_flag(InodeFlags::INLINE_DATA) {
            let bad = |reason: String| Error::BadInode {
                ino,
                reason: format!("inline directory: {reason}"),
            };
            entries.push(DirEntry::new(b".", ino, EntryKind::Directory));
            // A parent of 0 names no inode: no `..` is listed, as no entry of inode 0 is.
            if let Some(parent) = Ino::new(u32_at(&dir.block, 0)) {
                entries.push(DirEntry::new(b"..", parent, EntryKind::Directory));
            }
            let mut records = parse_entries(&dir.block[4..], bs, filetype, &mut entries);
            let tail = self.inline_data_tail(dir)?;
            if let Ok(n) = &records {
                records = parse_entries(&tail, bs, filetype, &mut entries).map(|m| m + n);
            }
            self.charge(records.as_ref().map_or(0, |n| *n as u64) * ENTRY_COST)?;
            records.map_err(bad)?;
            for e in entries {
                if !sink(e) {
                    break;
                }
            }
            return Ok(());
        }
        let mut buf = vec![0u8; bs];
        // Physical ranges read so far (start -> end): a hostile map that names the same
        // blocks again and again would make entries without bound from a few real blocks.
        let mut read: BTreeMap<u64, u64> = BTreeMap::new();
        let mut blocks_left = max_blocks;
        for run in self.data_map(dir)? {
            let Backing::Data { physical } = run.backing else {
                continue;
            };
            let end = physical + run.len;
            if read
                .range(..end)
                .next_back()
                .is_some_and(|(_, &last_end)| last_end > physical)
            {
                return Err(Error::BadBlock {
                    ino,
                    block: physical,
                    reason: "directory block used twice".into(),
                });
            }
            read.insert(physical, end);
            self.claim(ino, physical, run.len)?;
            for i in 0..run.len {
                if blocks_left == 0 {
                    return Ok(());
                }
                blocks_left -= 1;
                let block = physical + i;
                let limit = self.dir_block(dir, run.logical + i, block, &mut buf)?;
                entries.clear();
                let records = parse_entries(&buf[..limit], bs, filetype, &mut entries);
                self.charge(records.as_ref().map_or(0, |n| *n as u64) * ENTRY_COST)?;
                records.map_err(|reason| Error::BadBlock {
                    ino,
                    block,
                    reason: format!("directory: {reason}"),
                })?;
                for e in entries.drain(..) {
                    if !sink(e) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Read block `logical` (at `physical`) of directory `dir` into `buf` and verify it;
    /// returns where its entries end. The caller has claimed it.
    fn dir_block(&self, dir: &Inode, logical: u64, physical: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_block(physical, buf)?;
        self.dir_block_limit(dir, logical, physical, buf)
    }

    /// The entry named `name` in directory `dir`, if there is one. A hash-indexed
    /// directory is searched through its index (the root, at most two interior nodes and
    /// the leaf the name's hash leads to, as the kernel does); any other, or one whose
    /// index cannot be used, is scanned up to the match. `.` and `..` are in its first
    /// block.
    pub(crate) fn find_entry(&self, dir: &Inode, name: &[u8]) -> Result<Option<DirEntry>> {
        let dots = name == b"." || name == b"..";
        let indexed = self.sb.has_compat(Compat::DIR_INDEX)
            && dir.has_flag(InodeFlags::INDEX)
            && !dir.has_flag(InodeFlags::INLINE_DATA)
            && !dir.has_flag(InodeFlags::CASEFOLD);
        if indexed && !dots && dir.kind() == Some(EntryKind::Directory) {
            match self.dx_find(dir, name)? {
                Dx::Found(e) => return Ok(Some(e)),
                Dx::Absent => return Ok(None),
                Dx::Unusable => {}
            }
        }
        let mut found = None;
        let max_blocks = if dots { 1 } else { u64::MAX };
        self.entries_of(dir, max_blocks, &mut |e| {
            if e.name == name {
                found = Some(e);
                return false;
            }
            true
        })?;
        Ok(found)
    }

    /// Claim, read and verify block `logical` of `dir` for the index walk; `None` when it
    /// is a hole (an index pointing there cannot be used).
    fn dx_block(&self, dir: &Inode, logical: u64, buf: &mut [u8]) -> Result<Option<usize>> {
        let Some(physical) = self.map_block(dir, logical)? else {
            return Ok(None);
        };
        self.claim(dir.ino, physical, 1)?;
        self.dir_block(dir, logical, physical, buf).map(Some)
    }

    /// Look `name` up through the hash index of `dir`.
    fn dx_find(&self, dir: &Inode, name: &[u8]) -> Result<Dx> {
        let bs = self.sb.block_size as usize;
        let mut root = vec![0u8; bs];
        if self.dx_block(dir, 0, &mut root)?.is_none() {
            return Ok(Dx::Unusable);
        }
        let info_len = usize::from(u8_at(&root, dx::ROOT_INFO_LENGTH));
        let levels = usize::from(u8_at(&root, dx::ROOT_INFO_LEVELS));
        let max_levels = if self.sb.has_incompat(Incompat::LARGEDIR) {
            3
        } else {
            2
        };
        let stored = u8_at(&root, dx::ROOT_INFO_HASH_VERSION);
        let version = crate::dirhash::effective_version(stored, self.sb.flags);
        let hash = (stored <= hash_version::TEA)
            .then(|| crate::dirhash::dirhash(version, &self.sb.hash_seed, name))
            .flatten();
        // Flags the kernel does not implement, more levels than it walks: it reads such a
        // directory linearly, and so does this.
        let (Some(hash), true, true) = (
            hash,
            levels < max_levels && info_len >= 8,
            u8_at(&root, dx::ROOT_INFO + 7) & 1 == 0,
        ) else {
            return Ok(Dx::Unusable);
        };
        let target = hash.major;
        let Some(root_frame) = DxFrame::new(root, dx::ROOT_INFO + info_len, target) else {
            return Ok(Dx::Unusable);
        };
        let mut frames = vec![root_frame];
        while frames.len() <= levels {
            let Some(frame) = self.dx_node(dir, frames.last().map(DxFrame::child), target)? else {
                return Ok(Dx::Unusable);
            };
            frames.push(frame);
        }
        let filetype = self.sb.has_incompat(Incompat::FILETYPE);
        let mut leaf = vec![0u8; bs];
        let mut entries = Vec::new();
        loop {
            let logical = frames.last().map_or(0, DxFrame::child);
            let Some(limit) = self.dx_block(dir, logical, &mut leaf)? else {
                return Ok(Dx::Unusable);
            };
            entries.clear();
            let records = parse_entries(&leaf[..limit], bs, filetype, &mut entries);
            self.charge(records.as_ref().map_or(0, |n| *n as u64) * ENTRY_COST)?;
            if records.is_err() {
                return Ok(Dx::Unusable);
            }
            if let Some(e) = entries.drain(..).find(|e| e.name == name) {
                return Ok(Dx::Found(e));
            }
            // A run of names of one hash may go on in the next leaf, whose key then has
            // the continuation bit (kernel `ext4_htree_next_block`).
            let Some(level) = frames.iter().rposition(|f| f.at + 1 < f.count) else {
                return Ok(Dx::Absent);
            };
            frames.truncate(level + 1);
            let frame = &mut frames[level];
            frame.at += 1;
            if frame.hash(frame.at) & !1 != target {
                return Ok(Dx::Absent);
            }
            while frames.len() <= levels {
                // Leftmost down from here: any entry's hash is below the target's next.
                let Some(mut frame) = self.dx_node(dir, frames.last().map(DxFrame::child), 0)?
                else {
                    return Ok(Dx::Unusable);
                };
                frame.at = 0;
                frames.push(frame);
            }
        }
    }

    /// Read an interior node of the index at logical block `logical` and find the entry
    /// for `target` in it; `None` when it is no node.
    fn dx_node(&self, dir: &Inode, logical: Option<u64>, target: u32) -> Result<Option<DxFrame>> {
        let Some(logical) = logical else {
            return Ok(None);
        };
        let bs = self.sb.block_size as usize;
        let mut node = vec![0u8; bs];
        if self.dx_block(dir, logical, &mut node)?.is_none() {
            return Ok(None);
        }
        // A node hides its index behind one empty entry spanning the block.
        if u32_at(&node, dirent::INODE) != 0 || rec_len(u16_at(&node, dirent::REC_LEN), bs) != bs {
            return Ok(None);
        }
        Ok(DxFrame::new(node, dx::NODE_ENTRIES, target))
    }
    /// Verify a directory block's checksum (a dirent tail on leaves, a dx tail on the
    /// htree's root and interior blocks); returns where the entries end.
    fn dir_block_limit(&self, dir: &Inode, logical: u64, block: u64, buf: &[u8]) -> Result<usize> {
        let bs = buf.len();
        if !self.sb.metadata_csum() {
            return Ok(bs);
        }
        let mismatch = Err(Error::ChecksumMismatch {
            what: Checksummed::DirectoryBlock {
                ino: dir.ino,
                block,
            },
        });
        let seed = csum::inode_seed(self.sb.csum_seed, dir.ino.get(), dir.generation);
        // htree blocks hold no names besides the root's `.` and `..`: their fake entry spans
        // the block, hiding the index, which ends in a dx_tail (kernel `ext4_dx_csum`).
        let interior =
            u32_at(buf, dirent::INODE) == 0 && rec_len(u16_at(buf, dirent::REC_LEN), bs) == bs;
        if dir.has_flag(InodeFlags::INDEX) && (logical == 0 || interior) {
            let index = if logical == 0 {
                dx::ROOT_INFO + usize::from(u8_at(buf, dx::ROOT_INFO_LENGTH))
            } else {
                dx::NODE_ENTRIES
            };
            let Some(tail) = csum::dx_tail(buf, index) else {
                return Err(Error::BadBlock {
                    ino: dir.ino,
                    block,
                    reason: format!(
                        "htree node with {} of {} entries",
                        u16_at(buf, index + dx::COUNT),
                        u16_at(buf, index + dx::LIMIT)
                    ),
                });
            };
            if !csum::dx_node_ok(seed, buf, index, tail) {
                return mismatch;
            }
            return Ok(bs);
        }
        if !csum::has_dir_tail(buf) {
            return Err(Error::BadBlock {
                ino: dir.ino,
                block,
                reason: "directory block without its checksum tail".into(),
            });
        }
        if !csum::dir_leaf_ok(seed, buf) {
            return mismatch;
        }
        Ok(bs - dirent::TAIL_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ino: u32, rec: u16, name: &[u8]) -> Vec<u8> {
        let mut e = ino.to_le_bytes().to_vec();
        e.extend_from_slice(&rec.to_le_bytes());
        e.push(name.len() as u8);
        e.push(1);
        e.extend_from_slice(name);
        e.resize(usize::from(rec), 0);
        e
    }

    #[test]
    fn parses_live_entries_and_skips_empty_ones() {
        let mut b = entry(11, 12, b"a");
        b.extend(entry(0, 12, b"gone"));
        b.extend(entry(12, 40, b"name"));
        let mut out = Vec::new();
        parse_entries(&b, 1024, true, &mut out).unwrap();
        let names: Vec<&[u8]> = out.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, vec![&b"a"[..], b"name"]);
    }

    #[test]
    fn refuses_bad_record_lengths() {
        for rec in [0u16, 6, 14, 200] {
            let mut b = entry(11, 12, b"a");
            b[4..6].copy_from_slice(&rec.to_le_bytes());
            b.resize(64, 0);
            let mut out = Vec::new();
            assert!(
                parse_entries(&b, 1024, true, &mut out).is_err(),
                "rec_len {rec}"
            );
        }
        // A name longer than its record.
        let mut b = entry(11, 12, b"abcd");
        b[6] = 9;
        assert!(parse_entries(&b, 1024, true, &mut Vec::new()).is_err());
    }

    #[test]
    fn big_block_record_lengths() {
        for len in [12, 4096, 65532, 65536] {
            assert_eq!(rec_len(rec_len_to_disk(len, 65536), 65536), len);
        }
        assert_eq!(rec_len(0, 65536), 65536);
        assert_eq!(rec_len(0xffff, 65536), 65536);
        assert_eq!(rec_len(12, 65536), 12);
        assert_eq!(rec_len(0, 4096), 0);
    }
}
