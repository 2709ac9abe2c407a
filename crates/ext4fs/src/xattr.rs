//! Extended attributes: in the inode after `i_extra_isize` and in one external block
//! (e2fsprogs lib/ext2fs/ext2_ext_attr.h). POSIX ACLs are stored in ext4's compact form and
//! are converted back to the `system.posix_acl_*` xattr form every tool expects.

use crate::budget::ENTRY_COST;
use crate::csum;
use crate::error::{Checksummed, Error, Result};
use crate::format::{acl, xattr as x, InodeFlags};
use crate::le::{u16_at, u32_at, u8_at};
use crate::{Fs, Ino, Inode};

/// One extended attribute with its full name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// A raw entry before the value is fetched.
struct Entry<'a> {
    index: u8,
    name: &'a [u8],
    value_offs: usize,
    value_inum: u32,
    value_size: u32,
}

/// The prefix of the names stored with a name index.
pub(crate) fn prefix(index: u8) -> Option<&'static [u8]> {
    Some(match index {
        x::INDEX_NONE => b"",
        x::INDEX_USER => b"user.",
        x::INDEX_POSIX_ACL_ACCESS => x::POSIX_ACL_ACCESS,
        x::INDEX_POSIX_ACL_DEFAULT => x::POSIX_ACL_DEFAULT,
        x::INDEX_TRUSTED => b"trusted.",
        x::INDEX_LUSTRE => b"lustre.",
        x::INDEX_SECURITY => b"security.",
        x::INDEX_SYSTEM => b"system.",
        x::INDEX_RICHACL => b"system.richacl",
        x::INDEX_GNU => b"gnu.",
        _ => return None,
    })
}

/// Whether a name index stores a POSIX ACL (in ext4's compact form).
pub(crate) fn is_acl(index: u8) -> bool {
    index == x::INDEX_POSIX_ACL_ACCESS || index == x::INDEX_POSIX_ACL_DEFAULT
}

/// Parse the entries starting at `start` of `region`, up to the 4-byte zero terminator.
fn entries(region: &[u8], start: usize) -> Result<Vec<Entry<'_>>, String> {
    let mut out = Vec::new();
    let mut off = start;
    loop {
        if off + x::END_LEN > region.len() {
            // Running into the end is tolerated as the end of the list (in-inode areas may
            // be exactly full).
            return Ok(out);
        }
        if u32_at(region, off) == 0 {
            return Ok(out);
        }
        if off + x::ENTRY_NAME > region.len() {
            return Err(format!("xattr entry at offset {off} truncated"));
        }
        let name_len = usize::from(u8_at(region, off + x::ENTRY_NAME_LEN));
        let name_end = off + x::ENTRY_NAME + name_len;
        let Some(name) = region.get(off + x::ENTRY_NAME..name_end) else {
            return Err(format!("xattr name at offset {off} truncated"));
        };
        out.push(Entry {
            index: u8_at(region, off + x::ENTRY_NAME_INDEX),
            name,
            value_offs: usize::from(u16_at(region, off + x::ENTRY_VALUE_OFFS)),
            value_inum: u32_at(region, off + x::ENTRY_VALUE_INUM),
            value_size: u32_at(region, off + x::ENTRY_VALUE_SIZE),
        });
        off = (name_end + 3) & !3;
    }
}

impl Fs {
    /// All extended attributes of an inode, sorted by name, the inline-data store
    /// (`system.data`) left out. Any unreadable attribute is an error.
    pub fn xattrs(&self, inode: &Inode) -> Result<Vec<Xattr>> {
        match self.xattrs_lenient(inode) {
            (list, None) => Ok(list),
            (_, Some(e)) => Err(e),
        }
    }

    /// The attributes that could be read, and the first error met: an attribute that cannot
    /// be read (an unknown name prefix, a value out of bounds) is left out and the others
    /// are kept; a corrupt list or block ends the reading there.
    pub fn xattrs_lenient(&self, inode: &Inode) -> (Vec<Xattr>, Option<Error>) {
        let mut out = Vec::new();
        let mut first_error = None;
        let result = self.each_xattr(inode, &mut first_error, &mut |name, value| {
            if name != x::INLINE_DATA_NAME {
                out.push(Xattr {
                    name: name.to_vec(),
                    value: value.to_vec(),
                });
            }
        });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
        out.sort();
        (out, first_error)
    }

