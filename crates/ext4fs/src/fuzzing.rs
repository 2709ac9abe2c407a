//! The bodies of the fuzz targets (`fuzz/fuzz_targets/read_image.rs` and `write_tree.rs`),
//! here so that the same code replays the fuzz corpus and every kept crash input as an
//! ordinary test on stable (`tests/fuzz_replay.rs`).

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::write::{DirIno, Meta, Source, Special, WriteError, Writer, ROOT};
use crate::{Backing, Content, EntryKind, Fs, Ino, Time, Xattr};

/// Entries visited per input, so one input stays fast.
const BUDGET: usize = 4096;

/// Any bytes as an image: open it and read everything reachable from the root (directories,
/// inodes, xattrs, symlink targets, data maps and a bounded amount of data). The reader must
/// return a value or an error, never panic, loop or allocate without bound.
pub fn read_image(data: &[u8]) {
    let Ok(fs) = Fs::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = fs.lookup(b"/a/b/../c");
    let mut seen = HashSet::new();
    let mut todo = vec![Ino::ROOT];
    let mut budget = BUDGET;
    let mut buf = vec![0u8; 1 << 16];
    while let Some(ino) = todo.pop() {
        if !seen.insert(ino) {
            continue;
        }
        let Ok(dir) = fs.inode(ino) else { continue };
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            budget = match budget.checked_sub(1) {
                Some(b) => b,
                None => return,
            };
            let Ok(inode) = fs.inode(e.ino) else { continue };
            let _ = fs.xattrs(&inode);
            match inode.kind() {
                Some(EntryKind::Directory) => todo.push(e.ino),
                Some(EntryKind::Symlink) => {
                    let _ = fs.symlink_target(&inode);
                }
                Some(EntryKind::File) => {
                    if let Ok(Content::Runs(runs)) = fs.content(&inode) {
                        for r in runs.iter().take(64) {
                            if let Backing::Data { physical } = r.backing {
                                let _ = fs.read_blocks(physical, &mut buf[..1024]);
                            }
                        }
                    }
                    // At most 4 chunks (4 MiB) of data per file.
                    let mut chunks = 0;
                    let _ = fs.for_each_chunk(&inode, &mut |_, _| {
                        chunks += 1;
                        chunks < 4
                    });
                }
                _ => {}
            }
        }
    }
}

/// The images the writer's fuzz target writes into: `mkfs.ext4` options, one set per
/// image (each 8 MiB, made once by the caller, which picks one with an input's first byte).
pub const WRITE_BASES: &[&[&str]] = &[
    &["-t", "ext4"],
    &["-t", "ext4", "-b", "1024"],
    &["-t", "ext4", "-O", "^metadata_csum"],
    &["-t", "ext4", "-O", "^extent,^64bit"],
    &["-t", "ext4", "-I", "128"],
    &["-t", "ext4", "-O", "^dir_index"],
    &["-t", "ext4", "-O", "large_dir"],
    &["-t", "ext4", "-O", "^flex_bg"],
    &["-t", "ext4", "-O", "inline_data"],
    &["-t", "ext4", "-O", "^filetype"],
    &["-t", "ext3"],
    &["-t", "ext2", "-b", "2048"],
];

/// Writes per input at most, so one input stays fast.
const WRITE_OPS: usize = 300;

/// The writer's fuzz target: `data` drives a [`Writer`] over `image` (a copy of one of
/// [`WRITE_BASES`], the caller's choice): directories, files with holes, symlinks, special
/// files, hard links, xattrs, modes, owners and times, names from a small alphabet so that
/// they collide, and now and then a name or target the writer must refuse. An entry
/// refused must leave the image sound; any other error ends the run (the image is then
/// thrown away). When [`Writer::finish`] succeeds, the reader must find exactly what was
/// written, and the caller then runs `e2fsck -fn`. Returns whether it did.
pub fn write_tree(data: &[u8], image: &File) -> bool {
    let mut input = Input(data);
    let Ok(clone) = image.try_clone() else {
        return false;
    };
    let Ok(mut w) = Writer::open(clone) else {
        return false;
    };
    let mut want: Vec<Expect> = Vec::new();
    let mut dirs: Vec<(DirIno, Vec<u8>)> = vec![(ROOT, Vec::new())];
    let mut files: Vec<(Ino, usize)> = Vec::new();
    for _ in 0..WRITE_OPS {
        let Some(op) = input.byte() else { break };
        let (parent, mut path) = dirs[input.index(dirs.len())].clone();
        let name = input.name();
        let meta = input.meta();
        path.push(b'/');
        path.extend_from_slice(&name);
        let made = match op % 8 {
            0 | 1 => w.mkdir(parent, &name, &meta).map(|d| {
                dirs.push((d, path.clone()));
                Expect::new(path, EntryKind::Directory, &meta)
            }),
            2..=4 => {
                let mut src = input.sparse();
                let content = src.content();
                w.add_file(parent, &name, &meta, &mut src).map(|ino| {
                    files.push((ino, want.len()));
                    let mut e = Expect::new(path, EntryKind::File, &meta);
                    e.content = content;
                    e
                })
            }
            5 => {
                let target = input.target();
                w.symlink(parent, &name, &target, &meta).map(|_| {
                    let mut e = Expect::new(path, EntryKind::Symlink, &meta);
                    e.target = target;
                    e
                })
            }
            6 => {
                let (special, kind, rdev) = input.special();
                w.special(parent, &name, special, &meta).map(|_| {
                    let mut e = Expect::new(path, kind, &meta);
                    e.rdev = rdev;
                    e
                })
            }
            _ => {
                let Some(&(ino, at)) = files.get(input.index(files.len().max(1))) else {
                    continue;
                };
                w.link(parent, &name, ino).map(|()| {
                    want[at].links += 1;
                    let mut e = want[at].clone();
                    e.path = path;
                    e.link_of = Some(at);
                    e
                })
            }
        };
        match made {
            Ok(e) => want.push(e),
            Err(WriteError::EntryRefused { .. }) => {}
            // After any other error the image is inconsistent: nothing to check.
            Err(_) => return false,
        }
    }
    if w.finish().is_err() {
        return false;
    }
    check_written(image, &want);
    true
}

