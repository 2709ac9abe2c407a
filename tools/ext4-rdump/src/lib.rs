//! `ext4-rdump`: extract a directory of an ext2/ext3/ext4 image into a fresh staging tree,
//! without mounting and without root, and print the tree's path.
//!
//! Reads IMAGE with the memory-safe `ext4fs` (every structure checked, checksums
//! verified). Writes the tree (default: `$TMPDIR/ext4-rdump.XXXXXX/tree`; with `-o DEST`, a
//! new or empty DEST) and its manifest `<tree>.manifest.jsonl` (one JSON record per entry:
//! true mode, owner, times, device numbers, symlink target, hard-link group, xattrs), then
//! prints the tree's path (or, with `--json`, a summary record). Every host write is relative
//! to an open directory, with validated names, `O_NOFOLLOW` and `O_EXCL`: nothing is ever
//! replaced or written outside the tree. The tree holds content only: no set-ID or sticky
//! bit, no device node, its top 0700; directories are kept u+rwx and files u+rw on the host
//! so the tree stays readable and removable; the manifest holds the true modes. An inode is
//! staged once whatever the names reaching it, and the tree plus the manifest, and the work
//! of reading the image, are bounded by a budget (`--budget`, default 8 times the image's
//! allocated size plus 256 MiB: [`ext4fs::default_budget`]).
//!
//! Exit status: 0 every entry reproduced or fully recorded; 1 some entries could not be
//! (each reported on stderr and in `--json`); 2 fatal error (not an ext4 image, DIR missing
//! or not a directory, destination not empty or not safe, budget passed, manifest not
//! writable) with nothing left behind, or a usage error.

#![forbid(unsafe_code)]

mod archive;
mod claims;
mod extract;

use std::ffi::OsString;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ext4fs::{EntryKind, Fs};
use nix::fcntl::OFlag;
use seedkit::json::Bytes;
use seedkit::output::{self, OutputDir};
use seedkit::records::manifest::manifest_path;
use seedkit::{quote, sys, Status};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Extract a directory of an ext2/ext3/ext4 image into a staging tree and a manifest, without root",
    long_about = "Extract DIR (default /) of an ext2/ext3/ext4 image into a fresh staging tree \
        without mounting and without root, and print the tree's path. The tree holds \
        content; the metadata (true modes with set-ID bits, owners, devices, xattrs, exact \
        times) is recorded in the manifest TREE.manifest.jsonl beside it. Holes stay holes, \
        hard links stay hard links, no device node or set-ID bit reaches the host, and \
        nothing is ever written outside the tree.",
    after_help = "Exit status: 0 success, 1 some entries could not be reproduced (each \
        reported), 2 fatal error (nothing left behind) or usage error.\n\n\
        Example: ext4-rdump rootfs.ext4 /root | seed-size"
)]
pub struct Args {
    /// The image file (ext2, ext3 or ext4).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// The directory of the image to extract (symlinks inside the image are followed).
    #[arg(value_name = "DIR", default_value = "/")]
    pub dir: OsString,

    /// Do not follow DIR itself when it is a symlink in the image: refuse it, as a
    /// directory that is not there to extract.
    #[arg(short = 'P', long)]
    pub no_dereference: bool,

    /// When DIR does not exist in the image, make an empty tree (and a manifest with no
    /// entries) instead of failing; `--json` says `"missing": true`.
    #[arg(long)]
    pub missing_ok: bool,

    /// Make the tree at DEST, a new or empty directory (the manifest goes to
    /// DEST.manifest.jsonl beside it); default: a fresh directory under $TMPDIR.
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub output: Option<PathBuf>,

    /// Print a JSON summary record instead of the tree's path.
    #[arg(long)]
    pub json: bool,

    /// Give entries the owner and group recorded in the image (needs privilege).
    #[arg(long)]
    pub same_owner: bool,

    /// Write DIR to stdout as a POSIX pax tar stream instead of extracting it: nothing is
    /// written on the host (xattrs, nanosecond times, devices, hard links, holes as GNU
    /// sparse 1.0).
    #[arg(long, conflicts_with_all = ["output", "json", "same_owner"])]
    pub tar: bool,

