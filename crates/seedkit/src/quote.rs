//! How a byte string (a path, a name, a symlink target) is shown as text: one rule for every
//! place a name reaches a terminal or a text format (diagnostics, listings, the lines of
//! `--diff`, `--format` fields). JSON is not such a place: it carries the bytes themselves
//! (see [`crate::json`]).
//!
//! # The rule
//! Printable UTF-8 stays as it is, except:
//! - the backslash is written `\\`;
//! - every control character (C0, DEL, C1) and every byte that is not UTF-8 is written
//!   `\xNN`, byte by byte, so that a name can neither end the line nor move the cursor;
//! - every character a terminal does not show but that changes what is shown, written
//!   `\u{NNNN}`: the format characters (Unicode category Cf: bidirectional embeddings,
//!   overrides, isolates and marks, zero-width spaces and joiners, the BOM, soft hyphen,
//!   tag characters), and every white space character but the ASCII space (no-break and
//!   wide spaces, line and paragraph separators). An override shows a name ending in
//!   `gpj.exe` as `exe.jpg`; a zero-width space makes two names look the same.
//!
//! # The forms
//! - [`quote`] / [`quote_bytes`], for diagnostics: always between single quotes, a `'`
//!   inside written `\'` (so a name cannot close the quoting early). A path longer than
//!   [`SHOWN_MAX`] bytes is shortened to its first and last [`SHOWN_END`] bytes, each quoted,
//!   joined by `...`: `'/a/very/long'...'path/end'`. Diagnostics stay short and the two
//!   ends (where it starts, which entry it is) stay visible.
//! - [`name`], for listings: bare when it needs nothing of the above and holds no space, no
//!   quote and no backslash (as `ls` shows names), else quoted as for diagnostics; never
//!   shortened.
//! - [`field`], for the tab-separated fields of `--format`: unquoted, never shortened, a `,`
//!   in a list item written `\x2c`.
//!
//! The bytes themselves are never altered: a shown name is for people and scripts to read.

use std::borrow::Cow;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Paths longer than this many bytes are shortened in diagnostics.
pub const SHOWN_MAX: usize = 1024;
/// Bytes shown of each end of a shortened path.
pub const SHOWN_END: usize = 256;

/// A path shown in a diagnostic: `quote(p)` displays as `'p'`.
pub struct Quoted<'a>(&'a [u8]);

/// Wrap a path (or any `AsRef<Path>`) for display in a diagnostic.
pub fn quote<P: AsRef<Path> + ?Sized>(path: &P) -> Quoted<'_> {
    Quoted(path.as_ref().as_os_str().as_bytes())
}

/// Wrap raw bytes (a name read from an image) for display in a diagnostic.
pub fn quote_bytes(bytes: &[u8]) -> Quoted<'_> {
    Quoted(bytes)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        if bytes.len() <= SHOWN_MAX {
            return quoted(f, bytes);
        }
        // Cut on character boundaries, so that a character is not shown as broken bytes.
        let mut head = SHOWN_END;
        while head > 0 && is_continuation(bytes[head]) {
            head -= 1;
        }
        let mut tail = bytes.len() - SHOWN_END;
        while tail < bytes.len() && is_continuation(bytes[tail]) {
            tail += 1;
        }
        quoted(f, &bytes[..head])?;
        f.write_str("...")?;
        quoted(f, &bytes[tail..])
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xc0 == 0x80
}

/// A name in a listing: bare when plain, else quoted (never shortened).
pub struct Name<'a>(&'a [u8]);

/// Wrap a name or path for a listing line.
pub fn name(bytes: &[u8]) -> Name<'_> {
    Name(bytes)
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = std::str::from_utf8(self.0).is_ok_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| !matches!(c, ' ' | '\'' | '"' | '\\') && shown_as_is(c))
        });
        if plain {
            // Valid UTF-8 by the test above.
            f.write_str(std::str::from_utf8(self.0).unwrap_or_default())
        } else {
            quoted(f, self.0)
        }
    }
}

/// Append `bytes` as a `--format` field: unquoted, a `,` written `\x2c` when `in_list`.
pub fn field(bytes: &[u8], in_list: bool, out: &mut String) {
    let _ = escape(out, bytes, false, in_list);
}

/// A diagnostic line with every control and invisible character written as the rule says,
/// and nothing else changed: the last defence for text that did not come through a quoting
/// form (an error message of the system or of a library).
pub fn sanitize(line: &str) -> Cow<'_, str> {
    if line.chars().all(shown_as_is) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        let _ = escape_char(&mut out, c);
    }
    Cow::Owned(out)
}

fn quoted<W: fmt::Write + ?Sized>(out: &mut W, bytes: &[u8]) -> fmt::Result {
    out.write_char('\'')?;
    escape(out, bytes, true, false)?;
    out.write_char('\'')
}

