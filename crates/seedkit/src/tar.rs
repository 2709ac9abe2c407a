//! Reading a tar stream (POSIX pax, GNU, ustar and v7), one member at a time, with its data
//! read once, in order: a pipe is enough. A regular file's data that nobody reads is
//! skipped by seeking ([`TarStream::file`]). `ext4-ingest --from-tar` writes what this reads
//! and `seed-size --from-tar` counts it, both placing names with [`member_names`] and
//! [`Names`], so the two agree on every member taken or refused.
//!
//! The `tar` crate decodes the header blocks (the ustar prefix and name, octal and base-256
//! numbers, the GNU sparse descriptors). Its archive reader is not used: it reads a pax
//! header or a GNU long name into memory whatever its size, gives an old GNU sparse file's
//! holes as zeros without the map, and knows neither the pax sparse formats nor
//! nanosecond times nor xattrs. What it lacks is here: extension records bounded to
//! [`MAX_EXTENSION`] bytes, pax records (`path`, `linkpath`, `size`, `uid`, `gid`, the
//! three times with fractions, `SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`, global headers),
//! and the sparse maps of GNU tar's formats (old GNU `S` members, pax 0.0, 0.1 and 1.0),
//! each checked: in order, not overlapping, inside the file's size, adding up to the
//! data the stream holds.
//!
//! A member that cannot be taken (a bad map, a header that lies, an unknown type) is
//! [`Next::Bad`] and its data is skipped; a stream that cannot be followed (a header
//! checksum that does not match, a truncated block, a size past the end) is an error.
//! Memory is bounded by [`MAX_EXTENSION`] per member (its extension headers together, and
//! the global ones) and by its sparse map, which the stream itself holds (at least 4 bytes
//! per segment, at most [`MAX_SEGMENTS`] of them).

use std::collections::HashMap;
use std::fs::File;
use std::hash::Hash;
use std::io::{self, BufReader, Read};

use tar::Header;

/// The largest pax header, GNU long name or long link target taken (larger ones make
/// the member they describe refused, their bytes skipped).
pub const MAX_EXTENSION: u64 = 1 << 20;
/// The most segments one sparse file may have.
pub const MAX_SEGMENTS: usize = 1 << 22;
const BLOCK: u64 = 512;

/// Pax records (key, value), in the stream's order.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// A time with nanoseconds; `sec` may be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink(Vec<u8>),
    /// A hard link to the member of this name, earlier in the stream.
    HardLink(Vec<u8>),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

/// One member of the stream, its headers applied.
#[derive(Debug, Clone)]
pub struct Member {
    /// The name as the stream gives it (not yet checked).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// The 12 permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Time,
    pub atime: Option<Time>,
    pub ctime: Option<Time>,
    /// A regular file's size (a sparse file's real size).
    pub size: u64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A regular file's data segments `(offset, length)`: `[(0, size)]` unless sparse.
    pub segments: Vec<(u64, u64)>,
}

/// What [`TarStream::next`] gives.
#[derive(Debug)]
pub enum Next {
    Member(Member),
    /// A member that cannot be taken, and why (its data is skipped).
    Bad {
        path: Vec<u8>,
        why: String,
    },
}

