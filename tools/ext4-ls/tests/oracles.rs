//! The listing against two independent readers of the same image: debugfs's `ls -p`, and
//! the kernel's own view of the image mounted read-only.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{records, sample_image};
use seedkit::records::{EntryKind, LsEntry};
use testkit::{run, sha256sum, TempDir};

/// `debugfs -R "ls -p DIR"`: `/ino/mode/uid/gid/name/size/` per entry, keyed by name.
fn debugfs_ls(image: &Path, dir: &str) -> BTreeMap<Vec<u8>, (u32, u32, u32, u32, String)> {
    let out = run(testkit::tool("debugfs")
        .arg("-R")
        .arg(format!("ls -p \"{dir}\""))
        .arg(image));
    let mut map = BTreeMap::new();
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let fields: Vec<&[u8]> = line.split(|&b| b == b'/').collect();
        assert_eq!(fields.len(), 8, "{}", String::from_utf8_lossy(line));
        let num =
            |f: &[u8], radix| u32::from_str_radix(std::str::from_utf8(f).unwrap(), radix).unwrap();
        let name = fields[5].to_vec();
        // `ls -p` also shows the empty slots (inode 0) of lost+found's preallocated blocks.
        if name == b"." || name == b".." || num(fields[1], 10) == 0 {
            continue;
        }
        let size = String::from_utf8(fields[6].to_vec()).unwrap();
        map.insert(
            name,
            (
                num(fields[1], 10),
                num(fields[2], 8),
                num(fields[3], 10),
                num(fields[4], 10),
                size,
            ),
        );
    }
    map
}

#[test]
fn every_directory_lists_as_debugfs_ls_shows_it() {
    let t = TempDir::new();
    let image = sample_image(&t);
    let all = records(&image, "/", &["-R"]);
    let mut dirs = vec![String::from("/")];
    dirs.extend(
        all.iter()
            .filter(|e| e.kind == EntryKind::Directory)
            .map(|e| format!("/{}", String::from_utf8(e.path.0.clone()).unwrap())),
    );
    assert!(dirs.len() >= 7, "{dirs:?}");
    for dir in &dirs {
        let ours = records(&image, dir, &[]);
        let theirs = debugfs_ls(&image, dir);
        let names: Vec<&Vec<u8>> = ours.iter().map(|e| &e.path.0).collect();
        assert_eq!(names, theirs.keys().collect::<Vec<_>>(), "names in {dir}");
        for e in &ours {
            let (ino, mode, uid, gid, size) = &theirs[&e.path.0];
            let shown = String::from_utf8_lossy(&e.path.0);
            assert_eq!(e.ino, *ino, "{dir} {shown}");
            assert_eq!(e.kind.type_bits() | e.mode, *mode, "{dir} {shown}");
            assert_eq!((e.uid, e.gid), (*uid, *gid), "{dir} {shown}");
            if e.kind != EntryKind::Directory {
                assert_eq!(e.size.to_string(), *size, "{dir} {shown}");
            }
        }
    }
}

/// A device's numbers against the kernel's.
fn check_device(e: &LsEntry, m: &std::fs::Metadata, host: &Path) {
    let rdev = e.rdev.expect("device numbers");
    let (major, minor) = (
        nix::sys::stat::major(m.rdev()),
        nix::sys::stat::minor(m.rdev()),
    );
    assert_eq!(
        (u64::from(rdev.major), u64::from(rdev.minor)),
        (major, minor),
        "{}",
        host.display()
    );
}

/// The digest of `--hash` against the bytes the kernel reads from `host`, computed by an
/// independent implementation; and against sha256sum's own for a file without an all-zero
/// 4 KiB piece. Whether the file has one.
fn check_digest(e: &LsEntry, host: &Path) -> bool {
    let want = testkit::content_digest(host);
    assert_eq!(
        e.digest.as_deref(),
        Some(want.as_str()),
        "{}",
        host.display()
    );
    let sparse = testkit::has_zero_piece(host);
    if !sparse {
        assert_eq!(want, sha256sum(host), "{}", host.display());
    }
    sparse
}

#[test]
fn every_entry_agrees_with_the_kernel_mounting_the_image() {
    let t = TempDir::new();
    let image = sample_image(&t);
    // mkfs.ext4 -d keeps whole seconds: give one file nanoseconds (123456789 << 2).
    let out = run(testkit::tool("debugfs")
        .args(["-w", "-R", "sif /small mtime_extra 0x1d6f3454"])
        .arg(&image));
    assert!(out.status.success());
    let mount = match testkit::Mount::image(&image, "ro") {
        Ok(m) => m,
        Err(why) => {
            testkit::skip(
                "every_entry_agrees_with_the_kernel_mounting_the_image",
                &why,
            );
            return;
        }
    };
    let entries: Vec<LsEntry> = records(&image, "/", &["-R", "--hash"]);
    let mut seen = 0;
    let (mut dense, mut sparse) = (0, 0);
    for e in &entries {
        let host = mount.join(std::ffi::OsStr::from_bytes(&e.path.0));
        let shown = host.display();
        let m = std::fs::symlink_metadata(&host).unwrap_or_else(|err| panic!("{shown}: {err}"));
        assert_eq!(e.kind.type_bits() | e.mode, m.mode(), "{shown}");
        assert_eq!(
            (e.uid, e.gid, u64::from(e.links)),
            (m.uid(), m.gid(), m.nlink()),
            "{shown}"
        );
        assert_eq!(u64::from(e.ino), m.ino(), "{shown}");
        assert_eq!(e.size, m.size(), "{shown}");
        assert_eq!(
            (e.mtime.sec, i64::from(e.mtime.nsec)),
            (m.mtime(), m.mtime_nsec()),
            "{shown}"
        );
        assert_eq!(
            (e.ctime.sec, i64::from(e.ctime.nsec)),
            (m.ctime(), m.ctime_nsec()),
            "{shown}"
        );
        if m.file_type().is_symlink() {
            let target = std::fs::read_link(&host).unwrap();
            assert_eq!(
                e.target.as_ref().unwrap().0,
                target.as_os_str().as_bytes(),
                "{shown}"
            );
        }
        if m.file_type().is_char_device() || m.file_type().is_block_device() {
            check_device(e, &m, &host);
            seen += 1;
        }
        if m.file_type().is_file() {
            let counted = if check_digest(e, &host) {
                &mut sparse
            } else {
                &mut dense
            };
            *counted += 1;
        }
        for name in &e.xattrs {
            let name = std::str::from_utf8(&name.0).unwrap();
            assert!(testkit::get_xattr(&host, name).is_some(), "{shown}: {name}");
        }
    }
    assert_eq!(seen, 1, "the character device was checked");
    assert!(
        dense > 10 && sparse > 0,
        "{dense} dense and {sparse} sparse files"
    );
    let small = entries.iter().find(|e| e.path.0 == b"small").unwrap();
    assert_eq!(small.mtime.nsec, 123_456_789);
    // The same names as the kernel's walk of the mount.
    let mut kernel: Vec<Vec<u8>> = walkdir::WalkDir::new(mount.path())
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .strip_prefix(mount.path())
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect();
    kernel.sort();
    let mut ours: Vec<Vec<u8>> = entries.iter().map(|e| e.path.0.clone()).collect();
    ours.sort();
    assert_eq!(ours, kernel);
    assert!(
        entries.iter().any(|e| !e.xattrs.is_empty()),
        "xattrs were listed"
    );
}
