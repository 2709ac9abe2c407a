//! `normlines`: print the entries of list files (package lists, include lists).
//!
//! Reads the files named as arguments, or stdin (`-` or no argument), as bytes. For every
//! line: remove one trailing `\r`, cut everything from the first `#`, trim surrounding white
//! space exactly as Go's `strings.TrimSpace` does (Unicode White_Space, which is Rust's
//! `char::is_whitespace`), drop lines left empty, and print the rest, one per line (`-0`:
//! NUL-terminated; `--json`: one JSON string per line). Invalid UTF-8 passes through
//! untouched.
//!
//! It streams ([`stream::Normalizer`]): memory does not grow with the input or with the
//! length of a line, whose entry is written out as it is read. The one thing held is a run of
//! white space inside an entry, until the content after it shows it is not trailing. `--json`
//! must see a whole entry to print it as a string or as bytes, so there memory is bounded by
//! the longest entry instead.
//!
//! Exit status: 0 success; 1 when some input failed (unreadable, or no entries) while others
//! gave entries; 2 when nothing was printed and some input failed, or on a usage error. An
//! input with no entries is an error unless `--allow-empty`.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser;
use seedkit::json::{emit, Bytes};
use seedkit::{quote, warn, Status};

pub mod stream;

use stream::{Entries, Normalizer};

const BUF_SIZE: usize = 128 * 1024;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Print the entries of list files: CR, # comments, blanks and surrounding white space removed",
    long_about = "Print the entries of list files (package lists, include lists). For every \
        line: remove one trailing CR, cut everything from the first '#', trim surrounding \
        Unicode white space, drop lines left empty, and print the rest. Works on bytes: \
        invalid UTF-8 passes through untouched.",
    after_help = "Exit status: 0 success, 1 some inputs failed while others gave entries, \
        2 nothing printed and an input failed, or a usage error.\n\n\
        Example: normlines packages.list | xargs apt-get install -y"
)]
pub struct Args {
    /// Files to read; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<OsString>,

    /// End each entry with NUL instead of newline (for `xargs -0`).
    #[arg(short = '0', long, conflicts_with = "json")]
    pub null: bool,

    /// Print each entry as a JSON string on its own line (non-UTF-8 entries as {"bytes": base64}).
    #[arg(long)]
    pub json: bool,

    /// Do not treat an input without entries as an error.
    #[arg(long)]
    pub allow_empty: bool,
}

/// How entries are terminated on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Lines,
    Null,
    Json,
}

impl Args {
    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.null {
            Format::Null
        } else {
            Format::Lines
        }
    }
}

pub fn run(args: &Args) -> Result<Status> {
    let stdin_only = [OsString::from("-")];
    let inputs: &[OsString] = if args.files.is_empty() {
        &stdin_only
    } else {
        &args.files
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(BUF_SIZE, stdout.lock());
    let format = args.format();

    let mut printed = 0u64;
    let mut failures = 0u64;
    for name in inputs {
        let path = Path::new(name);
        let result = if name == "-" {
            filter(io::stdin().lock(), &mut out, format)
        } else {
            File::open(path)
                .map_err(Failure::Read)
                .and_then(|f| filter(f, &mut out, format))
        };
        match result {
            Ok(0) if !args.allow_empty => {
                warn(format_args!("no entries in {}", quote(path)));
                failures += 1;
            }
            Ok(n) => printed += n,
            Err(Failure::Write(e)) => return Err(e).context("writing output"),
            Err(Failure::Read(e)) => {
                warn(format_args!(
                    "reading {}: {}",
                    quote(path),
                    seedkit::cli::io_cause(&e)
                ));
                failures += 1;
            }
        }
    }
    out.flush().context("writing output")?;
    match (failures, printed) {
        (0, _) => Ok(Status::Success),
        (_, 0) => Ok(Status::Failed),
        _ => Ok(Status::Partial),
    }
}

/// Why filtering one input stopped: its reading or our writing.
enum Failure {
    Read(io::Error),
    Write(io::Error),
}

/// Copy the entries of `input` to `out`; returns how many were printed.
fn filter<R: Read, W: Write>(input: R, out: &mut W, format: Format) -> Result<u64, Failure> {
    match format {
        Format::Lines => normalize_into(input, &mut Terminated { out, end: b'\n' }),
        Format::Null => normalize_into(input, &mut Terminated { out, end: b'\0' }),
        Format::Json => normalize_into(
            input,
            &mut Json {
                out,
                entry: Vec::new(),
            },
        ),
    }
}

/// Feed `input` through a normaliser to `out`; returns how many entries it printed.
fn normalize_into<R: Read, E: Entries>(input: R, out: &mut E) -> Result<u64, Failure> {
    let mut reader = BufReader::with_capacity(BUF_SIZE, input);
    let mut normalizer = Normalizer::default();
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // Part of the line may be printed already: end it, so that the entries of the
                // next input do not run on from it.
                normalizer.finish(out).map_err(Failure::Write)?;
                return Err(Failure::Read(e));
            }
        };
        let len = chunk.len();
        normalizer.feed(chunk, out).map_err(Failure::Write)?;
        reader.consume(len);
    }
    normalizer.finish(out).map_err(Failure::Write)?;
    Ok(normalizer.entries())
}

/// Entries written as they come, each followed by `end`.
struct Terminated<'a, W> {
    out: &'a mut W,
    end: u8,
}

