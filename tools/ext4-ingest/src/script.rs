//! The debugfs command script: one `debugfs -w -f -` run writes the whole tree.
//!
//! Shape: the image cwd (`cd`) walks the tree, so every command takes bare quoted names and
//! lines stay far below the 8190-byte cut of `source_file`. debugfs never reads the host
//! tree by name: each file's content is given as `/proc/<our pid>/fd/N`, a descriptor the
//! walk opened and checked (see [`crate::tree::HostFile`]), which opens that same inode
//! whatever has been renamed or swapped since. An inode is named `<N>` when the allocator model
//! predicted its number (no path lookup in debugfs), else `./name` (a bare `<12>` would
//! mean inode 12). Per entry: set_current_time (to its mtime, when that changes), the
//! creating command, then `sif` for what differs from what creation gave (mode, owner,
//! time fields, `_extra` nanoseconds) and `ea_set`; directories get theirs when left, after
//! their children. A name holding `\n` or `\r` cannot go through `-f`: it is created under
//! a temporary safe name and renamed afterwards (see [`Rename`]).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use seedkit::quote;
use seedkit::records::{EntryKind, Timestamp};

use crate::image::Allocator;
use crate::tree::{display_key, Entry, Key, LinkKey};

/// `source_file` reads lines with `fgets(buf, 8192)`: longer lines are split (§2).
pub const MAX_LINE: usize = 8190;
/// Inline xattr values above this go through `ea_set -f` (each byte costs 4 in the line).
const INLINE_VALUE_MAX: usize = 1500;

/// How owners are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Every entry gets this uid and gid (root:root by default).
    Fixed(u32, u32),
    /// Owners from the manifest or the tree.
    Preserve,
}

/// What the script needs to know besides the tree.
pub struct Setup<'a> {
    pub owner: Owner,
    /// The fixed time for new inodes and the superblock.
    pub time: i64,
    /// Our directory for xattr value files.
    pub stage: &'a Path,
    /// Names in the image's root directory before the run, with their inodes.
    pub image_root: &'a [(Vec<u8>, u32)],
    /// The image's block size, for the estimate of the blocks the tree needs.
    pub block_size: u64,
}

/// An entry created under a temporary name, renamed after the script (one `debugfs -R`
/// for `ln`, one for `unlink`: `-R` takes any byte but a NUL).
#[derive(Debug, Clone)]
pub struct Rename {
    /// Final path of the entry.
    pub key: Key,
    pub temporary: Vec<u8>,
}

/// Counts for the summary.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub fifos: u64,
    pub char_devices: u64,
    pub block_devices: u64,
    pub extra_hard_links: u64,
    pub bytes: u64,
    /// New inodes the tree needs.
    pub inodes: u64,
    /// Rough blocks the tree needs (data, directories, long symlinks).
    pub blocks: u64,
}

/// The generated script and what is needed to read its output.
pub struct Plan {
    pub lines: Vec<Vec<u8>>,
    /// For each line, the index into `keys` of the entry it works on (`None`: setup).
    pub origin: Vec<Option<u32>>,
    /// For each line, the inode its `Allocated inode: N` must name (when predicted).
    pub expect: Vec<Option<u32>>,
    pub keys: Vec<Key>,
    pub renames: Vec<Rename>,
    pub counts: Counts,
    /// Entries that cannot be written, with the reason.
    pub rejected: Vec<(Key, String)>,
    values: usize,
}

/// `"text"` with embedded quotes doubled: the one quoting ss_parse knows (§2).
pub fn quoted(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// A name that cannot go through a `-f` script (`source_file` cuts lines at `\n` and `\r`).
pub fn needs_rename(name: &[u8]) -> bool {
    name.iter().any(|&b| b == b'\n' || b == b'\r')
}

/// An xattr value for `ea_set`: every byte as `\xNN`, since `parse_c_string` stops at `"`.
pub fn encoded_value(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 4 + 2);
    out.push(b'"');
    for b in value {
        let _ = write!(out, "\\x{b:02x}");
    }
    out.push(b'"');
    out
}

