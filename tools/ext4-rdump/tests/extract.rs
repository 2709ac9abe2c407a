//! Extraction of images made by the real `mkfs.ext4 -d`, across the feature matrix,
//! compared entry by entry with the tree they were made from.

use crate::common;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{compare, manifest, rdump};
use seedkit::records::RdumpSummary;
use testkit::{code, debugfs, fill_sample_tree, mkfs_from_tree, stderr, TempDir};

fn sample(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fill_sample_tree(&tree, 400);
    testkit::make_device(&tree.join("d/null"), true, 0o666, (1, 3));
    tree
}

fn roundtrip(extra: &[&str], size: &str) {
    if !testkit::need(&format!("extract {extra:?}"), &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = sample(&t);
    let image = t.join("img");
    mkfs_from_tree(&image, size, Some(&tree), extra);
    common::index_directories(&image);
    assert!(
        debugfs(&image, "stat /many").contains("Flags: 0x"),
        "no /many"
    );
    let dest = t.join("out");
    let out = rdump(&[
        image.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("-o"),
        dest.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{extra:?}: {}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let summary: RdumpSummary = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(summary.path.as_path(), dest);
    assert_eq!(summary.failures, 0);
    assert_eq!(summary.counts.extra_hard_links, 1);
    let n = compare(&tree, &dest, &format!("{extra:?}"));
    assert!(n > 400);
    if testkit::is_root() {
        let m = manifest(&t.join("out.manifest.jsonl"));
        let dev = &m[&b"d/null".to_vec()];
        assert_eq!(dev.rdev.map(|r| (r.major, r.minor)), Some((1, 3)));
    }
}

testkit::mkfs_matrix!(roundtrip, "32M":
    ext4,
    ext4_1k,
    ext4_without_extents,
    ext4_without_metadata_csum,
    ext3,
    ext2_1k,
);

#[test]
fn ext4_inline_data() {
    // The sparse file's trailing hole is lost by mke2fs 1.47.0 itself with inline_data,
    // so this matrix entry compares an image without it.
    if !testkit::need("ext4_inline_data", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = sample(&t);
    fs::remove_file(tree.join("sparse")).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "32M", Some(&tree), testkit::mkfs::ext4_inline_data);
    let dest = t.join("out");
    let out = rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    compare(&tree, &dest, "inline_data");
}

/// A directory large enough for a two-level htree on 1 KiB blocks (root, interior nodes,
/// leaves), all with metadata_csum.
#[test]
fn large_directory_two_level_htree_is_complete() {
    if !testkit::need(
        "large_directory_two_level_htree_is_complete",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::in_memory();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    let many = tree.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..6000 {
        fs::write(many.join(format!("f{i:05}-{}", "x".repeat(i % 50))), b"").unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(&image, "32M", Some(&tree), &["-t", "ext4", "-b", "1024"]);
    common::index_directories(&image);
    assert!(
        debugfs(&image, "stat /many").contains("Flags: 0x81000"),
        "not indexed"
    );
    let htree = debugfs(&image, "htree /many");
    assert!(htree.contains("Indirect levels: 1"), "one level only");
    let dest = t.join("out");
    let out = rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(compare(&tree, &dest, "htree"), 6001);
}

/// A 1 KiB-block image whose free space is every other block, then a file written into it
/// with debugfs: over a thousand extents, so an extent tree of depth 2.
#[test]
fn fragmented_file_with_a_deep_extent_tree() {
    if !testkit::need(
        "fragmented_file_with_a_deep_extent_tree",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("fill")).unwrap();
    for i in 0..1600 {
        fs::write(tree.join(format!("fill/{i}")), [b'f'; 1024]).unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "6M",
        Some(&tree),
        &["-t", "ext4", "-b", "1024", "-N", "2048"],
    );
    let mut script = String::new();
    for i in (0..1600).step_by(2) {
        writeln!(script, "rm /fill/{i}").unwrap();
    }
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(t.join("big"), &big).unwrap();
    writeln!(script, "write {} big", t.join("big").display()).unwrap();
    testkit::debugfs_script(&image, &script);
    let ex = debugfs(&image, "ex /big");
    assert!(
        ex.lines().any(|l| l.trim_start().starts_with("2/ 2")),
        "depth < 2: {ex}"
    );
    let dest = t.join("out");
    let out = rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(fs::read(dest.join("big")).unwrap() == big);
}

#[test]
fn nanosecond_times_are_applied_and_recorded() {
    if !testkit::need(
        "nanosecond_times_are_applied_and_recorded",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = testkit::one_file_image(&t);
    let script = "sif /f mtime 1500000000\nsif /f mtime_extra 0x0ebc5c0c\nsif /f atime_extra 0x4\n";
    testkit::debugfs_script(&image, script);
    let dest = t.join("out");
    let out = rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m = fs::metadata(dest.join("f")).unwrap();
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        (1_500_000_000, 0x0ebc_5c0c >> 2)
    );
    assert_eq!(m.atime_nsec(), 1);
    let e = &manifest(&t.join("out.manifest.jsonl"))[&b"f".to_vec()];
    assert_eq!(e.mtime.nsec, 0x0ebc_5c0c >> 2);
}

#[test]
fn subdirectory_and_default_destination() {
    if !testkit::need("subdirectory_and_default_destination", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = sample(&t);
    let image = t.join("img");
    mkfs_from_tree(&image, "32M", Some(&tree), &["-t", "ext4"]);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out = testkit::run(
        std::process::Command::new(common::BIN)
            .env("TMPDIR", &tmp)
            .arg(&image)
            .arg("/d/sub"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    let staged = Path::new(printed.strip_suffix('\n').unwrap());
    assert!(staged.starts_with(&tmp) && staged.ends_with("tree"));
    assert!(fs::read(staged.join("big")).unwrap() == fs::read(tree.join("d/sub/big")).unwrap());
    assert!(Path::new(&format!("{}.manifest.jsonl", staged.display())).is_file());
}
