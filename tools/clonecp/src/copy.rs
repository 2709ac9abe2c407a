//! Moving the data: FICLONE, else `copy_file_range`, else `pread`/`pwrite`. Both fallbacks
//! visit only the source's data regions (`SEEK_DATA`/`SEEK_HOLE`, lseek(2)), so holes stay
//! holes; the caller sets the final size with `ftruncate`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::{lseek, Whence};
use seedkit::progress::Progress;
use seedkit::quote;
use seedkit::records::CopyMethod;

use crate::Reflink;
use seedkit::interrupt;

/// Bytes handed to one `copy_file_range` call: large enough that the syscall cost vanishes,
/// small enough that an interrupt is noticed quickly.
const RANGE_CHUNK: u64 = 64 << 20;
/// The read/write buffer.
const BUF_SIZE: usize = 1 << 20;

/// What [`copy_data`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub method: CopyMethod,
    /// Bytes in the source's data regions (copied, or shared by a clone).
    pub data_bytes: u64,
    /// False when the source's file system could not tell holes from data.
    pub holes_kept: bool,
}

/// The two ends of a copy, with their names for messages.
pub struct Ends<'a> {
    pub src: &'a File,
    pub dst: &'a File,
    pub src_path: &'a Path,
    pub dst_path: &'a Path,
}

/// Copy the first `size` bytes of `ends.src` into the empty `ends.dst`.
pub fn copy_data(ends: &Ends, size: u64, reflink: Reflink) -> Result<Outcome> {
    if reflink != Reflink::Never {
        match clone(ends.src, ends.dst) {
            Ok(()) => {
                return Ok(Outcome {
                    method: CopyMethod::Clone,
                    data_bytes: data_bytes(ends.src, size).unwrap_or(size),
                    holes_kept: true,
                })
            }
            Err(e) if cannot_clone(e) && reflink == Reflink::Auto => {}
            Err(e) if cannot_clone(e) => bail!(
                "cloning {} to {}: the file systems cannot share blocks here ({}); \
                 --reflink=auto copies instead",
                quote(ends.src_path),
                quote(ends.dst_path),
                seedkit::cli::io_cause(&std::io::Error::from(e))
            ),
            Err(e) => {
                return Err(std::io::Error::from(e)).with_context(|| {
                    format!(
                        "cloning {} to {}",
                        quote(ends.src_path),
                        quote(ends.dst_path)
                    )
                })
            }
        }
    }
    copy_regions(ends, size)
}

/// `FICLONE` (ioctl_ficlone(2)), as an errno for [`cannot_clone`].
fn clone(src: &File, dst: &File) -> nix::Result<()> {
    seedkit::sys::clone_file(dst, src)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))
}

/// Errors that mean "no clone between these two files", not "something broke"
/// (ioctl_ficlone(2)): no reflink support, two file systems, unaligned or unsuitable
/// files, a busy swap/exec target. ENOTTY: the file system does not know the ioctl at all.
fn cannot_clone(e: Errno) -> bool {
    matches!(
        e,
        Errno::EOPNOTSUPP | Errno::EXDEV | Errno::EINVAL | Errno::ETXTBSY | Errno::ENOTTY
    )
}

/// Errors that mean "copy_file_range cannot do this pair" (copy_file_range(2)): old
/// kernels, two file systems the kernel will not bridge, file systems without support.
fn cannot_copy_range(e: Errno) -> bool {
    matches!(
        e,
        Errno::EXDEV | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::ETXTBSY
    )
}

