//! Progress on long work: one self-overwriting line on stderr, only when stderr is a
//! terminal (or when forced), at most ten updates a second, erased when done.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(100);

pub struct Progress {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// Progress that shows only when stderr is a terminal.
    pub fn new() -> Progress {
        Progress::with_enabled(io::stderr().is_terminal())
    }

    pub fn with_enabled(enabled: bool) -> Progress {
        Progress {
            enabled,
            last: None,
            drawn: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Show `message` unless the last update was under 100 ms ago. The closure keeps the
    /// formatting off the hot path when nothing is drawn.
    pub fn update<D: Display>(&mut self, message: impl FnOnce() -> D) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.last = Some(now);
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{}", message());
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erase the progress line.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