    /// List each extracted entry on stderr (quoted, control bytes escaped).
    #[arg(short, long)]
    pub verbose: bool,

    /// Stop (exit 2, nothing left behind) once the staged files and the manifest, or the
    /// tar stream, or the work of reading the image, pass BYTES (suffixes K, M, G, T:
    /// powers of 1024); default: 8 times the image's allocated size plus 256 MiB.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub budget: Option<u64>,
}

/// `1234`, `64K`, `300M`, `2G`, `1T` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        Some(b'T' | b't') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size in bytes (digits, then K, M, G or T): {s}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {s}"))
}

/// Where the tree goes and how to take it back on a fatal error. Every name is made and
/// opened relative to an opened directory (DEST's parent, checked by the output rule of
/// [`seedkit::output`]), never through a path again.
struct Staging {
    tree: PathBuf,
    /// The tree, open (the extraction works through it, never through the path again).
    fd: OwnedFd,
    /// The directory holding the tree and its manifest.
    parent: OwnedFd,
    tree_name: Vec<u8>,
    manifest: PathBuf,
    manifest_name: Vec<u8>,
    /// The manifest, created exclusively (0600: it holds every xattr of the image's files),
    /// until the extraction takes it.
    manifest_file: Option<fs::File>,
    /// Whether this run created the manifest (a fatal error removes it).
    manifest_made: bool,
    remove: Remove,
}

/// What a fatal error removes besides the tree's content and the manifest.
enum Remove {
    /// Nothing: DEST was the caller's empty directory.
    Nothing,
    /// DEST, which this run made.
    Tree,
    /// The default stage, which this run made under TMPDIR: the directory `name` of `base`.
    Stage { base: OwnedFd, name: Vec<u8> },
}

impl Staging {
    fn prepare(output: Option<&Path>) -> Result<Staging> {
        match output {
            None => Self::in_tmpdir(),
            Some(dest) => Self::at(&normalize(dest)),
        }
    }

    /// The default: `$TMPDIR/ext4-rdump.<hex>/tree`, TMPDIR checked by the output rule.
    fn in_tmpdir() -> Result<Staging> {
        let base = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let base = std::path::absolute(&base).unwrap_or(base);
        let what = || format!("creating a staging directory in {}", quote(&base));
        let dir = OutputDir::open(&base).with_context(what)?;
        let name = output::make_private(dir.fd(), "ext4-rdump").with_context(what)?;
        let stage = sys::open_dir_at(dir.fd(), &name)
            .and_then(|fd| output::adopt(dir.fd(), &name, fd.as_fd()).map(|()| fd))
            .with_context(what);
        let stage = match stage {
            Ok(fd) => fd,
            Err(e) => {
                let _ = sys::unlink_at(dir.fd(), &name, true);
                return Err(e);
            }
        };
        let tree = base.join(std::ffi::OsStr::from_bytes(&name)).join("tree");
        let base = dir
            .fd()
            .try_clone_to_owned()
            .context("duplicating a descriptor");
        let made = base.and_then(|base| {
            let fd = sys::mkdir_at(&stage, b"tree", 0o700)
                .and_then(|()| sys::open_dir_at(&stage, b"tree"))
                .with_context(|| format!("creating {}", quote(&tree)))?;
            Ok((base, fd))
        });
        let (base, fd) = match made {
            Ok(made) => made,
            Err(e) => {
                let _ = sys::unlink_at(&stage, b"tree", true);
                let _ = sys::unlink_at(dir.fd(), &name, true);
                return Err(e);
            }
        };
        Self::with_manifest(&tree, fd, stage, b"tree", Remove::Stage { base, name })
    }

