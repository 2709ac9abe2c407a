//! `--verify`: read the image back with the workspace's ext4 reader (`ext4_reader`, not
//! debugfs) and compare every entry with the source: type, mode, owner, times, size,
//! content, symlink target, device numbers, link counts, xattrs, and that each directory
//! holds exactly the expected names. Then `e2fsck -fn`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use ext4_reader::{Backing, Content, Fs, Inode};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use seedkit::records::{EntryKind, Timestamp};
use seedkit::{quote, warn};

use crate::debugfs::program;
use crate::script::{Owner, Plan};
use crate::tree::{display_key, Entry, Key, LinkKey};
use crate::Config;

/// Differences reported before giving up.
const REPORT_MAX: usize = 20;

fn same_time(t: ext4_reader::Time, want: Timestamp) -> bool {
    t.sec == want.sec && t.nsec == want.nsec
}

pub(crate) fn verify(
    image: &Path,
    entries: &BTreeMap<Key, Entry>,
    config: &Config,
    plan: &Plan,
    image_root: &[(Vec<u8>, u32)],
) -> Result<()> {
    let what = || format!("verifying {}", quote(image));
    let file = File::open(image).with_context(what)?;
    let fs = Fs::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    // What the image's root held before the run and the tree does not (lost+found, or
    // anything else the image came with) stays; its directories count in the root's links.
    let kept: Vec<&[u8]> = image_root
        .iter()
        .filter(|(n, _)| !entries.contains_key(std::slice::from_ref(n)))
        .map(|(n, _)| n.as_slice())
        .collect();
    let kept_dirs = image_root
        .iter()
        .filter(|(n, _)| kept.contains(&n.as_slice()))
        .filter(|(_, ino)| {
            fs.inode(*ino).is_ok_and(|i| {
                EntryKind::from_mode(u32::from(i.mode)) == Some(EntryKind::Directory)
            })
        })
        .count();
    let skipped: Vec<&Key> = plan.rejected.iter().map(|(k, _)| k).collect();
    let wanted: Vec<(&Key, &Entry)> = entries
        .iter()
        .filter(|(k, _)| !skipped.contains(k))
        .collect();

    // Names each directory must hold, and the names of each inode.
    let mut children: HashMap<&[Vec<u8>], Vec<&[u8]>> = HashMap::new();
    let mut names_of: HashMap<LinkKey, u16> = HashMap::new();
    for (key, e) in &wanted {
        if let Some((name, parent)) = key.split_last() {
            children.entry(parent).or_default().push(name);
        }
        if let Some(l) = link_of(e) {
            *names_of.entry(l).or_default() += 1;
        }
    }

    let mut problems = Vec::new();
    let root_fd = entries.get(&Vec::new()).and_then(|r| r.fd.as_deref());
    let mut inos: HashMap<Key, u32> = HashMap::new();
    let mut link_inos: HashMap<LinkKey, u32> = HashMap::new();
    inos.insert(Vec::new(), ext4_reader::ROOT_INO);
    for (key, e) in wanted {
        seedkit::interrupt::check()?;
        if problems.len() >= REPORT_MAX {
            break;
        }
        let shown = display_key(key);
        let mut problem = |text: String| problems.push(format!("{}: {text}", quote(&shown)));
        let Some(&ino) = inos.get(key) else {
            // Its parent was missing or not a directory: already reported.
            continue;
        };
        let inode = match fs.inode(ino) {
            Ok(i) => i,
            Err(err) => {
                problem(format!("reading inode {ino}: {err}"));
                continue;
            }
        };
        if EntryKind::from_mode(u32::from(inode.mode)) != Some(e.kind) {
            problem(format!(
                "a {:?} in the image, a {:?} in the tree",
                inode.file_type(),
                e.kind
            ));
            continue;
        }
        if inode.permissions() != e.mode {
            problem(format!(
                "mode {:04o} in the image, {:04o} in the tree",
                inode.permissions(),
                e.mode
            ));
        }
        let owner = match config.owner {
            Owner::Fixed(u, g) => (u, g),
            Owner::Preserve => (e.uid, e.gid),
        };
        if (inode.uid, inode.gid) != owner {
            problem(format!(
                "owner {}:{} in the image, {}:{} expected",
                inode.uid, inode.gid, owner.0, owner.1
            ));
        }
        if !same_time(inode.mtime, e.mtime) || !same_time(inode.atime, e.atime) {
            problem(format!(
                "times differ: atime {:?} mtime {:?} in the image, atime {:?} mtime {:?} in the tree",
                inode.atime, inode.mtime, e.atime, e.mtime
            ));
        }
        if let Some(c) = e.ctime {
            if !same_time(inode.ctime, c) {
                problem(format!(
                    "ctime {:?} in the image, {c:?} recorded",
                    inode.ctime
                ));
            }
        }
        let want_links = match e.kind {
            EntryKind::Directory => {
                let subdirs = entries
                    .range(key.clone()..)
                    .skip(1)
                    .take_while(|(k, _)| k.starts_with(key))
                    .filter(|(k, d)| k.len() == key.len() + 1 && d.kind == EntryKind::Directory)
                    .count();
                let extra = if key.is_empty() { kept_dirs } else { 0 };
                2 + subdirs + extra
            }
            _ => link_of(e).map_or(1, |l| usize::from(names_of[&l])),
        };
        if usize::from(inode.links_count) != want_links {
            problem(format!(
                "{} links in the image, {want_links} expected",
                inode.links_count
            ));
        }
        if let Some(l) = link_of(e) {
            let first = *link_inos.entry(l).or_insert(ino);
            if first != ino {
                problem(format!(
                    "inode {ino}, not the inode {first} of the other names of its hard link"
                ));
            }
        }
        let image_xattrs: Vec<(Vec<u8>, Vec<u8>)> = match fs.xattrs(&inode) {
            Ok(x) => x
                .into_iter()
                .filter(|x| !x.name.starts_with(b"system."))
                .map(|x| (x.name, x.value))
                .collect(),
            Err(err) => {
                problem(format!("reading its xattrs: {err}"));
                Vec::new()
            }
        };
        let mut want_xattrs: Vec<(Vec<u8>, Vec<u8>)> = e
            .xattrs
            .iter()
            .filter(|x| !x.name.0.starts_with(b"system."))
            .map(|x| (x.name.0.clone(), x.value.0.clone()))
            .collect();
        want_xattrs.sort();
        let mut got = image_xattrs;
        got.sort();
        if got != want_xattrs {
            problem("extended attributes differ".to_string());
        }
        match e.kind {
            EntryKind::File => {
                if inode.size != e.size {
                    problem(format!(
                        "{} bytes in the image, {} in the tree",
                        inode.size, e.size
                    ));
                } else if let Some(host) = &e.host {
                    match open_host(host, root_fd, key).and_then(|f| same_content(&fs, &inode, f)) {
                        Ok(true) => {}
                        Ok(false) => problem("content differs".to_string()),
                        Err(err) => problem(format!("comparing the content: {err:#}")),
                    }
                }
            }
            EntryKind::Symlink => match fs.symlink_target(&inode) {
                Ok(t) if Some(&t) == e.target.as_ref() => {}
                Ok(t) => problem(format!(
                    "symlink to {} in the image",
                    quote(Path::new(std::ffi::OsStr::new(
                        &String::from_utf8_lossy(&t).into_owned()
                    )))
                )),
                Err(err) => problem(format!("reading its target: {err}")),
            },
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                let want = e.rdev.map(|d| (d.major, d.minor));
                if Some(inode.rdev()) != want {
                    problem(format!(
                        "device {:?} in the image, {want:?} expected",
                        inode.rdev()
                    ));
                }
            }
            EntryKind::Directory => {
                check_dir(&fs, &inode, key, &children, &kept, &mut inos, &mut problem);
            }
            EntryKind::Fifo | EntryKind::Socket => {}
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            warn(format_args!("verify: {p}"));
        }
        bail!(
            "verifying {}: the image differs from the tree ({}{} differences, listed above)",
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

/// Names sharing an inode (hard links of anything but directories and symlinks).
fn link_of(e: &Entry) -> Option<LinkKey> {
    e.link
        .filter(|_| !matches!(e.kind, EntryKind::Directory | EntryKind::Symlink))
}

/// Check that directory `key` holds exactly its expected names, and note their inodes.
fn check_dir(
    fs: &Fs,
    inode: &Inode,
    key: &Key,
    children: &HashMap<&[Vec<u8>], Vec<&[u8]>>,
    kept: &[&[u8]],
    inos: &mut HashMap<Key, u32>,
    problem: &mut impl FnMut(String),
) {
    let listed = match fs.read_dir(inode) {
        Ok(l) => l,
        Err(err) => {
            problem(format!("reading the directory: {err}"));
            return;
        }
    };
    let want: &[&[u8]] = children.get(key.as_slice()).map_or(&[], Vec::as_slice);
    let mut found = 0;
    for d in listed {
        if d.name == b"." || d.name == b".." {
            continue;
        }
        if want.contains(&d.name.as_slice()) {
            found += 1;
            let mut k = key.clone();
            k.push(d.name);
            inos.insert(k, d.ino);
        } else if !(key.is_empty() && kept.contains(&d.name.as_slice())) {
            problem(format!(
                "the image holds {} here, which the tree does not",
                quote(Path::new(std::ffi::OsStr::new(
                    &String::from_utf8_lossy(&d.name).into_owned()
                )))
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

/// Open a host file by its path, or, when the path is too long for one syscall, one
/// component at a time from the tree's root.
fn open_host(host: &Path, root: Option<&OwnedFd>, key: &Key) -> Result<File> {
    let shown = || format!("opening {}", quote(host));
    if crate::tree::is_short(host) {
        return File::open(host).with_context(shown);
    }
    let root = root.with_context(shown)?;
    let mut dir: Option<OwnedFd> = None;
    for (n, part) in key.iter().enumerate() {
        let last = n + 1 == key.len();
        let flags = if last {
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
        };
        let at = dir.as_ref().map_or(root.as_raw_fd(), AsRawFd::as_raw_fd);
        let fd =
            openat(Some(at), OsStr::from_bytes(part), flags, Mode::empty()).with_context(shown)?;
        // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
        dir = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    dir.map(File::from).with_context(shown)
}

/// Whether a file's bytes in the image are the host file's, holes read as zeros.
fn same_content(fs: &Fs, inode: &Inode, mut f: File) -> Result<bool> {
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
                if !host_zeros(&mut f, pos, start, &mut b)? {
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
                        if !host_zeros(&mut f, start, end, &mut b)? {
                            return Ok(false);
                        }
                    }
                }
                pos = end;
            }
            Ok(host_zeros(&mut f, pos, size, &mut b)?)
        }
    }
}

/// Whether the host file holds only zeros in `from..to` (holes are skipped with SEEK_DATA).
fn host_zeros(f: &mut File, mut from: u64, to: u64, buf: &mut Vec<u8>) -> io::Result<bool> {
    while from < to {
        // SAFETY: lseek on a descriptor we own; no memory is involved.
        let data = unsafe {
            nix::libc::lseek(
                f.as_raw_fd(),
                from as nix::libc::off_t,
                nix::libc::SEEK_DATA,
            )
        };
        let start = if data >= 0 {
            data as u64
        } else if io::Error::last_os_error().raw_os_error() == Some(nix::libc::ENXIO) {
            // No data after `from`: the rest is a hole.
            return Ok(true);
        } else {
            // No SEEK_DATA here: read everything.
            from
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
            "verifying {}: e2fsck -fn found problems ({}): {first}",
            quote(image),
            out.status
        );
    }
    Ok(())
}
