//! `ext4-ingest`: write a host tree into an existing ext4 image, every entry owned root:root.
//!
//! Reads TREE (argument, or stdin: a path line or a JSON record with `path`) through
//! directory descriptors, never following symlinks nor opening fifos or devices, in
//! bytewise-sorted order, at any depth; each regular file is opened once by the walk and
//! checked to be the file it saw, and debugfs reads it through that descriptor; when
//! `TREE.manifest.jsonl` (written by `ext4-rdump`) is there, takes from it what the host tree
//! cannot hold (true modes, devices, xattrs, recorded times, entries not staged).
//!
//! Writes IMAGE (made by `mkfs.ext4`) with ONE `debugfs -w -f -` process fed a script
//! generated as the tree is walked (see [`script`]); new inodes are named by
//! number from a model of libext2fs's allocator ([`image::Allocator`]), checked against what
//! debugfs reports. Names holding a newline or CR are renamed into place afterwards with two
//! `debugfs -w -R` calls each. The image is locked (`flock`) during the run. Success is read
//! from debugfs's output, command by command ([`debugfs`]). Stdout: the `--json` summary only.
//!
//! Exit status: 0 every entry written (and verified with `--verify`); 1 the image was
//! written but some entries were reported and left out (invalid names, sockets); 2 usage or
//! fatal error, including every failure while writing: the image is then unusable and must
//! be rebuilt.

pub mod debugfs;
pub mod image;
pub mod script;
pub mod tree;
pub mod verify;
pub mod write;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use seedkit::json::{emit, Bytes};
use seedkit::progress::Progress;
use seedkit::records::manifest::manifest_path;
use seedkit::records::EntryKind;
use seedkit::{quote, warn, Status};

use crate::debugfs::Outcome;
use crate::script::Owner;
use crate::tree::{display_key, Walked};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Write a host tree into an existing ext4 image, every entry owned root:root, with one debugfs process",
    long_about = "Write TREE into IMAGE (an ext4 image made by mkfs.ext4) as an ordinary user: \
        every entry owned root:root, everything else kept (modes, times to the nanosecond, \
        hard links, holes, symlinks, fifos, devices and xattrs from an ext4-rdump manifest). \
        One debugfs process writes the whole tree from a generated script; any failure stops \
        the run and is reported with the entry and debugfs's message.",
    after_help = "Exit status: 0 success, 1 some entries were reported and left out, \
        2 usage or fatal error (the image is then unusable: build into a temporary file).\n\n\
        Example: mkfs.ext4 -q seed.img 512M && ext4-ingest seed.img ./home"
)]
pub struct Args {
    /// The ext4 image to write into.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// The directory to write; `-` or none reads a path or JSON record from stdin.
    #[arg(value_name = "TREE")]
    pub tree: Option<OsString>,

    /// Give every entry this owner instead of 0:0 (numeric UID:GID).
    #[arg(long, value_name = "UID:GID", conflicts_with = "preserve_owner")]
    pub owner: Option<String>,

    /// Keep the owners recorded in the manifest, or those of the tree.
    #[arg(long)]
    pub preserve_owner: bool,

    /// Read this manifest instead of TREE.manifest.jsonl.
    #[arg(long, value_name = "FILE", conflicts_with = "no_manifest")]
    pub manifest: Option<PathBuf>,

    /// Ignore any manifest: take everything from the tree.
    #[arg(long)]
    pub no_manifest: bool,

    /// Read the image back and compare every entry with the source, then run e2fsck -fn.
    #[arg(long)]
    pub verify: bool,

    /// Print a JSON summary record on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print each entry written, and the debugfs runs, on stderr.
    #[arg(short, long)]
    pub verbose: bool,

    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// Host files held open at most while debugfs has not read them yet (fewer when the
/// descriptor limit is low).
const OPEN_FILES: usize = 256;

/// Validated settings.
struct Config {
    image: PathBuf,
    tree: PathBuf,
    owner: Owner,
    manifest: Option<PathBuf>,
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
        let tree = seedkit::input::resolve(args.tree.as_deref())?;
        let owner = match (&args.owner, args.preserve_owner) {
            (_, true) => Owner::Preserve,
            (Some(o), false) => {
                let (u, g) = parse_owner(o)?;
                Owner::Fixed(u, g)
            }
            (None, false) => Owner::Fixed(0, 0),
        };
        let manifest = if args.no_manifest {
            None
        } else if let Some(m) = &args.manifest {
            Some(m.clone())
        } else {
            let m = manifest_path(strip_slashes(&tree));
            m.is_file().then_some(m)
        };
        Ok(Config {
            image: args.image.clone(),
            tree,
            owner,
            manifest,
        })
    }
}

