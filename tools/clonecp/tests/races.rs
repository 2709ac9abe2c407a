//! Two clonecp runs aimed at one DST at the same time: DST ends as one complete copy, never
//! a mix of the two, never missing, and no temporary file is left.

use crate::common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};

use common::same_content;
use testkit::names;
use testkit::{code, TempDir};

/// 32 MiB of `seed`'s pattern: long enough for the two copies to overlap.
fn source(path: &Path, seed: u64) {
    let chunk = common::pattern(seed, 1 << 20);
    let mut f = fs::File::create(path).unwrap();
    for _ in 0..32 {
        f.write_all(&chunk).unwrap();
    }
}

fn start(args: &[&std::ffi::OsStr]) -> Child {
    testkit::spawn(
        common::clonecp()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
}

#[test]
fn two_forced_copies_to_one_dst_leave_one_whole_copy() {
    let t = TempDir::new();
    let (a, b, dst) = (t.join("a"), t.join("b"), t.join("dst"));
    source(&a, 1);
    source(&b, 2);
    for round in 0..4 {
        // An old DST the first round, none afterwards: both cases race.
        if round == 0 {
            fs::write(&dst, b"old").unwrap();
        } else {
            let _ = fs::remove_file(&dst);
        }
        let runs = [&a, &b].map(|src| {
            start(&[
                "-f".as_ref(),
                "--reflink=never".as_ref(),
                src.as_os_str(),
                dst.as_os_str(),
            ])
        });
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "{}", testkit::stderr(&out));
        }
        assert!(
            same_content(&a, &dst) || same_content(&b, &dst),
            "round {round}: DST is neither copy"
        );
        assert_eq!(names(t.path()), ["a", "b", "dst"], "round {round}");
    }
}

#[test]
fn two_plain_copies_to_one_dst_one_wins_and_the_other_removes_nothing() {
    let t = TempDir::new();
    let (a, b, dst) = (t.join("a"), t.join("b"), t.join("dst"));
    source(&a, 1);
    source(&b, 2);
    for round in 0..4 {
        let _ = fs::remove_file(&dst);
        let runs = [&a, &b]
            .map(|src| start(&["--reflink=never".as_ref(), src.as_os_str(), dst.as_os_str()]));
        let outs: Vec<_> = runs
            .into_iter()
            .map(|r| r.wait_with_output().unwrap())
            .collect();
        let codes: Vec<i32> = outs.iter().map(code).collect();
        let won = match codes.as_slice() {
            [0, 2] => &a,
            [2, 0] => &b,
            _ => panic!("round {round}: exits {codes:?}"),
        };
        let lost = outs.iter().find(|o| code(o) == 2).unwrap();
        assert!(
            testkit::stderr(lost).contains("it exists"),
            "{}",
            testkit::stderr(lost)
        );
        assert!(
            same_content(won, &dst),
            "round {round}: DST is not the winner's"
        );
        assert_eq!(names(t.path()), ["a", "b", "dst"], "round {round}");
    }
}
