//! `--from-image`: a directory of another image written image to image: the kernel's view
//! of the result is the source directory's, the same bytes as the staged route give,
//! hostile source entries refused one by one, and file data shared with the source image
//! on a file system that shares blocks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::tree::{assert_same, Ignore};
use testkit::{code, e2fsck_clean, is_root, stderr, Mount, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

/// A seed image made as work-seed makes them: fixed UUID, hash seed and time.
fn seed_image(path: &Path, size: &str) {
    let out = testkit::run(
        testkit::tool("mkfs.ext4")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-N", "4096"])
            .args(["-U", "0b5c2a4e-7d3f-4a11-9e2b-5f6a7b8c9d0e"])
            .args(["-E", "root_owner=0:0,hash_seed=3e1f5d7c-2b4a-4c6e-8f01-23456789abcd,lazy_itable_init=1,nodiscard"])
            .env("E2FSPROGS_FAKE_TIME", "1700000000")
            .arg(path)
            .arg(size),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn ingest(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = testkit::run(
        Command::new(BIN)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(args),
    );
    (code(&out), stderr(&out))
}

/// A rootfs whose /root holds `fill`'s tree, made by mkfs.ext4 -d.
fn rootfs(t: &TempDir, fill: impl FnOnce(&Path)) -> PathBuf {
    let src = t.join("rootfs-src");
    fs::create_dir_all(src.join("root")).unwrap();
    fs::create_dir_all(src.join("etc")).unwrap();
    fill(&src.join("root"));
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "96M", Some(&src), &["-t", "ext4", "-b", "4096"]);
    image
}

/// Files whose zeros are data to the image but holes to a staged copy.
fn zeros_tree(root: &Path) {
    testkit::fill_sample_tree(root, 300);
    let mut big = vec![7u8; 3 << 20];
    big[(1 << 20)..(2 << 20)].fill(0);
    big[(2 << 20) + 100..(2 << 20) + 5000].fill(0);
    fs::write(root.join("zeros-inside"), big).unwrap();
    fs::write(root.join("all-zero"), vec![0u8; 200_000]).unwrap();
    testkit::write_at(&root.join("tail-hole"), 100_000, b"x");
}

#[test]
fn image_to_image_gives_the_bytes_of_the_staged_route() {
    let name = "image_to_image_gives_the_bytes_of_the_staged_route";
    let rdump = Path::new(BIN).with_file_name("ext4-rdump");
    if !testkit::need(name, &["mkfs.ext4"]) {
        return;
    }
    if !rdump.is_file() {
        testkit::skip(
            name,
            "ext4-rdump is not built (cargo test --workspace builds it)",
        );
        return;
    }
    let t = TempDir::new();
    let image = rootfs(&t, zeros_tree);
    let stage = t.join("stage");
    let out = testkit::run(
        Command::new(&rdump)
            .arg("-o")
            .arg(&stage)
            .arg(&image)
            .arg("/root"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let staged = t.join("staged.ext4");
    seed_image(&staged, "64M");
    let (rc, err) = ingest(&["--verify".as_ref(), staged.as_os_str(), stage.as_os_str()]);
    assert_eq!(rc, 0, "{err}");
    let direct = t.join("direct.ext4");
    seed_image(&direct, "64M");
    let (rc, err) = ingest(&[
        "--verify".as_ref(),
        direct.as_os_str(),
        "--from-image".as_ref(),
        image.as_os_str(),
        "/root".as_ref(),
    ]);
    assert_eq!(rc, 0, "{err}");
    e2fsck_clean(&direct).unwrap();
    assert!(
        fs::read(&staged).unwrap() == fs::read(&direct).unwrap(),
        "the staged and the image-to-image seeds differ"
    );
}

#[test]
fn the_kernel_sees_the_source_directory() {
    let name = "the_kernel_sees_the_source_directory";
    if !testkit::need(name, &["mkfs.ext4"]) {
        return;
    }
    if !is_root() {
        testkit::skip(name, "needs root (loop mounts)");
        return;
    }
    let t = TempDir::new();
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(
        &image,
        "96M",
        None,
        &["-t", "ext4", "-b", "4096", "-I", "256"],
    );
    {
        let m = Mount::image(&image, "rw").unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir(m.join("root")).unwrap();
        testkit::tarstream::pax_tree(&m.join("root"));
    }
    for (label, extra) in [("kept", &["--preserve-owner"][..]), ("forced", &[][..])] {
        let seed = t.join(format!("{label}.ext4"));
        seed_image(&seed, "64M");
        let mut args: Vec<&std::ffi::OsStr> = vec!["--verify".as_ref()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.extend([
            seed.as_os_str(),
            "--from-image".as_ref(),
            image.as_os_str(),
            "/root".as_ref(),
        ]);
        let (rc, err) = ingest(&args);
        assert_eq!(rc, 0, "{label}: {err}");
        let src = Mount::image(&image, "ro").unwrap_or_else(|e| panic!("{e}"));
        let dst = Mount::image(&seed, "ro").unwrap_or_else(|e| panic!("{e}"));
        let ignore = Ignore {
            owners: label == "forced",
            ..Ignore::default()
        };
        assert_same(
            &src.join("root"),
            dst.path(),
            &["lost+found"],
            ignore,
            label,
        );
        if label == "forced" {
            let view = testkit::tree::view(dst.path(), &[]);
            assert!(view.values().all(|n| n.uid == 0 && n.gid == 0));
        }
    }
}

#[test]
fn hostile_source_entries_are_refused_one_by_one() {
    if !testkit::need(
        "hostile_source_entries_are_refused_one_by_one",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = rootfs(&t, |root| {
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/f"), b"data").unwrap();
    });
    let script = "\
cd /root
mknod ../../escaped p
mknod dup p
mknod dup p
ln /root/d /root/d/sub/loop
ln /root/d/f /root/d/f2
";
    testkit::debugfs_script(&image, script);
    let seed = t.join("seed.ext4");
    seed_image(&seed, "32M");
    let (rc, err) = ingest(&[
        "--verify".as_ref(),
        seed.as_os_str(),
        "--from-image".as_ref(),
        image.as_os_str(),
        "/root".as_ref(),
    ]);
    assert_eq!(rc, 1, "{err}");
    for needle in [
        "'/../../escaped': name holds a slash",
        "'dup': a second entry of this name",
        "'d/sub/loop': directory inode",
        "'d/f2': inode",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    e2fsck_clean(&seed).unwrap();
}

#[test]
fn a_source_that_is_the_image_or_not_a_directory_is_refused() {
    if !testkit::need(
        "a_source_that_is_the_image_or_not_a_directory_is_refused",
        &["mkfs.ext4"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = rootfs(&t, |root| fs::write(root.join("f"), b"x").unwrap());
    let (rc, err) = ingest(&[
        image.as_os_str(),
        "--from-image".as_ref(),
        image.as_os_str(),
        "/root".as_ref(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("is the image being written"), "{err}");
    let seed = t.join("seed.ext4");
    seed_image(&seed, "16M");
    let (rc, err) = ingest(&[
        seed.as_os_str(),
        "--from-image".as_ref(),
        image.as_os_str(),
        "/root/f".as_ref(),
    ]);
    assert_eq!(rc, 2);
    assert!(err.contains("Not a directory"), "{err}");
}

#[test]
fn file_data_is_shared_with_the_source_on_xfs() {
    let name = "file_data_is_shared_with_the_source_on_xfs";
    if !testkit::need(name, &["mkfs.xfs", "mkfs.ext4"]) {
        return;
    }
    if !is_root() {
        testkit::skip(name, "needs root (a loop-mounted XFS with reflink)");
        return;
    }
    let xfs = Mount::loop_fs("xfs", &["-q", "-m", "reflink=1"], 1 << 30)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = TempDir::new();
    let src = t.join("src");
    fs::create_dir_all(src.join("root")).unwrap();
    let data: Vec<u8> = (0..(128u32 << 20)).map(|i| (i % 251) as u8 | 1).collect();
    fs::write(src.join("root/big"), &data).unwrap();
    let image = xfs.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "256M", Some(&src), &["-t", "ext4", "-b", "4096"]);
    let seed = xfs.join("seed.ext4");
    seed_image(&seed, "512M");
    testkit::run(&mut Command::new("sync"));
    let before = testkit::free_bytes(xfs.path());
    let (rc, err) = ingest(&[
        "--verify".as_ref(),
        seed.as_os_str(),
        "--from-image".as_ref(),
        image.as_os_str(),
        "/root".as_ref(),
    ]);
    assert_eq!(rc, 0, "{err}");
    testkit::run(&mut Command::new("sync"));
    let spent = before.saturating_sub(testkit::free_bytes(xfs.path()));
    assert!(
        spent < 32 << 20,
        "{spent} bytes of new blocks for 128 MiB of shared data"
    );
}

/// Finding 9 of issue 15, for the source added since: a fifo as `--from-image` blocked
/// `open` forever; only a regular file or a block device is an image, refused at once
/// otherwise, before the image written is touched.
#[test]
fn a_fifo_as_the_source_image_is_refused_at_once() {
    let t = TempDir::new();
    let seed = t.join("seed.img");
    testkit::mkfs_from_tree(&seed, "8M", None, &["-t", "ext4"]);
    let fifo = t.join("fifo");
    testkit::mkfifo(&fifo);
    let out = testkit::run_within(
        Command::new(BIN).arg("--from-image").arg(&fifo).arg(&seed),
        std::time::Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not an image: a fifo, not a regular file or a block device"),
        "{err}"
    );
    e2fsck_clean(&seed).unwrap();
}
