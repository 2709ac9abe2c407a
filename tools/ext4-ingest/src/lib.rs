//! `ext4-ingest`: write a host tree into an existing ext4 image, every entry owned root:root.
//!
//! Reads TREE (argument, or stdin: a path line or a JSON record with `path`) through
//! directory descriptors, never following symlinks nor opening fifos or devices, in
//! bytewise-sorted order, at any depth; each regular file is opened once by the walk and
//! checked to be the file it saw, and its bytes are copied through that descriptor straight
//! into the image's blocks; when `TREE.manifest.jsonl` (written by `ext4-rdump`) is there
//! and is the caller's own (owned by the caller or root, writable by no one else, not a
//! symlink: [`seedkit::records::manifest::ManifestReader::beside`]; another is refused),
//! or `--manifest` names one, takes from it what the host tree cannot hold (true modes,
//! devices, xattrs, recorded times, entries not staged). With `--from-tar`, reads a tar
//! stream instead ([`tarball`] reads it, `from_tar` places its members in the stream's
//! order).
//!
//! Writes IMAGE (made by `mkfs.ext4`, `mkfs.ext3` or `mkfs.ext2`) with the workspace's own
//! ext4 writer ([`ext4fs::write`], driven by [`write`]): walk and manifest merge, then
//! each entry written as it comes, each directory's blocks (hash-indexed beyond one block)
//! when the walk leaves it. The image is locked (`flock`) during the run, and flushed
//! (`fsync`) before success is reported, unless `--no-sync`. Stdout: the `--json` summary
//! only.
//!
//! Exit status: 0 every entry written (and verified with `--verify`); 1 the image was
//! written but some entries were reported and left out (invalid names); 2 usage or fatal
//! error, including every failure while writing: the image is then unusable and must be
//! rebuilt.

#![forbid(unsafe_code)]

mod digest;
mod from_image;
mod from_tar;
mod source;
pub mod tarball;
pub mod tree;
pub mod verify;
pub mod write;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use nix::fcntl::{Flock, FlockArg};
use seedkit::json::Bytes;
use seedkit::progress::Progress;
use seedkit::records::manifest::ManifestReader;
use seedkit::records::EntryKind;
use seedkit::{quote, warn, Status};

use crate::source::{EntrySource, HostTree};
use crate::tree::{display_key, Walked};
use crate::write::{ImageWriter, Owner};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Write a host tree or a tar stream into an existing ext4 image, every entry owned root:root",
    long_about = "Write TREE into IMAGE (an ext4 image made by mkfs.ext4) as an ordinary user: \
        every entry owned root:root, everything else kept (modes, times to the nanosecond, \
        hard links, holes, symlinks, fifos, devices and xattrs from an ext4-rdump manifest). \
        The image is written by the toolkit's own ext4 writer; directories beyond one block \
        are hash-indexed; any failure stops the run and is reported with the entry.",
    after_help = "Exit status: 0 success, 1 some entries were reported and left out, \
        2 usage or fatal error (the image is then unusable: build into a temporary file).\n\n\
        Example: mkfs.ext4 -q seed.img 512M && ext4-ingest seed.img ./home"
)]
pub struct Args {
    /// The ext4 image to write into.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// The directory to write; `-` or none reads a path or JSON record from stdin. With
    /// --from-image or --from-tar, the directory of that image or stream (default: all of
    /// it), which becomes the image's root.
    #[arg(value_name = "TREE")]
    pub tree: Option<OsString>,

