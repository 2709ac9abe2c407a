//! The source: a host tree walked with `lstat` (never following symlinks, never opening a
//! fifo or device), merged with the `ext4-rdump` manifest when there is one.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::libc;
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
    /// The entry in the host tree, when it is there.
    pub host: Option<PathBuf>,
    /// The permission bits the host entry has while debugfs reads it (what `write` copies).
    pub host_mode: u32,
}

/// The entries of a tree, in writing order.
pub struct Tree {
    pub entries: BTreeMap<Key, Entry>,
    /// Entries that cannot be written, each with the reason; reported, not written.
    pub rejected: Vec<(Key, String)>,
}

/// Permission changes made so that an unreadable entry owned by the caller can be read;
/// undone (children first) when dropped.
#[derive(Default)]
pub struct AccessGuard {
    changed: Vec<(PathBuf, u32)>,
}

impl AccessGuard {
    /// Add `bits` to the mode of `path`, remembering the old mode.
    fn grant(&mut self, path: &Path, meta: &fs::Metadata, bits: u32) -> io::Result<()> {
        let old = meta.mode() & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(old | bits))?;
        self.changed.push((path.to_path_buf(), old));
        Ok(())
    }

    /// Put every mode back; the first failure is returned.
    pub fn restore(&mut self) -> Result<()> {
        let mut first = Ok(());
        while let Some((path, mode)) = self.changed.pop() {
            if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(mode)) {
                if first.is_ok() {
                    first = Err(e).with_context(|| {
                        format!("restoring the mode {mode:04o} of {}", quote(&path))
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

/// Walk `root` (a directory), reading metadata only; unreadable directories and files owned
/// by the caller are made readable through `guard`.
pub fn walk(root: &Path, guard: &mut AccessGuard) -> Result<Tree> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", quote(root)))?;
    if !meta.is_dir() {
        bail!("reading {}: not a directory", quote(root));
    }
    let mut tree = Tree {
        entries: BTreeMap::new(),
        rejected: Vec::new(),
    };
    let euid = nix::unistd::geteuid().as_raw();
    let mut stack: Vec<(Key, PathBuf, fs::Metadata)> = vec![(Vec::new(), root.to_path_buf(), meta)];
    while let Some((key, path, meta)) = stack.pop() {
        let mut host_mode = meta.mode() & 0o7777;
        let kind = EntryKind::from_mode(meta.mode())
            .with_context(|| format!("reading {}: unknown file type", quote(&path)))?;
        let mut children = Vec::new();
        match kind {
            EntryKind::Directory => {
                if !readable(&path, libc::R_OK | libc::X_OK) && meta.uid() == euid {
                    guard
                        .grant(&path, &meta, 0o500)
                        .with_context(|| format!("making {} readable", quote(&path)))?;
                    host_mode |= 0o500;
                }
                let rd =
                    fs::read_dir(&path).with_context(|| format!("reading {}", quote(&path)))?;
                for item in rd {
                    let item = item.with_context(|| format!("reading {}", quote(&path)))?;
                    children.push(item.file_name());
                }
            }
            EntryKind::File if !readable(&path, libc::R_OK) => {
                if meta.uid() != euid {
                    bail!("reading {}: Permission denied (not owned by the caller, so its mode cannot be widened)", quote(&path));
                }
                guard
                    .grant(&path, &meta, 0o400)
                    .with_context(|| format!("making {} readable", quote(&path)))?;
                host_mode |= 0o400;
            }
            _ => {}
        }
        let target = if kind == EntryKind::Symlink {
            Some(
                fs::read_link(&path)
                    .with_context(|| format!("reading the symlink {}", quote(&path)))?
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
            .with_context(|| format!("reading the extended attributes of {}", quote(&path)))?;
        tree.entries.insert(
            key.clone(),
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
                host: Some(path.clone()),
                host_mode,
            },
        );
        for name in children {
            let child = path.join(&name);
            let m = fs::symlink_metadata(&child)
                .with_context(|| format!("reading {}", quote(&child)))?;
            let mut k = key.clone();
            k.push(name.into_encoded_bytes());
            stack.push((k, child, m));
        }
    }
    // A host name is valid for the host's file system, but maybe not for ext4 (over 255 bytes).
    let bad: Vec<Key> = tree
        .entries
        .keys()
        .filter(|k| k.last().is_some_and(|n| invalid_name(n).is_some()))
        .cloned()
        .collect();
    for k in bad {
        reject(&mut tree, &k);
    }
    Ok(tree)
}

/// Remove `key` and everything under it, recording why.
fn reject(tree: &mut Tree, key: &Key) {
    let reason = key
        .last()
        .and_then(|n| invalid_name(n))
        .unwrap_or("invalid entry");
    let under: Vec<Key> = tree
        .entries
        .range(key.clone()..)
        .take_while(|(k, _)| k.starts_with(key))
        .map(|(k, _)| k.clone())
        .collect();
    for k in under {
        tree.entries.remove(&k);
    }
    tree.rejected.push((key.clone(), reason.to_string()));
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

/// Take from the manifest what the host tree cannot hold, and add the entries it recorded
/// but could not stage.
pub fn merge_manifest(tree: &mut Tree, manifest: Vec<ManifestEntry>) -> Result<()> {
    let mut seen = HashSet::new();
    for m in manifest {
        let key = match manifest_key(&m.path.0) {
            Ok(k) => k,
            Err((k, why)) => {
                if !tree.rejected.iter().any(|(r, _)| k.starts_with(r)) {
                    tree.rejected.push((k, why.to_string()));
                }
                continue;
            }
        };
        if tree.rejected.iter().any(|(r, _)| key.starts_with(r)) {
            continue;
        }
        if !seen.insert(key.clone()) {
            bail!("the manifest lists {} twice", quote(&display_key(&key)));
        }
        let shown = display_key(&key);
        if let Some(e) = tree.entries.get_mut(&key) {
            let host_kind = e.kind;
            let special = matches!(
                m.kind,
                EntryKind::Fifo
                    | EntryKind::CharDevice
                    | EntryKind::BlockDevice
                    | EntryKind::Socket
            );
            if m.kind != host_kind && !special {
                bail!(
                    "the manifest says {} is a {:?} but the tree holds a {:?}",
                    quote(&shown),
                    m.kind,
                    host_kind
                );
            }
            e.kind = m.kind;
            apply(e, &m);
            if special {
                e.host = None;
            }
        } else {
            if m.staged {
                bail!(
                    "the manifest lists {} as staged but the tree does not hold it",
                    quote(&shown)
                );
            }
            let parent = &key[..key.len().saturating_sub(1)];
            if key.is_empty()
                || tree
                    .entries
                    .get(parent)
                    .is_none_or(|p| p.kind != EntryKind::Directory)
            {
                bail!(
                    "the manifest lists {} but not its parent directory",
                    quote(&shown)
                );
            }
            if m.kind == EntryKind::File && m.size > 0 {
                tree.rejected.push((
                    key,
                    "a regular file recorded in the manifest but not staged (no content)"
                        .to_string(),
                ));
                continue;
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
                host_mode: 0,
            };
            apply(&mut e, &m);
            tree.entries.insert(key, e);
        }
    }
    Ok(())
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
