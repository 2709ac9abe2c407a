//! `--diff`: the two directories walked side by side, in walk order (a directory, then its
//! entries, names in byte order), matched by path as they come, and each difference printed
//! at once. Nothing is collected: what is held is the two walks (the listings of the
//! directories they are inside, see [`crate::walk`]), the entry of each side being compared,
//! a digest of each inode's xattrs and a verdict on each pair of files (each for at most
//! 262,144 of them), and the pieces of the two files whose contents are being compared
//! ([`crate::compare`]), whatever the size of the images.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use ext4fs::{Ino, Inode};
use seedkit::json::Bytes;
use seedkit::records::emit;
use seedkit::records::{Change, EntryKind, LsDiff, LsEntry};
use seedkit::Status;
use sha2::{Digest as _, Sha256};

use crate::compare::{Comparer, Failed};
use crate::content::data_budget;
use crate::walk::{walk_order, Event, Walk};
use crate::{base_record, report, show, Args, Source};

/// Inodes whose xattr digest is kept, at most (32 bytes and a key each): past it, a further
/// name's xattrs are read again rather than remembered.
const XATTR_DIGESTS_KEPT: usize = 1 << 18;

/// What one side knows of an entry that is on both sides.
struct Entry {
    record: LsEntry,
    xattrs: [u8; 32],
    inode: Inode,
}

/// One directory being compared: its walk, and what it has reported.
struct Side<'a> {
    source: &'a Source,
    walk: Walk<'a>,
    excluded: &'a dyn Fn(&[u8]) -> bool,
    /// The next entry of the walk, looked at but not yet taken.
    head: Option<(Vec<u8>, Inode)>,
    xattr_digests: HashMap<Ino, [u8; 32]>,
    failures: u64,
}

impl<'a> Side<'a> {
    fn new(source: &'a Source, excluded: &'a dyn Fn(&[u8]) -> bool) -> Side<'a> {
        let walk = Walk::new(&source.fs, source.inode.clone(), true, true).pruning(excluded);
        let mut side = Side {
            source,
            walk,
            excluded,
            head: None,
            xattr_digests: HashMap::new(),
            failures: 0,
        };
        side.advance();
        side
    }

    /// Look at the next entry that is not left out, reporting what cannot be read.
    fn advance(&mut self) {
        self.head = loop {
            match self.walk.next() {
                None => break None,
                Some(Event::Failure(path, message)) => {
                    if !(self.excluded)(&path) {
                        self.fail(&path, &message);
                    }
                }
                Some(Event::Entry(path, inode)) => {
                    if !(self.excluded)(&path) {
                        break Some((path, inode));
                    }
                }
            }
        };
    }

    fn fail(&mut self, path: &[u8], message: &str) {
        self.failures += 1;
        report(&self.source.image, path, message);
    }

    /// Take the entry looked at, with its record.
    fn take(&mut self) -> Option<Entry> {
        let (path, inode) = self.head.take()?;
        self.advance();
        let mut problems = Vec::new();
        let record = base_record(&self.source.fs, &path, &inode, &mut problems);
        let xattrs = self.xattr_digest(&inode, &mut problems);
        for p in &problems {
            self.fail(&path, p);
        }
        Some(Entry {
            record: record?,
            xattrs,
            inode,
        })
    }

    /// A digest of an inode's xattrs, names and values, read once per inode however many
    /// names reach it.
    fn xattr_digest(&mut self, inode: &Inode, problems: &mut Vec<String>) -> [u8; 32] {
        if let Some(d) = self.xattr_digests.get(&inode.ino) {
            return *d;
        }
        let (list, error) = self.source.fs.xattrs_lenient(inode);
        if let Some(e) = error {
            problems.push(format!("reading extended attributes: {e}"));
        }
        let mut sha = Sha256::new();
        for x in &list {
            sha.update((x.name.len() as u64).to_be_bytes());
            sha.update(&x.name);
            sha.update((x.value.len() as u64).to_be_bytes());
            sha.update(&x.value);
        }
        let digest = sha.finalize().into();
        if self.xattr_digests.len() < XATTR_DIGESTS_KEPT {
            self.xattr_digests.insert(inode.ino, digest);
        }
        digest
    }
}

/// The fields that differ, each with a note for the text form.
fn compare(left: &Entry, right: &Entry, owners: bool) -> Vec<(&'static str, String)> {
    let (x, y) = (&left.record, &right.record);
    let mut out = Vec::new();
    if x.kind != y.kind {
        out.push(("kind", format!("{:?} -> {:?}", x.kind, y.kind)));
        return out;
    }
    if x.mode != y.mode {
        out.push(("mode", format!("{:04o} -> {:04o}", x.mode, y.mode)));
    }
    if owners && x.uid != y.uid {
        out.push(("uid", format!("{} -> {}", x.uid, y.uid)));
    }
    if owners && x.gid != y.gid {
        out.push(("gid", format!("{} -> {}", x.gid, y.gid)));
    }
    // A directory's size is its blocks, which depend on how it was written, not on what it
    // holds; its entries are compared one by one instead.
    if x.kind != EntryKind::Directory && x.size != y.size {
        out.push(("size", format!("{} -> {}", x.size, y.size)));
    }
    if x.mtime != y.mtime {
        let t = |e: &LsEntry| show::time_string(e.mtime, true);
        out.push(("mtime", format!("{} -> {}", t(x), t(y))));
    }
    if x.target != y.target {
        let t = |t: &Option<Bytes>| {
            t.as_ref()
                .map_or(String::new(), |t| seedkit::quote::name(&t.0).to_string())
        };
        out.push(("target", format!("{} -> {}", t(&x.target), t(&y.target))));
    }
    if x.rdev != y.rdev {
        out.push(("rdev", String::new()));
    }
    if left.xattrs != right.xattrs {
        out.push(("xattrs", String::new()));
    }
    out
}

