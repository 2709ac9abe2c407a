//! `ext4-rdump`: extract a directory of an ext2/ext3/ext4 image into a fresh staging tree,
//! without mounting and without root, and print the tree's path.
//!
//! Reads IMAGE with the memory-safe `ext4_reader` (every structure checked, checksums
//! verified). Writes the tree (default: `$TMPDIR/ext4-rdump.XXXXXX/tree`; with `-o DEST`, a
//! new or empty DEST) and its manifest `<tree>.manifest.jsonl` (one JSON record per entry:
//! true mode, owner, times, device numbers, symlink target, hard-link group, xattrs), then
//! prints the tree's path (or, with `--json`, a summary record). Every host write is relative
//! to an open directory, with validated names, `O_NOFOLLOW` and `O_EXCL`: nothing is ever
//! replaced or written outside the tree. Directories are kept u+rwx and files u+rw on the
//! host so the tree stays readable and removable; the manifest holds the true modes.
//!
//! Exit status: 0 every entry reproduced or fully recorded; 1 some entries could not be
//! (each reported on stderr and in `--json`); 2 fatal error (not an ext4 image, DIR missing
//! or not a directory, destination not empty, manifest not writable) with nothing left
//! behind, or a usage error.

mod extract;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ext4_reader::{FileType, Fs};
use seedkit::json::{emit, Bytes};
use seedkit::records::manifest::manifest_path;
use seedkit::{quote, Status};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Extract a directory of an ext2/ext3/ext4 image into a staging tree and a manifest, without root",
    long_about = "Extract DIR (default /) of an ext2/ext3/ext4 image into a fresh staging tree \
        without mounting and without root, and print the tree's path. Everything the host \
        tree cannot hold for an unprivileged user (true modes, owners, devices, xattrs, exact \
        times) is recorded in the manifest TREE.manifest.jsonl beside it. Holes stay holes, \
        hard links stay hard links, and nothing is ever written outside the tree.",
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

    /// List each extracted entry on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Where the tree goes and how to take it back on a fatal error.
struct Staging {
    tree: PathBuf,
    manifest: PathBuf,
    /// Remove this whole directory (ours); `None`: empty `tree`, which was the user's.
    remove: Option<PathBuf>,
}

impl Staging {
    fn prepare(output: Option<&Path>) -> Result<Staging> {
        match output {
            None => {
                let base = std::env::var_os("TMPDIR")
                    .filter(|t| !t.is_empty())
                    .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
                let base = std::path::absolute(&base).unwrap_or(base);
                let dir = nix::unistd::mkdtemp(&base.join("ext4-rdump.XXXXXX"))
                    .map_err(io::Error::from)
                    .with_context(|| format!("creating a staging directory in {}", quote(&base)))?;
                let tree = dir.join("tree");
                if let Err(e) = fs::create_dir(&tree) {
                    let _ = fs::remove_dir(&dir);
                    return Err(e).with_context(|| format!("creating {}", quote(&tree)));
                }
                Ok(Staging {
                    manifest: manifest_path(&tree),
                    tree,
                    remove: Some(dir),
                })
            }
            Some(dest) => {
                let dest = normalize(dest);
                let manifest = manifest_path(&dest);
                if manifest.symlink_metadata().is_ok() {
                    bail!("creating the manifest {}: File exists", quote(&manifest));
                }
                match dest.symlink_metadata() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::create_dir(&dest)
                            .with_context(|| format!("creating {}", quote(&dest)))?;
                        Ok(Staging {
                            tree: dest.clone(),
                            manifest,
                            remove: Some(dest),
                        })
                    }
                    Err(e) => Err(e).with_context(|| format!("reading {}", quote(&dest))),
                    Ok(m) if !m.is_dir() => {
                        bail!("using {} as destination: Not a directory", quote(&dest))
                    }
                    Ok(_) => {
                        let mut entries = fs::read_dir(&dest)
                            .with_context(|| format!("reading {}", quote(&dest)))?;
                        if entries.next().is_some() {
                            bail!("using {} as destination: Directory not empty", quote(&dest));
                        }
                        Ok(Staging {
                            tree: dest,
                            manifest,
                            remove: None,
                        })
                    }
                }
            }
        }
    }

    /// Undo everything written (after a fatal error).
    fn discard(&self) {
        let _ = fs::remove_file(&self.manifest);
        match &self.remove {
            Some(dir) => remove_tree(dir),
            None => {
                if let Ok(entries) = fs::read_dir(&self.tree) {
                    for e in entries.flatten() {
                        remove_tree(&e.path());
                    }
                }
            }
        }
    }
}

/// `rm -rf`, first giving the owner rwx on directories (the tree keeps u+rwx anyway).
fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = path.symlink_metadata() {
        if m.is_dir() {
            let _ = fs::set_permissions(
                path,
                fs::Permissions::from_mode(m.permissions().mode() | 0o700),
            );
            if let Ok(entries) = fs::read_dir(path) {
                for e in entries.flatten() {
                    remove_tree(&e.path());
                }
            }
            let _ = fs::remove_dir(path);
        } else {
            let _ = fs::remove_file(path);
        }
    }
}

/// An absolute path without trailing slashes or `.` components, so that
/// `manifest_path(tree)` lands beside the tree, never inside it.
fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

pub fn run(args: &Args) -> Result<Status> {
    let image = &std::path::absolute(&args.image).unwrap_or_else(|_| args.image.clone());
    let file = fs::File::open(image).with_context(|| format!("opening {}", quote(image)))?;
    let fs = Fs::open(file).with_context(|| format!("reading {}", quote(image)))?;
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
            match root.file_type() {
                Some(FileType::Directory) => Some((ino, root)),
                Some(FileType::Symlink) => bail!(
                    "extracting {show_dir} from {}: Not a directory (a symbolic link, not followed with --no-dereference)",
                    quote(image)
                ),
                _ => bail!("extracting {show_dir} from {}: Not a directory", quote(image)),
            }
        }
        Err(ext4_reader::Error::NotFound { .. }) if args.missing_ok => None,
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

    let staging = Staging::prepare(args.output.as_deref())?;
    let extraction = extract::Extraction::new(&fs, args, image, &staging.tree, &staging.manifest);
    let outcome = match &source {
        Some((ino, root)) => extraction.and_then(|x| x.run(*ino, root)),
        None => extraction.and_then(extract::Extraction::run_missing),
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
        emit(&mut out, &summary).context("writing output")?;
    } else {
        out.write_all(staging.tree.as_os_str().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .context("writing output")?;
    }
    Ok(Status::from_failures(summary.failures))
}
