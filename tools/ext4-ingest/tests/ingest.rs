//! ext4-ingest end to end: real mkfs.ext4 images, the built binary, debugfs and e2fsck -fn
//! as independent checks.

#![allow(clippy::many_single_char_names)] // short names for stat outputs keep the checks readable

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use seedkit::json::Bytes;
use seedkit::records::manifest::manifest_path;
use seedkit::records::{EntryKind, Ingest, ManifestEntry, ManifestLine, Rdev, Timestamp, Xattr};
use testkit::{chmod, code, debugfs, e2fsck_clean, stderr, TempDir};

use crate::common::{entry, image, write_manifest};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// An empty ext4 image made by mke2fs with a fixed time.
fn ingest(args: &[&OsStr]) -> Output {
    testkit::run(Command::new(BIN).args(args))
}

fn ingest_ok(img: &Path, tree: &Path, extra: &[&str]) -> Output {
    // Every successful run is also read back by the tool itself (ext4fs).
    let mut args: Vec<&OsStr> = vec![OsStr::new("--verify")];
    args.extend(extra.iter().map(OsStr::new));
    args.push(img.as_os_str());
    args.push(tree.as_os_str());
    let out = ingest(&args);
    assert_eq!(code(&out), 0, "ext4-ingest failed: {}", stderr(&out));
    if let Err(e) = e2fsck_clean(img) {
        panic!("{e}");
    }
    out
}

/// `debugfs -R "stat PATH"`.
fn stat(img: &Path, path: &[u8]) -> String {
    let mut req = b"stat \"".to_vec();
    req.extend_from_slice(path);
    req.push(b'"');
    debugfs(img, OsStr::from_bytes(&req))
}

