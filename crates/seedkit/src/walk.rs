//! A walk of a directory tree that someone else may be changing: depth-first, names sorted
//! bytewise, every directory opened relative to its parent's descriptor with `O_NOFOLLOW`
//! and checked against what `fstatat` saw of it, every entry stat'ed relative to its
//! directory. Chains of any depth: the walk keeps no recursion per level and at most
//! [`OPEN_DIRS`] directory descriptors; a parent whose descriptor was let go is reached
//! again through `..` and must be the very directory recorded on the way down, else the
//! walk fails. A directory met again below itself (a bind mount) is refused.
//!
//! The visitor gets every entry with its parent's descriptor and the stat the walk saw, so
//! it can open the entry itself ([`open_file`]) and check that it is the same file.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::FileStat;

use crate::quote;
use crate::records::EntryKind;
use crate::sys::{self, Identity};

/// Directory descriptors kept open on the current path (the deepest ones).
pub const OPEN_DIRS: usize = 16;

/// How the walk treats what it reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// A directory owned by the caller that the caller cannot read or search is made
    /// readable (owner bits only, through its descriptor) while it is walked, and put back
    /// when it is left, also when the walk fails.
    pub widen: bool,
    /// Put back each directory's access time after its names are read.
    pub keep_atimes: bool,
}

/// One entry as the walk met it.
pub struct Entry<'a> {
    /// The directory holding it; `None` for the root, which is reached by its path.
    pub parent: Option<BorrowedFd<'a>>,
    /// Its name in `parent` (empty for the root).
    pub name: &'a [u8],
    /// Its path, the root's path first: for messages.
    pub path: &'a Path,
    /// 0 for the root.
    pub depth: usize,
    /// What `fstatat(parent, name, AT_SYMLINK_NOFOLLOW)` said (`fstat` for the root).
    pub stat: &'a FileStat,
}

impl Entry<'_> {
    pub fn kind(&self) -> Option<EntryKind> {
        EntryKind::from_mode(self.stat.st_mode)
    }
}

/// A directory being entered, before its children.
pub struct Dir<'a> {
    pub fd: BorrowedFd<'a>,
    pub path: &'a Path,
    pub depth: usize,
    pub stat: &'a FileStat,
    /// Its names, sorted bytewise; the visitor may remove some (they are then not visited).
    pub names: &'a mut Vec<Vec<u8>>,
}

