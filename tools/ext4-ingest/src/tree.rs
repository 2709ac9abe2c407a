//! The source: a host tree walked through directory descriptors ([`seedkit::walk`]: never
//! following a symlink, never opening a fifo or device, any depth, a bounded number of
//! descriptors), merged with the `ext4-rdump` manifest when there is one.
//!
//! Every regular file is opened by the walk itself, relative to its directory's descriptor
//! with `O_NOFOLLOW`, and checked to be the file the walk stat'ed (type, device, inode): its
//! content reaches the image only through that descriptor ([`HostFile`]). A file or
//! directory the caller owns but cannot read is made readable through a descriptor of that
//! very file, and put back the same way; nothing is changed by name.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::libc;
use seedkit::quote;
use seedkit::records::{EntryKind, ManifestEntry, Rdev, Timestamp, Xattr};
use seedkit::sys;
use seedkit::walk::{self, Opened};

/// A path inside the tree: its names joined by NUL bytes, which no name holds (empty for
/// the tree's root). One allocation about the path's length, however deep; the bytewise
/// order of keys is the order of their names: parents first, siblings sorted by bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

/// A key's bytes, for map lookups by a parent's or a one-name key without building one
/// (`Vec<u8>` orders and hashes as its slice, so the two agree).
impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl Key {
    /// The key of these names, outermost first.
    pub fn from_names<N: AsRef<[u8]>>(names: impl IntoIterator<Item = N>) -> Key {
        let mut k = Key::default();
        for n in names {
            k.push(n.as_ref());
        }
        k
    }

    /// The key of a path that may not be one (absolute, with `..`, empty components),
    /// to name it in a message as it was given.
    pub fn for_display(path: &[u8]) -> Key {
        Key(path
            .iter()
            .map(|&b| if b == b'/' { 0 } else { b })
            .collect())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the tree's root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of names: 0 for the root, 1 for a top-level entry.
    pub fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            1 + memchr::memchr_iter(0, &self.0).count()
        }
    }

    pub fn push(&mut self, name: &[u8]) {
        if !self.0.is_empty() {
            self.0.push(0);
        }
        self.0.extend_from_slice(name);
    }

    #[must_use]
    pub fn child(&self, name: &[u8]) -> Key {
        let mut k = self.clone();
        k.push(name);
        k
    }

    /// The last name (`None` for the root).
    pub fn name(&self) -> Option<&[u8]> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == 0) {
            Some(at) => &self.0[at + 1..],
            None => &self.0,
        })
    }

    /// The parent's key bytes (`None` for the root).
    pub fn parent(&self) -> Option<&[u8]> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == 0) {
            Some(at) => &self.0[..at],
            None => &[],
        })
    }

    /// The names, outermost first.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == 0).filter(|_| !self.0.is_empty())
    }

    /// Whether `self` is inside `ancestor` (and not `ancestor` itself).
    pub fn is_below(&self, ancestor: &Key) -> bool {
        self.0.len() > ancestor.0.len() && self.starts_with(ancestor)
    }

    /// Whether `self` is `prefix` or inside it.
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0.starts_with(&prefix.0)
            && (prefix.0.is_empty()
                || self.0.len() == prefix.0.len()
                || self.0[prefix.0.len()] == 0)
    }
}

/// The key of the entry a walk is at, kept as the walk goes down and up.
#[derive(Default)]
pub struct KeyPath {
    key: Key,
    /// `ends[d]`: the length of the key of depth `d`'s bytes.
    ends: Vec<usize>,
}

impl KeyPath {
    /// Now at `name`, at `depth` (0: the root, whose name is ignored).
    pub fn set(&mut self, depth: usize, name: &[u8]) -> &Key {
        if depth == 0 {
            self.key.0.clear();
            self.ends = vec![0];
        } else {
            self.ends.truncate(depth);
            let end = self.ends.last().copied().unwrap_or(0);
            self.key.0.truncate(end);
            self.key.push(name);
            self.ends.push(self.key.0.len());
        }
        &self.key
    }

    pub fn key(&self) -> &Key {
        &self.key
    }
}

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
    /// Whether the entry is in the host tree (else it comes from the manifest only).
    pub host: bool,
    /// The host entry's `(st_dev, st_ino)` as the walk saw it: what a later read must find.
    pub host_id: Option<(u64, u64)>,
    /// The permission bits the host entry has while it is read.
    pub host_mode: u32,
}

