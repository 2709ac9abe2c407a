//! `--tar`: a directory of the image as a POSIX pax tar stream, nothing written on the host.
//!
//! Each entry is a ustar header preceded by a pax extended header (typeflag `x`) holding
//! what ustar cannot: the three times with nanoseconds, a name or link target longer than
//! 100 bytes or not ASCII (`path`, `linkpath`; `hdrcharset=BINARY` when it is not UTF-8),
//! extended attributes (`SCHILY.xattr.NAME`, the value's bytes as they are), ids and sizes
//! past the ustar fields. A file with holes or unwritten runs is written in GNU tar's sparse
//! format 1.0: a decimal map of its data segments at the start of its data, then the
//! segments' bytes only, so the stream carries what the image stores, never the apparent
//! size. An inode's further names are hard links (typeflag `1`) to its first. Entries come
//! in bytewise name order, parents first, the directory itself as `./`; the stream ends with
//! the two zero blocks of the format. Sockets cannot be held in a tar stream: each is
//! reported and left out.
//!
//! The image is hostile: names are checked to be one component, a directory is entered
//! once, an inode is written once and then only linked (up to its link count), no data
//! block is written twice (see [`Claims`]), and the whole stream is bounded by the budget;
//! past it the run stops (exit 2) inside an entry, so that no reader takes the stream for a
//! whole archive.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use anyhow::{bail, Context, Result};
use ext4fs::{Backing, DirEntry, EntryKind, Fs, Ino, Inode, Time, Xattr};
use seedkit::progress::Progress;
use seedkit::quote::quote_bytes;
use tar::{EntryType, Header};

use crate::claims::Claims;
use crate::extract::valid_name;

/// Tar's unit: headers and data are padded to whole blocks of this size.
const BLOCK: u64 = 512;
/// The largest value of an 8-byte octal ustar field (uid, gid).
const USTAR_ID_MAX: u64 = 0o7_777_777;
/// The largest value of a 12-byte octal ustar field (size).
const USTAR_SIZE_MAX: u64 = 0o77_777_777_777;

/// What was written, for the exit status.
#[derive(Debug, Default)]
pub struct Outcome {
    pub entries: u64,
    pub failures: u64,
}

/// A directory being archived.
struct Frame {
    entries: std::vec::IntoIter<DirEntry>,
    /// The length of its path in the walk's path buffer (0 for the top).
    path_len: usize,
    /// The name met last (names come sorted, so a duplicate follows its twin).
    last: Option<Vec<u8>>,
}

/// The first archived name of an inode with several, and the names met so far.
struct Linked {
    path: Vec<u8>,
    names: u32,
}

pub struct Archive<'a, W: Write> {
    fs: &'a Fs,
    out: W,
    /// Bytes written to the stream so far.
    written: u64,
    budget: u64,
    claims: Claims,
    /// The image shares file blocks on purpose (`shared_blocks`): file blocks are not
    /// claimed, the budget bounds what that costs.
    dedup: bool,
    links: HashMap<Ino, Linked>,
    single: HashSet<Ino>,
    dirs: HashSet<Ino>,
    verbose: bool,
    progress: Progress,
    outcome: Outcome,
}

