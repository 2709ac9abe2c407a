use serde::{Deserialize, Serialize};

use super::{Record, TreeCounts};
use crate::json::Bytes;

/// What `seed-size --json` prints for a measured tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSize {
    /// The tree that was measured.
    pub path: Bytes,
    /// What the tree holds, the entries its manifest records but the host could not hold
    /// included.
    #[serde(flatten)]
    pub counts: TreeCounts,
    /// Space the tree's entries occupy on the host (`st_blocks` x 512), each inode once.
    pub allocated_bytes: u64,
    /// The image size in bytes, by the established rule.
    pub size_bytes: u64,
    /// The inode count to give `mkfs.ext4 -N`, headroom included.
    pub inodes: u64,
    /// The source lacked the directory asked for, and `--missing-ok` measured an empty
    /// one.
    pub missing: bool,
}

impl Record for SeedSize {
    const FORMAT: &'static str = "seed-size";
    const VERSION: u32 = 1;
}
