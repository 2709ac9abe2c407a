//! Diagnostics with a bound: what a tool prints on stderr, and the errors a `--json` record
//! keeps, stay small whatever the input, since a hostile image can make every entry fail,
//! each with a path of any length.
//!
//! - A path in a message is shortened past [`crate::quote::SHOWN_MAX`] bytes to its two
//!   ends ([`crate::quote`]), and a line past [`MAX_LINE`] bytes is cut.
//! - Warnings of one kind (the same message but for its quoted names and its numbers) are
//!   printed [`FOLD_AFTER`] times; the rest are counted, and the run ends with one line
//!   `... and 4,990 more like this: <the message, names as '...', numbers as N>`.
//! - Warnings stop being printed once [`MAX_BYTES`] have been; the run ends with one line
//!   saying how many were not. The fatal error line (and the lines that end the run) are
//!   always printed.
//! - A record keeps at most [`MAX_KEPT`] errors holding at most [`MAX_KEPT_BYTES`] of
//!   paths and messages ([`keep`]); its failure count counts them all.

use std::io::{self, Write};
use std::sync::Mutex;

/// Warnings of one kind printed before the rest are only counted.
pub const FOLD_AFTER: u64 = 10;
/// Bytes of warnings printed in one run at most.
pub const MAX_BYTES: usize = 64 << 10;
/// The longest line printed.
pub const MAX_LINE: usize = 4096;
/// Errors a record keeps at most.
pub const MAX_KEPT: usize = 100;
/// Bytes of paths and messages the errors kept in a record hold at most.
pub const MAX_KEPT_BYTES: usize = 64 << 10;
/// Kinds of warnings told apart; past them, every new kind counts as one more.
const MAX_KINDS: usize = 64;
/// Bytes of a kind's text kept to tell it apart and to show in its count.
const KIND_TEXT: usize = 256;

struct State {
    /// Bytes of warnings printed.
    printed: usize,
    /// Warnings not printed for want of room.
    dropped: u64,
    /// Each kind seen, in order, with how many times.
    kinds: Vec<(String, u64)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    printed: 0,
    dropped: 0,
    kinds: Vec::new(),
});

/// Print a warning line `<tool>: <message>`, within the bounds above.
pub fn warn(tool: &str, message: &str) {
    let line = line(tool, message);
    let kind = kind_of(message);
    let Ok(mut state) = STATE.lock() else {
        return;
    };
    let known = state.kinds.iter().position(|(k, _)| *k == kind);
    let seen = match known {
        Some(i) => {
            state.kinds[i].1 += 1;
            state.kinds[i].1
        }
        None if state.kinds.len() < MAX_KINDS => {
            state.kinds.push((kind, 1));
            1
        }
        None => {
            state.dropped += 1;
            return;
        }
    };
    if seen > FOLD_AFTER {
        return;
    }
    if state.printed + line.len() > MAX_BYTES {
        state.dropped += 1;
        return;
    }
    state.printed += line.len();
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Print a line that is not counted nor folded: the fatal error, or a line a tool was
/// asked for (`-v`).
pub fn always(tool: &str, message: &str) {
    let _ = io::stderr()
        .lock()
        .write_all(line(tool, message).as_bytes());
}

/// Print the counts of what was folded or dropped; the end of a run.
pub fn finish(tool: &str) {
    let Ok(mut state) = STATE.lock() else {
        return;
    };
    let mut out = String::new();
    for (kind, seen) in &state.kinds {
        if *seen > FOLD_AFTER {
            let more = thousands(seen - FOLD_AFTER);
            out.push_str(&line(
                tool,
                &format!("... and {more} more like this: {kind}"),
            ));
        }
    }
    if state.dropped > 0 {
        let message = format!(
            "... and {} more warnings not shown (more than {} KiB of them)",
            thousands(state.dropped),
            MAX_BYTES >> 10
        );
        out.push_str(&line(tool, &message));
    }
    state.kinds.clear();
    state.dropped = 0;
    let _ = io::stderr().lock().write_all(out.as_bytes());
}

/// Keep `item` in a record's `list` of errors while it holds fewer than [`MAX_KEPT`] and
/// their paths and messages (`size` bytes for this one) stay within [`MAX_KEPT_BYTES`];
/// `used` counts those bytes. Returns whether it was kept.
pub fn keep<T>(list: &mut Vec<T>, used: &mut usize, item: T, size: usize) -> bool {
    if list.len() >= MAX_KEPT || used.saturating_add(size) > MAX_KEPT_BYTES {
        return false;
    }
    *used += size;
    list.push(item);
    true
}

/// `<tool>: <message>\n`, one line, escaped by the rule of [`crate::quote`], cut at
/// [`MAX_LINE`] bytes.
fn line(tool: &str, message: &str) -> String {
    let text = crate::quote::sanitize(message);
    let mut line = format!("{tool}: {text}");
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE - 6;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" [...]");
    }
    line.push('\n');
    line
}

/// What makes two warnings of one kind: the message with each quoted name written `'...'`
/// and each number `N` (a shortened path, `'a'...'b'`, is one name).
fn kind_of(message: &str) -> String {
    let mut kind = String::new();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if kind.len() >= KIND_TEXT {
            break;
        }
        match c {
            '\'' => {
                // A name as crate::quote writes it: up to the next quote not after a
                // backslash.
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '\'' => break,
                        _ => {}
                    }
                }
                if !kind.ends_with("'...'") {
                    kind.push_str("'...'");
                }
            }
            '0'..='9' => {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                kind.push('N');
            }
            c => kind.push(c),
        }
    }
    // The two ends of a shortened name are one name.
    kind.replace("'...'...'...'", "'...'")
}

/// `4990` as `4,990`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kind_is_the_message_but_its_names_and_numbers() {
        let a = kind_of("extracting 'a/b': inode 12 has 1 link; name skipped");
        let b = kind_of("extracting 'x\\'y'...'z': inode 7 has 2 link; name skipped");
        assert_eq!(a, "extracting '...': inode N has N link; name skipped");
        assert_eq!(a, b);
        assert_ne!(a, kind_of("extracting 'a': cannot read"));
    }

    #[test]
    fn counts_read_like_numbers() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(4990), "4,990");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn lines_are_one_line_and_cut() {
        assert_eq!(line("t", "a\nb"), "t: a\\x0ab\n");
        let long = line("t", &"é".repeat(5000));
        assert!(
            long.len() <= MAX_LINE + 1 && long.ends_with(" [...]\n"),
            "{long}"
        );
    }

    #[test]
    fn kept_errors_are_bounded_in_count_and_bytes() {
        let (mut list, mut used) = (Vec::new(), 0);
        assert!(!keep(&mut list, &mut used, 0, MAX_KEPT_BYTES + 1));
        for i in 0..MAX_KEPT + 5 {
            keep(&mut list, &mut used, i, 10);
        }
        assert_eq!(list.len(), MAX_KEPT);
        let (mut list, mut used) = (Vec::new(), 0);
        for i in 0..10 {
            keep(&mut list, &mut used, i, MAX_KEPT_BYTES / 4);
        }
        assert_eq!(list.len(), 4);
    }
}
