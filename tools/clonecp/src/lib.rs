//! `clonecp SRC DST`: copy one regular file, as a reflink clone where the file system can
//! share blocks (XFS with reflink, btrfs, bcachefs), as a real copy that keeps holes
//! elsewhere (ext4, tmpfs, across file systems).
//!
//! Reads SRC, a regular file (symbolic links followed; directories, fifos, sockets and
//! devices refused without being opened for reading); SRC `-` reads SRC's path from stdin,
//! as a line or a JSON record with a `path` field (seedkit's input protocol). Writes DST by
//! the toolkit's output rule ([`seedkit::output`]): DST's directory is opened once and
//! checked (the caller's or root's, writable by no one else unless sticky), the copy is
//! made in a private temporary directory of clonecp's own in it (`.clonecp.<hex>`, locked
//! while the run lasts, reclaimed by a later run if this one is killed), flushed, and
//! renamed onto DST (only if DST does not exist, unless `-f`), then the directory is
//! flushed: when clonecp exits 0, DST is durable. The copy gets SRC's 12 permission bits
//! as far as the caller may set them, except set-user-ID and set-group-ID when the copy's
//! owner differs from SRC's, as cp(1) drops them (`--keep-setid` keeps them); `-p` also
//! keeps SRC's access and modification times. Nothing is left at DST on failure.
//! Order of attempts: FICLONE, `copy_file_range` over SRC's data regions, read/write over
//! them; `--reflink` chooses as in cp. `-v` says on stderr what happened; `--json` prints
//! one [`seedkit::records::Clonecp`] record on stdout.
//!
//! Exit status: 0 copied; 2 on any failure or usage error (there is no partial outcome);
//! 128 + N after signal N (SIGINT, SIGTERM, SIGHUP), the partial copy removed.

#![forbid(unsafe_code)]

mod copy;
mod dest;

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use nix::fcntl::OFlag;
use seedkit::json::Bytes;
use seedkit::output::OutputDir;
use seedkit::records::Clonecp;
use seedkit::{quote, warn, Status};

use crate::copy::Ends;
use crate::dest::Output;
use seedkit::interrupt;

/// When to clone, as in `cp --reflink`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reflink {
    /// Clone where possible, copy elsewhere.
    Auto,
    /// Clone or fail.
    Always,
    /// Always copy (keeping holes).
    Never,
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Copy one file as a reflink clone where the file system can, else as a real copy that keeps holes",
    long_about = "Copy one regular file. On a copy-on-write file system (XFS with reflink, \
        btrfs, bcachefs) the copy is a clone that shares every block; elsewhere it is a real \
        copy (copy_file_range, else read/write) of the source's data regions only, so holes \
        stay holes. DST must not exist unless --force, which replaces it atomically. The \
        permission bits are copied, except set-user-ID and set-group-ID when the copy's \
        owner differs from SRC's (as cp drops them); DST's directory must be writable by \
        no one but its owner (the caller or root) unless it is sticky; the copy is made in \
        a private directory there and renamed onto DST; the copy and the directory are \
        flushed before success; on failure nothing is left at DST.",
    after_help = "Exit status: 0 copied, 2 failure or usage error, 128+N after signal N.\n\n\
        Example: clonecp --reflink=always seed.img vm1.img"
)]
pub struct Args {
    /// The regular file to copy (a symbolic link is followed); `-` reads its path from stdin,
    /// as a line or a JSON record with a "path" field.
    #[arg(value_name = "SRC")]
    pub src: PathBuf,

    /// The file to create; it must not exist unless --force.
    #[arg(value_name = "DST")]
    pub dst: PathBuf,

    /// When to clone; a bare --reflink means always.
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value_t = Reflink::Auto,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "always"
    )]
    pub reflink: Reflink,

    /// Replace an existing DST atomically (a temporary file in its directory, then rename).
    #[arg(short, long)]
    pub force: bool,

    /// Also keep SRC's access and modification times (to the nanosecond).
    #[arg(short, long)]
    pub preserve: bool,

    /// Keep SRC's set-user-ID and set-group-ID bits even when the copy's owner or group
    /// is not SRC's (by default they are dropped then, as cp drops them).
    #[arg(long)]
    pub keep_setid: bool,

    /// Say on stderr how the file was copied: method, sizes, holes, time.
    #[arg(short, long)]
    pub verbose: bool,

    /// Print what was done as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Validated arguments.
