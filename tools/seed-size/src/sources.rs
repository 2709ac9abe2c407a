//! The sources besides a host tree: a directory of an image, measured from the reader's
//! metadata (nothing extracted), a stream of `ext4-ls --json` records, and a tar stream
//! measured from its headers. Each fills the same [`Census`] the host walk fills, so the
//! rule and the record are the same.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ext4fs::{Backing, DirEntry, Fs, Ino, Inode, InodeFlags};
use seedkit::progress::Progress;
use seedkit::quote::quote_bytes;
use seedkit::records::{EntryKind, LsEntry};
use seedkit::tar::{self, Kind, Member, Names, Next, Slot, TarStream, Way};
use seedkit::{quote, warn, Status};

use crate::{dirent_size, Census, BLOCK};

/// The longest `ext4-ls --json` record read (a path of 32 KiB and its fields fit many
/// times over).
const MAX_RECORD: u64 = 1 << 20;

/// Measure directory `dir` of `image` through the reader: every entry's type, size and
/// data blocks from its inode and extent map, each directory's names. `dir` itself is not
/// followed when it is a symlink. An entry that cannot be read is reported and counted as
/// a failure (exit 1): the figure is then a floor.
/// With `missing_ok`, a `dir` the image lacks measures as an empty directory.
pub fn measure_image(image: &Path, dir: &[u8], missing_ok: bool) -> Result<(Census, Status)> {
    let file = seedkit::sys::open_image(image, false)
        .with_context(|| format!("opening {}", quote(image)))?;
    let fs = Fs::open(file).with_context(|| format!("reading {}", quote(image)))?;
    let shown = quote_bytes(dir);
    let ino = match fs.lookup_nofollow(dir) {
        Err(ext4fs::Error::NotFound { .. }) if missing_ok => {
            return Ok((Census::missing(), Status::Success));
        }
        found => found.with_context(|| format!("finding {shown} in {}", quote(image)))?,
    };
    let root = fs
        .inode(ino)
        .with_context(|| format!("reading {shown} in {}", quote(image)))?;
    if root.kind() != Some(EntryKind::Directory) {
        bail!("measuring {shown} in {}: Not a directory", quote(image));
    }
    let mut m = ImageCount {
        fs: &fs,
        census: Census::default(),
        links: HashSet::new(),
        dirs: HashSet::from([ino]),
        failures: 0,
        progress: Progress::new(),
    };
    m.census.counts.add(EntryKind::Directory, 0);
    let mut stack = vec![m.listing(b".", &root)];
    while let Some(top) = stack.last_mut() {
        // Past the reader's budget every read fails: the figure would be no floor.
        fs.check_budget()
            .with_context(|| format!("measuring {shown} in {}", quote(image)))?;
        let Some(e) = top.next() else {
            stack.pop();
            continue;
        };
        seedkit::interrupt::check()?;
        if let Some(dir) = m.entry(&e) {
            stack.push(m.listing(&e.name, &dir));
        }
    }
    m.progress.finish();
    Ok((m.census, Status::from_failures(m.failures)))
}

struct ImageCount<'a> {
    fs: &'a Fs,
    census: Census,
    /// Inodes with several names met so far.
    links: HashSet<Ino>,
    /// Directories entered (a second visit is a cycle, not counted again).
    dirs: HashSet<Ino>,
    failures: u64,
    progress: Progress,
}

