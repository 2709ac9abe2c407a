//! Where a tool makes its output, by one rule, so that no other local user can redirect a
//! write and no crash publishes a torn file:
//!
//! 1. The output's directory is resolved once and opened ([`OutputDir::open`]); every
//!    later step names things relative to that descriptor, never through the path again.
//! 2. It is checked ([`check_dir`]): owned by the caller or by root, and writable by no one
//!    else unless it is sticky (as /tmp is, where no one but an entry's owner may rename or
//!    remove it). Whoever else could write in it could rename what the tool makes and put
//!    something of their own in its place.
//! 3. Everything temporary is made inside a 0700 directory of the tool's own in it
//!    ([`Temp`]), locked with `flock` for as long as the run lasts: a later run in the same
//!    place removes the temporaries of its kind that no process holds any more
//!    ([`reclaim`]), the leftovers of a run that was killed, and says so on stderr.
//! 4. The output appears by one rename relative to the checked directory ([`publish`]):
//!    the file is flushed (`fsync`) before the rename and the directory after it, so that
//!    after a crash OUTPUT is either what it was before or the complete new file.
//!
//! The scripts (`work-seed`, `work-disk`) follow the same rule through `work-seed-fs`, which
//! calls these functions on the directories the shell holds open.

use std::ffi::OsStr;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, OFlag};

use crate::records::EntryKind;
use crate::sys::{self, Identity};
use crate::{quote, warn};

/// How long a run waits for another run in the same directory to finish making its
/// temporary (a few system calls) before it goes on without reclaiming anything.
const DIR_LOCK_WAIT: Duration = Duration::from_secs(5);
/// Names tried for a new temporary before giving up.
const TEMP_NAME_TRIES: u32 = 100;

/// The directory an output is made in: open, and checked by [`check_dir`].
#[derive(Debug)]
pub struct OutputDir {
    fd: OwnedFd,
    shown: PathBuf,
}

impl OutputDir {
    /// Open `path` (symlinks on the way followed, once) and check it. The error says why
    /// the directory is refused; the caller adds what it was making.
    pub fn open(path: &Path) -> Result<OutputDir> {
        let file = File::options()
            .read(true)
            .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
            .open(path)?;
        let fd = OwnedFd::from(file);
        check_dir(fd.as_fd(), path)?;
        Ok(OutputDir {
            fd,
            shown: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory as the caller named it, for messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }
}

/// Refuse a directory someone else could change under us: one that is not owned by the
/// caller or root, or that group or others may write without the sticky bit. `shown` is
/// its name in messages.
pub fn check_dir(dir: BorrowedFd<'_>, shown: &Path) -> Result<()> {
    let st = sys::stat(dir).with_context(|| format!("reading the directory {}", quote(shown)))?;
    if EntryKind::from_mode(st.st_mode) != Some(EntryKind::Directory) {
        bail!("{}: Not a directory", quote(shown));
    }
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me && st.st_uid != 0 {
        bail!(
            "the directory {} belongs to uid {}, neither to this user (uid {me}) nor to root: \
             its owner could replace what is made in it; use a directory of your own",
            quote(shown),
            st.st_uid
        );
    }
    let writers = match (st.st_mode & 0o020 != 0, st.st_mode & 0o002 != 0) {
        (_, true) => "others",
        (true, false) => "its group",
        (false, false) => return Ok(()),
    };
    if st.st_mode & 0o1000 == 0 {
        bail!(
            "the directory {} is writable by {writers} and not sticky (mode {:04o}): another \
             user could replace what is made in it; use a directory only you (or root) can write",
            quote(shown),
            st.st_mode & 0o7777
        );
    }
    Ok(())
}

/// A private directory of ours inside an output directory: mode 0700, named
/// `<kind>.<12 hex digits>`, locked (`flock`) until dropped. Dropping it removes it and
/// everything in it.
#[derive(Debug)]
pub struct Temp<'a> {
    dir: BorrowedFd<'a>,
    name: Vec<u8>,
    lock: Flock<OwnedFd>,
    id: Identity,
}

impl<'a> Temp<'a> {
    /// Make a new temporary of `kind` (e.g. `.clonecp`) in `dir`, first removing those of
    /// the same kind that earlier runs left and no process holds ([`reclaim`]). `shown`
    /// names `dir` in messages.
    pub fn create(dir: BorrowedFd<'a>, kind: &str, shown: &Path) -> Result<Temp<'a>> {
        let what = || format!("making a temporary directory in {}", quote(shown));
        // While this run reclaims and makes its own temporary, no other run may take the
        // new one, not yet locked, for a leftover.
        let own = sys::reopen_dir(dir).with_context(what)?;
        let dir_lock = lock_waiting(own.as_fd()).with_context(what)?;
        if dir_lock.is_some() {
            reclaim(dir, kind, shown);
        }
        let name = make_private(dir, kind).with_context(what)?;
        let fd = match sys::open_dir_at(dir, &name) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = sys::unlink_at(dir, &name, true);
                return Err(e).with_context(what);
            }
        };
        let id = Identity::of(&fd).with_context(what)?;
        let made = adopt(dir, &name, fd.as_fd()).and_then(|()| {
            sys::try_lock(fd)?.ok_or_else(|| io::Error::other("locked by another process"))
        });
        let lock = match made {
            Ok(lock) => lock,
            Err(e) => {
                let _ = sys::unlink_at(dir, &name, true);
                return Err(e).with_context(what);
            }
        };
        drop(dir_lock);
        Ok(Temp {
            dir,
            name,
            lock,
            id,
        })
    }