/// `tree/` and `tree` have one manifest, `tree.manifest.jsonl`.
fn strip_slashes(p: &Path) -> &Path {
    let b = p.as_os_str().as_bytes();
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    Path::new(std::ffi::OsStr::from_bytes(&b[..end]))
}

/// A private scratch directory (script, xattr values), removed when dropped.
struct Stage(PathBuf);

impl Stage {
    fn new() -> Result<Stage> {
        let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let path = nix::unistd::mkdtemp(&base.join("ext4-ingest.XXXXXX"))
            .with_context(|| format!("creating a temporary directory in {}", quote(&base)))?;
        Ok(Stage(path))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixed time for new inodes and the superblock: SOURCE_DATE_EPOCH, else
/// E2FSPROGS_FAKE_TIME, else the image's creation time (so the same image and tree always
/// give the same result).
fn fixed_time(sb: &image::Superblock) -> i64 {
    for var in ["SOURCE_DATE_EPOCH", "E2FSPROGS_FAKE_TIME"] {
        if let Some(t) = std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            // debugfs treats 0 as "unset" (§5).
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

/// What debugfs said, for an error line: it quotes the tenant's names back raw, so every
/// control byte (escape sequences, newlines) is shown escaped, never sent to a terminal.
fn said(message: &[u8]) -> String {
    let text = seedkit::quote::quote_bytes(message.trim_ascii_end()).to_string();
    // Without the quotes around it: it is a message, not a name.
    text[1..text.len() - 1].to_string()
}

/// The names in the image's root directory (`ls -p /`).
fn image_root(image: &Path, time: i64) -> Result<Vec<(Vec<u8>, u32)>> {
    let (out, failed) = debugfs::run_request(image, b"ls -p /", false, time)?;
    if let Some(msg) = failed {
        bail!(
            "reading the image {}: debugfs: {}",
            quote(image),
            said(&msg)
        );
    }
    // Lines are `/ino/mode/uid/gid/name/size/`; names hold no slash.
    let mut names = Vec::new();
    for line in out.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b'/').collect();
        if fields.len() == 8 && fields[5] != b"." && fields[5] != b".." {
            let ino = std::str::from_utf8(fields[1])
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            names.push((fields[5].to_vec(), ino));
        }
    }
    Ok(names)
}

/// What the main thread does with each piece of the walk.
struct Ingest<'a> {
    image: &'a Path,
    planner: script::Planner<'a>,
    merger: Option<tree::Merger>,
    entries: BTreeMap<tree::Key, tree::Entry>,
    rejected: Vec<(tree::Key, String)>,
    session: Option<debugfs::Session>,
    stage: &'a Path,
    time: i64,
    /// Commands stop going to debugfs once this is set (the run failed or the image is
    /// out of inodes); the walk goes on to count what the tree needs.
    failed: Option<Outcome>,
    polled: usize,
    progress: Progress,
    /// Whether the image can hold xattrs.
    ext_attr: bool,
    /// Host files opened by the walk that debugfs has yet to read: the index of the line
    /// that reads each, the file, its path for messages.
    files: VecDeque<(usize, tree::HostFile, PathBuf)>,
    open_files: usize,
}

impl Ingest<'_> {
    fn rejected_under(&self, key: &tree::Key) -> bool {
        self.rejected.iter().any(|(r, _)| key.starts_with(r))
    }

    fn take(&mut self, item: Walked) -> Result<()> {
        match item {
            Walked::Children(key, names) => {
                if key.is_empty() {
                    self.check_top(&names)?;
                }
                self.planner.children(key, names);
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
                let file = file.filter(|_| e.host.is_some());
                self.add(key, e, file)?;
            }
        }
        Ok(())
    }

