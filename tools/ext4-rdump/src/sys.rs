//! The few system calls std lacks, each relative to an open directory and never following a
//! symlink. nix 0.29 returns raw descriptors from `openat` and has no xattr calls, hence the
//! two small `unsafe` blocks here.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)` as an owned descriptor.
pub fn open_at(dir: RawFd, name: &[u8], flags: OFlag, mode: u32) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir),
        OsStr::from_bytes(name),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: openat has just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open a directory by path (the staging root), refusing a symlink.
pub fn open_dir(path: &std::path::Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        None,
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fsetxattr(fd, name, value, 0)`.
pub fn set_xattr(fd: RawFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `name` is NUL-terminated and outlives the call; pointer and length describe
    // the `value` slice.
    let rc = unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