impl<W: Write> Entries for Terminated<'_, W> {
    fn extend(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn end(&mut self) -> io::Result<()> {
        self.out.write_all(&[self.end])
    }
}

/// Entries as JSON strings: each is gathered whole, since whether it is valid UTF-8 (a
/// string) or not (`{"bytes": ...}`) is known only at its end.
struct Json<'a, W> {
    out: &'a mut W,
    entry: Vec<u8>,
}

impl<W: Write> Entries for Json<'_, W> {
    fn extend(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.entry.extend_from_slice(bytes);
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        let entry = Bytes(std::mem::take(&mut self.entry));
        let written = emit(self.out, &entry);
        self.entry = entry.0;
        self.entry.clear();
        if self.entry.capacity() > stream::KEEP_CAPACITY {
            self.entry = Vec::new();
        }
        written
    }
}

/// The entry a line holds (possibly empty). `line` may end with `\n`. The rule, line by
/// line; [`stream::Normalizer`] applies it to a stream and must agree with it.
pub fn normalize(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = match line.iter().position(|&b| b == b'#') {
        Some(i) => &line[..i],
        None => line,
    };
    trim_space(line)
}

/// Go's `bytes.TrimSpace`: strip leading and trailing Unicode white space; an invalid UTF-8
/// sequence is not white space and stops the trim.
pub fn trim_space(mut s: &[u8]) -> &[u8] {
    while let Some(n) = leading_space_len(s) {
        s = &s[n..];
    }
    while let Some(n) = trailing_space_len(s) {
        s = &s[..s.len() - n];
    }
    s
}

fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// Length of the white-space character that starts `s`, if it starts with one.
fn leading_space_len(s: &[u8]) -> Option<usize> {
    let &first = s.first()?;
    if first < 0x80 {
        return is_ascii_space(first).then_some(1);
    }
    let len = match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => return None, // no 4-byte character is white space
    };
    let c = std::str::from_utf8(s.get(..len)?).ok()?.chars().next()?;
    c.is_whitespace().then_some(len)
}

/// Length of the white-space character that ends `s`, if it ends with one.
fn trailing_space_len(s: &[u8]) -> Option<usize> {
    let &last = s.last()?;
    if last < 0x80 {
        return is_ascii_space(last).then_some(1);
    }
    for len in 2..=3 {
        let start = s.len().checked_sub(len)?;
        if let Ok(text) = std::str::from_utf8(&s[start..]) {
            return text
                .chars()
                .next()
                .filter(|c| c.is_whitespace())
                .map(|_| len);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_cr_comments_and_space() {
        assert_eq!(normalize(b"  vim  # editor\r\n"), b"vim");
        assert_eq!(normalize(b"# only a comment\n"), b"");
        assert_eq!(normalize(b"\t\r\n"), b"");
        assert_eq!(normalize(b"a b\n"), b"a b");
        assert_eq!(normalize(b"x#y#z"), b"x");
    }

    #[test]
    fn removes_only_one_trailing_cr() {
        // The second CR is white space and goes in the trim; the point is that the CR is
        // removed before the comment cut, so "a\r#c" keeps nothing after 'a'.
        assert_eq!(normalize(b"a\r\r\n"), b"a");
        assert_eq!(normalize(b"a\r#c\r\n"), b"a");
    }

    #[test]
    fn trims_unicode_white_space_like_go() {
        // U+00A0, U+2003, U+3000, U+0085, U+FEFF (not White_Space in Go or Rust)
        assert_eq!(trim_space("\u{a0}\u{2003}x\u{3000}\u{85}".as_bytes()), b"x");
        assert_eq!(trim_space("\u{feff}x".as_bytes()), "\u{feff}x".as_bytes());
        // U+200B ZERO WIDTH SPACE is not White_Space either.
        assert_eq!(trim_space("\u{200b}x".as_bytes()), "\u{200b}x".as_bytes());
    }

    #[test]
    fn invalid_utf8_stops_the_trim_and_passes_through() {
        assert_eq!(trim_space(b" \xff x \xc2"), b"\xff x \xc2");
        assert_eq!(trim_space(b"\xa0x"), b"\xa0x"); // a lone continuation byte
        assert_eq!(normalize(b" \xfe\xff \n"), b"\xfe\xff");
    }

    /// Gives `data`, then fails.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("device gone"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn a_read_failure_mid_line_ends_the_entry_read_so_far() {
        for (format, want) in [
            (Format::Lines, &b"one\ntw\n"[..]),
            (Format::Null, b"one\0tw\0"),
            (Format::Json, b"\"one\"\n\"tw\"\n"),
        ] {
            let mut out = Vec::new();
            let result = filter(Failing(b" one \n tw"), &mut out, format);
            assert!(matches!(result, Err(Failure::Read(_))));
            assert_eq!(out, want, "{format:?}");
        }
    }

    #[test]
    fn every_white_space_char_is_trimmed_and_no_other() {
        for c in (0..=0x3000u32).filter_map(char::from_u32) {
            let s = format!("{c}x{c}");
            let want: &[u8] = if c.is_whitespace() {
                b"x"
            } else {
                s.as_bytes()
            };
            assert_eq!(trim_space(s.as_bytes()), want, "U+{:04X}", c as u32);
        }
    }
}