impl ImageCount<'_> {
    fn fail(&mut self, name: &[u8], why: impl std::fmt::Display) {
        if self.fs.over_budget() {
            return; // fatal at the walk's next step
        }
        self.progress.finish();
        warn(format_args!("measuring {}: {why}", quote_bytes(name)));
        self.failures += 1;
    }

    /// A directory's entries (without `.` and `..`), its blocks counted.
    fn listing(&mut self, name: &[u8], dir: &Inode) -> std::vec::IntoIter<DirEntry> {
        let mut entries = match self.fs.read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.fail(name, format_args!("reading the directory: {e}"));
                Vec::new()
            }
        };
        entries.retain(|e| e.name != b"." && e.name != b"..");
        let bytes = 24
            + entries
                .iter()
                .map(|e| dirent_size(e.name.len()))
                .sum::<u64>();
        self.census.close_directory(bytes);
        entries.into_iter()
    }

    /// Count one entry; a directory's inode is returned to be entered.
    fn entry(&mut self, e: &DirEntry) -> Option<Inode> {
        let (inode, kind) = match self.fs.typed_inode(e.ino) {
            Ok(found) => found,
            Err(err) => {
                self.fail(&e.name, err);
                return None;
            }
        };
        self.progress
            .update(|| "seed-size: measuring the image".to_string());
        if kind == EntryKind::Directory {
            self.census.counts.add(kind, 0);
            if !self.dirs.insert(e.ino) {
                self.fail(
                    &e.name,
                    "a directory met twice (a cycle); not entered again",
                );
                return None;
            }
            return Some(inode);
        }
        if inode.links_count > 1 && !self.links.insert(e.ino) {
            self.census.counts.extra_hard_links += 1;
            return None;
        }
        if kind == EntryKind::File {
            let stored = self.stored_bytes(&inode);
            self.census.add_file(inode.size, stored, Some(stored));
            return None;
        }
        let size = if kind == EntryKind::Symlink {
            inode.size
        } else {
            0
        };
        self.census.counts.add(kind, size);
        if kind == EntryKind::Symlink && size >= 60 {
            self.census.long_symlinks += 1;
        }
        None
    }

    /// Bytes of a file's data blocks (holes and unwritten runs excluded).
    fn stored_bytes(&self, inode: &Inode) -> u64 {
        if inode.has_flag(InodeFlags::INLINE_DATA) {
            return 0;
        }
        let bs = u64::from(self.fs.block_size());
        let mut blocks = 0u64;
        // A map that cannot be read counts what was read of it.
        let _ = self.fs.for_each_run(inode, &mut |run| {
            if matches!(run.backing, Backing::Data { .. }) {
                blocks = blocks.saturating_add(run.len);
            }
            true
        });
        blocks.saturating_mul(bs)
    }
}

/// Measure a stream of `ext4-ls --json` records (`ext4-ls -R --json IMAGE DIR`): the
/// listed directory is the top (a record of `.` for it is taken as such), hard links are
/// told by inode number, directories by the names recorded in them. No record says what is allocated: a file counts its apparent
/// size in blocks.
pub fn measure_ls_json(input: impl Read) -> Result<(Census, Status)> {
    let mut census = Census::default();
    census.counts.add(EntryKind::Directory, 0);
    let mut links = HashSet::new();
    // Each directory's entry bytes (`.` and `..` take 24), the top's included.
    let mut dirs: HashMap<Vec<u8>, u64> = HashMap::from([(Vec::new(), 24)]);
    let mut reader = std::io::BufReader::new(input);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD + 1)
            .read_until(b'\n', &mut line)
            .context("reading ext4-ls records from standard input")?;
        if n == 0 {
            break;
        }
        number += 1;
        if n as u64 > MAX_RECORD {
            bail!("reading ext4-ls records: record {number} is longer than {MAX_RECORD} bytes");
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let e: LsEntry = seedkit::records::parse(&line)
            .with_context(|| format!("reading ext4-ls record {number}"))?;
        let path = e.path.0.as_slice();
        if path == b"." {
            continue;
        }
        let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(at) => (&path[..at], &path[at + 1..]),
            None => (&b""[..], path),
        };
        *dirs.entry(parent.to_vec()).or_insert(24) += dirent_size(name.len());
        if e.kind == EntryKind::Directory {
            census.counts.add(EntryKind::Directory, 0);
            dirs.entry(path.to_vec()).or_insert(24);
            continue;
        }
        if e.links > 1 && !links.insert(e.ino) {
            census.counts.extra_hard_links += 1;
            continue;
        }
        if e.kind == EntryKind::File {
            // No record says where the holes are: all of it counts.
            census.add_file(e.size, e.size.next_multiple_of(BLOCK), Some(e.size));
            continue;
        }
        census.counts.add(e.kind, e.size);
        if e.kind == EntryKind::Symlink && e.size >= 60 {
            census.long_symlinks += 1;
        }
    }
    for bytes in dirs.into_values() {
        census.close_directory(bytes);
    }
    Ok((census, Status::Success))
}