/// What one path of the written tree must read back as.
#[derive(Debug, Clone)]
struct Expect {
    path: Vec<u8>,
    kind: EntryKind,
    mode: u16,
    uid: u32,
    gid: u32,
    mtime: Time,
    xattrs: Vec<Xattr>,
    content: Vec<u8>,
    target: Vec<u8>,
    rdev: (u32, u32),
    /// Names of a file (itself and its links).
    links: u16,
    /// For a hard link: the entry it names.
    link_of: Option<usize>,
}

impl Expect {
    fn new(path: Vec<u8>, kind: EntryKind, meta: &Meta) -> Expect {
        let mut xattrs = meta.xattrs.clone();
        xattrs.sort();
        Expect {
            path,
            kind,
            mode: meta.mode & 0o7777,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            xattrs,
            content: Vec::new(),
            target: Vec::new(),
            rdev: (0, 0),
            links: 1,
            link_of: None,
        }
    }
}

/// Read the image back and compare every path with what was written; panics on the first
/// difference.
fn check_written(image: &File, want: &[Expect]) {
    let Ok(clone) = image.try_clone() else { return };
    let fs = match Fs::open(clone) {
        Ok(fs) => fs,
        Err(e) => panic!("the written image does not open: {e}"),
    };
    let shown = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for e in want {
        let what = shown(&e.path);
        let ino = match fs.lookup_nofollow(&e.path) {
            Ok(ino) => ino,
            Err(err) => panic!("{what}: not found: {err}"),
        };
        let inode = match fs.inode(ino) {
            Ok(i) => i,
            Err(err) => panic!("{what}: {err}"),
        };
        assert_eq!(inode.kind(), Some(e.kind), "{what}: kind");
        assert_eq!(inode.permissions(), u32::from(e.mode), "{what}: mode");
        assert_eq!((inode.uid, inode.gid), (e.uid, e.gid), "{what}: owner");
        // 128-byte inodes keep 32 bits of seconds and no nanoseconds.
        let mtime = if fs.superblock().inode_size > 128 {
            e.mtime
        } else {
            Time {
                sec: i64::from(e.mtime.sec as i32),
                nsec: 0,
            }
        };
        assert_eq!(inode.mtime, mtime, "{what}: mtime");
        match fs.xattrs(&inode) {
            Ok(x) => assert_eq!(x, e.xattrs, "{what}: xattrs"),
            Err(err) => panic!("{what}: xattrs: {err}"),
        }
        let first = e.link_of.map_or(e, |at| &want[at]);
        match e.kind {
            EntryKind::File => {
                assert_eq!(inode.links_count, first.links, "{what}: links");
                assert_eq!(inode.size, first.content.len() as u64, "{what}: size");
                let mut got = vec![0u8; first.content.len()];
                let read = fs.for_each_chunk(&inode, &mut |at, bytes| {
                    let at = at as usize;
                    got[at..at + bytes.len()].copy_from_slice(bytes);
                    true
                });
                assert!(read.is_ok(), "{what}: {read:?}");
                assert!(got == first.content, "{what}: content differs");
            }
            EntryKind::Symlink => match fs.symlink_target(&inode) {
                Ok(t) => assert_eq!(t, e.target, "{what}: target"),
                Err(err) => panic!("{what}: target: {err}"),
            },
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                assert_eq!(inode.rdev(), e.rdev, "{what}: device numbers");
            }
            _ => {}
        }
    }
}