impl Entry {
    /// An entry of `kind` with nothing set yet: no permissions, owner 0:0, times at the
    /// epoch, no size, target, device, link or xattrs, not from the host.
    pub fn new(kind: EntryKind) -> Entry {
        Entry {
            kind,
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
            host: false,
            host_id: None,
            host_mode: 0,
        }
    }
}

/// What the walk reports, in writing order (parents first, siblings sorted by bytes).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // nearly every message is an entry: boxing buys nothing
pub enum Walked {
    /// An entry, with its content's descriptor for a regular file.
    Entry(Key, Entry, Option<HostFile>),
    /// The names a directory holds (valid ones), before its children's entries.
    Children(Key, Vec<Vec<u8>>),
    /// An entry that cannot be written (and its subtree), with the reason.
    Rejected(Key, String),
}

/// A regular file of the tree, opened by the walk and checked to be the file it saw: its
/// content is read through this descriptor only, copied straight into the image's blocks.
/// Dropping it puts back the access time that reading moved
/// and the mode, if it had to be made readable.
pub struct HostFile {
    opened: Opened,
    atime: Timestamp,
}

impl std::fmt::Debug for HostFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostFile({})", self.raw_fd())
    }
}

impl HostFile {
    pub fn raw_fd(&self) -> RawFd {
        self.opened.fd.as_raw_fd()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.opened.fd.as_fd()
    }

    /// Done reading: put the access time and the mode back, reporting a mode that could
    /// not be restored.
    pub fn close(mut self, shown: &Path) -> Result<()> {
        let _ = sys::set_atime(&self.opened.fd, (self.atime.sec, self.atime.nsec));
        self.opened
            .restore()
            .with_context(|| format!("restoring the mode of {}", quote(shown)))
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // Best effort: a file we do not own keeps its new atime.
        let _ = sys::set_atime(&self.opened.fd, (self.atime.sec, self.atime.nsec));
    }
}

/// Why a name cannot be an ext4 directory entry, if it cannot.
pub use seedkit::tar::invalid_name;

/// The key as a relative path for messages (`.` for the root).
pub fn display_key(key: &Key) -> PathBuf {
    if key.is_root() {
        return PathBuf::from(".");
    }
    let bytes: Vec<u8> = key
        .as_bytes()
        .iter()
        .map(|&b| if b == 0 { b'/' } else { b })
        .collect();
    PathBuf::from(OsStr::from_bytes(&bytes))
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

/// Test hook: when `EXT4_INGEST_TEST_PAUSE` names a directory holding the fifos `paused`
/// and `resume`, write `before PATH` (then `after PATH`) to `paused` and wait for a line on
/// `resume`, before and after opening each regular file (and `written IMAGE` once the image
/// is written, before `--verify` reads it back): a test changes the tree or the image at
/// exactly those points.
pub(crate) fn test_pause(when: &str, path: &Path) {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let Some(dir) =
        DIR.get_or_init(|| std::env::var_os("EXT4_INGEST_TEST_PAUSE").map(PathBuf::from))
    else {
        return;
    };
    if let Ok(mut f) = fs::OpenOptions::new().write(true).open(dir.join("paused")) {
        let mut line = format!("{when} ").into_bytes();
        line.extend_from_slice(path.as_os_str().as_bytes());
        line.push(b'\n');
        let _ = io::Write::write_all(&mut f, &line);
    }
    // Wait for a whole line: opening the fifo while the test still holds the writer it used
    // to let the previous pause go would otherwise see that writer's end of file, go on
    // unasked, and leave the test waiting for a reader that never comes.
    let mut line = String::new();
    while !line.ends_with('\n') {
        let Ok(f) = fs::File::open(dir.join("resume")) else {
            return;
        };
        if BufReader::new(f).read_line(&mut line).is_err() {
            return;
        }
    }
}

/// Walk `root` (a directory), and hand every entry to `sink` in writing order, regular
/// files opened (see [`HostFile`]). Directories and files the caller owns but cannot read
/// are made readable through their descriptors; directories get their modes and access
/// times back as the walk leaves them.
pub fn walk(root: &Path, sink: &mut dyn FnMut(Walked) -> Result<()>) -> Result<()> {
    let mut v = Visitor {
        key: KeyPath::default(),
        sink,
        dir: None,
        euid: nix::unistd::geteuid().as_raw(),
    };
    let opts = walk::Options {
        widen: true,
        keep_atimes: true,
    };
    walk::walk(root, opts, &mut v)
}

struct Visitor<'a> {
    /// The key of the entry met last.
    key: KeyPath,
    sink: &'a mut dyn FnMut(Walked) -> Result<()>,
    /// A directory's entry, sent once it is open (its xattrs are read through it).
    dir: Option<Entry>,
    euid: u32,
}