    /// Write directory TREE (default /) of this ext2/3/4 image instead of a host tree, read
    /// with the toolkit's reader, its file data moved image to image (copy_file_range).
    #[arg(
        long,
        value_name = "SOURCE",
        conflicts_with_all = ["from_tar", "manifest", "no_manifest"]
    )]
    pub from_image: Option<PathBuf>,

    /// Write the members of this tar stream (`-`: standard input) instead of a tree: POSIX
    /// pax, GNU or ustar, GNU sparse files, xattrs, hard links, devices.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["manifest", "no_manifest"]
    )]
    pub from_tar: Option<OsString>,

    /// With --from-image or --from-tar: a TREE the source lacks writes nothing (the image's
    /// root stays as mkfs.ext4 made it) instead of failing; `--json` says `"missing": true`.
    #[arg(long)]
    pub missing_ok: bool,

    /// Give every entry this owner instead of 0:0 (numeric UID:GID).
    #[arg(long, value_name = "UID:GID", conflicts_with = "preserve_owner")]
    pub owner: Option<String>,

    /// Keep the owners recorded in the manifest, or those of the tree.
    #[arg(long)]
    pub preserve_owner: bool,

    /// Read this manifest instead of TREE.manifest.jsonl (which is read only when it is
    /// yours, or root's, and no one else may write it).
    #[arg(long, value_name = "FILE", conflicts_with = "no_manifest")]
    pub manifest: Option<PathBuf>,

    /// Ignore any manifest: take everything from the tree.
    #[arg(long)]
    pub no_manifest: bool,

    /// Read the image back and compare every entry with the source, then run e2fsck -fn.
    #[arg(long)]
    pub verify: bool,

    /// Do not flush the image to stable storage before reporting success (for a caller
    /// that flushes it itself, as work-seed does before it publishes the seed).
    #[arg(long)]
    pub no_sync: bool,

    /// Print a JSON summary record on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print each entry written on stderr.
    #[arg(short, long)]
    pub verbose: bool,

    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// Validated settings.
struct Config {
    image: PathBuf,
    source: Box<dyn EntrySource>,
    /// The path the record names: the tree, the tar file or `-`.
    tree: PathBuf,
    /// Whether the source is a host tree (the only one a manifest goes with).
    host_tree: bool,
    owner: Owner,
}

fn parse_owner(text: &str) -> Result<(u32, u32)> {
    let parse = || -> Option<(u32, u32)> {
        let (u, g) = text.split_once(':')?;
        Some((u.parse().ok()?, g.parse().ok()?))
    };
    parse().with_context(|| format!("--owner {text:?}: expected numeric UID:GID"))
}

impl Config {
    fn new(args: &Args) -> Result<Config> {
        let owner = match (&args.owner, args.preserve_owner) {
            (_, true) => Owner::Preserve,
            (Some(o), false) => {
                let (u, g) = parse_owner(o)?;
                Owner::Fixed(u, g)
            }
            (None, false) => Owner::Fixed(0, 0),
        };
        if args.missing_ok && args.from_image.is_none() && args.from_tar.is_none() {
            bail!("--missing-ok goes with --from-image or --from-tar");
        }
        if let Some(tar) = &args.from_tar {
            let file = (tar != "-").then(|| PathBuf::from(tar));
            let within = args.tree.as_deref().map_or(&b""[..], |d| d.as_bytes());
            return Ok(Config {
                image: args.image.clone(),
                tree: PathBuf::from(tar),
                source: Box::new(from_tar::TarFile {
                    file,
                    within: within.to_vec(),
                    missing_ok: args.missing_ok,
                }),
                host_tree: false,
                owner,
            });
        }
        if let Some(image) = &args.from_image {
            let dir = args.tree.as_deref().map_or(&b"/"[..], |d| d.as_bytes());
            return Ok(Config {
                image: args.image.clone(),
                tree: image.clone(),
                source: Box::new(from_image::ImageSource {
                    image: image.clone(),
                    dir: dir.to_vec(),
                    missing_ok: args.missing_ok,
                }),
                host_tree: false,
                owner,
            });
        }
        let tree = seedkit::input::resolve(args.tree.as_deref())?;
        Ok(Config {
            image: args.image.clone(),
            source: Box::new(HostTree { root: tree.clone() }),
            tree,
            host_tree: true,
            owner,
        })
    }

    /// The manifest's entries: `--manifest`'s, or those beside the tree when it is the
    /// caller's own (refused otherwise); none with `--no-manifest`.
    fn manifest(&self, args: &Args) -> Result<Option<Vec<seedkit::records::ManifestEntry>>> {
        let reader = if args.no_manifest || !self.host_tree {
            None
        } else if let Some(m) = &args.manifest {
            Some(ManifestReader::open(m)?)
        } else {
            ManifestReader::beside(&self.tree)?
        };
        reader.map(ManifestReader::entries).transpose()
    }
}

