//! The `main` wrapper every tool uses, so that errors and exit codes look the same everywhere.
//!
//! A tool's `main` is one line: `seedkit::run("normlines", || normlines::run(Args::parse()))`.
//! The closure returns [`Status`] for a finished run and `Err` for a fatal error; `run`
//! prints the error once, as `<tool>: <chain joined by ": ">`, and exits 2. Items that fail
//! while the tool goes on are reported with [`warn`] and the run returns
//! [`Status::Partial`] (exit 1). A broken pipe on stdout ends the tool quietly with exit 0,
//! as `head` users expect. Usage errors are clap's, which exits 2 as well. A run that failed
//! after SIGINT, SIGTERM or SIGHUP (see [`crate::interrupt`]) exits 128 + the signal number.

use std::fmt::Display;
use std::io::{self, Write};
use std::process;
use std::sync::OnceLock;

/// Exit status of a successful run.
pub const EXIT_SUCCESS: i32 = 0;
/// Exit status when some items failed and each was reported.
pub const EXIT_PARTIAL: i32 = 1;
/// Exit status on a usage or fatal error.
pub const EXIT_FATAL: i32 = 2;

static TOOL: OnceLock<&'static str> = OnceLock::new();

/// How a run that did not fail fatally ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything was done.
    Success,
    /// Some items failed; each was reported on stderr.
    Partial,
    /// Nothing useful was done and the failures were already reported (exit 2).
    Failed,
}

impl Status {
    /// `Partial` when `failures` is non-zero.
    pub fn from_failures(failures: u64) -> Status {
        if failures == 0 {
            Status::Success
        } else {
            Status::Partial
        }
    }

    pub fn code(self) -> i32 {
        match self {
            Status::Success => EXIT_SUCCESS,
            Status::Partial => EXIT_PARTIAL,
            Status::Failed => EXIT_FATAL,
        }
    }
}

/// The running tool's name, as given to [`run`].
pub fn tool_name() -> &'static str {
    TOOL.get().copied().unwrap_or("seedkit")
}

/// Print one diagnostic line, `<tool>: <message>`, on stderr, within the bounds of
/// [`crate::diag`]: one line whatever the message carries (names come quoted by
/// [`crate::quote`], anything else that got in is escaped by the same rule), folded with
/// its kind past ten, and not at all past 64 KiB of them.
pub fn warn(message: impl Display) {
    crate::diag::warn(tool_name(), &message.to_string());
}

/// Print a line the user asked for on stderr (`-v`), `<tool>: <message>`, escaped as
/// [`warn`]'s, never folded nor counted.
pub fn inform(message: impl Display) {
    crate::diag::always(tool_name(), &message.to_string());
}

/// Whether an error (anywhere in its chain) is a broken pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// An error's chain as one line, `outer: inner: cause`, with the `(os error N)` suffix that
/// Rust adds to system errors removed (the text is strerror's, as coreutils print it).
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = match cause.downcast_ref::<io::Error>() {
            Some(e) => io_cause(e),
            None => cause.to_string(),
        };
        // anyhow contexts built with `{:#}` of an inner error can repeat it; keep one copy.
        if parts.last().is_some_and(|p| p.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// An I/O error as coreutils print it: `No such file or directory`, without `(os error 2)`.
pub fn io_cause(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

/// Run a tool's body and exit with the toolkit's conventions. Never returns.
pub fn run<F>(tool: &'static str, body: F) -> !
where
    F: FnOnce() -> anyhow::Result<Status>,
{
    let _ = TOOL.set(tool);
    let result = body().and_then(|status| {
        io::stdout().flush()?;
        Ok(status)
    });
    // What was folded or left out is counted before the last line.
    crate::diag::finish(tool);
    let code = match result {
        Ok(status) => status.code(),
        Err(err) if is_broken_pipe(&err) => EXIT_SUCCESS,
        Err(err) => {
            crate::diag::always(tool, &error_line(&err));
            // A run stopped by a signal says so in its status, whatever error it ended with.
            crate::interrupt::received().map_or(EXIT_FATAL, crate::interrupt::exit_status)
        }
    };
    process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing output")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
        let other = anyhow::anyhow!("nope");
        assert!(!is_broken_pipe(&other));
    }

    #[test]
    fn error_line_reads_like_coreutils() {
        let err = Err::<(), _>(io::Error::from_raw_os_error(2))
            .context("reading 'x'")
            .unwrap_err();
        assert_eq!(error_line(&err), "reading 'x': No such file or directory");
    }

    #[test]
    fn status_from_failures() {
        assert_eq!(Status::from_failures(0).code(), 0);
        assert_eq!(Status::from_failures(3).code(), 1);
    }
}
