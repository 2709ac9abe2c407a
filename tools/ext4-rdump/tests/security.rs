//! The attacks of a tenant who controls the image, or of a user who owns the destination,
//! each as a test: privileges of the image put on the host, a tiny image filling the disk,
//! a destination someone else can write, names that drive the terminal, a deep directory
//! chain, and valid images the reader refused.

use crate::common;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use seedkit::records::manifest::EntryKind;
use testkit::{code, mkfs_from_tree, stderr, TempDir};

/// mke2fs, debugfs and e2fsck, or a skip.
fn need_e2fsprogs(test: &str) -> bool {
    testkit::need(test, &["mke2fs", "debugfs", "e2fsck"])
}

fn rdump_to(image: &Path, dest: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&OsStr> = vec![image.as_os_str(), OsStr::new("-o"), dest.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    common::rdump(&args)
}

/// Every path under `dir`, without following symlinks.
fn staged(dir: &Path) -> Vec<(std::path::PathBuf, fs::Metadata)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.path().to_path_buf(), e.path().symlink_metadata().unwrap())
        })
        .collect()
}

/// Finding 1: run as root, the image's setuid/setgid/sticky bits, its device nodes and its
/// wide-open top directory stayed in force on the host.
#[test]
fn image_privileges_stay_in_the_manifest_not_on_the_host() {
    if !need_e2fsprogs("image_privileges_stay_in_the_manifest_not_on_the_host") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("tmp")).unwrap();
    fs::write(tree.join("rootshell"), b"#!/bin/sh\n").unwrap();
    fs::write(tree.join("groupshell"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(tree.join("rootshell"), fs::Permissions::from_mode(0o6755)).unwrap();
    fs::set_permissions(tree.join("groupshell"), fs::Permissions::from_mode(0o2755)).unwrap();
    fs::set_permissions(tree.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o777)).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    // This host's own disk as a block device, and /dev/mem as a char device, both 0666.
    testkit::debugfs_script(&image,
        "sif / mode 040777\nmknod disk b 254 0\nsif disk mode 060666\nmknod mem c 1 1\nsif mem mode 020666\n",
    );
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &["--same-owner"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (path, m) in staged(&dest) {
        let ft = m.file_type();
        assert!(
            !ft.is_block_device() && !ft.is_char_device(),
            "{}: a device node on the host",
            path.display()
        );
        assert_eq!(
            m.mode() & 0o7000,
            0,
            "{}: set-id or sticky bit on the host",
            path.display()
        );
    }
    assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o7777, 0o700);
    // The manifest keeps the image's truth, for the seed.
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    assert_eq!(m[&b".".to_vec()].mode, 0o777);
    assert_eq!(m[&b"rootshell".to_vec()].mode, 0o6755);
    assert_eq!(m[&b"groupshell".to_vec()].mode, 0o2755);
    assert_eq!(m[&b"tmp".to_vec()].mode, 0o1777);
    for (name, kind, major, minor) in [
        (&b"disk"[..], EntryKind::BlockDevice, 254, 0),
        (b"mem", EntryKind::CharDevice, 1, 1),
    ] {
        let e = &m[&name.to_vec()];
        assert_eq!(e.kind, kind);
        assert!(!e.staged);
        assert_eq!(e.mode, 0o666);
        let rdev = e.rdev.as_ref().unwrap();
        assert_eq!((rdev.major, rdev.minor), (major, minor));
    }
}

/// Add `count` names for `target` in the root directory of `image`, making room first.
fn add_names(image: &Path, target: &str, count: usize) {
    let mut script = String::from("mkdir names\n");
    for _ in 0..=count / 100 {
        script.push_str("expand_dir names\n");
    }
    for i in 0..count {
        writeln!(script, "ln {target} names/n{i}").unwrap();
    }
    testkit::debugfs_script(image, &script);
}