struct Config<'a> {
    args: &'a Args,
    /// SRC, or the path read from stdin for `-`.
    src: PathBuf,
    /// DST's directory ("." for a bare name).
    dst_dir: PathBuf,
    /// DST's last component.
    dst_name: OsString,
}

impl<'a> Config<'a> {
    fn new(args: &'a Args) -> Result<Config<'a>> {
        let Some((dst_dir, dst_name)) = split_destination(&args.dst) else {
            bail!(
                "creating {}: DST must name a file, not a directory",
                quote(&args.dst)
            );
        };
        // `-`: the path comes from stdin, as a line or a JSON record (the toolkit's input
        // protocol), so that `clonecp - DST` takes the image another tool just made.
        let src = if seedkit::input::is_stdin(Some(args.src.as_os_str())) {
            seedkit::input::resolve(None)?
        } else {
            args.src.clone()
        };
        Ok(Config {
            args,
            src,
            dst_dir,
            dst_name,
        })
    }
}

/// DST's directory ("." for a bare name) and last component; `None` when DST is written as
/// a directory (`x/`, `.`, `x/..`). Done on the raw bytes: `Path` would drop a trailing
/// `/` or `/.` and turn `nodir/.` into a file named `nodir`.
fn split_destination(dst: &Path) -> Option<(PathBuf, OsString)> {
    let bytes = dst.as_os_str().as_bytes();
    let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if matches!(last, b"" | b"." | b"..") {
        return None;
    }
    let dir = match bytes.len() - last.len() {
        0 => PathBuf::from("."),
        n => PathBuf::from(OsStr::from_bytes(&bytes[..n])),
    };
    Some((dir, OsStr::from_bytes(last).to_owned()))
}

pub fn run(args: &Args) -> Result<Status> {
    let started = Instant::now();
    let config = Config::new(args)?;
    interrupt::install();
    let mut record = copy_file(&config)?;
    record.seconds = started.elapsed().as_secs_f64();
    if args.verbose {
        warn(format_args!(
            "{} -> {}: {}, {} bytes, {} bytes of data, {}, {:.3} s",
            quote(&config.src),
            quote(&args.dst),
            record.method.name(),
            record.size_bytes,
            record.data_bytes,
            if record.holes_kept {
                "holes kept"
            } else {
                "holes not detectable, every byte written"
            },
            record.seconds
        ));
    }
    if args.json {
        seedkit::records::emit(&mut io::stdout().lock(), &record).context("writing output")?;
    }
    Ok(Status::Success)
}

fn copy_file(config: &Config) -> Result<Clonecp> {
    let args = config.args;
    let (src, src_meta) = open_source(&config.src)?;
    // DST's directory, resolved once: every later step is relative to this descriptor.
    let dir = OutputDir::open(&config.dst_dir)
        .with_context(|| format!("creating {}", quote(&args.dst)))?;
    let replaced = check_destination(config, &dir, &src_meta)?;
    let out = Output::create(&dir, &args.dst)?;

    let size = src_meta.len();
    let ends = Ends {
        src: &src,
        dst: &out.file,
        src_path: &config.src,
        dst_path: &args.dst,
    };
    let outcome = copy::copy_data(&ends, size, args.reflink)?;
    interrupt::check()
        .with_context(|| format!("copying {} to {}", quote(&config.src), quote(&args.dst)))?;
    if outcome.method != seedkit::records::CopyMethod::Clone {
        // Holes at the end are not written: the size says where the file ends.
        out.file
            .set_len(size)
            .with_context(|| format!("setting the size of {}", quote(&args.dst)))?;
    }
    set_attributes(&out.file, &src_meta, args)?;
    out.commit(&config.dst_name, args.force, &args.dst)?;

    Ok(Clonecp {
        src: Bytes::from(config.src.as_path()),
        dst: Bytes::from(args.dst.as_path()),
        method: outcome.method,
        size_bytes: size,
        data_bytes: outcome.data_bytes,
        holes_kept: outcome.holes_kept,
        replaced,
        seconds: 0.0,
    })
}

/// Open SRC for reading, refusing anything but a regular file. The type is checked before
/// opening (opening a device can have effects) and again on the open descriptor; the open is
/// non-blocking so that a fifo put in place in between cannot hang us.
fn open_source(path: &Path) -> Result<(File, Metadata)> {
    let what = || format!("opening {}", quote(path));
    let meta = std::fs::metadata(path).with_context(what)?;
    refuse_non_regular(path, &meta)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).bits())
        .open(path)
        .with_context(what)?;
    let meta = file.metadata().with_context(what)?;
    refuse_non_regular(path, &meta)?;
    Ok((file, meta))
}

