//! `--from-tar`: the tar streams GNU tar (pax with sparse formats 0.0, 0.1 and 1.0, GNU,
//! ustar), bsdtar and Python's tarfile write of a host tree ingest to an image whose
//! kernel view is that tree (every kind, xattrs, nanosecond times, holes, links, owners).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::tree::{assert_same, Ignore};
use testkit::{code, e2fsck_clean, is_root, stderr, Mount, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// A tree with everything a pax stream carries (as root: devices, owners, trusted xattrs).
pub fn pax_tree(root: &Path) {
    testkit::fill_sample_tree(root, 300);
    fs::write(root.join("trusted"), b"t").unwrap();
    assert!(testkit::set_xattr(
        &root.join("trusted"),
        "trusted.overlay.opaque",
        b"y"
    ));
    assert!(testkit::set_xattr(
        &root.join("d/sub"),
        "user.binary",
        &[0, 255, 10, 61]
    ));
    fs::write(root.join(OsStr::from_bytes(b"not-utf8-\xff")), b"bytes").unwrap();
    let deep = root.join("x".repeat(90)).join("y".repeat(90));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("n".repeat(255)), b"deep").unwrap();
    std::os::unix::fs::symlink("t".repeat(300), root.join("longtarget")).unwrap();
    fs::hard_link(deep.join("n".repeat(255)), root.join("hard-to-deep")).unwrap();
    for (name, kind, dev) in [
        (
            "char",
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::makedev(1, 3),
        ),
        (
            "block",
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::makedev(300, 70000),
        ),
    ] {
        nix::sys::stat::mknod(
            &root.join(name),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o640),
            dev,
        )
        .unwrap();
    }
    testkit::write_at(&root.join("leading-hole"), 1 << 20, b"tail");
    fs::write(root.join("owned"), b"o").unwrap();
    nix::unistd::chown(&root.join("owned"), Some(1000.into()), Some(2000.into())).unwrap();
}

