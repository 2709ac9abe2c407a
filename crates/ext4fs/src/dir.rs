//! Directories, read linearly block by block whether or not they are hash-indexed: the
//! htree's interior blocks hold one empty entry spanning the block, and its root hides its
//! index inside the `..` entry, so a linear read sees every name once (kernel
//! `ext4_readdir` on a non-htree walk does the same).

use std::collections::BTreeMap;

use crate::csum;
use crate::error::{Checksummed, Error, Result};
use crate::format::{dirent, dx, Incompat, InodeFlags};
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
/// directory), appending the live ones.
pub(crate) fn parse_entries(
    region: &[u8],
    block_size: usize,
    filetype: bool,
    out: &mut Vec<DirEntry>,
) -> Result<(), String> {
    let mut off = 0;
    while off < region.len() {
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
    Ok(())
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
        let ino = dir.ino;
        if dir.kind() != Some(EntryKind::Directory) {
            return Err(Error::BadInode {
                ino,
                reason: "not a directory".into(),
            });
        }
        let filetype = self.sb.has_incompat(Incompat::FILETYPE);
        let bs = self.sb.block_size as usize;
        let mut out = Vec::new();
        if dir.has_flag(InodeFlags::INLINE_DATA) {
            let bad = |reason: String| Error::BadInode {
                ino,
                reason: format!("inline directory: {reason}"),
            };
            out.push(DirEntry::new(b".", ino, EntryKind::Directory));
            // A parent of 0 names no inode: no `..` is listed, as no entry of inode 0 is.
            if let Some(parent) = Ino::new(u32_at(&dir.block, 0)) {
                out.push(DirEntry::new(b"..", parent, EntryKind::Directory));
            }
            parse_entries(&dir.block[4..], bs, filetype, &mut out).map_err(bad)?;
            let tail = self.inline_data_tail(dir)?;
            parse_entries(&tail, bs, filetype, &mut out).map_err(bad)?;
            out.into_iter().for_each(sink);
            return Ok(());
        }
        let mut buf = vec![0u8; bs];
        // Physical ranges read so far (start -> end): a hostile map that names the same
        // blocks again and again would make entries without bound from a few real blocks.
        let mut read: BTreeMap<u64, u64> = BTreeMap::new();
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
            for i in 0..run.len {
                let block = physical + i;
                self.read_block(block, &mut buf)?;
                let limit = self.dir_block_limit(dir, run.logical + i, block, &buf)?;
                parse_entries(&buf[..limit], bs, filetype, &mut out).map_err(|reason| {
                    Error::BadBlock {
                        ino,
                        block,
                        reason: format!("directory: {reason}"),
                    }
                })?;
                out.drain(..).for_each(&mut *sink);
            }
        }
        Ok(())
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
