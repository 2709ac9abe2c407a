//! Running debugfs and reading what it says.
//!
//! debugfs exits 0 after failed commands (e2fsprogs notes §1.5), so success is read from its
//! merged stdout and stderr (§3.8): in `-f` mode each command is echoed as
//! `debugfs: <line>` and both streams are unbuffered (and share one file), so every output line belongs to the
//! last echoed command. The only lines a successful command of ours prints are
//! `Allocated inode: N` and `Setting current time to ...` (plus an empty line after it);
//! anything else is a failure of that command.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use seedkit::progress::Progress;

/// The program, from PATH or the sbin directories where e2fsprogs lives.
pub fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A debugfs command with its output merged into one pipe and a fixed time.
fn command(time: i64) -> Command {
    let mut cmd = Command::new(program("debugfs"));
    // E2FSPROGS_FAKE_TIME for 1.47.0, SOURCE_DATE_EPOCH for later versions (§5).
    cmd.env("E2FSPROGS_FAKE_TIME", time.to_string())
        .env("SOURCE_DATE_EPOCH", time.to_string())
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

/// How often the output of a running script is read.
const POLL: Duration = Duration::from_millis(5);

/// How a script run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every command ran and printed only success lines.
    Done,
    /// Command `index` failed with this output (the run was stopped there).
    Failed { index: usize, message: Vec<u8> },
    /// debugfs said something before the first command (the image did not open).
    NotOpened { message: Vec<u8> },
    /// debugfs stopped before echoing command `index` (crash, signal, cut lines).
    Stopped { index: usize, status: String },
}

/// Whether a line is one a successful command prints.
fn success_line(line: &[u8]) -> bool {
    line.is_empty()
        || line.starts_with(b"Allocated inode: ")
        || line.starts_with(b"Setting current time to ")
}

/// Match output lines to commands. `feed` takes one line (without `\n`) and returns the
/// outcome when it decides one; `finish` decides at the end of the output.
pub struct Matcher<'a> {
    lines: &'a [Vec<u8>],
    expect: &'a [Option<u32>],
    next: usize,
    started: bool,
}

impl<'a> Matcher<'a> {
    /// `expect[i]`: the inode command `i` must report allocating, when predicted.
    pub fn new(lines: &'a [Vec<u8>], expect: &'a [Option<u32>]) -> Matcher<'a> {
        Matcher {
            lines,
            expect,
            next: 0,
            started: false,
        }
    }

    /// Commands echoed so far.
    pub fn done(&self) -> usize {
        self.next
    }

    pub fn feed(&mut self, line: &[u8]) -> Option<Outcome> {
        if let Some(expected) = self.lines.get(self.next) {
            if line.strip_prefix(b"debugfs: ") == Some(expected.as_slice()) {
                self.next += 1;
                self.started = true;
                return None;
            }
        }
        if !self.started {
            // The version banner comes first, on stderr.
            if line.starts_with(b"debugfs ") {
                return None;
            }
            return Some(Outcome::NotOpened {
                message: line.to_vec(),
            });
        }
        if let Some(n) = line.strip_prefix(b"Allocated inode: ") {
            let want = self.expect.get(self.next - 1).copied().flatten();
            let got = std::str::from_utf8(n)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            if let Some(w) = want {
                if got != Some(w) {
                    return Some(Outcome::Failed {
                        index: self.next - 1,
                        message: format!(
                            "debugfs allocated inode {} where ext4-ingest's model of its allocator expected {w}",
                            String::from_utf8_lossy(n)
                        )
                        .into_bytes(),
                    });
                }
            }
            return None;
        }
        if success_line(line) {
            return None;
        }
        Some(Outcome::Failed {
            index: self.next - 1,
            message: line.to_vec(),
        })
    }

    pub fn finish(&self, status: &std::process::ExitStatus) -> Outcome {
        if self.next < self.lines.len() || !status.success() {
            return Outcome::Stopped {
                index: self.next,
                status: status.to_string(),
            };
        }
        Outcome::Done
    }
}