impl walk::Visit for Visitor<'_> {
    fn entry(&mut self, w: &walk::Entry<'_>) -> Result<bool> {
        self.key.set(w.depth, w.name);
        let st = w.stat;
        let kind = EntryKind::from_mode(st.st_mode)
            .with_context(|| format!("reading {}: unknown file type", quote(w.path)))?;
        let mut e = host_entry(kind, st);
        let mut file = None;
        match (kind, w.parent) {
            (EntryKind::Directory, _) => {
                self.dir = Some(e);
                return Ok(true);
            }
            (EntryKind::File, Some(parent)) => {
                test_pause("before", w.path);
                let opened = walk::open_file(parent, w.name, st, true).map_err(|err| {
                    if err.raw_os_error() == Some(libc::EACCES) && st.st_uid != self.euid {
                        anyhow::anyhow!(
                            "reading {}: Permission denied (not owned by the caller, so its mode cannot be widened)",
                            quote(w.path)
                        )
                    } else {
                        anyhow::Error::from(err).context(format!("reading {}", quote(w.path)))
                    }
                })?;
                test_pause("after", w.path);
                if opened.widened.is_some() {
                    e.host_mode |= 0o400;
                }
                e.xattrs = fd_xattrs(opened.fd.as_fd()).with_context(|| {
                    format!("reading the extended attributes of {}", quote(w.path))
                })?;
                file = Some(HostFile {
                    opened,
                    atime: e.atime,
                });
            }
            (_, Some(parent)) => {
                if kind == EntryKind::Symlink {
                    let target = sys::read_link_at(parent, w.name)
                        .with_context(|| format!("reading the symlink {}", quote(w.path)))?;
                    // Reading it moved its atime.
                    let _ = sys::set_atime_at(parent, w.name, (e.atime.sec, e.atime.nsec));
                    e.target = Some(target);
                }
                e.xattrs = name_xattrs(parent, w.name).with_context(|| {
                    format!("reading the extended attributes of {}", quote(w.path))
                })?;
            }
            (_, None) => bail!("reading {}: not a directory", quote(w.path)),
        }
        (self.sink)(Walked::Entry(self.key.key().clone(), e, file))?;
        Ok(false)
    }

    fn enter(&mut self, d: &mut walk::Dir<'_>) -> Result<()> {
        let mut e = self
            .dir
            .take()
            .context("the walk entered an unknown directory")?;
        e.xattrs = fd_xattrs(d.fd)
            .with_context(|| format!("reading the extended attributes of {}", quote(d.path)))?;
        (self.sink)(Walked::Entry(self.key.key().clone(), e, None))?;
        // A host name is valid for the host's file system, but maybe not for ext4 (over 255
        // bytes).
        let mut valid = Vec::with_capacity(d.names.len());
        for name in d.names.drain(..) {
            if let Some(why) = invalid_name(&name) {
                let k = self.key.key().child(&name);
                (self.sink)(Walked::Rejected(k, why.to_string()))?;
            } else {
                valid.push(name);
            }
        }
        *d.names = valid;
        (self.sink)(Walked::Children(self.key.key().clone(), d.names.clone()))
    }
}

/// What the walk's stat says of an entry.
fn host_entry(kind: EntryKind, st: &nix::sys::stat::FileStat) -> Entry {
    let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| Rdev {
        major: libc::major(st.st_rdev),
        minor: libc::minor(st.st_rdev),
    });
    let mode = st.st_mode & 0o7777;
    Entry {
        kind,
        mode,
        uid: st.st_uid,
        gid: st.st_gid,
        atime: timestamp(st.st_atime, st.st_atime_nsec),
        mtime: timestamp(st.st_mtime, st.st_mtime_nsec),
        ctime: None,
        crtime: None,
        size: if kind == EntryKind::File {
            st.st_size.max(0) as u64
        } else {
            0
        },
        allocated: (st.st_blocks.max(0) as u64).saturating_mul(512),
        rdev,
        target: None,
        link: (kind != EntryKind::Directory && st.st_nlink > 1)
            .then_some(LinkKey::Host(st.st_dev, st.st_ino)),
        xattrs: Vec::new(),
        host: true,
        host_id: Some((st.st_dev, st.st_ino)),
        host_mode: mode,
    }
}