/// The `_extra` word of an ext4 time: nanoseconds and the two epoch bits (ext4.h
/// `ext4_encode_extra_time`).
pub fn extra_time(t: Timestamp) -> u32 {
    let epoch = ((t.sec - i64::from(t.sec as i32)) >> 32) & 3;
    (t.nsec << 2) | epoch as u32
}

/// The `i_block[1]` word of a device with the new encoding (kernel `new_encode_dev`).
pub fn new_encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

impl Plan {
    fn push(&mut self, entry: Option<u32>, parts: &[&[u8]]) -> Result<()> {
        let line: Vec<u8> = parts.join(&b' ');
        if line.len() > MAX_LINE {
            let what = entry.map_or_else(
                || std::path::PathBuf::from("."),
                |i| display_key(&self.keys[i as usize]),
            );
            bail!(
                "writing {}: a debugfs command of {} bytes (over {MAX_LINE}) would be needed",
                quote(&what),
                line.len()
            );
        }
        self.lines.push(line);
        self.origin.push(entry);
        self.expect.push(None);
        Ok(())
    }

    /// The last line must report allocating inode `ino`.
    fn expect_last(&mut self, ino: Option<u32>) {
        if let Some(last) = self.expect.last_mut() {
            *last = ino;
        }
    }
}

/// Where a hard-linked inode was first created (script-time path), its names so far, and
/// its inode when predicted.
type FirstLink = (Vec<Vec<u8>>, u32, Option<u32>);

/// A directory the script is inside.
struct Open {
    idx: u32,
    /// Its name in the image while the script runs.
    name: Vec<u8>,
    /// Its inode, when predicted.
    ino: Option<u32>,
    /// Its entry, for the metadata set when it is left.
    entry: Entry,
    /// The time it was created with (see [`Planner::creation_time`]).
    created: Option<i64>,
}

/// How the script names an inode: `<N>` when its number is known (no lookup in debugfs),
/// else `./name` (never a bare `<N>`-shaped name).
fn lookup(ino: Option<u32>, name: &[u8]) -> Vec<u8> {
    if let Some(n) = ino {
        quoted(format!("<{n}>").as_bytes())
    } else {
        let mut dot = b"./".to_vec();
        dot.extend_from_slice(name);
        quoted(&dot)
    }
}

/// Builds the script entry by entry, in the walk's order (parents first, siblings sorted),
/// so debugfs can run it while the tree is still being read.
pub struct Planner<'a> {
    pub plan: Plan,
    setup: Setup<'a>,
    alloc: Option<Allocator>,
    /// The allocator model ran out: the image has no inode for the next entry.
    pub exhausted: bool,
    links: HashMap<LinkKey, FirstLink>,
    open: Vec<Open>,
    renamed: u64,
    root: Option<Entry>,
    /// The names in each open directory, for temporary names that collide with none.
    siblings: HashMap<Key, Vec<Vec<u8>>>,
    pid: u32,
    /// debugfs's current time (`set_current_time`), which new inodes take.
    now: i64,
    /// Predicted inodes of commands that do not print them (mkdir, symlink), checked with
    /// `testi` at the end, with the entry each belongs to.
    unprinted: Vec<(u32, u32)>,
    /// For each directory, the lengths of the names that go in by [`Rename`]: room for them
    /// is reserved before the directory is left.
    reserve: HashMap<Key, Vec<usize>>,
}

