//! Hostile tar streams, written block by block: names that would leave the tree, hard links
//! to nothing, headers that lie, sparse maps past the size or overlapping, extension
//! headers past the bound, truncation, damage. Each bad member is refused on its own (exit
//! 1, the rest written) or the stream is refused (exit 2); never a panic, never a write
//! outside the image.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::tarstream::Raw;
use testkit::{code, e2fsck_clean, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

fn image(t: &TempDir, name: &str) -> PathBuf {
    crate::common::image_named(t, name, "32M", &["-b", "4096"])
}

/// Ingest `stream` (from a file) into a fresh image: exit code, stderr, the image.
fn ingest(t: &TempDir, name: &str, stream: &[u8]) -> (i32, String, PathBuf) {
    let archive = t.join(format!("{name}.tar"));
    fs::write(&archive, stream).unwrap();
    let img = image(t, &format!("{name}.img"));
    let out = testkit::run(
        Command::new(BIN)
            .arg("--verify")
            .arg(&img)
            .arg("--from-tar")
            .arg(&archive),
    );
    (code(&out), stderr(&out), img)
}

fn ls(img: &Path, dir: &str) -> String {
    testkit::debugfs(img, format!("ls -l {dir}"))
}

#[test]
fn names_that_leave_the_tree_are_refused_one_by_one() {
    let t = TempDir::new();
    let mut r = Raw::default();
    r.file("ok", b"fine").escaping_members();
    let stream = r.end();
    let (rc, err, img) = ingest(&t, "names", &stream);
    assert_eq!(rc, 1, "{err}");
    for needle in [
        "not written: '/etc/passwd': an absolute name (it would leave the tree)",
        "not written: '../up': a name holding '..' (it would leave the tree)",
        "'a/../../x': a name holding '..'",
        "'h-nowhere': a hard link to 'nowhere', which is no file",
        "'h-forward': a hard link to 'later'",
        "'h-self': a hard link to 'h-self'",
        "'h-dir': a hard link to 'd'",
        "'s/passwd': below 's', which is not a directory",
        "'ok': a second member of this name (the first is kept)",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert_eq!(err.lines().count(), 9, "{err}");
    e2fsck_clean(&img).unwrap();
    let root = ls(&img, "/");
    for name in ["ok", "later", "d", "s", "h-ok"] {
        assert!(root.contains(&format!(" {name}")), "{name} not in {root}");
    }
    assert_eq!(testkit::debugfs(&img, "cat ok"), "fine");
    let mut left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["names.img", "names.tar"]);
}

#[test]
fn members_with_lying_headers_are_refused_and_the_rest_written() {
    let t = TempDir::new();
    let big = vec![b'a'; (2 << 20) + 10];
    let mut r = Raw::default();
    r.pax(&[("path", &big)])
        .file("long-pax", b"x")
        .header(b"././@LongLink", b'L', big.len() as u64, b"")
        .data(&big)
        .file("long-name", b"x")
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"past-size"),
            ("GNU.sparse.realsize", b"100"),
        ])
        .header(b"GNUSparseFile.0/past-size", b'0', 512 + 10, b"")
        .data(&[b"1\n95\n10\n".as_slice(), &[0; 503], b"0123456789"].concat())
        .pax(&[
            ("GNU.sparse.size", b"100"),
            ("GNU.sparse.map", b"0,10,5,10"),
        ])
        .header(b"overlap", b'0', 20, b"")
        .data(&[b'o'; 20])
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"huge-map"),
            ("GNU.sparse.realsize", b"100"),
        ])
        .header(b"GNUSparseFile.0/huge-map", b'0', 512, b"")
        .data(b"99999999999999\n0\n")
        .pax(&[("mtime", b"yesterday")])
        .file("bad-time", b"x")
        .pax(&[("uid", b"99999999999")])
        .file("bad-uid", b"x")
        .header(b"weird", b'Z', 3, b"")
        .data(b"abc")
        .file("after", b"still written");
    // A pax record whose length runs past its header.
    r.header(b"PaxHeaders/y", b'x', 12, b"")
        .data(b"99 path=zz\n\n")
        .file("lying-record", b"x");
    let stream = r.end();
    let (rc, err, img) = ingest(&t, "lies", &stream);
    assert_eq!(rc, 1, "{err}");
    for needle in [
        "'long-pax': a pax header of ",
        "bytes, more than the 1048576 accepted",
        "a GNU long name of 2097162 bytes",
        "'past-size': a sparse map past the file's size of 100 bytes",
        "'overlap': a sparse map whose segments overlap",
        "'huge-map': a sparse map of 99999999999999 segments",
        "'bad-time': a pax mtime that is not a time",
        "'bad-uid': uid 99999999999 is past 32 bits",
        "'weird': a member of type 'Z'",
        "'lying-record': a pax record of 99 bytes where 12 are left",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    e2fsck_clean(&img).unwrap();
    assert_eq!(testkit::debugfs(&img, "cat after"), "still written");
}