fn bad_data(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// A tar stream being read.
pub struct TarStream<R> {
    r: R,
    /// Bytes read from the stream.
    pos: u64,
    /// Data bytes of the current member not read yet, then its padding.
    left: u64,
    pad: u64,
    /// Records of the global pax headers met so far.
    globals: Vec<(Vec<u8>, Vec<u8>)>,
    ended: bool,
    /// For a stream that is a regular file: how to skip data without reading it, and the
    /// file's length (a skip past it is a truncated stream, as a read would find).
    seek: Option<(Seeker<R>, u64)>,
    /// The directory of the stream asked for (its names; empty: all of it), and whether
    /// any member lay in it.
    within: Vec<Vec<u8>>,
    found: bool,
}

/// Moves a reader forward by so many bytes.
type Seeker<R> = fn(&mut R, i64) -> io::Result<()>;

/// What the extension members before a member said.
#[derive(Default)]
struct Pending {
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes of keys and values in `pax`.
    pax_bytes: u64,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// Why the member these describe must be refused.
    bad: Option<String>,
}

impl Pending {
    /// Take the records of one more pax header: together the headers before a member are
    /// bounded like one, or a stream of headers and no member would hold any memory.
    fn add_pax(&mut self, records: Records) {
        self.pax_bytes += records
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
        if self.pax_bytes > MAX_EXTENSION {
            self.pax = Vec::new();
            self.bad = Some(format!(
                "pax headers of more than {MAX_EXTENSION} bytes in all before one member"
            ));
        } else {
            self.pax.extend(records);
        }
    }
}

impl<R: Read> TarStream<R> {
    pub fn new(r: R) -> TarStream<R> {
        TarStream {
            r,
            pos: 0,
            left: 0,
            pad: 0,
            globals: Vec::new(),
            ended: false,
            seek: None,
            within: Vec::new(),
            found: false,
        }
    }

    /// Give only the members below directory `dir` of the stream (`dir` itself as the
    /// top, `.`), named relative to it; the others are skipped as if absent. A hard link
    /// below `dir` to a member outside it gets a target that no member has (it is then
    /// refused as a link to nothing given). `dir` is a name as a member's (`root`,
    /// `./root/`, `/root`: a leading `/` is allowed here).
    pub fn within(mut self, dir: &[u8]) -> Result<TarStream<R>, &'static str> {
        let dir = dir.strip_prefix(b"/").unwrap_or(dir);
        self.within = member_names(dir)?.into_iter().map(<[u8]>::to_vec).collect();
        Ok(self)
    }

    /// Whether a member lay in the directory [`TarStream::within`] asked for (always, when
    /// it asked for none), once the stream has ended.
    pub fn found_within(&self) -> bool {
        self.within.is_empty() || self.found
    }

    /// `path` relative to the directory asked for; `None` when outside it. A name that
    /// [`member_names`] refuses is skipped when its leading components already lie
    /// outside (`etc/../x` or `/etc/x` for `root`), else kept as it is, to be refused by
    /// the caller.
    fn relative(&self, path: &[u8]) -> Option<Vec<u8>> {
        let Ok(names) = member_names(path) else {
            let mut lead = path
                .split(|&b| b == b'/')
                .filter(|p| !p.is_empty() && *p != b".");
            let outside = self.within.iter().any(|w| match lead.next() {
                None => false,
                Some(p) => p != w.as_slice() && invalid_name(p).is_none() && p != b"..",
            });
            return (!outside).then(|| path.to_vec());
        };
        let rest = names.strip_prefix(
            self.within
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>()
                .as_slice(),
        )?;
        Some(if rest.is_empty() {
            b".".to_vec()
        } else {
            rest.join(&b'/')
        })
    }

    /// Bytes of the stream passed so far (read or skipped).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Read exactly `buf.len()` bytes; `Ok(false)` at the end of the stream before any.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut done = 0;
        while done < buf.len() {
            match self.r.read(&mut buf[done..]) {
                Ok(0) if done == 0 => return Ok(false),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the stream ends inside a block, at byte {} (truncated)",
                            self.pos
                        ),
                    ))
                }
                Ok(n) => {
                    done += n;
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Skip `n` bytes (data of a member nobody read); the stream must hold them.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        if let Some((seek, len)) = self.seek {
            if n > 0 {
                let to = self.pos.saturating_add(n);
                if to > len {
                    return Err(truncated(len));
                }
                seek(&mut self.r, i64::try_from(n).map_err(|_| truncated(len))?)?;
                self.pos = to;
            }
            return Ok(());
        }
        let mut buf = vec![0u8; n.min(1 << 16) as usize];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            if !self.fill(&mut buf[..k])? {
                return Err(truncated(self.pos));
            }
            n -= k as u64;
        }
        Ok(())
    }

    /// Read the next `buf.len()` data bytes of the current member.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() as u64 > self.left {
            return Err(bad_data("a member's data read past its size"));
        }
        if !self.fill(buf)? {
            return Err(truncated(self.pos));
        }
        self.left -= buf.len() as u64;
        Ok(())
    }

    /// Data bytes of the current member not read yet.
    pub fn data_left(&self) -> u64 {
        self.left
    }

    /// Read a whole extension member's data (a pax header, a long name), at most
    /// [`MAX_EXTENSION`] bytes: `None` (skipped) when larger.
    fn extension(&mut self, size: u64) -> io::Result<Option<Vec<u8>>> {
        self.start_data(size);
        if size > MAX_EXTENSION {
            self.finish_member()?;
            return Ok(None);
        }
        let mut data = vec![0u8; size as usize];
        self.read_data(&mut data)?;
        self.finish_member()?;
        Ok(Some(data))
    }

    fn start_data(&mut self, size: u64) {
        self.left = size;
        self.pad = (BLOCK - size % BLOCK) % BLOCK;
    }

    /// Skip what is left of the current member and its padding.
    fn finish_member(&mut self) -> io::Result<()> {
        let n = self.left.saturating_add(self.pad);
        self.left = 0;
        self.pad = 0;
        self.skip(n)
    }

    /// The next member (what is left of the current one is skipped); `None` at the end
    /// of the archive (a zero block, or the end of the stream at a member's boundary, as
    /// GNU tar takes it).
    pub fn next_member(&mut self) -> io::Result<Option<Next>> {
        loop {
            let next = self.next_any()?;
            if self.within.is_empty() {
                return Ok(next);
            }
            let next = match next {
                None => return Ok(None),
                Some(Next::Bad { path, why }) => match self.relative(&path) {
                    Some(path) => Next::Bad { path, why },
                    None => continue,
                },
                Some(Next::Member(mut m)) => {
                    let Some(path) = self.relative(&m.path) else {
                        continue;
                    };
                    m.path = path;
                    if let Kind::HardLink(target) = &m.kind {
                        // Outside: a target no member has (an absolute name).
                        let target = self.relative(target).unwrap_or_else(|| {
                            let mut t = b"/".to_vec();
                            t.extend_from_slice(target);
                            t
                        });
                        m.kind = Kind::HardLink(target);
                    }
                    Next::Member(m)
                }
            };
            self.found = true;
            return Ok(Some(next));
        }
    }

    /// The next member of the whole stream.
    fn next_any(&mut self) -> io::Result<Option<Next>> {
        if self.ended {
            return Ok(None);
        }
        self.finish_member()?;
        let mut pending = Pending::default();
        loop {
            let mut header = Header::new_old();
            let first = self.pos == 0;
            let read = self.fill(header.as_mut_bytes()).map_err(|e| {
                if first && e.kind() == io::ErrorKind::UnexpectedEof {
                    bad_data("not a tar stream (shorter than one 512-byte header)")
                } else {
                    e
                }
            })?;
            if !read {
                self.ended = true;
                if pending.pax.is_empty() && pending.long_name.is_none() && pending.bad.is_none() {
                    return Ok(None);
                }
                return Err(truncated(self.pos));
            }
            if header.as_bytes().iter().all(|&b| b == 0) {
                self.ended = true;
                return Ok(None);
            }
            let at = self.pos - BLOCK;
            check_header(&header, at)?;
            let size = header
                .entry_size()
                .map_err(|_| bad_data(format!("a header with a bad size field, at byte {at}")))?;
            match header.as_bytes()[156] {
                ty @ (b'x' | b'g') => match self.extension(size)? {
                    None => pending.bad = Some(too_long("a pax header", size)),
                    Some(data) => match parse_pax(&data) {
                        Ok(records) if ty == b'g' => self.add_globals(records)?,
                        Ok(records) => pending.add_pax(records),
                        Err(why) => pending.bad = Some(why),
                    },
                },
                ty @ (b'L' | b'K') => match self.extension(size)? {
                    None => pending.bad = Some(too_long("a GNU long name", size)),
                    Some(mut data) => {
                        while data.last() == Some(&0) {
                            data.pop();
                        }
                        if ty == b'L' {
                            pending.long_name = Some(data);
                        } else {
                            pending.long_link = Some(data);
                        }
                    }
                },
                // A volume label names no file.
                b'V' => {
                    self.start_data(size);
                    self.finish_member()?;
                    pending = Pending::default();
                }
                _ => return self.member(&header, size, &pending).map(Some),
            }
        }
    }

    /// Global records apply to every later member (a later one replaces an earlier one of
    /// the same key); together they are bounded like one pax header.
    fn add_globals(&mut self, records: Vec<(Vec<u8>, Vec<u8>)>) -> io::Result<()> {
        for (k, v) in records {
            if local_only(&k) {
                continue;
            }
            self.globals.retain(|(g, _)| *g != k);
            self.globals.push((k, v));
        }
        let total: usize = self.globals.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total as u64 > MAX_EXTENSION {
            return Err(bad_data(format!(
                "global pax headers of more than {MAX_EXTENSION} bytes in all"
            )));
        }
        Ok(())
    }

    /// A member's header with what its extensions said; its data follows.
    fn member(&mut self, header: &Header, size: u64, p: &Pending) -> io::Result<Next> {
        // Globals first, the member's own records after them: the last of a key wins.
        let records: Vec<(Vec<u8>, Vec<u8>)> = self.globals.iter().chain(&p.pax).cloned().collect();
        let path = find(&records, b"GNU.sparse.name")
            .or_else(|| find(&records, b"path"))
            .map(<[u8]>::to_vec)
            .or_else(|| p.long_name.clone())
            .unwrap_or_else(|| header.path_bytes().into_owned());
        // The data in the stream: the pax size when given, else the header's.
        let stored = match find(&records, b"size").map(decimal) {
            Some(Some(n)) => n,
            Some(None) => {
                self.start_data(size);
                return Ok(bad(path, "a pax size that is not a number"));
            }
            None => size,
        };
        self.start_data(stored);
        if let Some(why) = p.bad.clone() {
            return Ok(bad(path, why));
        }
        match self.describe(header, &path, stored, p, &records) {
            Ok(m) => Ok(Next::Member(m)),
            Err(Refusal::Bad(why)) => Ok(bad(path, why)),
            Err(Refusal::Stream(e)) => Err(e),
        }
    }

    fn describe(
        &mut self,
        header: &Header,
        path: &[u8],
        stored: u64,
        p: &Pending,
        records: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Member, Refusal> {
        let ty = header.as_bytes()[156];
        let kind = kind(header, ty, path, p, records)?;
        let number = |key: &[u8], field: io::Result<u64>, what: &str| -> Result<u64, Refusal> {
            match find(records, key) {
                Some(v) => decimal(v)
                    .ok_or_else(|| Refusal::Bad(format!("a pax {what} that is not a number"))),
                None => {
                    field.map_err(|_| Refusal::Bad(format!("a header with a bad {what} field")))
                }
            }
        };
        let id = |n: u64, what: &str| {
            u32::try_from(n).map_err(|_| Refusal::Bad(format!("{what} {n} is past 32 bits")))
        };
        let old = header.as_old();
        let uid = id(
            number(b"uid", blank_or(&old.uid, header.uid()), "uid")?,
            "uid",
        )?;
        let gid = id(
            number(b"gid", blank_or(&old.gid, header.gid()), "gid")?,
            "gid",
        )?;
        let time = |key: &[u8]| -> Result<Option<Time>, Refusal> {
            find(records, key)
                .map(|v| {
                    parse_time(v).ok_or_else(|| {
                        Refusal::Bad(format!(
                            "a pax {} that is not a time",
                            String::from_utf8_lossy(key)
                        ))
                    })
                })
                .transpose()
        };
        let mtime = match time(b"mtime")? {
            Some(t) => t,
            None => Time {
                sec: blank_or(&old.mtime, header.mtime())
                    .ok()
                    .and_then(|s| i64::try_from(s).ok())
                    .ok_or_else(|| Refusal::Bad("a header with a bad mtime field".into()))?,
                nsec: 0,
            },
        };
        let mode = blank_or(&old.mode, header.mode().map(u64::from))
            .map(|m| m as u32)
            .map_err(|_| Refusal::Bad("a header with a bad mode field".into()))?
            & 0o7777;
        let xattrs = xattrs(records).map_err(Refusal::Bad)?;
        let (size, segments) = if kind == Kind::File {
            self.segments(header, ty, stored, &p.pax)?
        } else {
            (0, Vec::new())
        };
        Ok(Member {
            path: path.to_vec(),
            kind,
            mode,
            uid,
            gid,
            mtime,
            atime: time(b"atime")?,
            ctime: time(b"ctime")?,
            size,
            xattrs,
            segments,
        })
    }
}

