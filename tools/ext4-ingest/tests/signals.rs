//! SIGINT, SIGTERM and SIGHUP while ext4-ingest writes an image: the handler runs (exit
//! 128 + N, the reason on stderr, which says the image must be rebuilt), its scratch is
//! removed from TMPDIR, and nothing it started goes on writing the image.

use std::fs;
use std::process::Command;

use testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

#[test]
fn a_signal_midway_stops_everything_and_leaves_no_scratch() {
    let t = TempDir::new();
    // 12,000 small files: a run long enough to catch.
    let tree = t.join("tree");
    testkit::many_files(&tree, 40, 300);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    for signal in testkit::TERMINATING {
        let image = t.join(format!("{}.ext4", signal.as_str()));
        testkit::mkfs_from_tree(&image, "128M", None, &["-t", "ext4", "-N", "20000"]);
        // Half-way: it has begun handing its output on (to debugfs, or to the image).
        let out = testkit::signal_when(
            Command::new(BIN).arg(&image).arg(&tree).env("TMPDIR", &tmp),
            signal,
            |pid| testkit::bytes_written_by(pid) > 64 << 10,
        );
        testkit::assert_interrupted(&out, signal, "ext4-ingest");
        assert!(
            testkit::stderr(&out).contains("rebuild it"),
            "{}",
            testkit::stderr(&out)
        );
        let left: Vec<_> = fs::read_dir(&tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in TMPDIR after {signal}: {left:?}");
        let users = testkit::processes_using(&image);
        assert!(users.is_empty(), "still at work after {signal}: {users:?}");
    }
}
