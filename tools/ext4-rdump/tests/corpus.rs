//! Every image of the e2fsprogs corpus (most deliberately corrupt) through the built binary:
//! within a time limit, no signal, exit 0/1/2 with one line per diagnostic, and nothing
//! written outside the destination.

use crate::common;

use std::fs;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn every_corpus_image_is_handled() {
    let images = testkit::corpus_images("every_corpus_image_is_handled");
    let mut codes = [0usize; 3];
    for gz in &images {
        let t = testkit::TempDir::in_memory();
        let image = t.join("image");
        fs::write(&image, testkit::gunzip(gz)).unwrap();
        let work = t.join("work");
        fs::create_dir(&work).unwrap();
        let dest = work.join("out");
        let mut child = Command::new(common::BIN)
            .env("TMPDIR", &work)
            .arg(&image)
            .arg("-o")
            .arg(&dest)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain stderr in a thread so a chatty run cannot block on a full pipe.
        let mut err_pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut err_pipe, &mut s).unwrap();
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                panic!("{}: still running after {LIMIT:?}", gz.display());
            }
            sleep(Duration::from_millis(5));
        };
        let err = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
        let code = status
            .code()
            .unwrap_or_else(|| panic!("{}: killed by a signal: {status:?}", gz.display()));
        assert!(code <= 2, "{}: exit {code}", gz.display());
        codes[code as usize] += 1;
        assert!(
            err.lines().all(|l| l.starts_with("ext4-rdump: ")),
            "{}: {err}",
            gz.display()
        );
        assert_eq!(
            code == 0,
            err.lines().all(|l| l.contains("journal needs recovery")),
            "{}: {err}",
            gz.display()
        );
        let mut left: Vec<_> = fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        if code == 2 {
            assert!(left.is_empty(), "{}: left behind {left:?}", gz.display());
        } else {
            assert_eq!(left, ["out", "out.manifest.jsonl"], "{}", gz.display());
        }
    }
    println!(
        "{} images: {} exit 0, {} exit 1, {} exit 2",
        images.len(),
        codes[0],
        codes[1],
        codes[2]
    );
}