/// The value after `label` in debugfs stat output (`Links:`, `Mode:`, `User:`, ...).
fn field(stat: &str, label: &str) -> String {
    let at = stat
        .find(label)
        .unwrap_or_else(|| panic!("no {label} in {stat}"));
    stat[at + label.len()..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The raw `seconds:extra` of a time line (`mtime: 0x...:...`).
fn time_field(stat: &str, label: &str) -> (u32, u32) {
    let line = stat
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in {stat}"));
    let raw = line.split_whitespace().nth(1).unwrap();
    let (s, e) = raw.trim_start_matches("0x").split_once(':').unwrap();
    (
        u32::from_str_radix(s, 16).unwrap(),
        u32::from_str_radix(e, 16).unwrap(),
    )
}

/// A file's content, read with `debugfs cat`.
fn cat(img: &Path, path: &[u8]) -> Vec<u8> {
    let mut req = b"cat \"".to_vec();
    req.extend_from_slice(path);
    req.push(b'"');
    let out = testkit::run(
        testkit::tool("debugfs")
            .arg("-R")
            .arg(OsStr::from_bytes(&req))
            .arg(img),
    );
    out.stdout
}

/// The names in an image directory (`ls -p`), names with a newline excepted.
fn names(img: &Path, dir: &str) -> Vec<Vec<u8>> {
    let out = testkit::run(
        testkit::tool("debugfs")
            .arg("-R")
            .arg(format!("ls -p \"{dir}\""))
            .arg(img),
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter_map(|l| {
            let f: Vec<&[u8]> = l.split(|&b| b == b'/').collect();
            (f.len() == 8).then(|| f[5].to_vec())
        })
        .filter(|n| n != b"." && n != b"..")
        .collect()
}

fn set_times(path: &Path, sec: i64, nsec: i64) {
    let t = TimeSpec::new(sec, nsec);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

#[test]
fn every_kind_of_entry_arrives_owned_by_root() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("etc/deep")).unwrap();
    fs::write(tree.join("etc/passwd"), b"root:x:0:0\n").unwrap();
    chmod(&tree.join("etc/passwd"), 0o640);
    testkit::write_at(&tree.join("sparse"), 64 << 20, b"tail");
    fs::write(tree.join("etc/deep/a"), b"linked").unwrap();
    fs::hard_link(tree.join("etc/deep/a"), tree.join("b")).unwrap();
    fs::hard_link(tree.join("etc/deep/a"), tree.join("etc/c")).unwrap();
    symlink("passwd", tree.join("etc/short")).unwrap();
    let long_target = "t".repeat(300);
    symlink(&long_target, tree.join("long")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    if testkit::is_root() {
        std::os::unix::fs::lchown(tree.join("etc/passwd"), Some(1234), Some(1234)).unwrap();
    }
    set_times(&tree.join("etc/passwd"), 1_000_000_000, 123_456_789);
    set_times(&tree.join("etc"), 1_100_000_000, 5);
    let img = image(&t, "64M", &[]);
    let out = ingest_ok(&img, &tree, &["--json"]);
    let rec: Ingest = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(rec.counts.files, 3);
    assert_eq!(rec.counts.extra_hard_links, 2);
    assert_eq!(rec.counts.symlinks, 2);
    assert_eq!(rec.counts.fifos, 1);
    // The tree, etc and etc/deep: the top directory counts.
    assert_eq!(rec.counts.directories, 3);
    assert_eq!(rec.counts.sockets, 0);

    let s = stat(&img, b"/etc/passwd");
    assert_eq!(field(&s, "User:"), "0");
    assert_eq!(field(&s, "Group:"), "0");
    assert_eq!(field(&s, "Mode:"), "0640");
    assert_eq!(time_field(&s, "mtime:"), (1_000_000_000, 123_456_789 << 2));
    assert_eq!(cat(&img, b"/etc/passwd"), b"root:x:0:0\n");
    // Directory times are set after the children went in.
    assert_eq!(
        time_field(&stat(&img, b"/etc"), "mtime:"),
        (1_100_000_000, 5 << 2)
    );

    let s = stat(&img, b"/sparse");
    assert_eq!(field(&s, "Size:"), "67108868");
    let blocks: u64 = field(&s, "Blockcount:").parse().unwrap();
    assert!(blocks <= 16, "the hole was written: {blocks} sectors");

    let a = stat(&img, b"/etc/deep/a");
    assert_eq!(field(&a, "Links:"), "3");
    assert_eq!(field(&a, "Inode:"), field(&stat(&img, b"/b"), "Inode:"));
    assert_eq!(field(&a, "Inode:"), field(&stat(&img, b"/etc/c"), "Inode:"));
    assert_eq!(cat(&img, b"/b"), b"linked");

    assert!(stat(&img, b"/etc/short").contains("Fast link dest: \"passwd\""));
    let l = stat(&img, b"/long");
    assert_eq!(field(&l, "Size:"), "300");
    assert_eq!(field(&l, "Type:"), "symlink");
    let f = stat(&img, b"/fifo");
    assert_eq!(field(&f, "Type:"), "FIFO");
    assert_eq!(field(&f, "Mode:"), "0600");
}

#[test]
fn manifest_supplies_devices_setuid_xattrs_and_times() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("dev")).unwrap();
    fs::write(tree.join("su"), b"#!/bin/sh\n").unwrap();
    let mut su = entry("su", EntryKind::File, 0o4755, true);
    su.size = 10;
    su.uid = 1000;
    su.gid = 1001;
    let big: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    su.xattrs = vec![
        Xattr {
            name: Bytes(b"user.q".to_vec()),
            value: Bytes(b"a\"b\\c\x00\xff-".to_vec()),
        },
        Xattr {
            name: Bytes(b"user.big".to_vec()),
            value: Bytes(big.clone()),
        },
    ];
    let mut null = entry("dev/null", EntryKind::CharDevice, 0o666, false);
    null.rdev = Some(Rdev { major: 1, minor: 3 });
    let mut wide = entry("dev/wide", EntryKind::CharDevice, 0o600, false);
    wide.rdev = Some(Rdev {
        major: 300,
        minor: 70000,
    });
    let mut sda = entry("dev/sda", EntryKind::BlockDevice, 0o660, false);
    sda.rdev = Some(Rdev { major: 8, minor: 0 });
    sda.gid = 6;
    let tmp = entry("tmp", EntryKind::Directory, 0o1777, false);
    let root = entry(".", EntryKind::Directory, 0o755, true);
    let dev = entry("dev", EntryKind::Directory, 0o755, true);
    write_manifest(&tree, &[root, dev, null, sda, wide, su, tmp]);
    let img = image(&t, "32M", &["-b", "4096"]);
    ingest_ok(&img, &tree, &[]);

    let s = stat(&img, b"/su");
    assert_eq!(field(&s, "Mode:"), "04755");
    assert_eq!(field(&s, "User:"), "0");
    assert_eq!(time_field(&s, "atime:"), (10, 1 << 2));
    assert_eq!(time_field(&s, "mtime:"), (20, 2 << 2));
    assert_eq!(time_field(&s, "ctime:"), (30, 3 << 2));
    assert_eq!(time_field(&s, "crtime:"), (40, 4 << 2));
    let q = debugfs(&img, "ea_get -x /su user.q");
    assert!(q.contains("61 22 62 5c 63 00 ff 2d"), "{q}");
    let dumped = t.join("big.out");
    testkit::run(
        testkit::tool("debugfs")
            .arg("-R")
            .arg(format!("ea_get -f {} /su user.big", dumped.display()))
            .arg(&img),
    );
    assert_eq!(fs::read(&dumped).unwrap(), big);

    let n = stat(&img, b"/dev/null");
    assert_eq!(field(&n, "Type:"), "character");
    assert_eq!(field(&n, "Mode:"), "0666");
    assert!(n.contains("major/minor number: 01:03"), "{n}");
    let w = stat(&img, b"/dev/wide");
    assert!(w.contains("major/minor number: 300:70000"), "{w}");
    let b = stat(&img, b"/dev/sda");
    assert_eq!(field(&b, "Type:"), "block");
    assert_eq!(field(&b, "Group:"), "0");
    assert_eq!(field(&stat(&img, b"/tmp"), "Mode:"), "01777");

    // --preserve-owner keeps the recorded owners.
    let img2 = t.join("owners.img");
    testkit::mkfs_from_tree(&img2, "32M", None, &["-t", "ext4", "-b", "4096"]);
    ingest_ok(&img2, &tree, &["--preserve-owner"]);
    let s = stat(&img2, b"/su");
    assert_eq!(field(&s, "User:"), "1000");
    assert_eq!(field(&s, "Group:"), "1001");
    assert_eq!(field(&stat(&img2, b"/dev/sda"), "Group:"), "6");
}

#[test]
fn awkward_names_arrive_intact() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let long = vec![b'n'; 255];
    let awkward: Vec<&[u8]> = vec![
        b"a b",
        b"q\"uote",
        b"back\\slash",
        b"tab\there",
        b"new\nline",
        b"carriage\rreturn",
        b"-dash",
        b"!bang",
        b"#hash",
        b"<12>",
        b"\xff\xfe-not-utf8",
        b"..dots",
        b" lead",
        &long,
    ];
    for name in &awkward {
        let p = tree.join(OsStr::from_bytes(name));
        fs::write(&p, *name).unwrap();
    }
    // A directory with a newline holding a file with a CR: both go the rename route.
    let d = tree.join("dir\nnl");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("in\rner"), b"inner").unwrap();
    fs::write(d.join("plain"), b"plain").unwrap();
    set_times(&d, 1_200_000_000, 7);
    let img = image(&t, "32M", &[]);
    let out = ingest_ok(&img, &tree, &["--json"]);
    assert_eq!(
        seedkit::records::parse::<Ingest>(&out.stdout)
            .unwrap()
            .failures,
        0
    );

    let listed = names(&img, "/");
    for name in &awkward {
        if name.contains(&b'\n') {
            continue;
        }
        assert!(
            listed.iter().any(|n| n == name),
            "{:?} missing from {listed:?}",
            String::from_utf8_lossy(name)
        );
        let mut path = b"/".to_vec();
        path.extend_from_slice(&name.replace_quotes());
        assert_eq!(cat(&img, &path), *name, "{}", String::from_utf8_lossy(name));
    }
    assert_eq!(cat(&img, b"/new\nline"), b"new\nline");
    assert_eq!(cat(&img, b"/dir\nnl/in\rner"), b"inner");
    assert_eq!(cat(&img, b"/dir\nnl/plain"), b"plain");
    assert_eq!(
        time_field(&stat(&img, b"/dir\nnl"), "mtime:"),
        (1_200_000_000, 7 << 2)
    );
    assert!(!listed.iter().any(|n| n.starts_with(b".ext4-ingest")));
}

