//! System-call traces (`strace`) for the tests that check how outputs are published: the
//! order of the flushes and the rename, and the injected delays that make a race window
//! wide enough for a test to land in it every time.

use std::path::Path;
use std::process::{Command, Output};

/// `cmd` run under `strace -f` (children followed), tracing `syscalls` (a comma-separated
/// list for `-e trace=`), descriptors printed with their paths (`-y`); the run's output and
/// the trace, one system call a line. `None` when strace is missing (the caller skips).
pub fn strace(cmd: &Command, syscalls: &str) -> Option<(Output, Vec<String>)> {
    if !crate::have("strace") {
        return None;
    }
    let dir = crate::TempDir::new();
    let log = dir.join("trace");
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-y", "-s", "64", "-e", "signal=none", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-o")
        .arg(&log)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        traced.current_dir(d);
    }
    let out = crate::run(&mut traced);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Some((out, joined(&text)))
}

/// The trace's lines, a call that another process interrupted in the middle (`fsync(3</a>
/// <unfinished ...>` then `<... fsync resumed>) = 0`) put back on one line, where it
/// ended.
fn joined(text: &str) -> Vec<String> {
    let mut pending: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let pid = line.split(' ').next().unwrap_or_default().to_owned();
        if let Some(head) = line.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_owned());
        } else if let Some(at) = line.find(" resumed>") {
            let head = pending.remove(&pid).unwrap_or_default();
            lines.push(format!("{head}{}", &line[at + " resumed>".len()..]));
        } else {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// `cmd` under strace, with every call of `syscalls` held for `micros` microseconds on its
/// way back (`-e inject=...:delay_exit=`): the window after that call, which an attacker
/// would aim for, becomes wide enough to hit every time. Started, not waited for.
pub fn delayed(cmd: &Command, syscalls: &str, micros: u64) -> Option<Command> {
    if !crate::have("strace") {
        return None;
    }
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-e")
        .arg(format!("inject={syscalls}:delay_exit={micros}"))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    Some(traced)
}

/// The system calls that flush a file or publish it.
pub const PUBLISH_CALLS: &str = "fsync,fdatasync,sync_file_range,rename,renameat,renameat2,linkat";

/// The descriptor's path as `strace -y` shows it in the first argument: `fsync(3</a/b>)`
/// gives `/a/b`.
fn first_fd_path(line: &str) -> Option<&str> {
    let open = line.find('<')?;
    let close = line[open..]
        .find(">)")
        .or_else(|| line[open..].find(">,"))?;
    Some(&line[open + 1..open + close])
}

fn is_call(line: &str, names: &[&str]) -> bool {
    // `PID name(` when following children, the PID padded with spaces to a common width.
    let call = line.split_once(' ').map_or(line, |(first, rest)| {
        if first.bytes().all(|b| b.is_ascii_digit()) {
            rest.trim_start()
        } else {
            line
        }
    });
    names.iter().any(|n| call.starts_with(&format!("{n}("))) && line.trim_end().ends_with("= 0")
}

/// Check the durable publish in `trace`: the file (a path ending in `/file`, inside a
/// temporary of the tool's own: a path holding `temp`) flushed, then renamed onto `name` in
/// `dir`, then `dir` flushed, in that order. Panics with the trace otherwise.
pub fn assert_published_durably(trace: &[String], temp: &str, file: &str, dir: &Path, name: &str) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.to_string_lossy();
    let shown = || trace.join("\n");
    let flushed = trace.iter().position(|l| {
        is_call(l, &["fsync", "fdatasync"])
            && first_fd_path(l)
                .is_some_and(|p| p.contains(temp) && p.ends_with(&format!("/{file}")))
    });
    let Some(flushed) = flushed else {
        panic!(
            "no fsync of the temporary file {temp}*/{file}:\n{}",
            shown()
        );
    };
    let renamed = trace[flushed..].iter().position(|l| {
        is_call(l, &["rename", "renameat", "renameat2"])
            && l.contains(&format!("\"{file}\""))
            && l.contains(&format!("<{dir}>, \"{name}\""))
    });
    let Some(renamed) = renamed.map(|i| i + flushed) else {
        panic!(
            "no rename of {file} onto {dir}/{name} after the fsync:\n{}",
            shown()
        );
    };
    let synced = trace[renamed..]
        .iter()
        .any(|l| is_call(l, &["fsync"]) && first_fd_path(l) == Some(&*dir));
    assert!(synced, "no fsync of {dir} after the rename:\n{}", shown());
}

/// Check that `trace` flushes `file` (`fsync` or `fdatasync` of a descriptor whose path is
/// `file`) after the last write to it; `false` when it never flushes it at all. Panics with
/// the trace when a write follows the last flush.
pub fn flushed_after_writes(trace: &[String], file: &Path) -> bool {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let file = file.to_string_lossy();
    let on_file = |l: &String| first_fd_path(l) == Some(&*file);
    let Some(flush) = trace
        .iter()
        .rposition(|l| on_file(l) && is_call(l, &["fsync", "fdatasync"]))
    else {
        return false;
    };
    let later = trace[flush..].iter().find(|l| {
        on_file(l)
            && ["write(", "pwrite64(", "pwritev(", "writev("]
                .iter()
                .any(|c| l.contains(c))
    });
    assert!(
        later.is_none(),
        "{file} written after its last flush: {later:?}"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_are_read_as_strace_prints_them() {
        let trace: Vec<String> = [
            "12  fsync(3</t/.x.ab/copy>) = 0",
            "12 renameat2(4</t/.x.ab>, \"copy\", 5</t>, \"out\", RENAME_NOREPLACE) = 0",
            "12 fsync(5</t>) = 0",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(first_fd_path(&trace[0]), Some("/t/.x.ab/copy"));
        assert_published_durably(&trace, "/.x.", "copy", Path::new("/t"), "out");
        let split = "12 fsync(3</t/.x.ab/copy> <unfinished ...>\n13 exit(0) = ?\n\
            12 <... fsync resumed>) = 0\n";
        assert_eq!(joined(split)[1], "12 fsync(3</t/.x.ab/copy>) = 0");
        assert!(is_call(&joined(split)[1], &["fsync"]));
    }

    #[test]
    #[should_panic(expected = "no fsync of /t after the rename")]
    fn a_directory_flushed_before_the_rename_does_not_count() {
        let trace: Vec<String> = [
            "fsync(3</t/.x.ab/copy>) = 0",
            "fsync(5</t>) = 0",
            "renameat(4</t/.x.ab>, \"copy\", 5</t>, \"out\") = 0",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_published_durably(&trace, "/.x.", "copy", Path::new("/t"), "out");
    }
}