/// What the member is, by its type byte.
fn kind(
    header: &Header,
    ty: u8,
    path: &[u8],
    p: &Pending,
    records: &[(Vec<u8>, Vec<u8>)],
) -> Result<Kind, Refusal> {
    let link = || {
        find(records, b"linkpath")
            .map(<[u8]>::to_vec)
            .or_else(|| p.long_link.clone())
            .or_else(|| header.link_name_bytes().map(std::borrow::Cow::into_owned))
            .unwrap_or_default()
    };
    let device = || -> Result<(u32, u32), Refusal> {
        match (header.device_major(), header.device_minor()) {
            (Ok(Some(a)), Ok(Some(i))) => Ok((a, i)),
            _ => Err(Refusal::Bad("a device without readable numbers".into())),
        }
    };
    Ok(match ty {
        // Before POSIX, a directory was a plain member whose name ends with '/'.
        0 if path.ends_with(b"/") => Kind::Directory,
        0 | b'0' | b'7' | b'S' => Kind::File,
        b'5' | b'D' => Kind::Directory,
        b'2' => Kind::Symlink(link()),
        b'1' => Kind::HardLink(link()),
        b'3' => {
            let (a, i) = device()?;
            Kind::CharDevice(a, i)
        }
        b'4' => {
            let (a, i) = device()?;
            Kind::BlockDevice(a, i)
        }
        b'6' => Kind::Fifo,
        other => {
            return Err(Refusal::Bad(format!(
                "a member of type '{}', which is not a file, directory, link or node",
                (other as char).escape_default()
            )))
        }
    })
}

