//! The writer across the mkfs.ext4 feature matrix: every kind of entry written into a fresh
//! image, then checked by `e2fsck -fn`, read back by this crate's reader, by debugfs, and
//! (as root) by the kernel through a read-only loop mount.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use ext4fs::write::{Dense, Meta, Special, Writer, ROOT};
use ext4fs::{EntryKind, Fs, Ino, Inode, Time, Xattr};
use testkit::{debugfs, e2fsck_clean, mkfs_from_tree, TempDir};

/// What one path must read back as.
#[derive(Clone, PartialEq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Fifo,
    Socket,
    Char(u32, u32),
    Block(u32, u32),
}

/// Contents are summarised (length, first difference is found by `same`), never printed.
impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::File(d) => write!(f, "File({} bytes)", d.len()),
            Kind::Symlink(t) => write!(f, "Symlink({})", String::from_utf8_lossy(t)),
            Kind::Dir => write!(f, "Dir"),
            Kind::Fifo => write!(f, "Fifo"),
            Kind::Socket => write!(f, "Socket"),
            Kind::Char(a, b) => write!(f, "Char({a}, {b})"),
            Kind::Block(a, b) => write!(f, "Block({a}, {b})"),
        }
    }
}

fn same(path: &str, got: &Kind, want: &Kind) {
    if let (Kind::File(a), Kind::File(b)) = (got, want) {
        let first = a.iter().zip(b).position(|(x, y)| x != y);
        assert!(
            a == b,
            "{path}: {} bytes against {}, first difference at {first:?}",
            a.len(),
            b.len()
        );
    }
    assert_eq!(got, want, "{path}");
}

#[derive(Debug, Clone)]
struct Expect {
    kind: Kind,
    meta: Meta,
    links: u32,
}

fn t(sec: i64, nsec: u32) -> Time {
    Time { sec, nsec }
}

fn meta(mode: u16, uid: u32, gid: u32, seed: i64) -> Meta {
    Meta {
        mode,
        uid,
        gid,
        atime: t(1_600_000_000 + seed, 123_456_789),
        mtime: t(1_500_000_000 - seed, 987_654_321),
        ctime: t(1_700_000_000 + seed, 5),
        crtime: t(1_400_000_000 + seed, 999_999_999),
        xattrs: Vec::new(),
    }
}

fn xattr(name: &str, value: &[u8]) -> Xattr {
    Xattr {
        name: name.as_bytes().to_vec(),
        value: value.to_vec(),
    }
}

