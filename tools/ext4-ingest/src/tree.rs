//! The source: a host tree walked with `lstat` (never following symlinks, never opening a
//! fifo or device), merged with the `ext4-rdump` manifest when there is one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::sys::stat::{fchmodat, utimensat, FchmodatFlags, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use seedkit::quote;
use seedkit::records::manifest::{MANIFEST_FORMAT, MANIFEST_VERSION};
use seedkit::records::{
    EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Rdev, Timestamp, Xattr,
};

/// A path inside the tree, as its components; empty for the tree's root. Ordering these
/// keys bytewise gives parents before children, siblings sorted by name.
pub type Key = Vec<Vec<u8>>;

/// Which names share one inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKey {
    /// The manifest's `link_group`.
    Group(u64),
    /// The host's `(st_dev, st_ino)`.
    Host(u64, u64),
}

/// One entry to write, with everything the image must hold.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: EntryKind,
    /// The 12 permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    /// Set only from a manifest; otherwise the fixed creation time stays.
    pub ctime: Option<Timestamp>,
    pub crtime: Option<Timestamp>,
    /// Apparent size (regular files).
    pub size: u64,
    /// Bytes the host allocates for it (`st_blocks * 512`), for space estimates.
    pub allocated: u64,
    pub rdev: Option<Rdev>,
    pub target: Option<Vec<u8>>,
    pub link: Option<LinkKey>,
    pub xattrs: Vec<Xattr>,
    /// The entry in the host tree, when it is there (for messages: it may be longer than
    /// PATH_MAX).
    pub host: Option<PathBuf>,
    /// A descriptor for the entry, held for the root and for names debugfs cannot be given.
    pub fd: Option<Arc<OwnedFd>>,
    /// The permission bits the host entry has while debugfs reads it (what `write` copies).
    pub host_mode: u32,
}

/// What the walk reports, in writing order (parents first, siblings sorted by bytes).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // nearly every message is an entry: boxing buys nothing
pub enum Walked {
    Entry(Key, Entry),
    /// The names a directory holds (valid ones), before its children's entries.
    Children(Key, Vec<Vec<u8>>),
    /// An entry that cannot be written (and its subtree), with the reason.
    Rejected(Key, String),
}

/// Permission changes made so that an unreadable entry owned by the caller can be read;
/// undone (children first) when dropped.
#[derive(Default)]
pub struct AccessGuard {
    changed: Vec<(Arc<OwnedFd>, OsString, u32, PathBuf)>,
}

impl AccessGuard {
    /// Add `bits` to the mode of `name` in `dir`, remembering the old mode.
    fn grant(
        &mut self,
        dir: &Arc<OwnedFd>,
        name: &OsStr,
        old: u32,
        bits: u32,
        shown: &Path,
    ) -> Result<()> {
        fchmodat(
            Some(dir.as_raw_fd()),
            name,
            Mode::from_bits_truncate(old | bits),
            FchmodatFlags::FollowSymlink,
        )
        .with_context(|| format!("making {} readable", quote(shown)))?;
        self.changed
            .push((dir.clone(), name.to_os_string(), old, shown.to_path_buf()));
        Ok(())
    }

    /// Put every mode back; the first failure is returned.
    pub fn restore(&mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some((dir, name, mode, shown)) = self.changed.pop() {
            let r = fchmodat(
                Some(dir.as_raw_fd()),
                name.as_os_str(),
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            );
            if let Err(e) = r {
                if first.is_ok() {
                    first = Err(io::Error::from(e)).with_context(|| {
                        format!("restoring the mode {mode:04o} of {}", quote(&shown))
                    });
                }
            }
        }
        first
    }
}

impl Drop for AccessGuard {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// Why a name cannot be an ext4 directory entry, if it cannot.
pub fn invalid_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name.len() > 255 {
        Some("name longer than 255 bytes")
    } else if name == b"." || name == b".." {
        Some("name is . or ..")
    } else if name.contains(&b'/') {
        Some("name holds a slash")
    } else if name.contains(&0) {
        Some("name holds a NUL byte")
    } else {
        None
    }
}

