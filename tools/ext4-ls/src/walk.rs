//! The walk over a directory of the image: an explicit stack instead of recursion, so that a
//! hostile image of any depth costs heap, not the call stack; each directory is entered once
//! (a cycle or a hard-linked directory is reported, not followed), and a path longer than
//! [`MAX_PATH`] is not descended, so that the output stays linear in the image's size.
//!
//! Entries come in walk order: a directory, then its entries (and theirs), names in byte
//! order ([`walk_order`]). Each directory on the way down is held as a [`Listing`]: its
//! names in one buffer and 10 bytes more per name, about what its blocks hold on disk.
//! So the walk's memory is bounded by the directory blocks of the directories it is inside,
//! never more than the image's directory blocks, whatever a directory's size.

use std::cmp::Ordering;
use std::collections::{HashSet, VecDeque};

use ext4fs::{EntryKind, Fs, Ino, Inode};

/// The longest path (relative to the listed directory) whose directory is entered: eight
/// times Linux's `PATH_MAX`. Each deeper level would print its whole path once per entry.
pub const MAX_PATH: usize = 8 * 4096;

/// What the walk gives.
pub enum Event {
    /// An entry and its inode.
    Entry(Vec<u8>, Inode),
    /// Something that could not be read; the walk goes on without it.
    Failure(Vec<u8>, String),
}

/// The order the walk gives paths in: component by component, each in byte order, the
/// directory itself (`.`) first. Two walks of two images in this order can be merged.
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    components(a).cmp(components(b))
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let path: &[u8] = if path == b"." { b"" } else { path };
    path.split(|&c| c == b'/').filter(|c| !c.is_empty())
}

/// The entries of one directory, sorted by name, compactly: the names in one buffer, each
/// after its length in two bytes, and for each entry where its name starts and its inode
/// number: 10 bytes and the name, where the disk holds 8 bytes and the name.
struct Listing {
    names: Vec<u8>,
    index: Vec<(u32, Ino)>,
    next: usize,
}

impl Listing {
    fn read(fs: &Fs, dir: &Inode) -> Result<Listing, String> {
        let mut names = Vec::new();
        let mut index = Vec::new();
        let mut too_big = false;
        let read = fs.for_each_dir_entry(dir, &mut |e| {
            let (Ok(at), Ok(len)) = (u32::try_from(names.len()), u16::try_from(e.name.len()))
            else {
                too_big = true;
                return;
            };
            if e.name != b"." && e.name != b".." && !too_big {
                index.push((at, e.ino));
                names.extend_from_slice(&len.to_le_bytes());
                names.extend_from_slice(&e.name);
            }
        });
        read.map_err(|e| format!("reading the directory: {e}"))?;
        if too_big {
            return Err("reading the directory: more than 4 GiB of names: not listed".into());
        }
        index.sort_unstable_by(|a, b| name_at(&names, a.0).cmp(name_at(&names, b.0)));
        names.shrink_to_fit();
        index.shrink_to_fit();
        Ok(Listing {
            names,
            index,
            next: 0,
        })
    }

    /// The next (name, inode number).
    fn next(&mut self) -> Option<(&[u8], Ino)> {
        let &(at, ino) = self.index.get(self.next)?;
        self.next += 1;
        Some((name_at(&self.names, at), ino))
    }
}

/// The name stored at `at` of a listing's buffer.
fn name_at(names: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    let len = usize::from(u16::from_le_bytes([names[at], names[at + 1]]));
    &names[at + 2..at + 2 + len]
}

/// Which paths' directories not to enter.
pub type Prune<'a> = dyn Fn(&[u8]) -> bool + 'a;

struct Frame {
    /// The directory's path, empty for the listed directory itself.
    prefix: Vec<u8>,
    entries: Listing,
}

pub struct Walk<'a> {
    fs: &'a Fs,
    recursive: bool,
    /// Paths whose directories are not entered (listed, not descended).
    prune: Option<&'a Prune<'a>>,
    stack: Vec<Frame>,
    /// Directory inodes entered so far.
    entered: HashSet<Ino>,
    queue: VecDeque<Event>,
}

impl<'a> Walk<'a> {
    /// Walk the directory `inode`: its entries (and theirs when `recursive`), preceded by the
    /// directory itself as `.` when `include_self`.
    pub fn new(fs: &'a Fs, inode: Inode, recursive: bool, include_self: bool) -> Walk<'a> {
        let mut walk = Walk {
            fs,
            recursive,
            prune: None,
            stack: Vec::new(),
            entered: HashSet::new(),
            queue: VecDeque::new(),
        };
        walk.enter(Vec::new(), &inode);
        if include_self {
            walk.queue.push_front(Event::Entry(b".".to_vec(), inode));
        }
        walk
    }

    /// Do not enter the directories whose path `prune` holds true for.
    pub fn pruning(mut self, prune: &'a Prune<'a>) -> Walk<'a> {
        self.prune = Some(prune);
        self
    }

    /// Read a directory's entries, sorted by name, onto the stack.
    fn enter(&mut self, prefix: Vec<u8>, dir: &Inode) {
        if !self.entered.insert(dir.ino) {
            self.queue.push_back(Event::Failure(
                prefix,
                "directory already listed (a cycle or a hard-linked directory): not entered again"
                    .into(),
            ));
            return;
        }
        if prefix.len() > MAX_PATH {
            self.queue.push_back(Event::Failure(
                prefix,
                format!("path longer than {MAX_PATH} bytes: not entered"),
            ));
            return;
        }
        match Listing::read(self.fs, dir) {
            Ok(entries) => self.stack.push(Frame { prefix, entries }),
            Err(e) => self.queue.push_back(Event::Failure(prefix, e)),
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let frame = self.stack.last_mut()?;
            let Some((name, ino)) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let mut path = frame.prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let inode = match self.fs.inode(ino) {
                Ok(inode) => inode,
                Err(e) => return Some(Event::Failure(path, e.to_string())),
            };
            let pruned = self.prune.is_some_and(|p| p(&path));
            if self.recursive && !pruned && inode.kind() == Some(EntryKind::Directory) {
                self.enter(path.clone(), &inode);
            }
            return Some(Event::Entry(path, inode));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_order_is_a_directory_then_its_entries() {
        let mut paths: Vec<&[u8]> = vec![b"a.b", b"a/x", b".", b"a", b"-", b"a/x/y", b"b"];
        paths.sort_by(|a, b| walk_order(a, b));
        let want: Vec<&[u8]> = vec![b".", b"-", b"a", b"a/x", b"a/x/y", b"a.b", b"b"];
        assert_eq!(paths, want);
    }
}
