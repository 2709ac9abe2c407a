//! SIGINT, SIGTERM and SIGHUP in the middle of a copy: the handler runs (exit 128 + N, the
//! reason on stderr), the partial copy is removed, and a DST that `--force` was replacing is
//! left as it was.

use crate::common;

use std::fs;
use std::io::Write;
use std::path::Path;

use testkit::names;
use testkit::TempDir;

/// 256 MiB of data (no holes), so that a real copy takes long enough to be caught midway.
fn big_source(path: &Path) -> u64 {
    let chunk = common::pattern(7, 1 << 20);
    let mut f = fs::File::create(path).unwrap();
    for _ in 0..256 {
        f.write_all(&chunk).unwrap();
    }
    256 << 20
}

/// Whether a file other than `keep` in `dir`, or in clonecp's temporary directory there,
/// holds some data, but not all `size` bytes.
fn partly_written(dir: &Path, keep: &[&str], size: u64) -> bool {
    fs::read_dir(dir).unwrap().flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".clonecp.") {
            return partly_written(&e.path(), &[], size);
        }
        let len = e.metadata().map_or(0, |m| m.len());
        !keep.contains(&name.as_str()) && len > 0 && len < size
    })
}

#[test]
fn a_signal_midway_removes_the_partial_copy_and_exits_128_plus_n() {
    let t = TempDir::new();
    let src = t.join("src");
    let size = big_source(&src);
    for signal in testkit::TERMINATING {
        let dst = t.join("dst");
        let out = testkit::signal_when(
            common::clonecp().arg("--reflink=never").arg(&src).arg(&dst),
            signal,
            |_| partly_written(t.path(), &["src"], size),
        );
        testkit::assert_interrupted(&out, signal, "clonecp");
        assert_eq!(names(t.path()), ["src"], "after {signal}");
    }
}

#[test]
fn a_signal_midway_through_force_leaves_the_old_dst() {
    let t = TempDir::new();
    let src = t.join("src");
    let size = big_source(&src);
    let dst = t.join("dst");
    fs::write(&dst, b"the old DST").unwrap();
    for signal in testkit::TERMINATING {
        let out = testkit::signal_when(
            common::clonecp()
                .args(["--reflink=never", "-f"])
                .arg(&src)
                .arg(&dst),
            signal,
            |_| partly_written(t.path(), &["src", "dst"], size),
        );
        testkit::assert_interrupted(&out, signal, "clonecp");
        assert_eq!(names(t.path()), ["dst", "src"], "after {signal}");
        assert_eq!(fs::read(&dst).unwrap(), b"the old DST");
    }
}
