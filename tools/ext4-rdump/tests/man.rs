//! The man page documents every long option of `--help` and is clean for groff.

use crate::common;

use std::process::Command;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../man/ext4-rdump.1");

#[test]
fn every_long_option_is_in_the_man_page() {
    let page = std::fs::read_to_string(PAGE).unwrap().replace("\\-", "-");
    let help = testkit::stdout(&testkit::run(Command::new(common::BIN).arg("--help")));
    let options: Vec<&str> = help
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(options.contains(&"--output") && options.contains(&"--same-owner"));
    for o in options {
        assert!(page.contains(o), "{o} is not in the man page");
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "INPUT AND OUTPUT",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(page.contains(&format!(".SH {section}\n")), "no {section}");
    }
}

#[test]
fn groff_prints_nothing() {
    if !testkit::have("groff") {
        testkit::skip("groff_prints_nothing", "groff not found");
        return;
    }
    let out = testkit::run(Command::new("groff").args(["-man", "-ww", "-z", PAGE]));
    assert!(out.status.success());
    assert_eq!(testkit::stderr(&out), "");
    assert!(out.stdout.is_empty());
}
