//! Extended attributes written in the inode (after `i_extra_isize`) or in one block shared,
//! refcounted, by every inode with the same set. Entries carry their hash and the block its
//! hash (kernel `ext4_xattr_hash_entry` / `ext4_xattr_rehash`), as e2fsck checks them.

use crate::crc::crc32c_le;
use crate::le::{u16_at, u32_at};
use crate::Xattr;

const MAGIC: u32 = 0xea02_0000;
/// The block header's size; entries follow it.
const BLOCK_HEADER: usize = 32;

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
    let (index, name) = if n == b"system.posix_acl_access" {
        (2, &b""[..])
    } else if n == b"system.posix_acl_default" {
        (3, &b""[..])
    } else if let Some(rest) = n.strip_prefix(b"user.") {
        (1, rest)
    } else if let Some(rest) = n.strip_prefix(b"trusted.") {
        (4, rest)
    } else if let Some(rest) = n.strip_prefix(b"security.") {
        (6, rest)
    } else {
        return Err(format!(
            "extended attribute '{}' has a name prefix the writer does not store",
            String::from_utf8_lossy(n).escape_debug()
        ));
    };
    if name.is_empty() && index != 2 && index != 3 || name.len() > 255 {
        return Err("extended attribute name of a bad length".into());
    }
    let value = if index == 2 || index == 3 {
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
    if raw.len() < 4 || u32_at(raw, 0) != 2 || (raw.len() - 4) % 8 != 0 {
        return None;
    }
    let mut out = 1u32.to_le_bytes().to_vec();
    for e in raw[4..].chunks_exact(8) {
        let tag = u16_at(e, 0);
        out.extend_from_slice(&e[..4]);
        match tag {
            0x02 | 0x08 => out.extend_from_slice(&e[4..8]),
            0x01 | 0x04 | 0x10 | 0x20 => {}
            _ => return None,
        }
    }
    Some(out)
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn entry_size(s: &Stored) -> usize {
    pad4(16 + s.name.len())
}

/// Bytes the set takes: entries (with the 4-byte terminator) and values.
pub(crate) fn size(set: &[Stored]) -> usize {
    set.iter()
        .map(|s| entry_size(s) + pad4(s.value.len()))
        .sum::<usize>()
        + 4
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
        region[e] = s.name.len() as u8;
        region[e + 1] = s.index;
        let offs = if s.value.is_empty() { 0 } else { v - base };
        region[e + 2..e + 4].copy_from_slice(&(offs as u16).to_le_bytes());
        region[e + 8..e + 12].copy_from_slice(&(s.value.len() as u32).to_le_bytes());
        region[e + 12..e + 16].copy_from_slice(&hash.to_le_bytes());
        region[e + 16..e + 16 + s.name.len()].copy_from_slice(&s.name);
        region[v..v + s.value.len()].copy_from_slice(&s.value);
        e += entry_size(s);
    }
    hashes
}

/// Write the set into the in-inode area `area` (everything after `i_extra_isize`).
pub(crate) fn in_inode(area: &mut [u8], set: &[Stored]) {
    area[..4].copy_from_slice(&MAGIC.to_le_bytes());
    lay_out(area, 4, 4, set);
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
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&refcount.to_le_bytes());
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    let hashes = lay_out(&mut b, BLOCK_HEADER, 0, set);
    let mut h = 0u32;
    for e in hashes {
        if e == 0 {
            h = 0;
            break;
        }
        h = (h << 16) ^ (h >> 16) ^ e;
    }
    b[12..16].copy_from_slice(&h.to_le_bytes());
    if let Some(seed) = csum_seed {
        let c = crc32c_le(crc32c_le(seed, &block.to_le_bytes()), &b);
        b[16..20].copy_from_slice(&c.to_le_bytes());
    }
    b
}

/// Whether the set fits in a block of `block_size` bytes.
pub(crate) fn fits_block(block_size: usize, set: &[Stored]) -> bool {
    BLOCK_HEADER + size(set) <= block_size
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
