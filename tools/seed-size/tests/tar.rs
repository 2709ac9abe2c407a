//! `--from-tar`: a tar stream measures as the tree it was made of (and as that tree in an
//! image), whichever archiver wrote it, on stdin as from a file; streams that cannot be
//! followed are refused in one line, and hostile members are refused one by one, as
//! `ext4-ingest --from-tar` refuses them, within a small memory bound.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use seedkit::records::SeedSize;
use testkit::tarstream::{pax_tree, plain_tree, Raw};
use testkit::{code, run, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_seed-size");

fn record(out: &Output) -> SeedSize {
    assert_eq!(code(out), 0, "{}", stderr(out));
    seedkit::records::parse(&out.stdout).expect("one seed-size record")
}

fn from_tar(archive: &Path) -> Output {
    run(Command::new(BIN)
        .args(["--json", "--from-tar"])
        .arg(archive))
}

/// The figures a record gives (its path aside). The allocated bytes of a tar stream are its
/// files' data blocks, as in an image; a host file system may count an extent block too
/// (a file of many holes), so against a host tree they are at most the host's.
fn assert_same(a: &SeedSize, b: &SeedSize, what: &str) {
    assert_eq!(a.counts, b.counts, "{what}: counts");
    assert!(a.allocated_bytes <= b.allocated_bytes, "{what}: allocated");
    assert_eq!(a.size_bytes, b.size_bytes, "{what}: size");
    assert_eq!(a.inodes, b.inodes, "{what}: inodes");
}

/// Make `archive` of the tree `dir` with `cmd` (run inside it; `.` appended for tar).
fn make(cmd: &[&str], dir: &Path, archive: &Path) {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]).arg(archive);
    if cmd[0] != "python3" {
        c.arg(".");
    }
    let out = run(c.current_dir(dir));
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
}

const PYTHON: &str = "import sys, tarfile\n\
    fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT}[sys.argv[1]]\n\
    with tarfile.open(sys.argv[2], 'w', format=fmt) as t:\n    t.add('.', recursive=True)\n";

/// `rootfs/root` holding `fill`'s tree, and an image of `rootfs` (mkfs.ext4 -d).
fn tree_and_image(t: &TempDir, fill: impl Fn(&Path)) -> (PathBuf, PathBuf) {
    let rootfs = t.join("rootfs");
    let tree = rootfs.join("root");
    fs::create_dir_all(&tree).unwrap();
    fill(&tree);
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&rootfs), &["-t", "ext4", "-b", "4096"]);
    (tree, image)
}