/// Names as debugfs reads them inside double quotes.
trait ReplaceQuotes {
    fn replace_quotes(&self) -> Vec<u8>;
}

impl ReplaceQuotes for &[u8] {
    fn replace_quotes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in *self {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out
    }
}

#[test]
fn paths_longer_than_8k_are_written() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let part = "d".repeat(250);
    // Build 40 levels (about 10 KiB) through directory descriptors: the path is too long
    // for one syscall.
    let mut dir = fs::File::open(&tree).unwrap();
    for _ in 0..40 {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let next = PathBuf::from(format!("/proc/self/fd/{fd}/{part}"));
        fs::create_dir(&next).unwrap();
        dir = fs::File::open(&next).unwrap();
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    fs::write(format!("/proc/self/fd/{fd}/leaf"), b"deep").unwrap();
    let img = image(&t, "32M", &[]);
    ingest_ok(&img, &tree, &[]);
    let mut script = format!("cd \"{part}\"\n").repeat(40);
    script.push_str("cat leaf\n");
    fs::write(t.join("script"), script).unwrap();
    let out = testkit::run(
        testkit::tool("debugfs")
            .arg("-f")
            .arg(t.join("script"))
            .arg(&img),
    );
    assert!(
        out.stdout.ends_with(b"cat leaf\ndeep"),
        "{}",
        testkit::stdout(&out)
    );
}

