//! Writing the walked entries into the image with the workspace's ext4 writer
//! ([`ext4fs::write`]): entries arrive in walk order (parents first, siblings sorted),
//! each directory is closed (its blocks written) as soon as the walk has left it, so memory
//! follows the widest directory rather than the tree.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Result};
use ext4fs::write::{DirIno, Meta, Source, Special, WriteError, Writer, ROOT};
use ext4fs::{Ino, Time, Xattr};
use seedkit::quote;
use seedkit::records::{EntryKind, Timestamp, TreeCounts};

use crate::tree::{display_key, Entry, Key, LinkKey};

/// How owners are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Every entry gets this uid and gid (root:root by default).
    Fixed(u32, u32),
    /// Owners from the manifest or the tree.
    Preserve,
}

/// Counts for the summary: the tree's ([`TreeCounts`], the record's own), and what it
/// took of the image.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub tree: TreeCounts,
    /// New inodes written.
    pub inodes: u64,
    /// Directories written with a hash index (more than one block).
    pub indexed_directories: u64,
}

/// What [`ImageWriter::place`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    Dir(DirIno),
    Other(Ino),
}

impl Made {
    pub fn ino(self) -> Ino {
        match self {
            Made::Dir(d) => d.ino(),
            Made::Other(i) => i,
        }
    }
}

/// What the image can take, and the entries written so far.
pub struct ImageWriter<'a> {
    image: &'a Path,
    w: Writer,
    owner: Owner,
    /// The fixed time for a ctime or crtime the source does not give.
    time: i64,
    /// The directories on the walk's current path: (key, inode), the root first.
    open: Vec<(Key, DirIno)>,
    /// First inode of each hard-linked group.
    links: HashMap<LinkKey, Ino>,
    pub counts: Counts,
    /// Entries refused by the writer (and every entry below a refused directory).
    pub rejected: Vec<(Key, String)>,
    /// Inodes free when the run began, for messages.
    free_inodes: u64,
    inodes_count: u64,
    /// Set when the image ran out of inodes: the rest of the walk is only counted, so the
    /// message can say what the tree needs.
    exhausted: Option<Key>,
    /// Inodes the tree needs (counted on after exhaustion).
    needed: u64,
    free_blocks: u64,
}

fn time(t: Timestamp) -> Time {
    Time {
        sec: t.sec,
        nsec: t.nsec,
    }
}

impl<'a> ImageWriter<'a> {
    pub fn new(image: &'a Path, file: File, owner: Owner, fixed_time: i64) -> Result<Self> {
        let w = Writer::open(file).map_err(|e| opening(image, &e))?;
        let (free_blocks, free_inodes) = w.free();
        let inodes_count = u64::from(w.inodes_count());
        Ok(ImageWriter {
            image,
            w,
            owner,
            time: fixed_time,
            open: Vec::new(),
            links: HashMap::new(),
            counts: Counts::default(),
            rejected: Vec::new(),
            free_inodes,
            free_blocks,
            inodes_count,
            exhausted: None,
            needed: 0,
        })
    }