impl<'a, W: Write> Archive<'a, W> {
    pub fn new(fs: &'a Fs, out: W, budget: u64, verbose: bool) -> Archive<'a, W> {
        let dedup = fs
            .superblock()
            .has_ro_compat(ext4fs::RoCompat::SHARED_BLOCKS);
        Archive {
            fs,
            out,
            written: 0,
            budget,
            claims: Claims::default(),
            dedup,
            links: HashMap::new(),
            single: HashSet::new(),
            dirs: HashSet::new(),
            verbose,
            progress: Progress::new(),
            outcome: Outcome::default(),
        }
    }

    /// Archive directory `root` (inode `ino`) and end the stream.
    pub fn run(mut self, ino: Ino, root: &Inode) -> Result<Outcome> {
        self.dirs.insert(ino);
        let xattrs = self.xattrs(b".", root);
        self.header(b"./", root, EntryType::Directory, 0, None, &xattrs)?;
        let entries = self.listing(b".", root);
        let mut stack = vec![Frame {
            entries: entries.into_iter(),
            path_len: 0,
            last: None,
        }];
        let mut path: Vec<u8> = Vec::new();
        while let Some(top) = stack.last_mut() {
            if self.fs.over_budget() {
                self.cut_short();
                bail!(
                    "archiving {}: the work of reading the image would pass the budget of {} \
                     bytes (--budget raises it); the archive is cut short",
                    quote_bytes(&path),
                    self.fs.budget()
                );
            }
            let Some(e) = top.entries.next() else {
                stack.pop();
                continue;
            };
            path.truncate(top.path_len);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            if let Err(why) = valid_name(&e.name) {
                self.fail(&path, format_args!("invalid name ({why}); skipped"));
                continue;
            }
            if top.last.as_ref() == Some(&e.name) {
                self.fail(&path, "duplicate name in the directory; skipped");
                continue;
            }
            top.last = Some(e.name);
            if let Some(dir) = self.entry(&path, e.ino)? {
                let entries = self.listing(&path, &dir);
                stack.push(Frame {
                    entries: entries.into_iter(),
                    path_len: path.len(),
                    last: None,
                });
            }
        }
        self.end()?;
        self.progress.finish();
        Ok(self.outcome)
    }

    /// An empty archive (DIR is missing and `--missing-ok` asked for an empty tree).
    pub fn run_missing(mut self) -> Result<Outcome> {
        self.end()?;
        Ok(self.outcome)
    }

    /// The end of the archive: two zero blocks.
    fn end(&mut self) -> Result<()> {
        self.put(&[0u8; 2 * BLOCK as usize])?;
        self.out.flush().context("writing the archive")
    }

    fn fail(&mut self, path: &[u8], cause: impl std::fmt::Display) {
        // Past the reader's budget every read fails alike: the walk stops at its next step.
        if self.fs.over_budget() {
            return;
        }
        self.progress.finish();
        seedkit::warn(format_args!("archiving {}: {cause}", quote_bytes(path)));
        self.outcome.failures += 1;
    }

    fn xattrs(&mut self, path: &[u8], inode: &Inode) -> Vec<Xattr> {
        let (list, error) = self.fs.xattrs_lenient(inode);
        if let Some(e) = error {
            self.fail(path, format_args!("reading extended attributes: {e}"));
        }
        list
    }

    /// A directory's entries, sorted by name, without `.` and `..` (none, reported, when
    /// unreadable or its blocks are claimed already).
    fn listing(&mut self, path: &[u8], dir: &Inode) -> Vec<DirEntry> {
        if let Err(why) = self.claims.claim(self.fs, dir) {
            self.fail(path, format_args!("reading the directory: {why}"));
            return Vec::new();
        }
        match self.fs.read_dir(dir) {
            Ok(mut entries) => {
                entries.retain(|e| e.name != b"." && e.name != b"..");
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                entries
            }
            Err(e) => {
                self.fail(path, format_args!("reading the directory: {e}"));
                Vec::new()
            }
        }
    }

    /// Archive one entry; a directory's inode is returned for the walk to enter.
    fn entry(&mut self, path: &[u8], ino: Ino) -> Result<Option<Inode>> {
        seedkit::interrupt::check()?;
        let (inode, ft) = match self.fs.typed_inode(ino) {
            Ok(found) => found,
            Err(e) => {
                self.fail(path, e);
                return Ok(None);
            }
        };
        if ft == EntryKind::Directory {
            if !self.dirs.insert(ino) {
                self.fail(
                    path,
                    format_args!("directory inode {ino} already archived (a hard-linked directory or a cycle); skipped"),
                );
                return Ok(None);
            }
            let xattrs = self.xattrs(path, &inode);
            let mut name = path.to_vec();
            name.push(b'/');
            self.header(&name, &inode, EntryType::Directory, 0, None, &xattrs)?;
            return Ok(Some(inode));
        }
        if ft == EntryKind::Socket {
            self.fail(path, "a socket cannot be held in a tar archive; left out");
            return Ok(None);
        }
        if !self.another_name(path, &inode)? {
            return Ok(None);
        }
        let xattrs = self.xattrs(path, &inode);
        let written = match ft {
            EntryKind::File => self.regular(path, &inode, &xattrs)?,
            EntryKind::Symlink => match self.fs.symlink_target(&inode) {
                Ok(t) if !t.contains(&0) => {
                    self.header(path, &inode, EntryType::Symlink, 0, Some(&t), &xattrs)?;
                    true
                }
                Ok(_) => {
                    self.fail(path, "symlink target contains a NUL byte");
                    false
                }
                Err(e) => {
                    self.fail(path, e);
                    false
                }
            },
            EntryKind::CharDevice => {
                self.header(path, &inode, EntryType::Char, 0, None, &xattrs)?;
                true
            }
            EntryKind::BlockDevice => {
                self.header(path, &inode, EntryType::Block, 0, None, &xattrs)?;
                true
            }
            _ => {
                self.header(path, &inode, EntryType::Fifo, 0, None, &xattrs)?;
                true
            }
        };
        if written && inode.links_count > 1 {
            self.links.insert(
                ino,
                Linked {
                    path: path.to_vec(),
                    names: 1,
                },
            );
        }
        Ok(None)
    }

    /// For a non-directory: `true` when this is the inode's first name (to be written in
    /// full); otherwise it was written as a hard link, or refused (more names than its link
    /// count), and `false`.
    fn another_name(&mut self, path: &[u8], inode: &Inode) -> Result<bool> {
        let ino = inode.ino;
        if inode.links_count <= 1 {
            if self.single.insert(ino) {
                return Ok(true);
            }
            self.fail(
                path,
                format_args!("inode {ino} reached by more names than its link count (1); skipped"),
            );
            return Ok(false);
        }
        let Some(linked) = self.links.get_mut(&ino) else {
            return Ok(true);
        };
        if linked.names >= u32::from(inode.links_count) {
            self.fail(
                path,
                format_args!(
                    "inode {ino} reached by more names than its link count ({}); skipped",
                    inode.links_count
                ),
            );
            return Ok(false);
        }
        linked.names += 1;
        let first = linked.path.clone();
        self.header(path, inode, EntryType::Link, 0, Some(&first), &[])?;
        Ok(false)
    }

    /// A regular file: dense when its data covers it, else GNU sparse 1.0. `false` when
    /// it was reported and left out (its blocks claimed already, its map unreadable).
    fn regular(&mut self, path: &[u8], inode: &Inode, xattrs: &[Xattr]) -> Result<bool> {
        if !self.dedup {
            if let Err(why) = self.claims.claim(self.fs, inode) {
                self.fail(path, why);
                return Ok(false);
            }
        }
        let segments = match self.segments(inode) {
            Ok(s) => s,
            Err(e) => {
                self.fail(path, e);
                return Ok(false);
            }
        };
        let stored: u64 = segments.iter().map(|s| s.1).sum();
        let dense = stored == inode.size;
        let map = if dense {
            Vec::new()
        } else {
            sparse_map(&segments, inode.size)
        };
        let size = map.len() as u64 + stored;
        self.within_budget(path, size)?;
        if dense {
            self.header(path, inode, EntryType::Regular, size, None, xattrs)?;
        } else {
            self.sparse_header(path, inode, size, xattrs)?;
            self.put(&map)?;
        }
        self.data(path, inode, dense)?;
        self.pad(size)?;
        Ok(true)
    }

    /// The file's stored data as `(offset, length)` segments, in order, neighbours merged,
    /// nothing past its size. Inline data is one segment from 0.
    fn segments(&self, inode: &Inode) -> ext4fs::Result<Vec<(u64, u64)>> {
        if inode.has_flag(ext4fs::InodeFlags::INLINE_DATA) {
            return Ok(if inode.size > 0 {
                vec![(0, inode.size)]
            } else {
                Vec::new()
            });
        }
        let bs = u64::from(self.fs.block_size());
        let size = inode.size;
        let mut out: Vec<(u64, u64)> = Vec::new();
        self.fs.for_each_run(inode, &mut |run| {
            if !matches!(run.backing, Backing::Data { .. }) {
                return true;
            }
            let start = run.logical * bs;
            let end = ((run.logical + run.len) * bs).min(size);
            if start >= end {
                return true;
            }
            match out.last_mut() {
                Some(last) if last.0 + last.1 == start => last.1 += end - start,
                _ => out.push((start, end - start)),
            }
            true
        })?;
        Ok(out)
    }

    /// Stream the file's stored bytes (a dense file: every byte, zeros where the reader
    /// gives nothing, as inline data past what it stores).
    fn data(&mut self, path: &[u8], inode: &Inode, dense: bool) -> Result<()> {
        let mut sink = Sink {
            out: &mut self.out,
            written: &mut self.written,
            at: 0,
            failure: None,
        };
        let read = self.fs.for_each_chunk(inode, &mut |offset, bytes| {
            (!dense || sink.zeros_to(offset)) && sink.put(bytes)
        });
        if dense {
            sink.zeros_to(inode.size);
        }
        if let Some(e) = sink.failure {
            return Err(e).context("writing the archive");
        }
        read.with_context(|| {
            format!(
                "archiving {}: reading its data (the archive is cut short)",
                quote_bytes(path)
            )
        })
    }

    /// Stop (fatal) before an entry of `size` data bytes would pass the budget. The stream
    /// then ends inside an entry (a header whose data never comes), so that every reader
    /// fails on it rather than taking what came for the whole directory; the budget keeps
    /// room for that header.
    fn within_budget(&mut self, path: &[u8], size: u64) -> Result<()> {
        let need = self.written.saturating_add(size).saturating_add(4 * BLOCK);
        if need <= self.budget {
            return Ok(());
        }
        self.cut_short();
        bail!(
            "archiving {}: the archive would pass the budget of {} bytes (--budget raises it); the archive is cut short",
            quote_bytes(path),
            self.budget
        )
    }

    /// End the stream inside an entry (a header whose data never comes), so that every
    /// reader fails on it.
    fn cut_short(&mut self) {
        let mut cut = Header::new_ustar();
        set_name(&mut cut, b"ext4-rdump-stopped-here");
        cut.set_mode(0o600);
        cut.set_size(BLOCK);
        cut.set_entry_type(EntryType::Regular);
        cut.set_cksum();
        let _ = self
            .put(cut.as_bytes())
            .and_then(|()| self.out.flush().context("writing the archive"));
    }

    /// The pax header and ustar header of an entry (a file's data follows).
    fn header(
        &mut self,
        path: &[u8],
        inode: &Inode,
        kind: EntryType,
        size: u64,
        link: Option<&[u8]>,
        xattrs: &[Xattr],
    ) -> Result<()> {
        let mut pax = Pax::default();
        if path.len() > 100 || !path.is_ascii() {
            pax.record(b"path", path);
        }
        if let Some(link) = link.filter(|l| l.len() > 100 || !l.is_ascii()) {
            pax.record(b"linkpath", link);
        }
        if std::str::from_utf8(path).is_err()
            || link.is_some_and(|l| std::str::from_utf8(l).is_err())
        {
            pax.record(b"hdrcharset", b"BINARY");
        }
        self.common_records(&mut pax, path, inode, size, xattrs);
        let header = ustar(path, kind, inode, size, link);
        self.put_entry(path, &pax, &header)
    }

    /// The headers of a sparse file: its real name and size in the pax header, a stand-in
    /// name in the ustar header, as GNU tar writes format 1.0.
    fn sparse_header(
        &mut self,
        path: &[u8],
        inode: &Inode,
        size: u64,
        xattrs: &[Xattr],
    ) -> Result<()> {
        let mut pax = Pax::default();
        pax.record(b"GNU.sparse.major", b"1");
        pax.record(b"GNU.sparse.minor", b"0");
        pax.record(b"GNU.sparse.name", path);
        pax.record(b"GNU.sparse.realsize", inode.size.to_string().as_bytes());
        if std::str::from_utf8(path).is_err() {
            pax.record(b"hdrcharset", b"BINARY");
        }
        self.common_records(&mut pax, path, inode, size, xattrs);
        let (dir, base) = match path.iter().rposition(|&b| b == b'/') {
            Some(at) => (&path[..=at], &path[at + 1..]),
            None => (&b""[..], path),
        };
        let stand_in = [dir, b"GNUSparseFile.0/", base].concat();
        let header = ustar(&stand_in, EntryType::Regular, inode, size, None);
        self.put_entry(path, &pax, &header)
    }

    /// Times, large ids and sizes, xattrs: what every entry's pax header may carry.
    fn common_records(
        &mut self,
        pax: &mut Pax,
        path: &[u8],
        inode: &Inode,
        size: u64,
        xattrs: &[Xattr],
    ) {
        pax.record(b"mtime", pax_time(inode.mtime).as_bytes());
        pax.record(b"atime", pax_time(inode.atime).as_bytes());
        pax.record(b"ctime", pax_time(inode.ctime).as_bytes());
        if u64::from(inode.uid) > USTAR_ID_MAX {
            pax.record(b"uid", inode.uid.to_string().as_bytes());
        }
        if u64::from(inode.gid) > USTAR_ID_MAX {
            pax.record(b"gid", inode.gid.to_string().as_bytes());
        }
        if size > USTAR_SIZE_MAX {
            pax.record(b"size", size.to_string().as_bytes());
        }
        for x in xattrs {
            // The key ends at the first '=': a name holding one (or a NUL) cannot be said.
            if x.name.contains(&b'=') || x.name.contains(&0) || x.name.is_empty() {
                self.fail(
                    path,
                    format_args!(
                        "extended attribute {} cannot be named in a pax header; left out",
                        quote_bytes(&x.name)
                    ),
                );
                continue;
            }
            pax.record(&[&b"SCHILY.xattr."[..], &x.name].concat(), &x.value);
        }
    }

    fn put_entry(&mut self, path: &[u8], pax: &Pax, header: &Header) -> Result<()> {
        self.within_budget(path, pax.0.len() as u64)?;
        let base = path
            .rsplit(|&b| b == b'/')
            .find(|n| !n.is_empty())
            .unwrap_or(b".");
        let pax_name = [&b"PaxHeaders/"[..], base].concat();
        let mut xh = Header::new_ustar();
        set_name(&mut xh, &pax_name);
        xh.set_mode(0o644);
        xh.set_size(pax.0.len() as u64);
        xh.set_mtime(header.mtime().unwrap_or(0));
        xh.set_entry_type(EntryType::XHeader);
        xh.set_cksum();
        self.put(xh.as_bytes())?;
        self.put(&pax.0)?;
        self.pad(pax.0.len() as u64)?;
        self.put(header.as_bytes())?;
        self.outcome.entries += 1;
        let n = self.outcome.entries;
        self.progress.update(|| format!("ext4-rdump: {n} entries"));
        if self.verbose {
            self.progress.finish();
            seedkit::warn(format_args!("{}", quote_bytes(path)));
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).context("writing the archive")?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Zeros up to the next block after `size` bytes of data.
    fn pad(&mut self, size: u64) -> Result<()> {
        let rest = (BLOCK - size % BLOCK) % BLOCK;
        self.put(&[0u8; BLOCK as usize][..rest as usize])
    }
}

/// Where a file's bytes go, counted, with the first write error kept.
struct Sink<'w, W: Write> {
    out: &'w mut W,
    written: &'w mut u64,
    /// The file offset reached.
    at: u64,
    failure: Option<io::Error>,
}

impl<W: Write> Sink<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.failure.is_some() {
            return false;
        }
        match self.out.write_all(bytes) {
            Ok(()) => {
                *self.written += bytes.len() as u64;
                self.at += bytes.len() as u64;
                true
            }
            Err(e) => {
                self.failure = Some(e);
                false
            }
        }
    }

    /// Zeros from where the data reached up to `offset` (a dense file's gaps).
    fn zeros_to(&mut self, offset: u64) -> bool {
        let zeros = [0u8; 8192];
        while self.at < offset {
            let k = (offset - self.at).min(zeros.len() as u64) as usize;
            if !self.put(&zeros[..k]) {
                return false;
            }
        }
        true
    }
}