/// The rule, for `bytes`; `quoted`: a `'` is written `\'`; `comma`: a `,` is written `\x2c`.
fn escape<W: fmt::Write + ?Sized>(
    out: &mut W,
    bytes: &[u8],
    quoted: bool,
    comma: bool,
) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.write_str("\\\\")?,
                '\'' if quoted => out.write_str("\\'")?,
                ',' if comma => out.write_str("\\x2c")?,
                c => escape_char(out, c)?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// One character: as it is, or `\xNN` (control) or `\u{NNNN}` (invisible).
fn escape_char<W: fmt::Write + ?Sized>(out: &mut W, c: char) -> fmt::Result {
    if c.is_control() {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            write!(out, "\\x{b:02x}")?;
        }
        Ok(())
    } else if is_invisible(c) {
        write!(out, "\\u{{{:04x}}}", u32::from(c))
    } else {
        out.write_char(c)
    }
}

/// Whether a character is shown as itself by the rule.
fn shown_as_is(c: char) -> bool {
    !c.is_control() && !is_invisible(c)
}

/// White space other than the ASCII space, and the format characters (Unicode 15's
/// category Cf): what a terminal does not show but that moves, hides or reorders text.
fn is_invisible(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{890}'..='\u{891}'
                | '\u{8e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn shown_field(bytes: &[u8], in_list: bool) -> String {
        let mut s = String::new();
        field(bytes, in_list, &mut s);
        s
    }

    #[test]
    fn plain_paths_are_only_quoted() {
        assert_eq!(quote("a b/c").to_string(), "'a b/c'");
        assert_eq!(quote("héllo").to_string(), "'héllo'");
    }

    #[test]
    fn control_and_invalid_bytes_are_escaped() {
        let p = Path::new(OsStr::from_bytes(b"a\nb\xff\\"));
        assert_eq!(quote(p).to_string(), "'a\\x0ab\\xff\\\\'");
    }

    #[test]
    fn a_name_cannot_close_its_quotes_or_reorder_the_line() {
        // The attack: a name that ends the quoting and writes its own text after it, and one
        // whose right-to-left override shows "exe.jpg" for a name that ends in ".exe".
        let p = Path::new(OsStr::from_bytes("x' is fine; 'y".as_bytes()));
        assert_eq!(quote(p).to_string(), "'x\\' is fine; \\'y'");
        let p = Path::new(OsStr::from_bytes("a\u{202e}gpj.exe\u{200b}".as_bytes()));
        assert_eq!(quote(p).to_string(), "'a\\u{202e}gpj.exe\\u{200b}'");
    }

    #[test]
    fn every_form_follows_the_one_rule() {
        let hostile = "in\u{202e}voice\u{2066}\u{a0}\u{2028}\u{e0041}\u{ad}\t".as_bytes();
        let escaped = "in\\u{202e}voice\\u{2066}\\u{00a0}\\u{2028}\\u{e0041}\\u{00ad}\\x09";
        assert_eq!(quote_bytes(hostile).to_string(), format!("'{escaped}'"));
        assert_eq!(name(hostile).to_string(), format!("'{escaped}'"));
        assert_eq!(shown_field(hostile, false), escaped);
        assert_eq!(sanitize("a\u{202e}b\nc\\d"), "a\\u{202e}b\\x0ac\\d");
    }

    #[test]
    fn listing_names_are_bare_when_plain() {
        assert_eq!(name(b"plain.txt").to_string(), "plain.txt");
        assert_eq!(name("héllo".as_bytes()).to_string(), "héllo");
        assert_eq!(name(b"a b").to_string(), "'a b'");
        assert_eq!(name(b"it's").to_string(), "'it\\'s'");
        assert_eq!(name(b"say \"hi\"").to_string(), "'say \"hi\"'");
        assert_eq!(name(b"\x1b[31mred").to_string(), "'\\x1b[31mred'");
        assert_eq!(
            name(b"new\nline\xff\\").to_string(),
            "'new\\x0aline\\xff\\\\'"
        );
        assert_eq!(name(b"").to_string(), "''");
    }

    #[test]
    fn fields_escape_commas_in_lists_only() {
        assert_eq!(shown_field(b"a,b'c", false), "a,b'c");
        assert_eq!(shown_field(b"a,b", true), "a\\x2cb");
    }

    #[test]
    fn long_paths_keep_both_ends() {
        let mut p = "é".repeat(600).into_bytes();
        p.extend_from_slice(b"/the-end");
        let shown = quote_bytes(&p).to_string();
        let (head, tail) = shown.split_once("...").unwrap();
        assert_eq!(head, format!("'{}'", "é".repeat(128)));
        assert!(tail.ends_with("é/the-end'"), "{tail}");
        assert!(tail.len() <= SHOWN_END + 2, "{}", tail.len());
        let exact = vec![b'x'; SHOWN_MAX];
        assert_eq!(quote_bytes(&exact).to_string().len(), SHOWN_MAX + 2);
    }
}
