//! The walk over the image and every host write, each relative to an open directory.
//!
//! The walk keeps its own stack (one frame per directory being extracted), so any depth
//! takes no machine stack; only the innermost [`FD_WINDOW`] directories hold a descriptor,
//! and an outer one is opened again through `..` of its child when the walk climbs back,
//! checked against the device and inode it had.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ext4fs::{DirEntry, Fs, Ino, Inode, Time, Xattr as ImageXattr};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use seedkit::holes::data_runs;
use seedkit::json::{emit, Bytes};
use seedkit::progress::Progress;
use seedkit::quote::quote_bytes;
use seedkit::records::manifest::{
    EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Rdev, Timestamp, Xattr,
    MANIFEST_FORMAT, MANIFEST_VERSION,
};
use seedkit::records::{RdumpError, RdumpSummary, TreeCounts};
use seedkit::sys;

use crate::claims::Claims;
use crate::Args;

/// Directories of the walk that keep a descriptor open (the innermost ones).
pub const FD_WINDOW: usize = 32;
/// What one entry made on the host costs beyond its data (an inode and a name), for the
/// budget.
const ENTRY_COST: u64 = 512;

/// The manifest file, counting the bytes written to it (for the budget).
struct Counted {
    out: BufWriter<File>,
    written: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// An inode that may have several names: where its first name was staged and its xattrs
/// (read once, for every name's manifest record).
struct Linked {
    /// Its first name's directory in `made`, and the name; `None` when not staged.
    first: Option<(usize, Vec<u8>)>,
    names: u32,
    xattrs: Vec<ImageXattr>,
}

/// A directory being extracted.
struct Frame {
    entries: std::vec::IntoIter<DirEntry>,
    names: HashSet<Vec<u8>>,
    /// Open while the directory is among the innermost [`FD_WINDOW`].
    fd: Option<OwnedFd>,
    /// What the host directory is, to check it when opened again through `..`.
    host: sys::Identity,
    /// Its index in `made`.
    made: usize,
    /// The length of its relative path (the walk's path buffer is cut back to it).
    path_len: usize,
    inode: Inode,
}

pub struct Extraction<'a> {
    fs: &'a Fs,
    args: &'a Args,
    root: OwnedFd,
    manifest: Counted,
    /// The directories made, as (parent's index, name); 0 is the tree itself. A staged
    /// path is rebuilt from here when needed rather than kept whole per entry.
    made: Vec<(usize, Vec<u8>)>,
    /// The index in `made` of the directory whose entries are being extracted.
    here: usize,
    /// The last directory of `made` opened for a hard link, kept for the next one.
    made_cache: Option<(usize, OwnedFd)>,
    /// Inodes with several names (by their link count): their first name and xattrs.
    links: HashMap<Ino, Linked>,
    /// Non-directory inodes whose link count says one name, seen once already.
    single: HashSet<Ino>,
    /// Directory inodes already extracted: a second visit is a cycle or a hard-linked dir.
    dirs: HashSet<Ino>,
    /// Physical blocks of the files and directories extracted so far.
    claims: Claims,
    /// Bytes of file data written to the host, plus [`ENTRY_COST`] per entry made.
    staged: u64,
    budget: u64,
    over_budget: bool,
    summary: RdumpSummary,
    progress: Progress,
    entries: u64,
    owner_warned: bool,
    /// Bytes of the errors kept in the summary.
    kept_bytes: usize,
}

impl<'a> Extraction<'a> {
    /// `root` is the tree, open (checked by the caller).
    pub fn new(
        fs: &'a Fs,
        args: &'a Args,
        image: &Path,
        (tree, root): (&Path, OwnedFd),
        (manifest, file): (&Path, File),
        budget: u64,
    ) -> Self {
        Extraction {
            fs,
            args,
            root,
            manifest: Counted {
                out: BufWriter::with_capacity(1 << 16, file),
                written: 0,
            },
            made: vec![(0, Vec::new())],
            here: 0,
            made_cache: None,
            links: HashMap::new(),
            single: HashSet::new(),
            dirs: HashSet::new(),
            claims: Claims::default(),
            staged: 0,
            budget,
            over_budget: false,
            summary: RdumpSummary {
                path: Bytes::from(tree),
                manifest: Bytes::from(manifest),
                image: Bytes::from(image),
                source: Bytes::default(),
                counts: TreeCounts::default(),
                recorded_only: 0,
                missing: false,
                needs_recovery: false,
                failures: 0,
                errors: Vec::new(),
            },
            progress: Progress::new(),
            entries: 0,
            owner_warned: false,
            kept_bytes: 0,
        }
    }

