//! When ext4-ingest exits 0 the image is on stable storage: flushed after its last write,
//! unless the caller asked for `--no-sync` (work-seed, which flushes before it publishes).

use std::fs;
use std::process::Command;

use testkit::{code, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

#[test]
fn the_image_is_flushed_after_its_last_write_unless_no_sync() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    fs::write(tree.join("d/f"), vec![7u8; 100_000]).unwrap();
    for no_sync in [false, true] {
        let img = t.join(format!("seed{no_sync}.img"));
        testkit::mkfs_from_tree(&img, "16M", None, &["-t", "ext4"]);
        let mut cmd = Command::new(BIN);
        if no_sync {
            cmd.arg("--no-sync");
        }
        cmd.arg(&img).arg(&tree);
        let calls = "write,pwrite64,pwritev,writev,fsync,fdatasync";
        let Some((out, trace)) = testkit::trace::strace(&cmd, calls) else {
            testkit::skip(
                "the_image_is_flushed_after_its_last_write_unless_no_sync",
                "strace is not installed",
            );
            return;
        };
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let flushed = testkit::trace::flushed_after_writes(&trace, &img);
        assert_eq!(
            flushed,
            !no_sync,
            "--no-sync {no_sync}:\n{}",
            trace.join("\n")
        );
        testkit::e2fsck_clean(&img).unwrap();
    }
}
