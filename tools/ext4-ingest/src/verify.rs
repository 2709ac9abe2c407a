//! `--verify`: read the image back with the workspace's ext4 reader (`ext4fs`) and
//! compare every entry with the source: type, mode, owner, times, size, content, symlink
//! target, device numbers, link counts, xattrs, and that each directory
//! holds exactly the expected names. Then `e2fsck -fn`.
//!
//! Host files are read as the ingest reads them: through descriptors opened by a new walk
//! of the tree ([`seedkit::walk`]), never by name, and only when the walk finds the very
//! file that was written (same device and inode); anything else is a difference.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use ext4fs::{Backing, Content, Fs, Ino, Inode};
use seedkit::records::{EntryKind, Timestamp};
use seedkit::walk::{self, Visit};
use seedkit::{quote, sys, warn};

use crate::tree::{display_key, Entry, Key, KeyPath, LinkKey};
use crate::write::Owner;
use crate::Config;

/// Differences reported before giving up.
const REPORT_MAX: usize = 20;

fn same_time(t: ext4fs::Time, want: Timestamp) -> bool {
    t.sec == want.sec && t.nsec == want.nsec
}

/// What the image must hold: the entries written, the digests of the files of a source
/// read once, the entries left out, and what the image's root held before the run.
pub(crate) struct Expected<'a> {
    pub entries: &'a BTreeMap<Key, Entry>,
    pub digests: &'a HashMap<Key, u64>,
    pub rejected: &'a [(Key, String)],
    pub image_root: &'a [(Vec<u8>, Ino)],
}

pub(crate) fn verify(image: &Path, x: &Expected<'_>, config: &Config) -> Result<()> {
    let what = || format!("verifying {}", quote(image));
    let file = seedkit::sys::open_image(image, false).with_context(what)?;
    let fs = Fs::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    let plan = Plan::new(&fs, x);
    let mut check = Check {
        fs: &fs,
        config,
        x,
        plan: &plan,
        problems: Vec::new(),
        contents: HashMap::new(),
        inos: HashMap::from([(&[][..], Ino::ROOT)]),
        link_inos: HashMap::new(),
    };
    for (key, e) in &plan.wanted {
        seedkit::interrupt::check()?;
        if check.problems.len() >= REPORT_MAX {
            break;
        }
        check.entry(key, e);
        // Past the reader's budget every read fails: one fatal line, not a difference per
        // entry.
        fs.check_budget()
            .with_context(|| format!("verifying {}", quote(image)))?;
    }
    let Check {
        mut problems,
        contents,
        ..
    } = check;
    if problems.len() < REPORT_MAX && !contents.is_empty() {
        check_contents(&fs, &config.tree, x.entries, contents, &mut problems)?;
    }
    if !problems.is_empty() {
        for p in &problems {
            warn(format_args!("verify: {p}"));
        }
        bail!(
            "verifying {}: the image differs from the source ({}{} differences, listed above)",
            quote(image),
            problems.len(),
            if problems.len() >= REPORT_MAX {
                " or more"
            } else {
                ""
            }
        );
    }
    e2fsck(image)
}

/// What the walk over the expected entries needs to know beforehand.
struct Plan<'a> {
    /// Names the image's root held before the run and the source does not (lost+found,
    /// or anything else the image came with): they stay.
    kept: Vec<&'a [u8]>,
    /// How many of them are directories (they count in the root's links).
    kept_dirs: usize,
    /// The entries written, the ones left out excepted.
    wanted: Vec<(&'a Key, &'a Entry)>,
    /// Names each directory must hold.
    children: HashMap<&'a [u8], HashSet<&'a [u8]>>,
    /// The names of each inode with several.
    names_of: HashMap<LinkKey, u16>,
}

