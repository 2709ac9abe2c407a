//! The walk over the image and every host write, each relative to an open directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use ext4_reader::{Backing, FileType, Fs, Inode, Time, Xattr as ImageXattr};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use seedkit::json::{emit, Bytes};
use seedkit::progress::Progress;
use seedkit::quote::quote_bytes;
use seedkit::records::manifest::{
    EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Rdev, Timestamp, Xattr,
    MANIFEST_FORMAT, MANIFEST_VERSION,
};
use seedkit::records::{RdumpError, RdumpSummary};

use crate::Args;
use seedkit::sys;

/// Nesting deeper than this is reported and skipped (each level holds a descriptor).
const MAX_DEPTH: usize = 400;
/// Failures kept for `--json` (all are counted and printed).
const ERRORS_KEPT: usize = 1000;

pub struct Extraction<'a> {
    fs: &'a Fs,
    args: &'a Args,
    root: OwnedFd,
    manifest: BufWriter<File>,
    /// The directories made, as (parent's index, name); 0 is the tree itself. A staged
    /// path is rebuilt from here when needed rather than kept whole per entry: a hostile
    /// image of 400 levels of 255-byte names and many inodes claiming two links would
    /// otherwise hold 100 KiB per inode.
    made: Vec<(usize, Vec<u8>)>,
    /// The index in `made` of the directory whose entries are being extracted.
    here: usize,
    /// First name of each inode with several names: its directory in `made`, and the name.
    links: HashMap<u32, (usize, Vec<u8>)>,
    /// Directory inodes already extracted: a second visit is a cycle or a hard-linked dir.
    dirs: HashSet<u32>,
    /// Physical blocks (start -> end, neighbours merged) of the files and directories
    /// extracted so far. No two inodes share a block in a sound file system; a hostile
    /// one makes many inodes name the same few blocks, which would be written out (or held
    /// as directory entries) once per inode, up to the apparent size of a sparse image each.
    claimed: BTreeMap<u64, u64>,
    summary: RdumpSummary,
    progress: Progress,
    entries: u64,
    owner_warned: bool,
}

impl<'a> Extraction<'a> {
    pub fn new(
        fs: &'a Fs,
        args: &'a Args,
        image: &Path,
        tree: &Path,
        manifest: &Path,
    ) -> Result<Self> {
        let root =
            sys::open_dir(tree).with_context(|| format!("opening {}", seedkit::quote(tree)))?;
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(manifest)
            .with_context(|| format!("creating the manifest {}", seedkit::quote(manifest)))?;
        Ok(Extraction {
            fs,
            args,
            root,
            manifest: BufWriter::with_capacity(1 << 16, file),
            made: vec![(0, Vec::new())],
            here: 0,
            links: HashMap::new(),
            dirs: HashSet::new(),
            claimed: BTreeMap::new(),
            summary: RdumpSummary {
                path: Bytes::from(tree),
                manifest: Bytes::from(manifest),
                image: Bytes::from(image),
                source: Bytes::default(),
                files: 0,
                directories: 0,
                symlinks: 0,
                fifos: 0,
                sockets: 0,
                char_devices: 0,
                block_devices: 0,
                extra_hard_links: 0,
                bytes: 0,
                recorded_only: 0,
                missing: false,
                needs_recovery: false,
                failures: 0,
                errors: Vec::new(),
            },
            progress: Progress::new(),
            entries: 0,
            owner_warned: false,
        })
    }

    /// Extract directory `ino` as the tree's root; the summary on success, `Err` only for a
    /// fatal error (the manifest could not be written).
    pub fn run(mut self, ino: u32, root: &Inode) -> Result<RdumpSummary> {
        self.write_header()?;
        self.dirs.insert(ino);
        let xattrs = self.xattrs(b".", root);
        self.record(b".", root, EntryKind::Directory, &xattrs, None, true)?;
        self.summary.directories += 1;
        let fd = self.root.try_clone().context("duplicating a descriptor")?;
        self.children(&fd, b"", root, 1)?;
        self.finish_fd(&fd, b".", root, &xattrs, 0o700);
        self.manifest.flush().with_context(|| {
            format!("writing the manifest {}", quote_b(&self.summary.manifest.0))
        })?;
        self.progress.finish();
        Ok(self.summary)
    }

