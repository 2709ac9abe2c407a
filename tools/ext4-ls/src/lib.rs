//! `ext4-ls`: list a directory of an ext2/ext3/ext4 image without mounting or extracting
//! it, as `ls -l` and `tar -tv` do; or compare two directories of images (`--diff`).
//!
//! Reads IMAGE with the memory-safe `ext4fs`, read-only. Writes to stdout one line per
//! entry (`ls -l` columns, UTC times, names quoted for terminals), or with `--json` one
//! [`LsEntry`] record per entry, or with `--format` chosen fields of it; with `--diff`, one
//! line (or [`LsDiff`] record) per difference. A separate tool from `ext4-rdump` because it
//! writes nothing: no staging tree, no manifest, no destination to guard.
//!
//! Exit status: 0 success (with `--diff`: the directories agree); 1 some entries could not
//! be read, each reported (with `--diff`: differences found, each printed); 2 fatal error
//! (not an image, DIR missing; with `--diff`, also any entry that could not be read, since
//! then nothing can be concluded) or usage error.

#![forbid(unsafe_code)]

mod compare;
mod content;
mod diff;
pub mod digest;
pub mod show;
mod walk;

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ext4fs::{Fs, Inode, Time};
use seedkit::fields::Fields;
use seedkit::json::Bytes;
use seedkit::quote::quote_bytes;
use seedkit::records::emit;
use seedkit::records::{EntryKind, LsEntry, Rdev, Timestamp};
use seedkit::{quote, Status};

pub use content::Hasher;
use walk::{Event, Walk};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "List a directory of an ext2/ext3/ext4 image like ls -l, without mounting or extracting it",
    long_about = "List the entries of DIR (default /) of an ext2/ext3/ext4 image like ls -l and \
        tar -tv, without mounting it, without extracting it and without root: type and mode, \
        links, owner, size (or device numbers), mtime, name and symlink target. With --json, \
        one record per entry; with --diff, the differences between two directories.",
    after_help = "Exit status: 0 success (--diff: no difference), 1 some entries could not be \
        read (--diff: differences found), 2 fatal error or usage error.\n\n\
        Examples: ext4-ls -R rootfs.ext4 /root\n          \
        ext4-ls --diff seed.ext4 --diff-dir / --no-owner rootfs.ext4 /root"
)]
pub struct Args {
    /// The image file (ext2, ext3 or ext4).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// The directory of the image to list (symlinks inside the image are followed).
    #[arg(value_name = "DIR", default_value = "/")]
    pub dir: OsString,

    /// List the directories below DIR too, each entry with its path relative to DIR.
    #[arg(short = 'R', long)]
    pub recursive: bool,

    /// List DIR itself (as `.`), not its entries.
    #[arg(short = 'd', long, conflicts_with = "recursive")]
    pub directory: bool,

    /// Show times with seconds, nanoseconds and the zone (always UTC).
    #[arg(long)]
    pub full_time: bool,

    /// Print one JSON record per entry instead of a line.
    #[arg(long)]
    pub json: bool,

    /// Print only these fields of the --json record, tab-separated (for example
    /// `path,mode,size`), for shell scripts.
    #[arg(long, value_name = "FIELDS", conflicts_with = "json")]
    pub format: Option<Fields>,

    /// Add each regular file's content digest to the records (`digest`): its SHA-256, as
    /// sha256sum prints it, except that each run of all-zero 4 KiB pieces counts as a short
    /// record (so holes cost nothing).
    #[arg(long)]
    pub hash: bool,

    /// Compare DIR of IMAGE with a directory of OTHER: print each entry missing from OTHER,
    /// extra in OTHER or changed (type, mode, owner, size, mtime, target, device, xattrs,
    /// content); exit 1 when there is any.
    #[arg(long, value_name = "OTHER")]
    pub diff: Option<PathBuf>,

    /// The directory of OTHER to compare with (default: DIR).
    #[arg(long, value_name = "DIR", requires = "diff")]
    pub diff_dir: Option<OsString>,

    /// With --diff, do not compare owners and groups.
    #[arg(long, requires = "diff")]
    pub no_owner: bool,

    /// With --diff, leave out this path (relative to the directories, as listed), on both
    /// sides; may be repeated.
    #[arg(long, value_name = "PATH", requires = "diff")]
    pub exclude: Vec<OsString>,
}

/// An opened image and the directory to walk.
pub struct Source {
    pub image: PathBuf,
    /// The image file's length in bytes (0 for a block device).
    pub len: u64,
    pub fs: Fs,
    pub dir: Vec<u8>,
    pub inode: Inode,
}

impl Source {
    /// Open `image` and find `dir` in it (following symlinks, as `ls DIR/` does).
    pub fn open(image: &Path, dir: &[u8], want_dir: bool) -> Result<Source> {
        let file = seedkit::sys::open_image(image, false)
            .with_context(|| format!("opening {}", quote(image)))?;
        let len = file.metadata().map_or(0, |m| m.len());
        let fs = Fs::open(file).with_context(|| format!("reading {}", quote(image)))?;
        let shown = quote_bytes(dir);
        let ino = fs
            .lookup(dir)
            .with_context(|| format!("finding {shown} in {}", quote(image)))?;
        let inode = fs
            .inode(ino)
            .with_context(|| format!("reading {shown} in {}", quote(image)))?;
        if want_dir && inode.kind() != Some(EntryKind::Directory) {
            bail!("listing {shown} in {}: Not a directory", quote(image));
        }
        if fs.needs_recovery() {
            seedkit::warn(format_args!(
                "{}: the journal needs recovery; reading the file system as it is",
                quote(image)
            ));
        }
        Ok(Source {
            image: image.to_path_buf(),
            len,
            fs,
            dir: dir.to_vec(),
            inode,
        })
    }
}