    /// `-o DEST`: a new directory, or an empty one of the caller's that no one else may
    /// write; DEST's parent checked by the output rule.
    fn at(dest: &Path) -> Result<Staging> {
        let (Some(parent_path), Some(name)) = (dest.parent(), dest.file_name()) else {
            bail!(
                "using {} as destination: not a directory to make",
                quote(dest)
            );
        };
        let parent =
            OutputDir::open(parent_path).with_context(|| format!("creating {}", quote(dest)))?;
        let parent = parent
            .fd()
            .try_clone_to_owned()
            .context("duplicating a descriptor")?;
        let manifest = manifest_path(dest);
        let manifest_name = manifest
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        if sys::stat_at(&parent, &manifest_name).is_ok() {
            bail!("creating the manifest {}: File exists", quote(&manifest));
        }
        let name = name.as_bytes();
        let (fd, remove) = match sys::stat_at(&parent, name) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {
                sys::mkdir_at(&parent, name, 0o700)
                    .with_context(|| format!("creating {}", quote(dest)))?;
                // The directory just made, the caller's, 0700: whatever is now at the name
                // is checked through the descriptor before anything goes into it.
                let opened = sys::open_dir_at(&parent, name)
                    .and_then(|fd| output::adopt(parent.as_fd(), name, fd.as_fd()).map(|()| fd));
                match opened {
                    Ok(fd) => (fd, Remove::Tree),
                    Err(e) => {
                        let _ = sys::unlink_at(&parent, name, true);
                        return Err(e).with_context(|| format!("opening {}", quote(dest)));
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", quote(dest))),
            Ok(st) if EntryKind::from_mode(st.st_mode) != Some(EntryKind::Directory) => {
                bail!("using {} as destination: Not a directory", quote(dest))
            }
            Ok(_) => {
                let fd = sys::open_dir_at(&parent, name)
                    .with_context(|| format!("opening {}", quote(dest)))?;
                check_owned(&fd, dest)?;
                let names =
                    sys::read_names(&fd).with_context(|| format!("reading {}", quote(dest)))?;
                if !names.is_empty() {
                    bail!("using {} as destination: Directory not empty", quote(dest));
                }
                (fd, Remove::Nothing)
            }
        };
        Self::with_manifest(dest, fd, parent, name, remove)
    }

    /// The staging of the tree `tree`, open as `fd`, the entry `tree_name` of `parent`;
    /// its manifest is created beside it (on failure, what was made is removed).
    fn with_manifest(
        tree: &Path,
        fd: OwnedFd,
        parent: OwnedFd,
        tree_name: &[u8],
        remove: Remove,
    ) -> Result<Staging> {
        let manifest = manifest_path(tree);
        let manifest_name = manifest
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let mut staging = Staging {
            tree: tree.to_path_buf(),
            fd,
            parent,
            tree_name: tree_name.to_vec(),
            manifest,
            manifest_name,
            manifest_file: None,
            manifest_made: false,
            remove,
        };
        match staging.create_manifest() {
            Ok(()) => Ok(staging),
            Err(e) => {
                staging.discard();
                Err(e)
            }
        }
    }

    /// Create the manifest beside the tree, relative to the parent: exclusively, never
    /// through a symlink, 0600.
    fn create_manifest(&mut self) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOCTTY;
        let file = sys::open_at(&self.parent, &self.manifest_name, flags, 0o600)
            .with_context(|| format!("creating the manifest {}", quote(&self.manifest)))?;
        self.manifest_file = Some(fs::File::from(file));
        self.manifest_made = true;
        Ok(())
    }

    /// Undo everything written (after a fatal error).
    fn discard(&self) {
        if self.manifest_made {
            let _ = sys::unlink_at(&self.parent, &self.manifest_name, false);
        }
        output::empty_dir(self.fd.as_fd());
        match &self.remove {
            Remove::Nothing => {}
            Remove::Tree => {
                let _ = sys::unlink_at(&self.parent, &self.tree_name, true);
            }
            Remove::Stage { base, name } => {
                let _ = sys::unlink_at(&self.parent, &self.tree_name, true);
                let _ = sys::unlink_at(base, name, true);
            }
        }
    }
}

/// An existing DEST must be the caller's and writable by no one else: whoever else can
/// write in it could swap the names being made for symlinks while they are made.
fn check_owned(fd: &OwnedFd, dest: &Path) -> Result<()> {
    let st = sys::stat(fd).with_context(|| format!("reading {}", quote(dest)))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        bail!(
            "using {} as destination: owned by uid {}, not by this user (uid {me}); \
             give a directory of your own or a new name",
            quote(dest),
            st.st_uid
        );
    }
    if st.st_mode & 0o022 != 0 {
        bail!(
            "using {} as destination: writable by others (mode {:04o}); \
             give a directory only you can write, or a new name",
            quote(dest),
            st.st_mode & 0o7777
        );
    }
    Ok(())
}