/// The fixed time for a ctime or crtime the source does not give (when the mtime cannot
/// stand for it): SOURCE_DATE_EPOCH, else E2FSPROGS_FAKE_TIME, else the image's creation
/// time (so the same image and tree always give the same result).
fn fixed_time(sb: &ext4fs::Superblock) -> i64 {
    for var in ["SOURCE_DATE_EPOCH", "E2FSPROGS_FAKE_TIME"] {
        if let Some(t) = std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            if t > 0 {
                return t;
            }
        }
    }
    match (sb.mkfs_time, sb.write_time) {
        (0, 0) => 1,
        (0, w) => i64::from(w),
        (m, _) => i64::from(m),
    }
}

/// A source that is the image being written would be read while it is overwritten.
fn refuse_self_source(config: &Config, image: &File) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(path) = config.source.file() else {
        return Ok(());
    };
    let Ok(source) = std::fs::metadata(path) else {
        return Ok(());
    };
    let image = image
        .metadata()
        .with_context(|| format!("reading the image {}", quote(&config.image)))?;
    if (source.dev(), source.ino()) == (image.dev(), image.ino()) {
        bail!("reading {}: it is the image being written", quote(path));
    }
    Ok(())
}

/// Open and lock `path` (`flock`, so two runs cannot interleave), refusing anything that is
/// not a regular file holding an ext2/3/4 file system.
fn lock(path: &Path) -> Result<(Flock<File>, ext4fs::Superblock)> {
    let what = || format!("opening the image {}", quote(path));
    let file = seedkit::sys::open_image(path, true).with_context(what)?;
    if !file.metadata().with_context(what)?.is_file() {
        bail!(
            "opening the image {}: a block device, not a regular file",
            quote(path)
        );
    }
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
            "locking the image {}: another process holds it (is another ext4-ingest writing it?)",
            quote(path)
        ),
        Err((_, e)) => {
            return Err(io::Error::from(e))
                .with_context(|| format!("locking the image {}", quote(path)))
        }
    };
    let fs = ext4fs::Fs::open(file.try_clone().with_context(what)?).map_err(|e| {
        anyhow::anyhow!(
            "reading the image {}: not an ext4 file system: {e}",
            quote(path)
        )
    })?;
    let sb = fs.superblock().clone();
    Ok((file, sb))
}

/// What the main thread does with each piece of the walk.
pub(crate) struct Ingest<'a> {
    writer: ImageWriter<'a>,
    merger: Option<tree::Merger>,
    /// Every entry, for `--verify` (empty without it).
    entries: BTreeMap<tree::Key, tree::Entry>,
    /// The digests of the regular files of a source read once (a tar stream), for
    /// `--verify`.
    digests: HashMap<tree::Key, u64>,
    keep_entries: bool,
    /// Directories written (for manifest entries, whose parent must be one).
    dirs: HashSet<tree::Key>,
    rejected: Vec<(tree::Key, String)>,
    /// Members of a tar stream left out whose name holds an earlier member (written):
    /// reported like the rejected, not left out of `--verify`.
    duplicates: Vec<(tree::Key, String)>,
    progress: Progress,
    verbose: bool,
    written: u64,
    /// The source lacks the directory asked for, and `--missing-ok` let it write nothing.
    missing: bool,
}

