//! The hashes of ext4's indexed directories (htree): legacy, half-MD4 and TEA, each in the
//! two variants that read name bytes as signed or unsigned chars.
//!
//! A file system picks one algorithm for all its directories (`s_def_hash_version`) and a
//! 128-bit seed (`s_hash_seed`; all zeros means the fixed default seed). Which char
//! signedness applies is a superblock flag, which `mkfs.ext4` sets from the `char` of the
//! machine it ran on (signed on x86, unsigned on arm64). The hash of a name is a pair: the
//! major hash, which orders the index (its low bit is always clear, because the index uses
//! that bit to mark a run of equal hashes continued from the previous leaf), and a minor
//! hash, which only orders names within a major hash when directories are read in hash
//! order.
//!
//! The kernel never hands out the largest major hash, `0xffff_fffe` (twice its 32-bit
//! end-of-directory cookie): such a name hashes to `0xffff_fffc` instead, and the index
//! must be built with what the kernel computes, since the kernel is what looks names up.
//! (e2fsprogs' `ext2fs_dirhash` omits that step; the two differ only for that one value.)
//!
//! Not covered: SipHash, which only case-insensitive encrypted directories use.

use crate::format::SbFlags;

pub use crate::format::hash_version as version;

/// The 32-bit end-of-directory cookie (`EXT4_HTREE_EOF_32BIT`): no name may hash to twice
/// this value.
pub const HTREE_EOF_32: u32 = 0x7fff_ffff;

/// The seed used when the superblock's is all zeros (the MD4 initial state).
pub const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// A name's hash: ordered by major, then minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirHash {
    /// The index key; its low bit is always 0.
    pub major: u32,
    pub minor: u32,
}

/// The version to hash with, from the superblock: `s_def_hash_version` with 3 added to the
/// three classic algorithms when `s_flags` says unsigned (as the kernel and e2fsprogs do).
pub fn effective_version(def_hash_version: u8, s_flags: SbFlags) -> u8 {
    if def_hash_version <= version::TEA && s_flags.contains(SbFlags::UNSIGNED_HASH) {
        def_hash_version + version::UNSIGNED_DELTA
    } else {
        def_hash_version
    }
}

/// The hash of `name` with algorithm `version` (0..=5, see [`version`]) and the
/// superblock's seed as four little-endian words. `None` for versions not computed here
/// (SipHash, unknown numbers).
pub fn dirhash(version: u8, seed: &[u32; 4], name: &[u8]) -> Option<DirHash> {
    let unsigned = matches!(
        version,
        version::LEGACY_UNSIGNED | version::HALF_MD4_UNSIGNED | version::TEA_UNSIGNED
    );
    let state = if seed.iter().all(|&w| w == 0) {
        DEFAULT_SEED
    } else {
        *seed
    };
    let (major, minor) = match version {
        version::LEGACY | version::LEGACY_UNSIGNED => (legacy(name, unsigned), 0),
        version::HALF_MD4 | version::HALF_MD4_UNSIGNED => {
            let s = chunked(state, name, 32, unsigned, half_md4_round);
            (s[1], s[2])
        }
        version::TEA | version::TEA_UNSIGNED => {
            let s = chunked(state, name, 16, unsigned, tea_round);
            (s[0], s[1])
        }
        _ => return None,
    };
    Some(DirHash {
        major: finish_major(major),
        minor,
    })
}

/// Clear the continuation bit and keep clear of the end-of-directory cookie.
fn finish_major(hash: u32) -> u32 {
    let hash = hash & !1;
    if hash == HTREE_EOF_32 << 1 {
        (HTREE_EOF_32 - 1) << 1
    } else {
        hash
    }
}

/// One name byte as the hash sees it: a C `char` of the chosen signedness, widened to 32 bits.
fn char_value(b: u8, unsigned: bool) -> u32 {
    if unsigned {
        u32::from(b)
    } else {
        i32::from(b as i8) as u32
    }
}