#[test]
fn tar_streams_measure_as_their_tree_and_its_image() {
    let name = "tar_streams_measure_as_their_tree_and_its_image";
    if !testkit::need(name, &["mkfs.ext4", "tar", "bsdtar", "python3"]) {
        return;
    }
    let t = TempDir::new();
    let (tree, image) = tree_and_image(&t, |tree| plain_tree(tree, true));
    let host = record(&run(Command::new(BIN).arg("--json").arg(&tree)));
    assert_eq!(host.counts.extra_hard_links, 1);
    let from_image = record(&run(Command::new(BIN)
        .args(["--json", "--from-image"])
        .arg(&image)
        .arg("/root")));
    assert_eq!(from_image.counts, host.counts, "--from-image");
    assert_eq!(from_image.size_bytes, host.size_bytes, "--from-image");
    // Archivers that keep holes: every figure is the tree's.
    let sparse: [(&str, &[&str]); 5] = [
        (
            "gnu-0.0",
            &[
                "tar",
                "--format=posix",
                "--sparse",
                "--sparse-version=0.0",
                "-cf",
            ],
        ),
        (
            "gnu-0.1",
            &[
                "tar",
                "--format=posix",
                "--sparse",
                "--sparse-version=0.1",
                "-cf",
            ],
        ),
        (
            "gnu-1.0",
            &[
                "tar",
                "--format=posix",
                "--sparse",
                "--sparse-version=1.0",
                "-cf",
            ],
        ),
        ("gnu-old", &["tar", "--format=gnu", "--sparse", "-cf"]),
        ("bsdtar", &["bsdtar", "--format", "pax", "-cf"]),
    ];
    for (label, cmd) in sparse {
        let archive = t.join(format!("{label}.tar"));
        make(cmd, &tree, &archive);
        let r = record(&from_tar(&archive));
        assert_eq!(r.path.0, archive.as_os_str().as_encoded_bytes());
        assert_same(&r, &host, label);
        assert_eq!(r.allocated_bytes, from_image.allocated_bytes, "{label}");
    }
    // Python's tarfile and bsdtar's GNU format write a sparse file whole: its zeros are data
    // in the stream, and so in the image ext4-ingest writes; the counts and the size are
    // still the tree's.
    let whole: [(&str, &[&str]); 3] = [
        ("python-pax", &["python3", "-c", PYTHON, "pax"]),
        ("python-gnu", &["python3", "-c", PYTHON, "gnu"]),
        ("bsdtar-gnutar", &["bsdtar", "--format", "gnutar", "-cf"]),
    ];
    for (label, cmd) in whole {
        let archive = t.join(format!("{label}.tar"));
        make(cmd, &tree, &archive);
        let r = record(&from_tar(&archive));
        assert_eq!(r.counts, host.counts, "{label}");
        assert_eq!(r.size_bytes, host.size_bytes, "{label}");
        assert!(r.allocated_bytes > host.allocated_bytes, "{label}");
    }
}

