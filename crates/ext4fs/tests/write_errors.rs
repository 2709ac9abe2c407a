//! The writer's refusals and limits: each typed error on a real image, determinism, and
//! corrupt images (no panic, a typed error).

use std::fs;
use std::io::Cursor;
use std::path::Path;

use ext4fs::write::{Dense, DirIno, Meta, WriteError, Writer, ROOT};
use ext4fs::Ino;
use testkit::{debugfs, e2fsck_clean, have, mkfs_from_tree, TempDir};

fn open(image: &Path) -> Result<Writer, WriteError> {
    Writer::open(
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)
            .unwrap(),
    )
}

fn ready() -> bool {
    if have("mke2fs") && have("e2fsck") && have("debugfs") {
        return true;
    }
    testkit::skip("writer errors", "e2fsprogs is not installed");
    false
}

fn file(w: &mut Writer, parent: DirIno, name: &str, data: &[u8]) -> Result<Ino, WriteError> {
    w.add_file(
        parent,
        name.as_bytes(),
        &Meta::default().with_mode(0o644),
        &mut Dense(Cursor::new(data.to_vec())),
    )
}

#[test]
fn features_it_does_not_handle_are_refused_by_name() {
    if !ready() {
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    for (opts, name) in [
        (
            &["-t", "ext4", "-O", "meta_bg,^resize_inode"][..],
            "meta_bg",
        ),
        (&["-t", "ext4", "-O", "bigalloc"][..], "bigalloc"),
        (&["-t", "ext4", "-O", "quota"][..], "quota"),
        (&["-t", "ext4", "-O", "mmp"][..], "mmp"),
    ] {
        mkfs_from_tree(&image, "64M", None, opts);
        let err = open(&image).err().expect("refused");
        assert!(
            matches!(&err, WriteError::Unsupported { feature } if feature.contains(name)),
            "{opts:?}: {err}"
        );
    }
    mkfs_from_tree(&image, "64M", None, &["-t", "ext4"]);
    let out = testkit::run(
        testkit::tool("debugfs")
            .args(["-w", "-R", "feature needs_recovery"])
            .arg(&image),
    );
    assert!(out.status.success());
    let err = open(&image).err().expect("refused");
    assert!(err.to_string().contains("needs_recovery"), "{err}");
}

#[test]
fn bad_names_and_duplicates_are_refused_and_leave_nothing() {
    if !ready() {
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    mkfs_from_tree(&image, "64M", None, &["-t", "ext4"]);
    let mut w = open(&image).unwrap();
    let long = "x".repeat(256);
    for name in ["", ".", "..", "a/b", "lost+found", long.as_str()] {
        let err = file(&mut w, ROOT, name, b"data").unwrap_err();
        assert!(
            matches!(err, WriteError::EntryRefused { .. }),
            "{name:?}: {err}"
        );
    }
    let err = file(&mut w, ROOT, "nul\0", b"").unwrap_err();
    assert!(matches!(err, WriteError::EntryRefused { .. }));
    let mut m = Meta::default();
    m.xattrs.push(ext4fs::Xattr {
        name: b"os2.weird".to_vec(),
        value: b"v".to_vec(),
    });
    let err = w.mkdir(ROOT, b"d", &m).unwrap_err();
    assert!(err.to_string().contains("namespace os2,"), "{err}");
    let err = w.symlink(ROOT, b"s", &[b'a'; 5000], &m).unwrap_err();
    assert!(matches!(err, WriteError::EntryRefused { .. }));
    file(&mut w, ROOT, "ok", b"fine").unwrap();
    w.finish().unwrap();
    e2fsck_clean(&image).unwrap();
    let ls = debugfs(&image, "ls /");
    assert!(ls.contains("ok") && ls.contains("lost+found"), "{ls}");
}

#[test]
fn a_full_image_is_out_of_space_and_out_of_inodes() {
    if !ready() {
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    mkfs_from_tree(&image, "8M", None, &["-t", "ext4", "-N", "64"]);
    let mut w = open(&image).unwrap();
    let big = vec![7u8; 16 << 20];
    assert!(matches!(
        file(&mut w, ROOT, "big", &big),
        Err(WriteError::OutOfSpace)
    ));
    let mut w = open(&image).unwrap();
    let err = (0..200)
        .map(|i| file(&mut w, ROOT, &format!("f{i}"), b""))
        .find_map(Result::err)
        .expect("inodes run out");
    assert!(matches!(err, WriteError::OutOfInodes), "{err}");
}

#[test]
fn the_same_calls_give_the_same_bytes() {
    if !ready() {
        return;
    }
    let dir = TempDir::new();
    let mut images = Vec::new();
    for n in 0..2 {
        let image = dir.join(format!("fs{n}.img"));
        mkfs_from_tree(
            &image,
            "32M",
            None,
            &[
                "-t",
                "ext4",
                "-U",
                "01234567-89ab-cdef-0123-456789abcdef",
                "-E",
                "hash_seed=01234567-89ab-cdef-0123-456789abcdef,nodiscard",
            ],
        );
        let mut w = open(&image).unwrap();
        let d = w
            .mkdir(ROOT, b"d", &Meta::default().with_mode(0o755))
            .unwrap();
        for i in 0..300 {
            file(&mut w, d, &format!("file-{i}"), format!("{i}").as_bytes()).unwrap();
        }
        w.finish().unwrap();
        images.push(fs::read(&image).unwrap());
    }
    assert!(images[0] == images[1], "two runs differ");
}

/// Corrupt descriptors, bitmaps and superblock fields: the writer returns an error or
/// writes something, never panics.
#[test]
fn corrupt_images_give_errors_not_panics() {
    if !ready() {
        return;
    }
    let dir = TempDir::new();
    let clean = dir.join("clean.img");
    mkfs_from_tree(
        &clean,
        "16M",
        None,
        &["-t", "ext4", "-b", "1024", "-O", "^metadata_csum"],
    );
    let pristine = fs::read(&clean).unwrap();
    let image = dir.join("bad.img");
    // Descriptor table (block 2 with 1 KiB blocks), superblock counts, the root's inode.
    let mut spots: Vec<usize> = (2048..2048 + 256).step_by(3).collect();
    spots.extend([1024, 1028, 1032, 1036, 1056, 1064, 1112, 1114, 1278]);
    for (n, &at) in spots.iter().enumerate() {
        for value in [0u8, 0xff, 0x80] {
            let mut bytes = pristine.clone();
            bytes[at] = value;
            bytes[at + 1] ^= (n as u8) | 1;
            fs::write(&image, &bytes).unwrap();
            let Ok(mut w) = open(&image) else { continue };
            let d = w.mkdir(ROOT, b"d", &Meta::default());
            if let Ok(d) = d {
                let _ = file(&mut w, d, "f", &[1u8; 5000]);
            }
            let _ = w.finish();
        }
    }
}
