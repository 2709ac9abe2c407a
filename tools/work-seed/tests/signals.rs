//! SIGINT, SIGTERM and SIGHUP during a build: the script's handler runs (exit 128 + N, the
//! reason on stderr), no step goes on, and nothing is left at OUTPUT, beside it or in TMPDIR.

use std::fs;

use testkit::TempDir;

use crate::common;
use common::{rootfs_from, temp_files_in, work_seed_command};

#[test]
fn a_signal_midway_stops_every_step_and_leaves_nothing() {
    let t = TempDir::new();
    let tree = t.join("tree");
    testkit::many_files(&tree.join("root"), 20, 300);
    let rootfs = rootfs_from(&t, &tree, "64M");
    let seed = t.join("seed.ext4");
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    for signal in testkit::TERMINATING {
        // The temporary image exists from before the first step until the rename.
        let out = testkit::signal_when(
            work_seed_command()
                .arg(&rootfs)
                .arg(&seed)
                .env("TMPDIR", &tmp),
            signal,
            |_| !temp_files_in(t.path()).is_empty(),
        );
        testkit::assert_interrupted(&out, signal, "work-seed");
        assert!(!seed.exists(), "an output after {signal}");
        assert!(temp_files_in(t.path()).is_empty(), "after {signal}");
        let left: Vec<_> = fs::read_dir(&tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in TMPDIR after {signal}: {left:?}");
        let users = testkit::processes_using(t.path());
        assert!(users.is_empty(), "still at work after {signal}: {users:?}");
    }
}

#[test]
fn a_signal_midway_through_work_disk_leaves_nothing_and_says_so() {
    // work-disk's exit status and message after a signal are work-seed's (one library).
    let t = TempDir::new();
    let seed = common::small_seed(&t);
    let out_dir = t.join("out");
    fs::create_dir(&out_dir).unwrap();
    let disk = out_dir.join("vm.ext4");
    for signal in testkit::TERMINATING {
        let out = testkit::signal_when(
            common::work_disk_command()
                .args(["--size", "4G"])
                .arg(&seed)
                .arg(&disk),
            signal,
            |_| fs::read_dir(&out_dir).unwrap().next().is_some(),
        );
        testkit::assert_interrupted(&out, signal, "work-disk");
        assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0, "after {signal}");
    }
}
