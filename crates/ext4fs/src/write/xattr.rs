//! Extended attributes written in the inode (after `i_extra_isize`) or in one block shared,
//! refcounted, by every inode with the same set. Entries carry their hash and the block its
//! hash (kernel `ext4_xattr_hash_entry` / `ext4_xattr_rehash`), as e2fsck checks them.

use crate::csum;
use crate::format::{acl, xattr as x};
use crate::le::{put_u16, put_u32, u16_at, u32_at};
use crate::Xattr;

/// One attribute as stored: a name index, the name without its prefix, the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stored {
    index: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// Split a full name into ext4's index and suffix; ACLs converted to ext4's compact form.
pub(crate) fn to_stored(x: &Xattr) -> Result<Stored, String> {
    let n = x.name.as_slice();
    let stored = [x::INDEX_USER, x::INDEX_TRUSTED, x::INDEX_SECURITY];
    let (index, name) = if n == x::POSIX_ACL_ACCESS {
        (x::INDEX_POSIX_ACL_ACCESS, &b""[..])
    } else if n == x::POSIX_ACL_DEFAULT {
        (x::INDEX_POSIX_ACL_DEFAULT, &b""[..])
    } else if let Some((index, rest)) = stored.iter().find_map(|&i| {
        let prefix = crate::xattr::prefix(i)?;
        n.strip_prefix(prefix).map(|rest| (i, rest))
    }) {
        (index, rest)
    } else {
        // Names are the caller's to show; a namespace of plain letters and digits is no name.
        let namespace = n.split(|&b| b == b'.').next().unwrap_or_default();
        let plain = !namespace.is_empty()
            && namespace.len() <= 16
            && namespace.iter().all(u8::is_ascii_alphanumeric);
        return Err(if plain {
            format!(
                "an extended attribute in namespace {}, which the writer does not store",
                String::from_utf8_lossy(namespace)
            )
        } else {
            "an extended attribute in a namespace the writer does not store".into()
        });
    };
    let acl = crate::xattr::is_acl(index);
    if name.is_empty() && !acl || name.len() > 255 {
        return Err("extended attribute name of a bad length".into());
    }
    let value = if acl {
        acl_from_xattr(&x.value).ok_or("malformed POSIX ACL")?
    } else {
        x.value.clone()
    };
    Ok(Stored {
        index,
        name: name.to_vec(),
        value,
    })
}

/// The xattr form (`posix_acl_xattr_header` version 2, 8-byte entries) to ext4's
/// (version 1, 4-byte entries for the owner/group/mask/other tags).
fn acl_from_xattr(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < 4 || u32_at(raw, 0) != acl::XATTR_VERSION || (raw.len() - 4) % 8 != 0 {
        return None;
    }
    let mut out = acl::EXT4_VERSION.to_le_bytes().to_vec();
    for e in raw[4..].chunks_exact(8) {
        let tag = u16_at(e, 0);
        out.extend_from_slice(&e[..4]);
        match tag {
            acl::USER | acl::GROUP => out.extend_from_slice(&e[4..8]),
            acl::USER_OBJ | acl::GROUP_OBJ | acl::MASK | acl::OTHER => {}
            _ => return None,
        }
    }
    Some(out)
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn entry_size(s: &Stored) -> usize {
    pad4(x::ENTRY_NAME + s.name.len())
}

/// Bytes the set takes: entries (with the terminator) and values.
pub(crate) fn size(set: &[Stored]) -> usize {
    set.iter()
        .map(|s| entry_size(s) + pad4(s.value.len()))
        .sum::<usize>()
        + x::END_LEN
}

fn entry_hash(s: &Stored) -> u32 {
    let mut h = 0u32;
    for &c in &s.name {
        h = (h << 5) ^ (h >> 27) ^ u32::from(c);
    }
    if !s.value.is_empty() {
        let mut padded = s.value.clone();
        padded.resize(pad4(padded.len()), 0);
        for w in padded.chunks_exact(4) {
            h = (h << 16) ^ (h >> 16) ^ u32_at(w, 0);
        }
    }
    h
}

/// Lay the set out in `region`: entries from `entries_at`, values packed at the end,
/// offsets relative to `base`. Returns each entry's hash. The set must fit (`size`).
fn lay_out(region: &mut [u8], entries_at: usize, base: usize, set: &[Stored]) -> Vec<u32> {
    let mut e = entries_at;
    let mut v = region.len();
    let mut hashes = Vec::new();
    for s in set {
        v -= pad4(s.value.len());
        let hash = entry_hash(s);
        hashes.push(hash);
        region[e + x::ENTRY_NAME_LEN] = s.name.len() as u8;
        region[e + x::ENTRY_NAME_INDEX] = s.index;
        let offs = if s.value.is_empty() { 0 } else { v - base };
        put_u16(region, e + x::ENTRY_VALUE_OFFS, offs as u16);
        put_u32(region, e + x::ENTRY_VALUE_SIZE, s.value.len() as u32);
        put_u32(region, e + x::ENTRY_HASH, hash);
        let name = e + x::ENTRY_NAME;
        region[name..name + s.name.len()].copy_from_slice(&s.name);
        region[v..v + s.value.len()].copy_from_slice(&s.value);
        e += entry_size(s);
    }
    hashes
}

/// Write the set into the in-inode area `area` (everything after `i_extra_isize`).
pub(crate) fn in_inode(area: &mut [u8], set: &[Stored]) {
    put_u32(area, 0, x::MAGIC);
    lay_out(area, x::INODE_HEADER, x::INODE_HEADER, set);
}

/// One xattr block holding the set, `refcount` inodes sharing it, checksummed for block
/// number `block` when `csum_seed` is given.
pub(crate) fn block(
    block_size: usize,
    set: &[Stored],
    refcount: u32,
    block: u64,
    csum_seed: Option<u32>,
) -> Vec<u8> {
    let mut b = vec![0u8; block_size];
    put_u32(&mut b, x::BLOCK_MAGIC, x::MAGIC);
    put_u32(&mut b, x::BLOCK_REFCOUNT, refcount);
    put_u32(&mut b, x::BLOCK_BLOCKS, 1);
    let hashes = lay_out(&mut b, x::BLOCK_HEADER, 0, set);
    let mut h = 0u32;
    for e in hashes {
        if e == 0 {
            h = 0;
            break;
        }
        h = (h << 16) ^ (h >> 16) ^ e;
    }
    put_u32(&mut b, x::BLOCK_HASH, h);
    if let Some(seed) = csum_seed {
        csum::set_xattr_block(seed, block, &mut b);
    }
    b
}

/// Whether the set fits in a block of `block_size` bytes.
pub(crate) fn fits_block(block_size: usize, set: &[Stored]) -> bool {
    x::BLOCK_HEADER + size(set) <= block_size
}

/// The set in the order the kernel searches a block: by index, name length, name.
pub(crate) fn sort(set: &mut [Stored]) {
    set.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_round_trip_through_the_reader_form() {
        let mut x = 2u32.to_le_bytes().to_vec();
        x.extend_from_slice(&[1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        x.extend_from_slice(&[2, 0, 4, 0, 0xe8, 3, 0, 0]);
        let ext4 = acl_from_xattr(&x).unwrap();
        assert_eq!(ext4.len(), 4 + 4 + 8);
        assert_eq!(u16_at(&ext4, 8), 2);
        assert!(acl_from_xattr(&x[..7]).is_none());
    }
}