impl<'a> Planner<'a> {
    pub fn new(setup: Setup<'a>, alloc: Option<Allocator>) -> Planner<'a> {
        Planner {
            plan: Plan {
                lines: Vec::new(),
                origin: Vec::new(),
                expect: Vec::new(),
                keys: Vec::new(),
                renames: Vec::new(),
                counts: Counts::default(),
                rejected: Vec::new(),
                values: 0,
            },
            setup,
            alloc,
            exhausted: false,
            links: HashMap::new(),
            open: Vec::new(),
            renamed: 0,
            root: None,
            siblings: HashMap::new(),
            pid: std::process::id(),
            now: 0,
            unprinted: Vec::new(),
            reserve: HashMap::new(),
        }
    }

    /// The names in the image's root before the run.
    pub fn image_root(&self) -> &[(Vec<u8>, u32)] {
        self.setup.image_root
    }

    /// The names held by the directory `key` (host names; others are added by [`add`]).
    pub fn children(&mut self, key: Key, names: Vec<Vec<u8>>) {
        self.siblings.insert(key, names);
    }

    /// Make debugfs's clock the entry's mtime (whole seconds) before it creates the inode:
    /// new inodes take that time for atime, mtime, ctime and crtime, which saves the `sif`s
    /// of the seconds of atime and mtime when they match. Times debugfs cannot take this way
    /// (before 1970, after 2038, or 0, which means "now" to it) get the fixed time and
    /// explicit `sif`s. Returns the seconds the inode gets, when they are the mtime's.
    fn creation_time(&mut self, idx: u32, e: &Entry) -> Result<Option<i64>> {
        let sec = e.mtime.sec;
        let (want, created) = if (1..=i64::from(i32::MAX)).contains(&sec) {
            (sec, Some(sec))
        } else {
            (self.setup.time, None)
        };
        if self.now != want {
            self.plan.push(
                Some(idx),
                &[b"set_current_time", format!("@{want}").as_bytes()],
            )?;
            self.now = want;
        }
        Ok(created)
    }

    /// The inode the next entry of the current directory gets, when the model knows it.
    fn next_ino(&mut self) -> Option<u32> {
        let cwd = self.open.last().map_or(Some(2), |o| o.ino);
        self.next_ino_in(cwd)
    }

    /// The inode the next entry of directory `dir` gets, when the model knows it.
    fn next_ino_in(&mut self, dir: Option<u32>) -> Option<u32> {
        let cwd = dir?;
        let alloc = self.alloc.as_mut()?;
        let got = alloc.alloc(cwd);
        if got.is_none() {
            self.exhausted = true;
            self.alloc = None;
        }
        got
    }

    /// Add the commands for one entry; the root comes first. `content` is the descriptor of
    /// a host file's content; the index of the line that reads it is returned (`None`: it
    /// is not read, being a further name of an inode already written).
    pub fn add(&mut self, key: &Key, e: &Entry, content: Option<RawFd>) -> Result<Option<usize>> {
        let p = &mut self.plan;
        if key.is_empty() {
            p.keys.push(key.clone());
            p.push(
                None,
                &[
                    b"set_current_time",
                    format!("@{}", self.setup.time).as_bytes(),
                ],
            )?;
            self.now = self.setup.time;
            p.push(None, &[b"cd", b"\"/\""])?;
            self.root = Some(e.clone());
            return Ok(None);
        }
        if self.root.is_none() {
            bail!("the tree has no root entry");
        }
        while self.open.len() >= key.len() {
            let dir = self.open.pop().context("directory stack")?;
            self.close_dir(&dir)?;
        }
        let idx = self.plan.keys.len() as u32;
        self.plan.keys.push(key.clone());
        let name = key.last().context("entry name")?;
        let parent = &key[..key.len() - 1];
        if e.host.is_none() {
            // Host names came with the directory's listing.
            self.siblings
                .entry(parent.to_vec())
                .or_default()
                .push(name.clone());
        }
        let create = if needs_rename(name) {
            self.reserve
                .entry(parent.to_vec())
                .or_default()
                .push(name.len());
            let t = self.temporary_name(key);
            self.plan.renames.push(Rename {
                key: key.clone(),
                temporary: t.clone(),
            });
            t
        } else {
            name.clone()
        };
        let qname = quoted(&create);
        let some = Some(idx);
        let linked = match e.link {
            Some(k) if !matches!(e.kind, EntryKind::Directory | EntryKind::Symlink) => Some(k),
            _ => None,
        };
        let here: Vec<Vec<u8>> = if linked.is_some() {
            self.open.iter().map(|o| o.name.clone()).collect()
        } else {
            Vec::new()
        };
        if let Some(k) = linked.filter(|k| self.links.contains_key(k)) {
            // A further name of an inode already written: `ln` neither expands a full
            // directory nor counts links (§3.3), so reserve the slot with a `write` that
            // does expand, free it, link, and set the count.
            let reserved = self.next_ino();
            let (first, count, first_ino) = self.links.get_mut(&k).context("hard link")?;
            *count += 1;
            let p = &mut self.plan;
            let by_name = lookup(None, &create);
            p.push(some, &[b"write", b"\"/dev/null\"", &qname])?;
            p.expect_last(reserved);
            p.push(some, &[b"rm", &by_name])?;
            if let (Some(a), Some(r)) = (self.alloc.as_mut(), reserved) {
                a.free(r);
            }
            let source = match first_ino {
                Some(n) => lookup(Some(*n), b""),
                None => quoted(&relative(&here, first)),
            };
            p.push(some, &[b"ln", &source, &by_name])?;
            let target = if first_ino.is_some() { source } else { by_name };
            p.push(
                some,
                &[
                    b"sif",
                    &target,
                    b"links_count",
                    count.to_string().as_bytes(),
                ],
            )?;
            p.counts.extra_hard_links += 1;
            return Ok(None);
        }
        let ino: Option<u32>;
        let mut created = None;
        let mut read = None;
        let default_mode = match e.kind {
            EntryKind::File => {
                created = self.creation_time(idx, e)?;
                ino = self.next_ino();
                let p = &mut self.plan;
                let mode = if e.host.is_some() {
                    let fd = content.context("a host file without its descriptor")?;
                    let proc = format!("/proc/{}/fd/{fd}", self.pid);
                    read = Some(p.lines.len());
                    p.push(some, &[b"write", &quoted(proc.as_bytes()), &qname])?;
                    Some(e.host_mode)
                } else {
                    p.push(some, &[b"write", b"\"/dev/null\"", &qname])?;
                    Some(0o666)
                };
                p.expect_last(ino);
                p.counts.files += 1;
                p.counts.inodes += 1;
                p.counts.bytes += e.size;
                p.counts.blocks += e.allocated.div_ceil(self.setup.block_size);
                mode
            }
            EntryKind::Directory => {
                let reuse = self
                    .setup
                    .image_root
                    .iter()
                    .find(|(n, _)| key.len() == 1 && n == b"lost+found" && name == n)
                    .map(|(_, i)| *i);
                if let Some(lf) = reuse {
                    ino = Some(lf);
                } else {
                    created = self.creation_time(idx, e)?;
                    ino = self.next_ino();
                    self.plan.push(some, &[b"mkdir", &qname])?;
                    if let Some(n) = ino {
                        self.unprinted.push((n, idx));
                    }
                    self.plan.counts.inodes += 1;
                    self.plan.counts.blocks += 1;
                }
                let p = &mut self.plan;
                p.counts.directories += 1;
                p.push(some, &[b"cd", &lookup(ino, &create)])?;
                self.open.push(Open {
                    idx,
                    name: create.clone(),
                    ino,
                    entry: e.clone(),
                    created,
                });
                return Ok(None);
            }
            EntryKind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                if needs_rename(target) || target.contains(&0) || target.is_empty() {
                    let p = &mut self.plan;
                    p.rejected.push((
                        key.clone(),
                        "a symlink target that holds a newline, CR or NUL, or is empty, cannot be given to debugfs".into(),
                    ));
                    p.keys.pop();
                    return Ok(None);
                }
                created = self.creation_time(idx, e)?;
                ino = self.next_ino();
                if let Some(n) = ino {
                    self.unprinted.push((n, idx));
                }
                let p = &mut self.plan;
                p.push(some, &[b"symlink", &qname, &quoted(target)])?;
                p.counts.symlinks += 1;
                p.counts.inodes += 1;
                if target.len() >= 60 {
                    p.counts.blocks += 1;
                }
                Some(0o777)
            }
            EntryKind::Fifo => {
                created = self.creation_time(idx, e)?;
                ino = self.next_ino();
                let p = &mut self.plan;
                p.push(some, &[b"mknod", &qname, b"p"])?;
                p.expect_last(ino);
                p.counts.fifos += 1;
                p.counts.inodes += 1;
                None
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                created = self.creation_time(idx, e)?;
                ino = self.next_ino();
                let p = &mut self.plan;
                let t: &[u8] = if e.kind == EntryKind::CharDevice {
                    p.counts.char_devices += 1;
                    b"c"
                } else {
                    p.counts.block_devices += 1;
                    b"b"
                };
                p.counts.inodes += 1;
                let dev = e
                    .rdev
                    .unwrap_or(seedkit::records::Rdev { major: 0, minor: 0 });
                if dev.major <= 0xffff && dev.minor <= 0xffff {
                    p.push(
                        some,
                        &[
                            b"mknod",
                            &qname,
                            t,
                            dev.major.to_string().as_bytes(),
                            dev.minor.to_string().as_bytes(),
                        ],
                    )?;
                    p.expect_last(ino);
                } else {
                    // debugfs's mknod takes 16-bit numbers; write the kernel's encoding.
                    p.push(some, &[b"mknod", &qname, t, b"0", b"0"])?;
                    p.expect_last(ino);
                    let word = format!("0x{:x}", new_encode_dev(dev.major, dev.minor));
                    p.push(
                        some,
                        &[b"sif", &lookup(ino, &create), b"block[1]", word.as_bytes()],
                    )?;
                }
                None
            }
            EntryKind::Socket => {
                let p = &mut self.plan;
                p.rejected
                    .push((key.clone(), "debugfs cannot create sockets".into()));
                p.keys.pop();
                return Ok(None);
            }
        };
        if let Some(k) = linked {
            let mut path = here;
            path.push(create.clone());
            self.links.insert(k, (path, 1, ino));
        }
        metadata(
            &mut self.plan,
            some,
            &lookup(ino, &create),
            e,
            default_mode,
            created,
            &self.setup,
        )?;
        Ok(read)
    }

