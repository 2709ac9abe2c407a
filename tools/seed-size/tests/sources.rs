//! The other sources: a directory of an image (`--from-image`) and `ext4-ls --json`
//! records (`--from-ls-json`) give the record the host tree gives: the same counts, size
//! and inode figure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use seedkit::records::SeedSize;
use testkit::{code, run, run_with_stdin, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_seed-size");

fn record(out: &std::process::Output) -> SeedSize {
    assert_eq!(code(out), 0, "{}", stderr(out));
    seedkit::records::parse(&out.stdout).expect("one seed-size record")
}

/// A tree with every kind a seed holds, and its image (mkfs.ext4 -d) holding it at /root.
fn tree_and_image(t: &TempDir) -> (PathBuf, PathBuf) {
    let rootfs = t.join("rootfs");
    let tree = rootfs.join("root");
    fs::create_dir_all(&tree).unwrap();
    testkit::fill_sample_tree(&tree, 200);
    fs::create_dir(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/other"), vec![1u8; 50_000]).unwrap();
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&rootfs), &["-t", "ext4", "-b", "4096"]);
    (tree, image)
}

fn same_figures(a: &SeedSize, b: &SeedSize, what: &str) {
    assert_eq!(a.counts, b.counts, "{what}: counts");
    assert_eq!(a.size_bytes, b.size_bytes, "{what}: size");
    assert_eq!(a.inodes, b.inodes, "{what}: inodes");
}

#[test]
fn an_image_directory_measures_as_its_tree() {
    if !testkit::need("an_image_directory_measures_as_its_tree", &["mkfs.ext4"]) {
        return;
    }
    let t = TempDir::new();
    let (tree, image) = tree_and_image(&t);
    let host = record(&run(Command::new(BIN).arg("--json").arg(&tree)));
    let from_image = record(&run(Command::new(BIN)
        .args(["--json", "--from-image"])
        .arg(&image)
        .arg("/root")));
    same_figures(&host, &from_image, "--from-image");
    assert_eq!(from_image.path.0, image.as_os_str().as_encoded_bytes());
    // The sparse file's holes are not counted as data.
    assert!(from_image.allocated_bytes < host.counts.bytes);
    // The whole image by default.
    let whole = record(&run(Command::new(BIN)
        .args(["--json", "--from-image"])
        .arg(&image)));
    assert!(whole.counts.files > host.counts.files);
}

#[test]
fn an_image_directory_that_is_a_symlink_or_missing_is_refused() {
    if !testkit::need(
        "an_image_directory_that_is_a_symlink_or_missing_is_refused",
        &["mkfs.ext4"],
    ) {
        return;
    }
    let t = TempDir::new();
    let rootfs = t.join("rootfs");
    fs::create_dir_all(rootfs.join("home")).unwrap();
    std::os::unix::fs::symlink("home", rootfs.join("root")).unwrap();
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "8M", Some(&rootfs), &["-t", "ext4"]);
    for (dir, why) in [
        ("/root", "Not a directory"),
        ("/nowhere", "finding '/nowhere'"),
    ] {
        let out = run(Command::new(BIN).arg("--from-image").arg(&image).arg(dir));
        assert_eq!(code(&out), 2, "{dir}");
        assert!(stderr(&out).contains(why), "{dir}: {}", stderr(&out));
    }
}

/// ext4-ls, built beside seed-size by `cargo test --workspace`.
fn ext4_ls() -> Option<PathBuf> {
    let ls = Path::new(BIN).with_file_name("ext4-ls");
    ls.is_file().then_some(ls)
}

#[test]
fn ext4_ls_records_measure_as_the_tree() {
    let name = "ext4_ls_records_measure_as_the_tree";
    if !testkit::need(name, &["mkfs.ext4"]) {
        return;
    }
    let Some(ls) = ext4_ls() else {
        testkit::skip(
            name,
            "ext4-ls is not built (cargo test --workspace builds it)",
        );
        return;
    };
    let t = TempDir::new();
    let (tree, image) = tree_and_image(&t);
    let listed = run(Command::new(ls)
        .args(["-R", "--json"])
        .arg(&image)
        .arg("/root"));
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let host = record(&run(Command::new(BIN).arg("--json").arg(&tree)));
    let out = run_with_stdin(
        Command::new(BIN).args(["--json", "--from-ls-json"]),
        &listed.stdout,
    );
    let from_ls = record(&out);
    same_figures(&host, &from_ls, "--from-ls-json");
    // Not a record of ext4-ls: refused, naming the record.
    let out = run_with_stdin(
        Command::new(BIN).arg("--from-ls-json"),
        b"{\"format\":\"seed-size\",\"version\":1}\n",
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("reading ext4-ls record 1"),
        "{}",
        stderr(&out)
    );
}

/// Finding 9 of issue 15, for the source added since: a fifo as the image blocked `open`
/// forever; only a regular file or a block device is an image, refused at once otherwise.
#[test]
fn a_fifo_as_the_image_is_refused_at_once() {
    let t = TempDir::new();
    let fifo = t.join("fifo");
    testkit::mkfifo(&fifo);
    let out = testkit::run_within(
        Command::new(BIN).arg("--from-image").arg(&fifo),
        std::time::Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not an image: a fifo, not a regular file or a block device"),
        "{err}"
    );
}