/// Write the tree into `image` and return what each path must hold. `host` is scratch space
/// for the source files (sparse ones made with holes).
// The tree is one list of entries, each with what it must hold: longer as it grows.
#[allow(clippy::too_many_lines)]
fn write_tree(image: &Path, host: &Path) -> BTreeMap<String, Expect> {
    let mut want = BTreeMap::new();
    let img = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut w = Writer::open(img).unwrap();
    let bs = u64::from(w.block_size());

    let mut dm = meta(0o2755, 1000, 100, 1);
    dm.xattrs = vec![xattr("user.dir", b"v")];
    let d = w.mkdir(ROOT, b"d", &dm).unwrap();
    want.insert(
        "d".into(),
        Expect {
            kind: Kind::Dir,
            meta: dm,
            links: 3,
        },
    );
    let sm = meta(0o755, 0, 0, 2);
    let sub = w.mkdir(d, b"sub", &sm).unwrap();
    want.insert(
        "d/sub".into(),
        Expect {
            kind: Kind::Dir,
            meta: sm,
            links: 2,
        },
    );

    // A small file with setuid and 32-bit owners, reached by three names.
    let small: Vec<u8> = b"hello, ext4\n".to_vec();
    let mut m = meta(0o4755, 70_000, 70_001, 3);
    m.xattrs = vec![
        xattr("user.greeting", b"hi\0there"),
        xattr("security.x", b""),
    ];
    let ino = w
        .add_file(
            d,
            b"small",
            &m,
            &mut Dense(std::io::Cursor::new(small.clone())),
        )
        .unwrap();
    w.link(d, b"hard", ino).unwrap();
    w.link(sub, b"hard2", ino).unwrap();
    for p in ["d/small", "d/hard", "d/sub/hard2"] {
        want.insert(
            p.into(),
            Expect {
                kind: Kind::File(small.clone()),
                meta: m.clone(),
                links: 3,
            },
        );
    }

    // Sparse: a hole, data, a hole, data, a trailing hole; read from a real sparse file.
    let sparse_path = host.join("sparse");
    let mut sparse = vec![0u8; 5 << 20];
    for (at, data) in [(1 << 20, &b"middle"[..]), ((3 << 20) + 5, b"later")] {
        testkit::write_at(&sparse_path, at as u64, data);
        sparse[at..at + data.len()].copy_from_slice(data);
    }
    fs::OpenOptions::new()
        .write(true)
        .open(&sparse_path)
        .unwrap()
        .set_len(5 << 20)
        .unwrap();
    let src = fs::File::open(&sparse_path).unwrap();
    let m = meta(0o640, 1, 2, 4);
    w.add_file(d, b"sparse", &m, &mut &src).unwrap();
    want.insert(
        "d/sparse".into(),
        Expect {
            kind: Kind::File(sparse),
            meta: m,
            links: 1,
        },
    );

    // Fragmented: 400 islands, so the extent tree has depth 1 or 2 (and block maps reach
    // their double indirect blocks).
    let frag_path = host.join("frag");
    let mut frag = vec![0u8; 400 * 16384];
    for i in 0..400usize {
        let at = i * 16384;
        let data = format!("island {i}");
        testkit::write_at(&frag_path, at as u64, data.as_bytes());
        frag[at..at + data.len()].copy_from_slice(data.as_bytes());
        frag.truncate(at + data.len().max(frag.len() - at));
    }
    frag.truncate(399 * 16384 + "island 399".len());
    let src = fs::File::open(&frag_path).unwrap();
    let m = meta(0o600, 5, 5, 5);
    w.add_file(ROOT, b"frag", &m, &mut &src).unwrap();
    want.insert(
        "frag".into(),
        Expect {
            kind: Kind::File(frag),
            meta: m,
            links: 1,
        },
    );

    // A dense file of many blocks.
    let big: Vec<u8> = (0..(300 * bs as u32 + 7))
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    fs::write(host.join("big"), &big).unwrap();
    let src = fs::File::open(host.join("big")).unwrap();
    let m = meta(0o644, 0, 0, 6);
    w.add_file(sub, b"big", &m, &mut &src).unwrap();
    want.insert(
        "d/sub/big".into(),
        Expect {
            kind: Kind::File(big),
            meta: m,
            links: 1,
        },
    );
    let m = meta(0o000, 0, 0, 7);
    w.add_file(
        ROOT,
        b"empty",
        &m,
        &mut Dense(std::io::Cursor::new(Vec::new())),
    )
    .unwrap();
    want.insert(
        "empty".into(),
        Expect {
            kind: Kind::File(Vec::new()),
            meta: m,
            links: 1,
        },
    );

    // Symlinks: fast (in the inode) and slow (a block).
    let m = meta(0o777, 0, 0, 8);
    w.symlink(ROOT, b"fast", b"d/small", &m).unwrap();
    want.insert(
        "fast".into(),
        Expect {
            kind: Kind::Symlink(b"d/small".to_vec()),
            meta: m.clone(),
            links: 1,
        },
    );
    let long = "long-component/".repeat(40).into_bytes();
    w.symlink(d, b"slow", &long, &m).unwrap();
    want.insert(
        "d/slow".into(),
        Expect {
            kind: Kind::Symlink(long),
            meta: m,
            links: 1,
        },
    );

    // Special files.
    for (name, kind, sp, mode) in [
        ("fifo", Kind::Fifo, Special::Fifo, 0o620),
        ("sock", Kind::Socket, Special::Socket, 0o755),
        (
            "null",
            Kind::Char(1, 3),
            Special::CharDevice { major: 1, minor: 3 },
            0o666,
        ),
        (
            "nvme",
            Kind::Block(259, 0x12345),
            Special::BlockDevice {
                major: 259,
                minor: 0x12345,
            },
            0o660,
        ),
    ] {
        let m = meta(mode, 0, 6, 9);
        w.special(d, name.as_bytes(), sp, &m).unwrap();
        want.insert(
            format!("d/{name}"),
            Expect {
                kind,
                meta: m,
                links: 1,
            },
        );
    }

    // Xattrs too large for the inode: one block shared by two files; and a POSIX ACL.
    let mut m = meta(0o644, 0, 0, 10);
    m.xattrs = vec![xattr("user.big", &[b'x'; 300]), xattr("trusted.t", b"1")];
    for name in ["x1", "x2"] {
        w.add_file(
            ROOT,
            name.as_bytes(),
            &m,
            &mut Dense(std::io::Cursor::new(b"x".to_vec())),
        )
        .unwrap();
        want.insert(
            name.into(),
            Expect {
                kind: Kind::File(b"x".to_vec()),
                meta: m.clone(),
                links: 1,
            },
        );
    }
    let acl = testkit::posix_acl(&[
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ]);
    let mut m = meta(0o640, 0, 0, 11);
    m.xattrs = vec![xattr("system.posix_acl_access", &acl)];
    w.add_file(
        ROOT,
        b"acl",
        &m,
        &mut Dense(std::io::Cursor::new(b"a".to_vec())),
    )
    .unwrap();
    want.insert(
        "acl".into(),
        Expect {
            kind: Kind::File(b"a".to_vec()),
            meta: m,
            links: 1,
        },
    );

    // A directory of many entries (more than one block: hash-indexed with dir_index).
    let m = meta(0o755, 0, 0, 12);
    let many = w.mkdir(ROOT, b"many", &m).unwrap();
    want.insert(
        "many".into(),
        Expect {
            kind: Kind::Dir,
            meta: m,
            links: 2,
        },
    );
    let fm = meta(0o644, 0, 0, 13);
    for i in 0..600 {
        let name = format!("entry-with-a-longish-name-{i:05}");
        let data = i.to_string().into_bytes();
        w.add_file(
            many,
            name.as_bytes(),
            &fm,
            &mut Dense(std::io::Cursor::new(data.clone())),
        )
        .unwrap();
        want.insert(
            format!("many/{name}"),
            Expect {
                kind: Kind::File(data),
                meta: fm.clone(),
                links: 1,
            },
        );
    }

    // The image's lost+found gets an entry and new attributes; the root new attributes.
    let lf = w.reopen_dir(b"lost+found").unwrap();
    let m = meta(0o700, 0, 0, 14);
    w.set_meta(lf, &m).unwrap();
    want.insert(
        "lost+found".into(),
        Expect {
            kind: Kind::Dir,
            meta: m,
            links: 2,
        },
    );
    let fm = meta(0o600, 0, 0, 15);
    w.add_file(
        lf,
        b"found",
        &fm,
        &mut Dense(std::io::Cursor::new(b"f".to_vec())),
    )
    .unwrap();
    want.insert(
        "lost+found/found".into(),
        Expect {
            kind: Kind::File(b"f".to_vec()),
            meta: fm,
            links: 1,
        },
    );
    w.set_root(&meta(0o1777, 3, 4, 16)).unwrap();

    // Refused entries leave nothing behind.
    assert!(w.mkdir(ROOT, b"d", &meta(0o755, 0, 0, 0)).is_err());
    assert!(w.mkdir(ROOT, b"a/b", &meta(0o755, 0, 0, 0)).is_err());
    assert!(w.link(ROOT, b"dirlink", d.ino()).is_err());
    w.finish().unwrap();
    want
}

