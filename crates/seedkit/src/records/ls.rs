//! What `ext4-ls --json` prints: one record per entry of an image, and with `--diff` one
//! record per difference between two directories.

use serde::{Deserialize, Serialize};

use crate::json::Bytes;
use crate::records::manifest::{EntryKind, Rdev, Timestamp};
use crate::records::Record;

/// One entry of an image, as `ext4-ls --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsEntry {
    /// Path relative to the listed directory; `.` is that directory itself.
    pub path: Bytes,
    pub kind: EntryKind,
    /// The 12 permission bits (`0o7777` at most).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The inode number in the image.
    pub ino: u32,
    /// Names the inode has (its link count).
    pub links: u32,
    /// Apparent size in bytes (files: content; symlinks: target length; directories: their
    /// blocks).
    pub size: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crtime: Option<Timestamp>,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// Device numbers of a character or block device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<Rdev>,
    /// Names of the extended attributes, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Bytes>,
    /// The content digest of a regular file (`--hash`), lower-case hex: the SHA-256 of its
    /// bytes taken in 4 KiB pieces, each maximal run of n all-zero pieces fed as one zero
    /// piece and n (8 bytes, big-endian). It is `sha256sum`'s for a file without an all-zero
    /// 4 KiB piece. (Version 1 had `sha256`, the plain SHA-256 with holes read as zeros.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// How an entry differs between the two sides of `ext4-ls --diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// In the first directory only.
    Missing,
    /// In the second directory only.
    Extra,
    /// In both, with different `fields`.
    Changed,
}

/// One difference found by `ext4-ls --diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsDiff {
    pub path: Bytes,
    pub change: Change,
    /// What differs, for `changed`: among `kind`, `mode`, `uid`, `gid`, `size`, `mtime`,
    /// `target`, `rdev`, `xattrs`, `content`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl Record for LsEntry {
    const FORMAT: &'static str = "ext4-ls";
    /// 2: `sha256` became `digest` (holes cost nothing to hash).
    const VERSION: u32 = 2;
}

impl Record for LsDiff {
    const FORMAT: &'static str = "ext4-ls-diff";
    const VERSION: u32 = 1;
}
