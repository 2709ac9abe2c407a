//! The reader against images made by the real `mkfs.ext4 -d` from a generated tree, across
//! the feature matrix: every entry read back must match the host tree.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use ext4fs::{Backing, Content, EntryKind, Fs, Ino, Inode};
use testkit::{fill_sample_tree, mkfs_from_tree, TempDir};

struct Seen {
    inode: Inode,
    data: Option<Vec<u8>>,
    holes: u64,
    target: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn read_all(fs: &Fs, inode: &Inode) -> (Vec<u8>, u64) {
    match fs.content(inode).unwrap() {
        Content::Inline(d) => (d, 0),
        Content::Runs(runs) => {
            let bs = u64::from(fs.block_size());
            let mut out = vec![0u8; inode.size as usize];
            let mut holes = 0;
            for r in runs {
                let start = (r.logical * bs) as usize;
                let end = ((r.logical + r.len) * bs).min(inode.size) as usize;
                match r.backing {
                    Backing::Data { physical } => {
                        fs.read_blocks(physical, &mut out[start..end]).unwrap();
                    }
                    Backing::Hole => holes += r.len,
                    Backing::Unwritten => {}
                }
            }
            (out, holes)
        }
    }
}

fn walk(fs: &Fs, ino: Ino, prefix: &[u8], out: &mut BTreeMap<Vec<u8>, Seen>) {
    let dir = fs.inode(ino).unwrap();
    for e in fs.read_dir(&dir).unwrap() {
        if e.name == b"." || e.name == b".." || e.name == b"lost+found" {
            continue;
        }
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&e.name);
        let inode = fs.inode(e.ino).unwrap();
        let xattrs = fs
            .xattrs(&inode)
            .unwrap()
            .into_iter()
            .map(|x| (x.name, x.value))
            .collect();
        let mut seen = Seen {
            data: None,
            holes: 0,
            target: None,
            xattrs,
            inode: inode.clone(),
        };
        match inode.kind().unwrap() {
            EntryKind::Directory => walk(fs, e.ino, &path, out),
            EntryKind::File => {
                let (d, h) = read_all(fs, &inode);
                // The streaming reader gives the same bytes, holes as zeros.
                let mut streamed = vec![0u8; inode.size as usize];
                fs.for_each_chunk(&inode, &mut |off, bytes| {
                    streamed[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
                    true
                })
                .unwrap();
                assert!(streamed == d);
                seen.data = Some(d);
                seen.holes = h;
            }
            EntryKind::Symlink => seen.target = Some(fs.symlink_target(&inode).unwrap()),
            _ => {}
        }
        assert!(out.insert(path, seen).is_none());
    }
}

fn check(extra: &[&str], size: &str) {
    if !testkit::need(&format!("mkfs_images {extra:?}"), &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fill_sample_tree(&tree, 400);
    let image = t.join("img");
    mkfs_from_tree(&image, size, Some(&tree), extra);
    let fs = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let mut seen = BTreeMap::new();
    walk(&fs, Ino::ROOT, b"", &mut seen);

    let mut host_count = 0;
    let mut groups: HashMap<u64, Ino> = HashMap::new();
    for entry in walkdir::WalkDir::new(&tree).min_depth(1) {
        let entry = entry.unwrap();
        host_count += 1;
        let rel = entry
            .path()
            .strip_prefix(&tree)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let meta = entry.path().symlink_metadata().unwrap();
        let s = seen
            .get(&rel)
            .unwrap_or_else(|| panic!("{extra:?}: missing {rel:?}"));
        let what = format!("{extra:?} {}", String::from_utf8_lossy(&rel));
        assert_eq!(u32::from(s.inode.mode), meta.mode(), "{what}: mode");
        assert_eq!(s.inode.mtime.sec, meta.mtime(), "{what}: mtime");
        // mke2fs 1.47.0 -d keeps seconds only; nanoseconds are checked below with debugfs.
        if meta.is_file() {
            let host = fs::read(entry.path()).unwrap();
            let data = s.data.as_ref().unwrap();
            if extra.contains(&"inline_data") && rel == b"sparse" {
                // mke2fs 1.47.0 -O inline_data -d drops a sparse file's trailing hole (the
                // image says 5 MiB + 4 KiB; debugfs dump agrees): compare what is there.
                assert!(
                    host.starts_with(data) && data.len() > 5 << 20,
                    "{what}: content"
                );
            } else {
                assert!(data == &host, "{what}: content");
            }
            if rel == b"sparse" && !extra.contains(&"inline_data") {
                assert!(
                    s.holes * u64::from(fs.block_size()) >= 8 << 20,
                    "{what}: holes"
                );
            }
            let ino = s.inode.ino;
            if meta.nlink() > 1 {
                let prev = groups.insert(meta.ino(), ino);
                assert!(prev.is_none_or(|p| p == ino), "{what}: hard links split");
            }
        }
        if meta.file_type().is_symlink() {
            let host = fs::read_link(entry.path()).unwrap();
            assert_eq!(
                s.target.as_deref(),
                Some(host.as_os_str().as_bytes()),
                "{what}"
            );
        }
        let host_x: Vec<(Vec<u8>, Vec<u8>)> = match rel.as_slice() {
            b"small" => vec![(b"user.greeting".to_vec(), b"hi\x00there".to_vec())],
            b"d" => vec![(b"user.dir".to_vec(), b"v".to_vec())],
            _ => vec![],
        };
        let got: Vec<_> = s
            .xattrs
            .iter()
            .filter(|(n, _)| n.starts_with(b"user."))
            .cloned()
            .collect();
        if testkit::set_xattr(&t.join("probe-xattr-host"), "user.x", b"") || !host_x.is_empty() {
            assert_eq!(got, host_x, "{what}: xattrs");
        }
    }
    assert_eq!(seen.len(), host_count, "{extra:?}: entry count");
    assert!(!fs.needs_recovery());
}

testkit::mkfs_matrix!(check, "32M":
    ext4,
    ext4_1k,
    ext4_inline_data,
    ext4_without_extents,
    ext4_without_metadata_csum,
    ext3,
    ext2_1k,
);

#[test]
fn ext4_meta_bg_64k() {
    check(testkit::mkfs::ext4_meta_bg_64k, "64M");
}

#[test]
fn nanoseconds_and_epoch_bits() {
    if !testkit::need("nanoseconds_and_epoch_bits", &["mke2fs", "debugfs"]) {
        return;
    }
    let t = TempDir::new();
    let image = testkit::one_file_image(&t);
    // mtime 0x80000000 with epoch bit 1 is 2^32 - 2^31 + 2^32... the kernel's 2446 range.
    let script = "sif /f mtime 0x80000000\nsif /f mtime_extra 0x0ebc5c0d\n";
    testkit::debugfs_script(&image, script);
    let fs = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let ino = fs.lookup(b"/f").unwrap();
    let inode = fs.inode(ino).unwrap();
    // 0x0ebc5c0d: epoch bits 01, nanoseconds 0x0ebc5c0d >> 2 = 61806339.
    assert_eq!(inode.mtime.nsec, 0x0ebc_5c0d >> 2);
    assert_eq!(inode.mtime.sec, -(1i64 << 31) + (1 << 32));
}

#[test]
fn xattrs_in_an_external_block_and_acls() {
    if !testkit::need("xattrs_in_an_external_block_and_acls", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    let f = tree.join("f");
    fs::write(&f, b"x").unwrap();
    let big: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    if !testkit::set_xattr(&f, "user.big", &big) {
        testkit::skip(
            "xattrs_in_an_external_block_and_acls",
            "the host refuses user xattrs",
        );
        return;
    }
    // user 1000 r--, with the usual owner/group/mask/other entries (xattr form, version 2).
    let acl = testkit::posix_acl(&[
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 4, u32::MAX),
    ]);
    let has_acl = testkit::set_xattr(&f, "system.posix_acl_access", &acl);
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    let fs = Fs::open(fs::File::open(&image).unwrap()).unwrap();
    let inode = fs.inode(fs.lookup(b"/f").unwrap()).unwrap();
    assert_ne!(inode.file_acl, 0, "expected an external xattr block");
    let x = fs.xattrs(&inode).unwrap();
    let get = |n: &[u8]| x.iter().find(|a| a.name == n).map(|a| a.value.clone());
    assert_eq!(get(b"user.big"), Some(big));
    if has_acl {
        let host = testkit::get_xattr(&f, "system.posix_acl_access").unwrap();
        assert_eq!(get(b"system.posix_acl_access"), Some(host));
    }
}

#[test]
fn a_corrupt_inode_is_a_checksum_error_naming_it() {
    if !testkit::need(
        "a_corrupt_inode_is_a_checksum_error_naming_it",
        &["mke2fs", "debugfs"],
    ) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    let (block, offset) = testkit::inode_location(&image, "/f");
    let at = block * 4096 + offset + 0x10; // i_mtime
    let mut bytes = fs::read(&image).unwrap();
    bytes[at as usize] ^= 0x40;
    let fs = Fs::from_bytes(bytes).unwrap();
    let ino = fs.lookup(b"/f");
    let err = ino.unwrap_err().to_string();
    assert!(err.starts_with("checksum mismatch in inode "), "{err}");
}