    /// The value of `system.data` (the tail of inline data), if any.
    pub(crate) fn inline_data_tail(&self, inode: &Inode) -> Result<Vec<u8>> {
        let mut tail = Vec::new();
        let mut skipped = None;
        self.each_xattr(inode, &mut skipped, &mut |name, value| {
            if name == x::INLINE_DATA_NAME {
                tail = value.to_vec();
            }
        })?;
        // An attribute that could not be read may be the tail itself: the bytes past the
        // inline ones are unknown, not zeros.
        if let Some(e) = skipped {
            return Err(e);
        }
        Ok(tail)
    }

    /// Hand every readable attribute to `f`. An attribute that cannot be read goes to
    /// `skipped` (the first one) and the walk goes on; a corrupt list is `Err`.
    fn each_xattr(
        &self,
        inode: &Inode,
        skipped: &mut Option<Error>,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let ino = inode.ino;
        let area = &inode.inline_xattrs;
        if area.len() >= x::INODE_HEADER && u32_at(area, 0) == x::MAGIC {
            // Values are relative to the first entry, right after the magic.
            let values = &area[x::INODE_HEADER..];
            let list = entries(values, 0).map_err(|reason| Error::BadInode { ino, reason })?;
            for e in list {
                if let Err(err) = self.deliver(inode, &e, values, None, f) {
                    skipped.get_or_insert(err);
                }
            }
        }
        if inode.file_acl != 0 {
            let block = inode.file_acl;
            let bad = |reason: String| Error::BadBlock {
                ino,
                block,
                reason: format!("xattr block: {reason}"),
            };
            if block >= self.sb.blocks_count {
                return Err(Error::BadInode {
                    ino,
                    reason: format!("xattr block {block} outside the file system"),
                });
            }
            let buf = self.xattr_block(ino, block)?;
            let list = entries(&buf, x::BLOCK_HEADER).map_err(bad)?;
            for e in list {
                if let Err(err) = self.deliver(inode, &e, &buf, Some(block), f) {
                    skipped.get_or_insert(err);
                }
            }
        }
        Ok(())
    }

    /// The extended attribute block `block` (of inode `ino`), its header and checksum
    /// checked: from the few kept since they were read, else read (and charged) and kept.
    fn xattr_block(&self, ino: Ino, block: u64) -> Result<std::sync::Arc<[u8]>> {
        /// Blocks kept: a tree's files share a handful of distinct sets of attributes.
        const KEPT: usize = 8;
        if let Ok(kept) = self.xattr_blocks.lock() {
            if let Some((_, buf)) = kept.iter().find(|(b, _)| *b == block) {
                return Ok(buf.clone());
            }
        }
        let bad = |reason: String| Error::BadBlock {
            ino,
            block,
            reason: format!("xattr block: {reason}"),
        };
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.read_block(block, &mut buf)?;
        if u32_at(&buf, x::BLOCK_MAGIC) != x::MAGIC {
            return Err(bad("bad magic".into()));
        }
        let blocks = u32_at(&buf, x::BLOCK_BLOCKS);
        if blocks != 1 {
            return Err(bad(format!("{blocks} blocks")));
        }
        if self.sb.metadata_csum() && !csum::xattr_block_ok(self.sb.csum_seed, block, &buf) {
            return Err(Error::ChecksumMismatch {
                what: Checksummed::XattrBlock { ino, block },
            });
        }
        let buf: std::sync::Arc<[u8]> = buf.into();
        if let Ok(mut kept) = self.xattr_blocks.lock() {
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back((block, buf.clone()));
        }
        Ok(buf)
    }