    /// Extract directory `ino` as the tree's root; the summary on success, `Err` only for a
    /// fatal error (the manifest could not be written, the budget is spent, the tree was
    /// changed by someone else).
    pub fn run(mut self, ino: Ino, root: &Inode) -> Result<RdumpSummary> {
        // Private from the start, not only once finished.
        sys::fchmod(&self.root, 0o700)
            .with_context(|| format!("setting the mode of {}", quote_b(&self.summary.path.0)))?;
        self.write_header()?;
        self.dirs.insert(ino);
        let xattrs = self.xattrs(b".", root);
        self.record(b".", root, EntryKind::Directory, &xattrs, None, true)?;
        self.summary.counts.add(EntryKind::Directory, 0);
        let fd = self.root.try_clone().context("duplicating a descriptor")?;
        Self::set_user_xattrs(&fd, &xattrs);
        drop(xattrs);
        self.walk(fd, root)?;
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
        // The empty tree made in its place is a directory like any other top.
        self.summary.counts.add(EntryKind::Directory, 0);
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
        // Past the reader's budget every read fails alike: the walk stops at its next
        // step (fatal), without a message per entry left.
        if self.fs.over_budget() {
            self.over_budget = true;
            return;
        }
        let shown = if rel.is_empty() { &b"."[..] } else { rel };
        let message = cause.to_string();
        self.progress.finish();
        seedkit::warn(format_args!("extracting {}: {message}", quote_bytes(shown)));
        self.summary.failures += 1;
        // Kept for --json within seedkit::diag's bounds (all are counted).
        let size = shown.len() + message.len();
        let error = RdumpError {
            path: Bytes(shown.to_vec()),
            message,
        };
        seedkit::diag::keep(&mut self.summary.errors, &mut self.kept_bytes, error, size);
    }

    fn record_line(&mut self, line: &ManifestLine) -> Result<()> {
        emit(&mut self.manifest, line).with_context(|| {
            format!("writing the manifest {}", quote_b(&self.summary.manifest.0))
        })?;
        self.check_budget()
    }

    /// `Err` (fatal) once the staged bytes and the manifest, or the reader's work, pass
    /// the budget.
    fn check_budget(&mut self) -> Result<()> {
        if self.fs.over_budget() {
            self.over_budget = true;
            bail!(
                "extracting {}: the work of reading it would pass the budget of {} bytes \
                 (--budget raises it)",
                quote_b(&self.summary.image.0),
                self.fs.budget()
            );
        }
        let used = self.staged.saturating_add(self.manifest.written);
        if used > self.budget || self.over_budget {
            self.over_budget = true;
            bail!(
                "extracting {}: the staged files and the manifest pass the budget of {} bytes \
                 (--budget raises it)",
                quote_b(&self.summary.image.0),
                self.budget
            );
        }
        Ok(())
    }

    /// Charge `bytes` written to the host; false once past the budget.
    fn charge(&mut self, bytes: u64) -> bool {
        self.staged = self.staged.saturating_add(bytes);
        if self.staged.saturating_add(self.manifest.written) > self.budget {
            self.over_budget = true;
        }
        !self.over_budget
    }

    /// The xattrs that can be read; an unreadable one is reported (the others are kept).
    fn xattrs(&mut self, rel: &[u8], inode: &Inode) -> Vec<ImageXattr> {
        let (list, error) = self.fs.xattrs_lenient(inode);
        if let Some(e) = error {
            self.fail(rel, format_args!("reading extended attributes: {e}"));
        }
        list
    }