/// Finding 2: one inode under many names (its link count says 1) was staged once per name,
/// with its xattrs read and written to the manifest each time; `shared_blocks` turned the
/// only check off.
#[test]
fn an_inode_under_many_names_is_staged_once() {
    if !need_e2fsprogs("an_inode_under_many_names_is_staged_once") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4093) as u8).collect();
    fs::write(tree.join("big"), &data).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "32M", Some(&tree), &["-t", "ext4", "-I", "256"]);
    testkit::debugfs_script(
        &image,
        &format!(
            "feature shared_blocks\nea_set big user.blob {}\n",
            "x".repeat(3000)
        ),
    );
    add_names(&image, "big", 60);
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("reached by more names than its link count (1)"),
        "{err}"
    );
    let bytes: u64 = staged(&dest).iter().map(|(_, m)| m.blocks() * 512).sum();
    assert!(bytes < 5 << 20, "{bytes} bytes staged for one 4 MiB inode");
    let manifest = fs::metadata(t.join("out.manifest.jsonl")).unwrap().len();
    assert!(manifest < 64 << 10, "a manifest of {manifest} bytes");
    assert_eq!(fs::read(dest.join("big")).unwrap(), data);
}

/// Finding 2, with the link count raised to match the names: they are hard links of one
/// staged file, and the inode's xattrs are recorded with each name.
#[test]
fn names_up_to_the_link_count_are_hard_links_of_one_file() {
    if !need_e2fsprogs("names_up_to_the_link_count_are_hard_links_of_one_file") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("big"), vec![5u8; 1 << 20]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "16M", Some(&tree), &["-t", "ext4"]);
    add_names(&image, "big", 20);
    testkit::debugfs_script(&image, "sif big links_count 21\n");
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ino = fs::metadata(dest.join("big")).unwrap().ino();
    for i in 0..20 {
        let m = fs::metadata(dest.join(format!("names/n{i}"))).unwrap();
        assert_eq!(m.ino(), ino, "n{i}: not a hard link of big");
    }
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    let group = m[&b"big".to_vec()].link_group.unwrap();
    assert_eq!(m[&b"names/n7".to_vec()].link_group, Some(group));
}

