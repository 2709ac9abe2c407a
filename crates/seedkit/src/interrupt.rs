//! SIGINT, SIGTERM and SIGHUP: the tools stop at their next check, undo what they created,
//! and exit with 128 + the signal's number, the status a shell shows for a process that
//! signal killed (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
//!
//! [`install`] catches the three signals (leaving an ignored one ignored, as `nohup` wants);
//! the handler only records which came. The tool calls [`check`] where stopping is safe (per
//! entry, per chunk); its `Err` runs the tool's ordinary failure path, which removes a
//! partial output, and [`crate::cli::run`] then exits 128 + N instead of 2.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::Signal;

/// The first terminating signal that arrived, 0 before one does.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
}

/// Catch SIGINT, SIGTERM and SIGHUP, except those the parent chose to ignore.
pub fn install() {
    crate::sys::catch_signals(
        &[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP],
        on_signal,
    );
}

/// The signal that asked the tool to stop, if one did.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::Relaxed) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// `Err` once a terminating signal has arrived.
pub fn check() -> Result<(), Interrupted> {
    received().map_or(Ok(()), |s| Err(Interrupted(s)))
}

/// The error of a run stopped by a signal: "interrupted by SIGTERM".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub Signal);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.0.as_str())
    }
}

impl std::error::Error for Interrupted {}

/// The exit status after `signal`: 128 + its number.
pub fn exit_status(signal: Signal) -> i32 {
    128 + signal as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_those_a_shell_shows() {
        assert_eq!(exit_status(Signal::SIGHUP), 129);
        assert_eq!(exit_status(Signal::SIGINT), 130);
        assert_eq!(exit_status(Signal::SIGTERM), 143);
        assert_eq!(
            Interrupted(Signal::SIGINT).to_string(),
            "interrupted by SIGINT"
        );
    }
}