    /// Hand one attribute to `f`, its value fetched (and an ACL converted).
    fn deliver(
        &self,
        inode: &Inode,
        e: &Entry<'_>,
        values: &[u8],
        block: Option<u64>,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let ino = inode.ino;
        // A shared block is read once while kept, but each entry delivered costs its name
        // and value for every inode using it (a value in its own inode is charged as it
        // is read).
        let copied = if e.value_inum == 0 {
            (e.value_size as usize).min(values.len())
        } else {
            0
        };
        self.charge(ENTRY_COST + (e.name.len() + copied) as u64)?;
        let bad = |reason: String| match block {
            Some(block) => Error::BadBlock {
                ino,
                block,
                reason: format!("xattr block: {reason}"),
            },
            None => Error::BadInode { ino, reason },
        };
        let Some(prefix) = prefix(e.index) else {
            return Err(bad(format!("unknown xattr name index {}", e.index)));
        };
        let mut name = prefix.to_vec();
        name.extend_from_slice(e.name);
        let value: Vec<u8> = if e.value_inum != 0 {
            self.ea_inode_value(ino, e.value_inum, e.value_size)?
        } else {
            let end = e.value_offs.checked_add(e.value_size as usize);
            match end.and_then(|end| values.get(e.value_offs..end)) {
                Some(v) => v.to_vec(),
                None => {
                    return Err(bad(format!(
                        "xattr value of {} bytes at offset {} out of bounds",
                        e.value_size, e.value_offs
                    )))
                }
            }
        };
        let value = if is_acl(e.index) {
            acl_to_xattr(&value).ok_or_else(|| bad("malformed ACL".into()))?
        } else {
            value
        };
        f(&name, &value);
        Ok(())
    }

    /// A value stored in its own inode (ea_inode feature).
    fn ea_inode_value(&self, ino: Ino, value_ino: u32, size: u32) -> Result<Vec<u8>> {
        let Some(value_ino) = Ino::new(value_ino).filter(|&v| v != ino && size <= x::VALUE_MAX)
        else {
            return Err(Error::BadInode {
                ino,
                reason: format!("xattr value inode {value_ino} of {size} bytes"),
            });
        };
        let holder = self.inode(value_ino).map_err(|e| Error::BadInode {
            ino,
            reason: format!("xattr value in inode {value_ino}: {e}"),
        })?;
        if !holder.has_flag(InodeFlags::EA_INODE) || holder.size < u64::from(size) {
            return Err(Error::BadInode {
                ino,
                reason: format!("inode {value_ino} is not an xattr value of {size} bytes"),
            });
        }
        // The kernel keeps values in blocks; an inline value would be read through the
        // holder's own xattrs, and two such inodes naming each other recurse without end.
        if holder.has_flag(InodeFlags::INLINE_DATA) {
            return Err(Error::BadInode {
                ino,
                reason: format!("xattr value inode {value_ino} has inline data"),
            });
        }
        self.read_small(&holder, u64::from(size))
    }
}

/// ext4's ACL (`ext4_acl_header` version 1, short entries for the owner/group/mask/other
/// tags) to the xattr form (`posix_acl_xattr_header` version 2, 8-byte entries).
fn acl_to_xattr(raw: &[u8]) -> Option<Vec<u8>> {
    if u32_at(raw, 0) != acl::EXT4_VERSION || raw.len() < 4 {
        return None;
    }
    let mut out = acl::XATTR_VERSION.to_le_bytes().to_vec();
    let mut off = 4;
    while off < raw.len() {
        let tag = u16_at(raw, off);
        let perm = u16_at(raw, off + 2);
        let id = match tag {
            acl::USER | acl::GROUP => {
                if off + 8 > raw.len() {
                    return None;
                }
                let id = u32_at(raw, off + 4);
                off += 8;
                id
            }
            acl::USER_OBJ | acl::GROUP_OBJ | acl::MASK | acl::OTHER => {
                if off + 4 > raw.len() {
                    return None;
                }
                off += 4;
                u32::MAX
            }
            _ => return None,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_until_the_terminator() {
        let mut r = vec![0u8; 64];
        r[0] = 3; // name_len
        r[1] = 1; // user.
        r[2..4].copy_from_slice(&40u16.to_le_bytes());
        r[8..12].copy_from_slice(&2u32.to_le_bytes());
        r[16..19].copy_from_slice(b"abc");
        let list = entries(&r, 0).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, b"abc");
        assert_eq!(list[0].value_offs, 40);
        r[20] = 255; // a second entry whose name runs off the end
        assert!(entries(&r, 0).is_err());
    }

    #[test]
    fn converts_acls() {
        let mut raw = 1u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&[1, 0, 6, 0]); // user_obj rw
        raw.extend_from_slice(&[2, 0, 4, 0, 0xe8, 3, 0, 0]); // user 1000 r
        let x = acl_to_xattr(&raw).unwrap();
        assert_eq!(x.len(), 4 + 16);
        assert_eq!(&x[4..12], &[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&x[12..20], &[2, 0, 4, 0, 0xe8, 3, 0, 0]);
        assert!(acl_to_xattr(&raw[..10]).is_none());
    }
}
