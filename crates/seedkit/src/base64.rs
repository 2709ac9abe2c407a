//! The base64 of the byte-string rule (see [`crate::json`]): standard base64 (RFC 4648,
//! the `+/` alphabet) with padding, through the `base64` crate. Decoding is canonical:
//! only the one text that [`encode`] gives for some bytes is accepted, so that a byte
//! string has one spelling and two records that mean the same bytes compare equal as text.
//! Missing or extra padding, set bits after the last byte, white space and characters
//! outside the alphabet are refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The standard base64 of `data`, padded.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// The bytes `text` spells; `None` unless `text` is the canonical base64 of some bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..20 {
            let enc = encode(&data[..len]);
            assert_eq!(decode(&enc).as_deref(), Some(&data[..len]));
        }
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b""), "");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("Zm=8"), None);
        assert_eq!(decode("Z!8="), None);
        assert_eq!(decode("Zm8=Zm8="), None, "padding inside");
        assert_eq!(decode("Zm9v\nYmFy"), None, "white space");
        assert_eq!(decode("Zm9v-mFy"), None, "the URL-safe alphabet");
    }

    /// Each byte string has one spelling: the encoder's. A decoder that took the others
    /// would let two records name the same bytes with different text.
    #[test]
    fn refuses_non_canonical_spellings() {
        assert_eq!(decode("Zm8"), None, "missing padding");
        assert_eq!(decode("Zg"), None, "missing padding");
        assert_eq!(decode("Zm8=="), None, "extra padding");
        assert_eq!(decode("Zm9="), None, "trailing bits set (\"fo\" is Zm8=)");
        assert_eq!(decode("Zh=="), None, "trailing bits set (\"f\" is Zg==)");
        assert_eq!(decode("Zg==").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode("Zm8=").as_deref(), Some(&b"fo"[..]));
    }
}