    /// Leave the open directories and set the root's metadata: the script is complete.
    pub fn finish(&mut self) -> Result<()> {
        while let Some(dir) = self.open.pop() {
            self.close_dir(&dir)?;
        }
        if let Some(lens) = self.reserve.remove(&Vec::new()) {
            self.reserve_slots(&Vec::new(), &lens, Some(2), None)?;
        }
        let root = self.root.take().context("the tree has no root entry")?;
        // A wrong prediction for a write or mknod shows in `Allocated inode: N`; for mkdir
        // and symlink, which print nothing, ask whether the predicted inode is in use (a
        // wrong one would be free, or make a later allocation differ).
        for (n, idx) in std::mem::take(&mut self.unprinted) {
            self.plan
                .push(Some(idx), &[b"testi", &lookup(Some(n), b"")])?;
            self.plan.expect_last(Some(n));
        }
        if self.now != self.setup.time {
            // The superblock's write time comes from this clock when debugfs closes.
            self.plan.push(
                None,
                &[
                    b"set_current_time",
                    format!("@{}", self.setup.time).as_bytes(),
                ],
            )?;
            self.now = self.setup.time;
        }
        metadata(
            &mut self.plan,
            Some(0),
            b"\"/\"",
            &root,
            Some(0o755),
            None,
            &self.setup,
        )
    }

