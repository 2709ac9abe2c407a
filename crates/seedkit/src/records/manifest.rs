//! The staging manifest: what `ext4-rdump` knew of each entry, for what the host tree cannot
//! hold for an unprivileged user (true modes, owners, devices, xattrs, exact times).
//!
//! The manifest of a tree at `T` is the file `T.manifest.jsonl` beside it (see
//! [`manifest_path`]). It is JSON Lines: a header line, then one line per entry, parents
//! before their children. It is read in one place, [`ManifestReader`], which checks the
//! header's format and version before any entry.
//!
//! A manifest decides set-user-ID bits, capabilities and device nodes in the image, so one
//! found beside a tree is used only when it is the caller's own ([`ManifestReader::beside`]):
//! a regular file (opened without following a symlink) owned by the caller or by root and
//! writable by no one else. In a shared directory such as /tmp anyone may put a file of
//! that name beside a tree; such a manifest is refused with a message saying how to pass
//! it on purpose (`--manifest`) or go without (`--no-manifest`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::json::Bytes;
use crate::quote;

/// The `format` value of a manifest header.
pub const MANIFEST_FORMAT: &str = "ext4-rdump-manifest";
/// The manifest version this toolkit writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Where the manifest of the tree at `tree` lives: `<tree>.manifest.jsonl`.
pub fn manifest_path(tree: &Path) -> PathBuf {
    let mut name = OsString::from(tree.as_os_str());
    name.push(".manifest.jsonl");
    PathBuf::from(name)
}

/// `tree/` and `tree` have one manifest, `tree.manifest.jsonl`.
fn without_trailing_slashes(p: &Path) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    let b = p.as_os_str().as_bytes();
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    Path::new(std::ffi::OsStr::from_bytes(&b[..end]))
}

/// Reads a manifest: the header first (its format and version checked), then the entries
/// one at a time, so a manifest of any length is read in little memory.
pub struct ManifestReader {
    path: PathBuf,
    lines: io::Split<BufReader<File>>,
    /// Line number of the last line read.
    line: usize,
    header: ManifestHeader,
}

impl ManifestReader {
    /// Open the manifest at `path` and read its header. A missing file, a first line that
    /// is not a header, another format or a newer version is an error.
    pub fn open(path: &Path) -> Result<ManifestReader> {
        let file =
            File::open(path).with_context(|| format!("reading the manifest {}", quote(path)))?;
        Self::from_file(path, file)
    }

    /// The manifest beside the tree at `tree` (`<tree>.manifest.jsonl`): `None` when there
    /// is none; the reader when it is the caller's own (see the module's doc); an error,
    /// saying how to pass it, when it is anyone else's, writable by others, a symlink or
    /// not a regular file.
    pub fn beside(tree: &Path) -> Result<Option<ManifestReader>> {
        let path = manifest_path(without_trailing_slashes(tree));
        let refuse = |why: String| {
            anyhow::anyhow!(
                "reading the manifest {}: {why}; a manifest beside the tree is used only when \
                 it is a file of yours (or root's) that no one else may write: pass it with \
                 --manifest if you trust it, or --no-manifest to go without",
                quote(&path)
            )
        };
        // O_NONBLOCK: a fifo put there cannot hang the open (it is refused below).
        let opened = File::options()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(refuse("it is a symbolic link".into()))
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading the manifest {}", quote(&path)))
            }
        };
        let meta = file
            .metadata()
            .with_context(|| format!("reading the manifest {}", quote(&path)))?;
        let me = nix::unistd::geteuid().as_raw();
        if !meta.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if meta.uid() != me && meta.uid() != 0 {
            return Err(refuse(format!(
                "it belongs to uid {}, neither to this user (uid {me}) nor to root",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "others may write it (mode {:04o})",
                meta.mode() & 0o7777
            )));
        }
        Self::from_file(&path, file).map(Some)
    }

    fn from_file(path: &Path, file: File) -> Result<ManifestReader> {
        let what = || format!("reading the manifest {}", quote(path));
        let mut lines = BufReader::new(file).split(b'\n');
        let Some(first) = lines.next() else {
            bail!("{}: empty file, not a manifest", what());
        };
        let first = first.with_context(what)?;
        let Ok(ManifestLine::Header(header)) = serde_json::from_slice(&first) else {
            bail!("{}: the first line is not a manifest header", what());
        };
        check_header(&header).with_context(what)?;
        Ok(ManifestReader {
            path: path.to_path_buf(),
            lines,
            line: 1,
            header,
        })
    }

    pub fn header(&self) -> &ManifestHeader {
        &self.header
    }

    /// Read every remaining entry.
    pub fn entries(self) -> Result<Vec<ManifestEntry>> {
        self.collect()
    }
}