#[test]
fn same_tree_and_pinned_mkfs_give_identical_images() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("a/b")).unwrap();
    fs::write(tree.join("a/b/f"), b"x").unwrap();
    fs::write(tree.join("g"), vec![7u8; 100_000]).unwrap();
    symlink("a/b/f", tree.join("s")).unwrap();
    fs::hard_link(tree.join("g"), tree.join("h")).unwrap();
    // Enough directories that the walk and the writing overlap.
    for d in 0..30 {
        let dir = tree.join(format!("d{d:02}/sub"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
        symlink("f0", dir.join("link")).unwrap();
    }
    let pinned = [
        "-U",
        "6c1bd1a6-8c4e-4b4f-9b7a-0a3f7f9c2a10",
        "-E",
        "hash_seed=0b8c1a92-37d4-4a4e-8a2f-9d6b1d5f0c33,lazy_itable_init=1,nodiscard",
    ];
    let mut images = Vec::new();
    for n in 0..3 {
        let img = t.join(format!("r{n}.img"));
        let mut args = vec!["-t", "ext4"];
        args.extend_from_slice(&pinned);
        testkit::mkfs_from_tree(&img, "32M", None, &args);
        if n == 0 {
            ingest_ok(&img, &tree, &[]);
        } else {
            // Without --verify: what it reads must not matter either.
            let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
        }
        images.push(fs::read(&img).unwrap());
        // Reading the tree must not change what the next run writes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(images[0] == images[1], "runs 1 and 2 differ");
    assert!(images[1] == images[2], "runs 2 and 3 differ");
}

#[test]
fn out_of_space_is_a_clear_error() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let data: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tree.join("big"), data).unwrap();
    let img = image(&t, "4M", &["-O", "^has_journal"]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("out of space"), "{err}");
    assert!(err.contains("'big'"), "{err}");
    assert!(err.contains("unusable"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn out_of_inodes_is_a_clear_error() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    for i in 0..200 {
        fs::write(tree.join(format!("f{i}")), b"").unwrap();
    }
    let img = image(&t, "8M", &["-N", "64"]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("out of inodes"), "{err}");
    // The whole tree is counted, though writing stopped at the first inode missing.
    assert!(err.contains("needs 200 inodes"), "{err}");
    assert!(err.contains("unusable"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn refusals_say_why() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("etc"), b"x").unwrap();
    // An image that already holds the entry.
    let pre = t.join("pre");
    fs::create_dir(&pre).unwrap();
    fs::write(pre.join("etc"), b"old").unwrap();
    let img = t.join("full.img");
    testkit::mkfs_from_tree(&img, "16M", Some(&pre), &["-t", "ext4"]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("already holds"), "{}", stderr(&out));
    assert_eq!(cat(&img, b"/etc"), b"old");

    // A tree that is not a directory.
    let img = image(&t, "16M", &[]);
    let file = tree.join("etc");
    let out = ingest(&[img.as_os_str(), file.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));

    // An image that is not ext4.
    let junk = t.join("junk.img");
    fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let out = ingest(&[junk.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not an ext4 file system"),
        "{}",
        stderr(&out)
    );

    // An image another process holds.
    let f = fs::File::open(&img).unwrap();
    let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("another process"), "{}", stderr(&out));
    drop(lock);
}

#[test]
fn invalid_manifest_names_are_reported_not_written() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("ok"), b"ok").unwrap();
    let long = "x".repeat(256);
    let mut ok = entry("ok", EntryKind::File, 0o644, true);
    ok.size = 2;
    write_manifest(
        &tree,
        &[
            entry(".", EntryKind::Directory, 0o755, true),
            ok,
            entry(&long, EntryKind::Fifo, 0o644, false),
        ],
    );
    let img = image(&t, "16M", &[]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("longer than 255 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cat(&img, b"/ok"), b"ok");
    e2fsck_clean(&img).unwrap();
}

#[test]
fn tree_comes_from_a_json_record_on_stdin() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"via stdin").unwrap();
    let img = image(&t, "16M", &[]);
    let record = format!("{{\"path\":{:?}}}\n", tree.display().to_string());
    let out = testkit::run_with_stdin(Command::new(BIN).arg(&img), record.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(cat(&img, b"/f"), b"via stdin");
}

#[test]
fn unprivileged_run_copies_unreadable_files() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("locked")).unwrap();
    fs::write(tree.join("secret"), b"top secret").unwrap();
    fs::write(tree.join("locked/inner"), b"inside").unwrap();
    let img = image(&t, "16M", &[]);
    let bin = testkit::copy_binary(BIN, t.path());
    t.give_to_nobody();
    chmod(&tree.join("secret"), 0o000);
    chmod(&tree.join("locked"), 0o000);
    let mut cmd = testkit::unprivileged(Command::new(&bin));
    cmd.arg(&img).arg(&tree).arg("--verify");
    let out = testkit::run(&mut cmd);
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    // The host tree is left as it was.
    assert_eq!(mode(&tree.join("secret")), 0);
    assert_eq!(mode(&tree.join("locked")), 0);
    chmod(&tree.join("locked"), 0o755);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    e2fsck_clean(&img).unwrap();
    assert_eq!(cat(&img, b"/secret"), b"top secret");
    assert_eq!(cat(&img, b"/locked/inner"), b"inside");
    let s = stat(&img, b"/secret");
    assert_eq!(field(&s, "Mode:"), "0000");
    assert_eq!(field(&s, "User:"), "0");
    assert_eq!(field(&stat(&img, b"/locked"), "Mode:"), "0000");
}