/// The key as a relative path for messages (`.` for the root).
pub fn display_key(key: &[Vec<u8>]) -> PathBuf {
    if key.is_empty() {
        return PathBuf::from(".");
    }
    PathBuf::from(OsStr::from_bytes(&key.join(&b'/')))
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

/// Real paths up to this length are used as they are (cheaper for the kernel than the
/// `/proc` magic link); longer ones go through [`via`].
const SHORT_PATH: usize = 3072;

/// `real` when it is short, else a path through the descriptor of its directory.
fn reach(real: &Path, dir: &OwnedFd, name: &OsStr) -> PathBuf {
    if is_short(real) {
        real.to_path_buf()
    } else {
        via(dir, name)
    }
}

/// A path that reaches `name` in the directory `dir` whatever the length of its real path:
/// every syscall sees at most `/proc/self/fd/N/` and one name.
fn via(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if !name.is_empty() {
        p.push(name);
    }
    p
}

fn open_dir(path: &Path, shown: &Path) -> Result<Arc<OwnedFd>> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("reading {}", quote(shown)))?;
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    Ok(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// An `O_PATH` descriptor, for an entry debugfs must reach as `/proc/<pid>/fd/N` (its name
/// cannot go through the script).
fn open_path(path: &Path, shown: &Path) -> Result<Arc<OwnedFd>> {
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", quote(shown)))?;
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    Ok(Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Walk `root` (a directory), reading metadata only, and hand every entry to `sink` in
/// writing order; unreadable directories and files owned by the caller are made readable
/// through `guard`. Works through directory descriptors, so paths of any length are fine.
pub fn walk(
    root: &Path,
    guard: &mut AccessGuard,
    sink: &mut dyn FnMut(Walked) -> Result<()>,
) -> Result<()> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", quote(root)))?;
    if !meta.is_dir() {
        bail!("reading {}: not a directory", quote(root));
    }
    let mut w = Walker {
        euid: nix::unistd::geteuid().as_raw(),
        sink,
        guard,
    };
    // The root is reached through its parent, so that it can be made readable like any other.
    let parent = root
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let root_name = root.file_name().map(OsStr::to_os_string);
    if let Some(name) = root_name {
        let pfd = open_dir(parent, parent)?;
        w.visit(&pfd, &name, &[], root, &meta)
    } else {
        // `/` or a path ending in `..`: open it directly.
        let fd = open_dir(root, root)?;
        w.visit(&fd, OsStr::new(""), &[], root, &meta)
    }
}

struct Walker<'a> {
    euid: u32,
    sink: &'a mut dyn FnMut(Walked) -> Result<()>,
    guard: &'a mut AccessGuard,
}

impl Walker<'_> {
    /// Record `name` of the directory `dir` (with its metadata `meta`), and its subtree.
    fn visit(
        &mut self,
        dir: &Arc<OwnedFd>,
        name: &OsStr,
        key: &[Vec<u8>],
        shown: &Path,
        meta: &fs::Metadata,
    ) -> Result<()> {
        let path = reach(shown, dir, name);
        let mut host_mode = meta.mode() & 0o7777;
        let kind = EntryKind::from_mode(meta.mode())
            .with_context(|| format!("reading {}: unknown file type", quote(&shown)))?;
        let wants = match kind {
            EntryKind::Directory => Some((libc::R_OK | libc::X_OK, 0o500)),
            EntryKind::File => Some((libc::R_OK, 0o400)),
            _ => None,
        };
        if let Some((how, bits)) = wants {
            // The owner class alone decides for the owner; root reads anything.
            let plainly = self.euid == 0 || (meta.uid() == self.euid && meta.mode() & bits == bits);
            if !plainly && !readable(&path, how) {
                if meta.uid() != self.euid {
                    bail!(
                        "reading {}: Permission denied (not owned by the caller, so its mode cannot be widened)",
                        quote(&shown)
                    );
                }
                if name.is_empty() {
                    bail!("reading {}: Permission denied", quote(&shown));
                }
                self.guard.grant(dir, name, host_mode, bits, shown)?;
                host_mode |= bits;
            }
        }
        let target = if kind == EntryKind::Symlink {
            Some(
                fs::read_link(&path)
                    .with_context(|| format!("reading the symlink {}", quote(&shown)))?
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else {
            None
        };
        let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| Rdev {
            major: libc::major(meta.rdev()),
            minor: libc::minor(meta.rdev()),
        });
        let link = (kind != EntryKind::Directory && meta.nlink() > 1)
            .then(|| LinkKey::Host(meta.dev(), meta.ino()));
        let xattrs = host_xattrs(&path)
            .with_context(|| format!("reading the extended attributes of {}", quote(&shown)))?;
        let own = if kind == EntryKind::Directory {
            Some(open_dir(&path, shown)?)
        } else {
            None
        };
        let fd = if key.is_empty() || key.last().is_some_and(|n| crate::script::needs_rename(n)) {
            match &own {
                Some(d) => Some(d.clone()),
                None => Some(open_path(&path, shown)?),
            }
        } else {
            None
        };
        (self.sink)(Walked::Entry(
            key.to_vec(),
            Entry {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                atime: timestamp(meta.atime(), meta.atime_nsec()),
                mtime: timestamp(meta.mtime(), meta.mtime_nsec()),
                ctime: None,
                crtime: None,
                size: if kind == EntryKind::File {
                    meta.size()
                } else {
                    0
                },
                allocated: meta.blocks() * 512,
                rdev,
                target,
                link,
                xattrs,
                host: Some(shown.to_path_buf()),
                fd,
                host_mode,
            },
        ))?;
        let Some(own) = own else { return Ok(()) };
        let mut names = Vec::new();
        let rd = fs::read_dir(reach(shown, &own, OsStr::new("")))
            .with_context(|| format!("reading {}", quote(&shown)))?;
        for item in rd {
            let item = item.with_context(|| format!("reading {}", quote(&shown)))?;
            names.push(item.file_name());
        }
        names.sort();
        // A host name is valid for the host's file system, but maybe not for ext4 (over 255
        // bytes).
        let mut valid = Vec::with_capacity(names.len());
        for child in names {
            let mut k = key.to_vec();
            k.push(child.as_bytes().to_vec());
            if let Some(why) = invalid_name(child.as_bytes()) {
                (self.sink)(Walked::Rejected(k, why.to_string()))?;
            } else {
                valid.push(child);
            }
        }
        (self.sink)(Walked::Children(
            key.to_vec(),
            valid.iter().map(|n| n.as_bytes().to_vec()).collect(),
        ))?;
        for child in valid {
            let child_shown = shown.join(&child);
            let m = fs::symlink_metadata(reach(&child_shown, &own, &child))
                .with_context(|| format!("reading {}", quote(&child_shown)))?;
            let mut k = key.to_vec();
            k.push(child.as_bytes().to_vec());
            self.visit(&own, &child, &k, &child_shown, &m)?;
        }
        Ok(())
    }
}

/// Put back the access times that reading the tree (our walk, debugfs's reads, readlink)
/// changed, so that a second run over the same tree writes the same image (as
/// `tar --atime-preserve=replace`). Best effort: an entry the caller may not touch keeps its
/// new atime. Works through directory descriptors, like [`walk`].
/// Entries with a short path are left to [`restore_atime`], called while debugfs runs.
pub fn restore_atimes(entries: &BTreeMap<Key, Entry>) {
    // Open directories along the current path: `stack[n]` is the directory of depth n.
    let mut stack: Vec<Arc<OwnedFd>> = Vec::new();
    for (key, e) in entries {
        let Some(host) = &e.host else { continue };
        let short = is_short(host);
        if key.is_empty() {
            if let Some(fd) = &e.fd {
                if !short {
                    let path = via(fd, OsStr::new(""));
                    put_atime(None, &path, e.atime, FchmodatFlags::FollowSymlink);
                }
                stack = vec![fd.clone()];
            }
            continue;
        }
        stack.truncate(key.len());
        let Some(parent) = stack.get(key.len() - 1).cloned() else {
            continue;
        };
        let name = OsStr::from_bytes(&key[key.len() - 1]);
        if !short {
            put_atime(
                Some(&parent),
                Path::new(name),
                e.atime,
                FchmodatFlags::NoFollowSymlink,
            );
        }
        if e.kind == EntryKind::Directory {
            if let Ok(d) = open_dir(&via(&parent, name), Path::new(name)) {
                stack.push(d);
            } else {
                // Its subtree cannot be reached; skip it (the stack stays one short).
                stack.push(parent);
            }
        }
    }
}

/// Whether a host path is used as it is (see [`SHORT_PATH`]).
pub fn is_short(path: &Path) -> bool {
    path.as_os_str().len() < SHORT_PATH
}

/// Put back the atime of an entry with a short path (see [`restore_atimes`]).
pub fn restore_atime(path: &Path, atime: Timestamp) {
    put_atime(None, path, atime, FchmodatFlags::NoFollowSymlink);
}

fn put_atime(dir: Option<&Arc<OwnedFd>>, path: &Path, atime: Timestamp, follow: FchmodatFlags) {
    let raw = dir.map(AsRawFd::as_raw_fd);
    let flags = match follow {
        FchmodatFlags::FollowSymlink => UtimensatFlags::FollowSymlink,
        FchmodatFlags::NoFollowSymlink => UtimensatFlags::NoFollowSymlink,
    };
    // Set blindly: a read moved nearly every atime (relatime moves it when it is not newer
    // than mtime), and asking first would cost a second syscall per entry.
    let at = TimeSpec::new(atime.sec, i64::from(atime.nsec));
    let _ = utimensat(raw, path, &at, &TimeSpec::UTIME_OMIT, flags);
}

fn readable(path: &Path, how: libc::c_int) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), how, libc::AT_EACCESS) == 0 }
}