    /// Leave a directory and set its metadata, now that its children are in.
    fn close_dir(&mut self, dir: &Open) -> Result<()> {
        let some = Some(dir.idx);
        let key = self.plan.keys[dir.idx as usize].clone();
        if let Some(lens) = self.reserve.remove(&key) {
            self.reserve_slots(&key, &lens, dir.ino, some)?;
        }
        let p = &mut self.plan;
        p.push(some, &[b"cd", b"\"..\""])?;
        self.siblings.remove(&p.keys[dir.idx as usize]);
        metadata(
            p,
            some,
            &lookup(dir.ino, &dir.name),
            &dir.entry,
            Some(0o755),
            dir.created,
            &self.setup,
        )
    }

    /// Make sure directory `key` (the cwd) has a free slot for each name of `lens` bytes that
    /// the renames will add: `ln` does not expand a full directory (§3.3), so create files of
    /// those lengths (`write` expands as needed) and remove them, leaving their room.
    fn reserve_slots(
        &mut self,
        key: &Key,
        lens: &[usize],
        dir: Option<u32>,
        idx: Option<u32>,
    ) -> Result<()> {
        let mut made: Vec<(Vec<u8>, Option<u32>)> = Vec::new();
        for &len in lens {
            let name = self.filler(key, len, &made)?;
            let ino = self.next_ino_in(dir);
            self.plan
                .push(idx, &[b"write", b"\"/dev/null\"", &quoted(&name)])?;
            self.plan.expect_last(ino);
            made.push((name, ino));
        }
        for (name, ino) in made {
            self.plan.push(idx, &[b"rm", &lookup(None, &name)])?;
            if let (Some(a), Some(i)) = (self.alloc.as_mut(), ino) {
                a.free(i);
            }
        }
        Ok(())
    }