impl<R: Read> TarStream<R> {
    /// A regular file's real size and data segments, from whichever sparse format the
    /// headers say (none: one segment over the data).
    fn segments(
        &mut self,
        header: &Header,
        ty: u8,
        stored: u64,
        pax: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(u64, Vec<(u64, u64)>), Refusal> {
        let get = |key: &[u8]| find(pax, key);
        let num = |key: &[u8]| -> Result<Option<u64>, Refusal> {
            get(key)
                .map(|v| {
                    decimal(v).ok_or_else(|| {
                        Refusal::Bad(format!(
                            "a pax {} that is not a number",
                            String::from_utf8_lossy(key)
                        ))
                    })
                })
                .transpose()
        };
        let (size, list) = if get(b"GNU.sparse.major") == Some(b"1") {
            let size = num(b"GNU.sparse.realsize")?.ok_or_else(|| {
                Refusal::Bad("a sparse file (format 1.0) without GNU.sparse.realsize".into())
            })?;
            let list = self.sparse_map_1_0()?;
            (size, list)
        } else if let Some(map) = get(b"GNU.sparse.map") {
            let size = num(b"GNU.sparse.size")?.unwrap_or(stored);
            (size, parse_map_0_1(map).map_err(Refusal::Bad)?)
        } else if get(b"GNU.sparse.offset").is_some() {
            let size = num(b"GNU.sparse.size")?.unwrap_or(stored);
            (size, map_0_0(pax).map_err(Refusal::Bad)?)
        } else if ty == b'S' {
            self.old_gnu_map(header)?
        } else {
            return Ok((
                stored,
                if stored > 0 {
                    vec![(0, stored)]
                } else {
                    Vec::new()
                },
            ));
        };
        check_map(&list, size, self.left).map_err(Refusal::Bad)?;
        Ok((size, list))
    }

    /// GNU sparse 1.0: the map at the start of the data, decimal numbers one per line
    /// (the count, then offset and length of each segment), padded to a block.
    fn sparse_map_1_0(&mut self) -> Result<Vec<(u64, u64)>, Refusal> {
        let mut lines = MapLines::default();
        let count = lines.number(self)?;
        // Each segment takes at least four bytes of the stream ("0\n0\n").
        if count > self.left / 4 + 1 || count > MAX_SEGMENTS as u64 {
            return Err(Refusal::Bad(format!(
                "a sparse map of {count} segments in {} bytes of data",
                self.left
            )));
        }
        // Grown as the map is read, not reserved from what its first line claims.
        let mut list = Vec::new();
        for _ in 0..count {
            let offset = lines.number(self)?;
            let len = lines.number(self)?;
            list.push((offset, len));
        }
        // The map is padded to a whole block of the data.
        let used = lines.consumed;
        let pad = (BLOCK - used % BLOCK) % BLOCK;
        if pad > self.left {
            return Err(Refusal::Bad(
                "a sparse map longer than the member's data".into(),
            ));
        }
        let mut skip = vec![0u8; pad as usize];
        self.read_data(&mut skip).map_err(Refusal::Stream)?;
        Ok(list)
    }

    /// An old GNU sparse member (`S`): four segments in the header, 21 more in each
    /// extension block after it.
    fn old_gnu_map(&mut self, header: &Header) -> Result<(u64, Vec<(u64, u64)>), Refusal> {
        let bad = |what: &str| Refusal::Bad(format!("an old GNU sparse header with a bad {what}"));
        let gnu = header.as_gnu().ok_or_else(|| bad("magic"))?;
        let size = gnu.real_size().map_err(|_| bad("real size"))?;
        let mut list = Vec::new();
        let take =
            |list: &mut Vec<(u64, u64)>, sp: &[tar::GnuSparseHeader]| -> Result<(), Refusal> {
                for s in sp.iter().filter(|s| !s.is_empty()) {
                    list.push((
                        s.offset().map_err(|_| bad("offset"))?,
                        s.length().map_err(|_| bad("length"))?,
                    ));
                }
                Ok(())
            };
        take(&mut list, &gnu.sparse)?;
        let mut extended = gnu.is_extended();
        // The extension blocks are not part of the member's data (its size counts only
        // the data): they come first.
        while extended {
            let mut ext = tar::GnuExtSparseHeader::new();
            if !self.fill(ext.as_mut_bytes()).map_err(Refusal::Stream)? {
                return Err(Refusal::Stream(truncated(self.pos)));
            }
            take(&mut list, &ext.sparse)?;
            if list.len() > MAX_SEGMENTS {
                return Err(Refusal::Bad(format!(
                    "a sparse map of more than {MAX_SEGMENTS} segments"
                )));
            }
            extended = ext.is_extended();
        }
        Ok((size, list))
    }
}

impl TarStream<BufReader<File>> {
    /// The stream in `file`. When it is a regular file, data nobody reads (a file's content
    /// when only its headers matter, a refused member's) is skipped by seeking, not read; a
    /// pipe or a terminal is read through.
    pub fn file(file: File) -> io::Result<TarStream<BufReader<File>>> {
        let meta = file.metadata()?;
        let mut stream = TarStream::new(BufReader::with_capacity(1 << 16, file));
        if meta.is_file() {
            let seek: Seeker<BufReader<File>> = BufReader::seek_relative;
            stream.seek = Some((seek, meta.len()));
        }
        Ok(stream)
    }
}

/// The components of a member's name, `.` and empty ones dropped (`./a//b/` is `a`, `b`;
/// `.` and `./` are the top, no component). An absolute name or one holding `..` would
/// leave the tree and is refused, as is a component ext4 cannot hold.
pub fn member_names(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if path.starts_with(b"/") {
        return Err("an absolute name (it would leave the tree)");
    }
    let mut names = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => return Err("a name holding '..' (it would leave the tree)"),
            _ => {}
        }
        if let Some(why) = invalid_name(part) {
            return Err(why);
        }
        names.push(part);
    }
    Ok(names)
}