impl<'a> Plan<'a> {
    fn new(fs: &Fs, x: &Expected<'a>) -> Plan<'a> {
        let kept: Vec<&[u8]> = x
            .image_root
            .iter()
            .filter(|(n, _)| !x.entries.contains_key(n.as_slice()))
            .map(|(n, _)| n.as_slice())
            .collect();
        let kept_dirs = x
            .image_root
            .iter()
            .filter(|(n, _)| kept.contains(&n.as_slice()))
            .filter(|(_, ino)| {
                fs.inode(*ino).is_ok_and(|i| {
                    EntryKind::from_mode(u32::from(i.mode)) == Some(EntryKind::Directory)
                })
            })
            .count();
        let skipped: HashSet<&Key> = x.rejected.iter().map(|(k, _)| k).collect();
        let wanted: Vec<(&Key, &Entry)> = x
            .entries
            .iter()
            .filter(|(k, _)| !skipped.contains(k))
            .collect();
        let mut children: HashMap<&[u8], HashSet<&[u8]>> = HashMap::new();
        let mut names_of: HashMap<LinkKey, u16> = HashMap::new();
        for (key, e) in &wanted {
            if let (Some(parent), Some(name)) = (key.parent(), key.name()) {
                children.entry(parent).or_default().insert(name);
            }
            if let Some(l) = link_of(e) {
                *names_of.entry(l).or_default() += 1;
            }
        }
        Plan {
            kept,
            kept_dirs,
            wanted,
            children,
            names_of,
        }
    }
}

/// The comparison, entry by entry, in key order (parents first).
struct Check<'a> {
    fs: &'a Fs,
    config: &'a Config,
    x: &'a Expected<'a>,
    plan: &'a Plan<'a>,
    problems: Vec<String>,
    /// Host files whose content is compared afterwards: their inode in the image and
    /// their identity on the host when they were read.
    contents: HashMap<Key, (Ino, (u64, u64))>,
    /// The inode of each entry found in the image, by its key's bytes.
    inos: HashMap<&'a [u8], Ino>,
    link_inos: HashMap<LinkKey, Ino>,
}

impl<'a> Check<'a> {
    fn problem(&mut self, key: &Key, text: impl std::fmt::Display) {
        self.problems
            .push(format!("{}: {text}", quote(&display_key(key))));
    }

