//! What the kernel shows of a tree (a loop-mounted image, a tree a tar extracted), entry by
//! entry, to check that two trees are the same: every entry kind, the 12 mode bits, owners,
//! sizes, content, mtimes with nanoseconds, symlink targets, device numbers, every xattr,
//! which names share an inode, and where the holes are.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// One entry as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `st_mode & S_IFMT`.
    pub kind: u32,
    /// The 12 permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular files and symlinks; 0 for the rest.
    pub size: u64,
    pub mtime: (i64, i64),
    /// A hash of a regular file's bytes.
    pub content: Option<u64>,
    pub target: Option<Vec<u8>>,
    pub rdev: Option<u64>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For a non-directory with several names: the first of them (bytewise order).
    pub link: Option<Vec<u8>>,
    /// A regular file's data ranges (`SEEK_DATA`/`SEEK_HOLE`), holes being the rest.
    pub data: Vec<(u64, u64)>,
}

/// What to leave out of a comparison.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ignore {
    /// Owners (a tree extracted or made without privilege).
    pub owners: bool,
    /// Where the holes are (a tree written where holes are not kept).
    pub holes: bool,
    /// Symlinks' mtimes (tools that do not set them).
    pub symlink_times: bool,
    /// The top directory's mtime (bsdtar leaves the directory it extracts into alone).
    pub top_time: bool,
}

/// Every entry below `root` (and `root` itself as `.`), by path relative to it; paths
/// listed in `exclude` (relative, as `lost+found`) are left out with what is below them.
pub fn view(root: &Path, exclude: &[&str]) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut stack = vec![Vec::<u8>::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(OsStr::from_bytes(&rel))
        };
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let key = if rel.is_empty() {
            b".".to_vec()
        } else {
            rel.clone()
        };
        let mut node = node(&path, &meta);
        if !meta.is_dir() && meta.nlink() > 1 {
            // Paths are visited in bytewise order, so the first name met is the first.
            let first = inodes
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| key.clone());
            node.link = Some(first.clone());
        }
        out.insert(key, node);
        if meta.is_dir() {
            let mut names: Vec<Vec<u8>> = fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
                .map(|e| e.expect("readdir").file_name().as_bytes().to_vec())
                .collect();
            names.sort();
            for name in names.into_iter().rev() {
                let child = if rel.is_empty() {
                    name
                } else {
                    [&rel[..], b"/", &name].concat()
                };
                if !exclude.iter().any(|x| x.as_bytes() == child.as_slice()) {
                    stack.push(child);
                }
            }
        }
    }
    out
}

fn node(path: &Path, meta: &fs::Metadata) -> Node {
    let ft = meta.file_type();
    let mut n = Node {
        kind: meta.mode() & 0o170_000,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: 0,
        mtime: (meta.mtime(), meta.mtime_nsec()),
        content: None,
        target: None,
        rdev: None,
        xattrs: xattrs(path),
        link: None,
        data: Vec::new(),
    };
    if ft.is_file() {
        n.size = meta.len();
        let mut f = fs::File::open(path).expect("open");
        n.data = data_ranges(&f, meta.len());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = f.read(&mut buf).expect("read");
            if k == 0 {
                break;
            }
            buf[..k].hash(&mut h);
        }
        n.content = Some(h.finish());
    } else if ft.is_symlink() {
        let t = fs::read_link(path).expect("readlink");
        n.size = meta.len();
        n.target = Some(t.as_os_str().as_bytes().to_vec());
    } else if ft.is_char_device() || ft.is_block_device() {
        n.rdev = Some(meta.rdev());
    }
    n
}

/// Every xattr of `path`, not following a final symlink.
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut names = vec![0u8; 65536];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return BTreeMap::new();
    };
    names[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let name = std::str::from_utf8(n).ok()?;
            Some((n.to_vec(), crate::get_xattr(path, name)?))
        })
        .collect()
}

/// The data ranges of an open file, by `SEEK_DATA`/`SEEK_HOLE`.
fn data_ranges(f: &fs::File, size: u64) -> Vec<(u64, u64)> {
    use nix::unistd::{lseek, Whence};
    let mut out = Vec::new();
    let mut at = 0i64;
    while (at as u64) < size {
        let Ok(start) = lseek(f, at, Whence::SeekData) else {
            break;
        };
        let end = lseek(f, start, Whence::SeekHole).unwrap_or(size as i64);
        out.push((start as u64, end as u64));
        at = end;
    }
    out
}

/// Panic, listing every difference, unless the trees at `a` and `b` are the same (see
/// [`view`]); `exclude` is left out of both.
pub fn assert_same(a: &Path, b: &Path, exclude: &[&str], ignore: Ignore, what: &str) {
    let (va, vb) = (view(a, exclude), view(b, exclude));
    let mut diffs = Vec::new();
    for (k, na) in &va {
        let shown = String::from_utf8_lossy(k);
        let Some(nb) = vb.get(k) else {
            diffs.push(format!("{shown}: only in {}", a.display()));
            continue;
        };
        let (mut na, mut nb) = (na.clone(), nb.clone());
        if ignore.owners {
            (na.uid, na.gid, nb.uid, nb.gid) = (0, 0, 0, 0);
        }
        if ignore.holes {
            (na.data, nb.data) = (Vec::new(), Vec::new());
        }
        if ignore.top_time && k.as_slice() == b"." {
            (na.mtime, nb.mtime) = ((0, 0), (0, 0));
        }
        if ignore.symlink_times && na.target.is_some() {
            (na.mtime, nb.mtime) = ((0, 0), (0, 0));
        }
        if na != nb {
            diffs.push(format!("{shown}: {na:?} != {nb:?}"));
        }
    }
    for k in vb.keys().filter(|k| !va.contains_key(*k)) {
        diffs.push(format!(
            "{}: only in {}",
            String::from_utf8_lossy(k),
            b.display()
        ));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
