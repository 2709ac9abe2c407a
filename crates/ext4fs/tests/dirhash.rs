//! The directory hashes against debugfs's `dx_hash`, which runs e2fsprogs' own code: every
//! algorithm, both char signednesses, the default and a given seed, names of 1 to 255 bytes
//! with bytes above 0x7f (where signed and unsigned differ).

use std::fmt::Write as _;
use std::fs;

use ext4fs::dirhash::{dirhash, DirHash};
use testkit::{run, stdout, tool, TempDir};

/// A small deterministic generator (xorshift), so that the names are the same every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Bytes a debugfs command line carries as they are: no blanks, quotes, backslashes,
/// control characters or NUL; '-' and '#' are kept out of the first byte (option, comment).
fn passes_debugfs(b: u8, first: bool) -> bool {
    !(b <= b' ' || b == b'"' || b == b'\\' || b == 0x7f || first && (b == b'-' || b == b'#'))
}

fn names() -> Vec<Vec<u8>> {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut lengths: Vec<usize> = vec![1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 254, 255];
    lengths.extend((0..200).map(|_| 1 + (g.next() % 255) as usize));
    let mut out = Vec::new();
    for (i, len) in lengths.into_iter().enumerate() {
        let mut name = Vec::with_capacity(len);
        while name.len() < len {
            // Every third name is plain ASCII, the rest mix in bytes above 0x7f.
            let b = if i % 3 == 0 {
                b'!' + (g.next() % 94) as u8
            } else {
                (g.next() % 256) as u8
            };
            if passes_debugfs(b, name.is_empty()) {
                name.push(b);
            }
        }
        out.push(name);
    }
    out
}

fn seed_words(uuid: &str) -> [u32; 4] {
    let hex: Vec<u8> = uuid
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect();
    let mut w = [0u32; 4];
    for (i, word) in w.iter_mut().enumerate() {
        *word = u32::from_le_bytes(hex[i * 4..i * 4 + 4].try_into().unwrap());
    }
    w
}

#[test]
fn hashes_match_debugfs_dx_hash() {
    if !testkit::need("hashes_match_debugfs_dx_hash", &["debugfs"]) {
        return;
    }
    let tmp = TempDir::new();
    let names = names();
    let seeds = [None, Some("6b33f586-a183-4d0c-9ac5-a0f1c4bbd2f7")];
    let mut script = Vec::new();
    let mut want: Vec<DirHash> = Vec::new();
    for seed in seeds {
        let words = seed.map_or([0; 4], seed_words);
        for version in 0..6u8 {
            for name in &names {
                let mut line = format!("dx_hash -h {version} ");
                if let Some(s) = seed {
                    write!(line, "-s {s} ").unwrap();
                }
                script.extend_from_slice(line.as_bytes());
                script.extend_from_slice(name);
                script.push(b'\n');
                want.push(dirhash(version, &words, name).unwrap());
            }
        }
    }
    let path = tmp.join("script");
    fs::write(&path, &script).unwrap();
    let out = run(tool("debugfs").arg("-f").arg(&path));
    let got: Vec<DirHash> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("Hash of "))
        .map(|l| {
            let tail = &l[l.rfind(" is 0x").expect("hash line") + 6..];
            let (major, minor) = tail.split_once(" (minor 0x").expect("minor");
            DirHash {
                major: u32::from_str_radix(major, 16).unwrap(),
                minor: u32::from_str_radix(minor.trim_end_matches(')'), 16).unwrap(),
            }
        })
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "debugfs answered {} lines",
        got.len()
    );
    let mut differ = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // e2fsprogs leaves out the kernel's step away from the end-of-directory cookie.
        let g = DirHash {
            major: if g.major == 0xffff_fffe {
                0xffff_fffc
            } else {
                g.major
            },
            ..*g
        };
        if g != *w {
            differ += 1;
            if differ < 5 {
                eprintln!("command {i}: debugfs {g:x?}, ours {w:x?}");
            }
        }
    }
    assert_eq!(differ, 0, "{differ} of {} hashes differ", want.len());
    // The set exercises what it claims: some names hash differently signed and unsigned.
    let seed = [0; 4];
    let signed_differs = names
        .iter()
        .filter(|n| dirhash(1, &seed, n) != dirhash(4, &seed, n))
        .count();
    assert!(signed_differs > 100, "{signed_differs}");
}