    /// The temporary directory, open.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock.as_fd()
    }

    /// Its name in the output directory.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Rename `file` (in this temporary) onto `to` in the output directory, then remove
    /// the temporary; see [`publish`]. `file_fd`, when given, is `file` open (flushed as
    /// it is rather than opened again).
    pub fn publish(
        self,
        file: &[u8],
        file_fd: Option<BorrowedFd<'_>>,
        to: &[u8],
        replace: bool,
    ) -> io::Result<()> {
        publish(self.fd(), file, file_fd, self.dir, to, replace)
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        // Only the directory made (an entry of that name that is another file is left).
        if sys::stat_at(self.dir, &self.name).is_ok_and(|st| Identity::from_stat(&st) == self.id) {
            empty_dir(self.lock.as_fd());
            let _ = sys::unlink_at(self.dir, &self.name, true);
        }
    }
}

/// Take an exclusive lock on the open file description of `fd` (shared with every
/// duplicate of it), waiting up to a few seconds; `None` when another process held it that
/// long (a hostile one may hold it for ever: then nothing is reclaimed, which is safe).
pub fn lock_waiting(fd: BorrowedFd<'_>) -> io::Result<Option<Flock<OwnedFd>>> {
    let started = Instant::now();
    loop {
        if let Some(lock) = sys::try_lock(fd.try_clone_to_owned()?)? {
            return Ok(Some(lock));
        }
        if started.elapsed() > DIR_LOCK_WAIT {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Make a new directory `<kind>.<12 hex digits>`, mode 0700, in `dir`; its name.
pub fn make_private(dir: BorrowedFd<'_>, kind: &str) -> io::Result<Vec<u8>> {
    for attempt in 0..TEMP_NAME_TRIES {
        let mut name = kind.as_bytes().to_vec();
        name.extend_from_slice(format!(".{:012x}", random(attempt) & 0xffff_ffff_ffff).as_bytes());
        match sys::mkdir_at(dir, &name, 0o700) {
            Ok(()) => return Ok(name),
            Err(e) if e.raw_os_error() == Some(nix::libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{TEMP_NAME_TRIES} names tried, all taken"
    )))
}

/// A number no other process can guess (std's hasher keys come from the system's random
/// source), different for each `salt`.
fn random(salt: u32) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(salt);
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Check that `fd` is the private directory `name` of `dir` that [`make_private`] made:
/// a directory of the caller's, mode 0700 (put back if the umask took bits away; with
/// set-group-ID when `dir` has it), and the very entry `name` of `dir`.
pub fn adopt(dir: BorrowedFd<'_>, name: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let st = sys::stat(fd)?;
    if EntryKind::from_mode(st.st_mode) != Some(EntryKind::Directory)
        || st.st_uid != nix::unistd::geteuid().as_raw()
    {
        return Err(io::Error::other("not the directory just made (replaced)"));
    }
    // Set-group-ID, inherited from a set-group-ID output directory, stays: what is made
    // inside gets that directory's group, as it would when made there directly.
    let setgid = st.st_mode & 0o2000;
    if st.st_mode & 0o7777 != 0o700 | setgid {
        sys::fchmod(fd, 0o700 | setgid)?;
    }
    let at = sys::stat_at(dir, name)?;
    if Identity::from_stat(&at) != Identity::from_stat(&st) {
        return Err(io::Error::other("not the directory just made (replaced)"));
    }
    Ok(())
}

/// Whether `name` is one of our temporaries of `kind`: `<kind>.` and hex digits.
fn is_temp_name(name: &[u8], kind: &str) -> bool {
    name.strip_prefix(kind.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"."))
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_hexdigit))
}

