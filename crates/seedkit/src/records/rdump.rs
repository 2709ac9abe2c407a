//! What `ext4-rdump --json` prints: one summary record of an extraction.

use serde::{Deserialize, Serialize};

use super::{Record, TreeCounts};
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
    /// What was extracted or recorded (entries recorded only included; failures not).
    #[serde(flatten)]
    pub counts: TreeCounts,
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
    /// The first failures, each with the entry's path and the reason: at most
    /// `seedkit::diag::MAX_KEPT` (100), holding at most `MAX_KEPT_BYTES` (64 KiB) of paths
    /// and messages (a failure that does not fit is counted, not kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RdumpError>,
}

impl Record for RdumpSummary {
    const FORMAT: &'static str = "ext4-rdump";
    const VERSION: u32 = 1;
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
            counts: TreeCounts {
                files: 1,
                directories: 2,
                bytes: 5,
                ..TreeCounts::default()
            },
            recorded_only: 0,
            missing: false,
            needs_recovery: false,
            failures: 1,
            errors: vec![RdumpError {
                path: Bytes(b"x\xff".to_vec()),
                message: "duplicate name in the directory; skipped".into(),
            }],
        };
        let text = crate::records::to_string(&s);
        assert!(text.starts_with(
            r#"{"format":"ext4-rdump","version":1,"path":"/tmp/ext4-rdump.x/tree","manifest":"#
        ));
        assert_eq!(
            crate::records::parse::<RdumpSummary>(text.as_bytes()).unwrap(),
            s
        );
        let path = crate::input::parse(text.as_bytes()).unwrap();
        assert_eq!(path, std::path::PathBuf::from("/tmp/ext4-rdump.x/tree"));
    }
}