impl Iterator for ManifestReader {
    type Item = Result<ManifestEntry>;

    fn next(&mut self) -> Option<Result<ManifestEntry>> {
        loop {
            let line = self.lines.next()?;
            self.line += 1;
            let what = || format!("reading the manifest {}", quote(&self.path));
            let line = match line {
                Ok(l) => l,
                Err(e) => return Some(Err(e).with_context(what)),
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(match serde_json::from_slice(&line) {
                Ok(ManifestLine::Entry(e)) => Ok(e),
                Ok(ManifestLine::Header(_)) => Err(anyhow::anyhow!(
                    "{}: line {}: a second header",
                    what(),
                    self.line
                )),
                Err(e) => Err(anyhow::anyhow!("{}: line {}: {e}", what(), self.line)),
            });
        }
    }
}

/// Check a header's format and version: a newer version is refused by name.
pub fn check_header(header: &ManifestHeader) -> Result<()> {
    super::check_version(
        &header.format,
        u64::from(header.version),
        MANIFEST_FORMAT,
        MANIFEST_VERSION,
    )
}

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum ManifestLine {
    Header(ManifestHeader),
    Entry(ManifestEntry),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHeader {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`MANIFEST_VERSION`] for this toolkit.
    pub version: u32,
    /// The image the tree came from.
    pub image: Bytes,
    /// The directory of the image that was extracted.
    pub source: Bytes,
}

/// The kind of an entry: the format crate's, spelled as the records spell it
/// (`"file"`, `"char_device"`, ...).
pub use ext4fs::EntryKind;

/// A time with nanoseconds; `sec` may be negative (before 1970).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

/// Device numbers of a character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rdev {
    pub major: u32,
    pub minor: u32,
}