/// What the walk calls, in order: `entry` for every entry (the root first); for a
/// directory it returns `true`, `enter` with its names, its children, then `leave`.
pub trait Visit {
    /// Return whether to enter this entry (only asked of directories).
    fn entry(&mut self, e: &Entry<'_>) -> Result<bool>;
    fn enter(&mut self, _dir: &mut Dir<'_>) -> Result<()> {
        Ok(())
    }
    fn leave(&mut self, _path: &Path, _depth: usize) -> Result<()> {
        Ok(())
    }
}

/// A regular file or directory opened by the walk, with the mode to put back (through this
/// descriptor) when it had to be widened.
pub struct Opened {
    pub fd: OwnedFd,
    /// The mode it had before it was made readable.
    pub widened: Option<u32>,
}

impl Opened {
    /// Put the mode back now; the error, if any, is the caller's to report.
    pub fn restore(&mut self) -> io::Result<()> {
        match self.widened.take() {
            Some(mode) => sys::fchmod(&self.fd, mode),
            None => Ok(()),
        }
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Open the file the walk saw at `name` in `dir` for reading: never through a symlink, and
/// only if it is still the same file (type, device, inode) as `seen`; otherwise an error
/// saying it was replaced. A regular file is opened `O_NONBLOCK` so that a fifo put in its
/// place cannot hang the caller. With `widen`, a file the caller owns but cannot read is
/// made readable by its owner through an `O_PATH` descriptor of that same file (never by
/// name), the old mode kept in [`Opened::widened`].
pub fn open_file(dir: impl AsFd, name: &[u8], seen: &FileStat, widen: bool) -> io::Result<Opened> {
    let want = Identity::from_stat(seen);
    let (flags, bits) = match want.kind {
        Some(EntryKind::Directory) => (OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0o500),
        Some(EntryKind::File) => (OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY, 0o400),
        _ => return Err(io::Error::from_raw_os_error(nix::libc::EINVAL)),
    };
    match sys::open_at(dir.as_fd(), name, flags, 0) {
        Ok(fd) => {
            check(&want, &fd)?;
            Ok(Opened { fd, widened: None })
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::EACCES) && widen && seen.st_uid == euid() => {
            let path = sys::open_at(dir.as_fd(), name, OFlag::O_PATH, 0)?;
            widen_open(&path, &want, flags, bits)
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => Err(replaced()),
        Err(e) => Err(e),
    }
}

fn replaced() -> io::Error {
    io::Error::other("replaced by another file while being read (changed type, device or inode)")
}

fn check(want: &Identity, fd: &OwnedFd) -> io::Result<()> {
    if Identity::of(fd)? == *want {
        Ok(())
    } else {
        Err(replaced())
    }
}

/// `path` is an `O_PATH` descriptor of what should be `want`: check it, add the owner
/// `bits`, open it for reading through itself.
fn widen_open(path: &OwnedFd, want: &Identity, flags: OFlag, bits: u32) -> io::Result<Opened> {
    check(want, path)?;
    let mode = sys::stat(path)?.st_mode & 0o7777;
    sys::chmod_fd(path, mode | bits)?;
    match sys::reopen(path, flags) {
        Ok(fd) => Ok(Opened {
            fd,
            widened: Some(mode),
        }),
        Err(e) => {
            let _ = sys::chmod_fd(path, mode);
            Err(e)
        }
    }
}

/// A directory on the current path.
struct Frame {
    /// Closed for all but the deepest [`OPEN_DIRS`] frames; the deepest is always open.
    dir: Option<Opened>,
    id: Identity,
    names: Vec<Vec<u8>>,
    next: usize,
    /// Its mode to put back when it was widened and its descriptor was let go.
    widened: Option<u32>,
}

struct State {
    frames: Vec<Frame>,
    on_path: HashSet<(u64, u64)>,
    path: PathBuf,
}

impl State {
    fn top_fd(&self) -> Result<BorrowedFd<'_>> {
        self.frames
            .last()
            .and_then(|f| f.dir.as_ref())
            .map(|d| d.fd.as_fd())
            .context("the walk lost its directory")
    }

    /// Leave the deepest directory: reach its parent again if its descriptor was let go
    /// (before the mode is put back: `..` needs the search bit), then restore the mode.
    fn pop(&mut self) -> Result<()> {
        let Some(mut frame) = self.frames.pop() else {
            return Ok(());
        };
        self.on_path.remove(&(frame.id.dev, frame.id.ino));
        let mut dir = frame.dir.take().context("the walk lost its directory")?;
        let mut result = Ok(());
        if let Some(parent) = self.frames.last_mut() {
            if parent.dir.is_none() {
                // `self.path` still names the child here.
                let above = self.path.parent().unwrap_or(Path::new("/"));
                let fd = sys::open_parent(&dir.fd)
                    .with_context(|| format!("reading {}", quote(above)))?;
                if Identity::of(&fd)? == parent.id {
                    parent.dir = Some(Opened {
                        fd,
                        widened: parent.widened.take(),
                    });
                } else {
                    result = Err(anyhow::anyhow!(
                        "reading {}: it was moved while its subtree was read (its parent is not the directory walked); stopping",
                        quote(&self.path)
                    ));
                }
            }
        }
        if let Err(e) = dir.restore() {
            if result.is_ok() {
                result =
                    Err(e).with_context(|| format!("restoring the mode of {}", quote(&self.path)));
            }
        }
        if !self.frames.is_empty() {
            self.path.pop();
        }
        result
    }

    /// Enter a directory: `dir` is open and checked. Lets go of the descriptor of the
    /// shallowest frame that is over [`OPEN_DIRS`] (its widened mode stays on record).
    fn push(
        &mut self,
        dir: Opened,
        stat: &FileStat,
        depth: usize,
        opts: Options,
        v: &mut dyn Visit,
    ) -> Result<()> {
        let id = Identity::from_stat(stat);
        if !self.on_path.insert((id.dev, id.ino)) {
            bail!(
                "reading {}: it is one of the directories above it (a bind mount makes a cycle); refusing to walk it",
                quote(&self.path)
            );
        }
        let mut names = sys::read_names(&dir.fd)
            .with_context(|| format!("reading directory {}", quote(&self.path)))?;
        if opts.keep_atimes {
            // Best effort: reading the names moved it; a directory we do not own keeps it.
            let _ = sys::set_atime(&dir.fd, (stat.st_atime, stat.st_atime_nsec as u32));
        }
        names.sort_unstable();
        v.enter(&mut Dir {
            fd: dir.fd.as_fd(),
            path: &self.path,
            depth,
            stat,
            names: &mut names,
        })?;
        self.frames.push(Frame {
            dir: Some(dir),
            id,
            names,
            next: 0,
            widened: None,
        });
        let n = self.frames.len();
        if n > OPEN_DIRS {
            let old = &mut self.frames[n - OPEN_DIRS - 1];
            if let Some(mut d) = old.dir.take() {
                old.widened = d.widened.take();
            }
        }
        Ok(())
    }
}

impl Drop for State {
    /// A failed walk still puts every widened mode back (reaching closed parents again).
    fn drop(&mut self) {
        while !self.frames.is_empty() {
            if self.pop().is_err() {
                // A parent could not be reached: the modes above it stay widened.
                self.frames.clear();
            }
        }
    }
}

/// Open the root by its path (a symlink as the last component is refused).
fn open_root(root: &Path, seen: &FileStat, widen: bool) -> io::Result<Opened> {
    let want = Identity::from_stat(seen);
    match sys::open_dir(root) {
        Ok(fd) => {
            check(&want, &fd)?;
            Ok(Opened { fd, widened: None })
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::EACCES) && widen && seen.st_uid == euid() => {
            let path = sys::open_path(root)?;
            widen_open(&path, &want, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0o500)
        }
        Err(e) => Err(e),
    }
}

/// Walk the tree at `root` (a directory; a symlink there is refused), calling `v`.
pub fn walk(root: &Path, opts: Options, v: &mut dyn Visit) -> Result<()> {
    let reading = || format!("reading {}", quote(root));
    let seen = nix::sys::stat::lstat(root)
        .map_err(io::Error::from)
        .with_context(reading)?;
    if EntryKind::from_mode(seen.st_mode) != Some(EntryKind::Directory) {
        bail!("reading {}: not a directory", quote(root));
    }
    let mut state = State {
        frames: Vec::new(),
        on_path: HashSet::new(),
        path: root.to_path_buf(),
    };
    let enter = v.entry(&Entry {
        parent: None,
        name: b"",
        path: root,
        depth: 0,
        stat: &seen,
    })?;
    if !enter {
        return Ok(());
    }
    let dir = open_root(root, &seen, opts.widen)
        .with_context(|| format!("reading directory {}", quote(root)))?;
    state.push(dir, &seen, 0, opts, v)?;
    while let Some(top) = state.frames.last_mut() {
        if top.next == top.names.len() {
            let depth = state.frames.len() - 1;
            v.leave(&state.path, depth)?;
            state.pop()?;
            continue;
        }
        let name = std::mem::take(&mut top.names[top.next]);
        top.next += 1;
        let depth = state.frames.len();
        state.path.push(std::ffi::OsStr::from_bytes(&name));
        let parent = state.top_fd()?;
        let stat = sys::stat_at(parent, &name)
            .with_context(|| format!("reading {}", quote(&state.path)))?;
        let enter = v.entry(&Entry {
            parent: Some(parent),
            name: &name,
            path: &state.path,
            depth,
            stat: &stat,
        })?;
        if enter && EntryKind::from_mode(stat.st_mode) == Some(EntryKind::Directory) {
            let dir = open_file(parent, &name, &stat, opts.widen)
                .with_context(|| format!("reading directory {}", quote(&state.path)))?;
            state.push(dir, &stat, depth, opts, v)?;
        } else {
            state.path.pop();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seedkit-walk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[derive(Default)]
    struct Log(Vec<String>);

    impl Visit for Log {
        fn entry(&mut self, e: &Entry<'_>) -> Result<bool> {
            self.0
                .push(format!("{} {}", e.depth, String::from_utf8_lossy(e.name)));
            Ok(true)
        }
        fn leave(&mut self, _: &Path, depth: usize) -> Result<()> {
            self.0.push(format!("leave {depth}"));
            Ok(())
        }
    }

    #[test]
    fn names_come_sorted_bytewise_parents_first() {
        let d = temp_dir("order");
        for p in ["b", "a", "a-", "a/z", "a/y"] {
            if p.ends_with('-') || p == "b" {
                std::fs::write(d.join(p), b"").unwrap();
            } else {
                std::fs::create_dir_all(d.join(p)).unwrap();
            }
        }
        let mut log = Log::default();
        walk(&d, Options::default(), &mut log).unwrap();
        assert_eq!(
            log.0,
            [
                "0 ", "1 a", "2 y", "leave 2", "2 z", "leave 2", "leave 1", "1 a-", "1 b",
                "leave 0"
            ]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    struct Count(usize, usize);
    impl Visit for Count {
        fn entry(&mut self, e: &Entry<'_>) -> Result<bool> {
            self.0 = self.0.max(e.depth);
            let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
            self.1 = self.1.max(open);
            Ok(true)
        }
    }

    #[test]
    fn a_deep_chain_keeps_few_descriptors() {
        let d = temp_dir("deep");
        let top = sys::open_dir(&d).unwrap();
        let mut fd = sys::reopen_dir(&top).unwrap();
        for _ in 0..300 {
            nix::sys::stat::mkdirat(&fd, "d", nix::sys::stat::Mode::from_bits_truncate(0o755))
                .unwrap();
            fd = sys::open_dir_at(&fd, b"d").unwrap();
        }
        drop(fd);
        let mut c = Count(0, 0);
        walk(&d, Options::default(), &mut c).unwrap();
        assert_eq!(c.0, 300);
        assert!(c.1 < OPEN_DIRS + 16, "{} descriptors open", c.1);
        let _ = std::process::Command::new("rm").arg("-rf").arg(&d).status();
    }
}