/// The map GNU sparse 1.0 puts before the data: the number of segments, then each one's
/// offset and length, in decimal, one per line, padded to a block. A trailing hole gets a
/// last empty segment at the end of the file, so that readers give the file its size.
fn sparse_map(segments: &[(u64, u64)], size: u64) -> Vec<u8> {
    let mut list = segments.to_vec();
    if list.last().is_none_or(|&(o, l)| o + l < size) {
        list.push((size, 0));
    }
    let mut map = format!("{}\n", list.len()).into_bytes();
    for (offset, len) in list {
        map.extend_from_slice(format!("{offset}\n{len}\n").as_bytes());
    }
    let padded = (map.len() as u64).div_ceil(BLOCK) * BLOCK;
    map.resize(padded as usize, 0);
    map
}

/// A pax time: seconds and nine digits of nanoseconds; a time before 1970 is written as
/// the negative decimal it is (-1.25 is 1.25 s before the epoch).
fn pax_time(t: Time) -> String {
    if t.sec < 0 && t.nsec > 0 {
        format!("-{}.{:09}", -(t.sec + 1), 1_000_000_000 - t.nsec)
    } else {
        format!("{}.{:09}", t.sec, t.nsec)
    }
}

/// The ustar header of an entry; what does not fit is in the pax header before it.
fn ustar(name: &[u8], kind: EntryType, inode: &Inode, size: u64, link: Option<&[u8]>) -> Header {
    let mut h = Header::new_ustar();
    set_name(&mut h, name);
    if let (Some(link), Some(u)) = (link, h.as_ustar_mut()) {
        let n = link.len().min(u.linkname.len());
        u.linkname[..n].copy_from_slice(&link[..n]);
    }
    h.set_mode(inode.permissions() & 0o7777);
    h.set_uid(u64::from(inode.uid).min(USTAR_ID_MAX));
    h.set_gid(u64::from(inode.gid).min(USTAR_ID_MAX));
    h.set_size(size.min(USTAR_SIZE_MAX));
    h.set_mtime(u64::try_from(inode.mtime.sec).unwrap_or(0));
    h.set_entry_type(kind);
    if matches!(kind, EntryType::Char | EntryType::Block) {
        let (major, minor) = inode.rdev();
        // Linux's numbers (12 and 20 bits) fit the 7 octal digits of the fields.
        let _ = h.set_device_major(major);
        let _ = h.set_device_minor(minor);
    }
    h.set_cksum();
    h
}

