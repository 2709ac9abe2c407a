//! A directory of another ext2/3/4 image as the source, read with the workspace's reader:
//! every entry kind, xattrs, the four times with nanoseconds, holes, hard links; nothing
//! staged on the host.
//!
//! The walk gives entries in the host walk's order (parents first, siblings in bytewise
//! order), so the same tree gives the same image whether it comes staged or straight from
//! the image. A regular file's data moves from one image file to the other with
//! `copy_file_range`: on a file system that shares blocks (XFS, btrfs), 4 KiB-aligned runs
//! become shared extents, not copies. Which bytes are data follows the rule a staged copy
//! follows ([`seedkit::holes`]), so whole zero 4 KiB pieces stay holes either way.
//!
//! The source image is hostile: names must be one component ext4 holds (else reported and
//! left out), a directory is entered once, an inode's names past its link count are
//! refused, and the reader bounds every map and list.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ext4fs::{Backing, DirEntry, EntryKind as Kind, Fs, Ino, Inode, InodeFlags};
use seedkit::json::Bytes;
use seedkit::quote;
use seedkit::quote::quote_bytes;
use seedkit::records::{EntryKind, Rdev, Timestamp, Xattr};

use crate::digest::Digest;
use crate::source::EntrySource;
use crate::tree::{invalid_name, Entry, Key, LinkKey};
use crate::Ingest;

/// A directory of another image, as the command line names it.
pub(crate) struct ImageSource {
    pub image: PathBuf,
    pub dir: Vec<u8>,
    /// A `dir` the image lacks writes nothing.
    pub missing_ok: bool,
}

impl EntrySource for ImageSource {
    fn file(&self) -> Option<&Path> {
        Some(&self.image)
    }

    fn feed(&mut self, ingest: &mut Ingest<'_>) -> Result<()> {
        if let Some(src) = ImageDir::open(&self.image, &self.dir, self.missing_ok)? {
            ingest.ingest_image(&src)
        } else {
            ingest.missing = true;
            Ok(())
        }
    }
}

/// An image, open, and the directory of it to write.
pub struct ImageDir {
    fs: Fs,
    /// The image's path, for messages.
    path: PathBuf,
    /// The image file, for `copy_file_range`.
    file: File,
    root: Inode,
}

impl ImageDir {
    /// Open `image` and find `dir` in it; `dir` itself is not followed when it is a
    /// symlink (it must be a directory). `None` when `dir` is missing and `missing_ok`.
    pub fn open(image: &Path, dir: &[u8], missing_ok: bool) -> Result<Option<ImageDir>> {
        let file = seedkit::sys::open_image(image, false)
            .with_context(|| format!("opening {}", quote(image)))?;
        let fs = Fs::open(
            file.try_clone()
                .with_context(|| format!("opening {}", quote(image)))?,
        )
        .with_context(|| format!("reading {}", quote(image)))?;
        let shown = quote_bytes(dir);
        let ino = match fs.lookup_nofollow(dir) {
            Err(ext4fs::Error::NotFound { .. }) if missing_ok => return Ok(None),
            found => found.with_context(|| format!("finding {shown} in {}", quote(image)))?,
        };
        let root = fs
            .inode(ino)
            .with_context(|| format!("reading {shown} in {}", quote(image)))?;
        if root.kind() != Some(Kind::Directory) {
            bail!("reading {shown} in {}: Not a directory", quote(image));
        }
        Ok(Some(ImageDir {
            fs,
            path: image.to_path_buf(),
            file,
            root,
        }))
    }
}

/// A directory being walked.
struct Frame {
    key: Key,
    entries: std::vec::IntoIter<DirEntry>,
}