/// Finding 2, the bound: past the budget the run stops, exit 2, and nothing is left.
#[test]
fn output_past_the_budget_stops_and_leaves_nothing() {
    if !need_e2fsprogs("output_past_the_budget_stops_and_leaves_nothing") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("a"), vec![1u8; 3 << 20]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "16M", Some(&tree), &["-t", "ext4"]);
    let work = t.join("work");
    fs::create_dir(&work).unwrap();
    let dest = work.join("out");
    let out = rdump_to(&image, &dest, &["--budget", "1M"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("pass the budget of 1048576 bytes"), "{err}");
    assert!(err.contains("--budget"), "{err}");
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "something left behind"
    );
    // Raised, it passes.
    let out = rdump_to(&image, &dest, &["--budget", "8M"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Finding 5: an existing DEST that another user owns, or that others can write, was
/// accepted; its owner could then rename symlinks over the names as they appeared.
#[test]
fn a_destination_others_can_write_is_refused() {
    if !need_e2fsprogs("a_destination_others_can_write_is_refused") {
        return;
    }
    let t = TempDir::new();
    let image = testkit::one_file_image(&t);
    let open = t.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let out = rdump_to(&image, &open, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("writable by others (mode 0777)"), "{err}");
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    assert!(!t.join("open.manifest.jsonl").exists());
    if testkit::is_root() {
        let theirs = t.join("theirs");
        fs::create_dir(&theirs).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(&theirs, Some(testkit::NOBODY.into()), None).unwrap();
        let out = rdump_to(&image, &theirs, &[]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{err}");
        assert!(
            err.contains("owned by uid 65534, not by this user"),
            "{err}"
        );
    } else if testkit::in_ci() {
        panic!("needs root, to give a directory to another user");
    }
    // The caller's own private empty directory is fine; its top becomes 0700.
    let mine = t.join("mine");
    fs::create_dir(&mine).unwrap();
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o755)).unwrap();
    let out = rdump_to(&image, &mine, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::metadata(&mine).unwrap().mode() & 0o7777, 0o700);
}

/// A new DEST was made by name and then opened by name: between the two, a user who may
/// write in DEST's parent renamed it away and put a directory of their own there, which
/// then received the image's files. The window is held open here (strace delays the
/// return of every mkdir) so that the swap lands every time.
#[test]
fn a_new_destination_cannot_be_swapped_for_another_users_directory() {
    const TEST: &str = "a_new_destination_cannot_be_swapped_for_another_users_directory";
    if !need_e2fsprogs(TEST) {
        return;
    }
    if !testkit::is_root() {
        testkit::skip(TEST, "needs root, and nobody as the other user");
        return;
    }
    let t = TempDir::new();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("secret"), b"the tenant's data").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    for (mode, refused) in [(0o777, true), (0o1777, false)] {
        let shared = t.join(format!("shared{mode:o}"));
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
        let dest = shared.join("stage");
        let mut cmd = Command::new(common::BIN);
        cmd.arg("-o").arg(&dest).arg(&image);
        let Some(mut traced) = testkit::trace::delayed(&cmd, "mkdir,mkdirat", 300_000) else {
            testkit::skip(TEST, "strace is not installed");
            return;
        };
        // As nobody: as soon as DEST appears, move it aside and make one's own.
        let mut attacker = Command::new("sh");
        attacker.current_dir(&shared).args([
            "-c",
            "while :; do if [ -d stage ] && mv stage moved 2>/dev/null; then \
             mkdir -m 777 stage; exit 0; fi; done",
        ]);
        let mut attacker = testkit::spawn(
            testkit::unprivileged(attacker)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        let out = testkit::run(&mut traced);
        let _ = attacker.kill();
        let _ = attacker.wait();
        // Whatever is at DEST now: none of the image's files went into nobody's directory.
        if let Ok(meta) = fs::symlink_metadata(&dest) {
            if meta.uid() == testkit::NOBODY {
                assert!(
                    !dest.join("secret").exists(),
                    "the image's files went into another user's directory"
                );
            }
        }
        if refused {
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            assert!(stderr(&out).contains("not sticky"), "{}", stderr(&out));
        } else {
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let meta = fs::symlink_metadata(&dest).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
            assert_eq!(fs::read(dest.join("secret")).unwrap(), b"the tenant's data");
        }
    }
}

/// Finding 7: `-v` printed tenant-chosen names raw, escape sequences and newlines included.
#[test]
fn verbose_names_are_quoted_so_control_bytes_are_inert() {
    if !need_e2fsprogs("verbose_names_are_quoted_so_control_bytes_are_inert") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    let evil = b"\x1b]0;owned\x07\x1b[2Jcleared\nline";
    fs::write(tree.join(OsStr::from_bytes(evil)), b"x").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &["-v"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !out.stderr.iter().any(|&b| b == 0x1b || b == 0x07),
        "raw control bytes on stderr: {:?}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l == "'\\x1b]0;owned\\x07\\x1b[2Jcleared\\x0aline'"),
        "{err}"
    );
    // The manifest keeps the name exactly.
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    assert!(m.contains_key(evil.as_slice()));
}

/// Levels of the deep chain.
const DEPTH: usize = 10_000;

/// Finding 9: a chain deeper than 400 directories was "skipped"; any depth is extracted,
/// here 10,000 levels, with at most 64 descriptors open (`ulimit -n 64`) and the default
/// stack.
#[test]
fn a_chain_of_ten_thousand_directories_is_extracted_with_few_descriptors() {
    if !need_e2fsprogs("a_chain_of_ten_thousand_directories_is_extracted_with_few_descriptors") {
        return;
    }
    let t = TempDir::in_memory();
    let image = t.join("img");
    // (mke2fs 1.47.0 -d aborts on a tree this deep; debugfs builds it one level at a time.)
    mkfs_from_tree(
        &image,
        "64M",
        None,
        &["-t", "ext4", "-b", "1024", "-N", "12000"],
    );
    testkit::debugfs_script(
        &image,
        &format!(
            "{}write /dev/null bottom\n",
            "mkdir d\ncd d\n".repeat(DEPTH)
        ),
    );
    testkit::e2fsck_clean(&image).unwrap();
    let dest = t.join("out");
    let out = testkit::run(
        Command::new("bash")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$@\"")
            .arg("bash")
            .arg(common::BIN)
            .arg(&image)
            .arg("-o")
            .arg(&dest),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    assert_eq!(
        m.len(),
        DEPTH + 3,
        "the root, the chain, bottom and lost+found"
    );
    let mut bottom = b"d".to_vec();
    for _ in 1..DEPTH {
        bottom.extend_from_slice(b"/d");
    }
    bottom.extend_from_slice(b"/bottom");
    assert_eq!(m[&bottom].kind, EntryKind::File);
    // The staged chain is whole, every level the owner's to enter.
    let mut dir = seedkit::sys::open_dir(&dest).unwrap();
    for level in 0..DEPTH {
        dir = seedkit::sys::open_dir_at(&dir, b"d").unwrap_or_else(|e| panic!("{level}: {e}"));
    }
    seedkit::sys::open_at(&dir, b"bottom", nix::fcntl::OFlag::O_RDONLY, 0).unwrap();
    drop(dir);
    fs::remove_dir_all(&dest).unwrap();
}

/// Finding 10: mkfs.ext4 -O inline_data -d stores a 1 MiB file of zeros as an inline inode
/// whose size is past its inline bytes; e2fsck passes it and the kernel reads zeros, but
/// ext4-rdump refused it as corrupt.
#[test]
fn an_inline_file_longer_than_its_inline_bytes_reads_as_zeros() {
    if !need_e2fsprogs("an_inline_file_longer_than_its_inline_bytes_reads_as_zeros") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("zeros"), vec![0u8; 1 << 20]).unwrap();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "16M",
        Some(&tree),
        &["-t", "ext4", "-O", "inline_data"],
    );
    testkit::e2fsck_clean(&image).unwrap();
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(fs::read(dest.join("zeros")).unwrap() == vec![0u8; 1 << 20]);
    // Zeros stay holes.
    assert!(testkit::allocated_bytes(&dest.join("zeros")) <= 4096);
}