/// An absolute path without trailing slashes or `.` components, so that
/// `manifest_path(tree)` lands beside the tree, never inside it.
fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// `--tar`: the directory as a tar stream on stdout (never a terminal).
fn write_archive(
    fs: &Fs,
    source: Option<&(ext4fs::Ino, ext4fs::Inode)>,
    budget: u64,
    verbose: bool,
) -> Result<Status> {
    let stdout = io::stdout();
    if stdout.is_terminal() {
        bail!("writing the archive: refusing to write a tar stream to a terminal (redirect it or pipe it)");
    }
    let out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let archive = archive::Archive::new(fs, out, budget, verbose);
    let outcome = match source {
        Some((ino, root)) => archive.run(*ino, root)?,
        None => archive.run_missing()?,
    };
    Ok(Status::from_failures(outcome.failures))
}

pub fn run(args: &Args) -> Result<Status> {
    let image = &std::path::absolute(&args.image).unwrap_or_else(|_| args.image.clone());
    let file =
        sys::open_image(image, false).with_context(|| format!("opening {}", quote(image)))?;
    let mut fs = Fs::open(file).with_context(|| format!("reading {}", quote(image)))?;
    // One budget for the run: the reader's work, and what is written to the host. By
    // default it derives from what the image holds, never from its apparent length (a
    // sparse file of any size, a superblock that says every block is in use).
    let budget = args
        .budget
        .unwrap_or_else(|| ext4fs::default_budget(fs.allocated_bytes()));
    fs.set_budget(budget);
    let dir = args.dir.as_bytes();
    let show_dir = seedkit::quote::quote_bytes(dir);
    let found = if args.no_dereference {
        fs.lookup_nofollow(dir)
    } else {
        fs.lookup(dir)
    };
    // `None`: DIR is missing and `--missing-ok` asked for an empty tree.
    let source = match found {
        Ok(ino) => {
            let root = fs
                .inode(ino)
                .with_context(|| format!("reading {show_dir} in {}", quote(image)))?;
            match root.kind() {
                Some(EntryKind::Directory) => Some((ino, root)),
                Some(EntryKind::Symlink) => bail!(
                    "extracting {show_dir} from {}: Not a directory (a symbolic link, not followed with --no-dereference)",
                    quote(image)
                ),
                _ => bail!("extracting {show_dir} from {}: Not a directory", quote(image)),
            }
        }
        Err(ext4fs::Error::NotFound { .. }) if args.missing_ok => None,
        Err(e) => {
            return Err(e).with_context(|| format!("finding {show_dir} in {}", quote(image)));
        }
    };
    if fs.needs_recovery() {
        seedkit::warn(format_args!(
            "{}: the journal needs recovery; reading the file system as it is",
            quote(image)
        ));
    }

    if args.tar {
        return write_archive(&fs, source.as_ref(), budget, args.verbose);
    }
    let mut staging = Staging::prepare(args.output.as_deref())?;
    let fd = staging.fd.try_clone().context("duplicating a descriptor")?;
    let manifest_file = staging
        .manifest_file
        .take()
        .context("the manifest was not created")?;
    let extraction = extract::Extraction::new(
        &fs,
        args,
        image,
        (&staging.tree, fd),
        (&staging.manifest, manifest_file),
        budget,
    );
    let outcome = match &source {
        Some((ino, root)) => extraction.run(*ino, root),
        None => extraction.run_missing(),
    };
    let mut summary = match outcome {
        Ok(s) => s,
        Err(e) => {
            staging.discard();
            return Err(e);
        }
    };
    summary.image = Bytes::from(image.as_path());
    summary.source = Bytes(dir.to_vec());
    summary.needs_recovery = fs.needs_recovery();

    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.json {
        seedkit::records::emit(&mut out, &summary).context("writing output")?;
    } else {
        out.write_all(staging.tree.as_os_str().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .context("writing output")?;
    }
    Ok(Status::from_failures(summary.failures))
}
