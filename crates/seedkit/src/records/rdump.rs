//! What `ext4-rdump --json` prints: one summary record of an extraction.

use serde::{Deserialize, Serialize};

use crate::json::Bytes;

/// The summary of one `ext4-rdump` run. `path` is the staged tree, so the record can be piped
/// into any tool that takes a tree on stdin (`ext4-rdump --json img | seed-size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdumpSummary {
    /// The staged tree.
    pub path: Bytes,
    /// Its manifest (`manifest_path(path)`).
    pub manifest: Bytes,
    /// The image read.
    pub image: Bytes,
    /// The directory of the image that was extracted.
    pub source: Bytes,
    /// Regular files, counted once per inode.
    pub files: u64,
    /// Directories, the tree's root included.
    pub directories: u64,
    pub symlinks: u64,
    pub fifos: u64,
    pub sockets: u64,
    pub char_devices: u64,
    pub block_devices: u64,
    /// Names beyond the first of a hard-linked inode (made as hard links).
    pub extra_hard_links: u64,
    /// Apparent bytes of the regular files, each inode once.
    pub bytes: u64,
    /// Entries recorded in the manifest only (`staged: false`), such as devices an
    /// unprivileged user cannot create.
    pub recorded_only: u64,
    /// Whether DIR was missing from the image and, as `--missing-ok` asked, an empty tree
    /// was made instead.
    #[serde(default)]
    pub missing: bool,
    /// Whether the image's journal needed recovery (it was read as it is).
    pub needs_recovery: bool,
    /// Entries that could not be reproduced or fully recorded; one per diagnostic line.
    pub failures: u64,
    /// The first failures (at most 1000), each with the entry's path and the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RdumpError>,
}

/// One entry that could not be reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdumpError {
    /// Path relative to the tree (`.` for its root).
    pub path: Bytes,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_feeds_the_stdin_protocol() {
        let s = RdumpSummary {
            path: Bytes(b"/tmp/ext4-rdump.x/tree".to_vec()),
            manifest: Bytes(b"/tmp/ext4-rdump.x/tree.manifest.jsonl".to_vec()),
            image: Bytes(b"/i.ext4".to_vec()),
            source: Bytes(b"/root".to_vec()),
            files: 1,
            directories: 2,
            symlinks: 0,
            fifos: 0,
            sockets: 0,
            char_devices: 0,
            block_devices: 0,
            extra_hard_links: 0,
            bytes: 5,
            recorded_only: 0,
            missing: false,
            needs_recovery: false,
            failures: 1,
            errors: vec![RdumpError {
                path: Bytes(b"x\xff".to_vec()),
                message: "duplicate name in the directory; skipped".into(),
            }],
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.starts_with(r#"{"path":"/tmp/ext4-rdump.x/tree","manifest":"#));
        assert_eq!(serde_json::from_str::<RdumpSummary>(&text).unwrap(), s);
        let path = crate::input::parse(text.as_bytes()).unwrap();
        assert_eq!(path, std::path::PathBuf::from("/tmp/ext4-rdump.x/tree"));
    }
}