fn no_xattrs(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// The extended attributes of an open file or directory, sorted. A file system without
/// xattr support has none; one removed meanwhile is left out.
fn fd_xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<Xattr>> {
    let names = match sys::list_xattrs(fd) {
        Ok(n) => n,
        Err(e) if no_xattrs(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    collect_xattrs(names, |n| sys::get_xattr(fd, n))
}

/// The extended attributes of `name` in `dir`, a symlink as itself.
fn name_xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<Xattr>> {
    let names = sys::list_xattrs_at(dir, name)?;
    collect_xattrs(names, |n| sys::get_xattr_at(dir, name, n))
}

fn collect_xattrs(
    names: Vec<Vec<u8>>,
    mut get: impl FnMut(&[u8]) -> io::Result<Vec<u8>>,
) -> io::Result<Vec<Xattr>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let value = match get(&name) {
            Ok(v) => v,
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        out.push(Xattr {
            name: seedkit::json::Bytes(name),
            value: seedkit::json::Bytes(value),
        });
    }
    out.sort();
    Ok(out)
}

/// The key of a manifest path (`.` is the root); `Err` names the invalid component.
fn manifest_key(path: &[u8]) -> Result<Key, (Key, &'static str)> {
    if path == b"." {
        return Ok(Key::default());
    }
    let mut key = Key::default();
    for part in path.split(|&b| b == b'/') {
        key.push(part);
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
        if m.kind != e.kind {
            // Trusting it would plan the tree's entry as something else (a directory as a
            // device, its children elsewhere).
            bail!(
                "the manifest says {} is a {} but the tree holds a {}; refusing a manifest that disagrees with the tree",
                quote(&display_key(key)),
                kind_name(m.kind),
                kind_name(e.kind)
            );
        }
        apply(e, &m);
        if !matches!(
            e.kind,
            EntryKind::File | EntryKind::Directory | EntryKind::Symlink
        ) {
            // Made from the manifest's record, never from the host's node.
            e.host = false;
            e.host_id = None;
        }
        Ok(())
    }
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "regular file",
        EntryKind::Directory => "directory",
        EntryKind::Symlink => "symlink",
        EntryKind::Fifo => "fifo",
        EntryKind::Socket => "socket",
        EntryKind::CharDevice => "character device",
        EntryKind::BlockDevice => "block device",
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
    let mut e = Entry::new(m.kind);
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
    } else if e.host && e.kind != EntryKind::Directory {
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
        assert_eq!(manifest_key(b".").unwrap(), Key::default());
        assert_eq!(manifest_key(b"a/b").unwrap(), Key::from_names([b"a", b"b"]));
        assert!(manifest_key(b"a//b").is_err());
        assert!(manifest_key(b"a/../b").is_err());
    }

    #[test]
    fn keys_sort_parents_first_and_bytewise() {
        let k = |names: &[&str]| Key::from_names(names.iter().map(|n| n.as_bytes()));
        let mut keys = vec![k(&["b"]), k(&["a", "z"]), k(&["a-"]), k(&["a"]), k(&[])];
        keys.sort();
        assert_eq!(
            keys,
            [k(&[]), k(&["a"]), k(&["a", "z"]), k(&["a-"]), k(&["b"])]
        );
    }

    #[test]
    fn keys_know_their_parts() {
        let k = Key::from_names([&b"a"[..], b"bc", b"d"]);
        assert_eq!(k.depth(), 3);
        assert_eq!(k.name(), Some(&b"d"[..]));
        assert_eq!(
            k.parent(),
            Some(Key::from_names([&b"a"[..], b"bc"]).as_bytes())
        );
        assert!(k.starts_with(&Key::from_names([b"a"])));
        assert!(!k.starts_with(&Key::from_names([b"ab"])));
        assert!(!Key::from_names([b"ab"]).starts_with(&Key::from_names([b"a"])));
        assert_eq!(k.names().collect::<Vec<_>>(), [&b"a"[..], b"bc", b"d"]);
        assert_eq!(Key::default().names().count(), 0);
        assert_eq!(display_key(&k), PathBuf::from("a/bc/d"));
        let mut p = KeyPath::default();
        p.set(0, b"");
        p.set(1, b"a");
        p.set(2, b"bc");
        assert_eq!(p.set(1, b"x"), &Key::from_names([b"x"]));
    }
}