    fn entry(&mut self, key: &'a Key, e: &'a Entry) {
        let Some(&ino) = self.inos.get(key.as_bytes()) else {
            // Its parent was missing or not a directory: already reported.
            return;
        };
        let inode = match self.fs.inode(ino) {
            Ok(i) => i,
            Err(err) => return self.problem(key, format_args!("reading inode {ino}: {err}")),
        };
        if EntryKind::from_mode(u32::from(inode.mode)) != Some(e.kind) {
            let found = inode.kind();
            return self.problem(
                key,
                format_args!("a {found:?} in the image, a {:?} in the source", e.kind),
            );
        }
        self.attributes(key, e, &inode);
        self.links(key, e, &inode);
        self.xattrs(key, e, &inode);
        match e.kind {
            EntryKind::File => self.file(key, e, &inode),
            EntryKind::Symlink => match self.fs.symlink_target(&inode) {
                Ok(t) if Some(&t) == e.target.as_ref() => {}
                Ok(t) => self.problem(
                    key,
                    format_args!(
                        "symlink to {} in the image",
                        seedkit::quote::quote_bytes(&t)
                    ),
                ),
                Err(err) => self.problem(key, format_args!("reading its target: {err}")),
            },
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                let want = e.rdev.map(|d| (d.major, d.minor));
                if Some(inode.rdev()) != want {
                    let found = inode.rdev();
                    self.problem(
                        key,
                        format_args!("device {found:?} in the image, {want:?} expected"),
                    );
                }
            }
            EntryKind::Directory => {
                let dir = Dir {
                    key,
                    entries: self.x.entries,
                    children: &self.plan.children,
                    kept: &self.plan.kept,
                };
                let mut found = Vec::new();
                check_dir(self.fs, &inode, &dir, &mut self.inos, &mut |p| {
                    found.push(p);
                });
                for p in found {
                    self.problem(key, p);
                }
            }
            EntryKind::Fifo | EntryKind::Socket => {}
        }
    }

    /// Mode, owner and times.
    fn attributes(&mut self, key: &Key, e: &Entry, inode: &Inode) {
        if inode.permissions() != e.mode {
            let found = inode.permissions();
            self.problem(
                key,
                format_args!(
                    "mode {found:04o} in the image, {:04o} in the source",
                    e.mode
                ),
            );
        }
        let owner = match self.config.owner {
            Owner::Fixed(u, g) => (u, g),
            Owner::Preserve => (e.uid, e.gid),
        };
        if (inode.uid, inode.gid) != owner {
            let found = (inode.uid, inode.gid);
            self.problem(
                key,
                format_args!(
                    "owner {}:{} in the image, {}:{} expected",
                    found.0, found.1, owner.0, owner.1
                ),
            );
        }
        if !same_time(inode.mtime, e.mtime) || !same_time(inode.atime, e.atime) {
            self.problem(
                key,
                format_args!(
                    "times differ: atime {:?} mtime {:?} in the image, atime {:?} mtime {:?} in the source",
                    inode.atime, inode.mtime, e.atime, e.mtime
                ),
            );
        }
        if let Some(c) = e.ctime {
            if !same_time(inode.ctime, c) {
                let found = inode.ctime;
                self.problem(
                    key,
                    format_args!("ctime {found:?} in the image, {c:?} recorded"),
                );
            }
        }
    }

    /// The link count, and that the names of one inode share it.
    fn links(&mut self, key: &Key, e: &Entry, inode: &Inode) {
        let want = match e.kind {
            EntryKind::Directory => {
                let subdirs = self.plan.children.get(key.as_bytes()).map_or(0, |names| {
                    names
                        .iter()
                        .filter(|n| {
                            self.x
                                .entries
                                .get(key.child(n).as_bytes())
                                .is_some_and(|d| d.kind == EntryKind::Directory)
                        })
                        .count()
                });
                let extra = if key.is_root() {
                    self.plan.kept_dirs
                } else {
                    0
                };
                2 + subdirs + extra
            }
            _ => link_of(e).map_or(1, |l| usize::from(self.plan.names_of[&l])),
        };
        if usize::from(inode.links_count) != want {
            let found = inode.links_count;
            self.problem(
                key,
                format_args!("{found} links in the image, {want} expected"),
            );
        }
        if let Some(l) = link_of(e) {
            let first = *self.link_inos.entry(l).or_insert(inode.ino);
            if first != inode.ino {
                let ino = inode.ino;
                self.problem(
                    key,
                    format_args!(
                        "inode {ino}, not the inode {first} of the other names of its hard link"
                    ),
                );
            }
        }
    }

    fn xattrs(&mut self, key: &Key, e: &Entry, inode: &Inode) {
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = match self.fs.xattrs(inode) {
            Ok(x) => x
                .into_iter()
                .filter(|x| !x.name.starts_with(b"system."))
                .map(|x| (x.name, x.value))
                .collect(),
            Err(err) => return self.problem(key, format_args!("reading its xattrs: {err}")),
        };
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = e
            .xattrs
            .iter()
            .filter(|x| !x.name.0.starts_with(b"system."))
            .map(|x| (x.name.0.clone(), x.value.0.clone()))
            .collect();
        want.sort();
        got.sort();
        if got != want {
            self.problem(key, "extended attributes differ");
        }
    }

    /// A regular file's size, then its content: a host file is read again later; a file
    /// of a source read once is compared by its digest.
    fn file(&mut self, key: &Key, e: &Entry, inode: &Inode) {
        if inode.size != e.size {
            let found = inode.size;
            return self.problem(
                key,
                format_args!("{found} bytes in the image, {} in the source", e.size),
            );
        }
        if let (true, Some(id)) = (e.host, e.host_id) {
            self.contents.insert(key.clone(), (inode.ino, id));
        } else if let Some(&want) = self.x.digests.get(key) {
            match crate::digest::of_inode(self.fs, inode) {
                Ok(d) if d == want => {}
                Ok(_) => self.problem(key, "its content differs from the source's"),
                Err(err) => self.problem(key, format_args!("reading its content: {err}")),
            }
        }
    }
}

