//! The JSON records the tools print and read, defined once: each record type is the result
//! type of its tool, so what a tool computes and what it prints cannot drift.
//!
//! # The contract
//! Every record is one JSON object on one line. Its first two fields name it: `format`, the
//! record's kind (`seed-size`, `ext4-rdump`, `ext4-ingest`, `clonecp`, `work-seed`,
//! `ext4-ls`, `ext4-ls-diff`; the manifest's header says `ext4-rdump-manifest`), and
//! `version`, an integer. New fields may appear in a record at any time without a new
//! version, so a reader ignores fields it does not know; renaming or removing a field, or
//! changing its meaning or type, raises the version, and a reader refuses a version newer
//! than the one it knows ([`parse`] does, with a message naming both). Fields are
//! snake_case; byte strings follow the rule in [`crate::json`]. `schemas/` in the repository
//! holds a JSON Schema of each record, which the tests check against these types and
//! against every tool's real output.
//!
//! # Glossary: one name, one meaning in every record
//! The counts of a tree ([`TreeCounts`]) appear in the `seed-size`, `ext4-rdump`,
//! `ext4-ingest` and `work-seed` records, with the same names and the same counting rules,
//! so the four agree on one tree:
//! - `files`: regular files, each inode once (further names of a hard-linked file are
//!   `extra_hard_links`, not files).
//! - `directories`: directories, the tree's top directory included (as `find TREE -type d`
//!   counts them).
//! - `symlinks`, `fifos`, `sockets`, `char_devices`, `block_devices`: entries of each type,
//!   each inode once.
//! - `extra_hard_links`: names beyond the first of an inode that has several (a file with
//!   three names counts one in `files` and two here).
//! - `bytes`: the sum of the apparent sizes (`st_size`) of the regular files, each inode
//!   once; a sparse file counts its full length. Holes and allocation are counted apart, as
//!   `allocated_bytes` (`seed-size`: the space the files take on the host).
//!
//! A count covers what the tool handled: the entries extracted or recorded (`ext4-rdump`),
//! measured (`seed-size`), or written (`ext4-ingest`). Entries a tool reported and left out
//! are not counted; they are its `failures`. Other shared names:
//! - `path`: what the stdin protocol ([`crate::input`]) passes on to the next tool: the tree
//!   a tree tool worked on, or the seed `work-seed` built.
//! - `image`: the ext4 image the tool read or wrote.
//! - `size_bytes`: the length in bytes of a file the tool made or sized (the seed image
//!   `seed-size` sizes and `work-seed` builds, the copy `clonecp` made).
//! - `failures`: entries reported on stderr and not (fully) reproduced; the exit status is 1
//!   when it is not 0.
//! - `missing`: the directory asked for was not in the image, and an empty tree stands for it.
//! - `seconds`: the wall-clock time of the whole run, a number.

pub mod clonecp;
pub mod ingest;
pub mod ls;
pub mod manifest;
pub mod rdump;
pub mod seed_size;
pub mod work_seed;

use std::io::{self, Write};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use clonecp::{Clonecp, CopyMethod};
pub use ingest::Ingest;
pub use ls::{Change, LsDiff, LsEntry};
pub use manifest::{
    EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Rdev, Timestamp, Xattr,
};
pub use rdump::{RdumpError, RdumpSummary};
pub use seed_size::SeedSize;
pub use work_seed::{StageSeconds, WorkSeed};

/// A record type: its `format` name and the `version` this toolkit writes and reads.
pub trait Record: Serialize + DeserializeOwned {
    const FORMAT: &'static str;
    const VERSION: u32;
}

/// The counts of a tree, shared by every record that describes one (see the glossary above).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeCounts {
    /// Regular files, each inode once.
    pub files: u64,
    /// Directories, the tree's top directory included.
    pub directories: u64,
    pub symlinks: u64,
    pub fifos: u64,
    pub sockets: u64,
    pub char_devices: u64,
    pub block_devices: u64,
    /// Names beyond the first of an inode that has several.
    pub extra_hard_links: u64,
    /// Sum of the apparent sizes of the regular files, each inode once.
    pub bytes: u64,
}

impl TreeCounts {
    /// Count one inode of type `kind` (its first name), and for a file its `size`.
    pub fn add(&mut self, kind: EntryKind, size: u64) {
        match kind {
            EntryKind::File => {
                self.files += 1;
                self.bytes = self.bytes.saturating_add(size);
            }
            EntryKind::Directory => self.directories += 1,
            EntryKind::Symlink => self.symlinks += 1,
            EntryKind::Fifo => self.fifos += 1,
            EntryKind::Socket => self.sockets += 1,
            EntryKind::CharDevice => self.char_devices += 1,
            EntryKind::BlockDevice => self.block_devices += 1,
        }
    }

    /// Fifos, sockets and devices together.
    pub fn specials(&self) -> u64 {
        self.fifos + self.sockets + self.char_devices + self.block_devices
    }