/// Run `debugfs -w -f script image`, stopping it at the first failure.
///
/// Its output goes to a file beside the script, read as it grows: debugfs writes every echo
/// with its own `write` (stdout is unbuffered in `-f` mode), and a pipe would wake this
/// process for each of them (a third of the run time on 20,000 entries).
pub fn run_script(
    image: &Path,
    script: &Path,
    lines: &[Vec<u8>],
    expect: &[Option<u32>],
    time: i64,
    progress: &mut Progress,
    mut done: impl FnMut(usize),
) -> Result<Outcome> {
    let out_path = script.with_extension("out");
    let out = File::create(&out_path).context("creating the output file of debugfs")?;
    let mut cmd = command(time);
    cmd.arg("-w").arg("-f").arg(script).arg(image);
    cmd.stdout(Stdio::from(
        out.try_clone()
            .context("creating the output file of debugfs")?,
    ))
    .stderr(Stdio::from(out));
    let mut child = cmd.spawn().context("running debugfs")?;
    drop(cmd);
    let mut reader = File::open(&out_path).context("reading the output of debugfs")?;
    let mut matcher = Matcher::new(lines, expect);
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut buf = vec![0u8; 1 << 16];
    let total = lines.len();
    loop {
        let exited = child.try_wait().context("waiting for debugfs")?;
        let n = reader
            .read(&mut buf)
            .context("reading the output of debugfs")?;
        if n == 0 {
            if let Some(status) = exited {
                // Everything it wrote is in; a last line may lack its newline.
                if !pending.is_empty() {
                    if let Some(outcome) = matcher.feed(&pending) {
                        return Ok(outcome);
                    }
                }
                progress.finish();
                return Ok(matcher.finish(&status));
            }
            std::thread::sleep(POLL);
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(at) = pending[start..].iter().position(|&b| b == b'\n') {
            if let Some(outcome) = matcher.feed(&pending[start..start + at]) {
                // The image is unusable anyway; stop writing to it.
                let _ = child.kill();
                let _ = child.wait();
                progress.finish();
                return Ok(outcome);
            }
            start += at + 1;
        }
        pending.drain(..start);
        // Commands before the last echoed one have finished.
        done(matcher.done().saturating_sub(1));
        progress.update(|| format!("ext4-ingest: {}/{total} debugfs commands", matcher.done()));
    }
}

/// Run one `debugfs [-w] -R request image`; `Ok(None)` on success, `Ok(Some(output))` with
/// what it printed besides the banner when it failed.
pub fn run_request(
    image: &Path,
    request: &[u8],
    write: bool,
    time: i64,
) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut cmd = command(time);
    if write {
        cmd.arg("-w");
    }
    cmd.arg("-R").arg(OsStr::from_bytes(request)).arg(image);
    let out = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .context("running debugfs")?;
    let errors: Vec<u8> = out
        .stderr
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"debugfs "))
        .collect::<Vec<_>>()
        .join(&b'\n');
    let failed = !out.status.success() || !errors.is_empty();
    Ok((out.stdout, failed.then_some(errors)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn lines(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn echoes_and_success_lines_pass() {
        let cmds = lines(&[
            "set_current_time @5",
            "write \"a\" \"a\"",
            "sif \"./a\" mtime @1",
        ]);
        let mut m = Matcher::new(&cmds, &[]);
        for l in [
            "debugfs 1.47.0 (5-Feb-2023)",
            "debugfs: set_current_time @5",
            "Setting current time to Thu Jan  1 00:00:05 1970",
            "",
            "debugfs: write \"a\" \"a\"",
            "Allocated inode: 12",
            "debugfs: sif \"./a\" mtime @1",
        ] {
            assert_eq!(m.feed(l.as_bytes()), None, "{l}");
        }
        assert_eq!(
            m.finish(&std::process::ExitStatus::from_raw(0)),
            Outcome::Done
        );
    }

    #[test]
    fn an_error_line_fails_the_last_echoed_command() {
        let cmds = lines(&["mkdir \"d\"", "write \"f\" \"f\""]);
        let mut m = Matcher::new(&cmds, &[]);
        assert_eq!(m.feed(b"debugfs: mkdir \"d\""), None);
        assert_eq!(m.feed(b"debugfs: write \"f\" \"f\""), None);
        assert_eq!(
            m.feed(b"write: Could not allocate block in ext2 filesystem"),
            Some(Outcome::Failed {
                index: 1,
                message: b"write: Could not allocate block in ext2 filesystem".to_vec()
            })
        );
    }

    #[test]
    fn ss_errors_that_look_like_echoes_are_failures() {
        let cmds = lines(&["mkdir \"d\""]);
        let mut m = Matcher::new(&cmds, &[]);
        assert_eq!(m.feed(b"debugfs: mkdir \"d\""), None);
        assert!(matches!(
            m.feed(b"debugfs: Unbalanced quotes in command line"),
            Some(Outcome::Failed { index: 0, .. })
        ));
    }

    #[test]
    fn an_image_that_does_not_open_is_caught_before_any_command() {
        let cmds = lines(&["mkdir \"d\""]);
        let mut m = Matcher::new(&cmds, &[]);
        assert!(matches!(
            m.feed(b"debugfs: Bad magic number in super-block while trying to open x"),
            Some(Outcome::NotOpened { .. })
        ));
    }

    #[test]
    fn an_unexpected_inode_number_is_a_failure() {
        let cmds = lines(&["write \"a\" \"a\""]);
        let expect = [Some(12)];
        let mut m = Matcher::new(&cmds, &expect);
        assert_eq!(m.feed(b"debugfs: write \"a\" \"a\""), None);
        assert!(matches!(
            m.feed(b"Allocated inode: 13"),
            Some(Outcome::Failed { index: 0, .. })
        ));
        let mut m = Matcher::new(&cmds, &expect);
        assert_eq!(m.feed(b"debugfs: write \"a\" \"a\""), None);
        assert_eq!(m.feed(b"Allocated inode: 12"), None);
    }

    #[test]
    fn missing_commands_mean_debugfs_stopped() {
        let cmds = lines(&["mkdir \"d\"", "mkdir \"e\""]);
        let mut m = Matcher::new(&cmds, &[]);
        assert_eq!(m.feed(b"debugfs: mkdir \"d\""), None);
        assert!(matches!(
            m.finish(&std::process::ExitStatus::from_raw(139)),
            Outcome::Stopped { index: 1, .. }
        ));
    }
}