/// The extended attributes of `path` itself (never following a symlink). A file system
/// without xattr support has none.
fn host_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut names = vec![0u8; 1024];
    let len = loop {
        // SAFETY: the buffer pointer and length describe `names`.
        let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(io::Error::other)?;
        let mut value = vec![0u8; 256];
        loop {
            // SAFETY: the buffer pointer and length describe `value`.
            let n = unsafe {
                libc::lgetxattr(
                    c.as_ptr(),
                    cname.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            if n >= 0 {
                value.truncate(n as usize);
                break;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ERANGE) if value.len() < 1 << 20 => value.resize(value.len() * 4, 0),
                Some(libc::ENODATA) => {
                    value.clear();
                    break;
                }
                _ => return Err(err),
            }
        }
        out.push(Xattr {
            name: name.into(),
            value: seedkit::json::Bytes(value),
        });
    }
    out.sort();
    Ok(out)
}

/// Read a manifest: its header, then the entries keyed by path.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    let file =
        fs::File::open(path).with_context(|| format!("reading the manifest {}", quote(path)))?;
    let mut lines = BufReader::new(file).split(b'\n');
    let what = || format!("reading the manifest {}", quote(path));
    let header: ManifestHeader = match lines.next() {
        Some(line) => match serde_json::from_slice(&line.with_context(what)?) {
            Ok(ManifestLine::Header(h)) => h,
            _ => bail!(
                "{}: the first line is not a manifest header (use --no-manifest to ignore it)",
                what()
            ),
        },
        None => bail!("{}: empty file", what()),
    };
    if header.format != MANIFEST_FORMAT || header.version != MANIFEST_VERSION {
        bail!(
            "{}: format {:?} version {} is not {MANIFEST_FORMAT:?} version {MANIFEST_VERSION}",
            what(),
            header.format,
            header.version
        );
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.with_context(what)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(ManifestLine::Entry(e)) => out.push(e),
            Ok(ManifestLine::Header(_)) => bail!("{}: line {}: a second header", what(), n + 2),
            Err(e) => bail!("{}: line {}: {e}", what(), n + 2),
        }
    }
    Ok(out)
}