/// The next data region `[start, end)` at or after `from`, clipped to `size`; `None` past
/// the last one. `Err(EINVAL)` means the file system cannot report holes.
fn next_data(src: &File, from: u64, size: u64) -> nix::Result<Option<(u64, u64)>> {
    let fd = src;
    let start = match lseek(fd, from as i64, Whence::SeekData) {
        Ok(at) => at as u64,
        // ENXIO: no data at or after `from`.
        Err(Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    };
    if start >= size {
        return Ok(None);
    }
    let end = match lseek(fd, start as i64, Whence::SeekHole) {
        Ok(at) => (at as u64).min(size),
        // The file shrank under us: nothing more to read.
        Err(Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some((start, end)))
}

/// The data regions of the first `size` bytes of `src`, as a list; the whole range when the
/// file system cannot tell (second value false).
fn regions(src: &File, size: u64) -> nix::Result<(Vec<(u64, u64)>, bool)> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < size {
        match next_data(src, from, size) {
            Ok(Some((start, end))) => {
                out.push((start, end));
                from = end;
            }
            Ok(None) => break,
            Err(Errno::EINVAL) if out.is_empty() => return Ok((vec![(0, size)], false)),
            Err(e) => return Err(e),
        }
    }
    Ok((out, true))
}

fn data_bytes(src: &File, size: u64) -> nix::Result<u64> {
    Ok(regions(src, size)?.0.iter().map(|(s, e)| e - s).sum())
}

/// Copy the data regions, with `copy_file_range` until the kernel says it cannot, then
/// with read/write.
fn copy_regions(ends: &Ends, size: u64) -> Result<Outcome> {
    let (regions, holes_kept) = regions(ends.src, size)
        .map_err(std::io::Error::from)
        .with_context(|| format!("finding the data in {}", quote(ends.src_path)))?;
    let total: u64 = regions.iter().map(|(s, e)| e - s).sum();
    let mut method = CopyMethod::CopyFileRange;
    let mut buf = Vec::new();
    let mut progress = Progress::new();
    let mut copied = 0u64;
    for (start, end) in regions {
        let mut off = start;
        while off < end {
            interrupt::check().with_context(|| {
                format!(
                    "copying {} to {}",
                    quote(ends.src_path),
                    quote(ends.dst_path)
                )
            })?;
            let want = (end - off).min(RANGE_CHUNK);
            let n = if method == CopyMethod::CopyFileRange {
                let (mut off_in, mut off_out) = (off as i64, off as i64);
                match nix::fcntl::copy_file_range(
                    ends.src,
                    Some(&mut off_in),
                    ends.dst,
                    Some(&mut off_out),
                    want as usize,
                ) {
                    Ok(n) => n as u64,
                    Err(Errno::EINTR) => continue,
                    Err(e) if cannot_copy_range(e) => {
                        method = CopyMethod::ReadWrite;
                        continue;
                    }
                    Err(e) => {
                        return Err(std::io::Error::from(e)).with_context(|| {
                            format!(
                                "copying {} to {}",
                                quote(ends.src_path),
                                quote(ends.dst_path)
                            )
                        })
                    }
                }
            } else {
                if buf.is_empty() {
                    buf = vec![0u8; BUF_SIZE];
                }
                read_write(ends, off, want, &mut buf)?
            };
            if n == 0 {
                // The source shrank while being copied; what is left of it is copied.
                break;
            }
            off += n;
            copied += n;
            progress.update(|| {
                format!(
                    "clonecp: {} MiB of {} MiB",
                    copied >> 20,
                    total.max(1).div_ceil(1 << 20)
                )
            });
        }
    }
    progress.finish();
    Ok(Outcome {
        method,
        data_bytes: copied,
        holes_kept,
    })
}

/// Copy up to `want` bytes at `off` through `buf`; 0 at the source's end.
fn read_write(ends: &Ends, off: u64, want: u64, buf: &mut [u8]) -> Result<u64> {
    let len = buf.len().min(want as usize);
    let n = loop {
        match ends.src.read_at(&mut buf[..len], off) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", quote(ends.src_path))),
        }
    };
    ends.dst
        .write_all_at(&buf[..n], off)
        .with_context(|| format!("writing {}", quote(ends.dst_path)))?;
    Ok(n as u64)
}
