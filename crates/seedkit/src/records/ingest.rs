use serde::{Deserialize, Serialize};

use crate::json::Bytes;

/// What `ext4-ingest --json` prints after writing a tree into an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingest {
    /// The image written.
    pub image: Bytes,
    /// The tree that was written (this field lets the record feed the next tool's stdin).
    pub path: Bytes,
    /// Regular files, counted once per inode.
    pub files: u64,
    /// Directories, the tree's root excluded.
    pub directories: u64,
    pub symlinks: u64,
    pub fifos: u64,
    pub sockets: u64,
    pub char_devices: u64,
    pub block_devices: u64,
    /// Names beyond the first of a hard-linked inode.
    pub extra_hard_links: u64,
    /// Sum of the apparent sizes of the regular files, each inode once.
    pub bytes: u64,
    /// Inodes the run allocated in the image.
    pub inodes_used: u64,
    /// Directories written with a hash index (those of more than one block).
    pub indexed_directories: u64,
    /// Entries reported and not written (invalid names, ...).
    pub rejected: u64,
    /// Whether the image was read back and compared with the tree.
    pub verified: bool,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
}