/// The key of a manifest path (`.` is the root); `Err` names the invalid component.
fn manifest_key(path: &[u8]) -> Result<Key, (Key, &'static str)> {
    if path == b"." {
        return Ok(Vec::new());
    }
    let mut key = Vec::new();
    for part in path.split(|&b| b == b'/') {
        key.push(part.to_vec());
        if let Some(why) = invalid_name(part) {
            return Err((key, why));
        }
    }
    Ok(key)
}

/// Merges the manifest into the walk's stream: what the host tree cannot hold is taken from
/// it, and the entries it recorded but could not stage are added in their place in the order.
pub struct Merger {
    /// Manifest entries not yet matched with a host entry nor emitted.
    pending: BTreeMap<Key, ManifestEntry>,
    /// Manifest paths that are not valid names.
    pub rejected: Vec<(Key, String)>,
}

impl Merger {
    pub fn new(manifest: Vec<ManifestEntry>) -> Result<Merger> {
        let mut pending = BTreeMap::new();
        let mut rejected: Vec<(Key, String)> = Vec::new();
        for m in manifest {
            match manifest_key(&m.path.0) {
                Ok(k) => {
                    if pending.contains_key(&k) {
                        bail!("the manifest lists {} twice", quote(&display_key(&k)));
                    }
                    pending.insert(k, m);
                }
                Err((k, why)) => {
                    if !rejected.iter().any(|(r, _)| k.starts_with(r)) {
                        rejected.push((k, why.to_string()));
                    }
                }
            }
        }
        pending.retain(|k, _| !rejected.iter().any(|(r, _)| k.starts_with(r)));
        Ok(Merger { pending, rejected })
    }

    /// Manifest entries that sort before `key` (all that are left, for `None`): with the
    /// host entries arriving in order, these are the ones the host tree does not hold.
    pub fn before(&mut self, key: Option<&Key>) -> Vec<(Key, ManifestEntry)> {
        let rest = match key {
            Some(k) => self.pending.split_off(k),
            None => BTreeMap::new(),
        };
        let before = std::mem::replace(&mut self.pending, rest);
        before.into_iter().collect()
    }

