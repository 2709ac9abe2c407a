//! Little-endian field access that never panics: a field that does not fit in the slice
//! reads as zero. Callers check lengths first; this is the last line of defence.

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
}
