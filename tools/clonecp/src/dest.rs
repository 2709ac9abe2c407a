//! The destination file: created exclusively under its final name, or (`--force`) as a
//! temporary file in the same directory that is renamed over the old DST once complete.
//! Until [`Output::commit`] succeeds, dropping the [`Output`] removes what was created.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{renameat, OFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use seedkit::quote;

/// Longest prefix of DST's name kept in a temporary name, so that it stays under NAME_MAX.
const TEMP_NAME_KEEP: usize = 200;
/// Temporary names tried before giving up (each differs in pid, time and counter).
const TEMP_NAME_TRIES: u32 = 100;

pub struct Output<'a> {
    dir: &'a File,
    /// The name created in `dir` (DST's name, or the temporary name).
    created: OsString,
    /// DST's name, when `created` is a temporary file to rename over it.
    replace: Option<OsString>,
    pub file: File,
    armed: bool,
}

impl<'a> Output<'a> {
    /// Create `name` in `dir`, exclusively. `dst` is DST as given, for messages.
    pub fn create(dir: &'a File, name: &OsStr, dst: &Path) -> Result<Output<'a>> {
        let file = create_exclusive(dir, name).map_err(|e| match e {
            Errno::EEXIST => {
                anyhow::anyhow!("creating {}: it exists (--force replaces it)", quote(dst))
            }
            e => anyhow::Error::new(std::io::Error::from(e))
                .context(format!("creating {}", quote(dst))),
        })?;
        Ok(Output {
            dir,
            created: name.to_owned(),
            replace: None,
            file,
            armed: true,
        })
    }

    /// Create a temporary file in `dir` that [`Output::commit`] renames to `name`.
    pub fn create_replacement(dir: &'a File, name: &OsStr, dst: &Path) -> Result<Output<'a>> {
        let keep = &name.as_bytes()[..name.len().min(TEMP_NAME_KEEP)];
        let pid = std::process::id();
        for attempt in 0..TEMP_NAME_TRIES {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let mut temp = b".".to_vec();
            temp.extend_from_slice(keep);
            temp.extend_from_slice(format!(".clonecp-{pid}-{nanos:08x}{attempt}").as_bytes());
            let temp = OsString::from_vec(temp);
            match create_exclusive(dir, &temp) {
                Ok(file) => {
                    return Ok(Output {
                        dir,
                        created: temp,
                        replace: Some(name.to_owned()),
                        file,
                        armed: true,
                    })
                }
                Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("creating a temporary file for {}", quote(dst)))
                }
            }
        }
        anyhow::bail!(
            "creating a temporary file for {}: {TEMP_NAME_TRIES} names tried, all taken",
            quote(dst)
        )
    }

    /// Put the complete, flushed file under DST's name and flush the directory.
    pub fn commit(mut self, dst: &Path) -> Result<()> {
        if let Some(name) = &self.replace {
            renameat(
                self.dir,
                self.created.as_os_str(),
                self.dir,
                name.as_os_str(),
            )
            .map_err(std::io::Error::from)
            .with_context(|| format!("replacing {}", quote(dst)))?;
            // The old DST is gone; the new one is complete. Nothing to remove any more.
            self.armed = false;
        }
        self.dir
            .sync_all()
            .with_context(|| format!("flushing the directory of {}", quote(dst)))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = unlinkat(
                self.dir,
                self.created.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// open(2) with O_CREAT|O_EXCL (and O_NOFOLLOW): never truncates, never follows a link planted at
/// the name. Mode 0600 until the copy is complete and its own mode is set.
fn create_exclusive(dir: &File, name: &OsStr) -> nix::Result<File> {
    let flags = OFlag::O_WRONLY
        | OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY;
    seedkit::sys::open_at(dir, name.as_bytes(), flags, 0o600)
        .map(File::from)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))
}
