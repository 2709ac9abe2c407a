//! normlines' memory, measured on the running binary: a single line of hundreds of megabytes
//! streams through in a few megabytes.

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;

const BIN: &str = env!("CARGO_BIN_EXE_normlines");

const MIB: usize = 1024 * 1024;

/// What the line is made of: leading white space (ASCII and Unicode), then content with white
/// space and multi-byte characters inside it, then a comment (with invalid UTF-8 and a second
/// `#`), then CR LF. The content starts and ends with content, so repeated it is the entry.
const LEADING: &str = " \t\u{3000}\u{a0}";
const CONTENT: &str = "pkg-é中 x\t\u{2003}y";
const COMMENT: &[u8] = b" comment \xff\xe3\x80 # more ";

/// Peak resident memory the whole line may cost: a fraction of its length, well above what
/// the binary needs for its code and two 128 KiB buffers.
const PEAK_LIMIT_KIB: u64 = 16 * 1024;

/// `piece` repeated to about `size` bytes, in whole pieces.
fn repeated(piece: &[u8], size: usize) -> Vec<u8> {
    piece.repeat(size.div_ceil(piece.len()))
}

/// The child's peak resident set (`VmHWM`) in KiB, if this system reports it.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn a_long_line_streams_in_flat_memory(args: &[&str], end: u8) {
    let leading = repeated(LEADING.as_bytes(), 32 * MIB);
    let content = repeated(CONTENT.as_bytes(), 64 * 1024);
    let content_blocks = 160 * MIB / content.len();
    let comment = repeated(COMMENT, 32 * MIB);
    let want_len = content_blocks * content.len() + 1;
    let line_mib = (leading.len() + want_len - 1 + 2 + comment.len() + 2) / MIB;

    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start normlines");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");

    // The writer sends the line, then 4 MiB of comment lines, and keeps stdin open. When it
    // is done, no more than a pipe buffer of input is unread, so the child has read and
    // handled all of the line and is still alive, waiting for more: its peak is then final.
    // (Its output may not all be out yet: it is block-buffered until the input ends.)
    let expected = content.clone();
    let writer = thread::spawn(move || {
        stdin.write_all(&leading)?;
        for _ in 0..content_blocks {
            stdin.write_all(&content)?;
        }
        stdin.write_all(b" #")?;
        stdin.write_all(&comment)?;
        stdin.write_all(b"\r\n")?;
        stdin.write_all(&b"#\n".repeat(2 * MIB))?;
        stdin.flush()?;
        Ok::<_, std::io::Error>(stdin)
    });
    // The reader checks the output against the content as it comes.
    let reader = thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut seen = 0;
        let mut good = true;
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut chunk = &buf[..n];
            while !chunk.is_empty() {
                if seen + 1 >= want_len {
                    good &= seen + 1 == want_len && chunk == [end];
                    seen += chunk.len();
                    break;
                }
                let at = seen % expected.len();
                let take = chunk
                    .len()
                    .min(expected.len() - at)
                    .min(want_len - 1 - seen);
                good &= chunk[..take] == expected[at..at + take];
                seen += take;
                chunk = &chunk[take..];
            }
        }
        (seen, good)
    });

    let stdin = writer
        .join()
        .expect("writer thread")
        .expect("write the line");
    let peak = peak_rss_kib(pid);
    drop(stdin);
    let status = child.wait().expect("wait for normlines");
    let (seen, good) = reader.join().expect("reader thread");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");

    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(seen, want_len, "output length");
    assert!(good, "the output is not the content of the line");
    let Some(peak) = peak else {
        return testkit::skip(
            &format!("a_long_line_streams_in_flat_memory {args:?} (memory check)"),
            &format!("no VmHWM in /proc/{pid}/status on this system"),
        );
    };
    eprintln!("normlines {args:?}: a {line_mib} MiB line in a peak of {peak} KiB resident");
    assert!(
        peak < PEAK_LIMIT_KIB,
        "peak resident memory {peak} KiB for a {line_mib} MiB line (limit {PEAK_LIMIT_KIB} KiB)"
    );
}

#[test]
fn a_line_of_200_mb_streams_in_flat_memory() {
    a_long_line_streams_in_flat_memory(&[], b'\n');
}

#[test]
fn a_line_of_200_mb_streams_in_flat_memory_with_null() {
    a_long_line_streams_in_flat_memory(&["-0"], b'\0');
}