fn refuse_non_regular(path: &Path, meta: &Metadata) -> Result<()> {
    let kind = meta.file_type();
    let name = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a fifo"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    bail!(
        "copying {}: it is {name}; only regular files are copied",
        quote(path)
    )
}

/// Refuse a DST that is SRC itself (through any name) or a directory, and one that exists
/// without --force; looked up relative to DST's open directory. Returns whether an existing
/// DST will be replaced (the final rename decides: a DST made meanwhile is not replaced
/// without --force).
fn check_destination(config: &Config, dir: &OutputDir, src: &Metadata) -> Result<bool> {
    let dst = &config.args.dst;
    let name = config.dst_name.as_bytes();
    let followed = nix::sys::stat::fstatat(
        dir.fd(),
        config.dst_name.as_os_str(),
        nix::fcntl::AtFlags::empty(),
    );
    if let Ok(st) = followed {
        if st.st_dev == src.dev() && st.st_ino == src.ino() {
            bail!(
                "copying {} to {}: they are the same file",
                quote(&config.src),
                quote(dst)
            );
        }
    }
    match seedkit::sys::stat_at(dir.fd(), name) {
        Ok(st)
            if seedkit::records::EntryKind::from_mode(st.st_mode)
                == Some(seedkit::records::EntryKind::Directory) =>
        {
            bail!(
                "creating {}: it is a directory; DST must name a file",
                quote(dst)
            )
        }
        Ok(_) if !config.args.force => {
            bail!("creating {}: it exists (--force replaces it)", quote(dst))
        }
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// SRC's 12 permission bits (the kernel drops set-group-ID when the caller is not in the
/// file's group: said, not fatal) and, with -p, its times. Set-user-ID and set-group-ID
/// are dropped when the copy's owner is not SRC's, and set-group-ID when only its group
/// differs, as cp(1) does: otherwise anyone's program copied by root would become a
/// set-user-ID root program (`--keep-setid` keeps them). Done after the data, since a
/// write clears set-user-ID and set-group-ID.
fn set_attributes(dst: &File, src: &Metadata, args: &Args) -> Result<()> {
    let what = || format!("setting the mode of {}", quote(&args.dst));
    let mut wanted = src.mode() & 0o7777;
    if !args.keep_setid {
        let made = dst.metadata().with_context(what)?;
        if made.uid() != src.uid() {
            wanted &= !0o6000;
        } else if made.gid() != src.gid() {
            wanted &= !0o2000;
        }
    }
    dst.set_permissions(std::fs::Permissions::from_mode(wanted))
        .with_context(what)?;
    let got = dst.metadata().with_context(what)?.mode() & 0o7777;
    if got != wanted {
        warn(format_args!(
            "setting the mode of {}: {got:04o} instead of {wanted:04o} (not allowed to set the rest)",
            quote(&args.dst)
        ));
    }
    if args.preserve {
        let times = FileTimes::new()
            .set_accessed(system_time(src.atime(), src.atime_nsec()))
            .set_modified(system_time(src.mtime(), src.mtime_nsec()));
        dst.set_times(times)
            .with_context(|| format!("setting the times of {}", quote(&args.dst)))?;
    }
    Ok(())
}

fn system_time(sec: i64, nsec: i64) -> SystemTime {
    let nsec = Duration::from_nanos(nsec.clamp(0, 999_999_999) as u64);
    if sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(sec as u64) + nsec
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + nsec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(dst: &str) -> Option<(String, String)> {
        split_destination(Path::new(dst)).map(|(d, n)| {
            (
                d.to_str().unwrap().to_owned(),
                n.to_str().unwrap().to_owned(),
            )
        })
    }

    #[test]
    fn destination_splits_into_directory_and_name() {
        let pair = |d: &str, n: &str| Some((d.to_owned(), n.to_owned()));
        assert_eq!(split("b"), pair(".", "b"));
        assert_eq!(split("x/b"), pair("x/", "b"));
        assert_eq!(split("/b"), pair("/", "b"));
        assert_eq!(split("x//y/b"), pair("x//y/", "b"));
        assert_eq!(split("./.b"), pair("./", ".b"));
    }

    #[test]
    fn destination_written_as_a_directory_is_no_file_name() {
        for dst in ["", ".", "..", "/", "x/", "x/.", "x/..", "nodir/."] {
            assert_eq!(split(dst), None, "{dst:?}");
        }
    }
}
