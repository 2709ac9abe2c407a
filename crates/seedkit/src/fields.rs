//! `--format FIELDS`: chosen fields of a record as plain text, for shell scripts.
//!
//! A script that needs two numbers from a record should not parse JSON with sed (that
//! depends on field order and escaping). `--format size_bytes,inodes` prints the values of
//! those fields of the record the tool would print with `--json`, in the order asked,
//! separated by one tab, one record per line, so that `read` or `set --` take them apart.
//!
//! - FIELDS is a comma-separated list of field names; a dot reaches into a nested object
//!   (`mtime.sec`, `seconds.total`).
//! - Numbers and booleans print as in JSON. A field that is absent or null prints as an
//!   empty value.
//! - Strings and byte strings (either form of the byte-string rule) print as their bytes,
//!   written by the toolkit's one rule for names as text ([`crate::quote`]): the backslash
//!   `\\`, the tab, newline, every other control character and every byte that is not UTF-8
//!   `\xNN`, invisible characters (bidirectional controls, zero-width characters) `\u{NNNN}`:
//!   a value never spans a tab or a line, nor reorders it.
//! - A time `{"sec": S, "nsec": N}` prints as `S.NNNNNNNNN`; a list as its items joined with
//!   `,` (each item escaped as above, and a `,` in an item written `\x2c`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::base64;

/// Field names parsed from `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Vec<Vec<String>>);

impl FromStr for Fields {
    type Err = String;

    fn from_str(s: &str) -> Result<Fields, String> {
        let mut fields = Vec::new();
        for name in s.split(',') {
            let parts: Vec<String> = name.split('.').map(str::to_string).collect();
            let valid = |p: &String| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            if !parts.iter().all(valid) {
                return Err(format!(
                    "'{name}' is not a field name (snake_case words, '.' for a nested field)"
                ));
            }
            fields.push(parts);
        }
        Ok(Fields(fields))
    }
}

impl Fields {
    /// The values of these fields of `record`, tab-separated, as one line.
    pub fn line<T: Serialize>(&self, record: &T) -> io::Result<String> {
        let value = serde_json::to_value(record).map_err(io::Error::other)?;
        let mut line = String::new();
        for (i, path) in self.0.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            let mut v = Some(&value);
            for part in path {
                v = v.and_then(|v| v.get(part));
            }
            if let Some(v) = v {
                render(v, &mut line, false);
            }
        }
        line.push('\n');
        Ok(line)
    }

    /// Write the line for `record`.
    pub fn write<W: Write + ?Sized, T: Serialize>(
        &self,
        out: &mut W,
        record: &T,
    ) -> io::Result<()> {
        out.write_all(self.line(record)?.as_bytes())
    }
}

fn render(v: &Value, out: &mut String, in_list: bool) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => escape(s.as_bytes(), out, in_list),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, out, true);
            }
        }
        Value::Object(map) => {
            let bytes = map
                .get("bytes")
                .and_then(Value::as_str)
                .filter(|_| map.len() == 1);
            let time = (map.len() == 2)
                .then(|| Some((map.get("sec")?.as_i64()?, map.get("nsec")?.as_u64()?)))
                .flatten();
            if let Some(raw) = bytes.and_then(base64::decode) {
                escape(&raw, out, in_list);
            } else if let Some((sec, nsec)) = time {
                let _ = write!(out, "{sec}.{nsec:09}");
            } else {
                escape(v.to_string().as_bytes(), out, in_list);
            }
        }
    }
}

/// Bytes as text that never holds a tab, a line break or another control character: the
/// toolkit's one rule for names shown as text ([`crate::quote`]).
fn escape(bytes: &[u8], out: &mut String, in_list: bool) {
    crate::quote::field(bytes, in_list, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Bytes;
    use crate::records::Timestamp;

    #[derive(Serialize)]
    struct Sample {
        path: Bytes,
        size: u64,
        ok: bool,
        mtime: Timestamp,
        target: Option<Bytes>,
        names: Vec<Bytes>,
        seconds: Nested,
    }

    #[derive(Serialize)]
    struct Nested {
        total: f64,
    }

    fn sample(path: &[u8]) -> Sample {
        Sample {
            path: Bytes(path.to_vec()),
            size: 42,
            ok: true,
            mtime: Timestamp { sec: -3, nsec: 5 },
            target: None,
            names: vec![Bytes(b"user.a".to_vec()), Bytes(b"x,y".to_vec())],
            seconds: Nested { total: 0.25 },
        }
    }

    #[test]
    fn fields_print_in_the_order_asked_tab_separated() {
        let f: Fields = "size,path,ok,mtime,target,names,seconds.total"
            .parse()
            .unwrap();
        assert_eq!(
            f.line(&sample(b"a b")).unwrap(),
            "42\ta b\ttrue\t-3.000000005\t\tuser.a,x\\x2cy\t0.25\n"
        );
    }

    #[test]
    fn a_value_never_spans_a_tab_or_a_line() {
        let f: Fields = "path".parse().unwrap();
        assert_eq!(
            f.line(&sample(b"a\tb\nc\\d\xff")).unwrap(),
            "a\\x09b\\x0ac\\\\d\\xff\n"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a,,b", "Size", "a.", "a b", "a;rm"] {
            assert!(bad.parse::<Fields>().is_err(), "{bad:?}");
        }
        assert!("a,b.c".parse::<Fields>().is_ok());
    }
}
