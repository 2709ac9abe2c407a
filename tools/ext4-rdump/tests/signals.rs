//! SIGINT, SIGTERM and SIGHUP in the middle of an extraction: the handler runs (exit 128 + N,
//! the reason on stderr), and the partial tree and its manifest are removed.

use std::fs;
use std::path::Path;
use std::process::Command;

use testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ext4-rdump");

/// An image of 12,000 small files in 40 directories: an extraction long enough to catch.
fn many_files_image(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("tree");
    for d in 0..40 {
        let dir = tree.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..300 {
            fs::write(dir.join(format!("f{f:03}")), format!("{d}/{f}")).unwrap();
        }
    }
    let image = t.join("many.ext4");
    testkit::mkfs_from_tree(&image, "64M", Some(&tree), &["-t", "ext4"]);
    image
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
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
            |_| {
                entries(&dest)
                    .iter()
                    .any(|d| entries(&dest.join(d)).len() > 10)
            },
        );
        testkit::assert_interrupted(&out, signal, "ext4-rdump");
        assert!(
            entries(&out_dir).is_empty(),
            "left after {signal}: {:?}",
            entries(&out_dir)
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
                entries(&tmp).iter().any(|s| {
                    let tree = tmp.join(s).join("tree");
                    entries(&tree)
                        .iter()
                        .any(|d| entries(&tree.join(d)).len() > 10)
                })
            },
        );
        testkit::assert_interrupted(&out, signal, "ext4-rdump");
        assert!(
            entries(&tmp).is_empty(),
            "left in TMPDIR after {signal}: {:?}",
            entries(&tmp)
        );
    }
}
