//! The generated completions load in the shells and offer what the tools accept.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use testkit::{code, run, stderr, stdout, TempDir};

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/work-seed");

fn generated() -> TempDir {
    let t = TempDir::new();
    let out = run(Command::new(env!("CARGO_BIN_EXE_gen-completions")).arg(t.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    t
}

/// What bash's completion of `TOOL WORD` offers, after sourcing the generated file.
fn bash_complete(file: &Path, tool: &str, word: &str) -> BTreeSet<String> {
    let script = format!(
        "source '{}' || exit 3\n\
         f=$(complete -p {tool} | sed 's/.*-F \\([^ ]*\\).*/\\1/')\n\
         COMP_WORDS=({tool} {word}); COMP_CWORD=1; COMP_LINE='{tool} {word}'; COMP_POINT=${{#COMP_LINE}}\n\
         \"$f\" {tool} '{word}' {tool} || exit 4\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = run(Command::new("bash").arg("-c").arg(script));
    assert_eq!(code(&out), 0, "{tool}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_loads_and_completes_every_long_option_of_every_tool() {
    let t = generated();
    for cmd in completions::commands() {
        let tool = cmd.get_name().to_string();
        let file = t.join("bash-completion/completions").join(&tool);
        let offered = bash_complete(&file, &tool, "--");
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    offered.contains(&format!("--{long}")),
                    "{tool}: --{long} not in {offered:?}"
                );
            }
        }
    }
    // A prefix narrows it to the one option.
    let file = t.join("bash-completion/completions/ext4-ls");
    let offered = bash_complete(&file, "ext4-ls", "--full");
    assert_eq!(offered.into_iter().collect::<Vec<_>>(), ["--full-time"]);
}

#[test]
fn zsh_and_fish_completions_are_written_for_every_tool() {
    let t = generated();
    for cmd in completions::commands() {
        let tool = cmd.get_name();
        let zsh = std::fs::read_to_string(t.join(format!("zsh/site-functions/_{tool}"))).unwrap();
        assert!(zsh.starts_with(&format!("#compdef {tool}")), "{tool}");
        let fish =
            std::fs::read_to_string(t.join(format!("fish/vendor_completions.d/{tool}.fish")))
                .unwrap();
        assert!(fish.contains(&format!("complete -c {tool} ")), "{tool}");
        for shell in ["zsh", "fish"] {
            if !testkit::have(shell) {
                testkit::skip(
                    &format!("zsh_and_fish_completions_are_written_for_every_tool ({shell} -n)"),
                    &format!("{shell} is not installed"),
                );
                continue;
            }
            let file = match shell {
                "zsh" => t.join(format!("zsh/site-functions/_{tool}")),
                _ => t.join(format!("fish/vendor_completions.d/{tool}.fish")),
            };
            let out = run(Command::new(shell).arg("-n").arg(&file));
            assert_eq!(code(&out), 0, "{shell} -n {tool}: {}", stderr(&out));
        }
    }
}

/// The clap definitions of the two scripts name exactly the long options of their --help.
#[test]
fn the_scripts_definitions_match_their_help() {
    for cmd in [completions::work_seed(), completions::work_disk()] {
        let tool = cmd.get_name().to_string();
        let help = stdout(&run(
            Command::new(Path::new(SCRIPTS).join(&tool)).arg("--help")
        ));
        let in_help: BTreeSet<String> = help
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
            .filter_map(|w| w.strip_prefix("--"))
            .map(|w| {
                w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                    .to_string()
            })
            .filter(|w| !w.is_empty() && w != "help" && w != "version")
            .collect();
        let defined: BTreeSet<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        assert_eq!(in_help, defined, "{tool}");
    }
}
