//! The destination file: made inside a private temporary directory of clonecp's own in
//! DST's directory (checked and held open, see [`seedkit::output`]), then published under
//! DST's name by one rename relative to that directory: without `--force` only if nothing
//! is there (`RENAME_NOREPLACE`), with it replacing what is there. Until
//! [`Output::commit`] succeeds, dropping the [`Output`] removes what was made.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use seedkit::output::{OutputDir, Temp};
use seedkit::quote;

/// The kind of clonecp's temporaries (`.clonecp.<hex>`), which a later run in the same
/// directory reclaims when the run that made one was killed.
const TEMP_KIND: &str = ".clonecp";
/// The copy's name inside the temporary directory.
const COPY: &[u8] = b"copy";

pub struct Output<'a> {
    temp: Temp<'a>,
    pub file: File,
}

impl<'a> Output<'a> {
    /// A new, empty file (mode 0600 until its own mode is set) in a new temporary
    /// directory of `dir`. `dst` is DST as given, for messages.
    pub fn create(dir: &'a OutputDir, dst: &Path) -> Result<Output<'a>> {
        let temp = Temp::create(dir.fd(), TEMP_KIND, dir.shown())
            .with_context(|| format!("creating {}", quote(dst)))?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOCTTY;
        let file = seedkit::sys::open_at(temp.fd(), COPY, flags, 0o600)
            .map(File::from)
            .with_context(|| format!("creating {}", quote(dst)))?;
        Ok(Output { temp, file })
    }

    /// Put the complete file under `name` in DST's directory, durably (the file flushed,
    /// renamed, the directory flushed): replacing what is there when `replace`, else only
    /// if nothing is.
    pub fn commit(self, name: &OsStr, replace: bool, dst: &Path) -> Result<()> {
        let Output { temp, file } = self;
        temp.publish(COPY, Some(file.as_fd()), name.as_bytes(), replace)
            .map_err(|e| {
                if e.raw_os_error() == Some(nix::libc::EEXIST) {
                    anyhow::anyhow!("creating {}: it exists (--force replaces it)", quote(dst))
                } else {
                    anyhow::Error::new(e).context(format!("creating {}", quote(dst)))
                }
            })
    }
}