    /// A name of `len` bytes that no entry of directory `key` has (nor `taken`).
    fn filler(&self, key: &Key, len: usize, taken: &[(Vec<u8>, Option<u32>)]) -> Result<Vec<u8>> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
        let base = ALPHABET.len() as u64;
        let siblings = self.siblings.get(key);
        let limit = base.checked_pow(len.min(4) as u32).unwrap_or(u64::MAX);
        for mut k in 0..limit {
            let mut name = Vec::with_capacity(len);
            loop {
                name.push(ALPHABET[(k % base) as usize]);
                k /= base;
                if k == 0 {
                    break;
                }
            }
            name.resize(len, b'_');
            let used = siblings.is_some_and(|s| s.contains(&name))
                || taken.iter().any(|(n, _)| *n == name)
                || (key.is_empty() && self.setup.image_root.iter().any(|(n, _)| *n == name));
            if !used {
                return Ok(name);
            }
        }
        bail!(
            "writing into {}: no free name of {len} bytes to reserve room with",
            quote(&display_key(key))
        )
    }

    /// A temporary name for `key` that collides with no sibling (and, at the top, with
    /// nothing already in the image).
    fn temporary_name(&mut self, key: &Key) -> Vec<u8> {
        let parent = &key[..key.len() - 1];
        loop {
            let name = format!(".ext4-ingest-rename-{}", self.renamed).into_bytes();
            self.renamed += 1;
            let sibling = self
                .siblings
                .get(parent)
                .is_some_and(|names| names.contains(&name));
            let in_image = key.len() == 1 && self.setup.image_root.iter().any(|(n, _)| *n == name);
            if !sibling && !in_image {
                return name;
            }
        }
    }
}