/// The original ext3 htree hash ("dx_hack_hash"): no seed, no minor hash.
fn legacy(name: &[u8], unsigned: bool) -> u32 {
    let (mut h0, mut h1): (u32, u32) = (0x12a3_fe2d, 0x37ab_e8f9);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ char_value(b, unsigned).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Feed the name to `round` in pieces of `piece` bytes (32 for half-MD4, 16 for TEA), each
/// packed into words by [`pack`] with the length still remaining.
fn chunked(
    mut state: [u32; 4],
    name: &[u8],
    piece: usize,
    unsigned: bool,
    round: fn(&mut [u32; 4], &[u32; 8]),
) -> [u32; 4] {
    let mut rest = name;
    while !rest.is_empty() {
        let words = pack(rest, piece / 4, unsigned);
        round(&mut state, &words);
        rest = rest.get(piece..).unwrap_or(&[]);
    }
    state
}

/// Pack up to `4 * count` bytes of `rest` into `count` words, big-end first within each
/// word, the words and the unfilled remainder padded with a pattern made of the remaining
/// length (so that names differing only in trailing padding-like bytes still differ).
fn pack(rest: &[u8], count: usize, unsigned: bool) -> [u32; 8] {
    let len = rest.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let take = rest.len().min(count * 4);
    let mut val = pad;
    for (i, &b) in rest[..take].iter().enumerate() {
        val = char_value(b, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[i / 4] = val;
            val = pad;
        }
    }
    if take % 4 != 0 {
        out[take / 4] = val;
    }
    out
}

fn half_md4_round(state: &mut [u32; 4], x: &[u32; 8]) {
    type Mix = fn(u32, u32, u32) -> u32;
    /// Per step: the word index and the rotation.
    type Steps = [(usize, u32); 8];
    fn f(x: u32, y: u32, z: u32) -> u32 {
        z ^ (x & (y ^ z))
    }
    fn g(x: u32, y: u32, z: u32) -> u32 {
        (x & y).wrapping_add((x ^ y) & z)
    }
    fn h(x: u32, y: u32, z: u32) -> u32 {
        x ^ y ^ z
    }
    // Three rounds of eight steps: mixing function, constant, (word, rotation) per step.
    #[rustfmt::skip]
    const ROUNDS: [(Mix, u32, Steps); 3] = [
        (f, 0, [(0, 3), (1, 7), (2, 11), (3, 19), (4, 3), (5, 7), (6, 11), (7, 19)]),
        (g, 0x5a82_7999, [(1, 3), (3, 5), (5, 9), (7, 13), (0, 3), (2, 5), (4, 9), (6, 13)]),
        (h, 0x6ed9_eba1, [(3, 3), (7, 9), (2, 11), (6, 15), (1, 3), (5, 9), (0, 11), (4, 15)]),
    ];
    let mut r = *state;
    for (mix, k, steps) in ROUNDS {
        for (n, (w, s)) in steps.into_iter().enumerate() {
            // The registers take turns as the target in the order a, d, c, b; the mixing
            // function reads the three that follow it cyclically.
            let t = [0, 3, 2, 1][n % 4];
            let m = mix(r[(t + 1) % 4], r[(t + 2) % 4], r[(t + 3) % 4]);
            r[t] = r[t]
                .wrapping_add(m)
                .wrapping_add(x[w])
                .wrapping_add(k)
                .rotate_left(s);
        }
    }
    for (s, v) in state.iter_mut().zip(r) {
        *s = s.wrapping_add(v);
    }
}

/// 16 cycles of TEA over the first two state words, keyed by four packed words.
fn tea_round(state: &mut [u32; 4], x: &[u32; 8]) {
    const DELTA: u32 = 0x9e37_79b9;
    let (mut v0, mut v1) = (state[0], state[1]);
    let mut sum: u32 = 0;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        v0 = v0.wrapping_add(
            (v1 << 4).wrapping_add(x[0]) ^ v1.wrapping_add(sum) ^ (v1 >> 5).wrapping_add(x[1]),
        );
        v1 = v1.wrapping_add(
            (v0 << 4).wrapping_add(x[2]) ^ v0.wrapping_add(sum) ^ (v0 >> 5).wrapping_add(x[3]),
        );
    }
    state[0] = state[0].wrapping_add(v0);
    state[1] = state[1].wrapping_add(v1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_directory_cookie_is_never_a_hash() {
        assert_eq!(finish_major(0xffff_ffff), 0xffff_fffc);
        assert_eq!(finish_major(0xffff_fffe), 0xffff_fffc);
        assert_eq!(finish_major(0xffff_fffd), 0xffff_fffc);
        assert_eq!(finish_major(0x1234_5677), 0x1234_5676);
    }

    #[test]
    fn signedness_matters_only_for_high_bytes() {
        for v in [version::LEGACY, version::HALF_MD4, version::TEA] {
            let seed = [0; 4];
            assert_eq!(
                dirhash(v, &seed, b"plain-ascii"),
                dirhash(v + 3, &seed, b"plain-ascii")
            );
            assert_ne!(
                dirhash(v, &seed, b"caf\xc3\xa9"),
                dirhash(v + 3, &seed, b"caf\xc3\xa9")
            );
        }
    }

    #[test]
    fn a_zero_seed_is_the_default_seed() {
        for v in 0..6 {
            assert_eq!(
                dirhash(v, &[0; 4], b"name"),
                dirhash(v, &DEFAULT_SEED, b"name")
            );
        }
    }

    #[test]
    fn siphash_and_unknown_versions_are_refused() {
        assert_eq!(dirhash(version::SIPHASH, &[0; 4], b"x"), None);
        assert_eq!(dirhash(200, &[0; 4], b"x"), None);
    }

    #[test]
    fn unsigned_flag_shifts_the_classic_versions_only() {
        assert_eq!(effective_version(1, SbFlags::UNSIGNED_HASH), 4);
        assert_eq!(effective_version(1, SbFlags::SIGNED_HASH), 1);
        assert_eq!(effective_version(0, SbFlags::empty()), 0);
        assert_eq!(effective_version(6, SbFlags::UNSIGNED_HASH), 6);
    }

    #[test]
    fn packing_pads_with_the_remaining_length() {
        // 5 bytes into 4 words: "abcd", "e" + pad, then pad words.
        let w = pack(b"abcde", 4, true);
        let pad = 0x0505_0505;
        assert_eq!(w[0], 0x6162_6364);
        assert_eq!(w[1], (pad << 8) + 0x65);
        assert_eq!(&w[2..4], &[pad, pad]);
    }
}
