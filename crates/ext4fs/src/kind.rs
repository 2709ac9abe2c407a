//! The kind of a file, one type for the whole workspace: what an inode's mode says, what a
//! directory entry's type byte says, what `stat` says on the host, and what the JSON
//! records call it.

use crate::format::S_IFMT;

/// What a file is: the seven kinds of `S_IFMT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl EntryKind {
    /// Every kind, in the order of the records' counts.
    pub const ALL: [EntryKind; 7] = [
        EntryKind::File,
        EntryKind::Directory,
        EntryKind::Symlink,
        EntryKind::Fifo,
        EntryKind::CharDevice,
        EntryKind::BlockDevice,
        EntryKind::Socket,
    ];

    /// The `S_IFMT` bits of this kind (as in `st_mode` and `i_mode`).
    pub fn type_bits(self) -> u32 {
        match self {
            EntryKind::Fifo => 0o010_000,
            EntryKind::CharDevice => 0o020_000,
            EntryKind::Directory => 0o040_000,
            EntryKind::BlockDevice => 0o060_000,
            EntryKind::File => 0o100_000,
            EntryKind::Symlink => 0o120_000,
            EntryKind::Socket => 0o140_000,
        }
    }

    /// The kind of a full `st_mode` or `i_mode`, if it is one of the seven.
    pub fn from_mode(mode: u32) -> Option<EntryKind> {
        let bits = mode & u32::from(S_IFMT);
        EntryKind::ALL.into_iter().find(|k| k.type_bits() == bits)
    }

    /// The type byte of a directory entry (`EXT2_FT_*`) with the `filetype` feature.
    pub fn dirent_code(self) -> u8 {
        match self {
            EntryKind::File => 1,
            EntryKind::Directory => 2,
            EntryKind::CharDevice => 3,
            EntryKind::BlockDevice => 4,
            EntryKind::Fifo => 5,
            EntryKind::Socket => 6,
            EntryKind::Symlink => 7,
        }
    }

    /// The kind a directory entry's type byte names; `None` for 0 (unknown, as written
    /// without `filetype`) and for codes no version defines.
    pub fn from_dirent_code(code: u8) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.dirent_code() == code)
    }

    /// The name the JSON records give this kind (`"file"`, `"char_device"`, ...).
    pub const fn record_name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice => "char_device",
            EntryKind::BlockDevice => "block_device",
            EntryKind::Socket => "socket",
        }
    }

    /// The kind a record names.
    pub fn from_record_name(name: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.record_name() == name)
    }
}

/// With the `serde` feature the records' spelling, [`EntryKind::record_name`], is the
/// serialised form; an unknown name is refused as serde's derive refuses an unknown variant.
#[cfg(feature = "serde")]
mod serde_impl {
    use super::EntryKind;
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    /// Every name, for the message that refuses an unknown one.
    const NAMES: [&str; 7] = {
        let mut names = [""; 7];
        let mut i = 0;
        while i < names.len() {
            names[i] = EntryKind::ALL[i].record_name();
            i += 1;
        }
        names
    };

    impl Serialize for EntryKind {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.record_name())
        }
    }

    struct KindVisitor;

    impl Visitor<'_> for KindVisitor {
        type Value = EntryKind;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("variant identifier")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<EntryKind, E> {
            EntryKind::from_record_name(v).ok_or_else(|| E::unknown_variant(v, &NAMES))
        }
    }

    impl<'de> Deserialize<'de> for EntryKind {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EntryKind, D::Error> {
            d.deserialize_str(KindVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_dirent_codes_round_trip() {
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::from_mode(k.type_bits() | 0o755), Some(k));
            assert_eq!(EntryKind::from_dirent_code(k.dirent_code()), Some(k));
            assert_eq!(EntryKind::from_record_name(k.record_name()), Some(k));
        }
        assert_eq!(EntryKind::from_mode(0o170_000), None);
        assert_eq!(EntryKind::from_mode(0), None);
        assert_eq!(EntryKind::from_dirent_code(0), None);
        assert_eq!(EntryKind::from_dirent_code(8), None);
    }
}