impl Ingest<'_> {
    /// Write every entry of `src`'s directory, the directory itself as the image's root.
    fn ingest_image(&mut self, src: &ImageDir) -> Result<()> {
        let mut dirs = HashSet::from([src.root.ino]);
        let mut names: HashMap<Ino, u16> = HashMap::new();
        let top = image_entry(src, &src.root)?;
        self.add_image(&Key::default(), top, None)?;
        let mut stack = vec![Frame {
            key: Key::default(),
            entries: self.listing(src, &Key::default(), &src.root),
        }];
        while let Some(frame) = stack.last_mut() {
            // Past the reader's budget every read fails: stop, rather than refuse the rest
            // one by one.
            src.fs
                .check_budget()
                .with_context(|| format!("reading {}", quote(&src.path)))?;
            let Some(d) = frame.entries.next() else {
                stack.pop();
                continue;
            };
            seedkit::interrupt::check()?;
            let key = frame.key.child(&d.name);
            let inode = match src.fs.inode(d.ino) {
                Ok(i) => i,
                Err(e) => {
                    self.refuse(&key, e.to_string());
                    continue;
                }
            };
            if inode.kind() == Some(Kind::Directory) && !dirs.insert(d.ino) {
                self.refuse(
                    &key,
                    format!(
                        "directory inode {} met twice (a hard-linked directory or a cycle)",
                        d.ino
                    ),
                );
                continue;
            }
            if inode.kind() != Some(Kind::Directory) {
                // An inode is written once and then linked, up to its link count: more names
                // would make a small image write the same data again and again.
                let seen = names.entry(d.ino).or_insert(0);
                *seen += 1;
                if *seen > inode.links_count.max(1) {
                    let count = inode.links_count.max(1);
                    self.refuse(
                        &key,
                        format!(
                            "inode {} reached by more names than its link count ({count})",
                            d.ino
                        ),
                    );
                    continue;
                }
            }
            let e = match image_entry(src, &inode) {
                Ok(e) => e,
                Err(why) => {
                    self.refuse(&key, format!("{why:#}"));
                    continue;
                }
            };
            let is_dir = e.kind == EntryKind::Directory;
            if e.kind == EntryKind::File {
                let mut content =
                    ImageFile::new(src, &inode, self.keep_entries).with_context(|| {
                        format!(
                            "reading {} in the source image",
                            quote(&crate::tree::display_key(&key))
                        )
                    })?;
                let digest = content.digest.take();
                self.add_image(&key, e, Some(&mut content))?;
                if let Some(d) = digest {
                    self.digests.insert(key.clone(), d);
                }
            } else {
                self.add_image(&key, e, None)?;
            }
            if is_dir {
                let entries = self.listing(src, &key, &inode);
                stack.push(Frame { key, entries });
            }
        }
        Ok(())
    }

    fn add_image(
        &mut self,
        key: &Key,
        e: Entry,
        content: Option<&mut dyn ext4fs::write::Source>,
    ) -> Result<()> {
        self.writer.add(key, &e, content)?;
        if e.kind == EntryKind::Directory {
            self.dirs.insert(key.clone());
        }
        self.written(key, e);
        Ok(())
    }

    /// A directory's entries, sorted by name, valid names only (the others reported).
    fn listing(&mut self, src: &ImageDir, key: &Key, dir: &Inode) -> std::vec::IntoIter<DirEntry> {
        let mut entries = match src.fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.refuse(key, format!("reading the directory: {e}"));
                Vec::new()
            }
        };
        entries.retain(|e| e.name != b"." && e.name != b"..");
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut valid = Vec::with_capacity(entries.len());
        let mut last: Option<Vec<u8>> = None;
        for e in entries {
            if let Some(why) = invalid_name(&e.name) {
                self.refuse(
                    &Key::for_display(&[key.as_bytes(), b"/", &e.name].concat()),
                    why.to_string(),
                );
            } else if last.as_ref() == Some(&e.name) {
                // The first is written: reported, but not left out of --verify.
                let why = "a second entry of this name in its directory (the first is kept)";
                self.duplicates.push((key.child(&e.name), why.to_string()));
            } else {
                last = Some(e.name.clone());
                valid.push(e);
            }
        }
        valid.into_iter()
    }
}

/// What to write for `inode`.
fn image_entry(src: &ImageDir, inode: &Inode) -> Result<Entry> {
    let kind = inode.checked_kind()?;
    let target = match kind {
        EntryKind::Symlink => Some(
            src.fs
                .symlink_target(&inode.clone())
                .context("reading its target")?,
        ),
        _ => None,
    };
    let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| {
        let (major, minor) = inode.rdev();
        Rdev { major, minor }
    });
    let xattrs = src
        .fs
        .xattrs(inode)
        .context("reading its extended attributes")?
        .into_iter()
        .map(|x| Xattr {
            name: Bytes(x.name),
            value: Bytes(x.value),
        })
        .collect();
    let stamp = |t: ext4fs::Time| Timestamp {
        sec: t.sec,
        nsec: t.nsec,
    };
    Ok(Entry {
        kind,
        mode: inode.permissions() & 0o7777,
        uid: inode.uid,
        gid: inode.gid,
        atime: stamp(inode.atime),
        mtime: stamp(inode.mtime),
        ctime: Some(stamp(inode.ctime)),
        crtime: inode.crtime.map(stamp),
        size: match kind {
            EntryKind::File => inode.size,
            EntryKind::Symlink => target.as_ref().map_or(0, |t| t.len() as u64),
            _ => 0,
        },
        allocated: 0,
        rdev,
        target,
        link: (kind != EntryKind::Directory && inode.links_count > 1)
            .then_some(LinkKey::Group(u64::from(inode.ino))),
        xattrs,
        host: false,
        host_id: None,
        host_mode: 0,
    })
}

