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

/// `make deb` packs the binaries, both scripts, the man pages and the completions; unpacked
/// with dpkg-deb, every tool runs from the unpacked tree. The tools come from this build
/// (target/debug, `-o tools`: not rebuilt in release for the test).
#[test]
fn make_deb_packs_every_tool_and_each_runs_from_the_unpacked_tree() {
    if !testkit::have("dpkg-deb") || !testkit::have("make") {
        testkit::skip(
            "make_deb_packs_every_tool_and_each_runs_from_the_unpacked_tree",
            "dpkg-deb or make not found",
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap();
    for tool in ["ext4-ls", "gen-completions", "clonecp"] {
        assert!(
            bin.join(tool).is_file(),
            "{tool} is not built: run `cargo test --workspace`"
        );
    }
    let t = testkit::TempDir::new();
    let build = t.join("build");
    let out = run(Command::new("make")
        .args(["-o", "tools", "deb", "DEB_COMPRESS=none"])
        .arg("-C")
        .arg(Path::new(ROOT))
        .arg(format!("RELEASE={}", bin.display()))
        .arg(format!("BUILD={}", build.display())));
    assert_eq!(code(&out), 0, "make deb: {}{}", stdout(&out), stderr(&out));
    let debs: Vec<_> = std::fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];
    let field = |name: &str| {
        stdout(&run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name)))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "work-seed-toolkit");
    assert_eq!(field("Depends"), "e2fsprogs");
    let root = t.join("unpacked");
    let out = run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tools = [
        "normlines",
        "seed-size",
        "clonecp",
        "ext4-rdump",
        "ext4-ingest",
        "ext4-ls",
        "work-seed",
        "work-disk",
    ];
    for tool in tools {
        let out = run(Command::new(root.join("usr/bin").join(tool)).arg("--version"));
        assert_eq!(code(&out), 0, "{tool} --version: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("{tool} ")),
            "{}",
            stdout(&out)
        );
        for file in [
            format!("usr/share/man/man1/{tool}.1.gz"),
            format!("usr/share/bash-completion/completions/{tool}"),
            format!("usr/share/zsh/site-functions/_{tool}"),
            format!("usr/share/fish/vendor_completions.d/{tool}.fish"),
        ] {
            assert!(root.join(&file).is_file(), "{file} is not in the package");
        }
    }
    // The scripts' library and helpers, beside them, where the scripts look first.
    for file in [
        "usr/bin/work-seed-lib.sh",
        "usr/bin/work-seed-fs",
        "usr/bin/work-seed-summary",
        "usr/share/man/man1/work-seed-fs.1.gz",
        "usr/share/man/man1/work-seed-summary.1.gz",
    ] {
        assert!(root.join(file).is_file(), "{file} is not in the package");
    }
}
