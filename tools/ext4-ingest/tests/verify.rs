//! `--verify` is only worth its name if it catches an image that does not hold the tree.
//! Here ext4-ingest's test hook stops it once the image is written and before it reads the
//! image back, and one data block of a written file is changed on disk: the verification
//! must fail, name the file, and say the content differs.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{code, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// Run `ext4-ingest --verify` with its test hook (`EXT4_INGEST_TEST_PAUSE`): at every pause
/// it is let go at once, except at `written IMAGE` (the image is written, not yet read
/// back), where `after(image)` runs first. Returns the output, the image, and whether the
/// `written` pause came.
fn ingest_verify(t: &TempDir, after: &dyn Fn(&Path)) -> (std::process::Output, PathBuf, bool) {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("d")).unwrap();
    let data: Vec<u8> = (0..16_384u32).map(|i| (i * 7 % 251) as u8 | 1).collect();
    fs::write(tree.join("d/victim"), &data).unwrap();
    fs::write(tree.join("other"), b"left alone").unwrap();
    let image = t.join("image.ext4");
    testkit::mkfs_from_tree(&image, "16M", None, &["-t", "ext4", "-b", "4096"]);
    let hook = t.join("hook");
    fs::create_dir(&hook).unwrap();
    for name in ["paused", "resume"] {
        nix::unistd::mkfifo(
            &hook.join(name),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    // Held open for the whole run, so ext4-ingest never waits to say it paused.
    let mut paused = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(hook.join("paused"))
        .unwrap();
    let mut child = testkit::spawn(
        Command::new(BIN)
            .arg("--verify")
            .arg(&image)
            .arg(&tree)
            .env("EXT4_INGEST_TEST_PAUSE", &hook)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut said = Vec::new();
    let mut written = false;
    loop {
        if let Some(end) = said.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = said.drain(..=end).collect();
            if line.starts_with(b"written ") {
                written = true;
                after(&image);
            }
            fs::OpenOptions::new()
                .write(true)
                .open(hook.join("resume"))
                .unwrap()
                .write_all(b"go\n")
                .unwrap();
            continue;
        }
        let mut buf = [0u8; 4096];
        match paused.read(&mut buf) {
            Ok(n) if n > 0 => {
                said.extend_from_slice(&buf[..n]);
                continue;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading the fifo: {e}"),
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child.wait_with_output().unwrap(), image, written)
}

#[test]
fn verify_catches_a_data_block_changed_after_the_write() {
    let t = TempDir::new();
    // debugfs's `bmap` gives the physical block of the file's first block; one byte of it
    // is overwritten in place.
    let corrupt = |image: &Path| {
        let blk: u64 = testkit::debugfs(image, "bmap /d/victim 0")
            .trim()
            .parse()
            .unwrap();
        let f = fs::OpenOptions::new().write(true).open(image).unwrap();
        f.write_all_at(b"Z", blk * 4096 + 100).unwrap();
    };
    let (out, _, written) = ingest_verify(&t, &corrupt);
    assert!(
        written,
        "ext4-ingest never paused between writing and verifying"
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "verify passed a corrupted image: {err}");
    assert!(
        err.contains("'d/victim'") && err.contains("content differs"),
        "{err}"
    );
    assert!(err.contains("the image differs from the source"), "{err}");
}

#[test]
fn verify_passes_the_same_run_without_the_corruption() {
    // The control: the pause alone changes nothing.
    let t = TempDir::new();
    let (out, image, written) = ingest_verify(&t, &|_| {});
    assert!(written);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    testkit::e2fsck_clean(&image).unwrap();
}