    /// DIR is not in the image and `--missing-ok` asked for an empty tree: the manifest
    /// holds its header only.
    pub fn run_missing(mut self) -> Result<RdumpSummary> {
        self.write_header()?;
        self.manifest.flush().with_context(|| {
            format!("writing the manifest {}", quote_b(&self.summary.manifest.0))
        })?;
        self.summary.missing = true;
        Ok(self.summary)
    }

    fn write_header(&mut self) -> Result<()> {
        let header = ManifestLine::Header(ManifestHeader {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            image: self.summary.image.clone(),
            source: Bytes(self.args.dir.as_bytes().to_vec()),
        });
        self.record_line(&header)
    }

    fn fail(&mut self, rel: &[u8], cause: impl std::fmt::Display) {
        let shown = if rel.is_empty() { &b"."[..] } else { rel };
        let message = cause.to_string();
        self.progress.finish();
        seedkit::warn(format_args!("extracting {}: {message}", quote_bytes(shown)));
        self.summary.failures += 1;
        if self.summary.errors.len() < ERRORS_KEPT {
            self.summary.errors.push(RdumpError {
                path: Bytes(shown.to_vec()),
                message,
            });
        }
    }

    fn record_line(&mut self, line: &ManifestLine) -> Result<()> {
        emit(&mut self.manifest, line)
            .with_context(|| format!("writing the manifest {}", quote_b(&self.summary.manifest.0)))
    }

    /// The xattrs that can be read; an unreadable one is reported (the others are kept).
    fn xattrs(&mut self, rel: &[u8], inode: &Inode) -> Vec<ImageXattr> {
        let (list, error) = self.fs.xattrs_lenient(inode);
        if let Some(e) = error {
            self.fail(rel, format_args!("reading extended attributes: {e}"));
        }
        list
    }

