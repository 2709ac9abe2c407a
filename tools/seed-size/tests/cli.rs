//! seed-size run as a binary on real trees.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use seedkit::records::SeedSize;
use testkit::{code, run, run_with_stdin, stderr, stdout, TempDir};

const MIB: u64 = 1 << 20;
const BIN: &str = env!("CARGO_BIN_EXE_seed-size");

fn seed_size() -> Command {
    Command::new(BIN)
}

fn json_of(tree: &Path) -> SeedSize {
    let out = run(seed_size().arg("--json").arg(tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    seedkit::records::parse(&out.stdout).expect("one seed-size record")
}

/// A small tree with every kind of entry: 3 files (one with two extra names), a sparse file,
/// a symlink to a big file outside the tree, a fifo, a subdirectory.
fn sample_tree(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("a"), vec![1u8; 1000]).unwrap();
    fs::write(tree.join("sub/b"), vec![2u8; 5000]).unwrap();
    fs::hard_link(tree.join("a"), tree.join("a2")).unwrap();
    fs::hard_link(tree.join("a"), tree.join("sub/a3")).unwrap();
    testkit::write_at(&tree.join("sparse"), 100 * MIB, b"end");
    fs::write(t.join("outside"), vec![0u8; 300_000]).unwrap();
    symlink(t.join("outside"), tree.join("link")).unwrap();
    nix::unistd::mkfifo(
        &tree.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    tree
}

#[test]
fn counts_every_kind_and_each_inode_once() {
    let t = TempDir::new();
    let tree = sample_tree(&t);
    let r = json_of(&tree);
    assert_eq!(r.path.as_path(), tree);
    assert_eq!(
        (
            r.counts.files,
            r.counts.directories,
            r.counts.symlinks,
            r.counts.fifos
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(r.counts.specials(), 1);
    assert_eq!(r.counts.extra_hard_links, 2);
    assert_eq!(r.counts.bytes, 1000 + 5000 + 100 * MIB + 3);
    // The sparse file's hole is not allocated; the symlink's target is never followed.
    assert!(r.allocated_bytes < MIB, "{}", r.allocated_bytes);
    // used is 6,003 bytes and the sparse file's data: the 512 MiB floor.
    assert_eq!(r.size_bytes, 512 * MIB);
    assert_eq!(r.inodes, 32768);
}

#[test]
fn plain_output_is_the_size_alone() {
    let t = TempDir::new();
    let tree = t.join("big");
    fs::create_dir(&tree).unwrap();
    testkit::write_at(&tree.join("f"), 200 * MIB, b"x");
    let out = run(seed_size().arg(&tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // used = the one block of data, not the 200 MiB hole before it: the 512 MiB floor.
    assert_eq!(stdout(&out), format!("{}\n", 512 * MIB));
    assert_eq!(stderr(&out), "");
}

#[test]
fn reads_a_path_line_or_a_json_record_from_stdin() {
    let t = TempDir::new();
    let tree = sample_tree(&t);
    let want = format!("{}\n", 512 * MIB);
    let line = format!("{}\n", tree.display());
    for input in [
        line.clone(),
        format!(
            "{{\"path\":{:?},\"other\":1}}\n",
            tree.display().to_string()
        ),
    ] {
        for args in [&[][..], &["-"][..]] {
            let out = run_with_stdin(seed_size().args(args), input.as_bytes());
            assert_eq!(code(&out), 0, "{input}: {}", stderr(&out));
            assert_eq!(stdout(&out), want);
        }
    }
}

#[test]
fn the_figures_make_an_image_that_holds_the_tree() {
    // A tree with more inodes than a 512 MiB image gets by default: the -N figure must fit it.
    let t = TempDir::new();
    let tree = t.join("many");
    testkit::many_files(&tree, 40, 1000);
    let r = json_of(&tree);
    assert_eq!(r.counts.files, 40_000);
    assert!(r.inodes > 40_000 + 40 + 11, "{}", r.inodes);
    let image = t.join("img");
    let size = format!("{}k", r.size_bytes / 1024);
    let inodes = r.inodes.to_string();
    testkit::mkfs_from_tree(&image, &size, Some(&tree), &["-t", "ext4", "-N", &inodes]);
    testkit::e2fsck_clean(&image).unwrap();
}

#[test]
fn unstaged_manifest_entries_are_counted() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let manifest = seedkit::records::manifest::manifest_path(&tree);
    fs::write(
        &manifest,
        concat!(
            r#"{"record":"header","format":"ext4-rdump-manifest","version":1,"image":"i","source":"/root"}"#, "\n",
            r#"{"record":"entry","path":".","kind":"directory","mode":448,"uid":0,"gid":0,"atime":{"sec":0,"nsec":0},"mtime":{"sec":0,"nsec":0},"ctime":{"sec":0,"nsec":0},"size":0,"staged":true}"#, "\n",
            r#"{"record":"entry","path":"null","kind":"char_device","mode":438,"uid":0,"gid":0,"atime":{"sec":0,"nsec":0},"mtime":{"sec":0,"nsec":0},"ctime":{"sec":0,"nsec":0},"size":0,"rdev":{"major":1,"minor":3},"staged":false}"#, "\n",
        ),
    )
    .unwrap();
    let r = json_of(&tree);
    assert_eq!((r.counts.directories, r.counts.char_devices), (1, 1));
}

const HEADER_V1: &str = r#"{"record":"header","format":"ext4-rdump-manifest","version":1,"image":"i","source":"/root"}"#;
const NULL_DEVICE: &str = r#"{"record":"entry","path":"null","kind":"char_device","mode":438,"uid":0,"gid":0,"atime":{"sec":0,"nsec":0},"mtime":{"sec":0,"nsec":0},"ctime":{"sec":0,"nsec":0},"size":0,"rdev":{"major":1,"minor":3},"staged":false}"#;

#[test]
fn a_manifest_of_a_newer_version_is_refused() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let manifest = seedkit::records::manifest::manifest_path(&tree);
    let newer = HEADER_V1.replace(r#""version":1"#, r#""version":2"#);
    fs::write(&manifest, format!("{newer}\n{NULL_DEVICE}\n")).unwrap();
    let out = run(seed_size().arg(&tree));
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "seed-size: reading the manifest '{}': ext4-rdump-manifest record version 2 is newer than this toolkit reads (version 1 at most): upgrade the toolkit\n",
            manifest.display()
        )
    );
}

#[test]
fn a_manifest_without_its_header_is_refused() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let manifest = seedkit::records::manifest::manifest_path(&tree);
    fs::write(&manifest, format!("{NULL_DEVICE}\n{HEADER_V1}\n")).unwrap();
    let out = run(seed_size().arg(&tree));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).ends_with("the first line is not a manifest header\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_path_is_a_clear_error() {
    let t = TempDir::new();
    let missing = t.join("nope");
    let out = run(seed_size().arg(&missing));
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "seed-size: reading '{}': No such file or directory\n",
            missing.display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_file_is_not_a_tree() {
    let t = TempDir::new();
    fs::write(t.join("f"), b"x").unwrap();
    let out = run(seed_size().arg(t.join("f")));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).ends_with("': not a directory\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn empty_stdin_and_bad_json_are_usage_errors() {
    for input in [&b""[..], b"{\"nopath\": 1}\n", b"/a\n/b\n"] {
        let out = run_with_stdin(&mut seed_size(), input);
        assert_eq!(code(&out), 2);
        let err = stderr(&out);
        assert!(
            err.starts_with("seed-size: ") && err.lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn unreadable_directory_is_named_never_undercounted() {
    // As root every directory is readable, so the check runs as nobody.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("locked/inner")).unwrap();
    fs::write(tree.join("locked/inner/f"), b"x").unwrap();
    let bin = testkit::copy_binary(BIN, t.path());
    t.give_to_nobody();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = run(testkit::unprivileged(Command::new(bin)).arg(&tree));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "seed-size: reading directory '{}': Permission denied\n",
            tree.join("locked").display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn broken_pipe_is_quiet() {
    let t = TempDir::new();
    let tree = sample_tree(&t);
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; '{BIN}' --json '{}' | true",
        tree.display()
    )));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// The fields a shell script needs, without parsing JSON: the same values as the record,
/// tab-separated, in the order asked.
#[test]
fn format_prints_the_chosen_fields_of_the_record() {
    let t = TempDir::new();
    let tree = sample_tree(&t);
    let record = json_of(&tree);
    let out = run(seed_size()
        .args(["--format", "inodes,size_bytes,files,path"])
        .arg(&tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}\t{}\t{}\t{}\n",
            record.inodes,
            record.size_bytes,
            record.counts.files,
            tree.display()
        )
    );
    let bad = run(seed_size().args(["--format", "size;rm"]).arg(&tree));
    assert_eq!(code(&bad), 2);
}

#[test]
fn a_chain_of_ten_thousand_directories_is_measured_with_few_descriptors() {
    // Deeper than PATH_MAX by far: a walk by paths fails, one holding a descriptor or a
    // stack frame per level runs out under the limits.
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    testkit::deep_chain(&tree, 10_000);
    let out = run(testkit::limited(BIN, 64, 256 << 10)
        .arg("--json")
        .arg(&tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: SeedSize = seedkit::records::parse(&out.stdout).expect("one seed-size record");
    assert_eq!(
        (r.counts.directories, r.counts.files, r.counts.bytes),
        (10_001, 1, 6)
    );
}

#[test]
fn another_users_manifest_beside_the_tree_is_refused_unless_named() {
    // In a shared sticky directory (as /tmp), anyone may put TREE.manifest.jsonl beside a
    // tree; its devices would be counted as the tree's.
    let t = TempDir::new();
    let shared = t.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let tree = shared.join("tree");
    fs::create_dir(&tree).unwrap();
    let manifest = seedkit::records::manifest::manifest_path(&tree);
    fs::write(&manifest, format!("{HEADER_V1}\n{NULL_DEVICE}\n")).unwrap();
    fs::set_permissions(&manifest, fs::Permissions::from_mode(0o644)).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let other = if me == testkit::NOBODY {
        1
    } else {
        testkit::NOBODY
    };
    if testkit::is_root() {
        std::os::unix::fs::chown(&manifest, Some(other), None).unwrap();
    } else {
        // Only root can give a file away; the mode half of the rule is tested instead.
        fs::set_permissions(&manifest, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let out = run(seed_size().arg(&tree));
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "seed-size: reading the manifest '{}': ",
            manifest.display()
        )) && err.contains("pass it with --manifest if you trust it"),
        "{err}"
    );
    // Named on purpose, it is read; --no-manifest goes without.
    let out = run(seed_size()
        .arg("--json")
        .arg("--manifest")
        .arg(&manifest)
        .arg(&tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: SeedSize = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(r.counts.char_devices, 1);
    let out = run(seed_size().arg("--json").arg("--no-manifest").arg(&tree));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: SeedSize = seedkit::records::parse(&out.stdout).unwrap();
    assert_eq!(r.counts.char_devices, 0);
    // A symlink at the name, even to a manifest of the caller's own, is refused.
    let own = t.join("own.manifest.jsonl");
    fs::write(&own, format!("{HEADER_V1}\n{NULL_DEVICE}\n")).unwrap();
    fs::remove_file(&manifest).unwrap();
    symlink(&own, &manifest).unwrap();
    let out = run(seed_size().arg(&tree));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("it is a symbolic link"),
        "{}",
        stderr(&out)
    );
}
