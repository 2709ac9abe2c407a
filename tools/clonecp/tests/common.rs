//! Helpers shared by the clonecp test files.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const EXE: &str = env!("CARGO_BIN_EXE_clonecp");

pub fn clonecp() -> Command {
    Command::new(EXE)
}

/// Run clonecp with `args` (paths or options).
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    testkit::run(clonecp().args(args))
}

/// Non-zero bytes that never make an all-zero block, from a seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

/// A sparse file of `size` bytes with `pieces` runs of `piece` bytes of data spread over it
/// (the first at 1 MiB, none at the end, so it starts and ends with a hole). Returns the
/// bytes of data written.
pub fn sparse_image(path: &Path, size: u64, pieces: u64, piece: usize) -> u64 {
    let f = fs::File::create(path).expect("create image");
    f.set_len(size).expect("set_len");
    drop(f);
    let stride = (size - (2 << 20)) / pieces;
    for i in 0..pieces {
        let at = (1 << 20) + i * stride;
        testkit::write_at(path, at, &pattern(i, piece));
    }
    pieces * piece as u64
}

/// The one JSON record clonecp printed.
pub fn record(out: &Output) -> Value {
    let text = testkit::stdout(out);
    let mut lines = text.lines();
    let line = lines.next().expect("a JSON line on stdout");
    assert!(lines.next().is_none(), "one line expected: {text}");
    serde_json::from_str(line).expect("JSON record")
}

/// Assert a successful run and return its record (clonecp must have been given --json).
pub fn ok_record(out: &Output) -> Value {
    assert_eq!(
        testkit::code(out),
        0,
        "clonecp failed: {}",
        testkit::stderr(out)
    );
    record(out)
}

/// Whether two files hold the same bytes (compared in chunks, holes read as zeros).
pub fn same_content(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

/// Read until `buf` is full or the file ends.
fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}
