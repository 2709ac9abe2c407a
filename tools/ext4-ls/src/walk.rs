//! The walk over a directory of the image: an explicit stack instead of recursion, so that a
//! hostile image of any depth costs heap, not the call stack; each directory is entered once
//! (a cycle or a hard-linked directory is reported, not followed), and a path longer than
//! [`MAX_PATH`] is not descended, so that the output stays linear in the image's size.

use std::collections::{HashSet, VecDeque};

use ext4fs::{DirEntry, EntryKind, Fs, Ino, Inode};

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

struct Frame {
    /// The directory's path, empty for the listed directory itself.
    prefix: Vec<u8>,
    entries: std::vec::IntoIter<DirEntry>,
}

pub struct Walk<'a> {
    fs: &'a Fs,
    recursive: bool,
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
        match self.fs.read_dir(dir) {
            Ok(mut entries) => {
                entries.retain(|e| e.name != b"." && e.name != b"..");
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                self.stack.push(Frame {
                    prefix,
                    entries: entries.into_iter(),
                });
            }
            Err(e) => self.queue.push_back(Event::Failure(
                prefix,
                format!("reading the directory: {e}"),
            )),
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
            let Some(entry) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let mut path = frame.prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&entry.name);
            let inode = match self.fs.inode(entry.ino) {
                Ok(inode) => inode,
                Err(e) => return Some(Event::Failure(path, e.to_string())),
            };
            if self.recursive && inode.kind() == Some(EntryKind::Directory) {
                self.enter(path.clone(), &inode);
            }
            return Some(Event::Entry(path, inode));
        }
    }
}
