//! Images crafted with debugfs the way hostile ones are: names with `/` and `..`, duplicate
//! names (a symlink, then a node of the same name), a hard-linked directory making a cycle.
//! Each bad entry is reported and skipped (exit 1) and nothing is written outside the tree.

use crate::common;

use std::ffi::OsStr;
use std::fs;

use testkit::{code, mkfs_from_tree, stderr, TempDir};

#[test]
fn bad_names_duplicates_and_cycles_are_reported_and_skipped() {
    if !testkit::need(
        "bad_names_duplicates_and_cycles_are_reported_and_skipped",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("d/sub")).unwrap();
    fs::write(tree.join("d/f"), b"data").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    // debugfs mknod uses its argument verbatim as one name (e2fsprogs-notes 0.2).
    let script = "\
mknod ../../../../escaped p
mknod a/b p
symlink evil /etc/passwd
mknod evil p
mknod dup p
mknod dup p
ln /d /d/sub/loop
";
    testkit::debugfs_script(&image, script);
    let work = t.join("work");
    fs::create_dir(&work).unwrap();
    let dest = work.join("out");
    let out = common::rdump(&[
        image.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("-o"),
        dest.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    for needle in [
        "'../../../../escaped': invalid name (contains '/')",
        "'a/b': invalid name",
        "'evil': duplicate name",
        "'dup': duplicate name",
        "'d/sub/loop': directory inode",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert!(
        err.lines()
            .all(|l| l.starts_with("ext4-rdump: extracting '")),
        "{err}"
    );
    let summary: seedkit::records::RdumpSummary = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(summary.failures, 5);
    assert_eq!(summary.errors.len(), 5);
    // The first `evil` (the symlink) is staged and not followed; the fifo is skipped.
    assert_eq!(
        fs::read_link(dest.join("evil")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    assert!(dest
        .join("dup")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_fifo_like());
    let mut outside: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside.sort();
    assert_eq!(outside, ["out", "out.manifest.jsonl"]);
    let mut top: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["img", "img.debugfs-script", "src", "work"]);
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"data");
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

/// Copy the 60 bytes of `i_block` (the block map) and `i_size` of `from` into `to`.
fn share_blocks(image: &std::path::Path, bytes: &mut [u8], from: &str, to: &str) {
    let at = |path: &str| {
        let (block, offset) = testkit::inode_location(image, path);
        (block * 4096 + offset) as usize
    };
    let (from, to) = (at(from), at(to));
    let map: Vec<u8> = bytes[from + 0x28..from + 0x64].to_vec();
    bytes[to + 0x28..to + 0x64].copy_from_slice(&map);
    let size: Vec<u8> = bytes[from + 4..from + 8].to_vec();
    bytes[to + 4..to + 8].copy_from_slice(&size);
}

#[test]
fn entries_sharing_data_blocks_are_extracted_once() {
    if !testkit::need(
        "entries_sharing_data_blocks_are_extracted_once",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    for d in ["d1", "d2"] {
        fs::create_dir_all(tree.join(d)).unwrap();
    }
    fs::write(tree.join("d1/f"), vec![b'x'; 20000]).unwrap();
    for name in ["a", "b", "c"] {
        fs::write(tree.join(name), vec![b'y'; 20000]).unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"],
    );
    // A hostile image makes many inodes (or one directory per level) name the same blocks,
    // so that a few real blocks are written out or held in memory again and again: over a
    // sparse image of some GiB, that fills the disk or the memory.
    let mut bytes = fs::read(&image).unwrap();
    share_blocks(&image, &mut bytes, "/a", "/b");
    share_blocks(&image, &mut bytes, "/a", "/c");
    share_blocks(&image, &mut bytes, "/d1", "/d2");
    fs::write(&image, bytes).unwrap();
    let dest = t.join("out");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    let staged = |p: &str| dest.join(p).exists();
    // Exactly one of each group of sharers is extracted (directory order decides which).
    assert_eq!(
        [staged("a"), staged("b"), staged("c")]
            .iter()
            .filter(|&&s| s)
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        u32::from(staged("d1/f")) + u32::from(staged("d2/f")),
        1,
        "{err}"
    );
    assert_eq!(err.matches("data blocks used twice").count(), 3, "{err}");
}

#[test]
fn files_sharing_blocks_under_the_shared_blocks_feature_are_all_extracted() {
    if !testkit::need(
        "files_sharing_blocks_under_the_shared_blocks_feature_are_all_extracted",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(&tree).unwrap();
    for name in ["a", "b"] {
        fs::write(tree.join(name), vec![b'y'; 20000]).unwrap();
    }
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        Some(&tree),
        &["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"],
    );
    // Deduplicated images (Android's e2fsdroid -s) share file blocks and say so.
    let mut bytes = fs::read(&image).unwrap();
    share_blocks(&image, &mut bytes, "/a", "/b");
    fs::write(&image, bytes).unwrap();
    testkit::run(
        testkit::tool("debugfs")
            .args(["-w", "-R", "feature shared_blocks"])
            .arg(&image),
    );
    let dest = t.join("out");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::read(dest.join("b")).unwrap(), vec![b'y'; 20000]);
}

#[test]
fn hard_links_deeper_than_path_max_stay_hard_links() {
    if !testkit::need(
        "hard_links_deeper_than_path_max_stay_hard_links",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", None, &["-t", "ext4", "-b", "4096"]);
    // 20 levels of 250-byte names: the first name's path is longer than PATH_MAX. (The
    // extraction used to keep that whole path per linked inode, too: with 400 levels and
    // many inodes claiming two links, gigabytes.)
    let mut script = String::new();
    let mut deep = String::new();
    for i in 0..20 {
        let name = format!("{i:02}{}", "d".repeat(248));
        script.push_str("mkdir ");
        script.push_str(&name);
        script.push_str("\ncd ");
        script.push_str(&name);
        script.push('\n');
        deep.push_str(&name);
        deep.push('/');
    }
    script.push_str("write /dev/null first\nln first second\nsif first links_count 2\n");
    testkit::debugfs_script(&image, &script);
    let dest = t.join("out");
    let out = common::rdump(&[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    let first = m.get(format!("{deep}first").as_bytes()).unwrap();
    let second = m.get(format!("{deep}second").as_bytes()).unwrap();
    assert!(first.staged && second.staged);
    assert_eq!(first.link_group, second.link_group);
}

/// Finding 4 of issue 15: diagnostics were unbounded. 2,000 names past a file's link
/// count at the end of 200 directories of 255-byte names made a warning of 51 KB each on
/// stderr (100 MB) and a `--json` record keeping 1,000 of them (51 MB). Now the paths are
/// shortened to their ends, the warnings fold into a count after ten, and the record keeps
/// errors within 64 KiB: every failure is still counted.
#[test]
fn many_failures_with_long_paths_give_bounded_diagnostics() {
    let t = TempDir::new();
    let image = t.join("image.ext4");
    testkit::names_past_the_link_count(&image, 200, 2000);
    let out = testkit::run_within(
        std::process::Command::new(common::BIN)
            .arg("--json")
            .arg("-o")
            .arg(t.join("out"))
            .arg(&image)
            .arg("/root"),
        std::time::Duration::from_secs(300),
    );
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        out.stderr.len() < 80 << 10,
        "{} bytes on stderr",
        out.stderr.len()
    );
    assert!(
        out.stdout.len() < 80 << 10,
        "a record of {} bytes",
        out.stdout.len()
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 11, "{err}");
    assert!(lines[0].contains("'...'") && lines[0].contains("/n0000': inode "));
    assert!(lines[0].ends_with(" reached by more names than its link count (1); skipped"));
    assert_eq!(
        lines[10],
        "ext4-rdump: ... and 1,990 more like this: extracting '...': inode N reached by more \
         names than its link count (N); skipped"
    );
    let record: seedkit::records::RdumpSummary = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record.failures, 2000);
}
