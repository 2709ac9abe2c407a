//! work-seed and work-disk share one library (work-seed-lib.sh): one `die`, `find_tool`,
//! `step`, directory check, rename and interrupt handling, and the version the workspace
//! was built with. They had drifted apart as two copies.

use std::fs;

use testkit::{code, run, stderr, stdout};

use crate::common;

#[test]
fn both_scripts_print_the_workspace_version() {
    for (name, cmd) in [
        ("work-seed", common::work_seed_command()),
        ("work-disk", common::work_disk_command()),
    ] {
        let mut cmd = cmd;
        let out = run(cmd.arg("--version"));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn neither_script_keeps_a_copy_of_what_the_library_holds() {
    let lib = fs::read_to_string(common::SCRIPT_LIB).unwrap();
    for def in [
        "die()",
        "find_tool()",
        "step()",
        "output_dir()",
        "private_dir()",
        "publish()",
    ] {
        assert!(
            lib.contains(&format!("\n{def} {{")),
            "the library lacks {def}"
        );
    }
    for script in [common::SCRIPT, common::WORK_DISK] {
        let text = fs::read_to_string(script).unwrap();
        for def in [
            "die()",
            "find_tool()",
            "step()",
            "cleanup()",
            "interrupted()",
        ] {
            assert!(!text.contains(def), "{script} defines its own {def}");
        }
        for copied in ["trap ", "mv ", "mktemp", "version=", "date "] {
            assert!(!text.contains(copied), "{script} has its own `{copied}`");
        }
    }
}