    /// The names the image's root held before the run.
    pub fn image_root(&self) -> Vec<Vec<u8>> {
        self.w
            .root_entries()
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// The names the image's root held before the run, with their inodes.
    pub fn image_root_inodes(&self) -> Vec<(Vec<u8>, Ino)> {
        self.w
            .root_entries()
            .iter()
            .map(|e| (e.name.clone(), e.ino))
            .collect()
    }

    pub fn image(&self) -> &Path {
        self.image
    }

    /// The fixed time of the run (for what the source gives no time).
    pub fn fixed_time(&self) -> i64 {
        self.time
    }

    /// Whether anything was written into the image yet (the root's attributes wait in
    /// memory until the end).
    pub fn started(&self) -> bool {
        self.counts.inodes > 0 || self.open.len() > 1
    }

    fn meta(&self, e: &Entry) -> Meta {
        let (uid, gid) = match self.owner {
            Owner::Fixed(u, g) => (u, g),
            Owner::Preserve => (e.uid, e.gid),
        };
        // Without a recorded ctime or crtime, both are the entry's mtime (whole seconds)
        // when that is a plain positive time, else the run's fixed time.
        let created = Time {
            sec: if (1..=i64::from(i32::MAX)).contains(&e.mtime.sec) {
                e.mtime.sec
            } else {
                self.time
            },
            nsec: 0,
        };
        Meta {
            mode: (e.mode & 0o7777) as u16,
            uid,
            gid,
            atime: time(e.atime),
            mtime: time(e.mtime),
            ctime: e.ctime.map_or(created, time),
            crtime: e.crtime.map_or(created, time),
            xattrs: e
                .xattrs
                .iter()
                .map(|x| Xattr {
                    name: x.name.0.clone(),
                    value: x.value.0.clone(),
                })
                .collect(),
        }
    }

    /// Close the directories the walk has left: every open one that is not an ancestor of
    /// `key`.
    fn leave_to(&mut self, key: &Key) -> Result<()> {
        while let Some((k, ino)) = self.open.last() {
            if key.is_below(k) {
                break;
            }
            let (k, ino) = (k.clone(), *ino);
            self.open.pop();
            self.w.close_dir(ino).map_err(|e| self.failed(&k, &e))?;
        }
        Ok(())
    }

    fn rejected_under(&self, key: &Key) -> bool {
        self.rejected.iter().any(|(r, _)| key.is_below(r))
    }

    /// Write one entry, in walk order (parents first, siblings sorted); a regular file's
    /// bytes come from `content` (an empty file without).
    pub fn add(&mut self, key: &Key, e: &Entry, content: Option<&mut dyn Source>) -> Result<()> {
        if key.is_root() {
            return self.set_root(e);
        }
        if self.exhausted.is_none() {
            self.leave_to(key)?;
            if self.rejected_under(key) {
                return Ok(());
            }
        }
        let parent = match self.open.last() {
            Some((parent_key, parent)) if key.parent() == Some(parent_key.as_bytes()) => *parent,
            _ if self.exhausted.is_some() => ROOT,
            _ => bail!(
                "writing {}: its directory was not written",
                quote(&display_key(key))
            ),
        };
        if let Some(Made::Dir(dir)) = self.place(parent, key, e, content)? {
            self.open.push((key.clone(), dir));
        }
        Ok(())
    }

    /// The tree's top directory: the image's root takes its attributes.
    pub fn set_root(&mut self, e: &Entry) -> Result<()> {
        let meta = self.meta(e);
        self.w
            .set_root(&meta)
            .map_err(|err| self.failed(&Key::default(), &err))?;
        if self.open.is_empty() {
            self.open.push((Key::default(), ROOT));
            // The tree's top directory counts as one of its directories (it is the
            // image's root, so it takes no new inode).
            self.counts.tree.add(EntryKind::Directory, 0);
        }
        Ok(())
    }

    /// Give directory `dir`, written already, the attributes of `e` (a tar stream may
    /// name a directory after its entries).
    pub fn set_dir(&mut self, key: &Key, dir: DirIno, e: &Entry) -> Result<()> {
        let meta = self.meta(e);
        self.w
            .set_meta(dir, &meta)
            .map_err(|err| self.failed(key, &err))
    }

    /// Make entry `key` in directory `parent` (in any order: the caller keeps track of the
    /// directories). What was made, or `None` when it was refused (reported at the end) or
    /// only counted (the image is out of inodes).
    pub fn place(
        &mut self,
        parent: DirIno,
        key: &Key,
        e: &Entry,
        content: Option<&mut dyn Source>,
    ) -> Result<Option<Made>> {
        let linked = e.link.filter(|_| e.kind != EntryKind::Directory);
        if self.exhausted.is_some() {
            // Only counted: nothing more is written (no inode is made: the root's number
            // stands in, only the link's key counts).
            if linked.is_none_or(|k| self.links.insert(k, Ino::ROOT).is_none()) {
                self.needed += 1;
            }
            return Ok(None);
        }
        let name = key.name().unwrap_or_default();
        if parent == ROOT {
            if let Some(dir) = self.existing_top(key, name, e)? {
                return Ok(Some(Made::Dir(dir)));
            }
        }
        if let Some(&ino) = linked.and_then(|k| self.links.get(&k)) {
            let made = self.link(parent, key, ino)?;
            return Ok(made.then_some(Made::Other(ino)));
        }
        let meta = self.meta(e);
        let made = match e.kind {
            EntryKind::Directory => self.w.mkdir(parent, name, &meta).map(Made::Dir),
            EntryKind::File => match content {
                Some(src) => self.w.add_file(parent, name, &meta, src),
                None => self.w.add_file(
                    parent,
                    name,
                    &meta,
                    &mut ext4fs::write::Dense(std::io::Cursor::new(Vec::new())),
                ),
            }
            .map(Made::Other),
            EntryKind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                self.w.symlink(parent, name, target, &meta).map(Made::Other)
            }
            kind => self
                .w
                .special(parent, name, special(kind, e), &meta)
                .map(Made::Other),
        };
        let made = match made {
            Ok(made) => made,
            Err(err) => return self.refuse(key, err).map(|()| None),
        };
        self.counts.inodes += 1;
        self.counts.tree.add(e.kind, e.size);
        if let Some(k) = linked {
            self.links.insert(k, made.ino());
        }
        Ok(Some(made))
    }