/// A tree every tar format holds (whole-second times, no xattrs, no devices): long names
/// and targets, hard links, a sparse file of six segments (an old GNU header takes four).
pub fn plain_tree(root: &Path, long: bool) {
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::write(root.join("d/e/file"), b"file").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big"), vec![7u8; 300_000]).unwrap();
    fs::hard_link(root.join("d/e/file"), root.join("d/link")).unwrap();
    std::os::unix::fs::symlink("d/e/file", root.join("sym")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for i in 0..6u64 {
        testkit::write_at(&root.join("sparse"), i << 20, b"segment");
    }
    if long {
        let deep = root.join("l".repeat(120));
        fs::create_dir(&deep).unwrap();
        fs::write(deep.join("m".repeat(200)), b"long").unwrap();
        std::os::unix::fs::symlink("s".repeat(150), root.join("longsym")).unwrap();
    }
    let paths: Vec<Vec<u8>> = testkit::tree::view(root, &[]).into_keys().collect();
    // Children first, so that setting a child's times leaves its directory's alone.
    for (i, p) in paths.iter().enumerate().rev() {
        let p = root.join(OsStr::from_bytes(p));
        testkit::set_times(&p, (1_600_000_000, 0), (1_500_000_000 + i as i64, 0));
    }
}

fn image(t: &TempDir, name: &str) -> PathBuf {
    crate::common::image_named(t, name, "64M", &["-b", "4096", "-I", "256"])
}

/// `ext4-ingest --verify [extra] IMAGE --from-tar ARCHIVE`: exit code and stderr.
fn ingest_tar(img: &Path, archive: &Path, extra: &[&str]) -> (i32, String) {
    let out = testkit::run(
        Command::new(BIN)
            .arg("--verify")
            .args(extra)
            .arg(img)
            .arg("--from-tar")
            .arg(archive),
    );
    (code(&out), stderr(&out))
}

/// Make `archive` of `tree` with `cmd` (run inside the tree).
fn make(cmd: &mut Command, tree: &Path) {
    let out = testkit::run(cmd.current_dir(tree));
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
}

/// The image's kernel view is `tree` (its lost+found aside).
fn kernel_view_is(img: &Path, tree: &Path, ignore: Ignore, what: &str) {
    if let Err(e) = e2fsck_clean(img) {
        panic!("{what}: {e}");
    }
    let m = Mount::image(img, "ro").unwrap_or_else(|e| panic!("{e}"));
    assert_same(tree, m.path(), &["lost+found"], ignore, what);
}

fn needs(name: &str, programs: &[&str]) -> bool {
    if !is_root() {
        testkit::skip(name, "needs root (devices, owners and loop mounts)");
        return false;
    }
    testkit::need(name, programs)
}

#[test]
fn pax_streams_of_gnu_tar_and_bsdtar_give_the_tree() {
    let name = "pax_streams_of_gnu_tar_and_bsdtar_give_the_tree";
    if !needs(name, &["tar", "bsdtar"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    pax_tree(&tree);
    let gnu = [
        "tar",
        "--format=posix",
        "--xattrs",
        "--xattrs-include=*",
        "--sparse",
        "-cf",
    ];
    for (label, version) in [("gnu-0.0", "0.0"), ("gnu-0.1", "0.1"), ("gnu-1.0", "1.0")] {
        let archive = t.join(format!("{label}.tar"));
        make(
            Command::new(gnu[0])
                .args(&gnu[1..5])
                .arg(format!("--sparse-version={version}"))
                .arg("-cf")
                .arg(&archive)
                .arg("."),
            &tree,
        );
        let img = image(&t, &format!("{label}.img"));
        let (rc, err) = ingest_tar(&img, &archive, &["--preserve-owner"]);
        assert_eq!(rc, 0, "{label}: {err}");
        kernel_view_is(&img, &tree, Ignore::default(), label);
    }
    let archive = t.join("bsd.tar");
    make(
        Command::new("bsdtar")
            .args(["--format", "pax", "--xattrs", "-cf"])
            .arg(&archive)
            .arg("."),
        &tree,
    );
    let img = image(&t, "bsd.img");
    let (rc, err) = ingest_tar(&img, &archive, &["--preserve-owner"]);
    assert_eq!(rc, 0, "bsdtar: {err}");
    kernel_view_is(&img, &tree, Ignore::default(), "bsdtar");
    // Owners forced (the default): every entry root's.
    let img = image(&t, "forced.img");
    let (rc, err) = ingest_tar(&img, &t.join("gnu-1.0.tar"), &[]);
    assert_eq!(rc, 0, "{err}");
    let m = Mount::image(&img, "ro").unwrap_or_else(|e| panic!("{e}"));
    let view = testkit::tree::view(m.path(), &["lost+found"]);
    assert!(view.values().all(|n| n.uid == 0 && n.gid == 0));
}

#[test]
fn gnu_ustar_and_python_streams_give_the_tree() {
    let name = "gnu_ustar_and_python_streams_give_the_tree";
    if !needs(name, &["tar", "python3"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    plain_tree(&tree, true);
    let short = t.join("short");
    fs::create_dir(&short).unwrap();
    plain_tree(&short, false);
    let python = "import sys, tarfile\n\
        fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT}[sys.argv[1]]\n\
        with tarfile.open(sys.argv[2], 'w', format=fmt) as t:\n    t.add('.', recursive=True)\n";
    let cases: [(&str, &Path, Vec<&str>, bool); 4] = [
        (
            "gnu-old-sparse",
            &tree,
            vec!["tar", "--format=gnu", "--sparse", "-cf"],
            true,
        ),
        ("ustar", &short, vec!["tar", "--format=ustar", "-cf"], false),
        (
            "python-pax",
            &tree,
            vec!["python3", "-c", python, "pax"],
            false,
        ),
        (
            "python-gnu",
            &tree,
            vec!["python3", "-c", python, "gnu"],
            false,
        ),
    ];
    for (label, src, cmd, holes) in cases {
        let archive = t.join(format!("{label}.tar"));
        let mut c = Command::new(cmd[0]);
        c.args(&cmd[1..]).arg(&archive);
        if cmd[0] == "tar" {
            c.arg(".");
        }
        make(&mut c, src);
        let img = image(&t, &format!("{label}.img"));
        let (rc, err) = ingest_tar(&img, &archive, &["--preserve-owner"]);
        assert_eq!(rc, 0, "{label}: {err}");
        // Python's tarfile and ustar write sparse files whole (their zeros are data).
        let ignore = Ignore {
            holes: !holes,
            ..Ignore::default()
        };
        kernel_view_is(&img, src, ignore, label);
    }
}

#[test]
fn a_stream_on_stdin_is_read_once() {
    let name = "a_stream_on_stdin_is_read_once";
    if !needs(name, &["tar"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    plain_tree(&tree, true);
    let img = image(&t, "stdin.img");
    let mut tar = Command::new("tar")
        .args(["--format=posix", "--sparse", "-cf", "-", "."])
        .current_dir(&tree)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new(BIN)
        .args(["--json", "--verify", "--preserve-owner"])
        .arg(&img)
        .args(["--from-tar", "-"])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let record: seedkit::records::Ingest = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(record.path.0, b"-");
    assert_eq!(record.counts.extra_hard_links, 1);
    assert_eq!(record.counts.fifos, 1);
    kernel_view_is(&img, &tree, Ignore::default(), "stdin");
}
