//! The man page documents every long option of --help and is clean for groff.

mod common;

use std::path::PathBuf;

fn page() -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../man/clonecp.1");
    let text = std::fs::read_to_string(&path).expect("man/clonecp.1");
    (path, text)
}

#[test]
fn every_long_option_of_help_is_in_the_man_page() {
    let out = common::run(["--help"]);
    assert_eq!(testkit::code(&out), 0);
    let help = testkit::stdout(&out);
    let (_, man) = page();
    let options: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(options.contains(&"--reflink"), "{options:?}");
    for option in options {
        let escaped = option.replace('-', "\\-");
        assert!(man.contains(&escaped), "{option} is not in man/clonecp.1");
    }
}

#[test]
fn man_page_is_clean_for_groff() {
    if !testkit::have("groff") {
        testkit::skip("man_page_is_clean_for_groff", "groff is not installed");
        return;
    }
    let (path, _) = page();
    let out = testkit::run(
        testkit::tool("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&path),
    );
    assert!(out.status.success());
    let noise = format!("{}{}", testkit::stdout(&out), testkit::stderr(&out));
    assert!(noise.is_empty(), "groff -man -ww -z: {noise}");
}

#[test]
fn man_page_has_the_sections() {
    let (_, man) = page();
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH OPTIONS",
        ".SH INPUT AND OUTPUT",
        ".SH EXIT STATUS",
        ".SH EXAMPLES",
        ".SH SEE ALSO",
    ] {
        assert!(man.contains(section), "{section}");
    }
}
