//! Helpers shared by ext4-ls's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seedkit::records::LsEntry;
use testkit::{code, run, stderr, TempDir};

pub const BIN: &str = env!("CARGO_BIN_EXE_ext4-ls");

pub fn ls(args: &[&std::ffi::OsStr]) -> Output {
    run(Command::new(BIN).args(args))
}

/// The `--json` records of `ext4-ls [extra...] image dir`, which must succeed.
pub fn records(image: &Path, dir: &str, extra: &[&str]) -> Vec<LsEntry> {
    let out = run(Command::new(BIN)
        .args(extra)
        .arg("--json")
        .arg(image)
        .arg(dir));
    assert_eq!(code(&out), 0, "ext4-ls {extra:?} {dir}: {}", stderr(&out));
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("an LsEntry record"))
        .collect()
}

/// An image holding testkit's sample tree plus a character device and awkward names.
pub fn sample_image(t: &TempDir) -> PathBuf {
    let tree = t.join("tree");
    std::fs::create_dir(&tree).unwrap();
    testkit::fill_sample_tree(&tree, 300);
    std::fs::write(tree.join("with space"), b"s").unwrap();
    std::fs::write(tree.join("caf\u{e9}"), b"utf-8").unwrap();
    testkit::make_device(&tree.join("tty"), true, 0o620, (4, 300));
    let image = t.join("image.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&tree), &["-t", "ext4"]);
    image
}
