//! The Makefile: where it looks for the tools it built.

use std::path::Path;
use std::process::Command;

use testkit::{code, run, stderr, stdout};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// `make` with CARGO_TARGET_DIR set in the environment (as many Rust users have it) used to
/// run `target/release/normlines`, which cargo had not built.
#[test]
fn make_follows_cargo_target_dir() {
    if !testkit::have("make") {
        testkit::skip("make_follows_cargo_target_dir", "make not found");
        return;
    }
    let out = run(Command::new("make")
        .arg("-n")
        .arg("-C")
        .arg(Path::new(ROOT))
        .args(["sample", "bench"])
        .env("CARGO_TARGET_DIR", "/elsewhere/cargo-target"));
    assert_eq!(code(&out), 0, "make -n: {}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("/elsewhere/cargo-target/release/normlines sample/packages.list"),
        "{plan}"
    );
    assert!(
        plan.contains("PATH=\"/elsewhere/cargo-target/release:"),
        "{plan}"
    );
    assert!(
        !plan
            .replace("/elsewhere/cargo-target/release", "")
            .contains("target/release"),
        "{plan}"
    );
}
