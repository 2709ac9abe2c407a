//! `--tar`: the stream GNU tar and bsdtar extract (as root, with xattrs) equals the kernel's
//! view of the image's directory; hostile images give a bounded stream with each bad entry
//! reported; nothing is written on the host.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use testkit::tree::{assert_same, Ignore};
use testkit::{code, have, is_root, mkfs_from_tree, stderr, Mount, TempDir};

/// `ext4-rdump --tar ARGS > out`, with its exit code and stderr.
fn rdump_tar(args: &[&OsStr], out: &Path) -> (i32, String) {
    let file = fs::File::create(out).unwrap();
    let output = testkit::spawn(
        Command::new(common::BIN)
            .arg("--tar")
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped()),
    )
    .wait_with_output()
    .unwrap();
    (code(&output), stderr(&output))
}

/// Fill `root` through the kernel with every kind of entry a tar stream must carry.
fn fill_through_the_kernel(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    testkit::fill_sample_tree(root, 300);
    let mk = |rel: &str, data: &[u8]| fs::write(root.join(rel), data).unwrap();
    mk("trusted", b"t");
    assert!(testkit::set_xattr(
        &root.join("trusted"),
        "trusted.overlay.opaque",
        b"y"
    ));
    assert!(testkit::set_xattr(
        &root.join("trusted"),
        "security.capability",
        b"\x01\x00\x00\x02\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    ));
    assert!(testkit::set_xattr(
        &root.join("d/sub"),
        "user.binary",
        &[0, 255, 10, 61]
    ));
    let bad = root.join(OsStr::from_bytes(b"not-utf8-\xff\xfe"));
    fs::write(&bad, b"bytes").unwrap();
    let long = "n".repeat(255);
    fs::create_dir_all(root.join("path").join("x".repeat(90)).join("y".repeat(90))).unwrap();
    let deep = root
        .join("path")
        .join("x".repeat(90))
        .join("y".repeat(90))
        .join(&long);
    fs::write(&deep, b"deep").unwrap();
    std::os::unix::fs::symlink("t".repeat(300), root.join("longtarget")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"\xff-target"), root.join("badtarget")).unwrap();
    fs::hard_link(&deep, root.join("hard-to-deep")).unwrap();
    let dev = |name: &str, kind: nix::sys::stat::SFlag, major: u64, minor: u64| {
        nix::sys::stat::mknod(
            &root.join(name),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o640),
            nix::sys::stat::makedev(major, minor),
        )
        .unwrap();
    };
    dev("char", nix::sys::stat::SFlag::S_IFCHR, 1, 3);
    dev("block", nix::sys::stat::SFlag::S_IFBLK, 300, 70000);
    // A hole first, data past 1 MiB, and a file that is all hole.
    testkit::write_at(&root.join("leading-hole"), 1 << 20, b"tail");
    fs::File::create(root.join("all-hole"))
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    mk("owned", b"o");
    nix::unistd::chown(&root.join("owned"), Some(1000.into()), Some(2000.into())).unwrap();
    mk("big-ids", b"i");
    nix::unistd::chown(
        &root.join("big-ids"),
        Some(3_000_000.into()),
        Some(4_000_000.into()),
    )
    .unwrap();
    fs::set_permissions(root.join("owned"), fs::Permissions::from_mode(0o6751)).unwrap();
    testkit::set_times(&root.join("owned"), (5, 6), (-86_400, 0));
    testkit::set_times(
        &root.join("longtarget"),
        (5, 6),
        (1_234_567_890, 999_999_999),
    );
}

fn extract(tool: &str, args: &[&str], archive: &Path, into: &Path) {
    fs::create_dir(into).unwrap();
    let out = testkit::run(
        Command::new(tool)
            .args(args)
            .arg("-f")
            .arg(archive)
            .arg("-C")
            .arg(into),
    );
    assert!(out.status.success(), "{tool}: {}", stderr(&out));
}

#[test]
fn gnu_tar_and_bsdtar_extract_the_kernels_view() {
    let name = "gnu_tar_and_bsdtar_extract_the_kernels_view";
    if !is_root() || !have("tar") || !have("bsdtar") {
        testkit::skip(
            name,
            "needs root (loop mounts), GNU tar and bsdtar (libarchive-tools)",
        );
        return;
    }
    let t = TempDir::new();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "64M",
        None,
        &["-t", "ext4", "-b", "4096", "-I", "256"],
    );
    {
        let m = Mount::image(&image, "rw").unwrap_or_else(|e| panic!("{e}"));
        fill_through_the_kernel(m.path());
    }
    let archive = t.join("out.tar");
    let (rc, err) = rdump_tar(&[image.as_os_str()], &archive);
    assert_eq!(rc, 0, "{err}");
    let gnu = t.join("gnu");
    extract(
        "tar",
        &[
            "-x",
            "--xattrs",
            "--xattrs-include=*",
            "--same-permissions",
            "--same-owner",
            "--numeric-owner",
        ],
        &archive,
        &gnu,
    );
    let bsd = t.join("bsd");
    extract(
        "bsdtar",
        &["-x", "-p", "--xattrs", "--numeric-owner"],
        &archive,
        &bsd,
    );
    let m = Mount::image(&image, "ro").unwrap_or_else(|e| panic!("{e}"));
    assert_same(m.path(), &gnu, &[], Ignore::default(), "GNU tar");
    // bsdtar does not give the directory it extracts into the times of `./`.
    let bsd_ignores = Ignore {
        top_time: true,
        ..Ignore::default()
    };
    assert_same(m.path(), &bsd, &[], bsd_ignores, "bsdtar");
    // A second stream of the same image is the same bytes.
    let again = t.join("again.tar");
    assert_eq!(rdump_tar(&[image.as_os_str()], &again).0, 0);
    assert!(fs::read(&archive).unwrap() == fs::read(&again).unwrap());
}