    /// A top-level name the image holds already: its `lost+found` directory is opened to
    /// take the tree's (`Some`); any other is refused before it is overwritten.
    fn existing_top(&mut self, key: &Key, name: &[u8], e: &Entry) -> Result<Option<DirIno>> {
        let found = self.w.root_entries().iter().find(|d| d.name == name);
        let Some(kind) = found.map(|d| d.kind) else {
            return Ok(None);
        };
        if name == b"lost+found"
            && kind == Some(EntryKind::Directory)
            && e.kind == EntryKind::Directory
        {
            let meta = self.meta(e);
            let dir = self
                .w
                .reopen_dir(name)
                .map_err(|err| self.failed(key, &err))?;
            self.w
                .set_meta(dir, &meta)
                .map_err(|err| self.failed(key, &err))?;
            self.counts.tree.add(EntryKind::Directory, 0);
            return Ok(Some(dir));
        }
        bail!(
            "writing {} into {}: the image already holds an entry of that name (refusing to overwrite it)",
            quote(&display_key(key)),
            quote(self.image)
        )
    }

    /// Give inode `ino` (a non-directory made in this run) the further name `key` in
    /// `parent`; false when the writer refused it (reported at the end).
    pub fn link(&mut self, parent: DirIno, key: &Key, ino: Ino) -> Result<bool> {
        let name = key.name().unwrap_or_default();
        match self.w.link(parent, name, ino) {
            Ok(()) => {
                self.counts.tree.extra_hard_links += 1;
                Ok(true)
            }
            Err(err) => self.refuse(key, err).map(|()| false),
        }
    }

    /// An entry the writer refused is reported and left out; anything else ends the run.
    fn refuse(&mut self, key: &Key, err: WriteError) -> Result<()> {
        match err {
            WriteError::EntryRefused { why, .. } => {
                self.rejected.push((key.clone(), why));
                return Ok(());
            }
            WriteError::OutOfInodes => {
                self.needed = self.counts.inodes + 1;
                self.exhausted = Some(key.clone());
                return Ok(());
            }
            _ => {}
        }
        Err(self.failed(key, &err))
    }

    /// The error line for a failure while writing `key`.
    fn failed(&self, key: &Key, err: &WriteError) -> anyhow::Error {
        let shown = display_key(key);
        let what = quote(&shown);
        let image = quote(self.image);
        let rebuild = "the image is unusable, rebuild it";
        match err {
            WriteError::OutOfSpace => anyhow::anyhow!(
                "writing {what} into {image}: out of space: the image had {} free blocks; {rebuild} larger",
                self.free_blocks
            ),
            WriteError::OutOfInodes => anyhow::anyhow!(
                "writing {what} into {image}: out of inodes: the image had {} free of {}; {rebuild} with more (mkfs.ext4 -N)",
                self.free_inodes,
                self.inodes_count
            ),
            other => anyhow::anyhow!("writing {what} into {image}: {other}; {rebuild}"),
        }
    }

    /// Close every directory, write the link counts, bitmaps, descriptors and superblock;
    /// the counts and the entries the writer refused.
    pub fn finish(mut self) -> Result<(Counts, Vec<(Key, String)>)> {
        if let Some(key) = &self.exhausted {
            bail!(
                "writing {} into {}: out of inodes: the tree needs {} inodes and the image has {} free of {}; the image is unusable, rebuild it with more (mkfs.ext4 -N)",
                quote(&display_key(key)),
                quote(self.image),
                self.needed,
                self.free_inodes,
                self.inodes_count
            );
        }
        while let Some((k, ino)) = self.open.pop() {
            self.w.close_dir(ino).map_err(|e| self.failed(&k, &e))?;
        }
        let image = self.image;
        let summary = self.w.finish().map_err(|e| {
            anyhow::anyhow!(
                "writing {}: {e}; the image is unusable, rebuild it",
                quote(image)
            )
        })?;
        self.counts.indexed_directories = summary.indexed_dirs;
        Ok((self.counts, self.rejected))
    }
}

/// The writer's node for a fifo, socket or device entry.
fn special(kind: EntryKind, e: &Entry) -> Special {
    let dev = e
        .rdev
        .unwrap_or(seedkit::records::Rdev { major: 0, minor: 0 });
    match kind {
        EntryKind::Fifo => Special::Fifo,
        EntryKind::Socket => Special::Socket,
        EntryKind::CharDevice => Special::CharDevice {
            major: dev.major,
            minor: dev.minor,
        },
        _ => Special::BlockDevice {
            major: dev.major,
            minor: dev.minor,
        },
    }
}

fn opening(image: &Path, e: &WriteError) -> anyhow::Error {
    anyhow::anyhow!("opening the image {}: {e}", quote(image))
}
