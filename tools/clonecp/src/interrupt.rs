//! SIGINT, SIGTERM and SIGHUP during a copy: the copy stops at the next chunk, the partial
//! destination is removed, and the tool exits 2. Without this, Ctrl-C during a long copy
//! would leave a half-written DST under its final name.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Catch the terminating signals, except those the parent chose to ignore (`nohup`).
pub fn install() {
    let catch = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let old = unsafe { sigaction(signal, &catch) };
        if let Ok(old) = old {
            if old.handler() == SigHandler::SigIgn {
                // SAFETY: restoring the disposition we found.
                let _ = unsafe { sigaction(signal, &old) };
            }
        }
    }
}

/// `Err` once a terminating signal has arrived.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted by a signal");
    }
    Ok(())
}