/// Measure a tar stream (`-`: standard input) from its headers: what `ext4-ingest
/// --from-tar` would write of it, through the same reader and the same placing of names
/// ([`seedkit::tar`]). A file counts the 4 KiB blocks its data segments touch (a sparse
/// file its map, never its holes); a hard link adds a name, not an inode; a directory the
/// stream implies but does not give counts as one. Members ext4-ingest refuses (names that
/// would leave the tree, hard links to nothing given before, headers that lie) are
/// reported and not counted (exit 1); a stream that cannot be followed is an error. With
/// `dir`, only the members below that directory of the stream count, as `ext4-ingest
/// --from-tar FILE DIR` writes them; a stream with nothing there is an error unless
/// `missing_ok` (then it measures as an empty directory).
pub fn measure_tar(what: &Path, dir: &[u8], missing_ok: bool) -> Result<(Census, Status)> {
    let shown = || format!("reading {}", quote(what));
    let within =
        |e: &'static str| anyhow::anyhow!("finding {} in the stream: {e}", quote_bytes(dir));
    let (census, status, found) = if what.as_os_str() == "-" {
        let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
        count_tar(TarStream::new(stdin).within(dir).map_err(within)?).with_context(shown)?
    } else {
        let file = std::fs::File::open(what).with_context(|| format!("opening {}", quote(what)))?;
        let stream = TarStream::file(file).with_context(shown)?;
        count_tar(stream.within(dir).map_err(within)?).with_context(shown)?
    };
    if !found {
        if !missing_ok {
            bail!(
                "reading {}: it holds nothing in {}",
                quote(what),
                quote_bytes(dir)
            );
        }
        return Ok((Census::missing(), Status::Success));
    }
    Ok((census, status))
}

/// The names placed: directories by their number in [`TarCount::dirs`].
type Placed = Names<usize, ()>;

struct TarCount {
    census: Census,
    /// Each directory's entry bytes (`.` and `..` take 24), the top's first.
    dirs: Vec<u64>,
    refused: u64,
    progress: Progress,
}

impl TarCount {
    fn refuse(&mut self, path: &[u8], why: impl std::fmt::Display) {
        self.progress.finish();
        warn(format_args!("not counted: {}: {why}", quote_bytes(path)));
        self.refused += 1;
    }

    /// A new directory, in `parent`, named `name`.
    fn directory(&mut self, parent: usize, name: &[u8]) -> usize {
        self.census.counts.add(EntryKind::Directory, 0);
        self.dirs[parent] += dirent_size(name.len());
        self.dirs.push(24);
        self.dirs.len() - 1
    }
}

/// The census, the exit status, and whether anything lay in the directory asked for.
fn count_tar<R: Read>(mut stream: TarStream<R>) -> Result<(Census, Status, bool)> {
    let mut c = TarCount {
        census: Census::default(),
        dirs: vec![24],
        refused: 0,
        progress: Progress::new(),
    };
    c.census.counts.add(EntryKind::Directory, 0);
    let mut placed = Placed::new(0);
    let mut members = 0u64;
    while let Some(next) = stream.next_member()? {
        seedkit::interrupt::check()?;
        members += 1;
        c.progress
            .update(|| format!("seed-size: {members} tar members"));
        let m = match next {
            Next::Bad { path, why } => {
                // What the stream puts below it is refused too.
                if let Ok(names) = tar::member_names(&path) {
                    placed.refuse(&names);
                }
                c.refuse(&path, why);
                continue;
            }
            Next::Member(m) => m,
        };
        match tar::member_names(&m.path) {
            Ok(names) => count_member(&mut c, &mut placed, &names, &m),
            Err(why) => c.refuse(&m.path, why),
        }
    }
    c.progress.finish();
    for bytes in c.dirs {
        c.census.close_directory(bytes);
    }
    Ok((
        c.census,
        Status::from_failures(c.refused),
        stream.found_within(),
    ))
}