/// Why ext4 cannot hold `name` as one directory entry, if it cannot.
pub fn invalid_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty name")
    } else if name.len() > 255 {
        Some("name longer than 255 bytes")
    } else if name == b"." || name == b".." {
        Some("name is . or ..")
    } else if name.contains(&b'/') {
        Some("name holds a slash")
    } else if name.contains(&0) {
        Some("name holds a NUL byte")
    } else {
        None
    }
}

/// What a name of the stream became, in a tree built from it: `D` names a directory, `O`
/// anything else (a file, a symlink, a node), as the tool building the tree keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<D, O> {
    Dir(D),
    /// A directory made because an entry below it came first.
    Implied(D),
    Other(O),
    Refused,
}

/// Where the way to a member's directory led ([`Names::parent_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way<D> {
    /// The member goes in this directory.
    Dir(D),
    /// A directory on the way was refused.
    BelowRefused,
    /// Component `i` of the way is not a directory.
    BelowOther(usize),
    /// A directory on the way could not be made (the maker said why).
    NotMade,
}

/// The names a tar stream placed so far, as (directory, name) -> what it became.
///
/// A stream holds members in any order: a directory may come after its entries, or never,
/// so a path is resolved one component at a time, never through a symlink or anything but
/// a directory the stream made. Each name held costs its bytes and about 100 more.
pub struct Names<D, O> {
    root: D,
    map: HashMap<(D, Vec<u8>), Slot<D, O>>,
}