impl Ingest<'_> {
    fn rejected_under(&self, key: &tree::Key) -> bool {
        self.rejected.iter().any(|(r, _)| key.starts_with(r))
    }

    pub(crate) fn take(&mut self, item: Walked) -> Result<()> {
        match item {
            Walked::Children(key, names) => {
                if key.is_root() {
                    self.check_top(&names)?;
                }
            }
            Walked::Rejected(key, why) => {
                if let Some(m) = self.merger.as_mut() {
                    m.drop_under(&key);
                }
                self.rejected.push((key, why));
            }
            Walked::Entry(key, mut e, file) => {
                let only = self
                    .merger
                    .as_mut()
                    .map(|m| m.before(Some(&key)))
                    .unwrap_or_default();
                for (k, m) in only {
                    self.manifest_only(k, &m)?;
                }
                if let Some(m) = self.merger.as_mut() {
                    m.apply_host(&key, &mut e)?;
                }
                // A manifest may make it a node that is not read (a fifo): then it is closed.
                let file = file.filter(|_| e.host && e.kind == EntryKind::File);
                self.add(&key, e, file)?;
            }
        }
        Ok(())
    }

    /// An entry the manifest recorded and the host tree does not hold.
    fn manifest_only(&mut self, key: tree::Key, m: &seedkit::records::ManifestEntry) -> Result<()> {
        if self.rejected_under(&key) {
            return Ok(());
        }
        if !key.parent().is_some_and(|p| self.dirs.contains(p)) {
            bail!(
                "the manifest lists {} but not its parent directory",
                quote(&display_key(&key))
            );
        }
        if key.depth() == 1 {
            self.check_top(&[key.as_bytes().to_vec()])?;
        }
        match tree::from_manifest(&key, m)? {
            Ok(e) => self.add(&key, e, None),
            Err(why) => {
                self.rejected.push((key, why));
                Ok(())
            }
        }
    }

    /// Refuse top-level names the image already holds (a `lost+found` directory aside),
    /// before anything is written.
    fn check_top(&self, names: &[Vec<u8>]) -> Result<()> {
        let root = self.writer.image_root();
        for name in names {
            if name == b"lost+found" || !root.contains(name) {
                continue;
            }
            bail!(
                "writing {} into {}: the image already holds an entry of that name (refusing to overwrite it)",
                quote(&display_key(&tree::Key::from_names([name]))),
                quote(self.writer.image())
            );
        }
        Ok(())
    }

    fn add(&mut self, key: &tree::Key, e: tree::Entry, file: Option<tree::HostFile>) -> Result<()> {
        if self.rejected_under(key) {
            return Ok(());
        }
        let shown = display_key(key);
        match file {
            Some(file) => {
                let mut fd = file.fd();
                self.writer.add(key, &e, Some(&mut fd))?;
                file.close(&shown)?;
            }
            None => self.writer.add(key, &e, None)?,
        }
        if e.kind == EntryKind::Directory {
            self.dirs.insert(key.clone());
        }
        self.written(key, e);
        Ok(())
    }

    /// An entry is in the image: say so (`-v`), count it, keep it for `--verify`.
    pub(crate) fn written(&mut self, key: &tree::Key, e: tree::Entry) {
        self.written += 1;
        if self.verbose && !key.is_root() {
            seedkit::inform(format_args!("wrote {}", quote(&display_key(key))));
        }
        let written = self.written;
        self.progress
            .update(|| format!("ext4-ingest: {written} entries written"));
        if self.keep_entries {
            self.entries.insert(key.clone(), e);
        }
    }

    /// An entry written already took new attributes (a tar stream's later member).
    pub(crate) fn rewritten(&mut self, key: &tree::Key, e: tree::Entry) {
        if self.keep_entries {
            self.entries.insert(key.clone(), e);
        }
    }

    /// An entry left out, reported at the end (exit 1).
    pub(crate) fn refuse(&mut self, key: &tree::Key, why: String) {
        self.rejected.push((key.clone(), why));
    }

    /// An entry whose name is not one the tree can hold, left out.
    pub(crate) fn refuse_raw(&mut self, path: &[u8], why: String) {
        let key = tree::Key::for_display(path);
        self.rejected.push((key, why));
    }
}

impl Ingest<'_> {
    /// The manifest's entries the walk never reached (all after its last entry).
    pub(crate) fn manifest_rest(&mut self) -> Result<()> {
        let rest = self
            .merger
            .as_mut()
            .map(|m| m.before(None))
            .unwrap_or_default();
        rest.into_iter()
            .try_for_each(|(k, m)| self.manifest_only(k, &m))
    }
}

fn emit_record(record: &seedkit::records::Ingest) -> Result<()> {
    let mut out = io::stdout().lock();
    seedkit::records::emit(&mut out, record).context("writing output")?;
    out.flush().context("writing output")
}