    /// An entry the manifest recorded and the host tree does not hold.
    fn manifest_only(&mut self, key: tree::Key, m: &seedkit::records::ManifestEntry) -> Result<()> {
        if self.rejected_under(&key) {
            return Ok(());
        }
        let parent_ok = !key.is_empty()
            && self
                .entries
                .get(&key[..key.len() - 1])
                .is_some_and(|p| p.kind == EntryKind::Directory);
        if !parent_ok {
            bail!(
                "the manifest lists {} but not its parent directory",
                quote(&display_key(&key))
            );
        }
        if key.len() == 1 {
            self.check_top(std::slice::from_ref(&key[0]))?;
        }
        match tree::from_manifest(&key, m)? {
            Ok(e) => self.add(key, e, None),
            Err(why) => {
                self.rejected.push((key, why));
                Ok(())
            }
        }
    }

    /// Refuse top-level names the image already holds (`lost+found` aside).
    fn check_top(&self, names: &[Vec<u8>]) -> Result<()> {
        let root = self.planner.image_root();
        for name in names {
            if name == b"lost+found" || !root.iter().any(|(n, _)| n == name) {
                continue;
            }
            bail!(
                "writing {} into {}: the image already holds an entry of that name (refusing to overwrite it)",
                quote(&display_key(std::slice::from_ref(name))),
                quote(self.image)
            );
        }
        Ok(())
    }

    fn add(&mut self, key: tree::Key, e: tree::Entry, file: Option<tree::HostFile>) -> Result<()> {
        if !e.xattrs.is_empty() && !self.ext_attr {
            bail!(
                "writing {} into {}: it has extended attributes and the image lacks the ext_attr feature (debugfs would drop them silently)",
                quote(&display_key(&key)),
                quote(self.image)
            );
        }
        if key.len() == 1
            && key[0] == b"lost+found"
            && e.kind != EntryKind::Directory
            && self
                .planner
                .image_root()
                .iter()
                .any(|(n, _)| n == b"lost+found")
        {
            bail!(
                "writing 'lost+found' into {}: the image has a lost+found directory",
                quote(self.image)
            );
        }
        let read = self
            .planner
            .add(&key, &e, file.as_ref().map(tree::HostFile::raw_fd))?;
        if let (Some(line), Some(file)) = (read, file) {
            let shown = e.host.clone().unwrap_or_default();
            self.files.push_back((line, file, shown));
        }
        self.entries.insert(key, e);
        if self.planner.exhausted && self.failed.is_none() {
            self.failed = Some(Outcome::OutOfInodes);
        }
        if self.failed.is_some() {
            // Nothing more goes to debugfs: nothing will read them.
            self.files.clear();
        }
        // debugfs starts with the first entry below the root: every refusal comes first.
        if self.failed.is_some() || self.planner.plan.keys.len() < 2 {
            return Ok(());
        }
        let plan = &self.planner.plan;
        if self.session.is_none() {
            self.session = Some(debugfs::Session::start(
                self.image,
                &self.stage.join("output"),
                self.time,
            )?);
        }
        if let Some(session) = self.session.as_mut() {
            session.send(&plan.lines);
            self.progress.update(|| {
                format!(
                    "ext4-ingest: {} entries read, {} debugfs commands done",
                    plan.keys.len(),
                    session.done()
                )
            });
            // Look at debugfs's output now and then, to stop at its first failure.
            if plan.lines.len() - self.polled > 4096 {
                self.polled = plan.lines.len();
                if let Some(outcome) = session.poll(&plan.lines, &plan.expect)? {
                    self.failed = Some(outcome);
                }
            }
        }
        self.bound_open_files()
    }

