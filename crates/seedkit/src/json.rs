//! JSON output: one object per line, stable snake_case fields.
//!
//! # Byte strings (the non-UTF-8 rule)
//! Paths, names, symlink targets and xattr names and values are bytes. Every such field
//! follows one rule: when the bytes are valid UTF-8 the field is a JSON string; otherwise it
//! is an object `{"bytes": "<standard base64 of the raw bytes>"}`. Consumers accept both
//! forms. `jq -r .path` therefore works for every ordinary path, and nothing is lost for
//! the others. The base64 is canonical ([`crate::base64`]): padded, no set bits after the
//! last byte; a reader refuses any other spelling.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::base64;

/// Bytes that serialise by the rule above.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }
}

impl From<&Path> for Bytes {
    fn from(p: &Path) -> Self {
        Bytes(p.as_os_str().as_bytes().to_vec())
    }
}

impl From<PathBuf> for Bytes {
    fn from(p: PathBuf) -> Self {
        Bytes(p.into_os_string().into_vec())
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
}

impl From<Bytes> for PathBuf {
    fn from(b: Bytes) -> Self {
        PathBuf::from(OsString::from_vec(b.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(text) = std::str::from_utf8(&self.0) {
            s.serialize_str(text)
        } else {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("bytes", &base64::encode(&self.0))?;
            map.end()
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Raw { bytes: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(Bytes(t.into_bytes())),
            Repr::Raw { bytes } => base64::decode(&bytes)
                .map(Bytes)
                .ok_or_else(|| de::Error::custom("invalid base64 in \"bytes\"")),
        }
    }
}

/// Write one record as a line of JSON.
pub fn emit<W: Write + ?Sized, T: Serialize>(out: &mut W, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_a_string_and_other_bytes_are_base64() {
        assert_eq!(
            serde_json::to_string(&Bytes(b"a b".to_vec())).unwrap(),
            r#""a b""#
        );
        let raw = Bytes(b"x\xff".to_vec());
        let text = serde_json::to_string(&raw).unwrap();
        assert_eq!(text, r#"{"bytes":"eP8="}"#);
        assert_eq!(serde_json::from_str::<Bytes>(&text).unwrap(), raw);
        assert_eq!(
            serde_json::from_str::<Bytes>(r#""héllo""#).unwrap().0,
            "héllo".as_bytes()
        );
    }

    /// `eP9=` decodes to the same bytes as `eP8=` under a lax decoder; the rule allows one
    /// spelling only.
    #[test]
    fn a_non_canonical_byte_string_is_refused() {
        for text in [r#"{"bytes":"eP9="}"#, r#"{"bytes":"eP8"}"#] {
            let e = serde_json::from_str::<Bytes>(text).unwrap_err();
            assert!(e.to_string().contains("invalid base64"), "{text}: {e}");
        }
    }
}