/// Count one member named `names` (below the top) as ext4-ingest places it.
fn count_member(c: &mut TarCount, placed: &mut Placed, names: &[&[u8]], m: &Member) {
    let Some((&name, _)) = names.split_last() else {
        if m.kind != Kind::Directory {
            c.refuse(&m.path, "the top of the tree is not a directory");
        }
        return;
    };
    let way = placed.parent_of(names, |parent, i| {
        Ok::<_, std::convert::Infallible>(Some(c.directory(parent, names[i])))
    });
    let parent = match way {
        Ok(Way::Dir(d)) => d,
        Ok(Way::BelowRefused) => return c.refuse(&m.path, "below an entry that was refused"),
        Ok(Way::BelowOther(i)) => {
            let way = names[..=i].join(&b'/');
            return c.refuse(
                &m.path,
                format_args!("below {}, which is not a directory", quote_bytes(&way)),
            );
        }
        Ok(Way::NotMade) | Err(_) => return,
    };
    match (placed.get(parent, name), &m.kind) {
        (None, _) => {}
        // A directory given again (or after what it holds) takes the later attributes.
        (Some(Slot::Dir(d) | Slot::Implied(d)), Kind::Directory) => {
            return placed.set(parent, name, Slot::Dir(d));
        }
        (Some(Slot::Refused), _) => {
            return c.refuse(&m.path, "a second member of a name refused already");
        }
        (Some(_), _) => {
            return c.refuse(&m.path, "a second member of this name (the first is kept)");
        }
    }
    let slot = match &m.kind {
        Kind::HardLink(target) => {
            let found = tar::member_names(target)
                .ok()
                .filter(|t| !t.is_empty())
                .and_then(|t| placed.resolve(&t));
            if found == Some(Slot::Other(())) {
                c.census.counts.extra_hard_links += 1;
                Slot::Other(())
            } else {
                c.refuse(
                    &m.path,
                    format_args!(
                        "a hard link to {}, which is no file, symlink or node given earlier in the stream",
                        quote_bytes(target)
                    ),
                );
                placed.set(parent, name, Slot::Refused);
                return;
            }
        }
        Kind::Directory => {
            let d = c.directory(parent, name);
            placed.set(parent, name, Slot::Dir(d));
            return;
        }
        Kind::File => {
            let (allocated, data) = segment_blocks(&m.segments, m.size);
            c.census.add_file(m.size, allocated, Some(data));
            Slot::Other(())
        }
        Kind::Symlink(target) => {
            let size = target.len() as u64;
            c.census.counts.add(EntryKind::Symlink, size);
            if size >= 60 {
                c.census.long_symlinks += 1;
            }
            Slot::Other(())
        }
        Kind::CharDevice(..) => count_node(c, EntryKind::CharDevice),
        Kind::BlockDevice(..) => count_node(c, EntryKind::BlockDevice),
        Kind::Fifo => count_node(c, EntryKind::Fifo),
    };
    c.dirs[parent] += dirent_size(name.len());
    placed.set(parent, name, slot);
}

fn count_node(c: &mut TarCount, kind: EntryKind) -> Slot<usize, ()> {
    c.census.counts.add(kind, 0);
    Slot::Other(())
}

/// The bytes of the 4 KiB blocks a file's data segments touch (what an image allocates
/// for them), and of those the bytes up to the file's size (what a host's `SEEK_DATA`
/// reports for the same file). The segments are in order and do not overlap (the reader
/// checked).
fn segment_blocks(segments: &[(u64, u64)], size: u64) -> (u64, u64) {
    let mut blocks = 0u64;
    let mut next = 0u64; // the first block not counted yet
    let mut end = 0u64; // the end of the last block counted
    for &(offset, len) in segments.iter().filter(|s| s.1 > 0) {
        let first = (offset / BLOCK).max(next);
        let last = offset.saturating_add(len - 1) / BLOCK;
        if last >= first {
            blocks += last - first + 1;
            next = last + 1;
            end = next.saturating_mul(BLOCK);
        }
    }
    let allocated = blocks.saturating_mul(BLOCK);
    (
        allocated,
        allocated - end.saturating_sub(size).min(allocated),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_count_the_blocks_they_touch() {
        assert_eq!(segment_blocks(&[], 0), (0, 0));
        assert_eq!(segment_blocks(&[(0, 4)], 4), (4096, 4));
        assert_eq!(
            segment_blocks(&[(0, 300_000)], 300_000),
            (74 * 4096, 300_000)
        );
        // Two segments in one block take it once.
        assert_eq!(
            segment_blocks(&[(0, 10), (100, 10), (4096, 0)], 110),
            (4096, 110)
        );
        // A leading hole: one block of data at 1 MiB.
        assert_eq!(segment_blocks(&[(1 << 20, 4)], (1 << 20) + 4), (4096, 4));
        assert_eq!(
            segment_blocks(&[(0, 7), (1 << 20, 7), (2 << 20, 7)], (2 << 20) + 7),
            (3 * 4096, 2 * 4096 + 7)
        );
        assert_eq!(segment_blocks(&[(u64::MAX - 1, 1)], u64::MAX), (4096, 4096));
    }
}
