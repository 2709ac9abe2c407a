//! Helpers shared by the integration tests: run the binary, read the manifest, compare a
//! staged tree with the tree the image was made from.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use seedkit::records::manifest::{EntryKind, ManifestEntry, ManifestReader};

pub const BIN: &str = env!("CARGO_BIN_EXE_ext4-rdump");

pub fn rdump(args: &[&std::ffi::OsStr]) -> Output {
    testkit::run(Command::new(BIN).args(args))
}

/// The entries of a manifest by path; panics on a malformed manifest.
pub fn manifest(path: &Path) -> HashMap<Vec<u8>, ManifestEntry> {
    let mut out = HashMap::new();
    for e in ManifestReader::open(path).unwrap() {
        let e = e.unwrap();
        assert!(out.insert(e.path.0.clone(), e).is_none());
    }
    out
}

/// Compare the staged tree `dest` (and its manifest) with `source`, entry by entry: type,
/// 12 mode bits (manifest), host mode (mode plus u+rw / u+rwx), mtime seconds, content,
/// symlink targets, hard-link grouping and allocated blocks. Returns the number compared.
pub fn compare(source: &Path, dest: &Path, what: &str) -> usize {
    let entries = manifest(&seedkit::records::manifest::manifest_path(dest));
    let mut src_to_dest: HashMap<u64, u64> = HashMap::new();
    let mut n = 0;
    for entry in walkdir::WalkDir::new(source).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(source).unwrap();
        let key = rel.as_os_str().as_bytes().to_vec();
        let what = format!("{what}: {}", rel.display());
        let src = entry.path().symlink_metadata().unwrap();
        let m = entries
            .get(&key)
            .unwrap_or_else(|| panic!("{what}: not in the manifest"));
        assert_eq!(m.mode, src.mode() & 0o7777, "{what}: manifest mode");
        assert_eq!(m.mtime.sec, src.mtime(), "{what}: manifest mtime");
        assert_eq!(m.kind.type_bits(), src.mode() & 0o170_000, "{what}: kind");
        let staged = dest.join(rel);
        let got = staged.symlink_metadata();
        if !m.staged {
            assert!(matches!(
                m.kind,
                EntryKind::CharDevice | EntryKind::BlockDevice
            ));
            assert!(got.is_err(), "{what}: recorded only but present");
            n += 1;
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{what}: not staged: {e}"));
        assert_eq!(
            got.mode() & 0o170_000,
            src.mode() & 0o170_000,
            "{what}: host type"
        );
        assert_eq!(got.mtime(), src.mtime(), "{what}: host mtime");
        assert_eq!(
            got.mtime_nsec(),
            i64::from(m.mtime.nsec),
            "{what}: host mtime ns"
        );
        if src.nlink() == 1 {
            // (A hard-linked file's atime moves when its first name is read below.)
            assert_eq!(got.atime(), m.atime.sec, "{what}: host atime");
        }
        let host_mode = got.mode() & 0o7777;
        match m.kind {
            EntryKind::Directory => {
                assert_eq!(host_mode & !0o7000, m.mode & 0o777 | 0o700, "{what}");
            }
            EntryKind::File => {
                assert_eq!(
                    host_mode & !0o6000,
                    m.mode & 0o1777 | 0o600,
                    "{what}: host mode"
                );
                let a = fs::read(entry.path()).unwrap();
                let b = fs::read(&staged).unwrap();
                assert!(a == b, "{what}: content differs");
                assert_eq!(m.size, src.len(), "{what}: size");
                // Sparse stays sparse: never more than the source plus one block per extent.
                assert!(
                    got.blocks() <= src.blocks() + 64,
                    "{what}: {} blocks, source {}",
                    got.blocks(),
                    src.blocks()
                );
                if src.nlink() > 1 {
                    assert!(m.link_group.is_some(), "{what}: link group");
                    let prev = src_to_dest.insert(src.ino(), got.ino());
                    assert!(
                        prev.is_none_or(|p| p == got.ino()),
                        "{what}: hard link split"
                    );
                }
            }
            EntryKind::Symlink => {
                let a = fs::read_link(entry.path()).unwrap();
                let b = fs::read_link(&staged).unwrap();
                assert_eq!(a, b, "{what}: target");
                assert_eq!(m.target.as_ref().unwrap().0, a.as_os_str().as_bytes());
            }
            _ => {}
        }
        n += 1;
    }
    // Nothing more in the tree than in the source (lost+found aside).
    let staged_count = walkdir::WalkDir::new(dest)
        .min_depth(1)
        .into_iter()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .path()
                .starts_with(dest.join("lost+found"))
        })
        .count();
    let recorded_only = entries.values().filter(|e| !e.staged).count();
    assert_eq!(staged_count + recorded_only, n, "{what}: entry count");
    n
}

/// Hash-index every directory that needs it (`e2fsck -fyD`): mke2fs -d leaves all of them
/// linear.
pub fn index_directories(image: &Path) {
    let out = testkit::run(testkit::tool("e2fsck").arg("-fyD").arg(image));
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "e2fsck -fyD: {}",
        testkit::stdout(&out)
    );
}