    /// Forget the manifest entries under a rejected host entry.
    pub fn drop_under(&mut self, key: &Key) {
        self.pending.retain(|k, _| !k.starts_with(key));
    }

    /// Give a host entry what the manifest recorded for it.
    pub fn apply_host(&mut self, key: &Key, e: &mut Entry) -> Result<()> {
        let Some(m) = self.pending.remove(key) else {
            return Ok(());
        };
        let special = matches!(
            m.kind,
            EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Socket
        );
        if m.kind != e.kind && !special {
            bail!(
                "the manifest says {} is a {:?} but the tree holds a {:?}",
                quote(&display_key(key)),
                m.kind,
                e.kind
            );
        }
        e.kind = m.kind;
        apply(e, &m);
        if special {
            e.host = None;
            e.fd = None;
        }
        Ok(())
    }
}

/// The entry for a manifest entry the host tree does not hold: `Ok(Err(reason))` when it
/// cannot be written, `Err` when the manifest and the tree disagree.
pub fn from_manifest(key: &Key, m: &ManifestEntry) -> Result<Result<Entry, String>> {
    let shown = display_key(key);
    if m.staged {
        bail!(
            "the manifest lists {} as staged but the tree does not hold it",
            quote(&shown)
        );
    }
    if m.kind == EntryKind::File && m.size > 0 {
        return Ok(Err(
            "a regular file recorded in the manifest but not staged (no content)".to_string(),
        ));
    }
    if m.kind == EntryKind::Symlink && m.target.is_none() {
        bail!(
            "the manifest gives no target for the symlink {}",
            quote(&shown)
        );
    }
    let mut e = Entry {
        kind: m.kind,
        mode: 0,
        uid: 0,
        gid: 0,
        atime: Timestamp::default(),
        mtime: Timestamp::default(),
        ctime: None,
        crtime: None,
        size: 0,
        allocated: 0,
        rdev: None,
        target: None,
        link: None,
        xattrs: Vec::new(),
        host: None,
        fd: None,
        host_mode: 0,
    };
    apply(&mut e, m);
    Ok(Ok(e))
}

fn apply(e: &mut Entry, m: &ManifestEntry) {
    e.mode = m.mode & 0o7777;
    e.uid = m.uid;
    e.gid = m.gid;
    e.atime = m.atime;
    e.mtime = m.mtime;
    e.ctime = Some(m.ctime);
    e.crtime = m.crtime;
    if m.rdev.is_some() {
        e.rdev = m.rdev;
    }
    if e.kind == EntryKind::Symlink && e.target.is_none() {
        e.target = m.target.as_ref().map(|t| t.0.clone());
    }
    if let Some(g) = m.link_group {
        e.link = Some(LinkKey::Group(g));
    } else if e.host.is_some() && e.kind != EntryKind::Directory {
        // The manifest is the truth about hard links: a host link made while staging is not one.
        e.link = None;
    }
    e.xattrs.clone_from(&m.xattrs);
    e.xattrs.sort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_like_ext4() {
        assert!(invalid_name(b"").is_some());
        assert!(invalid_name(&[b'a'; 256]).is_some());
        assert!(invalid_name(&[b'a'; 255]).is_none());
        assert!(invalid_name(b".").is_some());
        assert!(invalid_name(b"..").is_some());
        assert!(invalid_name(b"...").is_none());
        assert!(invalid_name(b"a/b").is_some());
        assert!(invalid_name(b"a\0").is_some());
        assert!(invalid_name(b"\n\r\xff").is_none());
    }

    #[test]
    fn manifest_paths_split_into_keys() {
        assert_eq!(manifest_key(b".").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            manifest_key(b"a/b").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(manifest_key(b"a//b").is_err());
        assert!(manifest_key(b"a/../b").is_err());
    }

    #[test]
    fn keys_sort_parents_first_and_bytewise() {
        let mut keys: Vec<Key> = vec![
            vec![b"b".to_vec()],
            vec![b"a".to_vec(), b"z".to_vec()],
            vec![b"a-".to_vec()],
            vec![b"a".to_vec()],
            vec![],
        ];
        keys.sort();
        assert_eq!(keys[0], Vec::<Vec<u8>>::new());
        assert_eq!(keys[1], vec![b"a".to_vec()]);
        assert_eq!(keys[2], vec![b"a".to_vec(), b"z".to_vec()]);
        assert_eq!(keys[3], vec![b"a-".to_vec()]);
    }
}