impl<'a> Ingest<'a> {
    fn new(writer: ImageWriter<'a>, manifest: Option<tree::Merger>, args: &Args) -> Ingest<'a> {
        Ingest {
            writer,
            rejected: manifest
                .as_ref()
                .map(|m| m.rejected.clone())
                .unwrap_or_default(),
            merger: manifest,
            duplicates: Vec::new(),
            entries: BTreeMap::new(),
            digests: HashMap::new(),
            keep_entries: args.verify,
            dirs: HashSet::new(),
            progress: if args.progress {
                Progress::with_enabled(true)
            } else {
                Progress::new()
            },
            verbose: args.verbose,
            written: 0,
            missing: false,
        }
    }
}

/// The writer's last steps after the source fed it (`done`): what it wrote and what it
/// refused. A failure once writing started leaves the image unusable, and says so.
fn finish(
    writer: ImageWriter<'_>,
    done: Result<()>,
    image_path: &Path,
) -> Result<(write::Counts, Vec<(tree::Key, String)>)> {
    let started_writing = writer.started();
    done.and_then(|()| writer.finish()).map_err(|e| {
        let line = seedkit::cli::error_line(&e);
        if started_writing && !line.contains("unusable") {
            anyhow::anyhow!(
                "{line}; the image {} is unusable, rebuild it",
                quote(image_path)
            )
        } else {
            e
        }
    })
}

pub fn run(args: &Args) -> Result<Status> {
    let started = Instant::now();
    let mut config = Config::new(args)?;
    let image_path = &config.image;
    let (locked, sb) = lock(image_path)?;
    refuse_self_source(&config, &locked)?;
    let time = fixed_time(&sb);
    let manifest = match config.manifest(args)? {
        Some(entries) => Some(tree::Merger::new(entries)?),
        None => None,
    };
    let file = locked
        .try_clone()
        .with_context(|| format!("opening the image {}", quote(image_path)))?;
    let writer = ImageWriter::new(image_path, file, config.owner, time)?;
    let root_names: Vec<(Vec<u8>, ext4fs::Ino)> = writer.image_root_inodes();
    let mut ingest = Ingest::new(writer, manifest, args);
    let done = config.source.feed(&mut ingest);
    let Ingest {
        writer,
        entries,
        digests,
        rejected: walk_rejected,
        duplicates,
        missing,
        ..
    } = ingest;
    let (counts, writer_rejected) = finish(writer, done, image_path)?;
    if !args.no_sync {
        // What was written is on stable storage before anyone is told it is there.
        locked
            .sync_all()
            .with_context(|| format!("flushing the image {}", quote(image_path)))?;
    }
    let mut rejected = walk_rejected;
    rejected.extend(writer_rejected);
    let mut verified = false;
    if args.verify {
        tree::test_pause("written", image_path);
        let source = verify::Expected {
            entries: &entries,
            digests: &digests,
            rejected: &rejected,
            image_root: &root_names,
        };
        verify::verify(image_path, &source, &config)?;
        verified = true;
    }
    rejected.extend(duplicates);
    for (key, why) in &rejected {
        warn(format_args!(
            "not written: {}: {why}",
            quote(&display_key(key))
        ));
    }

    if args.json {
        let record = seedkit::records::Ingest {
            image: Bytes::from(image_path.as_path()),
            path: Bytes::from(config.tree.as_path()),
            counts: counts.tree,
            inodes_used: counts.inodes,
            indexed_directories: counts.indexed_directories,
            failures: rejected.len() as u64,
            missing,
            verified,
            seconds: started.elapsed().as_secs_f64(),
        };
        emit_record(&record)?;
    }
    drop(locked);
    Ok(Status::from_failures(rejected.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_numeric_uid_colon_gid() {
        assert_eq!(parse_owner("0:0").unwrap(), (0, 0));
        assert_eq!(parse_owner("1000:70000").unwrap(), (1000, 70000));
        assert!(parse_owner("root:root").is_err());
        assert!(parse_owner("5").is_err());
    }
}