/// Finding 10, related: with 64 KiB blocks, a 4 KiB data island was staged as a whole
/// allocated 64 KiB block; runs of zeros inside a block stay holes, as cp --sparse=always.
#[test]
fn zeros_inside_a_large_block_stay_holes() {
    if !need_e2fsprogs("zeros_inside_a_large_block_stay_holes") {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir(&tree).unwrap();
    testkit::write_at(&tree.join("island"), 8 << 20, &[0xa5; 4096]);
    testkit::write_at(&tree.join("island"), (8 << 20) + (1 << 20) - 1, &[0]);
    let image = t.join("img");
    mkfs_from_tree(&image, "64M", Some(&tree), &["-t", "ext4", "-b", "65536"]);
    testkit::e2fsck_clean(&image).unwrap();
    let dest = t.join("out");
    let out = rdump_to(&image, &dest, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let staged = dest.join("island");
    assert_eq!(
        fs::read(&staged).unwrap(),
        fs::read(tree.join("island")).unwrap()
    );
    let allocated = testkit::allocated_bytes(&staged);
    assert!(
        allocated <= 8192,
        "{allocated} bytes allocated for a 4 KiB island"
    );
}

/// Finding 2, the default budget: a small image whose manifest grows with the square of
/// its depth (3,000 nested directories of 255-byte names: each entry records its whole
/// path, 1.1 GB in all) is stopped at 8 times the image's allocated size plus 256 MiB.
#[test]
fn a_manifest_growing_past_the_default_budget_is_stopped() {
    if !need_e2fsprogs("a_manifest_growing_past_the_default_budget_is_stopped") {
        return;
    }
    let t = TempDir::in_memory();
    let image = t.join("img");
    mkfs_from_tree(
        &image,
        "8M",
        None,
        &["-t", "ext4", "-b", "1024", "-N", "4000"],
    );
    let name = "n".repeat(255);
    testkit::debugfs_script(&image, &format!("mkdir {name}\ncd {name}\n").repeat(3000));
    let work = t.join("work");
    fs::create_dir(&work).unwrap();
    let out = rdump_to(&image, &work.join("out"), &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    let fs = ext4fs::Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let budget = 8 * fs.allocated_bytes() + (256 << 20);
    assert!(
        err.contains(&format!("pass the budget of {budget} bytes")),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&work).unwrap().count(),
        0,
        "something left behind"
    );
}
