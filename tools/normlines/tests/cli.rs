//! normlines run as a binary on real files.

use std::fs;
use std::process::Command;

use testkit::{code, run, run_with_stdin, stderr, stdout, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_normlines");

fn normlines() -> Command {
    Command::new(BIN)
}

const LIST: &[u8] = b"# packages\r\n  vim   # editor\r\n\r\ncurl\n\t\n\xc2\xa0git\xe3\x80\x80\nlast-without-newline";

#[test]
fn files_give_their_entries_in_order() {
    let t = TempDir::new();
    fs::write(t.join("a"), LIST).unwrap();
    fs::write(t.join("b"), b"one\n# two\nthree #3\n").unwrap();
    let out = run(normlines().arg(t.join("a")).arg(t.join("b")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "vim\ncurl\ngit\nlast-without-newline\none\nthree\n"
    );
    assert_eq!(stderr(&out), "");
}

#[test]
fn stdin_is_read_with_no_argument_or_dash() {
    for args in [&[][..], &["-"][..]] {
        let out = run_with_stdin(normlines().args(args), LIST);
        assert_eq!(code(&out), 0);
        assert_eq!(stdout(&out), "vim\ncurl\ngit\nlast-without-newline\n");
    }
}

#[test]
fn invalid_utf8_passes_through_untouched() {
    let out = run_with_stdin(&mut normlines(), b"  \xff\xfe name \xc3 \n\x80 # c\n");
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, b"\xff\xfe name \xc3\n\x80\n");
}

#[test]
fn null_terminated_for_xargs() {
    let out = run_with_stdin(normlines().arg("-0"), b"a b\n#x\nc\n");
    assert_eq!(out.stdout, b"a b\0c\0");
    let out = run_with_stdin(normlines().arg("--null"), b"a b\n");
    assert_eq!(out.stdout, b"a b\0");
}

#[test]
fn json_prints_one_string_per_line() {
    let out = run_with_stdin(normlines().arg("--json"), b"a \"q\"\n\xff\n");
    assert_eq!(code(&out), 0);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], serde_json::json!("a \"q\""));
    assert_eq!(lines[1], serde_json::json!({"bytes": "/w=="}));
}

#[test]
fn an_empty_list_is_an_error_unless_allowed() {
    let t = TempDir::new();
    let empty = t.join("empty.list");
    fs::write(&empty, b"# nothing\n\n   \r\n").unwrap();
    let out = run(normlines().arg(&empty));
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!("normlines: no entries in '{}'\n", empty.display())
    );
    assert!(out.stdout.is_empty());

    let out = run(normlines().arg("--allow-empty").arg(&empty));
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");

    let out = run_with_stdin(&mut normlines(), b"");
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out), "normlines: no entries in '-'\n");
}

#[test]
fn an_empty_list_beside_a_full_one_is_a_partial_failure() {
    let t = TempDir::new();
    fs::write(t.join("empty"), b"#\n").unwrap();
    fs::write(t.join("full"), b"x\n").unwrap();
    let out = run(normlines().arg(t.join("empty")).arg(t.join("full")));
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "x\n");
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn missing_file_is_reported_and_the_rest_still_printed() {
    let t = TempDir::new();
    fs::write(t.join("full"), b"x\n").unwrap();
    let missing = t.join("missing");
    let out = run(normlines().arg(&missing).arg(t.join("full")));
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "x\n");
    assert_eq!(
        stderr(&out),
        format!(
            "normlines: reading '{}': No such file or directory\n",
            missing.display()
        )
    );
    let out = run(normlines().arg(&missing));
    assert_eq!(code(&out), 2);
}

#[test]
fn a_directory_is_not_a_list() {
    let t = TempDir::new();
    let out = run(normlines().arg(t.path()));
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "normlines: reading '{}': Is a directory\n",
            t.path().display()
        )
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = run(normlines().arg("--bogus"));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--bogus"));
}

#[test]
fn broken_pipe_is_quiet() {
    let t = TempDir::new();
    fs::write(t.join("l"), "entry # c\n".repeat(200_000)).unwrap();
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "'{BIN}' '{}' | head -n 1; exit ${{PIPESTATUS[0]}}",
        t.join("l").display()
    )));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "entry\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn agrees_with_the_sed_grep_pipeline_on_ascii() {
    // The stock pipeline the tool replaces (ASCII white space only, which sed knows).
    let t = TempDir::new();
    let mut text = Vec::new();
    for i in 0..2000 {
        text.extend_from_slice(
            format!(
                "{}pkg{i}{}{}\r\n",
                " ".repeat(i % 3),
                "\t".repeat(i % 2),
                if i % 5 == 0 { " # c" } else { "" }
            )
            .as_bytes(),
        );
        if i % 7 == 0 {
            text.extend_from_slice(b"   # only comment\n\n");
        }
    }
    fs::write(t.join("l"), &text).unwrap();
    let ours = run(normlines().arg(t.join("l")));
    let stock = run(Command::new("bash").arg("-c").arg(format!(
        "sed -e 's/\\r$//' -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' '{}' | grep -v '^$'",
        t.join("l").display()
    )));
    assert_eq!(code(&ours), 0);
    assert_eq!(ours.stdout, stock.stdout);
}