/// `sif` and `ea_set` commands that give the inode at `look` the entry's metadata.
fn metadata(
    p: &mut Plan,
    idx: Option<u32>,
    look: &[u8],
    e: &Entry,
    default_mode: Option<u32>,
    created: Option<i64>,
    setup: &Setup,
) -> Result<()> {
    if default_mode != Some(e.mode) {
        // `sif mode` takes the whole i_mode, type bits included (§3.2).
        let mode = format!("0{:o}", e.kind.type_bits() | e.mode);
        p.push(idx, &[b"sif", look, b"mode", mode.as_bytes()])?;
    }
    let (uid, gid) = match setup.owner {
        Owner::Fixed(u, g) => (u, g),
        Owner::Preserve => (e.uid, e.gid),
    };
    // New inodes are 0:0 already.
    if uid != 0 {
        p.push(idx, &[b"sif", look, b"uid", uid.to_string().as_bytes()])?;
    }
    if gid != 0 {
        p.push(idx, &[b"sif", look, b"gid", gid.to_string().as_bytes()])?;
    }
    let times = [
        ("atime", Some(e.atime)),
        ("mtime", Some(e.mtime)),
        ("ctime", e.ctime),
        ("crtime", e.crtime),
    ];
    for (field, t) in times {
        let Some(t) = t else { continue };
        // Seconds first, then `_extra`: ≥1.47.1 clears the nanoseconds when the seconds are
        // set (§3.2). The creation left `_extra` at 0, so 0 needs no command, and the
        // creation time's seconds need none either.
        let from_creation = matches!(field, "atime" | "mtime") && created == Some(t.sec);
        // debugfs's string_to_time returns -1 for "cannot parse", so `@-1` is refused (§3.2):
        // give the same low 32 bits as 2^32 - 1 and put the epoch bits right with `_extra`.
        let minus_one = t.sec == -1;
        if !from_creation {
            let sec = if minus_one {
                i64::from(u32::MAX)
            } else {
                t.sec
            };
            p.push(
                idx,
                &[b"sif", look, field.as_bytes(), format!("@{sec}").as_bytes()],
            )?;
        }
        let extra = extra_time(t);
        if extra != 0 || minus_one {
            p.push(
                idx,
                &[
                    b"sif",
                    look,
                    format!("{field}_extra").as_bytes(),
                    format!("0x{extra:x}").as_bytes(),
                ],
            )?;
        }
    }
    for x in &e.xattrs {
        let name = &x.name.0;
        if needs_rename(name) || name.contains(&0) || name.is_empty() {
            bail!(
                "writing an extended attribute of {}: its name cannot be given to debugfs",
                quote(&display_key(idx.map_or(&[][..], |i| &p.keys[i as usize])))
            );
        }
        let len = x.value.0.len();
        if len > INLINE_VALUE_MAX && len as u64 > setup.block_size {
            // `ea_set -f` reads one block of the file (§3.4): the rest would be dropped,
            // silently (an image with ea_inode takes the shortened value).
            bail!(
                "writing the extended attribute {} of {}: its value of {len} bytes is longer than a block ({} bytes), which debugfs's ea_set -f cannot write",
                quote(Path::new(std::ffi::OsStr::from_bytes(name))),
                quote(&display_key(idx.map_or(&[][..], |i| &p.keys[i as usize]))),
                setup.block_size
            );
        }
        if len > INLINE_VALUE_MAX {
            let file = setup.stage.join(format!("value{}", p.values));
            p.values += 1;
            std::fs::write(&file, &x.value.0)
                .with_context(|| format!("writing {}", quote(&file)))?;
            let fq = quoted(file.as_os_str().as_bytes());
            p.push(idx, &[b"ea_set", b"-f", &fq, b"--", look, &quoted(name)])?;
        } else {
            p.push(
                idx,
                &[
                    b"ea_set",
                    b"--",
                    look,
                    &quoted(name),
                    &encoded_value(&x.value.0),
                ],
            )?;
        }
    }
    Ok(())
}