/// A regular file of the source image, as the writer reads it.
struct ImageFile<'a> {
    src: &'a ImageDir,
    inode: &'a Inode,
    /// The file's data runs: (byte offset in the file, byte length, byte offset in the image).
    runs: Vec<(u64, u64, u64)>,
    /// What is data by the staging rule (whole zero 4 KiB pieces are holes).
    data: Vec<(u64, u64)>,
    /// The content's digest, for `--verify`.
    digest: Option<u64>,
}

impl<'a> ImageFile<'a> {
    /// Read the file's map and its data once: which pieces are data, and (for `--verify`)
    /// its digest.
    fn new(src: &'a ImageDir, inode: &'a Inode, digest: bool) -> ext4fs::Result<ImageFile<'a>> {
        let bs = u64::from(src.fs.block_size());
        let mut runs = Vec::new();
        if !inode.has_flag(InodeFlags::INLINE_DATA) {
            src.fs.for_each_run(inode, &mut |run| {
                if let Backing::Data { physical } = run.backing {
                    let start = run.logical * bs;
                    let end = ((run.logical + run.len) * bs).min(inode.size);
                    if start < end {
                        runs.push((start, end - start, physical * bs));
                    }
                }
                true
            })?;
        }
        let mut map = seedkit::holes::StagedMap::default();
        let mut digest = digest.then(Digest::default);
        src.fs.for_each_chunk(inode, &mut |offset, bytes| {
            map.add(offset, bytes);
            if let Some(d) = digest.as_mut() {
                d.feed(offset, bytes);
            }
            true
        })?;
        Ok(ImageFile {
            src,
            inode,
            runs,
            data: map.finish(inode.size),
            digest: digest.map(|d| d.finish(inode.size)),
        })
    }

    /// Fill `buf` with the file's bytes at `offset` (holes as zeros).
    fn read_into(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        buf.fill(0);
        if self.inode.has_flag(InodeFlags::INLINE_DATA) {
            let data = self
                .src
                .fs
                .read_small(self.inode, offset + buf.len() as u64)
                .map_err(io::Error::other)?;
            let from = (offset as usize).min(data.len());
            let n = (data.len() - from).min(buf.len());
            buf[..n].copy_from_slice(&data[from..from + n]);
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        for &(start, len, at) in &self.runs {
            let (s, e) = (start.max(offset), (start + len).min(end));
            if s < e {
                let dst = &mut buf[(s - offset) as usize..(e - offset) as usize];
                self.src.file.read_exact_at(dst, at + (s - start))?;
            }
        }
        Ok(())
    }
}

impl ext4fs::write::Source for ImageFile<'_> {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.inode.size)
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        Ok(self
            .data
            .iter()
            .find(|&&(_, e)| e > from)
            .map(|&(s, e)| (s.max(from), e.min(size)))
            .filter(|&(s, e)| s < e))
    }

    /// The runs of the source inside the range move with `copy_file_range` (shared
    /// extents where the file system can); holes are written as zeros.
    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        let end = offset + len;
        let mut at = offset;
        let runs: Vec<(u64, u64, u64)> = self
            .runs
            .iter()
            .copied()
            .filter(|&(s, l, _)| s < end && s + l > offset)
            .collect();
        for (start, rlen, phys) in runs {
            let (s, e) = (start.max(offset), (start + rlen).min(end));
            if s > at {
                zeros(dst, dst_offset + (at - offset), s - at)?;
            }
            copy_range(
                &self.src.file,
                phys + (s - start),
                dst,
                dst_offset + (s - offset),
                e - s,
            )?;
            at = e;
        }
        if at < end {
            zeros(dst, dst_offset + (at - offset), end - at)?;
        }
        Ok(())
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_into(buf, offset)
    }
}

fn zeros(dst: &File, at: u64, len: u64) -> io::Result<()> {
    let buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        dst.write_all_at(&buf[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

/// `len` bytes from `src` at `from` to `dst` at `to`: `copy_file_range` (which shares the
/// blocks where the file system can), else reads and writes.
fn copy_range(src: &File, from: u64, dst: &File, to: u64, len: u64) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = (from + done) as i64;
        let mut off_out = (to + done) as i64;
        let chunk = (len - done).min(1 << 30) as usize;
        match nix::fcntl::copy_file_range(
            src.as_fd(),
            Some(&mut off_in),
            dst.as_fd(),
            Some(&mut off_out),
            chunk,
        ) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the source image ends early",
                ))
            }
            Ok(n) => done += n as u64,
            Err(nix::errno::Errno::EINTR) => {}
            Err(
                nix::errno::Errno::EXDEV
                | nix::errno::Errno::EINVAL
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EOPNOTSUPP,
            ) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; (len - done).min(1 << 20) as usize];
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], from + done)?;
        dst.write_all_at(&buf[..n], to + done)?;
        done += n as u64;
    }
    Ok(())
}