impl<D: Copy + Eq + Hash, O: Copy> Names<D, O> {
    /// No names yet below the top directory `root`.
    pub fn new(root: D) -> Names<D, O> {
        Names {
            root,
            map: HashMap::new(),
        }
    }

    /// What `name` in `dir` became.
    pub fn get(&self, dir: D, name: &[u8]) -> Option<Slot<D, O>> {
        self.map.get(&(dir, name.to_vec())).copied()
    }

    pub fn set(&mut self, dir: D, name: &[u8], slot: Slot<D, O>) {
        self.map.insert((dir, name.to_vec()), slot);
    }

    /// What the path `names` (below the top) names among the names placed, without making
    /// anything.
    pub fn resolve(&self, names: &[&[u8]]) -> Option<Slot<D, O>> {
        let mut dir = self.root;
        let mut slot = None;
        for name in names {
            if let Some(Slot::Dir(d) | Slot::Implied(d)) = slot {
                dir = d;
            } else if slot.is_some() {
                return None;
            }
            slot = Some(self.get(dir, name)?);
        }
        slot
    }

    /// Mark the path `names` refused, when its directory is placed and the name is free
    /// (so that what the stream puts below it is refused too).
    pub fn refuse(&mut self, names: &[&[u8]]) {
        let Some((name, parent)) = names.split_last() else {
            return;
        };
        let dir = if parent.is_empty() {
            self.root
        } else {
            match self.resolve(parent) {
                Some(Slot::Dir(d) | Slot::Implied(d)) => d,
                _ => return,
            }
        };
        self.map
            .entry((dir, name.to_vec()))
            .or_insert(Slot::Refused);
    }

    /// The directory the path `names` goes in. A directory on the way that the stream has
    /// not given yet is made by `make(parent, i)` (`i` the index of its component; `None`
    /// when it could not be) and placed as [`Slot::Implied`].
    pub fn parent_of<E>(
        &mut self,
        names: &[&[u8]],
        mut make: impl FnMut(D, usize) -> Result<Option<D>, E>,
    ) -> Result<Way<D>, E> {
        let mut dir = self.root;
        let Some((_, way)) = names.split_last() else {
            return Ok(Way::Dir(dir));
        };
        for (i, name) in way.iter().enumerate() {
            match self.get(dir, name) {
                Some(Slot::Dir(d) | Slot::Implied(d)) => dir = d,
                Some(Slot::Refused) => return Ok(Way::BelowRefused),
                Some(Slot::Other(_)) => return Ok(Way::BelowOther(i)),
                None => {
                    let Some(d) = make(dir, i)? else {
                        self.set(dir, name, Slot::Refused);
                        return Ok(Way::NotMade);
                    };
                    self.set(dir, name, Slot::Implied(d));
                    dir = d;
                }
            }
        }
        Ok(Way::Dir(dir))
    }
}

/// Why a member is refused, or the stream cannot be followed.
enum Refusal {
    Bad(String),
    Stream(io::Error),
}

fn bad(path: Vec<u8>, why: impl Into<String>) -> Next {
    Next::Bad {
        path,
        why: why.into(),
    }
}

fn truncated(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the stream ends inside a member, at byte {at} (truncated)"),
    )
}

fn too_long(what: &str, size: u64) -> String {
    format!("{what} of {size} bytes, more than the {MAX_EXTENSION} accepted")
}

/// A numeric field left blank (NULs or spaces) reads as 0, as GNU tar reads it.
fn blank_or(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|&b| b == 0 || b == b' ') {
        Ok(0)
    } else {
        parsed
    }
}

/// The last value of `key` among `records`.
fn find<'r>(records: &'r [(Vec<u8>, Vec<u8>)], key: &[u8]) -> Option<&'r [u8]> {
    records
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// Pax keys that describe one member only, never taken from a global header.
fn local_only(key: &[u8]) -> bool {
    matches!(key, b"path" | b"linkpath" | b"size") || key.starts_with(b"GNU.sparse.")
}

/// The header's checksum must match (as unsigned or, as some old tars wrote it, signed
/// bytes); anything else is not a tar stream, or a damaged one.
fn check_header(header: &Header, at: u64) -> io::Result<()> {
    let bytes = header.as_bytes();
    if at == 0 && bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(bad_data(
            "a gzip stream, not a tar stream (decompress it first: zcat FILE | ...)",
        ));
    }
    if at == 0
        && (bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || bytes.starts_with(b"\xfd7zXZ")
            || bytes.starts_with(b"BZh"))
    {
        return Err(bad_data(
            "a compressed stream, not a tar stream (decompress it first)",
        ));
    }
    let field = |b: &u8, i: usize| if (148..156).contains(&i) { 32 } else { *b };
    let unsigned: u32 = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| u32::from(field(b, i)))
        .sum();
    let signed: i32 = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| i32::from(field(b, i) as i8))
        .sum();
    match header.cksum() {
        Ok(c) if c == unsigned || i64::from(c) == i64::from(signed) => Ok(()),
        _ if at == 0 => Err(bad_data(
            "not a tar stream (the first header's checksum does not match)",
        )),
        _ => Err(bad_data(format!(
            "a damaged header at byte {at} (its checksum does not match)"
        ))),
    }
}