/// A path from directory `from` to `to` (both from the image root), for `ln`'s source.
fn relative(from: &[Vec<u8>], to: &[Vec<u8>]) -> Vec<u8> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&[u8]> = vec![b"."];
    parts.extend(std::iter::repeat_n(&b".."[..], from.len() - common));
    parts.extend(to[common..].iter().map(Vec::as_slice));
    parts.join(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, mode: u32, sec: i64, nsec: u32) -> Entry {
        Entry {
            kind,
            mode,
            uid: 1000,
            gid: 1000,
            atime: Timestamp { sec, nsec },
            mtime: Timestamp { sec, nsec },
            ctime: None,
            crtime: None,
            size: 0,
            allocated: 0,
            rdev: None,
            target: (kind == EntryKind::Symlink).then(|| b"t".to_vec()),
            link: None,
            xattrs: Vec::new(),
            host: Some(std::path::PathBuf::from("/h")),
            host_id: None,
            host_mode: mode,
        }
    }

    fn script(entries: &[(&[&str], Entry)]) -> Vec<String> {
        let stage = Path::new("/stage");
        let root = [(b"lost+found".to_vec(), 11)];
        let setup = Setup {
            owner: Owner::Fixed(0, 0),
            time: 1_700_000_000,
            stage,
            image_root: &root,
            block_size: 4096,
        };
        let alloc = Allocator::new(64, 32, 11, 1..=11);
        let mut planner = Planner::new(setup, Some(alloc));
        for (key, e) in entries {
            let key: Key = key.iter().map(|p| p.as_bytes().to_vec()).collect();
            let content = (e.kind == EntryKind::File).then_some(7);
            planner.add(&key, e, content).unwrap();
        }
        planner.finish().unwrap();
        planner
            .plan
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn a_small_tree_gives_the_expected_commands() {
        let mut linked = entry(EntryKind::File, 0o644, 1000, 5);
        linked.link = Some(LinkKey::Host(1, 99));
        let lines = script(&[
            (&[], entry(EntryKind::Directory, 0o755, 500, 0)),
            (&["d"], entry(EntryKind::Directory, 0o700, 900, 0)),
            (&["d", "f"], linked.clone()),
            (&["d", "s"], entry(EntryKind::Symlink, 0o777, 1000, 0)),
            (&["g"], linked),
        ]);
        let write = format!("write \"/proc/{}/fd/7\" \"f\"", std::process::id());
        let want = [
            "set_current_time @1700000000",
            "cd \"/\"",
            // d: created at its mtime, in inode 12 (the first free one).
            "set_current_time @900",
            "mkdir \"d\"",
            "cd \"<12>\"",
            // d/f: mode and owner as created (host mode, 0:0); only the nanoseconds.
            "set_current_time @1000",
            &write,
            "sif \"<13>\" atime_extra 0x14",
            "sif \"<13>\" mtime_extra 0x14",
            "symlink \"s\" \"t\"",
            // Leaving d: its mode, then its times (seconds as created).
            "cd \"..\"",
            "sif \"<12>\" mode 040700",
            // g: a second name of d/f, in a slot reserved by a write that expands.
            "write \"/dev/null\" \"g\"",
            "rm \"./g\"",
            "ln \"<13>\" \"./g\"",
            "sif \"<13>\" links_count 2",
            // The inodes mkdir and symlink do not print.
            "testi \"<12>\"",
            "testi \"<14>\"",
            "set_current_time @1700000000",
            "sif \"/\" atime @500",
            "sif \"/\" mtime @500",
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn quoting_doubles_quotes_and_keeps_other_bytes() {
        assert_eq!(quoted(b"a b"), b"\"a b\"");
        assert_eq!(quoted(b"q\"uote"), b"\"q\"\"uote\"");
        assert_eq!(quoted(b"back\\slash\t\xff"), b"\"back\\slash\t\xff\"");
        assert_eq!(quoted(b""), b"\"\"");
    }

    #[test]
    fn values_are_hex_escaped() {
        assert_eq!(encoded_value(b"\x00\"A"), b"\"\\x00\\x22\\x41\"");
    }

    #[test]
    fn extra_time_holds_nanoseconds_and_epoch_bits() {
        assert_eq!(extra_time(Timestamp { sec: 5, nsec: 1 }), 4);
        assert_eq!(
            extra_time(Timestamp {
                sec: 4_000_000_000,
                nsec: 0
            }),
            1
        );
        assert_eq!(extra_time(Timestamp { sec: -5, nsec: 0 }), 0);
        assert_eq!(
            extra_time(Timestamp {
                sec: 1,
                nsec: 999_999_999
            }),
            999_999_999 << 2
        );
    }

    #[test]
    fn device_encoding_matches_the_kernel() {
        // 300:70000, as verified with debugfs (§3.7).
        let minor = 0x1_1170; // 70000
        let w = new_encode_dev(300, minor);
        assert_eq!(w & 0xff, minor & 0xff);
        assert_eq!((w >> 8) & 0xfff, 300);
        assert_eq!(w >> 20, minor >> 8);
    }

    #[test]
    fn relative_paths_climb_then_descend() {
        let a = vec![b"a".to_vec(), b"b".to_vec()];
        let c = vec![b"a".to_vec(), b"c".to_vec(), b"f".to_vec()];
        assert_eq!(relative(&a, &c), b"./../c/f");
        assert_eq!(relative(&[], &[b"f".to_vec()]), b"./f");
    }

    #[test]
    fn newline_and_cr_need_the_rename_route() {
        assert!(needs_rename(b"a\nb"));
        assert!(needs_rename(b"a\rb"));
        assert!(!needs_rename(b"a\tb\"#!"));
    }
}
