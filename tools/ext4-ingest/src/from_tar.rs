//! A tar stream as the source: its members are written in the stream's order, each as it
//! comes, its data straight from the stream into the image's blocks.
//!
//! A stream holds members in any order: a directory may come after its entries, or never
//! (then it is made with mode 0755, owned as every entry is, at the run's fixed time, and a
//! later member of that name gives it its attributes). So every directory stays open until
//! the end, and each name the stream placed is kept as (parent inode, name) -> what it is:
//! a path is resolved one component at a time, never through a symlink or anything but a
//! directory the stream made.
//!
//! Refused one by one, the run going on (exit 1): names that would leave the tree (absolute,
//! or holding `..`), names ext4 cannot hold, entries below a refused or non-directory one,
//! a second member of a name (the first is kept; a directory takes the later attributes),
//! hard links to nothing the stream gave before (missing, later, a directory), and members
//! the reader refuses (bad sparse maps, headers that lie, unknown types).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ext4fs::write::{DirIno, ROOT};
use ext4fs::Ino;
use seedkit::json::Bytes;
use seedkit::quote;
use seedkit::records::{EntryKind, Rdev, Timestamp, Xattr};
use seedkit::tar::{self, Kind, Member, Names, Next, TarStream, Time, Way};

use crate::digest::Digest;
use crate::source::EntrySource;
use crate::tarball::Content;
use crate::tree::{Entry, Key, LinkKey};
use crate::write::Made;
use crate::Ingest;

/// The names placed so far, and what each became.
type Placed = Names<DirIno, Ino>;
type Slot = tar::Slot<DirIno, Ino>;

/// A tar stream: a file, or standard input (`None`).
pub(crate) struct TarFile {
    pub file: Option<PathBuf>,
    /// The directory of the stream to write (empty: all of it); members outside it are
    /// skipped, those inside named relative to it.
    pub within: Vec<u8>,
    /// A `within` the stream lacks writes nothing.
    pub missing_ok: bool,
}

impl EntrySource for TarFile {
    fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn feed(&mut self, ingest: &mut Ingest<'_>) -> Result<()> {
        match &self.file {
            Some(file) => {
                let f = File::open(file)
                    .with_context(|| format!("opening the tar stream {}", quote(file)))?;
                let reader = BufReader::with_capacity(1 << 20, f);
                ingest.ingest_tar(reader, &file.to_string_lossy(), self)
            }
            None => ingest.ingest_tar(
                BufReader::with_capacity(1 << 20, io::stdin().lock()),
                "-",
                self,
            ),
        }
    }
}