/// The name field: the name's first 100 bytes (the whole name is in the pax header when
/// it is longer).
fn set_name(h: &mut Header, name: &[u8]) {
    if let Some(u) = h.as_ustar_mut() {
        let n = name.len().min(u.name.len());
        u.name[..n].copy_from_slice(&name[..n]);
    }
}

/// A pax extended header's records: `LEN KEY=VALUE\n`, LEN counting the whole record.
#[derive(Default)]
struct Pax(Vec<u8>);

impl Pax {
    fn record(&mut self, key: &[u8], value: &[u8]) {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + digits(rest);
        if digits(len) > digits(rest) {
            len += 1;
        }
        self.0.extend_from_slice(len.to_string().as_bytes());
        self.0.push(b' ');
        self.0.extend_from_slice(key);
        self.0.push(b'=');
        self.0.extend_from_slice(value);
        self.0.push(b'\n');
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value_len in 0..2000 {
            let mut p = Pax::default();
            p.record(b"path", &vec![b'a'; value_len]);
            let text = String::from_utf8(p.0.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), p.0.len(), "{value_len}");
        }
    }

    #[test]
    fn pax_times_keep_nanoseconds_and_sign() {
        assert_eq!(pax_time(Time { sec: 5, nsec: 7 }), "5.000000007");
        assert_eq!(
            pax_time(Time {
                sec: -2,
                nsec: 750_000_000
            }),
            "-1.250000000"
        );
        assert_eq!(pax_time(Time { sec: -3, nsec: 0 }), "-3.000000000");
    }

    #[test]
    fn sparse_maps_end_at_the_size() {
        let map = sparse_map(&[(0, 10), (4096, 5)], 10000);
        assert_eq!(map.len(), 512);
        assert!(map.starts_with(b"3\n0\n10\n4096\n5\n10000\n0\n\0"));
        let full = sparse_map(&[(4096, 4096)], 8192);
        assert!(full.starts_with(b"1\n4096\n4096\n\0"));
        assert!(sparse_map(&[], 100).starts_with(b"1\n100\n0\n"));
    }
}