/// Pax records: `LEN KEY=VALUE\n`, LEN counting the whole record; values are bytes.
fn parse_pax(data: &[u8]) -> Result<Records, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // Some writers pad the header with NULs.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .take(21)
            .position(|&b| b == b' ')
            .ok_or("a pax record without a length")?;
        let len = decimal(&rest[..space]).ok_or("a pax record whose length is not a number")?;
        let len = usize::try_from(len).map_err(|_| "a pax record longer than the header")?;
        if len <= space + 1 || len > rest.len() {
            return Err(format!(
                "a pax record of {len} bytes where {} are left",
                rest.len()
            ));
        }
        let record = &rest[space + 1..len];
        let Some((&b'\n', body)) = record.split_last() else {
            return Err("a pax record that does not end with a newline".into());
        };
        let eq = body
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a pax record without '='")?;
        if eq == 0 {
            return Err("a pax record with an empty key".into());
        }
        out.push((body[..eq].to_vec(), body[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// A decimal number of at most 20 digits, nothing else.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A pax time: an optional `-`, seconds, an optional fraction (digits past the ninth are
/// dropped). `-1.25` is 1.25 seconds before the epoch.
fn parse_time(v: &[u8]) -> Option<Time> {
    let (neg, v) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if int.len() > 18 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sec = i64::try_from(decimal(int)?).ok()?;
    let mut nsec = 0u32;
    for i in 0..9 {
        nsec = nsec * 10 + u32::from(frac.get(i).map_or(0, |d| d - b'0'));
    }
    Some(match (neg, nsec) {
        (false, _) => Time { sec, nsec },
        (true, 0) => Time { sec: -sec, nsec: 0 },
        (true, n) => Time {
            sec: -sec - 1,
            nsec: 1_000_000_000 - n,
        },
    })
}

/// Extended attributes: `SCHILY.xattr.NAME` (value as it is) and `LIBARCHIVE.xattr.NAME`
/// (name %-encoded, value base64); a later record replaces an earlier one.
fn xattrs(records: &[(Vec<u8>, Vec<u8>)]) -> Result<Records, String> {
    let mut out: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = std::collections::BTreeMap::new();
    for (key, value) in records {
        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
            out.insert(name.to_vec(), value.clone());
        } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
            let name = percent_decode(name).ok_or("a LIBARCHIVE.xattr name badly %-encoded")?;
            // libarchive may leave the padding out.
            let mut text = value.clone();
            text.resize(value.len().div_ceil(4) * 4, b'=');
            let value = std::str::from_utf8(&text)
                .ok()
                .and_then(crate::base64::decode)
                .ok_or("a LIBARCHIVE.xattr value that is not base64")?;
            out.insert(name, value);
        }
    }
    Ok(out.into_iter().collect())
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// GNU sparse 0.1: `GNU.sparse.map=offset,length,offset,length...`.
fn parse_map_0_1(map: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    if map.is_empty() {
        return Ok(Vec::new());
    }
    let numbers: Option<Vec<u64>> = map.split(|&b| b == b',').map(decimal).collect();
    let numbers = numbers.ok_or("a GNU.sparse.map that is not a list of numbers")?;
    if numbers.len() % 2 != 0 || numbers.len() / 2 > MAX_SEGMENTS {
        return Err(format!("a GNU.sparse.map of {} numbers", numbers.len()));
    }
    Ok(numbers.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// GNU sparse 0.0: `GNU.sparse.offset` and `GNU.sparse.numbytes` repeated, in pairs.
fn map_0_0(pax: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<(u64, u64)>, String> {
    let mut list = Vec::new();
    let mut offset = None;
    for (k, v) in pax {
        match k.as_slice() {
            b"GNU.sparse.offset" => {
                offset = Some(decimal(v).ok_or("a GNU.sparse.offset that is not a number")?);
            }
            b"GNU.sparse.numbytes" => {
                let len = decimal(v).ok_or("a GNU.sparse.numbytes that is not a number")?;
                let at = offset
                    .take()
                    .ok_or("a GNU.sparse.numbytes without its offset")?;
                list.push((at, len));
            }
            _ => {}
        }
    }
    Ok(list)
}

/// A sparse map must list its segments in order, not overlapping, inside the file's size,
/// and add up to the data the stream holds for it.
fn check_map(list: &[(u64, u64)], size: u64, stored: u64) -> Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    for &(offset, len) in list {
        if offset < end {
            return Err(format!(
                "a sparse map whose segments overlap or go back (at {offset})"
            ));
        }
        end = offset
            .checked_add(len)
            .filter(|&e| e <= size)
            .ok_or_else(|| format!("a sparse map past the file's size of {size} bytes"))?;
        total = total.saturating_add(len);
    }
    if total != stored {
        return Err(format!(
            "a sparse map of {total} bytes of data where the stream holds {stored}"
        ));
    }
    Ok(())
}

/// Reads the numbers of a 1.0 map from the member's data, one line each.
#[derive(Default)]
struct MapLines {
    consumed: u64,
}

impl MapLines {
    fn number<R: Read>(&mut self, s: &mut TarStream<R>) -> Result<u64, Refusal> {
        let mut digits = Vec::new();
        loop {
            if s.left == 0 {
                return Err(Refusal::Bad(
                    "a sparse map cut short by the end of the data".into(),
                ));
            }
            let mut b = [0u8];
            s.read_data(&mut b).map_err(Refusal::Stream)?;
            self.consumed += 1;
            if b[0] == b'\n' {
                break;
            }
            if digits.len() >= 20 {
                return Err(Refusal::Bad(
                    "a sparse map number longer than 20 digits".into(),
                ));
            }
            digits.push(b[0]);
        }
        decimal(&digits)
            .ok_or_else(|| Refusal::Bad("a sparse map holding something else than numbers".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_are_parsed_and_bounded() {
        let recs = parse_pax(b"12 path=a/b\n21 SCHILY.xattr.u=\x00\n\n").unwrap();
        assert_eq!(recs[0], (b"path".to_vec(), b"a/b".to_vec()));
        assert_eq!(recs[1], (b"SCHILY.xattr.u".to_vec(), b"\x00\n".to_vec()));
        for bad in [
            &b"99 path=a\n"[..],
            b"5 a=b\n",
            b"x path=a\n",
            b"9 patha\n",
            b"10 path=a!",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn times_keep_their_fraction_and_sign() {
        assert_eq!(
            parse_time(b"12.5"),
            Some(Time {
                sec: 12,
                nsec: 500_000_000
            })
        );
        assert_eq!(
            parse_time(b"-1.25"),
            Some(Time {
                sec: -2,
                nsec: 750_000_000
            })
        );
        assert_eq!(parse_time(b"-3"), Some(Time { sec: -3, nsec: 0 }));
        assert_eq!(
            parse_time(b"1.1234567891"),
            Some(Time {
                sec: 1,
                nsec: 123_456_789
            })
        );
        assert_eq!(parse_time(b"1e9"), None);
        assert_eq!(parse_time(b"99999999999999999999"), None);
    }

    #[test]
    fn sparse_maps_are_checked() {
        assert!(check_map(&[(0, 10), (100, 5), (200, 0)], 200, 15).is_ok());
        assert!(check_map(&[(0, 10), (5, 5)], 200, 15)
            .unwrap_err()
            .contains("overlap"));
        assert!(check_map(&[(0, 10), (195, 10)], 200, 20)
            .unwrap_err()
            .contains("past"));
        assert!(check_map(&[(0, 10)], 200, 11)
            .unwrap_err()
            .contains("holds 11"));
        assert!(check_map(&[(u64::MAX, 2)], u64::MAX, 2).is_err());
        assert_eq!(parse_map_0_1(b"1,2,3,4").unwrap(), [(1, 2), (3, 4)]);
        assert!(parse_map_0_1(b"1,2,3").is_err());
    }

    #[test]
    fn member_names_stay_inside_the_tree() {
        assert_eq!(member_names(b"./a//b/").unwrap(), [b"a", b"b"]);
        assert!(member_names(b"./").unwrap().is_empty());
        assert!(member_names(b"/etc/passwd").is_err());
        assert!(member_names(b"a/../../b").is_err());
        assert!(member_names(b"..").is_err());
        assert!(member_names(&[b'a'; 256]).is_err());
        assert_eq!(member_names(b"...").unwrap(), [b"..."]);
    }

    #[test]
    fn names_resolve_only_through_directories() {
        let mut names: Names<u32, u32> = Names::new(0);
        let mut made = 0;
        let way = names.parent_of(&[b"a", b"b", b"f"], |_, _| -> Result<_, ()> {
            made += 1;
            Ok(Some(made))
        });
        assert_eq!(way, Ok(Way::Dir(2)));
        names.set(2, b"f", Slot::Other(7));
        assert_eq!(names.resolve(&[b"a", b"b", b"f"]), Some(Slot::Other(7)));
        assert_eq!(names.resolve(&[b"a", b"b", b"f", b"g"]), None);
        let below = names.parent_of(&[b"a", b"b", b"f", b"g"], |_, _| -> Result<_, ()> {
            Ok(Some(9))
        });
        assert_eq!(below, Ok(Way::BelowOther(2)));
        names.refuse(&[b"a", b"x"]);
        let refused = names.parent_of(&[b"a", b"x", b"y"], |_, _| -> Result<_, ()> { Ok(Some(9)) });
        assert_eq!(refused, Ok(Way::BelowRefused));
    }

    #[test]
    fn libarchive_xattr_names_are_percent_decoded() {
        let recs = vec![(b"LIBARCHIVE.xattr.user.a%3Db".to_vec(), b"aGk=".to_vec())];
        assert_eq!(
            xattrs(&recs).unwrap(),
            [(b"user.a=b".to_vec(), b"hi".to_vec())]
        );
    }
}