/// Remove the temporaries of `kind` in `dir` that belong to the caller and that no process
/// holds locked: left by runs that were killed. Each removal is said on stderr. The caller
/// holds `dir`'s lock (so that no run's fresh temporary, not yet locked, is taken).
pub fn reclaim(dir: BorrowedFd<'_>, kind: &str, shown: &Path) {
    let Ok(names) = sys::read_names(dir) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for name in names.iter().filter(|n| is_temp_name(n, kind)) {
        let Ok(fd) = sys::open_dir_at(dir, name) else {
            continue;
        };
        let Ok(st) = sys::stat(&fd) else { continue };
        if st.st_uid != me {
            continue;
        }
        let Ok(Some(lock)) = fd.try_clone().and_then(sys::try_lock) else {
            continue;
        };
        empty_dir(lock.as_fd());
        let same = sys::stat_at(dir, name)
            .is_ok_and(|at| Identity::from_stat(&at) == Identity::from_stat(&st));
        if same && sys::unlink_at(dir, name, true).is_ok() {
            warn(format_args!(
                "removed {}: the temporary of an earlier run that was stopped before it could \
                 remove it (no process held it)",
                quote(&shown.join(OsStr::from_bytes(name)))
            ));
        }
    }
}

/// Make `file` of `temp` the output `to` of `dir`, durably: flush the file (`fsync`,
/// through `file_fd` when given, else opened by name without following a symlink), rename
/// it relative to the two open directories (replacing what is at `to` when `replace`, else
/// failing with `EEXIST`), and flush `dir`. When this returns `Ok`, `to` names the complete
/// file even after a crash.
pub fn publish(
    temp: BorrowedFd<'_>,
    file: &[u8],
    file_fd: Option<BorrowedFd<'_>>,
    dir: BorrowedFd<'_>,
    to: &[u8],
    replace: bool,
) -> io::Result<()> {
    if let Some(fd) = file_fd {
        sys::fsync(fd)?;
    } else {
        let fd = sys::open_at(temp, file, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)?;
        if EntryKind::from_mode(sys::stat(&fd)?.st_mode) != Some(EntryKind::File) {
            return Err(io::Error::other("not a regular file"));
        }
        sys::fsync(&fd)?;
    }
    sys::rename_at(temp, file, dir, to, replace)?;
    sys::fsync(dir)
}

/// Remove `name` from `dir`, whatever it is: a directory with everything in it (through
/// descriptors, see [`empty_dir`]), or any other entry. A missing entry is not an error.
pub fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match sys::open_dir_at(dir, name) {
        Ok(fd) => {
            let _ = sys::fchmod(&fd, 0o700);
            empty_dir(fd.as_fd());
            sys::unlink_at(dir, name, true)
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(()),
        // A file, a symlink (never followed): unlinked as such.
        Err(_) => match sys::unlink_at(dir, name, false) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(()),
            r => r,
        },
    }
}

