//! Owners, xattrs on the host, a journal needing recovery, and a corrupt inode.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;

use testkit::{code, mkfs_from_tree, stderr, TempDir};

fn small_image(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("src");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), b"data").unwrap();
    testkit::set_xattr(&tree.join("d/f"), "user.k", b"v\xff");
    if testkit::is_root() {
        nix::unistd::chown(&tree.join("d/f"), Some(1234.into()), Some(5678.into())).unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    image
}

#[test]
fn owners_applied_with_same_owner_and_recorded_always() {
    if !testkit::have("mke2fs") || !testkit::is_root() {
        testkit::skip(
            "owners_applied_with_same_owner_and_recorded_always",
            "needs root and mke2fs",
        );
        return;
    }
    let t = TempDir::new();
    let image = small_image(&t);
    let plain = t.join("plain");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), plain.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::metadata(plain.join("d/f")).unwrap().uid(), 0);
    let m = common::manifest(&t.join("plain.manifest.jsonl"));
    assert_eq!(
        (m[&b"d/f".to_vec()].uid, m[&b"d/f".to_vec()].gid),
        (1234, 5678)
    );
    let owned = t.join("owned");
    let out = common::rdump(&[
        image.as_os_str(),
        OsStr::new("--same-owner"),
        OsStr::new("-o"),
        owned.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let meta = fs::metadata(owned.join("d/f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
}

#[test]
fn user_xattrs_are_applied_and_recorded() {
    if !testkit::need("user_xattrs_are_applied_and_recorded", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    if !testkit::set_xattr(t.path(), "user.probe", b"") {
        testkit::skip(
            "user_xattrs_are_applied_and_recorded",
            "the host refuses user xattrs",
        );
        return;
    }
    let image = small_image(&t);
    let dest = t.join("out");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        testkit::get_xattr(&dest.join("d/f"), "user.k").as_deref(),
        Some(&b"v\xff"[..])
    );
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    let x = &m[&b"d/f".to_vec()].xattrs;
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].name.0.as_slice(), x[0].value.0.as_slice()),
        (&b"user.k"[..], &b"v\xff"[..])
    );
    // Non-UTF-8 values follow the one JSON rule.
    let text = fs::read_to_string(t.join("out.manifest.jsonl")).unwrap();
    assert!(text.contains(r#""value":{"bytes":"dv8="}"#), "{text}");
}

#[test]
fn a_journal_needing_recovery_is_reported_and_read_as_is() {
    if !testkit::need(
        "a_journal_needing_recovery_is_reported_and_read_as_is",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = small_image(&t);
    testkit::run(
        testkit::tool("debugfs")
            .arg("-w")
            .arg("-R")
            .arg("feature needs_recovery")
            .arg(&image),
    );
    let dest = t.join("out");
    let out = common::rdump(&[
        image.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("-o"),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the journal needs recovery"),
        "{}",
        stderr(&out)
    );
    let s: seedkit::records::RdumpSummary = seedkit::records::parse(&out.stdout).unwrap();
    assert!(s.needs_recovery);
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"data");
}

#[test]
fn a_corrupt_inode_is_reported_with_its_number_and_skipped() {
    if !testkit::need(
        "a_corrupt_inode_is_reported_with_its_number_and_skipped",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = small_image(&t);
    let (block, offset) = testkit::inode_location(&image, "/d/f");
    let mut bytes = fs::read(&image).unwrap();
    bytes[(block * 4096 + offset + 0x10) as usize] ^= 0x40;
    fs::write(&image, bytes).unwrap();
    let dest = t.join("out");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.starts_with("ext4-rdump: extracting 'd/f': checksum mismatch in inode "),
        "{err}"
    );
    assert!(dest.join("d").is_dir() && !dest.join("d/f").exists());
}