impl Source {
    /// `Err` (fatal) once reading the image has passed its work budget: every read fails
    /// from then on, and what is listed or compared would be incomplete.
    pub fn check_budget(&self) -> Result<()> {
        self.fs
            .check_budget()
            .with_context(|| format!("reading {}", quote(&self.image)))
    }
}

fn timestamp(t: Time) -> Timestamp {
    Timestamp {
        sec: t.sec,
        nsec: t.nsec,
    }
}

/// The record of one entry without its xattr names and digest; problems reading parts of
/// it (the target) are pushed to `problems`, and the rest is kept.
pub fn base_record(
    fs: &Fs,
    path: &[u8],
    inode: &Inode,
    problems: &mut Vec<String>,
) -> Option<LsEntry> {
    let Some(kind) = EntryKind::from_mode(u32::from(inode.mode)) else {
        problems.push(format!("unknown file type in mode {:o}", inode.mode));
        return None;
    };
    let target = if kind == EntryKind::Symlink {
        match fs.symlink_target(inode) {
            Ok(t) => Some(Bytes(t)),
            Err(e) => {
                problems.push(format!("reading the symlink target: {e}"));
                None
            }
        }
    } else {
        None
    };
    let rdev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice).then(|| {
        let (major, minor) = inode.rdev();
        Rdev { major, minor }
    });
    Some(LsEntry {
        path: Bytes(path.to_vec()),
        kind,
        mode: inode.permissions(),
        uid: inode.uid,
        gid: inode.gid,
        ino: inode.ino.get(),
        links: u32::from(inode.links_count),
        size: inode.size,
        atime: timestamp(inode.atime),
        mtime: timestamp(inode.mtime),
        ctime: timestamp(inode.ctime),
        crtime: inode.crtime.map(timestamp),
        target,
        rdev,
        xattrs: Vec::new(),
        digest: None,
    })
}

/// The record of one entry as listed: [`base_record`], the names of its xattrs and with
/// `hash` its content digest; problems reading parts of it are pushed to `problems`, and
/// the rest is kept.
pub fn entry_record(
    fs: &Fs,
    path: &[u8],
    inode: &Inode,
    hash: Option<&mut Hasher>,
    problems: &mut Vec<String>,
) -> Option<LsEntry> {
    let mut record = base_record(fs, path, inode, problems)?;
    let (xattrs, error) = fs.xattrs_lenient(inode);
    if let Some(e) = error {
        problems.push(format!("reading extended attributes: {e}"));
    }
    record.xattrs = xattrs.into_iter().map(|x| Bytes(x.name)).collect();
    if let Some(hasher) = hash.filter(|_| record.kind == EntryKind::File) {
        match hasher.digest(fs, inode) {
            Ok(d) => record.digest = Some(digest::hex(&d)),
            Err(e) => problems.push(e),
        }
    }
    Some(record)
}

pub fn run(args: &Args) -> Result<Status> {
    if let Some(other) = &args.diff {
        return diff::run(args, other);
    }
    let source = Source::open(&args.image, args.dir.as_bytes(), false)?;
    let listing_dir = !args.directory && source.inode.kind() == Some(EntryKind::Directory);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut hasher = Hasher::for_image(&source);
    let mut failures = 0u64;
    let events: Box<dyn Iterator<Item = Event>> = if listing_dir {
        Box::new(Walk::new(
            &source.fs,
            source.inode.clone(),
            args.recursive,
            false,
        ))
    } else {
        // A single entry: DIR itself with -d, or a DIR that is not a directory, as ls does.
        let name = if args.directory {
            b".".to_vec()
        } else {
            source.dir.clone()
        };
        Box::new(std::iter::once(Event::Entry(name, source.inode.clone())))
    };
    for event in events {
        source.check_budget()?;
        let (path, inode) = match event {
            Event::Entry(path, inode) => (path, inode),
            Event::Failure(path, message) => {
                failures += 1;
                report(&source.image, &path, &message);
                continue;
            }
        };
        let mut problems = Vec::new();
        let hash = args.hash.then_some(&mut hasher);
        let record = entry_record(&source.fs, &path, &inode, hash, &mut problems);
        source.check_budget()?;
        for p in &problems {
            failures += 1;
            report(&source.image, &path, p);
        }
        let Some(record) = record else { continue };
        if args.json {
            emit(&mut out, &record)
        } else if let Some(fields) = &args.format {
            fields.write(&mut out, &record)
        } else {
            out.write_all(show::long_line(&record, &path, args.full_time).as_bytes())
        }
        .context("writing output")?;
    }
    out.flush().context("writing output")?;
    Ok(Status::from_failures(failures))
}

fn report(image: &Path, path: &[u8], message: &str) {
    let shown = if path.is_empty() { &b"."[..] } else { path };
    seedkit::warn(format_args!(
        "listing {} in {}: {message}",
        quote_bytes(shown),
        quote(image)
    ));
}
