//! `--from-tar`: the tar streams GNU tar (pax with sparse formats 0.0, 0.1 and 1.0, GNU,
//! ustar), bsdtar and Python's tarfile write of a host tree ingest to an image whose
//! kernel view is that tree (every kind, xattrs, nanosecond times, holes, links, owners).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::tarstream::{pax_tree, plain_tree};
use testkit::tree::{assert_same, Ignore};
use testkit::{code, e2fsck_clean, is_root, stderr, Mount, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

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

/// A container export holds a whole rootfs: `--from-tar FILE /root` writes its `root/`
/// members as the image's root, skips the others, refuses a hard link out of it, and
/// `--missing-ok` makes an empty image of a stream without that directory.
#[test]
fn a_directory_of_the_stream_is_written_alone() {
    let name = "a_directory_of_the_stream_is_written_alone";
    if !needs(name, &["tar"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root/.ssh")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("root/.profile"), b"PATH=/bin\n").unwrap();
    fs::write(
        tree.join("root/.ssh/authorized_keys"),
        b"ssh-ed25519 AAAA\n",
    )
    .unwrap();
    fs::write(tree.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::hard_link(tree.join("etc/passwd"), tree.join("root/passwd")).unwrap();
    let archive = t.join("export.tar");
    make(
        Command::new("tar")
            .args(["--format=posix", "-cf"])
            .arg(&archive)
            .args(["etc", "root"]),
        &tree,
    );
    // The hard link's first name is etc/passwd, outside /root: refused, the rest written.
    let img = image(&t, "root.img");
    let out = testkit::run(
        Command::new(BIN)
            .arg("--verify")
            .arg(&img)
            .arg("--from-tar")
            .arg(&archive)
            .arg("/root"),
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'passwd': a hard link to '/etc/passwd'"),
        "{}",
        stderr(&out)
    );
    // The tree the image should hold: /root without the refused link, its times as before.
    let st = fs::metadata(tree.join("root")).unwrap();
    fs::remove_file(tree.join("root/passwd")).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        testkit::set_times(
            &tree.join("root"),
            (st.atime(), st.atime_nsec()),
            (st.mtime(), st.mtime_nsec()),
        );
    }
    kernel_view_is(
        &img,
        &tree.join("root"),
        Ignore::default(),
        "root/ of the stream",
    );

    let img = image(&t, "missing.img");
    let out = testkit::run(
        Command::new(BIN)
            .args(["--json", "--missing-ok"])
            .arg(&img)
            .arg("--from-tar")
            .arg(&archive)
            .arg("home"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(testkit::stdout(&out).contains("\"missing\":true"));
    let out = testkit::run(
        Command::new(BIN)
            .arg(&img)
            .arg("--from-tar")
            .arg(&archive)
            .arg("home"),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("it holds nothing in 'home'"),
        "{}",
        stderr(&out)
    );
}
