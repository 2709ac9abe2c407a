//! SIGINT, SIGTERM and SIGHUP in the middle of an extraction: the handler runs (exit 128 + N,
//! the reason on stderr), and the partial tree and its manifest are removed.

use std::fs;
use std::process::Command;

use testkit::{names, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-rdump");

/// An image of 12,000 small files in 40 directories: an extraction long enough to catch.
fn many_files_image(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("tree");
    testkit::many_files(&tree, 40, 300);
    let image = t.join("many.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&tree), &["-t", "ext4"]);
    image
}

#[test]
fn a_signal_midway_removes_the_partial_tree_and_manifest() {
    let t = TempDir::new();
    let image = many_files_image(&t);
    let out_dir = t.join("out");
    fs::create_dir(&out_dir).unwrap();
    for signal in testkit::TERMINATING {
        let dest = out_dir.join("stage");
        // Half-way: some directory of the tree holds files already.
        let out = testkit::signal_when(
            Command::new(BIN).arg("-o").arg(&dest).arg(&image),
            signal,
            |_| names(&dest).iter().any(|d| names(&dest.join(d)).len() > 10),
        );
        testkit::assert_interrupted(&out, signal, "ext4-rdump");
        assert!(
            names(&out_dir).is_empty(),
            "left after {signal}: {:?}",
            names(&out_dir)
        );
    }
}

#[test]
fn a_signal_midway_leaves_nothing_in_tmpdir() {
    let t = TempDir::new();
    let image = many_files_image(&t);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    for signal in testkit::TERMINATING {
        let out = testkit::signal_when(
            Command::new(BIN).arg(&image).env("TMPDIR", &tmp),
            signal,
            |_| {
                names(&tmp).iter().any(|s| {
                    let tree = tmp.join(s).join("tree");
                    names(&tree).iter().any(|d| names(&tree.join(d)).len() > 10)
                })
            },
        );
        testkit::assert_interrupted(&out, signal, "ext4-rdump");
        assert!(
            names(&tmp).is_empty(),
            "left in TMPDIR after {signal}: {:?}",
            names(&tmp)
        );
    }
}