    /// Inodes the tree holds (its top directory included).
    pub fn inodes(&self) -> u64 {
        self.files + self.directories + self.symlinks + self.specials()
    }
}

/// How a record goes out: its format and version first, then its fields.
#[derive(Serialize)]
struct Stamped<'a, T> {
    format: &'static str,
    version: u32,
    #[serde(flatten)]
    record: &'a T,
}

/// The JSON text of a record, `format` and `version` included (no newline).
pub fn to_string<T: Record>(record: &T) -> String {
    let stamped = Stamped {
        format: T::FORMAT,
        version: T::VERSION,
        record,
    };
    // A record holds no map with non-string keys and no failing Serialize impl.
    serde_json::to_string(&stamped).unwrap_or_default()
}

/// Write a record as one line of JSON, `format` and `version` included.
pub fn emit<W: Write + ?Sized, T: Record>(out: &mut W, record: &T) -> io::Result<()> {
    let stamped = Stamped {
        format: T::FORMAT,
        version: T::VERSION,
        record,
    };
    crate::json::emit(out, &stamped)
}

#[derive(Deserialize)]
struct Head {
    format: Option<String>,
    version: Option<u64>,
}

/// Check a record's `format` and `version` against what this toolkit reads: the format must
/// be `format`, the version at most `known`.
pub fn check_version(found_format: &str, found: u64, format: &str, known: u32) -> Result<()> {
    if found_format != format {
        bail!("a {found_format:?} record where a {format:?} record was expected");
    }
    if found > u64::from(known) {
        bail!(
            "{format} record version {found} is newer than this toolkit reads (version {known} at most): upgrade the toolkit"
        );
    }
    if found == 0 {
        bail!("{format} record version 0 does not exist");
    }
    Ok(())
}

/// Read a record of type `T` from one line of JSON, refusing another format or a newer
/// version.
pub fn parse<T: Record>(line: &[u8]) -> Result<T> {
    let head: Head = serde_json::from_slice(line).context("not a JSON record")?;
    let (Some(format), Some(version)) = (head.format, head.version) else {
        bail!(
            "a JSON object without \"format\" and \"version\", not a {} record",
            T::FORMAT
        );
    };
    check_version(&format, version, T::FORMAT, T::VERSION)?;
    serde_json::from_slice(line).with_context(|| format!("reading a {} record", T::FORMAT))
}

/// The version this toolkit knows of each record format.
pub fn known_version(format: &str) -> Option<u32> {
    Some(match format {
        SeedSize::FORMAT => SeedSize::VERSION,
        RdumpSummary::FORMAT => RdumpSummary::VERSION,
        Ingest::FORMAT => Ingest::VERSION,
        Clonecp::FORMAT => Clonecp::VERSION,
        WorkSeed::FORMAT => WorkSeed::VERSION,
        LsEntry::FORMAT => LsEntry::VERSION,
        LsDiff::FORMAT => LsDiff::VERSION,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Bytes;

    fn sample() -> SeedSize {
        SeedSize {
            path: Bytes(b"/t".to_vec()),
            counts: TreeCounts {
                files: 2,
                directories: 1,
                bytes: 7,
                ..TreeCounts::default()
            },
            allocated_bytes: 8192,
            size_bytes: 512 << 20,
            inodes: 32768,
            missing: false,
        }
    }

    #[test]
    fn records_name_their_format_and_version_first() {
        let text = to_string(&sample());
        assert!(
            text.starts_with(r#"{"format":"seed-size","version":1,"path":"/t","files":2,"#),
            "{text}"
        );
        assert_eq!(parse::<SeedSize>(text.as_bytes()).unwrap(), sample());
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let text = to_string(&sample()).replace(r#""version":1"#, r#""version":2"#);
        let err = format!("{:#}", parse::<SeedSize>(text.as_bytes()).unwrap_err());
        assert_eq!(
            err,
            "seed-size record version 2 is newer than this toolkit reads (version 1 at most): upgrade the toolkit"
        );
    }

    #[test]
    fn another_format_or_none_is_refused() {
        let text = to_string(&sample()).replace("seed-size", "ext4-ingest");
        assert!(parse::<SeedSize>(text.as_bytes()).is_err());
        assert!(parse::<SeedSize>(br#"{"path":"/t"}"#).is_err());
    }

    #[test]
    fn counts_count_each_kind_once() {
        let mut c = TreeCounts::default();
        for k in [
            EntryKind::File,
            EntryKind::Directory,
            EntryKind::Symlink,
            EntryKind::Fifo,
            EntryKind::Socket,
            EntryKind::CharDevice,
            EntryKind::BlockDevice,
        ] {
            c.add(k, 10);
        }
        assert_eq!(c.inodes(), 7);
        assert_eq!(c.specials(), 4);
        assert_eq!(c.bytes, 10);
    }
}