#[test]
fn owner_option_sets_a_fixed_owner() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), b"").unwrap();
    let img = image(&t, "16M", &[]);
    ingest_ok(&img, &tree, &["--owner", "1000:70000"]);
    for p in [&b"/d"[..], b"/d/f", b"/"] {
        let s = stat(&img, p);
        assert_eq!(field(&s, "User:"), "1000");
        assert_eq!(field(&s, "Group:"), "70000");
    }
}

#[test]
fn man_page_documents_every_long_option() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man/ext4-ingest.1");
    let text = fs::read_to_string(&page).unwrap();
    let help = testkit::stdout(&testkit::run(Command::new(BIN).arg("--help")));
    for word in help.split_whitespace() {
        let Some(opt) = word.strip_prefix("--") else {
            continue;
        };
        let opt: String = opt
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if opt.is_empty() {
            continue;
        }
        assert!(
            text.contains(&format!("\\-\\-{}", opt.replace('-', "\\-"))),
            "--{opt} is not in the man page"
        );
    }
    if testkit::have("groff") {
        let out = testkit::run(
            testkit::tool("groff")
                .args(["-man", "-ww", "-z"])
                .arg(&page),
        );
        assert!(
            out.stderr.is_empty() && out.stdout.is_empty(),
            "{}",
            stderr(&out)
        );
    } else {
        testkit::skip(
            "man_page_documents_every_long_option",
            "groff is not installed",
        );
    }
}

/// ext4-rdump, built beside this binary by `cargo test --workspace`.
fn rdump_bin() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("ext4-rdump");
    p.is_file().then_some(p)
}