/// Names sharing an inode (hard links of anything but directories and symlinks).
fn link_of(e: &Entry) -> Option<LinkKey> {
    e.link
        .filter(|_| !matches!(e.kind, EntryKind::Directory | EntryKind::Symlink))
}

/// A directory to check, and what it is checked against.
struct Dir<'a> {
    key: &'a Key,
    entries: &'a BTreeMap<Key, Entry>,
    children: &'a HashMap<&'a [u8], HashSet<&'a [u8]>>,
    /// What the image's root held before the run.
    kept: &'a [&'a [u8]],
}

/// Check that a directory holds exactly its expected names, and note their inodes.
fn check_dir<'a>(
    fs: &Fs,
    inode: &Inode,
    dir: &Dir<'a>,
    inos: &mut HashMap<&'a [u8], Ino>,
    problem: &mut impl FnMut(String),
) {
    let key = dir.key;
    let listed = match fs.read_dir(inode) {
        Ok(l) => l,
        Err(err) => {
            problem(format!("reading the directory: {err}"));
            return;
        }
    };
    let none = HashSet::new();
    let want = dir.children.get(key.as_bytes()).unwrap_or(&none);
    let mut found = 0;
    for d in listed {
        if d.name == b"." || d.name == b".." {
            continue;
        }
        if want.contains(d.name.as_slice()) {
            found += 1;
            if let Some((k, _)) = dir.entries.get_key_value(key.child(&d.name).as_bytes()) {
                inos.insert(k.as_bytes(), d.ino);
            }
        } else if !(key.is_root() && dir.kept.contains(&d.name.as_slice())) {
            problem(format!(
                "the image holds {} here, which the tree does not",
                seedkit::quote::quote_bytes(&d.name)
            ));
        }
    }
    if found != want.len() {
        problem(format!(
            "{} of its {} entries are missing from the image",
            want.len() - found,
            want.len()
        ));
    }
}

/// Compare the content of the host files in `contents` with the image, each read through
/// a descriptor that a new walk of the tree opens and checks: a name that no longer holds
/// the file written (swapped, replaced, gone) is a difference, and is never read.
fn check_contents(
    fs: &Fs,
    tree: &Path,
    entries: &BTreeMap<Key, Entry>,
    mut contents: HashMap<Key, (Ino, (u64, u64))>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let mut v = ContentCheck {
        fs,
        entries,
        contents: &mut contents,
        problems,
        key: KeyPath::default(),
    };
    let opts = walk::Options {
        widen: true,
        keep_atimes: true,
    };
    walk::walk(tree, opts, &mut v)?;
    let mut gone: Vec<Key> = contents.into_keys().collect();
    gone.sort();
    for key in gone
        .into_iter()
        .take(REPORT_MAX.saturating_sub(problems.len()))
    {
        problems.push(format!(
            "{}: no longer in the tree, its content cannot be compared",
            quote(&display_key(&key))
        ));
    }
    Ok(())
}

struct ContentCheck<'a> {
    fs: &'a Fs,
    entries: &'a BTreeMap<Key, Entry>,
    contents: &'a mut HashMap<Key, (Ino, (u64, u64))>,
    problems: &'a mut Vec<String>,
    key: KeyPath,
}

