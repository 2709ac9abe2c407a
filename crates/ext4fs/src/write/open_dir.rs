//! Directories being filled: their entries wait in memory until the directory is closed,
//! then its blocks are built ([`super::dir`]) and written, in place of its old ones for a
//! directory the image held already.

use std::collections::HashSet;

use super::dir::{build_dir_blocks, DirBlocks, DirParams};
use super::error::{corrupt, WResult};
use super::extent::Piece;
use super::group::Groups;
use super::{inode, unsupported, Writer};
use crate::csum;
use crate::format::{dirent, inode::BLOCK_LEN, Compat, Incompat, InodeFlags, RoCompat, LINK_MAX};
use crate::{Backing, DirEntry, EntryKind, Fs, Ino};

/// A directory being filled.
pub(super) struct OpenDir {
    pub parent: Ino,
    /// The inode record, all but its size, links and block mapping.
    pub record: Vec<u8>,
    pub entries: Vec<DirEntry>,
    pub names: HashSet<Vec<u8>>,
    pub subdirs: u32,
    /// Extra 512-byte sectors the record already counts (its xattr block).
    pub xattr_sectors: u64,
    /// An existing directory's blocks and its record as found.
    pub old: Option<OldDir>,
}

/// What an existing directory held before the writer opened it.
pub(super) struct OldDir {
    /// Its data blocks, in logical order.
    blocks: Vec<u64>,
    /// Its record: `i_block` and flags are kept when the new blocks fit the old ones.
    record: Vec<u8>,
}

impl OpenDir {
    /// A new, empty directory with this record.
    pub fn new(parent: Ino, record: Vec<u8>) -> OpenDir {
        OpenDir {
            parent,
            xattr_sectors: inode::blocks(&record),
            record,
            entries: Vec::new(),
            names: HashSet::new(),
            subdirs: 0,
            old: None,
        }
    }

    /// An existing directory of the image, read to be rewritten with more entries: its
    /// blocks must be plain data blocks (no extent tree or indirect block, no inline data,
    /// no xattr block).
    pub fn load(reader: &Fs, g: &Groups, ino: Ino, parent: Ino) -> WResult<OpenDir> {
        let inode = reader.inode(ino)?;
        if inode.kind() != Some(EntryKind::Directory) {
            return corrupt(format!("inode {ino} is not a directory"));
        }
        if inode.has_flag(InodeFlags::INLINE_DATA) || inode.file_acl != 0 {
            return unsupported("existing directory with inline data or an xattr block");
        }
        let mut blocks = Vec::new();
        for r in reader.data_map(&inode)? {
            if let Backing::Data { physical } = r.backing {
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
        let record = g.read_inode(ino)?;
        let mut dir = OpenDir::new(parent, record.clone());
        dir.xattr_sectors = 0;
        for e in reader.read_dir(&inode)? {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let Some(kind) = reader.inode(e.ino)?.kind() else {
                return corrupt(format!("inode {} has no type", e.ino));
            };
            if kind == EntryKind::Directory {
                dir.subdirs += 1;
            }
            if !dir.names.insert(e.name.clone()) {
                return corrupt(format!("directory inode {ino} holds a name twice"));
            }
            dir.entries.push(DirEntry::new(&e.name, e.ino, kind));
        }
        dir.old = Some(OldDir { blocks, record });
        Ok(dir)
    }
}

impl Writer {
    /// What building directory `ino`'s blocks needs to know.
    fn dir_params(&self, ino: Ino, record: &[u8]) -> DirParams {
        let sb = &self.g.sb;
        DirParams {
            block_size: sb.block_size,
            csum_seed: sb.metadata_csum().then_some(sb.csum_seed),
            ino,
            generation: inode::generation(record),
            hash_version: sb.dir_hash_version(),
            hash_seed: sb.hash_seed,
            indexed: sb.has_compat(Compat::DIR_INDEX),
            large_dir: sb.has_incompat(Incompat::LARGEDIR),
            filetype: sb.has_incompat(Incompat::FILETYPE),
        }
    }

    /// Build and write the blocks of directory `ino`, then its inode.
    pub(super) fn write_dir(&mut self, ino: Ino, d: OpenDir) -> WResult<()> {
        let params = self.dir_params(ino, &d.record);
        let built = build_dir_blocks(ino, d.parent, &d.entries, &params)?;
        let mut record = d.record;
        let reuse = d
            .old
            .as_ref()
            .filter(|old| !built.indexed && built.blocks.len() <= old.blocks.len());
        let n = if let Some(old) = reuse {
            self.write_in_place(&built, old, &params, d.xattr_sectors, &mut record)?
        } else {
            if let Some(old) = &d.old {
                for &b in &old.blocks {
                    self.g.free_block(b)?;
                }
            }
            self.write_anew(ino, &built, d.xattr_sectors, &mut record)?
        };
        inode::set_size(&mut record, n * u64::from(self.g.sb.block_size));
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
        self.g.write_inode(ino, &mut record)
    }

    /// Write the blocks over an existing directory's (they fit): an empty lost+found keeps
    /// its spare blocks for e2fsck. Returns the directory's block count.
    fn write_in_place(
        &mut self,
        built: &DirBlocks,
        old: &OldDir,
        params: &DirParams,
        xattr_sectors: u64,
        record: &mut [u8],
    ) -> WResult<u64> {
        let empty = empty_dir_block(params);
        for (i, &b) in old.blocks.iter().enumerate() {
            self.g
                .write_block(b, built.blocks.get(i).unwrap_or(&empty))?;
        }
        let n = old.blocks.len() as u64;
        inode::set_i_block(record, &inode::i_block(&old.record));
        inode::set_flags(record, inode::flags(&old.record));
        let bs = self.g.sb.block_size;
        let sectors = xattr_sectors + n * u64::from(bs / 512);
        inode::set_blocks(record, sectors, true, bs);
        Ok(n)
    }

    /// Write the blocks into newly allocated ones and map them. Returns the directory's
    /// block count.
    fn write_anew(
        &mut self,
        ino: Ino,
        built: &DirBlocks,
        xattr_sectors: u64,
        record: &mut [u8],
    ) -> WResult<u64> {
        let n = built.blocks.len() as u64;
        let mut pieces: Vec<Piece> = Vec::new();
        let mut logical = 0u64;
        while logical < n {
            let (physical, len) = self.g.alloc_run(n - logical)?;
            for i in 0..len {
                let block = &built.blocks[(logical + i) as usize];
                self.g.write_block(physical + i, block)?;
            }
            pieces.push(Piece {
                logical,
                physical,
                len,
            });
            logical += len;
        }
        // Drop any old mapping, keep the xattr block count.
        inode::set_i_block(record, &[0; BLOCK_LEN]);
        let flags = inode::flags(record) - (InodeFlags::EXTENTS | InodeFlags::INDEX);
        inode::set_flags(record, flags);
        inode::set_blocks(record, xattr_sectors, true, self.g.sb.block_size);
        self.map_into(record, ino, &pieces, n, b"")?;
        Ok(n)
    }
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
        csum::set_dir_leaf(csum::inode_seed(seed, p.ino.get(), p.generation), &mut b);
    }
    b
}