/// Where the differences go: lines, records or chosen fields on stdout.
struct Printer<'a> {
    args: &'a Args,
    out: BufWriter<io::StdoutLock<'static>>,
    found: u64,
}

impl Printer<'_> {
    fn print(&mut self, path: &[u8], change: Change, fields: &[(&str, String)]) -> Result<()> {
        self.found += 1;
        let record = LsDiff {
            path: Bytes(path.to_vec()),
            change,
            fields: fields.iter().map(|(f, _)| (*f).to_string()).collect(),
        };
        if self.args.json {
            emit(&mut self.out, &record)
        } else if let Some(f) = &self.args.format {
            f.write(&mut self.out, &record)
        } else {
            let word = match change {
                Change::Missing => "missing",
                Change::Extra => "extra",
                Change::Changed => "changed",
            };
            let mut line = format!("{word} {}", seedkit::quote::name(path));
            let details: Vec<String> = fields
                .iter()
                .map(|(f, note)| {
                    if note.is_empty() {
                        (*f).to_string()
                    } else {
                        format!("{f} {note}")
                    }
                })
                .collect();
            if !details.is_empty() {
                line = format!("{line} ({})", details.join(", "));
            }
            writeln!(self.out, "{line}")
        }
        .context("writing output")
    }
}

/// Compare the entry both sides have at the same path, and print what differs.
fn pair(
    first: &mut Side,
    second: &mut Side,
    comparer: &mut Comparer,
    out: &mut Printer,
) -> Result<()> {
    let (Some(left), Some(right)) = (first.take(), second.take()) else {
        return Ok(());
    };
    let path = &left.record.path.0;
    let mut fields = compare(&left, &right, !out.args.no_owner);
    let (x, y) = (&left.record, &right.record);
    if x.kind == EntryKind::File && y.kind == EntryKind::File && x.size == y.size {
        match comparer.same(&left.inode, &right.inode, x.size) {
            Ok(true) => {}
            Ok(false) => fields.push(("content", String::new())),
            Err(Failed::First(e)) => first.fail(path, &e),
            Err(Failed::Second(e)) => second.fail(path, &e),
        }
    }
    if fields.is_empty() {
        Ok(())
    } else {
        out.print(path, Change::Changed, &fields)
    }
}

/// Walk both sides together, printing each difference as it is found.
fn merge(a: &mut Side, b: &mut Side, comparer: &mut Comparer, out: &mut Printer) -> Result<()> {
    loop {
        // Past either image's budget its reads all fail: nothing could be concluded.
        a.source.check_budget()?;
        b.source.check_budget()?;
        let order = match (&a.head, &b.head) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => walk_order(x, y),
        };
        match order {
            Ordering::Less => {
                if let Some((path, _)) = a.head.take() {
                    a.advance();
                    out.print(&path, Change::Missing, &[])?;
                }
            }
            Ordering::Greater => {
                if let Some((path, _)) = b.head.take() {
                    b.advance();
                    out.print(&path, Change::Extra, &[])?;
                }
            }
            Ordering::Equal => pair(a, b, comparer, out)?,
        }
    }
}

pub fn run(args: &Args, other: &Path) -> Result<Status> {
    let first = Source::open(&args.image, args.dir.as_bytes(), true)?;
    let other_dir = args.diff_dir.as_deref().unwrap_or(&args.dir);
    let second = Source::open(other, other_dir.as_bytes(), true)?;
    let exclude: Vec<&[u8]> = args
        .exclude
        .iter()
        .map(|p| {
            let p = p.as_bytes();
            p.strip_prefix(b"./").unwrap_or(p)
        })
        .collect();
    let excluded = |path: &[u8]| {
        exclude.iter().any(|ex| {
            path.strip_prefix(*ex)
                .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
        })
    };
    let cancel = AtomicBool::new(false);
    let mut out = Printer {
        args,
        out: BufWriter::new(io::stdout().lock()),
        found: 0,
    };
    let failures = std::thread::scope(|scope| -> Result<u64> {
        let budgets = (data_budget(&first), data_budget(&second));
        let mut comparer = Comparer::start(scope, (&first.fs, &second.fs), budgets, &cancel);
        let mut a = Side::new(&first, &excluded);
        let mut b = Side::new(&second, &excluded);
        merge(&mut a, &mut b, &mut comparer, &mut out)?;
        Ok(a.failures + b.failures)
    })?;
    out.out.flush().context("writing output")?;
    if failures > 0 {
        bail!(
            "comparing {} with {}: {failures} entries could not be read",
            seedkit::quote(&first.image),
            seedkit::quote(other)
        );
    }
    Ok(Status::from_failures(out.found))
}
