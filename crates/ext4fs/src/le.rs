//! Little-endian field access that never panics: a field that does not fit in the slice
//! reads as zero and is not written. Callers check lengths first; this is the last line of
//! defence.

pub fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub fn u16_at(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.saturating_add(4)) {
        Some(&[b0, b1, b2, b3]) => u32::from_le_bytes([b0, b1, b2, b3]),
        _ => 0,
    }
}

pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..off.saturating_add(2)) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off.saturating_add(4)) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// A 48-bit value split into a 32-bit low and a 16-bit high field.
pub fn u48_at(b: &[u8], lo: usize, hi: usize) -> u64 {
    u64::from(u32_at(b, lo)) | u64::from(u16_at(b, hi)) << 32
}

pub fn put_u48(b: &mut [u8], lo: usize, hi: usize, v: u64) {
    put_u32(b, lo, v as u32);
    put_u16(b, hi, (v >> 32) as u16);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_are_zero() {
        let b = [1u8, 2, 3];
        assert_eq!(u8_at(&b, 2), 3);
        assert_eq!(u16_at(&b, 1), 0x0302);
        assert_eq!(u16_at(&b, 2), 0);
        assert_eq!(u32_at(&b, 0), 0);
        assert_eq!(u32_at(&b, usize::MAX), 0);
    }

    #[test]
    fn writes_that_do_not_fit_are_dropped() {
        let mut b = [0u8; 6];
        put_u32(&mut b, 4, 0x0102_0304);
        assert_eq!(b, [0; 6]);
        put_u48(&mut b, 0, 4, 0x0605_0403_0201);
        assert_eq!(b, [1, 2, 3, 4, 5, 6]);
        assert_eq!(u48_at(&b, 0, 4), 0x0605_0403_0201);
        put_u16(&mut b, usize::MAX, 1);
    }
}