#[test]
fn streams_that_cannot_be_followed_are_refused() {
    let t = TempDir::new();
    for (name, stream, needle) in testkit::tarstream::broken_streams() {
        let (rc, err, _) = ingest(&t, name, &stream);
        assert_eq!(rc, 2, "{name}: {err}");
        assert!(err.contains(needle), "{name}: {needle} not in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn sparse_files_past_what_ext4_holds_are_refused() {
    let t = TempDir::new();
    let mut r = Raw::default();
    r.pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"petabyte"),
        ("GNU.sparse.realsize", b"1125899906842624"),
    ])
    .header(b"GNUSparseFile.0/petabyte", b'0', 512 + 4, b"")
    .data(&[b"1\n1125899906842620\n4\n".as_slice(), &[0; 490], b"tail"].concat())
    .file("after", b"after");
    let stream = r.end();
    let (rc, err, img) = ingest(&t, "petabyte", &stream);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains(
            "'petabyte': a file of 1125899906842624 bytes, larger than this image's files can be"
        ),
        "{err}"
    );
    // Refused before anything was allocated for it.
    e2fsck_clean(&img).unwrap();
    assert_eq!(testkit::debugfs(&img, "cat after"), "after");
}

#[test]
fn many_entries_in_one_directory() {
    let t = TempDir::new();
    let mut r = Raw::default();
    r.header(b"wide/", b'5', 0, b"");
    for i in 0..30_000 {
        r.header(format!("wide/entry-{i:06}").as_bytes(), b'0', 0, b"");
    }
    let stream = r.end();
    let archive = t.join("wide.tar");
    fs::write(&archive, stream).unwrap();
    let img = t.join("wide.img");
    testkit::mkfs_from_tree(&img, "64M", None, &["-t", "ext4", "-N", "40000"]);
    let out = testkit::run(
        Command::new(BIN)
            .args([
                OsStr::new("--json"),
                img.as_os_str(),
                OsStr::new("--from-tar"),
            ])
            .arg(&archive),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let record: seedkit::records::Ingest = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(record.counts.files, 30_000);
    assert_eq!(record.indexed_directories, 1);
    e2fsck_clean(&img).unwrap();
}

#[test]
fn pax_headers_piled_before_one_member_are_bounded_together() {
    // Each header is under the bound; before the bound held them together, a stream of
    // headers and no member held them all in memory.
    let t = TempDir::new();
    let value = vec![b'v'; 600 << 10];
    let mut r = Raw::default();
    for i in 0..4 {
        r.pax(&[(&format!("comment.{i}"), &value)]);
    }
    r.file("piled", b"x").file("after", b"after");
    let stream = r.end();
    let (rc, err, img) = ingest(&t, "piled", &stream);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("'piled': pax headers of more than 1048576 bytes in all before one member"),
        "{err}"
    );
    e2fsck_clean(&img).unwrap();
    assert_eq!(testkit::debugfs(&img, "cat after"), "after");
}
