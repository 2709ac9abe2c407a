//! The two CRCs of ext4's metadata checksums. CRC32C (Castagnoli) comes from the `crc32c`
//! crate, which uses the CPU's crc32 instructions where there are some; CRC16 (only for
//! group descriptors without metadata_csum, 32 bytes each) is computed here.

/// Continue a CRC32C over `data` from `crc`, as ext4's metadata_csum uses it: the raw
/// reflected update with no pre- or post-inversion (e2fsprogs `ext2fs_crc32c_le`). The
/// crate's `crc32c_append` inverts on the way in and out, so both are undone here.
pub fn crc32c_le(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// CRC16 (ANSI, reflected polynomial 0xa001) as the `gdt_csum` (uninit_bg) feature uses it
/// for group descriptors without metadata_csum (e2fsprogs `ext2fs_crc16`): no inversions.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xa001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // CRC-16/ARC of "123456789".
        assert_eq!(crc16(0, b"123456789"), 0xbb3d);
    }

    #[test]
    fn standard_check_value() {
        // The CRC-32C check value of "123456789" with the usual inversions.
        assert_eq!(!crc32c_le(!0, b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_le(0, b""), 0);
        assert_eq!(crc32c_le(0x1234_5678, b""), 0x1234_5678);
    }

    /// The raw update, bit by bit: what ext4 defines and the crate must agree with.
    fn bitwise(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn agrees_with_the_definition_for_any_seed_and_length() {
        let data: Vec<u8> = (0..4099u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for seed in [0, !0, 0x1234_5678, 0xdead_beef] {
            for len in [0, 1, 7, 8, 63, 64, 1024, 4096, 4099] {
                assert_eq!(
                    crc32c_le(seed, &data[..len]),
                    bitwise(seed, &data[..len]),
                    "seed {seed:#x}, {len} bytes"
                );
            }
        }
    }

    #[test]
    fn updates_chain() {
        let whole = crc32c_le(!0, b"hello world");
        let split = crc32c_le(crc32c_le(!0, b"hello "), b"world");
        assert_eq!(whole, split);
    }
}