impl Visit for ContentCheck<'_> {
    fn entry(&mut self, w: &walk::Entry<'_>) -> Result<bool> {
        let key = self.key.set(w.depth, w.name);
        if w.depth == 0 {
            return Ok(true);
        }
        if self.problems.len() >= REPORT_MAX {
            return Ok(false);
        }
        let st = w.stat;
        if EntryKind::from_mode(st.st_mode) == Some(EntryKind::Directory) {
            return Ok(self
                .entries
                .get(key)
                .is_some_and(|e| e.kind == EntryKind::Directory && e.host));
        }
        let Some((ino, id)) = self.contents.remove(key) else {
            return Ok(false);
        };
        let shown = display_key(key);
        let shown = quote(&shown);
        if EntryKind::from_mode(st.st_mode) != Some(EntryKind::File) || (st.st_dev, st.st_ino) != id
        {
            self.problems.push(format!(
                "{shown}: replaced in the tree since it was written; not read"
            ));
            return Ok(false);
        }
        let parent = w.parent.context("a file without its directory")?;
        let compared = walk::open_file(parent, w.name, st, true)
            .map_err(anyhow::Error::from)
            .and_then(|opened| {
                let same = File::from(opened.fd.try_clone()?);
                let inode = self.fs.inode(ino).map_err(|e| anyhow::anyhow!("{e}"))?;
                let r = same_content(self.fs, &inode, &same);
                // Reading moved its atime.
                let _ = sys::set_atime(&opened.fd, (st.st_atime, st.st_atime_nsec as u32));
                r
            });
        match compared {
            Ok(true) => {}
            Ok(false) => self.problems.push(format!("{shown}: content differs")),
            Err(err) => self
                .problems
                .push(format!("{shown}: comparing the content: {err:#}")),
        }
        Ok(false)
    }
}

/// Whether a file's bytes in the image are the host file's, holes read as zeros.
fn same_content(fs: &Fs, inode: &Inode, mut f: &File) -> Result<bool> {
    let size = inode.size;
    match fs.content(inode).map_err(|e| anyhow::anyhow!("{e}"))? {
        Content::Inline(data) => {
            let mut h = Vec::new();
            f.read_to_end(&mut h)?;
            Ok(h == data)
        }
        Content::Runs(runs) => {
            let bs = u64::from(fs.block_size());
            let mut pos = 0u64;
            let mut a = Vec::new();
            let mut b = Vec::new();
            for run in runs {
                let start = run.logical * bs;
                let end = (start + run.len * bs).min(size);
                if start >= size {
                    break;
                }
                // Anything between runs is a hole: zeros on the host.
                if !host_zeros(f, pos, start, &mut b)? {
                    return Ok(false);
                }
                match run.backing {
                    Backing::Data { physical } => {
                        for off in (start..end).step_by(1 << 20) {
                            let len = (end - off).min(1 << 20) as usize;
                            a.resize(len, 0);
                            fs.read_blocks(physical + (off - start) / bs, &mut a)
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                            b.resize(len, 0);
                            f.seek(SeekFrom::Start(off))?;
                            f.read_exact(&mut b)?;
                            if a != b {
                                return Ok(false);
                            }
                        }
                    }
                    Backing::Unwritten | Backing::Hole => {
                        if !host_zeros(f, start, end, &mut b)? {
                            return Ok(false);
                        }
                    }
                }
                pos = end;
            }
            Ok(host_zeros(f, pos, size, &mut b)?)
        }
    }
}

/// Whether the host file holds only zeros in `from..to` (holes are skipped with SEEK_DATA).
fn host_zeros(mut f: &File, mut from: u64, to: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
    while from < to {
        let start = match sys::seek_data(f, from) {
            Ok(Some(data)) => data,
            // No data after `from`: the rest is a hole.
            Ok(None) => return Ok(true),
            // No SEEK_DATA here: read everything.
            Err(_) => from,
        };
        if start >= to {
            return Ok(true);
        }
        let len = (to - start).min(1 << 20) as usize;
        buf.resize(len, 0);
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(buf)?;
        if buf.iter().any(|&x| x != 0) {
            return Ok(false);
        }
        from = start + len as u64;
    }
    Ok(true)
}

/// `e2fsck -fn`: a clean image or an error with its report.
/// An e2fsprogs program, found on PATH or in the sbin directories ordinary users lack.
fn program(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}

fn e2fsck(image: &Path) -> Result<()> {
    let out = Command::new(program("e2fsck"))
        .arg("-fn")
        .arg(image)
        .env("LC_ALL", "C")
        .output()
        .context("running e2fsck")?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .find(|l| !l.starts_with("Pass ") && !l.starts_with("e2fsck "))
            .unwrap_or("");
        bail!(
            "verifying {}: e2fsck -fn found problems ({}): {}",
            quote(image),
            out.status,
            seedkit::quote::quote_bytes(first.as_bytes())
        );
    }
    Ok(())
}