impl Ingest<'_> {
    /// Write every member of the tar stream `r` (`what` names it in messages) below
    /// `src.within`.
    fn ingest_tar(&mut self, r: impl Read, what: &str, src: &TarFile) -> Result<()> {
        let shown = || quote(&crate::tree::display_key(&Key::for_display(&src.within))).to_string();
        let mut stream = TarStream::new(r)
            .within(&src.within)
            .map_err(|why| anyhow::anyhow!("finding {} in the tar stream: {why}", shown()))?;
        let mut placed = Placed::new(ROOT);
        let time = self.writer.fixed_time();
        let top = implied_dir(time);
        self.writer.set_root(&top)?;
        self.written(&Key::default(), top);
        loop {
            seedkit::interrupt::check()?;
            let next = stream
                .next_member()
                .with_context(|| format!("reading the tar stream {}", quote(what)))?;
            let member = match next {
                None => break,
                Some(Next::Bad { path, why }) => {
                    // What the stream puts below it is refused too.
                    if let Ok(names) = tar::member_names(&path) {
                        placed.refuse(&names);
                    }
                    self.refuse_raw(&path, why);
                    continue;
                }
                Some(Next::Member(m)) => m,
            };
            let key = match member_key(&member.path) {
                Ok(k) => k,
                Err(why) => {
                    self.refuse_raw(&member.path, why.to_string());
                    continue;
                }
            };
            self.member(&mut stream, &mut placed, &key, &member)
                .with_context(|| format!("reading the tar stream {}", quote(what)))?;
        }
        if !stream.found_within() {
            if !src.missing_ok {
                anyhow::bail!(
                    "reading the tar stream {}: it holds nothing in {}",
                    quote(what),
                    shown()
                );
            }
            self.missing = true;
        }
        Ok(())
    }

    fn member<R: Read>(
        &mut self,
        stream: &mut TarStream<R>,
        placed: &mut Placed,
        key: &Key,
        m: &Member,
    ) -> Result<()> {
        let e = entry(m);
        if key.is_root() {
            if m.kind == Kind::Directory {
                self.writer.set_root(&e)?;
                self.rewritten(key, e);
                return Ok(());
            }
            self.refuse(key, "the top of the tree is not a directory".into());
            return Ok(());
        }
        let Some(parent) = self.parent_of(placed, key)? else {
            return Ok(());
        };
        let name = key.name().unwrap_or_default().to_vec();
        let slot = placed.get(parent, &name);
        match (slot, &m.kind) {
            (None, _) => {}
            (Some(Slot::Implied(dir) | Slot::Dir(dir)), Kind::Directory) => {
                placed.set(parent, &name, Slot::Dir(dir));
                self.writer.set_dir(key, dir, &e)?;
                self.rewritten(key, e);
                return Ok(());
            }
            (Some(Slot::Refused), _) => {
                self.refuse(key, "a second member of a name refused already".into());
                return Ok(());
            }
            (Some(_), _) => {
                let why = "a second member of this name (the first is kept)".to_string();
                self.duplicates.push((key.clone(), why));
                return Ok(());
            }
        }
        let slot = match &m.kind {
            Kind::HardLink(target) => self.hard_link(placed, parent, key, target)?,
            Kind::File => {
                let mut digest = self.keep_entries.then(Digest::default);
                let mut tap = |offset: u64, bytes: &[u8]| {
                    if let Some(d) = digest.as_mut() {
                        d.feed(offset, bytes);
                    }
                };
                let mut content = Content::new(stream, m);
                content.tap = Some(&mut tap);
                let made = self.add_at(parent, key, e, Some(&mut content))?;
                content.drain()?;
                if let (Slot::Other(_), Some(d)) = (made, digest) {
                    self.digests.insert(key.clone(), d.finish(m.size));
                }
                made
            }
            _ => self.add_at(parent, key, e, None)?,
        };
        placed.set(parent, &name, slot);
        Ok(())
    }

    /// Write one entry into `parent`; what its name became.
    fn add_at(
        &mut self,
        parent: DirIno,
        key: &Key,
        e: Entry,
        content: Option<&mut dyn ext4fs::write::Source>,
    ) -> Result<Slot> {
        let made = self.writer.place(parent, key, &e, content)?;
        let slot = match made {
            Some(Made::Dir(dir)) => Slot::Dir(dir),
            Some(Made::Other(ino)) => Slot::Other(ino),
            None => return Ok(Slot::Refused),
        };
        self.written(key, e);
        Ok(slot)
    }

    /// A further name of an entry the stream gave before.
    fn hard_link(
        &mut self,
        placed: &Placed,
        parent: DirIno,
        key: &Key,
        target: &[u8],
    ) -> Result<Slot> {
        let found = tar::member_names(target)
            .ok()
            .filter(|t| !t.is_empty())
            .and_then(|t| {
                let slot = placed.resolve(&t)?;
                Some((Key::from_names(t), slot))
            });
        let Some((target_key, Slot::Other(ino))) = found else {
            self.refuse(
                key,
                format!(
                    "a hard link to {}, which is no file, symlink or node given earlier in the stream",
                    quote(&crate::tree::display_key(&Key::for_display(target)))
                ),
            );
            return Ok(Slot::Refused);
        };
        if !self.writer.link(parent, key, ino)? {
            return Ok(Slot::Refused);
        }
        // For --verify: both names are of one inode.
        if let Some(mut first) = self.entries.remove(&target_key) {
            first.link = Some(LinkKey::Group(u64::from(ino.get())));
            self.entries.insert(key.clone(), first.clone());
            self.entries.insert(target_key, first);
        }
        Ok(Slot::Other(ino))
    }

    /// The directory inode `key` goes in, the directories on the way made when the stream
    /// has not given them yet; `None` (reported) when the way is not a directory.
    fn parent_of(&mut self, placed: &mut Placed, key: &Key) -> Result<Option<DirIno>> {
        let names: Vec<&[u8]> = key.names().collect();
        let way = placed.parent_of(&names, |dir, i| -> Result<Option<DirIno>> {
            let so_far = Key::from_names(names[..=i].iter().copied());
            let e = implied_dir(self.writer.fixed_time());
            Ok(match self.writer.place(dir, &so_far, &e, None)? {
                Some(Made::Dir(d)) => {
                    self.written(&so_far, e);
                    Some(d)
                }
                _ => None,
            })
        })?;
        match way {
            Way::Dir(d) => return Ok(Some(d)),
            Way::BelowRefused => self.refuse(key, "below an entry that was refused".into()),
            Way::BelowOther(i) => {
                let so_far = Key::from_names(names[..=i].iter().copied());
                self.refuse(
                    key,
                    format!(
                        "below {}, which is not a directory",
                        quote(&crate::tree::display_key(&so_far))
                    ),
                );
            }
            Way::NotMade => {}
        }
        Ok(None)
    }
}

