//! CRC32C (Castagnoli), as ext4's metadata_csum uses it: `crc32c_le(seed, data)` is the raw
//! reflected update with no final inversion (e2fsprogs `ext2fs_crc32c_le`).

const POLY: u32 = 0x82f6_3b78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continue a CRC32C over `data` from `crc` (no pre- or post-inversion).
pub fn crc32c_le(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
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
    }

    #[test]
    fn updates_chain() {
        let whole = crc32c_le(!0, b"hello world");
        let split = crc32c_le(crc32c_le(!0, b"hello "), b"world");
        assert_eq!(whole, split);
    }
}
