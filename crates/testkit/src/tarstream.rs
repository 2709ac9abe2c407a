//! Tar streams for the tests of the tools that read them: trees that archivers turn into
//! streams ([`pax_tree`], [`plain_tree`]), and streams written block by block ([`Raw`]:
//! hostile headers, names, sparse maps that no archiver would write).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::Header;

/// A tar stream built member by member, with whatever headers a test wants (each header
/// ustar, mode 0644, one mtime; `end` adds the two zero blocks).
#[derive(Default)]
pub struct Raw(pub Vec<u8>);

impl Raw {
    pub fn header(&mut self, name: &[u8], ty: u8, size: u64, link: &[u8]) -> &mut Raw {
        let mut h = Header::new_ustar();
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        u.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(1_000_000);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self
    }

    pub fn data(&mut self, bytes: &[u8]) -> &mut Raw {
        self.0.extend_from_slice(bytes);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    pub fn file(&mut self, name: &str, bytes: &[u8]) -> &mut Raw {
        self.header(name.as_bytes(), b'0', bytes.len() as u64, b"")
            .data(bytes)
    }

    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Raw {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + rest.to_string().len();
            if len.to_string().len() > rest.to_string().len() {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.header(b"PaxHeaders/x", b'x', body.len() as u64, b"")
            .data(&body)
    }

    /// Members a reader must refuse one by one, after a file `ok`: names that leave the
    /// tree (absolute, `..`), hard links to nothing given before (missing, later, itself,
    /// a directory), a member below a symlink, a second member of `ok` (and a link to it).
    pub fn escaping_members(&mut self) -> &mut Raw {
        self.file("/etc/passwd", b"x")
            .file("../up", b"x")
            .file("a/../../x", b"x")
            .header(b"h-nowhere", b'1', 0, b"nowhere")
            .header(b"h-forward", b'1', 0, b"later")
            .file("later", b"later")
            .header(b"h-self", b'1', 0, b"h-self")
            .header(b"d/", b'5', 0, b"")
            .header(b"h-dir", b'1', 0, b"d")
            .header(b"s", b'2', 0, b"/etc")
            .file("s/passwd", b"x")
            .file("ok", b"second")
            .header(b"h-ok", b'1', 0, b"./ok")
    }

    pub fn end(&mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        std::mem::take(&mut self.0)
    }
}

/// Streams no reader can follow, each with a piece of the one-line error it must give:
/// cut short in a member's data, its padding and a header; a damaged header checksum; a
/// size past the end of the stream; gzip; too short to be tar; text.
pub fn broken_streams() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut whole = Raw::default();
    whole.file("a", &[b'a'; 1000]).file("b", b"b");
    let whole = whole.end();
    let mut damaged = whole.clone();
    damaged[1536 + 10] ^= 1;
    let mut huge = Raw::default();
    huge.header(b"huge", b'0', 8 << 30, b"").file("after", b"x");
    vec![
        ("cut-in-data", whole[..1100].to_vec(), "truncated"),
        ("cut-in-padding", whole[..1536 - 10].to_vec(), "truncated"),
        (
            "cut-in-header",
            whole[..1536 + 100].to_vec(),
            "ends inside a block",
        ),
        ("damaged", damaged, "a damaged header at byte 1536"),
        // A size past the end: a seek that skips it is refused as a read would be.
        ("huge-size", huge.0.clone(), "truncated"),
        (
            "gzip",
            [&[0x1f, 0x8b, 8][..], &[0; 600]].concat(),
            "a gzip stream, not a tar stream",
        ),
        (
            "tiny",
            b"abc".to_vec(),
            "not a tar stream (shorter than one 512-byte header)",
        ),
        (
            "text",
            b"hello, this is not a tar archive\n".repeat(20),
            "not a tar stream",
        ),
    ]
}

/// A tree with everything a pax stream carries (as root: devices, owners, trusted xattrs).
pub fn pax_tree(root: &Path) {
    crate::fill_sample_tree(root, 300);
    fs::write(root.join("trusted"), b"t").unwrap();
    assert!(crate::set_xattr(
        &root.join("trusted"),
        "trusted.overlay.opaque",
        b"y"
    ));
    assert!(crate::set_xattr(
        &root.join("d/sub"),
        "user.binary",
        &[0, 255, 10, 61]
    ));
    fs::write(root.join(OsStr::from_bytes(b"not-utf8-\xff")), b"bytes").unwrap();
    let deep = root.join("x".repeat(90)).join("y".repeat(90));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("n".repeat(255)), b"deep").unwrap();
    std::os::unix::fs::symlink("t".repeat(300), root.join("longtarget")).unwrap();
    fs::hard_link(deep.join("n".repeat(255)), root.join("hard-to-deep")).unwrap();
    for (name, kind, dev) in [
        (
            "char",
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::makedev(1, 3),
        ),
        (
            "block",
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::makedev(300, 70000),
        ),
    ] {
        nix::sys::stat::mknod(
            &root.join(name),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o640),
            dev,
        )
        .unwrap();
    }
    crate::write_at(&root.join("leading-hole"), 1 << 20, b"tail");
    fs::write(root.join("owned"), b"o").unwrap();
    nix::unistd::chown(&root.join("owned"), Some(1000.into()), Some(2000.into())).unwrap();
}

/// A tree every tar format holds (whole-second times, no xattrs, no devices): long names
/// and targets, hard links, a sparse file of six segments (an old GNU header takes four).
pub fn plain_tree(root: &Path, long: bool) {
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::write(root.join("d/e/file"), b"file").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big"), vec![7u8; 300_000]).unwrap();
    fs::hard_link(root.join("d/e/file"), root.join("d/link")).unwrap();
    std::os::unix::fs::symlink("d/e/file", root.join("sym")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    for i in 0..6u64 {
        crate::write_at(&root.join("sparse"), i << 20, b"segment");
    }
    if long {
        let deep = root.join("l".repeat(120));
        fs::create_dir(&deep).unwrap();
        fs::write(deep.join("m".repeat(200)), b"long").unwrap();
        std::os::unix::fs::symlink("s".repeat(150), root.join("longsym")).unwrap();
    }
    let paths: Vec<Vec<u8>> = crate::tree::view(root, &[]).into_keys().collect();
    // Children first, so that setting a child's times leaves its directory's alone.
    for (i, p) in paths.iter().enumerate().rev() {
        let p = root.join(OsStr::from_bytes(p));
        crate::set_times(&p, (1_600_000_000, 0), (1_500_000_000 + i as i64, 0));
    }
}
