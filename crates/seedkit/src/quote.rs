//! Paths in diagnostics.
//!
//! A diagnostic is one line, so a path is shown between single quotes with every byte that
//! is not printable UTF-8 (control characters, invalid UTF-8) and the backslash written as
//! `\xNN` / `\\`, a single quote as `\'` (so a name cannot close the quoting early), and the
//! invisible characters that reorder or hide text on a terminal (bidirectional controls,
//! zero-width characters) as `\u{NNNN}`. A name chosen by whoever made an image is therefore
//! shown exactly and can neither move the cursor nor pass itself off as another name. The
//! path itself is never altered: this is for stderr only.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A path shown for humans: `quote(p)` displays as `'p'`.
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
        f.write_str("'")?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\'' => f.write_str("\\'")?,
                    c if is_invisible(c) => write!(f, "\\u{{{:04x}}}", u32::from(c))?,
                    c if c.is_control() => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            write!(f, "\\x{b:02x}")?;
                        }
                    }
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("'")
    }
}

/// Characters a terminal does not show but that change what is shown: the bidirectional
/// embeddings, overrides and isolates (an override shows a name ending in `gpj.exe` as
/// `exe.jpg`), the direction marks, and
/// the zero-width characters and BOM (which make two names look the same).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

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
}