    #[allow(clippy::too_many_arguments)]
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
            let shown = if rel.is_empty() { &b"."[..] } else { rel };
            eprintln!("{}", quote_bytes(shown));
        }
        self.record_line(&ManifestLine::Entry(entry))
    }

    /// Claim the data blocks of `inode` for this extraction (see [`Claims`]).
    fn claim(&mut self, inode: &Inode) -> Result<(), String> {
        self.claims.claim(self.fs, inode)
    }

    /// The entries of directory `dir`, to extract (none, reported, when unreadable).
    fn listing(&mut self, rel: &[u8], dir: &Inode) -> Vec<DirEntry> {
        if let Err(why) = self.claim(dir) {
            self.fail(rel, format_args!("reading the directory: {why}"));
            return Vec::new();
        }
        match self.fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.fail(rel, format_args!("reading the directory: {e}"));
                Vec::new()
            }
        }
    }

    /// Extract the tree below the root directory (`fd`, made already), depth first, with
    /// an explicit stack.
    fn walk(&mut self, fd: OwnedFd, root: &Inode) -> Result<()> {
        let host = sys::Identity::of(&fd).context("reading the tree's root")?;
        let entries = self.listing(b"", root);
        let mut stack = vec![Frame {
            names: HashSet::with_capacity(entries.len()),
            entries: entries.into_iter(),
            fd: Some(fd),
            host,
            made: 0,
            path_len: 0,
            inode: root.clone(),
        }];
        let mut path: Vec<u8> = Vec::new();
        while let Some(top) = stack.last_mut() {
            if self.over_budget {
                self.check_budget()?;
            }
            let Some(e) = top.entries.next() else {
                let done = stack.pop().expect("a frame");
                let fd = done.fd.expect("the innermost directory is open");
                let rel = &path[..done.path_len];
                let keep = if stack.is_empty() { None } else { Some(0o700) };
                let rel = rel.to_vec();
                self.finish_fd(&fd, &rel, &done.inode, keep);
                if let Some(parent) = stack.last_mut() {
                    self.here = parent.made;
                    if parent.fd.is_none() {
                        parent.fd = Some(reopen_parent(&fd, &parent.host)?);
                    }
                }
                continue;
            };
            if e.name == b"." || e.name == b".." {
                continue;
            }
            path.truncate(top.path_len);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            if let Err(why) = valid_name(&e.name) {
                self.fail(&path, format_args!("invalid name ({why}); skipped"));
                continue;
            }
            if !top.names.insert(e.name.clone()) {
                self.fail(&path, "duplicate name in the directory; skipped");
                continue;
            }
            let parent = top.fd.as_ref().expect("the innermost directory is open");
            self.here = top.made;
            let Some((fd, inode)) = self.entry(parent, &path, &e.name, e.ino)? else {
                continue;
            };
            // A directory, made and open: descend.
            let host = match sys::Identity::of(&fd) {
                Ok(h) => h,
                Err(e) => {
                    self.fail(
                        &path,
                        format_args!("opening the directory: {}", seedkit::cli::io_cause(&e)),
                    );
                    continue;
                }
            };
            self.made.push((top.made, e.name.clone()));
            let made = self.made.len() - 1;
            self.here = made;
            let entries = self.listing(&path, &inode);
            stack.push(Frame {
                names: HashSet::with_capacity(entries.len()),
                entries: entries.into_iter(),
                fd: Some(fd),
                host,
                made,
                path_len: path.len(),
                inode,
            });
            if stack.len() > FD_WINDOW {
                let at = stack.len() - FD_WINDOW - 1;
                stack[at].fd = None;
            }
        }
        Ok(())
    }

    /// One entry of a directory: extracted, or reported and skipped. A directory is made
    /// and returned open, for the walk to descend into.
    fn entry(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        ino: Ino,
    ) -> Result<Option<(OwnedFd, Inode)>> {
        seedkit::interrupt::check()?;
        let (inode, kind) = match self.fs.typed_inode(ino) {
            Ok(found) => found,
            Err(e) => {
                self.fail(rel, e);
                return Ok(None);
            }
        };
        if kind == EntryKind::Directory {
            return self.directory(parent, rel, name, inode);
        }
        // An inode is staged once, whatever the number of names that reach it; its other
        // names are hard links, up to its link count (more is a corrupt image, and would
        // let a small image be written out once per name).
        if inode.links_count > 1 {
            if let Some(linked) = self.links.get_mut(&ino) {
                if linked.names >= u32::from(inode.links_count) {
                    self.fail(
                        rel,
                        format_args!(
                            "inode {ino} reached by more names than its link count ({}); skipped",
                            inode.links_count
                        ),
                    );
                    return Ok(None);
                }
                linked.names += 1;
                let first = linked.first.clone();
                let xattrs = std::mem::take(&mut linked.xattrs);
                let result =
                    self.hard_link(parent, rel, name, &inode, kind, first.as_ref(), &xattrs);
                if let Some(linked) = self.links.get_mut(&ino) {
                    linked.xattrs = xattrs;
                }
                return result.map(|()| None);
            }
        } else if !self.single.insert(ino) {
            self.fail(
                rel,
                format_args!("inode {ino} reached by more names than its link count (1); skipped"),
            );
            return Ok(None);
        }
        let xattrs = self.xattrs(rel, &inode);
        let staged = match kind {
            EntryKind::File => self.regular(parent, rel, name, &inode, &xattrs)?,
            EntryKind::Symlink => self.symlink(parent, rel, name, &inode, &xattrs)?,
            _ => self.special(parent, rel, name, &inode, kind, &xattrs)?,
        };
        if inode.links_count > 1 {
            if let Some(staged) = staged {
                self.links.insert(
                    ino,
                    Linked {
                        first: staged.then(|| (self.here, name.to_vec())),
                        names: 1,
                        xattrs,
                    },
                );
            }
        }
        Ok(None)
    }

    /// Another name of an inode extracted already: a hard link to the first name when that
    /// was staged, and a manifest record.
    #[allow(clippy::too_many_arguments)]
    fn hard_link(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        kind: EntryKind,
        first: Option<&(usize, Vec<u8>)>,
        xattrs: &[ImageXattr],
    ) -> Result<()> {
        if let Some(first) = first {
            // The first name's directories were made by us and are never replaced, so they
            // are opened one by one inside the tree (a path could pass PATH_MAX); linkat
            // does not follow a final symlink.
            let made = self.open_made(first.0).and_then(|dir| {
                let r = nix::unistd::linkat(
                    dir.as_fd(),
                    OsStr::from_bytes(&first.1),
                    parent.as_fd(),
                    OsStr::from_bytes(name),
                    AtFlags::empty(),
                )
                .map_err(io::Error::from);
                self.made_cache = Some((first.0, dir));
                r
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
            self.charge(ENTRY_COST);
        }
        // A further name of one inode, staged as a link or recorded only (a device an
        // unprivileged user cannot make): counted as a name, not as another inode.
        self.summary.counts.extra_hard_links += 1;
        let target = if kind == EntryKind::Symlink {
            self.fs.symlink_target(inode).ok()
        } else {
            None
        };
        self.record(rel, inode, kind, xattrs, target.as_deref(), first.is_some())
    }

    /// Open directory `index` of `made` (`O_PATH`, never following a symlink).
    fn open_made(&mut self, index: usize) -> io::Result<OwnedFd> {
        if let Some((i, fd)) = self.made_cache.take() {
            if i == index {
                return Ok(fd);
            }
        }
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

    /// Make directory `name`, record it and return it open (its entries are the walk's).
    fn directory(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: Inode,
    ) -> Result<Option<(OwnedFd, Inode)>> {
        if !self.dirs.insert(inode.ino) {
            self.fail(
                rel,
                format_args!(
                    "directory inode {} already extracted (a hard-linked directory or a cycle); skipped",
                    inode.ino
                ),
            );
            return Ok(None);
        }
        let xattrs = self.xattrs(rel, &inode);
        if let Err(e) = nix::sys::stat::mkdirat(
            parent.as_fd(),
            OsStr::from_bytes(name),
            Mode::from_bits_truncate(0o700),
        ) {
            self.fail(rel, format_args!("creating the directory: {}", e.desc()));
            return Ok(None);
        }
        let fd = match sys::open_dir_at(parent, name) {
            Ok(fd) => fd,
            Err(e) => {
                self.fail(
                    rel,
                    format_args!("opening the directory: {}", seedkit::cli::io_cause(&e)),
                );
                return Ok(None);
            }
        };
        self.summary.counts.add(EntryKind::Directory, 0);
        self.charge(ENTRY_COST);
        self.record(rel, &inode, EntryKind::Directory, &xattrs, None, true)?;
        Self::set_user_xattrs(&fd, &xattrs);
        Ok(Some((fd, inode)))
    }

    /// Stage a regular file: `Some(true)` when staged, `None` when reported and skipped.
    fn regular(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        xattrs: &[ImageXattr],
    ) -> Result<Option<bool>> {
        // A deduplicated image shares file blocks on purpose (directories never); the
        // budget bounds what that can cost.
        let dedup = self
            .fs
            .superblock()
            .has_ro_compat(ext4fs::RoCompat::SHARED_BLOCKS);
        if !dedup {
            if let Err(why) = self.claim(inode) {
                self.fail(rel, why);
                return Ok(None);
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
                return Ok(None);
            }
        };
        let file = File::from(fd);
        self.charge(ENTRY_COST);
        if let Err(why) = self.copy(&file, inode) {
            // A half-written file must not pass for the real one.
            let _ = nix::unistd::unlinkat(
                parent.as_fd(),
                OsStr::from_bytes(name),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            self.check_budget()?;
            self.fail(rel, why);
            return Ok(None);
        }
        self.summary.counts.add(EntryKind::File, inode.size);
        self.record(rel, inode, EntryKind::File, xattrs, None, true)?;
        let fd = OwnedFd::from(file);
        Self::set_user_xattrs(&fd, xattrs);
        self.finish_fd(&fd, rel, inode, Some(0o600));
        Ok(Some(true))
    }

    /// Write a file's data, seeking over holes, unwritten runs and aligned runs of zeros so
    /// they stay holes; the reader streams it, so memory stays flat whatever the file.
    fn copy(&mut self, file: &File, inode: &Inode) -> Result<(), String> {
        let host = |e: &io::Error| format!("writing the file: {}", seedkit::cli::io_cause(e));
        let mut failure = None;
        let mut written = 0u64;
        let room = self
            .budget
            .saturating_sub(self.staged.saturating_add(self.manifest.written));
        self.fs
            .for_each_chunk(inode, &mut |offset, bytes| {
                for (at, run) in data_runs(offset, bytes) {
                    written += run.len() as u64;
                    if written > room {
                        failure = Some("the budget is spent".to_string());
                        return false;
                    }
                    if let Err(e) = file.write_all_at(run, at) {
                        failure = Some(host(&e));
                        return false;
                    }
                }
                true
            })
            .map_err(|e| e.to_string())?;
        self.charge(written);
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
    ) -> Result<Option<bool>> {
        let target = match self.fs.symlink_target(inode) {
            Ok(t) => t,
            Err(e) => {
                self.fail(rel, e);
                return Ok(None);
            }
        };
        if target.contains(&0) {
            self.fail(rel, "symlink target contains a NUL byte");
            return Ok(None);
        }
        if let Err(e) = nix::unistd::symlinkat(
            OsStr::from_bytes(&target),
            parent.as_fd(),
            OsStr::from_bytes(name),
        ) {
            self.fail(rel, format_args!("creating the symlink: {}", e.desc()));
            return Ok(None);
        }
        self.summary.counts.add(EntryKind::Symlink, 0);
        self.charge(ENTRY_COST + target.len() as u64);
        self.record(rel, inode, EntryKind::Symlink, xattrs, Some(&target), true)?;
        self.finish_at(parent, rel, name, inode);
        Ok(Some(true))
    }

    /// A fifo or socket is made (owner read/write, its permission bits applied through a
    /// descriptor); a device node never is: the manifest records it.
    fn special(
        &mut self,
        parent: &OwnedFd,
        rel: &[u8],
        name: &[u8],
        inode: &Inode,
        kind: EntryKind,
        xattrs: &[ImageXattr],
    ) -> Result<Option<bool>> {
        self.summary.counts.add(kind, 0);
        let sflag = match kind {
            EntryKind::Fifo => SFlag::S_IFIFO,
            EntryKind::Socket => SFlag::S_IFSOCK,
            _ => {
                self.record(rel, inode, kind, xattrs, None, false)?;
                return Ok(Some(false));
            }
        };
        if let Err(e) = nix::sys::stat::mknodat(
            parent.as_fd(),
            OsStr::from_bytes(name),
            sflag,
            Mode::from_bits_truncate(0o600),
            0,
        ) {
            match kind {
                EntryKind::Fifo => self.summary.counts.fifos -= 1,
                _ => self.summary.counts.sockets -= 1,
            }
            self.fail(rel, format_args!("creating the node: {}", e.desc()));
            return Ok(None);
        }
        self.charge(ENTRY_COST);
        self.record(rel, inode, kind, xattrs, None, true)?;
        if kind == EntryKind::Fifo {
            // Opening a fifo for reading without waiting for a writer gives a descriptor
            // to change it through; it must be the fifo just made.
            let opened = sys::open_at(parent, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)
                .and_then(|fd| {
                    let id = sys::Identity::of(&fd)?;
                    if id.kind == Some(EntryKind::Fifo) {
                        Ok(fd)
                    } else {
                        Err(io::Error::other("replaced while being made"))
                    }
                });
            match opened {
                Ok(fd) => self.finish_fd(&fd, rel, inode, Some(0o600)),
                Err(e) => self.fail(
                    rel,
                    format_args!("opening the fifo: {}", seedkit::cli::io_cause(&e)),
                ),
            }
        } else {
            self.finish_at(parent, rel, name, inode);
        }
        Ok(Some(true))
    }

    /// The user xattrs (the only ones an unprivileged user may set), through a descriptor.
    /// Not every host file system takes them; the manifest has them all.
    fn set_user_xattrs(fd: &OwnedFd, xattrs: &[ImageXattr]) {
        for x in xattrs.iter().filter(|x| x.name.starts_with(b"user.")) {
            let _ = sys::set_xattr(fd, &x.name, &x.value);
        }
    }

    /// Owner (when asked), mode and times of an open file or directory. The mode is the
    /// image's permission bits without set-id or sticky bits, plus `keep` for the owner;
    /// with `keep` `None` (the tree's top), 0700 whatever the image says.
    fn finish_fd(&mut self, fd: &OwnedFd, rel: &[u8], inode: &Inode, keep: Option<u32>) {
        if self.args.same_owner {
            let owner = nix::unistd::fchown(
                fd,
                Some(nix::unistd::Uid::from_raw(inode.uid)),
                Some(nix::unistd::Gid::from_raw(inode.gid)),
            );
            self.owner_result(owner);
        }
        let mode = keep.map_or(0o700, |keep| inode.permissions() & 0o777 | keep);
        if let Err(e) = sys::fchmod(fd, mode) {
            self.fail(
                rel,
                format_args!("setting the mode: {}", seedkit::cli::io_cause(&e)),
            );
        }
        let time = |t: Time| (t.sec, t.nsec);
        if let Err(e) = sys::futimens(fd, time(inode.atime), time(inode.mtime)) {
            self.fail(
                rel,
                format_args!("setting the times: {}", seedkit::cli::io_cause(&e)),
            );
        }
    }

    /// Owner and times of a symlink or socket, by name, never following a symlink (a
    /// symlink's mode means nothing; a socket keeps the owner read/write it was made with).
    fn finish_at(&mut self, parent: &OwnedFd, rel: &[u8], name: &[u8], inode: &Inode) {
        let dir = parent.as_fd();
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

/// The parent of `child` (through its `..`), checked to be the directory the walk made
/// there: a directory of the tree moved by someone else stops the extraction.
fn reopen_parent(child: &OwnedFd, want: &sys::Identity) -> Result<OwnedFd> {
    let fd = sys::open_parent(child).context("opening a directory of the tree again")?;
    if sys::Identity::of(&fd).context("reading a directory of the tree")? != *want {
        bail!("climbing back up the tree: a directory of it was moved by someone else");
    }
    Ok(fd)
}

fn quote_b(b: &[u8]) -> String {
    quote_bytes(b).to_string()
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
}