    /// Close the host files debugfs has read; while too many are open, wait for it.
    fn bound_open_files(&mut self) -> Result<()> {
        let mut flushed = false;
        loop {
            let Some(session) = self.session.as_mut().filter(|_| self.failed.is_none()) else {
                // Nothing will read them: the run stops.
                self.files.clear();
                return Ok(());
            };
            close_read(&mut self.files, session.done())?;
            if self.files.len() < self.open_files {
                return Ok(());
            }
            if !flushed {
                session.flush();
                flushed = true;
            }
            let plan = &self.planner.plan;
            if let Some(outcome) = session.poll(&plan.lines, &plan.expect)? {
                self.failed = Some(outcome);
                continue;
            }
            if session.exited() {
                // It will read nothing more; finishing reports why.
                self.files.clear();
                return Ok(());
            }
            if session.done() < 2 + self.files.front().map_or(0, |f| f.0) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Close the files whose reading command is over: debugfs has echoed the next one.
fn close_read(files: &mut VecDeque<(usize, tree::HostFile, PathBuf)>, done: usize) -> Result<()> {
    while files.front().is_some_and(|f| f.0 + 1 < done) {
        if let Some((_, file, shown)) = files.pop_front() {
            file.close(&shown)?;
        }
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<Status> {
    let started = Instant::now();
    let config = Config::new(args)?;
    let image_path = &config.image;
    let locked = image::lock(image_path)?;
    let sb = locked.superblock;
    let time = fixed_time(&sb);
    let manifest = match &config.manifest {
        Some(m) => Some(tree::Merger::new(tree::read_manifest(m)?)?),
        None => None,
    };
    let root_names = image_root(image_path, time)?;
    let alloc = image::allocator(&locked.file, &sb)
        .with_context(|| format!("reading the image {}", quote(image_path)))?;
    let stage = Stage::new()?;
    let setup = script::Setup {
        owner: config.owner,
        time,
        stage: &stage.0,
        image_root: &root_names,
        block_size: sb.block_size,
    };
    let mut ingest = Ingest {
        image: image_path,
        planner: script::Planner::new(setup, alloc),
        rejected: manifest
            .as_ref()
            .map(|m| m.rejected.clone())
            .unwrap_or_default(),
        merger: manifest,
        entries: BTreeMap::new(),
        session: None,
        stage: &stage.0,
        time,
        failed: None,
        polled: 0,
        ext_attr: sb.ext_attr,
        files: VecDeque::new(),
        open_files: OPEN_FILES.min(seedkit::sys::open_files_limit() / 4).max(4),
        progress: if args.progress {
            Progress::with_enabled(true)
        } else {
            Progress::new()
        },
    };

    // The walk feeds the planner, which feeds debugfs as it goes: the walk and the
    // writing overlap, debugfs being another process.
    let walked = tree::walk(&config.tree, &mut |item| {
        seedkit::interrupt::check()?;
        ingest.take(item)
    });
    let done = walked.and_then(|()| {
        let rest = ingest
            .merger
            .as_mut()
            .map(|m| m.before(None))
            .unwrap_or_default();
        rest.into_iter()
            .try_for_each(|(k, m)| ingest.manifest_only(k, &m))
            .and_then(|()| ingest.planner.finish())
    });
    if let Err(e) = done {
        ingest.files.clear();
        if let Some(s) = ingest.session.take() {
            // debugfs had begun writing.
            s.kill();
            bail!(
                "{}; the image {} is unusable, rebuild it",
                seedkit::cli::error_line(&e),
                quote(image_path)
            );
        }
        return Err(e);
    }

    let Ingest {
        planner,
        entries,
        rejected: walk_rejected,
        session,
        failed,
        mut progress,
        mut files,
        ..
    } = ingest;
    let plan = &planner.plan;
    let counts = &plan.counts;
    let out_of_inodes = |written: bool| {
        anyhow::anyhow!(
            "writing {} into {}: out of inodes: the tree needs {} inodes and the image has {} free of {}; {}",
            quote(&config.tree),
            quote(image_path),
            counts.inodes,
            sb.free_inodes,
            sb.inodes_count,
            if written {
                "the image is unusable, rebuild it with more (mkfs.ext4 -N)"
            } else {
                "make it with more (mkfs.ext4 -N)"
            }
        )
    };
    if counts.inodes > u64::from(sb.free_inodes) && session.is_none() {
        return Err(out_of_inodes(false));
    }
    if args.verbose {
        warn(format_args!(
            "debugfs -w -f -: {} commands for {} entries",
            plan.lines.len(),
            plan.keys.len()
        ));
    }
    let session = match session {
        Some(s) => s,
        None => debugfs::Session::start(image_path, &stage.0.join("output"), time)?,
    };
    let unusable = "the image is unusable, rebuild it";
    let outcome = if let Some(failed) = failed {
        files.clear();
        session.kill();
        failed
    } else {
        let mut closed = Ok(());
        let outcome = session.finish(&plan.lines, &plan.expect, &mut progress, |done| {
            // Close the files debugfs has read as it goes on (`done` commands are over).
            if closed.is_ok() {
                closed = close_read(&mut files, done + 1);
            }
        })?;
        closed?;
        if outcome == Outcome::Done {
            close_read(&mut files, usize::MAX)?;
        }
        files.clear();
        outcome
    };
    let mut runs = 1u64;
    match outcome {
        Outcome::Done => {}
        Outcome::OutOfInodes => {
            return Err(out_of_inodes(true));
        }
        Outcome::NotOpened { message } => bail!(
            "opening the image {} with debugfs: {}",
            quote(image_path),
            said(&message)
        ),
        Outcome::Stopped { index, status } => {
            let what = plan.origin.get(index).copied().flatten().map_or_else(
                || PathBuf::from("."),
                |i| display_key(&plan.keys[i as usize]),
            );
            bail!(
                "writing {} into {}: debugfs stopped ({status}) before command {} of {}; {unusable}",
                quote(&what),
                quote(image_path),
                index + 1,
                plan.lines.len()
            );
        }
        Outcome::Failed { index, message } => {
            let what = plan.origin[index].map_or_else(
                || PathBuf::from("."),
                |i| display_key(&plan.keys[i as usize]),
            );
            let text = said(&message);
            if text.contains("Could not allocate block") {
                bail!(
                    "writing {} into {}: out of space: the image had {} free blocks of {} bytes ({} KiB) and the tree needs about {} blocks ({} KiB) of data, directories and symlinks; {unusable} larger (debugfs: {text})",
                    quote(&what),
                    quote(image_path),
                    sb.free_blocks,
                    sb.block_size,
                    sb.free_blocks * sb.block_size / 1024,
                    counts.blocks,
                    counts.blocks * sb.block_size / 1024
                );
            }
            if text.contains("Could not allocate inode") {
                return Err(out_of_inodes(true));
            }
            bail!(
                "writing {} into {}: debugfs: {text} (in command: {}); {unusable}",
                quote(&what),
                quote(image_path),
                seedkit::quote::quote_bytes(&plan.lines[index])
            );
        }
    }

    for r in &plan.renames {
        runs += 2;
        rename(image_path, r, time)?;
    }
    let mut verified = false;
    if args.verify {
        verify::verify(image_path, &entries, &config, plan, &root_names)?;
        verified = true;
    }
    if args.verbose {
        for key in &plan.keys {
            warn(format_args!("wrote {}", quote(&display_key(key))));
        }
    }

    let mut rejected = walk_rejected;
    rejected.extend(plan.rejected.iter().cloned());
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
            files: counts.files,
            directories: counts.directories,
            symlinks: counts.symlinks,
            fifos: counts.fifos,
            char_devices: counts.char_devices,
            block_devices: counts.block_devices,
            extra_hard_links: counts.extra_hard_links,
            bytes: counts.bytes,
            inodes_used: counts.inodes,
            rejected: rejected.len() as u64,
            debugfs_runs: runs,
            verified,
            seconds: started.elapsed().as_secs_f64(),
        };
        let mut out = io::stdout().lock();
        emit(&mut out, &record).context("writing output")?;
        out.flush().context("writing output")?;
    }
    drop(locked);
    Ok(Status::from_failures(rejected.len() as u64))
}

/// Give an entry created under a temporary name its real name: `ln` then `unlink`, each
/// with `-R` (the only way a newline or CR reaches debugfs, §2.1). Neither changes a link
/// count or a directory time.
fn rename(image: &Path, r: &script::Rename, time: i64) -> Result<()> {
    let parent = &r.key[..r.key.len() - 1];
    let mut dir = Vec::new();
    for part in parent {
        dir.push(b'/');
        dir.extend_from_slice(part);
    }
    let mut from = dir.clone();
    from.push(b'/');
    from.extend_from_slice(&r.temporary);
    let mut to = dir;
    to.push(b'/');
    to.extend_from_slice(r.key.last().map_or(&[][..], Vec::as_slice));
    let requests = [
        [
            b"ln ".as_slice(),
            &script::quoted(&from),
            b" ",
            &script::quoted(&to),
        ]
        .concat(),
        [b"unlink ".as_slice(), &script::quoted(&from)].concat(),
    ];
    for req in requests {
        let (out, failed) = debugfs::run_request(image, &req, true, time)?;
        if let Some(msg) = failed.or_else(|| (!out.is_empty()).then_some(out)) {
            bail!(
                "writing {} into {}: debugfs: {}; the image is unusable, rebuild it",
                quote(&display_key(&r.key)),
                quote(image),
                said(&msg)
            );
        }
    }
    Ok(())
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

    #[test]
    fn trailing_slashes_do_not_change_the_manifest() {
        assert_eq!(strip_slashes(Path::new("/a/t//")), Path::new("/a/t"));
        assert_eq!(strip_slashes(Path::new("/")), Path::new("/"));
    }
}
