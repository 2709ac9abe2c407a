//! `work-seed-fs`: the file-system steps of the scripts `work-seed` and `work-disk` that
//! sh cannot do safely, each one call of the toolkit's output rule ([`seedkit::output`]):
//! check an output directory, make and lock a private temporary in it (reclaiming those
//! that killed builds left), publish a file by one rename relative to the opened
//! directories with the flushes around it, remove a temporary through descriptors.
//!
//! The script holds the directories open (`exec 8<"$dir"`) and names them to this helper
//! as `/proc/self/fd/N`, which the helper inherits: the kernel resolves such a path to the
//! open directory itself, whatever has been renamed since. A lock must outlive the
//! helper, so it is taken on the descriptor the script passes as standard input: that
//! open file description is the script's, and a `flock` on it lasts until the script
//! (and every step that inherits it) is gone.
//!
//! Exit status: 0 done (`same-file`: the same file); 1 `same-file`: not the same file;
//! 2 an error, said on stderr as `PROG: WHAT: why` (`--prog`, `--what`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use seedkit::output::{self, OutputDir};
use seedkit::{quote, sys, Status};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The file-system steps of work-seed and work-disk that sh cannot do safely",
    long_about = "The file-system steps of the scripts work-seed and work-disk that sh \
        cannot do safely: check an output directory, make and lock a private temporary \
        directory in it (removing those that killed builds left), publish a file by one \
        rename relative to the opened directories (the file flushed before, the directory \
        after), remove a temporary through descriptors. Directories are named as \
        /proc/self/fd/N paths of descriptors the script holds open.",
    after_help = "Exit status: 0 done (same-file: the same file), 1 same-file: not the same \
        file, 2 error.\n\n\
        Example: exec 8<\"$dir\" && work-seed-fs check-dir /proc/self/fd/8 \"$dir\""
)]
pub struct Args {
    /// The name error lines begin with (the script's).
    #[arg(long, value_name = "NAME", default_value = "work-seed-fs")]
    pub prog: String,

    /// What is being done, the start of every error line (for example "building 'x.ext4'").
    #[arg(long, value_name = "TEXT")]
    pub what: Option<String>,

    #[command(subcommand)]
    pub step: Step,
}

#[derive(Debug, Subcommand)]
pub enum Step {
    /// Check DIR: owned by the caller or root, writable by no one else unless sticky.
    CheckDir {
        /// The directory (a /proc/self/fd/N path of one the script holds open).
        dir: PathBuf,
        /// Its name for messages.
        shown: PathBuf,
    },
    /// Make a private temporary KIND.<hex> in DIR and print its name; first remove the
    /// temporaries of KIND that no process holds. Standard input: a descriptor of DIR of
    /// the script's own, locked here and kept locked until the script closes it (after
    /// `lock`), so that no other build takes the new temporary for a leftover.
    Temp {
        dir: PathBuf,
        /// The temporary's kind, such as .work-seed.
        kind: String,
        /// DIR's name for messages.
        shown: PathBuf,
    },
    /// Lock the temporary NAME of DIR for the whole build. Standard input: a descriptor of
    /// it that the script keeps open until it ends.
    Lock { dir: PathBuf, name: OsString },
    /// Flush FILE of TEMP, rename it onto NAME in DIR, flush DIR.
    Publish {
        /// Fail if NAME exists, rather than replace it.
        #[arg(long)]
        no_replace: bool,
        temp: PathBuf,
        file: OsString,
        dir: PathBuf,
        name: OsString,
    },
    /// Remove NAME from DIR, with everything in it, through descriptors.
    Remove { dir: PathBuf, name: OsString },
    /// Exit 0 when A and B are the same file (symbolic links followed), else 1.
    SameFile { a: PathBuf, b: PathBuf },
    /// Print the time, in nanoseconds since the epoch.
    Now,
}

/// A directory named by path, opened (`O_DIRECTORY`).
fn open_dir(dir: &Path) -> Result<std::os::fd::OwnedFd> {
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(dir)
        .with_context(|| format!("opening {}", quote(dir)))?;
    Ok(file.into())
}

/// One component, as a rename or a lookup relative to a directory takes it.
fn component(name: &OsString) -> Result<&[u8]> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        bail!("{}: not a name in a directory", quote(Path::new(name)));
    }
    Ok(b)
}

pub fn run(args: &Args) -> Result<Status> {
    let done = step(&args.step);
    match (done, &args.what) {
        (Err(e), Some(what)) => Err(e.context(what.clone())),
        (r, _) => r,
    }
}

fn step(step: &Step) -> Result<Status> {
    match step {
        Step::CheckDir { dir, shown } => {
            output::check_dir(open_dir(dir)?.as_fd(), shown)?;
        }
        Step::Temp { dir, kind, shown } => temp(dir, kind, shown)?,
        Step::Lock { dir, name } => lock(dir, component(name)?)?,
        Step::Publish {
            no_replace,
            temp,
            file,
            dir,
            name,
        } => {
            let (t, d) = (open_dir(temp)?, open_dir(dir)?);
            output::publish(
                t.as_fd(),
                component(file)?,
                None,
                d.as_fd(),
                component(name)?,
                !no_replace,
            )
            .context("publishing")?;
        }
        Step::Remove { dir, name } => {
            output::remove_at(open_dir(dir)?.as_fd(), component(name)?)
                .with_context(|| format!("removing {}", quote(&dir.join(name))))?;
        }
        Step::SameFile { a, b } => {
            let same = match (std::fs::metadata(a), std::fs::metadata(b)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            return Ok(if same {
                Status::Success
            } else {
                Status::Partial
            });
        }
        Step::Now => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            writeln!(io::stdout(), "{}", t.as_nanos()).context("writing output")?;
        }
    }
    Ok(Status::Success)
}

/// `temp`: standard input must be DIR itself (another descriptor of it).
fn temp(dir: &Path, kind: &str, shown: &Path) -> Result<()> {
    let what = || format!("making a temporary directory in {}", quote(shown));
    if kind.is_empty() || kind.contains('/') {
        bail!("{kind:?}: not a kind of temporary");
    }
    let out = OutputDir::open(dir).with_context(what)?;
    let stdin = io::stdin();
    let held = stdin.as_fd();
    sys::Identity::of(out.fd())
        .and_then(|id| id.check(held))
        .map_err(|_| anyhow::anyhow!("standard input is not the directory {}", quote(dir)))
        .with_context(what)?;
    // Locked on the script's description, it stays locked when this process ends, until
    // the script has locked its temporary and closes that descriptor.
    if let Some(lock) = output::lock_waiting(held).with_context(what)? {
        std::mem::forget(lock);
        output::reclaim(out.fd(), kind, shown);
    }
    let name = output::make_private(out.fd(), kind).with_context(what)?;
    let mut line = name;
    line.push(b'\n');
    io::stdout().write_all(&line).context("writing output")?;
    Ok(())
}

/// `lock`: standard input must be the temporary `name` of `dir` that `temp` made.
fn lock(dir: &Path, name: &[u8]) -> Result<()> {
    let what = || {
        format!(
            "locking {}",
            quote(&dir.join(std::ffi::OsStr::from_bytes(name)))
        )
    };
    let d = open_dir(dir)?;
    let stdin = io::stdin();
    let held = stdin.as_fd();
    output::adopt(d.as_fd(), name, held).with_context(what)?;
    let Some(lock) =
        sys::try_lock(held.try_clone_to_owned().with_context(what)?).with_context(what)?
    else {
        bail!("{}: locked by another process", what());
    };
    // The script's description stays locked after this process ends.
    std::mem::forget(lock);
    Ok(())
}