    fn record(
        &mut self,
        rel: &[u8],
        inode: &Inode,
        kind: EntryKind,
        xattrs: &[ImageXattr],
        target: Option<&[u8]>,
        staged: bool,
    ) -> Result<()> {
        let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| {
            let (major, minor) = inode.rdev();
            Rdev { major, minor }
        });
        let size = match kind {
            EntryKind::File => inode.size,
            EntryKind::Symlink => target.map_or(0, |t| t.len() as u64),
            _ => 0,
        };
        let link_group =
            (kind != EntryKind::Directory && inode.links_count > 1).then_some(u64::from(inode.ino));
        let entry = ManifestEntry {
            path: Bytes(rel.to_vec()),
            kind,
            mode: inode.permissions(),
            uid: inode.uid,
            gid: inode.gid,
            atime: stamp(inode.atime),
            mtime: stamp(inode.mtime),
            ctime: stamp(inode.ctime),
            crtime: inode.crtime.map(stamp),
            size,
            rdev,
            target: target.map(|t| Bytes(t.to_vec())),
            link_group,
            xattrs: xattrs
                .iter()
                .map(|x| Xattr {
                    name: Bytes(x.name.clone()),
                    value: Bytes(x.value.clone()),
                })
                .collect(),
            staged,
        };
        if !staged {
            self.summary.recorded_only += 1;
        }
        self.entries += 1;
        let n = self.entries;
        self.progress.update(|| format!("ext4-rdump: {n} entries"));
        if self.args.verbose {
            self.progress.finish();
            eprintln!("{}", String::from_utf8_lossy(rel));
        }
        self.record_line(&ManifestLine::Entry(entry))
    }

    /// Claim the data blocks of `inode` for this extraction: `Err` with a reason when one of
    /// them was claimed already (by another inode or earlier in its own map).
    fn claim(&mut self, inode: &Inode) -> Result<(), String> {
        if inode.has_flag(ext4_reader::inode::flags::INLINE_DATA) {
            return Ok(());
        }
        let claimed = &mut self.claimed;
        let mut shared = false;
        self.fs
            .for_each_run(inode, &mut |run| {
                let Backing::Data { physical: start } = run.backing else {
                    return true;
                };
                let end = start + run.len;
                let before = claimed.range(..end).next_back().map(|(&s, &e)| (s, e));
                if before.is_some_and(|(_, e)| e > start) {
                    shared = true;
                    return false;
                }
                // Merge with the neighbours, so a sound image holds few ranges.
                let mut new = (start, end);
                if let Some((s, _)) = before.filter(|&(_, e)| e == start) {
                    claimed.remove(&s);
                    new.0 = s;
                }
                if let Some(e) = claimed.remove(&end) {
                    new.1 = e;
                }
                claimed.insert(new.0, new.1);
                true
            })
            .map_err(|e| e.to_string())?;
        if shared {
            return Err(
                "data blocks used twice (by this entry or one already extracted); skipped".into(),
            );
        }
        Ok(())
    }

    /// Extract the entries of directory `dir` (already made and open as `fd`).
    fn children(&mut self, fd: &OwnedFd, rel: &[u8], dir: &Inode, depth: usize) -> Result<()> {
        if let Err(why) = self.claim(dir) {
            self.fail(rel, format_args!("reading the directory: {why}"));
            return Ok(());
        }
        let entries = match self.fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.fail(rel, format_args!("reading the directory: {e}"));
                return Ok(());
            }
        };
        let mut names: HashSet<Vec<u8>> = HashSet::with_capacity(entries.len());
        for e in entries {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let child = join(rel, &e.name);
            if let Err(why) = valid_name(&e.name) {
                self.fail(&child, format_args!("invalid name ({why}); skipped"));
                continue;
            }
            if !names.insert(e.name.clone()) {
                self.fail(&child, "duplicate name in the directory; skipped");
                continue;
            }
            self.entry(fd, &child, &e.name, e.ino, depth)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        ino: u32,
        depth: usize,
    ) -> Result<()> {
        let inode = match self.fs.inode(ino) {
            Ok(i) => i,
            Err(e) => {
                self.fail(rel, e);
                return Ok(());
            }
        };
        let (Some(ft), Some(kind)) = (
            inode.file_type(),
            EntryKind::from_mode(u32::from(inode.mode)),
        ) else {
            self.fail(
                rel,
                format_args!("inode {ino} has no valid type (mode {:o})", inode.mode),
            );
            return Ok(());
        };
        if ft != FileType::Directory {
            if let Some(first) = self.links.get(&ino).cloned() {
                return self.hard_link(parent, rel, name, &inode, kind, &first);
            }
        }
        let xattrs = self.xattrs(rel, &inode);
        match ft {
            FileType::Directory => self.directory(parent, rel, name, &inode, &xattrs, depth),
            FileType::Regular => self.regular(parent, rel, name, &inode, &xattrs),
            FileType::Symlink => self.symlink(parent, rel, name, &inode, &xattrs),
            _ => self.special(parent, rel, name, &inode, kind, &xattrs),
        }
    }

    fn hard_link(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        kind: EntryKind,
        first: &(usize, Vec<u8>),
    ) -> Result<()> {
        // The first name's directories were made by us and are never replaced, so they are
        // opened one by one inside the tree (a path could pass PATH_MAX); linkat does not
        // follow a final symlink.
        let made = self.open_made(first.0).and_then(|dir| {
            nix::unistd::linkat(
                Some(dir.as_raw_fd()),
                OsStr::from_bytes(&first.1),
                Some(parent.as_raw_fd()),
                OsStr::from_bytes(name),
                AtFlags::empty(),
            )
            .map_err(io::Error::from)
        });
        if let Err(e) = made {
            let path = self.made_path(first.0, &first.1);
            self.fail(
                rel,
                format_args!(
                    "linking to {}: {}",
                    quote_bytes(&path),
                    seedkit::cli::io_cause(&e)
                ),
            );
            return Ok(());
        }
        self.summary.extra_hard_links += 1;
        // The inode's xattrs were read with its first name; the manifest repeats them.
        let xattrs = self.fs.xattrs_lenient(inode).0;
        let target = if kind == EntryKind::Symlink {
            self.fs.symlink_target(inode).ok()
        } else {
            None
        };
        self.record(rel, inode, kind, &xattrs, target.as_deref(), true)
    }

    /// Open directory `index` of `made` (`O_PATH`, never following a symlink).
    fn open_made(&self, index: usize) -> io::Result<OwnedFd> {
        let mut chain = Vec::new();
        let mut i = index;
        while i != 0 {
            chain.push(i);
            i = self.made[i].0;
        }
        let mut dir = self.root.try_clone()?;
        for &i in chain.iter().rev() {
            dir = sys::open_at(&dir, &self.made[i].1, OFlag::O_PATH | OFlag::O_DIRECTORY, 0)?;
        }
        Ok(dir)
    }

    /// The staged path of `name` in directory `index` of `made` (for messages).
    fn made_path(&self, index: usize, name: &[u8]) -> Vec<u8> {
        let mut parts = vec![name];
        let mut i = index;
        while i != 0 {
            parts.push(&self.made[i].1);
            i = self.made[i].0;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    fn directory(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        xattrs: &[ImageXattr],
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            self.fail(
                rel,
                format_args!("nested deeper than {MAX_DEPTH} directories; skipped"),
            );
            return Ok(());
        }
        if !self.dirs.insert(inode.ino) {
            self.fail(
                rel,
                format_args!(
                    "directory inode {} already extracted (a hard-linked directory or a cycle); skipped",
                    inode.ino
                ),
            );
            return Ok(());
        }
        if let Err(e) = nix::sys::stat::mkdirat(
            Some(parent.as_raw_fd()),
            OsStr::from_bytes(name),
            Mode::from_bits_truncate(0o700),
        ) {
            self.fail(rel, format_args!("creating the directory: {}", e.desc()));
            return Ok(());
        }
        let fd = match sys::open_at(parent, name, OFlag::O_DIRECTORY | OFlag::O_RDONLY, 0) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(
                    rel,
                    format_args!("opening the directory: {}", seedkit::cli::io_cause(&e)),
                );
                return Ok(());
            }
        };
        self.summary.directories += 1;
        self.record(rel, inode, EntryKind::Directory, xattrs, None, true)?;
        self.made.push((self.here, name.to_vec()));
        let outer = std::mem::replace(&mut self.here, self.made.len() - 1);
        let result = self.children(&fd, rel, inode, depth + 1);
        self.here = outer;
        result?;
        self.finish_fd(&fd, rel, inode, xattrs, 0o700);
        Ok(())
    }

    fn regular(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        xattrs: &[ImageXattr],
    ) -> Result<()> {
        // A deduplicated image shares file blocks on purpose (directories never).
        let dedup = self
            .fs
            .superblock()
            .has_ro_compat(ext4_reader::superblock::ro_compat::SHARED_BLOCKS);
        if !dedup {
            if let Err(why) = self.claim(inode) {
                self.fail(rel, why);
                return Ok(());
            }
        }
        let fd = match sys::open_at(
            parent,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            0o600,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(
                    rel,
                    format_args!("creating the file: {}", seedkit::cli::io_cause(&e)),
                );
                return Ok(());
            }
        };
        let file = File::from(fd);
        if let Err(why) = self.copy(&file, inode) {
            // A half-written file must not pass for the real one.
            let _ = nix::unistd::unlinkat(
                Some(parent.as_raw_fd()),
                OsStr::from_bytes(name),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            self.fail(rel, why);
            return Ok(());
        }
        self.summary.files += 1;
        self.summary.bytes = self.summary.bytes.saturating_add(inode.size);
        if inode.links_count > 1 {
            self.links.insert(inode.ino, (self.here, name.to_vec()));
        }
        self.record(rel, inode, EntryKind::File, xattrs, None, true)?;
        let fd = OwnedFd::from(file);
        self.finish_fd(&fd, rel, inode, xattrs, 0o600);
        Ok(())
    }

    /// Write a file's data, seeking over holes and unwritten runs so they stay holes; the
    /// reader streams it, so memory stays flat whatever the file.
    fn copy(&mut self, file: &File, inode: &Inode) -> Result<(), String> {
        let host = |e: &io::Error| format!("writing the file: {}", seedkit::cli::io_cause(e));
        let mut failure = None;
        self.fs
            .for_each_chunk(
                inode,
                &mut |offset, bytes| match file.write_all_at(bytes, offset) {
                    Ok(()) => true,
                    Err(e) => {
                        failure = Some(host(&e));
                        false
                    }
                },
            )
            .map_err(|e| e.to_string())?;
        if let Some(why) = failure {
            return Err(why);
        }
        file.set_len(inode.size).map_err(|e| host(&e))
    }

    fn symlink(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        xattrs: &[ImageXattr],
    ) -> Result<()> {
        let target = match self.fs.symlink_target(inode) {
            Ok(t) => t,
            Err(e) => {
                self.fail(rel, e);
                return Ok(());
            }
        };
        if target.contains(&0) {
            self.fail(rel, "symlink target contains a NUL byte");
            return Ok(());
        }
        if let Err(e) = nix::unistd::symlinkat(
            OsStr::from_bytes(&target),
            Some(parent.as_raw_fd()),
            OsStr::from_bytes(name),
        ) {
            self.fail(rel, format_args!("creating the symlink: {}", e.desc()));
            return Ok(());
        }
        self.summary.symlinks += 1;
        if inode.links_count > 1 {
            self.links.insert(inode.ino, (self.here, name.to_vec()));
        }
        self.record(rel, inode, EntryKind::Symlink, xattrs, Some(&target), true)?;
        self.finish_at(parent, rel, name, inode, None);
        Ok(())
    }

    fn special(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        kind: EntryKind,
        xattrs: &[ImageXattr],
    ) -> Result<()> {
        let (sflag, device) = match kind {
            EntryKind::Fifo => (SFlag::S_IFIFO, false),
            EntryKind::Socket => (SFlag::S_IFSOCK, false),
            EntryKind::CharDevice => (SFlag::S_IFCHR, true),
            _ => (SFlag::S_IFBLK, true),
        };
        let (major, minor) = inode.rdev();
        let made = nix::sys::stat::mknodat(
            Some(parent.as_raw_fd()),
            OsStr::from_bytes(name),
            sflag,
            Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
        );
        let staged = match made {
            Ok(()) => true,
            // An unprivileged user may not make devices: the manifest holds them.
            Err(Errno::EPERM | Errno::EACCES) if device => false,
            Err(e) => {
                self.fail(rel, format_args!("creating the node: {}", e.desc()));
                return Ok(());
            }
        };
        match kind {
            EntryKind::Fifo => self.summary.fifos += 1,
            EntryKind::Socket => self.summary.sockets += 1,
            EntryKind::CharDevice => self.summary.char_devices += 1,
            _ => self.summary.block_devices += 1,
        }
        if staged && inode.links_count > 1 {
            self.links.insert(inode.ino, (self.here, name.to_vec()));
        }
        self.record(rel, inode, kind, xattrs, None, staged)?;
        if staged {
            self.finish_at(parent, rel, name, inode, Some(0o600));
        }
        Ok(())
    }

    /// Apply user xattrs, owner (when asked), mode and times to an open file or directory.
    fn finish_fd(
        &mut self,
        fd: &OwnedFd,
        rel: &[u8],
        inode: &Inode,
        xattrs: &[ImageXattr],
        keep: u32,
    ) {
        let raw = fd.as_raw_fd();
        for x in xattrs.iter().filter(|x| x.name.starts_with(b"user.")) {
            // Not every host file system takes user xattrs; the manifest has them all.
            let _ = sys::set_xattr(fd, &x.name, &x.value);
        }
        if self.args.same_owner {
            let owner = nix::unistd::fchown(
                raw,
                Some(nix::unistd::Uid::from_raw(inode.uid)),
                Some(nix::unistd::Gid::from_raw(inode.gid)),
            );
            self.owner_result(owner);
        }
        // After chown, which clears set-id bits.
        let mode = Mode::from_bits_truncate((inode.permissions() | keep) as nix::libc::mode_t);
        if let Err(e) = nix::sys::stat::fchmod(raw, mode) {
            self.fail(rel, format_args!("setting the mode: {}", e.desc()));
        }
        if let Err(e) = nix::sys::stat::futimens(raw, &spec(inode.atime), &spec(inode.mtime)) {
            self.fail(rel, format_args!("setting the times: {}", e.desc()));
        }
    }

    /// The same for a symlink or special file, by name (never following a symlink).
    fn finish_at(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        mode: Option<u32>,
    ) {
        let dir = Some(parent.as_raw_fd());
        let name = OsStr::from_bytes(name);
        if self.args.same_owner {
            let owner = nix::unistd::fchownat(
                dir,
                name,
                Some(nix::unistd::Uid::from_raw(inode.uid)),
                Some(nix::unistd::Gid::from_raw(inode.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            self.owner_result(owner);
        }
        if let Some(keep) = mode {
            // Only for nodes we just made in our own private tree: not a symlink.
            let bits = Mode::from_bits_truncate((inode.permissions() | keep) as nix::libc::mode_t);
            if let Err(e) = nix::sys::stat::fchmodat(
                dir,
                name,
                bits,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            ) {
                self.fail(rel, format_args!("setting the mode: {}", e.desc()));
            }
        }
        if let Err(e) = nix::sys::stat::utimensat(
            dir,
            name,
            &spec(inode.atime),
            &spec(inode.mtime),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        ) {
            self.fail(rel, format_args!("setting the times: {}", e.desc()));
        }
    }

    fn owner_result(&mut self, r: nix::Result<()>) {
        if let Err(e) = r {
            if !self.owner_warned {
                self.owner_warned = true;
                seedkit::warn(format_args!(
                    "changing owners: {}; owners are recorded in the manifest only",
                    e.desc()
                ));
            }
        }
    }
}

fn quote_b(b: &[u8]) -> String {
    quote_bytes(b).to_string()
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        p.extend_from_slice(dir);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// A name from the image is used only if it is one path component.
pub fn valid_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name == b"." || name == b".." {
        Err("a dot entry")
    } else if name.contains(&b'/') {
        Err("contains '/'")
    } else if name.contains(&0) {
        Err("contains a NUL byte")
    } else if name.len() > 255 {
        Err("longer than 255 bytes")
    } else {
        Ok(())
    }
}

fn stamp(t: Time) -> Timestamp {
    Timestamp {
        sec: t.sec,
        nsec: t.nsec,
    }
}

fn spec(t: Time) -> TimeSpec {
    TimeSpec::new(t.sec, i64::from(t.nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        assert!(valid_name(b"ok name").is_ok());
        assert!(valid_name(b"\xff\x01").is_ok());
        for bad in [&b""[..], b".", b"..", b"../../etc", b"a/b", b"a\0b"] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
        assert!(valid_name(&[b'a'; 256]).is_err());
    }

    #[test]
    fn paths_join_from_the_root() {
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
    }
}