fn inode_kind(fs: &Fs, inode: &Inode) -> Kind {
    match inode.kind().unwrap() {
        EntryKind::Directory => Kind::Dir,
        EntryKind::File => {
            let mut data = vec![0u8; inode.size as usize];
            fs.for_each_chunk(inode, &mut |off, bytes| {
                data[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
                true
            })
            .unwrap();
            Kind::File(data)
        }
        EntryKind::Symlink => Kind::Symlink(fs.symlink_target(inode).unwrap()),
        EntryKind::Fifo => Kind::Fifo,
        EntryKind::Socket => Kind::Socket,
        EntryKind::CharDevice => Kind::Char(inode.rdev().0, inode.rdev().1),
        EntryKind::BlockDevice => Kind::Block(inode.rdev().0, inode.rdev().1),
    }
}

fn check_time(path: &str, what: &str, got: Time, want: Time, ns: bool) {
    let want = if ns { want } else { t(want.sec, 0) };
    assert_eq!(got, want, "{path}: {what}");
}

/// The reader's view equals the tree.
fn check_with_reader(image: &Path, want: &BTreeMap<String, Expect>) {
    let fs = Fs::open(fs::File::open(image).unwrap()).unwrap();
    let ns = fs.superblock().inode_size > 128;
    let mut seen = BTreeMap::new();
    let mut todo = vec![(Ino::ROOT, String::new())];
    while let Some((ino, prefix)) = todo.pop() {
        let dir = fs.inode(ino).unwrap();
        for e in fs.read_dir(&dir).unwrap() {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let name = String::from_utf8(e.name.clone()).unwrap();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let inode = fs.inode(e.ino).unwrap();
            if inode.kind() == Some(EntryKind::Directory) {
                todo.push((e.ino, path.clone()));
            }
            seen.insert(path, inode);
        }
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "names"
    );
    for (path, inode) in &seen {
        let w = &want[path];
        same(path, &inode_kind(&fs, inode), &w.kind);
        assert_eq!(inode.permissions(), u32::from(w.meta.mode), "{path}: mode");
        assert_eq!(
            (inode.uid, inode.gid),
            (w.meta.uid, w.meta.gid),
            "{path}: owner"
        );
        assert_eq!(u32::from(inode.links_count), w.links, "{path}: links");
        check_time(path, "atime", inode.atime, w.meta.atime, ns);
        check_time(path, "mtime", inode.mtime, w.meta.mtime, ns);
        check_time(path, "ctime", inode.ctime, w.meta.ctime, ns);
        if ns {
            assert_eq!(inode.crtime, Some(w.meta.crtime), "{path}: crtime");
        }
        let mut xs = w.meta.xattrs.clone();
        xs.sort();
        assert_eq!(fs.xattrs(inode).unwrap(), xs, "{path}: xattrs");
    }
    let root = fs.inode(Ino::ROOT).unwrap();
    assert_eq!(
        (root.permissions(), root.uid, root.gid),
        (0o1777, 3, 4),
        "root"
    );
    // The holes stay holes: the 5 MiB sparse file holds a few blocks only.
    let sparse = &seen["d/sparse"];
    assert!(
        sparse.blocks_512 * 512 < 64 * 1024,
        "sparse file allocated {} sectors",
        sparse.blocks_512
    );
}

/// debugfs reads the same: names, link counts, contents.
fn check_with_debugfs(image: &Path, want: &BTreeMap<String, Expect>, scratch: &Path) {
    let ls = debugfs(image, "ls -l /d");
    for name in [
        "small", "hard", "sparse", "slow", "fifo", "sock", "null", "nvme", "sub",
    ] {
        assert!(ls.contains(name), "debugfs ls -l /d lacks {name}: {ls}");
    }
    // A directory of more than one block is hash-indexed where the image has dir_index.
    let features = debugfs(image, "features");
    let htree = debugfs(image, "htree /many");
    if features.contains("dir_index") {
        assert!(
            htree.contains("Root node dump"),
            "/many not indexed: {htree}"
        );
    } else {
        assert!(!htree.contains("Root node dump"), "{htree}");
    }
    let stat = debugfs(image, "stat /d/small");
    assert!(stat.contains("Links: 3"), "{stat}");
    assert!(stat.contains("User: 70000"), "{stat}");
    for path in [
        "d/sparse",
        "frag",
        "d/sub/big",
        "many/entry-with-a-longish-name-00599",
    ] {
        let out = scratch.join("dumped");
        let _ = fs::remove_file(&out);
        debugfs(image, format!("dump /{path} {}", out.display()));
        let Kind::File(data) = &want[path].kind else {
            unreachable!()
        };
        assert!(
            fs::read(&out).unwrap() == *data,
            "debugfs dump of {path} differs"
        );
    }
}

/// The kernel's view (read-only loop mount) equals the tree.
fn check_with_kernel(image: &Path, want: &BTreeMap<String, Expect>, ns: bool) {
    if !testkit::is_root() {
        testkit::skip("writer kernel view", "loop mounts need root");
        return;
    }
    let dir = TempDir::new();
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = testkit::run(
        testkit::tool("mount")
            .args(["-o", "ro,loop"])
            .arg(image)
            .arg(&mnt),
    );
    assert!(out.status.success(), "mount: {}", testkit::stderr(&out));
    let result = std::panic::catch_unwind(|| {
        for (path, w) in want {
            let p = mnt.join(path);
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File(fs::read(&p).unwrap())
            } else if ft.is_symlink() {
                Kind::Symlink(fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec())
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                Kind::Socket
            } else {
                let (ma, mi) = (
                    nix::sys::stat::major(md.rdev()) as u32,
                    nix::sys::stat::minor(md.rdev()) as u32,
                );
                if ft.is_char_device() {
                    Kind::Char(ma, mi)
                } else {
                    Kind::Block(ma, mi)
                }
            };
            same(&format!("kernel: {path}"), &kind, &w.kind);
            assert_eq!(
                md.mode() & 0o7777,
                u32::from(w.meta.mode),
                "kernel: {path}: mode"
            );
            assert_eq!(
                (md.uid(), md.gid()),
                (w.meta.uid, w.meta.gid),
                "kernel: {path}"
            );
            assert_eq!(md.nlink(), u64::from(w.links), "kernel: {path}: links");
            let nsec = |n: u32| if ns { i64::from(n) } else { 0 };
            assert_eq!(
                (md.mtime(), md.mtime_nsec()),
                (w.meta.mtime.sec, nsec(w.meta.mtime.nsec)),
                "kernel: {path}: mtime"
            );
            assert_eq!(
                (md.atime(), md.atime_nsec()),
                (w.meta.atime.sec, nsec(w.meta.atime.nsec)),
                "kernel: {path}: atime"
            );
            assert_eq!(
                (md.ctime(), md.ctime_nsec()),
                (w.meta.ctime.sec, nsec(w.meta.ctime.nsec)),
                "kernel: {path}: ctime"
            );
            for x in &w.meta.xattrs {
                let name = String::from_utf8(x.name.clone()).unwrap();
                assert_eq!(
                    testkit::get_xattr(&p, &name).as_deref(),
                    Some(&x.value[..]),
                    "kernel: {path}: {name}"
                );
            }
        }
    });
    let _ = testkit::run(testkit::tool("umount").arg(&mnt));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn check(extra: &[&str], size: &str) {
    if !testkit::need("writer matrix", &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = TempDir::new();
    let image = dir.join("fs.img");
    mkfs_from_tree(&image, size, None, extra);
    let host = dir.join("host");
    fs::create_dir(&host).unwrap();
    let want = write_tree(&image, &host);
    if let Err(e) = e2fsck_clean(&image) {
        panic!("{extra:?}: {e}");
    }
    check_with_reader(&image, &want);
    check_with_debugfs(&image, &want, dir.path());
    let ns = Fs::open(fs::File::open(&image).unwrap())
        .unwrap()
        .superblock()
        .inode_size
        > 128;
    check_with_kernel(&image, &want, ns);
}

testkit::mkfs_matrix!(check, "64M":
    ext4,
    ext4_1k,
    ext4_2k,
    ext4_4k,
    ext4_inode_128,
    ext4_without_metadata_csum,
    ext4_without_64bit,
    ext4_without_flex_bg,
    ext4_orphan_file,
    ext4_metadata_csum_seed,
    ext4_without_dir_index,
    ext4_large_dir,
    ext2,
    ext3,
    ext2_1k,
);
