//! `--diff`: the two directories walked whole, entries matched by path, and each
//! difference printed in path order. Contents are compared by SHA-256, and only for files
//! whose other fields agree on the size.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ext4fs::{Inode, Xattr};
use seedkit::json::Bytes;
use seedkit::records::emit;
use seedkit::records::{Change, EntryKind, LsDiff, LsEntry};
use seedkit::Status;

use crate::walk::{Event, Walk};
use crate::{entry_record, report, show, Args, Hasher, Source};

struct Side {
    record: LsEntry,
    xattrs: Vec<Xattr>,
    inode: Inode,
}

/// Every entry of a source's directory, itself as `.`, keyed by path; `Err` after reporting
/// each entry that could not be read.
fn collect(source: &Source, exclude: &[Vec<u8>]) -> (BTreeMap<Vec<u8>, Side>, u64) {
    let excluded = |path: &[u8]| {
        exclude.iter().any(|ex| {
            path.strip_prefix(ex.as_slice())
                .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
        })
    };
    let mut map = BTreeMap::new();
    let mut failures = 0;
    for event in Walk::new(&source.fs, source.inode.clone(), true, true) {
        match event {
            Event::Failure(path, message) => {
                if !excluded(&path) {
                    failures += 1;
                    report(&source.image, &path, &message);
                }
            }
            Event::Entry(path, inode) => {
                if excluded(&path) {
                    continue;
                }
                let mut problems = Vec::new();
                let record = entry_record(&source.fs, &path, &inode, None, &mut problems);
                for p in &problems {
                    failures += 1;
                    report(&source.image, &path, p);
                }
                if let Some((record, xattrs)) = record {
                    map.insert(
                        path,
                        Side {
                            record,
                            xattrs,
                            inode,
                        },
                    );
                }
            }
        }
    }
    (map, failures)
}

/// The fields that differ, each with a note for the text form.
fn compare(left: &Side, right: &Side, owners: bool) -> Vec<(&'static str, String)> {
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
        out.push((
            "mtime",
            format!(
                "{} -> {}",
                show::time_string(x.mtime, true),
                show::time_string(y.mtime, true)
            ),
        ));
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

pub fn run(args: &Args, other: &Path) -> Result<Status> {
    let first = Source::open(&args.image, args.dir.as_bytes(), true)?;
    let other_dir = args.diff_dir.as_deref().unwrap_or(&args.dir);
    let second = Source::open(other, other_dir.as_bytes(), true)?;
    let exclude: Vec<Vec<u8>> = args
        .exclude
        .iter()
        .map(|p| {
            let p = p.as_bytes();
            p.strip_prefix(b"./").unwrap_or(p).to_vec()
        })
        .collect();
    let (left, failures_a) = collect(&first, &exclude);
    let (right, failures_b) = collect(&second, &exclude);
    let mut hasher_a = Hasher::for_image(&first);
    let mut hasher_b = Hasher::for_image(&second);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut found = 0u64;
    let mut failures = failures_a + failures_b;
    let mut print = |path: &[u8], change: Change, fields: Vec<(&str, String)>| -> Result<()> {
        found += 1;
        let record = LsDiff {
            path: Bytes(path.to_vec()),
            change,
            fields: fields.iter().map(|(f, _)| (*f).to_string()).collect(),
        };
        if args.json {
            emit(&mut out, &record)
        } else if let Some(f) = &args.format {
            f.write(&mut out, &record)
        } else {
            let word = match change {
                Change::Missing => "missing",
                Change::Extra => "extra",
                Change::Changed => "changed",
            };
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
            let mut line = format!("{word} {}", seedkit::quote::name(path));
            if !details.is_empty() {
                line.push_str(" (");
                line.push_str(&details.join(", "));
                line.push(')');
            }
            line.push('\n');
            out.write_all(line.as_bytes())
        }
        .context("writing output")
    };
    let mut paths: Vec<&Vec<u8>> = left.keys().chain(right.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        match (left.get(path), right.get(path)) {
            (Some(_), None) => print(path, Change::Missing, Vec::new())?,
            (None, Some(_)) => print(path, Change::Extra, Vec::new())?,
            (Some(x), Some(y)) => {
                let mut fields = compare(x, y, !args.no_owner);
                let same_file = x.record.kind == EntryKind::File
                    && y.record.kind == EntryKind::File
                    && x.record.size == y.record.size;
                if same_file {
                    let hx = hasher_a.digest(&first.fs, &x.inode);
                    let hy = hasher_b.digest(&second.fs, &y.inode);
                    match (hx, hy) {
                        (Ok(hx), Ok(hy)) => {
                            if hx != hy {
                                fields.push(("content", String::new()));
                            }
                        }
                        (Err(e), _) => {
                            failures += 1;
                            report(&first.image, path, &e);
                        }
                        (_, Err(e)) => {
                            failures += 1;
                            report(&second.image, path, &e);
                        }
                    }
                }
                if !fields.is_empty() {
                    print(path, Change::Changed, fields)?;
                }
            }
            (None, None) => {}
        }
    }
    out.flush().context("writing output")?;
    drop(out);
    if failures > 0 {
        bail!(
            "comparing {} with {}: {failures} entries could not be read",
            seedkit::quote(&first.image),
            seedkit::quote(Path::new(OsStr::from_bytes(other.as_os_str().as_bytes())))
        );
    }
    Ok(if found == 0 {
        Status::Success
    } else {
        Status::Partial
    })
}
