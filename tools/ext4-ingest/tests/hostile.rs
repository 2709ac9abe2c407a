//! ext4-ingest against a tree that someone else can change while it runs, and a manifest
//! that lies. Each test is an attack that worked when ext4-ingest (and debugfs) read the tree
//! by name; the races are made deterministic with the `EXT4_INGEST_TEST_PAUSE` hook, a fifo
//! on which ext4-ingest waits for a line before and after it opens each regular file.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::libc;
use seedkit::json::Bytes;
use seedkit::records::{EntryKind, Rdev};
use testkit::{chmod, code, mode, stderr, TempDir};

use crate::common::{entry, image, write_manifest};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// The other end of ext4-ingest's `EXT4_INGEST_TEST_PAUSE` hook: it says `before PATH` /
/// `after PATH` on the fifo `paused` and waits for a line on the fifo `resume`.
struct Hook {
    dir: PathBuf,
    paused: fs::File,
    said: Vec<u8>,
}

impl Hook {
    fn new(dir: PathBuf) -> Hook {
        fs::create_dir(&dir).unwrap();
        for name in ["paused", "resume"] {
            let p = dir.join(name);
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        }
        // Held open for the whole run, so ext4-ingest never waits to say it paused.
        let paused = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.join("paused"))
            .unwrap();
        Hook {
            dir,
            paused,
            said: Vec::new(),
        }
    }

    /// Let another user use the fifos (after `give_to_nobody`).
    fn open_to_all(&self) {
        chmod(&self.dir, 0o755);
        for name in ["paused", "resume"] {
            chmod(&self.dir.join(name), 0o666);
        }
    }

    fn spawn(&self, mut cmd: Command) -> Child {
        cmd.env("EXT4_INGEST_TEST_PAUSE", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        testkit::spawn(&mut cmd)
    }

    /// What ext4-ingest said at its next pause (it then waits), or `None` when it exited.
    fn wait(&mut self, child: &mut Child) -> Option<String> {
        loop {
            if let Some(end) = self.said.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.said.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            let mut buf = [0u8; 4096];
            match self.paused.read(&mut buf) {
                Ok(n) if n > 0 => {
                    self.said.extend_from_slice(&buf[..n]);
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the fifo: {e}"),
            }
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        let mut w = fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("resume"))
            .unwrap();
        w.write_all(b"go\n").unwrap();
    }

    /// Let every further pause go, and collect the output.
    fn finish(&mut self, mut child: Child) -> Output {
        while self.wait(&mut child).is_some() {
            self.resume();
        }
        child.wait_with_output().unwrap()
    }
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_file_swapped_for_a_symlink_after_the_walk_never_reaches_the_image() {
    // Root runs ext4-ingest on a tree that another user can write to. Between the walk's
    // stat of `notes` and the read of its content, that user swaps it for a symlink to a
    // root-only file: the secret must not be written, and --verify must not say verified.
    const SECRET: &[u8] = b"ROOT-ONLY-SECRET-5b1e07c9";
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("notes"), b"public notes\n").unwrap();
    let secret = t.join("secret");
    fs::write(&secret, SECRET).unwrap();
    chmod(&secret, 0o600);
    chmod(&tree, 0o777);
    let mut hook = Hook::new(t.join("hook"));
    let img = image(&t, "16M", &[]);
    let mut cmd = Command::new(BIN);
    cmd.arg("--verify").arg("--json").arg(&img).arg(&tree);
    let mut child = hook.spawn(cmd);
    let at = hook
        .wait(&mut child)
        .expect("ext4-ingest pauses before reading 'notes'");
    assert!(at.starts_with("before ") && at.ends_with("/notes"), "{at}");
    fs::rename(tree.join("notes"), t.join("notes.orig")).unwrap();
    symlink(&secret, tree.join("notes")).unwrap();
    hook.resume();
    let out = hook.finish(child);
    let err = stderr(&out);
    assert!(
        !holds(&fs::read(&img).unwrap(), SECRET),
        "the secret reached the image: {err}"
    );
    assert!(
        !holds(&out.stdout, b"\"verified\":true"),
        "verified: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("notes'") && err.contains("replaced"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_swap_while_a_file_is_read_cannot_change_another_files_mode() {
    // ext4-ingest runs as a service user; `locked` is its own file but unreadable by its
    // owner, so ext4-ingest makes it readable while reading it, and puts the mode back.
    // Another user who can write to the tree swaps `locked` for a symlink to the service
    // user's private key meanwhile: the key must keep its 0600.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("locked"), b"readable with help\n").unwrap();
    let key = t.join("id_key");
    fs::write(&key, b"PRIVATE KEY\n").unwrap();
    let img = image(&t, "16M", &[]);
    let bin = testkit::copy_binary(BIN, t.path());
    let mut hook = Hook::new(t.join("hook"));
    t.give_to_nobody();
    chmod(t.path(), 0o755);
    hook.open_to_all();
    chmod(&tree, 0o777);
    chmod(&tree.join("locked"), 0o066);
    chmod(&key, 0o600);
    let mut cmd = testkit::unprivileged(Command::new(&bin));
    cmd.arg(&img).arg(&tree);
    let mut child = hook.spawn(cmd);
    // Before the open: nothing to do yet.
    let at = hook
        .wait(&mut child)
        .expect("ext4-ingest pauses before opening 'locked'");
    assert!(at.starts_with("before "), "{at}");
    hook.resume();
    // Opened, and made readable: swap now, before the mode is put back.
    let at = hook
        .wait(&mut child)
        .expect("ext4-ingest pauses after opening 'locked'");
    assert!(at.starts_with("after "), "{at}");
    fs::rename(tree.join("locked"), t.join("locked.orig")).unwrap();
    symlink(&key, tree.join("locked")).unwrap();
    hook.resume();
    let out = hook.finish(child);
    assert_eq!(
        mode(&key),
        0o600,
        "the key's mode was changed through the swapped name: {}",
        stderr(&out)
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The file that was read got its own mode back, and its content is in the image.
    assert_eq!(mode(&t.join("locked.orig")), 0o066);
    let cat = testkit::debugfs(&img, "cat /locked");
    assert!(cat.contains("readable with help"), "{cat}");
}

#[test]
fn a_manifest_that_retypes_a_staged_directory_is_refused() {
    // The manifest says the staged directory `dev/sda` is a block device: trusting it
    // would write a device node and plan the directory's children elsewhere.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("dev/sda")).unwrap();
    fs::write(tree.join("dev/sda/inner"), b"x").unwrap();
    let mut sda = entry(b"dev/sda", EntryKind::BlockDevice, 0o644, true);
    sda.rdev = Some(Rdev { major: 8, minor: 0 });
    write_manifest(
        &tree,
        &[
            entry(b".", EntryKind::Directory, 0o755, true),
            entry(b"dev", EntryKind::Directory, 0o755, true),
            sda,
            entry(b"dev/sda/inner", EntryKind::File, 0o644, true),
        ],
    );
    let img = image(&t, "16M", &[]);
    let out = testkit::run(Command::new(BIN).arg(&img).arg(&tree));
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("'dev/sda' is a block device but the tree holds a directory"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn failure_messages_show_control_bytes_in_names_escaped() {
    // A tenant's names hold terminal escapes and a newline; the writer refuses one of them
    // (a symlink target longer than a block), and the report names it.
    let t = TempDir::new();
    let tree = t.join("tree");
    let dir: &[u8] = b"d\x1b]0;owned\x07\n";
    let link: &[u8] = b"s\x1b[31m";
    fs::create_dir_all(tree.join(OsStr::from_bytes(dir))).unwrap();
    let mut path = dir.to_vec();
    path.push(b'/');
    path.extend_from_slice(link);
    let mut s = entry(&path, EntryKind::Symlink, 0o644, false);
    s.target = Some(Bytes(vec![b'a'; 1500]));
    s.mode = 0o777;
    write_manifest(
        &tree,
        &[
            entry(b".", EntryKind::Directory, 0o755, true),
            entry(dir, EntryKind::Directory, 0o755, true),
            s,
        ],
    );
    let img = image(&t, "8M", &["-b", "1024"]);
    let out = testkit::run(Command::new(BIN).arg(&img).arg(&tree));
    let err = &out.stderr;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        !err.iter().any(|&b| b == 0x1b || b == 0x07),
        "raw control bytes on stderr: {:?}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{:?}", stderr(&out));
    assert!(stderr(&out).contains("\\x1b"), "{:?}", stderr(&out));
}

#[test]
fn a_chain_of_ten_thousand_directories_is_written_and_verified_with_few_descriptors() {
    // The kernel, mke2fs -d and debugfs all take it; a walk by paths fails past PATH_MAX,
    // one holding a descriptor or a stack frame per level runs out under these limits.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    testkit::deep_chain(&tree, 10_000);
    let img = image(&t, "64M", &[]);
    let out = testkit::run(
        testkit::limited(BIN, 64, 256 << 10)
            .args(["--verify", "--json"])
            .arg(&img)
            .arg(&tree),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: seedkit::records::Ingest = seedkit::records::parse(&out.stdout).unwrap();
    assert!(r.verified);
    // The chain's 10,000 directories and the tree's top.
    assert_eq!((r.counts.files, r.counts.directories), (1, 10_001));
    let mut script = "cd d\n".repeat(10_000);
    script.push_str("cat f\n");
    fs::write(t.join("script"), script).unwrap();
    let cat = testkit::run(
        testkit::tool("debugfs")
            .arg("-f")
            .arg(t.join("script"))
            .arg(&img),
    );
    assert!(cat.stdout.ends_with(b"cat f\nbottom"), "{}", stderr(&cat));
}

/// Finding 9 of issue 15: a fifo as the image blocked `open` forever; it is refused at
/// once, by type, before any read or write.
#[test]
fn a_fifo_as_the_image_is_refused_at_once() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let fifo = t.join("seed.img");
    testkit::mkfifo(&fifo);
    let out = testkit::run_within(
        Command::new(BIN).arg(&fifo).arg(&tree),
        Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not an image: a fifo, not a regular file or a block device"),
        "{err}"
    );
}

#[test]
fn another_users_manifest_beside_a_tree_in_a_shared_directory_is_refused() {
    // Root ingests a plain tree of its own in a shared sticky directory (as /tmp). Another
    // user puts TREE.manifest.jsonl beside it: a set-user-ID root program with a
    // capability, and a device node. Trusting it made all of that, and --verify agreed.
    const TEST: &str = "another_users_manifest_beside_a_tree_in_a_shared_directory_is_refused";
    if !testkit::is_root() {
        testkit::skip(
            TEST,
            "needs root, who ingests, and nobody, who plants the manifest",
        );
        return;
    }
    let t = TempDir::new();
    let shared = t.join("tmp");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let tree = shared.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("prog"), b"#!/bin/sh\n").unwrap();
    let mut prog = entry("prog", EntryKind::File, 0o4755, true);
    prog.xattrs.push(seedkit::records::Xattr {
        name: Bytes(b"security.capability".to_vec()),
        value: Bytes(vec![1, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
    });
    let mut sda = entry("sda", EntryKind::BlockDevice, 0o666, false);
    sda.rdev = Some(Rdev { major: 8, minor: 0 });
    write_manifest(
        &tree,
        &[entry(".", EntryKind::Directory, 0o755, true), prog, sda],
    );
    let planted = seedkit::records::manifest::manifest_path(&tree);
    std::os::unix::fs::chown(&planted, Some(testkit::NOBODY), Some(testkit::NOBODY)).unwrap();
    chmod(&planted, 0o644);

    let img = image(&t, "16M", &[]);
    let out = testkit::run(Command::new(BIN).arg("--verify").arg(&img).arg(&tree));
    assert_eq!(code(&out), 2, "the planted manifest was used");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("reading the manifest '{}'", planted.display()))
            && err.contains("belongs to uid 65534")
            && err.contains("pass it with --manifest"),
        "{err}"
    );
    let listing = testkit::debugfs(&img, "ls -l /");
    assert!(
        !listing.contains("prog") && !listing.contains("sda"),
        "{listing}"
    );

    // Root's own, but writable by others: refused as well.
    std::os::unix::fs::chown(&planted, Some(0), Some(0)).unwrap();
    chmod(&planted, 0o666);
    let out = testkit::run(Command::new(BIN).arg(&img).arg(&tree));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("others may write it (mode 0666)"),
        "{}",
        stderr(&out)
    );

    // Named with --manifest it is the caller's choice, and used.
    let out = testkit::run(
        Command::new(BIN)
            .arg("--manifest")
            .arg(&planted)
            .arg(&img)
            .arg(&tree),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stat = testkit::debugfs(&img, "stat /prog");
    assert!(stat.contains("Mode:  04755"), "{stat}");
}