fn manifest_entries(tree: &Path) -> Vec<ManifestEntry> {
    let text = fs::read_to_string(manifest_path(tree)).unwrap();
    let mut out: Vec<ManifestEntry> = text
        .lines()
        .filter_map(|l| match serde_json::from_str::<ManifestLine>(l).unwrap() {
            ManifestLine::Entry(e) => Some(e),
            ManifestLine::Header(_) => None,
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[test]
fn round_trip_through_ext4_rdump_gives_the_same_image() {
    let Some(rdump) = rdump_bin() else {
        testkit::skip(
            "round_trip_through_ext4_rdump_gives_the_same_image",
            "ext4-rdump is not built (run cargo test --workspace)",
        );
        return;
    };
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("home/user/.ssh")).unwrap();
    fs::write(tree.join("home/user/.ssh/id"), b"key").unwrap();
    chmod(&tree.join("home/user/.ssh/id"), 0o600);
    chmod(&tree.join("home/user/.ssh"), 0o700);
    chmod(&tree.join("home"), 0o2775);
    testkit::write_at(&tree.join("home/user/sparse"), 3 << 20, b"x");
    fs::write(tree.join("home/user/a b\nc"), b"odd").unwrap();
    fs::hard_link(tree.join("home/user/.ssh/id"), tree.join("home/user/id2")).unwrap();
    symlink(".ssh/id", tree.join("home/user/link")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("home/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::write(tree.join("home/user/locked"), b"sealed").unwrap();
    chmod(&tree.join("home/user/locked"), 0o000);
    set_times(&tree.join("home/user"), 1_500_000_000, 999_999_999);
    let pinned = |img: &Path| {
        testkit::mkfs_from_tree(
            img,
            "32M",
            None,
            &[
                "-t",
                "ext4",
                "-U",
                "2f0e8a4e-1d7b-4c8e-9a55-0d3c7f1e9b21",
                "-E",
                "hash_seed=9b1c3d5e-7f90-4a2b-8c4d-6e8f0a1b2c3d,lazy_itable_init=1,nodiscard",
            ],
        );
    };
    let img1 = t.join("one.img");
    pinned(&img1);
    ingest_ok(&img1, &tree, &[]);

    // ext4-rdump | ext4-ingest: the summary record carries the staged tree's path.
    let stage = t.join("stage");
    let out = testkit::run(
        Command::new(&rdump)
            .arg("--json")
            .arg(&img1)
            .arg("-o")
            .arg(&stage),
    );
    assert_eq!(code(&out), 0, "ext4-rdump: {}", stderr(&out));
    let img2 = t.join("two.img");
    pinned(&img2);
    let out2 = testkit::run_with_stdin(Command::new(BIN).arg("--verify").arg(&img2), &out.stdout);
    assert_eq!(code(&out2), 0, "{}", stderr(&out2));
    e2fsck_clean(&img2).unwrap();

    // The images are the same but for the superblock's count of bytes written
    // (s_kbytes_written, 0x178) and the superblock checksum (0x3fc): the second run sent
    // more commands (the recorded ctimes and crtimes).
    let (one, two) = (fs::read(&img1).unwrap(), fs::read(&img2).unwrap());
    assert_eq!(one.len(), two.len());
    let kbytes = 1024 + 0x178..1024 + 0x180;
    let csum = 1024 + 0x3fc..1024 + 0x400;
    let differ: Vec<usize> = (0..one.len()).filter(|&i| one[i] != two[i]).collect();
    assert!(
        differ
            .iter()
            .all(|i| kbytes.contains(i) || csum.contains(i)),
        "the images differ at {:?}",
        &differ[..differ.len().min(20)]
    );
    // What the image says of itself is the same both times.
    let stage2 = t.join("stage2");
    let out = testkit::run(Command::new(&rdump).arg(&img2).arg("-o").arg(&stage2));
    assert_eq!(code(&out), 0, "ext4-rdump: {}", stderr(&out));
    let (a, b) = (manifest_entries(&stage), manifest_entries(&stage2));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    let id = a.iter().find(|e| e.path.0 == b"home/user/.ssh/id").unwrap();
    assert_eq!((id.mode, id.uid, id.gid), (0o600, 0, 0));
    assert!(id.link_group.is_some());
    let home = a.iter().find(|e| e.path.0 == b"home").unwrap();
    assert_eq!(home.mode, 0o2775);
    let user = a.iter().find(|e| e.path.0 == b"home/user").unwrap();
    assert_eq!(
        user.mtime,
        Timestamp {
            sec: 1_500_000_000,
            nsec: 999_999_999
        }
    );
    assert_eq!(
        fs::read(stage.join("home/user/a b\nc")).unwrap(),
        b"odd".to_vec()
    );
}

#[test]
fn hard_links_into_full_directory_blocks() {
    // Written to catch an engine whose `ln` neither grows a full directory block nor counts
    // links (debugfs 1.47.0 does neither): many hard links into directories that fill up.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("a")).unwrap();
    fs::create_dir_all(tree.join("z")).unwrap();
    fs::write(tree.join("a/f"), b"shared").unwrap();
    for i in 0..60 {
        let name = format!("{i:03}{}", "n".repeat(200));
        fs::write(tree.join("z").join(name), b"").unwrap();
    }
    for i in 0..40 {
        let name = format!("zz{i:02}{}", "l".repeat(200));
        fs::hard_link(tree.join("a/f"), tree.join("z").join(name)).unwrap();
    }
    let img = image(&t, "16M", &[]);
    ingest_ok(&img, &tree, &[]);
    let s = stat(&img, b"/a/f");
    assert_eq!(field(&s, "Links:"), "41");
    let z = names(&img, "/z");
    assert_eq!(z.len(), 100);
}

#[test]
fn images_with_a_feature_the_writer_lacks_are_refused_by_name() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    let img = image(&t, "16M", &["-O", "meta_bg,^resize_inode"]);
    let before = fs::read(&img).unwrap();
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("meta_bg"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(fs::read(&img).unwrap() == before, "the image was changed");
}

#[test]
fn host_xattrs_and_block_sized_symlinks_arrive() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let has_xattrs = testkit::set_xattr(&tree.join("f"), "user.note", b"a\"b\x00c");
    // 4 KiB blocks: a target of 4000 bytes (full of quotes) still fits one command line.
    let target = "\"q/".repeat(1333) + "x";
    symlink(&target, tree.join("long")).unwrap();
    let img = image(&t, "32M", &["-b", "4096"]);
    ingest_ok(&img, &tree, &[]);
    let l = stat(&img, b"/long");
    assert_eq!(field(&l, "Size:"), "4000");
    if has_xattrs {
        let x = debugfs(&img, "ea_get -x /f user.note");
        assert!(x.contains("61 22 62 00 63"), "{x}");
    } else {
        // tmpfs before Linux 6.6 has no user xattrs; CI's temp file system must have them.
        testkit::skip(
            "host_xattrs_and_block_sized_symlinks_arrive (xattrs)",
            "the temp file system refuses user xattrs",
        );
    }
}

#[test]
fn sockets_are_written() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("kept"), b"k").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap();
    let img = image(&t, "16M", &[]);
    let out = ingest_ok(&img, &tree, &["--json"]);
    let rec: Ingest = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!((rec.failures, rec.counts.sockets), (0, 1));
    assert_eq!(field(&stat(&img, b"/sock"), "Type:"), "socket");
    assert_eq!(cat(&img, b"/kept"), b"k");
    e2fsck_clean(&img).unwrap();
}

#[test]
fn manifest_options_choose_the_source_of_metadata() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"f").unwrap();
    chmod(&tree.join("f"), 0o644);
    let mut f = entry("f", EntryKind::File, 0o4711, true);
    f.size = 1;
    let elsewhere = t.join("other.jsonl");
    write_manifest(&tree, &[entry(".", EntryKind::Directory, 0o755, true), f]);
    fs::rename(manifest_path(&tree), &elsewhere).unwrap();

    let img = image(&t, "16M", &[]);
    ingest_ok(&img, &tree, &[]);
    assert_eq!(field(&stat(&img, b"/f"), "Mode:"), "0644");

    let img = t.join("m.img");
    testkit::mkfs_from_tree(&img, "16M", None, &["-t", "ext4"]);
    ingest_ok(&img, &tree, &["--manifest", elsewhere.to_str().unwrap()]);
    assert_eq!(field(&stat(&img, b"/f"), "Mode:"), "04711");

    fs::copy(&elsewhere, manifest_path(&tree)).unwrap();
    let img = t.join("n.img");
    testkit::mkfs_from_tree(&img, "16M", None, &["-t", "ext4"]);
    ingest_ok(&img, &tree, &["--no-manifest"]);
    assert_eq!(field(&stat(&img, b"/f"), "Mode:"), "0644");
}