#[test]
fn a_sparse_file_costs_its_data_not_its_size() {
    if !testkit::need(
        "a_sparse_file_costs_its_data_not_its_size",
        &["mke2fs", "tar"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    // 1 TiB apparent, 8 KiB stored.
    testkit::write_at(&tree.join("huge"), 0, b"head");
    testkit::write_at(&tree.join("huge"), (1 << 40) - 4, b"tail");
    let image = t.join("img");
    mkfs_from_tree(&image, "16M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    let archive = t.join("out.tar");
    let (rc, err) = rdump_tar(
        &[image.as_os_str(), OsStr::new("--budget"), OsStr::new("1M")],
        &archive,
    );
    assert_eq!(rc, 0, "{err}");
    assert!(fs::metadata(&archive).unwrap().len() < 64 * 1024);
    let listed = testkit::run(Command::new("tar").arg("-tvf").arg(&archive));
    let text = testkit::stdout(&listed);
    assert!(text.contains(" 1099511627776 "), "{text}");
}

#[test]
fn the_budget_cuts_the_stream_short_without_an_end() {
    if !testkit::need(
        "the_budget_cuts_the_stream_short_without_an_end",
        &["mke2fs", "tar"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("a"), vec![7u8; 100_000]).unwrap();
    fs::write(tree.join("b"), vec![8u8; 100_000]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let archive = t.join("out.tar");
    let (rc, err) = rdump_tar(
        &[
            image.as_os_str(),
            OsStr::new("--budget"),
            OsStr::new("150K"),
        ],
        &archive,
    );
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("'b': the archive would pass the budget of 153600 bytes"),
        "{err}"
    );
    assert!(fs::metadata(&archive).unwrap().len() <= 150 * 1024);
    // Cut short inside an entry: readers fail rather than take it for the whole directory.
    let listed = testkit::run(Command::new("tar").arg("-tf").arg(&archive));
    assert!(!listed.status.success(), "{}", testkit::stdout(&listed));
    assert!(
        stderr(&listed).contains("Unexpected EOF"),
        "{}",
        stderr(&listed)
    );
}

#[test]
fn hostile_entries_are_reported_and_the_stream_stays_whole() {
    if !testkit::need(
        "hostile_entries_are_reported_and_the_stream_stays_whole",
        &["mke2fs", "debugfs", "tar"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("d/sub")).unwrap();
    fs::write(tree.join("d/f"), b"data").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let script = "\
mknod ../../../../escaped p
mknod a/b p
mknod dup p
mknod dup p
ln /d /d/sub/loop
ln /d/f /d/f2
ln /d/f /d/f3
";
    testkit::debugfs_script(&image, script);
    let archive = t.join("out.tar");
    let (rc, err) = rdump_tar(&[image.as_os_str()], &archive);
    assert_eq!(rc, 1, "{err}");
    for needle in [
        "archiving '../../../../escaped': invalid name (contains '/')",
        "archiving 'a/b': invalid name",
        "archiving 'dup': duplicate name",
        "archiving 'd/sub/loop': directory inode",
        // d/f has one link by its count: its other names are refused, not written again.
        "archiving 'd/f2': inode",
        "archiving 'd/f3': inode",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    let listed = testkit::run(Command::new("tar").arg("-tf").arg(&archive));
    assert!(listed.status.success(), "{}", stderr(&listed));
    let names = testkit::stdout(&listed);
    assert!(
        names
            .lines()
            .all(|l| !l.contains("..") && !l.starts_with('/')),
        "{names}"
    );
    assert_eq!(names.lines().filter(|l| *l == "dup").count(), 1, "{names}");
    let mut left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["img", "img.debugfs-script", "out.tar", "src"]);
}

#[test]
fn sockets_are_reported_and_left_out() {
    if !testkit::need("sockets_are_reported_and_left_out", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap();
    fs::write(tree.join("file"), b"x").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let archive = t.join("out.tar");
    let (rc, err) = rdump_tar(&[image.as_os_str()], &archive);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("archiving 'sock': a socket cannot be held in a tar archive"),
        "{err}"
    );
}

#[test]
fn tar_excludes_the_staging_options() {
    for other in ["--json", "--same-owner"] {
        let out = common::rdump(&[OsStr::new("--tar"), OsStr::new(other), OsStr::new("img")]);
        assert_eq!(code(&out), 2, "{other}");
    }
    let out = common::rdump(&[
        OsStr::new("--tar"),
        OsStr::new("-o"),
        OsStr::new("x"),
        OsStr::new("img"),
    ]);
    assert_eq!(code(&out), 2);
}
