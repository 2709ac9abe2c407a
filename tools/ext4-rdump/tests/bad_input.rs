//! Fatal errors: exit 2, one diagnostic line, nothing on stdout and nothing left behind.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use testkit::{code, mkfs_from_tree, stderr, TempDir};

/// Run with TMPDIR set to `tmp`, so leftovers of the default destination would show there.
fn rdump_in(tmp: &Path, args: &[&OsStr]) -> Output {
    testkit::run(Command::new(common::BIN).env("TMPDIR", tmp).args(args))
}

fn assert_fatal(out: &Output, needle: &str) {
    assert_eq!(code(out), 2, "{}", stderr(out));
    assert!(out.stdout.is_empty());
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ext4-rdump: "), "{err}");
    assert!(err.contains(needle), "{err}");
}

fn empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

fn image(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("src");
    fs::create_dir_all(tree.join("dir")).unwrap();
    fs::write(tree.join("file"), b"x").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    image
}

#[test]
fn not_an_ext4_image() {
    let t = TempDir::new();
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let junk = t.join("junk");
    fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    assert_fatal(
        &rdump_in(&tmp, &[junk.as_os_str()]),
        "not an ext2/ext3/ext4 file system",
    );
    fs::write(&junk, b"short").unwrap();
    assert_fatal(
        &rdump_in(&tmp, &[junk.as_os_str()]),
        "not an ext2/ext3/ext4 file system",
    );
    assert_fatal(
        &rdump_in(&tmp, &[t.join("missing").as_os_str()]),
        "No such file or directory",
    );
    assert!(empty(&tmp));
}

#[test]
fn missing_dir_and_dir_that_is_a_file() {
    if !testkit::need("missing_dir_and_dir_that_is_a_file", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let image = image(&t);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out = rdump_in(&tmp, &[image.as_os_str(), OsStr::new("/nope")]);
    assert_fatal(&out, "finding '/nope' in '");
    assert_fatal(&out, "': no such file or directory in the image\n");
    let out = rdump_in(&tmp, &[image.as_os_str(), OsStr::new("/file")]);
    assert_fatal(&out, "Not a directory");
    let out = rdump_in(&tmp, &[image.as_os_str(), OsStr::new("/file/x")]);
    assert_fatal(&out, "not a directory in the image");
    assert!(empty(&tmp));
}

#[test]
fn destination_not_empty_or_not_a_directory_is_left_alone() {
    if !testkit::need(
        "destination_not_empty_or_not_a_directory_is_left_alone",
        &["mke2fs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = image(&t);
    let dest = t.join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), b"mine").unwrap();
    let out = rdump_in(
        t.path(),
        &[image.as_os_str(), OsStr::new("-o"), dest.as_os_str()],
    );
    assert_fatal(&out, "Directory not empty");
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"mine");
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);
    assert!(!t.join("dest.manifest.jsonl").exists());

    let file = t.join("afile");
    fs::write(&file, b"f").unwrap();
    let out = rdump_in(
        t.path(),
        &[image.as_os_str(), OsStr::new("-o"), file.as_os_str()],
    );
    assert_fatal(&out, "Not a directory");
    assert_eq!(fs::read(&file).unwrap(), b"f");

    // An existing manifest beside an empty destination is not overwritten either.
    let empty_dest = t.join("e");
    fs::create_dir(&empty_dest).unwrap();
    fs::write(t.join("e.manifest.jsonl"), b"old").unwrap();
    let out = rdump_in(
        t.path(),
        &[image.as_os_str(), OsStr::new("-o"), empty_dest.as_os_str()],
    );
    assert_fatal(&out, "File exists");
    assert_eq!(fs::read(t.join("e.manifest.jsonl")).unwrap(), b"old");
    assert!(empty(&empty_dest));
}

#[test]
fn trailing_slash_destination_keeps_the_manifest_beside_the_tree() {
    if !testkit::need(
        "trailing_slash_destination_keeps_the_manifest_beside_the_tree",
        &["mke2fs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = image(&t);
    let dest = format!("{}/new/", t.path().display());
    let out = rdump_in(
        t.path(),
        &[image.as_os_str(), OsStr::new("-o"), OsStr::new(&dest)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(t.join("new.manifest.jsonl").is_file());
    assert_eq!(
        testkit::stdout(&out),
        format!("{}\n", t.join("new").display())
    );
}

#[test]
fn a_symlinked_dir_is_followed_unless_no_dereference() {
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("home/root")).unwrap();
    fs::write(tree.join("home/root/f"), b"x").unwrap();
    std::os::unix::fs::symlink("home/root", tree.join("root")).unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();

    let out = rdump_in(&tmp, &[image.as_os_str(), OsStr::new("/root")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let staged = Path::new(OsStr::new(
        std::str::from_utf8(&out.stdout).unwrap().trim_end(),
    ));
    assert_eq!(fs::read(staged.join("f")).unwrap(), b"x");

    let tmp2 = t.join("tmp2");
    fs::create_dir(&tmp2).unwrap();
    for flag in ["-P", "--no-dereference"] {
        let out = rdump_in(
            &tmp2,
            &[OsStr::new(flag), image.as_os_str(), OsStr::new("/root")],
        );
        assert_fatal(&out, "Not a directory (a symbolic link");
    }
    assert!(empty(&tmp2));
}

#[test]
fn missing_ok_makes_an_empty_tree_and_says_so() {
    let t = TempDir::new();
    let image = image(&t);
    let dest = t.join("stage");
    let out = testkit::run(
        Command::new(common::BIN)
            .args(["--missing-ok", "--json", "-o"])
            .arg(&dest)
            .arg(&image)
            .arg("/root"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["missing"], true);
    assert_eq!(summary["path"], dest.to_str().unwrap());
    assert!(empty(&dest));
    let manifest = fs::read_to_string(t.join("stage.manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 1, "{manifest}");
    assert!(manifest.starts_with(r#"{"record":"header""#), "{manifest}");
    // An existing DIR is extracted as usual, and says it was not missing.
    let out = testkit::run(
        Command::new(common::BIN)
            .args(["--missing-ok", "--json", "-o"])
            .arg(t.join("stage2"))
            .arg(&image)
            .arg("/dir"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["missing"], false);
}

/// Finding 9 of issue 15: a fifo as the image blocked `open` forever, and SIGTERM, whose
/// handler restarts the call, could not end it. Only a regular file or a block device is an
/// image: refused at once, by type, before any read.
#[test]
fn a_fifo_as_the_image_is_refused_at_once() {
    let t = TempDir::new();
    let fifo = t.join("image");
    testkit::mkfifo(&fifo);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out = testkit::run_within(
        Command::new(common::BIN)
            .env("TMPDIR", &tmp)
            .arg(&fifo)
            .arg("/root"),
        std::time::Duration::from_secs(10),
    );
    assert_fatal(
        &out,
        "not an image: a fifo, not a regular file or a block device",
    );
    assert!(empty(&tmp));
}