#[test]
fn pax_streams_with_xattrs_devices_and_owners_measure_as_their_tree() {
    let name = "pax_streams_with_xattrs_devices_and_owners_measure_as_their_tree";
    if !testkit::is_root() {
        testkit::skip(name, "needs root (devices, owners, trusted xattrs)");
        return;
    }
    if !testkit::need(name, &["tar", "bsdtar"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    pax_tree(&tree);
    let host = record(&run(Command::new(BIN).arg("--json").arg(&tree)));
    assert!(host.counts.char_devices == 1 && host.counts.block_devices == 1);
    for (label, cmd) in [
        (
            "gnu",
            &[
                "tar",
                "--format=posix",
                "--xattrs",
                "--xattrs-include=*",
                "--sparse",
                "-cf",
            ][..],
        ),
        (
            "bsdtar",
            &["bsdtar", "--format", "pax", "--xattrs", "-cf"][..],
        ),
    ] {
        let archive = t.join(format!("{label}.tar"));
        make(cmd, &tree, &archive);
        assert_same(&record(&from_tar(&archive)), &host, label);
    }
}

#[test]
fn a_stream_on_stdin_is_read_through() {
    if !testkit::need("a_stream_on_stdin_is_read_through", &["tar"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    plain_tree(&tree, true);
    let host = record(&run(Command::new(BIN).arg("--json").arg(&tree)));
    let mut tar = Command::new("tar")
        .args(["--format=posix", "--sparse", "-cf", "-", "."])
        .current_dir(&tree)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new(BIN)
        .args(["--json", "--from-tar", "-"])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success());
    let r = record(&out);
    assert_eq!(r.path.0, b"-");
    assert_same(&r, &host, "stdin");
    // --format prints the same fields as for any other source.
    let archive = t.join("plain.tar");
    make(
        &["tar", "--format=posix", "--sparse", "-cf"],
        &tree,
        &archive,
    );
    let out = run(Command::new(BIN)
        .args(["--format", "size_bytes,inodes", "--from-tar"])
        .arg(&archive));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\t{}\n", host.size_bytes, host.inodes)
    );
}

#[test]
fn truncated_and_damaged_streams_are_refused_in_one_line() {
    let t = TempDir::new();
    for (name, stream, needle) in testkit::tarstream::broken_streams() {
        let archive = t.join(format!("{name}.tar"));
        fs::write(&archive, &stream).unwrap();
        let out = from_tar(&archive);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        let prefix = format!("seed-size: reading '{}': ", archive.display());
        assert!(err.starts_with(&prefix), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {needle} not in {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        // The same on standard input, read through.
        let out = testkit::run_with_stdin(
            Command::new(BIN).args(["--json", "--from-tar", "-"]),
            &stream,
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{name} on stdin: {err}");
        assert!(err.starts_with("seed-size: reading '-': "), "{name}: {err}");
        assert!(
            err.contains(needle),
            "{name} on stdin: {needle} not in {err}"
        );
    }
}

#[test]
fn hostile_members_are_refused_as_ext4_ingest_refuses_them() {
    let t = TempDir::new();
    let big = vec![b'a'; (2 << 20) + 10];
    let mut r = Raw::default();
    r.file("ok", b"fine")
        .escaping_members()
        .file("implied/deeper/file", b"implied")
        .pax(&[("path", &big)])
        .file("long-pax", b"x")
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"past-size"),
            ("GNU.sparse.realsize", b"100"),
        ])
        .header(b"GNUSparseFile.0/past-size", b'0', 512 + 10, b"")
        .data(&[b"1\n95\n10\n".as_slice(), &[0; 503], b"0123456789"].concat())
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"huge-map"),
            ("GNU.sparse.realsize", b"100"),
        ])
        .header(b"GNUSparseFile.0/huge-map", b'0', 512, b"")
        .data(b"99999999999999\n0\n")
        .pax(&[("uid", b"99999999999")])
        .file("bad-uid", b"x")
        // A sparse file of a petabyte holding 4 bytes: its data counts, not its size.
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"petabyte"),
            ("GNU.sparse.realsize", b"1125899906842624"),
        ])
        .header(b"GNUSparseFile.0/petabyte", b'0', 512 + 4, b"")
        .data(&[b"1\n1125899906842620\n4\n".as_slice(), &[0; 490], b"tail"].concat());
    let stream = r.end();
    let archive = t.join("hostile.tar");
    fs::write(&archive, &stream).unwrap();
    let out = from_tar(&archive);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    for needle in [
        "not counted: '/etc/passwd': an absolute name (it would leave the tree)",
        "not counted: '../up': a name holding '..' (it would leave the tree)",
        "'a/../../x': a name holding '..'",
        "'h-nowhere': a hard link to 'nowhere', which is no file",
        "'h-forward': a hard link to 'later'",
        "'h-self': a hard link to 'h-self'",
        "'h-dir': a hard link to 'd'",
        "'s/passwd': below 's', which is not a directory",
        "'ok': a second member of this name (the first is kept)",
        "'long-pax': a pax header of ",
        "'past-size': a sparse map past the file's size of 100 bytes",
        "'huge-map': a sparse map of 99999999999999 segments",
        "'bad-uid': uid 99999999999 is past 32 bits",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    let r: SeedSize = seedkit::records::parse(&out.stdout).unwrap();
    // ok, later, implied/deeper/file, petabyte; s; d, implied, implied/deeper and the
    // top; h-ok.
    assert_eq!(r.counts.files, 4, "{r:?}");
    assert_eq!(r.counts.symlinks, 1);
    assert_eq!(r.counts.directories, 4);
    assert_eq!(r.counts.extra_hard_links, 1);
    assert_eq!(r.counts.bytes, 4 + 5 + 7 + (1 << 50));
    assert_eq!(r.allocated_bytes, 3 * 4096 + 4096);
    assert_eq!(r.size_bytes, 512 << 20);
}