/// Remove everything inside the open directory `top`, at any depth, through descriptors
/// (never a path, never following a symlink), with two descriptors open at a time: the walk
/// climbs back through `..`, checked against the directory it left, and stops if that is
/// not the one.
pub fn empty_dir(top: BorrowedFd<'_>) {
    // For each directory entered below `top`: its name, its identity, the names left in it.
    let mut stack: Vec<(Vec<u8>, Identity, Vec<Vec<u8>>)> = Vec::new();
    let Ok(mut cur) = top.try_clone_to_owned() else {
        return;
    };
    let Ok(mut names) = sys::read_names(&cur) else {
        return;
    };
    loop {
        if let Some(name) = names.pop() {
            match sys::unlink_at(&cur, &name, false) {
                Err(e) if e.raw_os_error() == Some(nix::libc::EISDIR) => {}
                _ => continue,
            }
            let Ok(child) = sys::open_dir_at(&cur, &name) else {
                continue;
            };
            // Ours (or made for us): made u+rwx so that its entries can go.
            let _ = sys::fchmod(&child, 0o700);
            let (Ok(id), Ok(inner)) = (Identity::of(&cur), sys::read_names(&child)) else {
                continue;
            };
            stack.push((name, id, std::mem::replace(&mut names, inner)));
            cur = child;
        } else {
            let Some((name, id, rest)) = stack.pop() else {
                return;
            };
            let Ok(parent) = sys::open_parent(&cur) else {
                return;
            };
            if id.check(&parent).is_err() {
                return;
            }
            let _ = sys::unlink_at(&parent, &name, true);
            cur = parent;
            names = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seedkit-output-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn a_directory_others_may_write_is_refused_unless_sticky() {
        let d = temp_dir("check");
        OutputDir::open(&d).unwrap();
        for (mode, refused) in [
            (0o777, true),
            (0o775, true),
            (0o1777, false),
            (0o700, false),
        ] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = OutputDir::open(&d);
            assert_eq!(r.is_err(), refused, "{mode:o}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("not sticky"), "{e}");
            }
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_temporary_is_locked_private_and_removed_when_dropped() {
        let d = temp_dir("temp");
        let out = OutputDir::open(&d).unwrap();
        let temp = Temp::create(out.fd(), ".t", &d).unwrap();
        let path = d.join(OsStr::from_bytes(temp.name()));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        std::fs::create_dir_all(path.join("a/b")).unwrap();
        std::fs::write(path.join("a/b/f"), b"x").unwrap();
        // Held: another run's reclaim leaves it alone.
        reclaim(out.fd(), ".t", &d);
        assert!(path.join("a/b/f").exists());
        drop(temp);
        assert!(!path.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unlocked_leftover_is_reclaimed_and_nothing_else() {
        let d = temp_dir("reclaim");
        let out = OutputDir::open(&d).unwrap();
        let left = d.join(".t.0123456789ab");
        std::fs::create_dir_all(left.join("x")).unwrap();
        std::fs::write(d.join(".t.notours"), b"").unwrap();
        std::fs::create_dir(d.join(".other.0123456789ab")).unwrap();
        let temp = Temp::create(out.fd(), ".t", &d).unwrap();
        assert!(!left.exists());
        assert!(d.join(".t.notours").exists());
        assert!(d.join(".other.0123456789ab").exists());
        drop(temp);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn publish_renames_relative_to_the_directories_and_can_refuse_to_replace() {
        let d = temp_dir("publish");
        let out = OutputDir::open(&d).unwrap();
        std::fs::write(d.join("out"), b"old").unwrap();
        let temp = Temp::create(out.fd(), ".t", &d).unwrap();
        let tpath = d.join(OsStr::from_bytes(temp.name()));
        std::fs::write(tpath.join("f"), b"new").unwrap();
        let e = publish(temp.fd(), b"f", None, out.fd(), b"out", false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EEXIST));
        temp.publish(b"f", None, b"out", true).unwrap();
        assert_eq!(std::fs::read(d.join("out")).unwrap(), b"new");
        assert!(!tpath.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temp_names_are_recognised_by_kind() {
        assert!(is_temp_name(b".t.0a1b", ".t"));
        assert!(!is_temp_name(b".t.", ".t"));
        assert!(!is_temp_name(b".t.zz", ".t"));
        assert!(!is_temp_name(b".tt.00", ".t"));
    }
}