#[test]
fn unreadable_file_of_another_user_is_a_clear_error() {
    if !testkit::is_root() {
        testkit::skip(
            "unreadable_file_of_another_user_is_a_clear_error",
            "needs root to make a file nobody cannot read",
        );
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("a"), b"a").unwrap();
    fs::write(tree.join("z-root-only"), b"secret").unwrap();
    let img = image(&t, "16M", &[]);
    let bin = testkit::copy_binary(BIN, t.path());
    t.give_to_nobody();
    std::os::unix::fs::lchown(tree.join("z-root-only"), Some(0), Some(0)).unwrap();
    chmod(&tree.join("z-root-only"), 0o600);
    let mut cmd = testkit::unprivileged(Command::new(&bin));
    cmd.arg(&img).arg(&tree);
    let out = testkit::run(&mut cmd);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("'z-root-only'") || err.contains("z-root-only'"),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn xattrs_into_an_image_without_ext_attr_are_refused() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"f").unwrap();
    let mut f = entry("f", EntryKind::File, 0o644, true);
    f.size = 1;
    f.xattrs = vec![Xattr {
        name: Bytes(b"user.k".to_vec()),
        value: Bytes(b"v".to_vec()),
    }];
    write_manifest(&tree, &[entry(".", EntryKind::Directory, 0o755, true), f]);
    let img = image(&t, "16M", &["-O", "^ext_attr"]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    // Reported and left out, never written without its xattrs.
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("not written: 'f'"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("ext_attr"), "{}", stderr(&out));
    e2fsck_clean(&img).unwrap();
}