#[test]
fn endless_members_and_huge_headers_keep_memory_small() {
    if !testkit::need(
        "endless_members_and_huge_headers_keep_memory_small",
        &["prlimit"],
    ) {
        return;
    }
    // 152,000 members (many names of one directory, hard links, a deep chain), extension
    // headers at their bound, a huge claimed size: the run holds about 300 bytes per name
    // and one member's headers at a time.
    let t = TempDir::new();
    let mut r = Raw::default();
    let long = vec![b'p'; (1 << 20) - 100];
    for i in 0..20 {
        r.pax(&[("comment", &long)])
            .file(&format!("padded-{i}"), b"x");
    }
    for i in 0..100_000 {
        r.header(format!("wide/entry-{i:06}").as_bytes(), b'0', 0, b"");
    }
    for i in 0..50_000 {
        r.header(
            format!("wide/link-{i:06}").as_bytes(),
            b'1',
            0,
            b"wide/entry-000000",
        );
    }
    let mut path = String::from("deep");
    for _ in 0..2_000 {
        path.push_str("/d");
        r.pax(&[("path", path.as_bytes())])
            .header(b"x", b'5', 0, b"");
    }
    r.pax(&[("size", b"99999999999999999")])
        .header(b"claims", b'0', 0, b"");
    let stream = r.end();
    let archive = t.join("endless.tar");
    fs::write(&archive, &stream).unwrap();
    let out = run(testkit::memory_limited(BIN, 96 << 20)
        .args(["--json", "--from-tar"])
        .arg(&archive));
    // The last member's claimed size runs past the end of the stream.
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    let out = testkit::memory_limited(BIN, 96 << 20)
        .args(["--json", "--from-tar", "-"])
        .stdin(fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // Without it, the rest measures.
    let end = stream.len() - 1024 - 512 * 3;
    fs::write(&archive, [&stream[..end], &[0; 1024]].concat()).unwrap();
    let out = run(testkit::memory_limited(BIN, 96 << 20)
        .args(["--json", "--from-tar"])
        .arg(&archive));
    let r = record(&out);
    assert_eq!(r.counts.files, 100_020);
    assert_eq!(r.counts.extra_hard_links, 50_000);
    assert_eq!(r.counts.directories, 1 + 1 + 2_001);
}

/// `--from-tar FILE DIR`: the members below DIR measure as that directory of the image the
/// stream was made from; a DIR the stream lacks is an error, or an empty directory with
/// `--missing-ok`, as `--from-image --missing-ok` measures a missing one.
#[test]
fn a_directory_of_the_stream_measures_as_that_directory_of_the_image() {
    let t = TempDir::new();
    let (tree, image) = tree_and_image(&t, |d| plain_tree(d, true));
    fs::create_dir_all(t.join("rootfs/etc")).unwrap();
    fs::write(t.join("rootfs/etc/hostname"), b"box\n").unwrap();
    let archive = t.join("export.tar");
    make(
        &["tar", "--format=posix", "--sparse", "-cf"],
        &t.join("rootfs"),
        &archive,
    );
    let of_image = record(&run(Command::new(BIN)
        .args(["--json", "--from-image"])
        .arg(&image)
        .arg("/root")));
    for dir in ["root", "/root", "./root/"] {
        let of_tar = record(&run(Command::new(BIN)
            .args(["--json", "--from-tar"])
            .arg(&archive)
            .arg(dir)));
        assert_same(&of_tar, &of_image, dir);
    }
    assert!(tree.is_dir());
    let out = run(Command::new(BIN)
        .args(["--from-tar"])
        .arg(&archive)
        .arg("home"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("it holds nothing in 'home'"),
        "{}",
        stderr(&out)
    );
    let empty_tar = record(&run(Command::new(BIN)
        .args(["--json", "--missing-ok", "--from-tar"])
        .arg(&archive)
        .arg("home")));
    let empty_image = record(&run(Command::new(BIN)
        .args(["--json", "--missing-ok", "--from-image"])
        .arg(&image)
        .arg("/home")));
    assert_same(&empty_tar, &empty_image, "missing");
    assert_eq!(empty_tar.counts.directories, 1);
}
