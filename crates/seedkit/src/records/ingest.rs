use serde::{Deserialize, Serialize};

use super::{Record, TreeCounts};
use crate::json::Bytes;

/// What `ext4-ingest --json` prints after writing a tree into an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingest {
    /// The image written.
    pub image: Bytes,
    /// The tree that was written (this field lets the record feed the next tool's stdin).
    pub path: Bytes,
    /// What was written: the tree's top directory (the image's root) included, the
    /// entries the manifest recorded but the host could not hold included, failures not.
    #[serde(flatten)]
    pub counts: TreeCounts,
    /// Inodes the run allocated in the image (the top directory is the image's root, which
    /// exists already; a reused `lost+found` is not allocated either).
    pub inodes_used: u64,
    /// Directories written with a hash index (those of more than one block).
    pub indexed_directories: u64,
    /// Entries reported and not written (invalid names, ...).
    pub failures: u64,
    /// The source lacked the directory asked for and `--missing-ok` wrote nothing.
    pub missing: bool,
    /// Whether the image was read back and compared with the tree.
    pub verified: bool,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
}

impl Record for Ingest {
    const FORMAT: &'static str = "ext4-ingest";
    const VERSION: u32 = 1;
}
