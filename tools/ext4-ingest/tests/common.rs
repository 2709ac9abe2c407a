//! Helpers shared by the ext4-ingest test modules: images, manifests.

use std::fs;
use std::path::{Path, PathBuf};

use seedkit::json::Bytes;
use seedkit::records::manifest::{manifest_path, MANIFEST_FORMAT, MANIFEST_VERSION};
use seedkit::records::{EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Timestamp};
use testkit::TempDir;

/// An empty ext4 image `seed.img` in `dir`, made with `extra` mkfs options.
pub fn image(dir: &TempDir, size: &str, extra: &[&str]) -> PathBuf {
    image_named(dir, "seed.img", size, extra)
}

/// An empty ext4 image `name` in `dir`, made with `extra` mkfs options.
pub fn image_named(dir: &TempDir, name: &str, size: &str, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    let mut args = vec!["-t", "ext4"];
    args.extend_from_slice(extra);
    testkit::mkfs_from_tree(&img, size, None, &args);
    img
}

/// A manifest entry of `path` owned by root, with fixed times (nanoseconds included).
pub fn entry(path: impl AsRef<[u8]>, kind: EntryKind, mode: u32, staged: bool) -> ManifestEntry {
    ManifestEntry {
        path: Bytes(path.as_ref().to_vec()),
        kind,
        mode,
        uid: 0,
        gid: 0,
        atime: Timestamp { sec: 10, nsec: 1 },
        mtime: Timestamp { sec: 20, nsec: 2 },
        ctime: Timestamp { sec: 30, nsec: 3 },
        crtime: Some(Timestamp { sec: 40, nsec: 4 }),
        size: 0,
        rdev: None,
        target: None,
        link_group: None,
        xattrs: Vec::new(),
        staged,
    }
}

/// Write `entries` as the manifest beside `tree`, after a header.
pub fn write_manifest(tree: &Path, entries: &[ManifestEntry]) {
    let mut text = serde_json::to_string(&ManifestLine::Header(ManifestHeader {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        image: Bytes(b"src.img".to_vec()),
        source: Bytes(b"/".to_vec()),
    }))
    .unwrap();
    text.push('\n');
    for e in entries {
        text.push_str(&serde_json::to_string(&ManifestLine::Entry(e.clone())).unwrap());
        text.push('\n');
    }
    fs::write(manifest_path(tree), text).unwrap();
}
