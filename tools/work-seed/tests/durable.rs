//! When work-seed or work-disk exits 0, OUTPUT is durable: the image was flushed before it
//! was renamed onto OUTPUT, and OUTPUT's directory after (strace shows the order). Before,
//! the image was renamed unflushed and the directory never flushed: after a power loss the
//! name could be missing, or point at a seed whose blocks never reached the disk.

use std::fs;
use std::process::Command;

use testkit::{code, stderr, TempDir};

use crate::common;

fn traced(cmd: &Command, test: &str) -> Option<Vec<String>> {
    let Some((out, trace)) = testkit::trace::strace(cmd, testkit::trace::PUBLISH_CALLS) else {
        testkit::skip(test, "strace is not installed");
        return None;
    };
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    Some(trace)
}

#[test]
fn work_seed_flushes_the_seed_renames_it_then_flushes_the_directory() {
    let t = TempDir::new();
    let rootfs = common::sample_rootfs(&t);
    let seed = t.join("seed.ext4");
    let mut cmd = common::work_seed_command();
    cmd.arg(&rootfs).arg(&seed);
    let Some(trace) = traced(
        &cmd,
        "work_seed_flushes_the_seed_renames_it_then_flushes_the_directory",
    ) else {
        return;
    };
    testkit::trace::assert_published_durably(&trace, "/.work-seed.", "seed", t.path(), "seed.ext4");
    testkit::e2fsck_clean(&seed).unwrap();
}

#[test]
fn work_disk_flushes_the_disk_renames_it_then_flushes_the_directory() {
    let t = TempDir::new();
    let seed = common::small_seed(&t);
    for force in [false, true] {
        let disk = t.join("vm.ext4");
        let mut cmd = common::work_disk_command();
        if force {
            fs::write(&disk, b"old").unwrap();
            cmd.arg("--force");
        }
        cmd.args(["--size", "128M"]).arg(&seed).arg(&disk);
        let Some(trace) = traced(
            &cmd,
            "work_disk_flushes_the_disk_renames_it_then_flushes_the_directory",
        ) else {
            return;
        };
        testkit::trace::assert_published_durably(
            &trace,
            "/.work-disk.",
            "disk",
            t.path(),
            "vm.ext4",
        );
        testkit::e2fsck_clean(&disk).unwrap();
    }
}