/// The key of a member's name ([`tar::member_names`]: `./a//b/` is `a/b`; names that
/// would leave the tree, or that ext4 cannot hold, are refused).
pub fn member_key(path: &[u8]) -> Result<Key, &'static str> {
    tar::member_names(path).map(Key::from_names)
}

fn stamp(t: Time) -> Timestamp {
    Timestamp {
        sec: t.sec,
        nsec: t.nsec,
    }
}

/// A directory the stream implies but does not give (yet).
fn implied_dir(time: i64) -> Entry {
    let t = Timestamp { sec: time, nsec: 0 };
    Entry {
        mode: 0o755,
        atime: t,
        mtime: t,
        ..Entry::new(EntryKind::Directory)
    }
}

/// The entry to write for a member (not a hard link).
fn entry(m: &Member) -> Entry {
    let (kind, rdev, target) = match &m.kind {
        Kind::File | Kind::HardLink(_) => (EntryKind::File, None, None),
        Kind::Directory => (EntryKind::Directory, None, None),
        Kind::Symlink(t) => (EntryKind::Symlink, None, Some(t.clone())),
        Kind::CharDevice(major, minor) => (
            EntryKind::CharDevice,
            Some(Rdev {
                major: *major,
                minor: *minor,
            }),
            None,
        ),
        Kind::BlockDevice(major, minor) => (
            EntryKind::BlockDevice,
            Some(Rdev {
                major: *major,
                minor: *minor,
            }),
            None,
        ),
        Kind::Fifo => (EntryKind::Fifo, None, None),
    };
    Entry {
        kind,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        atime: stamp(m.atime.unwrap_or(m.mtime)),
        mtime: stamp(m.mtime),
        ctime: m.ctime.map(stamp),
        crtime: None,
        size: m.size,
        allocated: 0,
        rdev,
        target,
        link: None,
        xattrs: m
            .xattrs
            .iter()
            .map(|(n, v)| Xattr {
                name: Bytes(n.clone()),
                value: Bytes(v.clone()),
            })
            .collect(),
        host: false,
        host_id: None,
        host_mode: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_stay_inside_the_tree() {
        assert_eq!(
            member_key(b"./a//b/").unwrap(),
            Key::from_names([b"a", b"b"])
        );
        assert!(member_key(b"./").unwrap().is_root());
        assert!(member_key(b"/etc/passwd").is_err());
        assert!(member_key(b"a/../../b").is_err());
        assert!(member_key(b"..").is_err());
        assert!(member_key(&[b'a'; 256]).is_err());
        assert_eq!(member_key(b"...").unwrap(), Key::from_names([b"..."]));
    }
}