#[test]
fn newline_names_into_full_directory_blocks() {
    // The rename route adds the real name with `ln`, which does not expand a full
    // directory block; room is reserved for it while the script runs.
    let t = TempDir::new();
    let img = image(&t, "16M", &[]);
    for n in [22, 23, 24, 25] {
        let tree = t.join(format!("tree{n}"));
        fs::create_dir_all(tree.join("d")).unwrap();
        for i in 0..n {
            fs::write(tree.join(format!("d/f{i:030}")), b"").unwrap();
        }
        let odd = format!("d/nl\n{n:040}");
        fs::write(tree.join(&odd), b"odd").unwrap();
        testkit::mkfs_from_tree(&img, "16M", None, &["-t", "ext4"]);
        ingest_ok(&img, &tree, &[]);
        let mut path = b"/".to_vec();
        path.extend_from_slice(odd.as_bytes());
        assert_eq!(cat(&img, &path), b"odd", "{n} files");
    }
}

#[test]
fn one_second_before_the_epoch_is_written() {
    // debugfs refuses `sif ... @-1` (-1 is its "cannot parse" value).
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("m1"), b"a").unwrap();
    fs::write(tree.join("m1ns"), b"b").unwrap();
    fs::write(tree.join("m2"), b"c").unwrap();
    set_times(&tree.join("m1"), -1, 0);
    set_times(&tree.join("m1ns"), -1, 500);
    set_times(&tree.join("m2"), -2, 7);
    set_times(&tree.join("d"), -1, 0);
    let img = image(&t, "16M", &[]);
    ingest_ok(&img, &tree, &[]);
    for (path, want) in [
        (&b"/m1"[..], (u32::MAX, 0)),
        (b"/m1ns", (u32::MAX, 500 << 2)),
        (b"/m2", (u32::MAX - 1, 7 << 2)),
        (b"/d", (u32::MAX, 0)),
    ] {
        let s = stat(&img, path);
        assert_eq!(time_field(&s, "mtime:"), want, "{s}");
        assert_eq!(time_field(&s, "atime:"), want, "{s}");
    }
}

#[test]
fn verify_accepts_what_the_image_already_held() {
    let t = TempDir::new();
    // The image comes with a file and directories at the top, and no lost+found.
    let pre = t.join("pre");
    fs::create_dir_all(pre.join("etc/conf.d")).unwrap();
    fs::create_dir_all(pre.join("var")).unwrap();
    fs::write(pre.join("etc/hostname"), b"vm\n").unwrap();
    fs::write(pre.join("version"), b"1\n").unwrap();
    let img = t.join("seed.img");
    testkit::mkfs_from_tree(&img, "16M", Some(&pre), &["-t", "ext4"]);
    let w = testkit::run(
        testkit::tool("debugfs")
            .args(["-w", "-R", "rmdir lost+found"])
            .arg(&img),
    );
    assert!(w.status.success());
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("home/user")).unwrap();
    fs::write(tree.join("home/user/f"), b"data").unwrap();
    ingest_ok(&img, &tree, &[]);
    assert_eq!(cat(&img, b"/etc/hostname"), b"vm\n");
    assert_eq!(field(&stat(&img, b"/"), "Links:"), "5");
}

#[test]
fn xattr_values_longer_than_a_block_are_refused_not_truncated() {
    // `ea_set -f` reads one block of the value file: on an image with ea_inode (where a
    // 10000-byte value fits) the value was silently cut to the block size.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"f").unwrap();
    let mut f = entry("f", EntryKind::File, 0o644, true);
    f.size = 1;
    f.xattrs = vec![Xattr {
        name: Bytes(b"user.big".to_vec()),
        value: Bytes(vec![b'A'; 10_000]),
    }];
    write_manifest(&tree, &[entry(".", EntryKind::Directory, 0o755, true), f]);
    let img = image(&t, "32M", &["-O", "ea_inode"]);
    let out = ingest(&[img.as_os_str(), tree.as_os_str()]);
    // Reported and left out, never written with a cut value.
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than a block"),
        "{}",
        stderr(&out)
    );
    e2fsck_clean(&img).unwrap();
}