/// One extended attribute, with its full name (`user.x`, `security.capability`, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Bytes,
    pub value: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the tree; `.` is the tree's root.
    pub path: Bytes,
    pub kind: EntryKind,
    /// The 12 permission bits (`0o7777` at most), as in the image.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crtime: Option<Timestamp>,
    /// Apparent size in bytes (files: content; symlinks: target length).
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<Rdev>,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// Names sharing one inode share this value (the image's inode number); absent for an
    /// inode with a single name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_group: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// Whether the entry exists in the host tree (false: recorded here only, for example a
    /// device an unprivileged user cannot create).
    pub staged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_sits_beside_the_tree() {
        assert_eq!(
            manifest_path(Path::new("/s/tree")),
            PathBuf::from("/s/tree.manifest.jsonl")
        );
        let t = without_trailing_slashes(Path::new("/a/t//"));
        assert_eq!(t, Path::new("/a/t"));
        assert_eq!(without_trailing_slashes(Path::new("/")), Path::new("/"));
    }

    #[test]
    fn the_reader_checks_the_header_first() {
        let dir = std::env::temp_dir().join(format!("seedkit-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let header = r#"{"record":"header","format":"ext4-rdump-manifest","version":1,"image":"i","source":"/root"}"#;
        let entry = r#"{"record":"entry","path":".","kind":"directory","mode":493,"uid":0,"gid":0,"atime":{"sec":0,"nsec":0},"mtime":{"sec":0,"nsec":0},"ctime":{"sec":0,"nsec":0},"size":0,"staged":true}"#;
        std::fs::write(&path, format!("{header}\n\n{entry}\n")).unwrap();
        let reader = ManifestReader::open(&path).unwrap();
        assert_eq!(reader.header().source.0, b"/root");
        assert_eq!(reader.entries().unwrap().len(), 1);

        let newer = header.replace(r#""version":1"#, r#""version":2"#);
        std::fs::write(&path, format!("{newer}\n{entry}\n")).unwrap();
        let err = format!("{:#}", ManifestReader::open(&path).err().unwrap());
        assert!(err.ends_with("ext4-rdump-manifest record version 2 is newer than this toolkit reads (version 1 at most): upgrade the toolkit"), "{err}");

        std::fs::write(&path, format!("{entry}\n")).unwrap();
        let err = format!("{:#}", ManifestReader::open(&path).err().unwrap());
        assert!(
            err.ends_with("the first line is not a manifest header"),
            "{err}"
        );

        std::fs::write(&path, format!("{header}\n{header}\n")).unwrap();
        let err = ManifestReader::open(&path).unwrap().entries().unwrap_err();
        assert!(
            format!("{err:#}").ends_with("line 2: a second header"),
            "{err:#}"
        );

        assert!(ManifestReader::beside(&dir.join("none")).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_beside_the_tree_is_used_only_when_it_is_ours() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("seedkit-beside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tree = dir.join("tree");
        let path = manifest_path(&tree);
        let header = r#"{"record":"header","format":"ext4-rdump-manifest","version":1,"image":"i","source":"/root"}"#;
        std::fs::write(&path, format!("{header}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ManifestReader::beside(&tree).unwrap().is_some());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = format!("{:#}", ManifestReader::beside(&tree).err().unwrap());
        assert!(err.contains("others may write it (mode 0666)"), "{err}");
        assert!(err.contains("--manifest"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &path).unwrap();
        let err = format!("{:#}", ManifestReader::beside(&tree).err().unwrap());
        assert!(err.contains("it is a symbolic link"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entry_round_trips() {
        let e = ManifestLine::Entry(ManifestEntry {
            path: Bytes(b"dev/null".to_vec()),
            kind: EntryKind::CharDevice,
            mode: 0o666,
            uid: 0,
            gid: 0,
            atime: Timestamp { sec: -5, nsec: 7 },
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            crtime: None,
            size: 0,
            rdev: Some(Rdev { major: 1, minor: 3 }),
            target: None,
            link_group: None,
            xattrs: vec![Xattr {
                name: Bytes(b"user.k".to_vec()),
                value: Bytes(vec![0xff]),
            }],
            staged: false,
        });
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.starts_with(r#"{"record":"entry","path":"dev/null","kind":"char_device""#));
        assert_eq!(serde_json::from_str::<ManifestLine>(&text).unwrap(), e);
    }

    #[test]
    fn kinds_are_spelled_as_the_records_always_spelled_them() {
        let names = [
            (EntryKind::File, "file"),
            (EntryKind::Directory, "directory"),
            (EntryKind::Symlink, "symlink"),
            (EntryKind::Fifo, "fifo"),
            (EntryKind::CharDevice, "char_device"),
            (EntryKind::BlockDevice, "block_device"),
            (EntryKind::Socket, "socket"),
        ];
        for (k, name) in names {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&k).unwrap(), json);
            assert_eq!(serde_json::from_str::<EntryKind>(&json).unwrap(), k);
        }
        let err = serde_json::from_str::<EntryKind>("\"pipe\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown variant `pipe`, expected one of `file`, `directory`"),
            "{err}"
        );
        assert!(serde_json::from_str::<EntryKind>("1").is_err());
    }
}
