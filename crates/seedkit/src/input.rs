//! The input protocol: a tool that works on one tree or file takes it from its argument, or,
//! when the argument is missing or `-`, from stdin. Stdin holds one path, either as a plain
//! line (the exact bytes up to the newline) or as a JSON object with a `path` field (what
//! another tool printed with `--json`). Blank lines around it are ignored.

use std::ffi::OsStr;
use std::io::{self, IsTerminal, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::json::Bytes;

/// Stdin larger than this is not a path record.
const STDIN_LIMIT: u64 = 1 << 20;

/// Whether an argument means stdin.
pub fn is_stdin(arg: Option<&OsStr>) -> bool {
    arg.is_none_or(|a| a == "-")
}

/// The path named by `arg`, or read from stdin when `arg` is missing or `-`.
pub fn resolve(arg: Option<&OsStr>) -> Result<PathBuf> {
    if !is_stdin(arg) {
        return Ok(PathBuf::from(arg.unwrap_or_default()));
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        bail!("no input: give a path as argument or pipe a path or JSON record into stdin");
    }
    let mut text = Vec::new();
    stdin
        .lock()
        .take(STDIN_LIMIT + 1)
        .read_to_end(&mut text)
        .context("reading a path from stdin")?;
    if text.len() as u64 > STDIN_LIMIT {
        bail!("reading a path from stdin: more than 1 MiB of input");
    }
    parse(&text)
}

/// Parse what stdin held: exactly one non-blank line.
pub fn parse(text: &[u8]) -> Result<PathBuf> {
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    let Some(line) = lines.next() else {
        bail!("reading a path from stdin: no path given");
    };
    if lines.next().is_some() {
        bail!("reading a path from stdin: more than one line (one path or JSON record expected)");
    }
    let trimmed = line.trim_ascii();
    if trimmed.starts_with(b"{") {
        let value: serde_json::Value =
            serde_json::from_slice(trimmed).context("reading a JSON record from stdin")?;
        // A record of the toolkit newer than this tool knows may mean something else by
        // `path`: refuse it rather than guess.
        if let (Some(format), Some(version)) = (
            value.get("format").and_then(serde_json::Value::as_str),
            value.get("version").and_then(serde_json::Value::as_u64),
        ) {
            if let Some(known) = crate::records::known_version(format) {
                crate::records::check_version(format, version, format, known)
                    .context("reading a JSON record from stdin")?;
            }
        }
        let Some(path) = value.get("path") else {
            bail!("reading a JSON record from stdin: it has no \"path\" field");
        };
        let bytes = Bytes::deserialize_value(path.clone())
            .context("reading a JSON record from stdin: bad \"path\" field")?;
        if bytes.0.is_empty() {
            bail!("reading a JSON record from stdin: empty \"path\"");
        }
        return Ok(bytes.into());
    }
    Ok(PathBuf::from(OsStr::from_bytes(line)))
}

impl Bytes {
    fn deserialize_value(value: serde_json::Value) -> serde_json::Result<Bytes> {
        serde_json::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_keeps_its_bytes() {
        assert_eq!(parse(b"/tmp/a b \n").unwrap(), PathBuf::from("/tmp/a b "));
        assert_eq!(parse(b"\n/x\r\n\n").unwrap(), PathBuf::from("/x"));
        let p = parse(b"/t/\xff\n").unwrap();
        assert_eq!(p.as_os_str().as_bytes(), b"/t/\xff");
    }

    #[test]
    fn json_record_gives_its_path() {
        assert_eq!(
            parse(br#"{"path":"/s/tree","files":3}"#).unwrap(),
            PathBuf::from("/s/tree")
        );
        let p = parse(br#"{"path":{"bytes":"L3T/"}}"#).unwrap();
        assert_eq!(p.as_os_str().as_bytes(), b"/t\xff");
    }

    #[test]
    fn a_newer_record_is_refused() {
        assert!(parse(br#"{"format":"seed-size","version":1,"path":"/t"}"#).is_ok());
        let err = parse(br#"{"format":"seed-size","version":9,"path":"/t"}"#).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "reading a JSON record from stdin: seed-size record version 9 is newer than this toolkit reads (version 1 at most): upgrade the toolkit"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"  \n\n").is_err());
        assert!(parse(b"/a\n/b\n").is_err());
        assert!(parse(br#"{"nopath":1}"#).is_err());
        assert!(parse(br#"{"path":"#).is_err());
    }
}
