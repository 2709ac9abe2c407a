use serde::{Deserialize, Serialize};

use crate::json::Bytes;

/// What `seed-size --json` prints for a measured tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedSize {
    /// The tree that was measured.
    pub path: Bytes,
    /// Regular files, counted once per inode.
    pub files: u64,
    /// Directories, the tree's root included.
    pub directories: u64,
    pub symlinks: u64,
    /// Fifos, sockets, character and block devices.
    pub specials: u64,
    /// Names beyond the first of a hard-linked inode.
    pub extra_hard_links: u64,
    /// Sum of the apparent sizes of the regular files, each inode once.
    pub apparent_bytes: u64,
    /// Space the tree's entries occupy on the host (st_blocks x 512), each inode once.
    pub allocated_bytes: u64,
    /// The image size in bytes, by the established rule.
    pub size_bytes: u64,
    /// The inode count to give `mkfs.ext4 -N`, headroom included.
    pub inodes: u64,
}