/// The fuzz input, read a byte at a time; zeros once it is spent.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u8(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// An index below `n` (n > 0).
    fn index(&mut self, n: usize) -> usize {
        usize::from(self.u8()) % n
    }

    /// Mostly 1 to 3 bytes of a four-letter alphabet (so names collide), sometimes 255
    /// bytes, sometimes any bytes (`/`, NUL, `.` and `..` among them: refused).
    fn name(&mut self) -> Vec<u8> {
        match self.u8() {
            0..=199 => {
                let len = 1 + self.index(3);
                (0..len).map(|_| b"ab.c"[self.index(4)]).collect()
            }
            200..=219 => vec![b'n'; 250 + self.index(8)],
            _ => {
                let len = self.index(12);
                (0..len).map(|_| self.u8()).collect()
            }
        }
    }

    fn time(&mut self) -> Time {
        // Before 1970 and past 2038 included, within what ext4 stores: 34 bits of seconds
        // from -2^31 (the writer does not refuse times outside; what it should do with them
        // is not this target's question).
        let sec = i64::from(self.u32() as i32) + (i64::from(self.u8() % 4) << 32);
        Time {
            sec,
            nsec: self.u32() % 1_000_000_000,
        }
    }

    fn meta(&mut self) -> Meta {
        let mut m =
            Meta::default().with_mode(u16::from(self.u8()) << 4 | u16::from(self.u8() & 0xf));
        m.mode &= 0o7777;
        if self.u8() > 200 {
            m.uid = self.u32();
            m.gid = self.u32();
        }
        m.atime = self.time();
        m.mtime = self.time();
        m.ctime = self.time();
        m.crtime = self.time();
        let prefixes: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];
        for _ in 0..self.index(4).saturating_sub(1) {
            let mut name = prefixes[self.index(3)].to_vec();
            name.extend_from_slice(&self.name().iter().map(|b| b | 0x40).collect::<Vec<_>>());
            let len = match self.u8() {
                0..=239 => self.index(64),
                _ => 200 * usize::from(self.u8() % 32),
            };
            let fill = self.u8();
            let value = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
            if !m.xattrs.iter().any(|x| x.name == name) {
                m.xattrs.push(Xattr { name, value });
            }
        }
        m
    }

    /// A file: a size up to 1 MiB, and up to four runs of data inside it (the rest holes).
    fn sparse(&mut self) -> Sparse {
        let size = match self.u8() {
            0..=99 => u64::from(self.u8()),
            100..=219 => u64::from(self.u32() % (64 << 10)),
            _ => u64::from(self.u32() % (1 << 20)),
        };
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut at = 0u64;
        for _ in 0..self.index(5) {
            if at >= size {
                break;
            }
            let start = at + u64::from(self.u32()) % (size - at);
            let len = (u64::from(self.u32()) % (size - start)).min(256 << 10) + 1;
            let len = len.min(size - start);
            let fill = self.u8();
            let bytes = (0..len)
                .map(|i| fill.wrapping_add((i % 251) as u8))
                .collect();
            runs.push((start, bytes));
            at = start + len;
        }
        Sparse { size, runs }
    }

    fn target(&mut self) -> Vec<u8> {
        let len = match self.u8() {
            0 => 0,
            1..=199 => 1 + self.index(59),
            200..=249 => 60 + usize::from(self.u8()) * 4,
            _ => 4096,
        };
        (0..len)
            .map(|i| b"ab/."[(i + usize::from(self.u8())) % 4])
            .collect()
    }

    /// A special file, its kind and its device numbers (now and then out of range).
    fn special(&mut self) -> (Special, EntryKind, (u32, u32)) {
        let (major, minor) = (self.u32() % 4200, self.u32() % (1 << 21));
        let rdev = (major, minor);
        match self.index(4) {
            0 => (Special::Fifo, EntryKind::Fifo, (0, 0)),
            1 => (Special::Socket, EntryKind::Socket, (0, 0)),
            2 => (
                Special::CharDevice { major, minor },
                EntryKind::CharDevice,
                rdev,
            ),
            _ => (
                Special::BlockDevice { major, minor },
                EntryKind::BlockDevice,
                rdev,
            ),
        }
    }
}

/// A file of `size` bytes holding `runs` of data (offset, bytes), holes elsewhere.
struct Sparse {
    size: u64,
    runs: Vec<(u64, Vec<u8>)>,
}

impl Sparse {
    /// All of its bytes, holes as zeros.
    fn content(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(self.size).unwrap_or(0)];
        for (at, bytes) in &self.runs {
            let at = usize::try_from(*at).unwrap_or(0);
            out[at..at + bytes.len()].copy_from_slice(bytes);
        }
        out
    }

    fn byte_at(&self, offset: u64) -> u8 {
        self.runs
            .iter()
            .find(|(at, b)| offset >= *at && offset < at + b.len() as u64)
            .map_or(0, |(at, b)| b[(offset - at) as usize])
    }
}

impl Source for Sparse {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        Ok(self
            .runs
            .iter()
            .map(|(at, b)| (*at, at + b.len() as u64))
            .find(|&(_, end)| end > from)
            .map(|(start, end)| (start.max(from), end.min(size))))
    }

    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.read_at(&mut buf, offset)?;
        dst.write_all_at(&buf, dst_offset)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset + buf.len() as u64 > self.size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte_at(offset + i as u64);
        }
        Ok(())
    }
}
