use serde::{Deserialize, Serialize};

use super::{Record, TreeCounts};
use crate::json::Bytes;

/// What `work-seed --json` prints for a built seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkSeed {
    /// The seed image built.
    pub path: Bytes,
    /// The rootfs image it was built from (with `--from-tar`, the tar stream; `-` for
    /// standard input).
    pub rootfs: Bytes,
    /// How the seed was written: `image` (from the rootfs image's directory, nothing
    /// staged), `staged` (through a tree extracted on the host) or `tar` (from a stream).
    pub route: String,
    /// Whether the rootfs had no `/root`, so the seed is empty.
    pub missing: bool,
    /// What the seed holds: the rootfs's `/root` as `ext4-ingest` wrote it.
    #[serde(flatten)]
    pub counts: TreeCounts,
    /// Space the source's files take (`seed-size`'s `allocated_bytes`: blocks in the
    /// rootfs image, on the host for a staged tree, data for a stream), each inode once.
    pub allocated_bytes: u64,
    /// The seed's length in bytes.
    pub size_bytes: u64,
    /// The seed's inode count (`mkfs.ext4 -N`).
    pub inodes: u64,
    /// e2fsck's verdict on the seed (`clean (N/M files)`).
    pub e2fsck: String,
    /// Wall-clock time of the whole build.
    pub seconds: f64,
    /// Wall-clock time of each step.
    pub stage_seconds: StageSeconds,
}

/// Seconds each step of the build took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    pub rdump: f64,
    pub seed_size: f64,
    pub mkfs: f64,
    pub ingest: f64,
    /// The end-to-end comparison of the seed with the rootfs (`work-seed --check`); 0
    /// where there is no image to compare with (a tar stream).
    pub check: f64,
    pub e2fsck: f64,
}

impl Record for WorkSeed {
    const FORMAT: &'static str = "work-seed";
    const VERSION: u32 = 1;
}
