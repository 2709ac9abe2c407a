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
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
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
    /// The model of the inode allocator found no free inode for an entry: nothing more
    /// was sent.
    OutOfInodes,
}

/// Whether a line is one a successful command prints.
fn success_line(line: &[u8]) -> bool {
    line.is_empty()
        || line.starts_with(b"Allocated inode: ")
        || line.starts_with(b"Setting current time to ")
}

/// Match output lines to commands. `feed` takes one line (without `\n`) and returns the
/// outcome when it decides one; `finish` decides at the end of the output.
#[derive(Debug, Default)]
pub struct Matcher {
    next: usize,
    started: bool,
}

impl Matcher {
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// Commands echoed so far.
    pub fn done(&self) -> usize {
        self.next
    }

    /// Take one output line; `lines` are the commands sent so far and `expect[i]` the
    /// inode command `i` must report allocating, when predicted.
    pub fn feed(
        &mut self,
        lines: &[Vec<u8>],
        expect: &[Option<u32>],
        line: &[u8],
    ) -> Option<Outcome> {
        if let Some(expected) = lines.get(self.next) {
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
            let want = expect.get(self.next - 1).copied().flatten();
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
        if let Some(n) = line
            .strip_prefix(b"Inode ")
            .and_then(|l| l.strip_suffix(b" is marked in use"))
        {
            let want = expect.get(self.next - 1).copied().flatten();
            let got = std::str::from_utf8(n)
                .ok()
                .and_then(|t| t.parse::<u32>().ok());
            if want.is_some() && got == want {
                return None;
            }
        }
        if success_line(line) {
            return None;
        }
        Some(Outcome::Failed {
            index: self.next - 1,
            message: line.to_vec(),
        })
    }

    pub fn finish(&self, total: usize, status: &std::process::ExitStatus) -> Outcome {
        if self.next < total || !status.success() {
            return Outcome::Stopped {
                index: self.next,
                status: status.to_string(),
            };
        }
        Outcome::Done
    }
}

/// One `debugfs -w -f -` process fed the script as it is generated.
///
/// Its output goes to a file, read as it grows: debugfs writes every echo with its own
/// `write` (stdout is unbuffered in `-f` mode), and a pipe would wake this process for each
/// of them (a third of the run time on 20,000 entries).
pub struct Session {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    output: File,
    pending: Vec<u8>,
    buf: Vec<u8>,
    matcher: Matcher,
    sent: usize,
}

impl Session {
    /// Start debugfs on `image`, its output going to `out_path`.
    pub fn start(image: &Path, out_path: &Path, time: i64) -> Result<Session> {
        let out = File::create(out_path).context("creating the output file of debugfs")?;
        let mut cmd = command(time);
        cmd.arg("-w").arg("-f").arg("-").arg(image);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::from(
                out.try_clone()
                    .context("creating the output file of debugfs")?,
            ))
            .stderr(Stdio::from(out));
        let mut child = cmd.spawn().context("running debugfs")?;
        drop(cmd);
        let stdin = child
            .stdin
            .take()
            .map(|s| BufWriter::with_capacity(1 << 16, s));
        let output = File::open(out_path).context("reading the output of debugfs")?;
        Ok(Session {
            child,
            stdin,
            output,
            pending: Vec::with_capacity(1 << 16),
            buf: vec![0u8; 1 << 16],
            matcher: Matcher::new(),
            sent: 0,
        })
    }

    /// Commands echoed so far.
    pub fn done(&self) -> usize {
        self.matcher.done()
    }

    /// Send the lines not sent yet. A debugfs that stopped reading shows in its output.
    pub fn send(&mut self, lines: &[Vec<u8>]) {
        if let Some(w) = self.stdin.as_mut() {
            for l in &lines[self.sent..] {
                let r = w.write_all(l).and_then(|()| w.write_all(b"\n"));
                if r.is_err() {
                    self.stdin = None;
                    break;
                }
            }
        }
        self.sent = lines.len();
    }

    /// Whether debugfs has exited (its output says why, at [`Session::finish`]).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Hand what is buffered to debugfs.
    pub fn flush(&mut self) {
        if let Some(w) = self.stdin.as_mut() {
            if w.flush().is_err() {
                self.stdin = None;
            }
        }
    }

    /// Read what debugfs wrote since the last call; `Some` on the first failure.
    pub fn poll(&mut self, lines: &[Vec<u8>], expect: &[Option<u32>]) -> Result<Option<Outcome>> {
        loop {
            let n = self
                .output
                .read(&mut self.buf)
                .context("reading the output of debugfs")?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&self.buf[..n]);
            let mut start = 0;
            while let Some(at) = self.pending[start..].iter().position(|&b| b == b'\n') {
                let line = &self.pending[start..start + at];
                if let Some(outcome) = self.matcher.feed(lines, expect, line) {
                    return Ok(Some(outcome));
                }
                start += at + 1;
            }
            self.pending.drain(..start);
        }
    }

    /// Stop a failed run: the image is unusable anyway.
    pub fn kill(mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// End the input and wait for debugfs, reading its output (`done(n)`: commands before
    /// `n` have finished).
    pub fn finish(
        mut self,
        lines: &[Vec<u8>],
        expect: &[Option<u32>],
        progress: &mut Progress,
        mut done: impl FnMut(usize),
    ) -> Result<Outcome> {
        self.send(lines);
        if let Some(mut w) = self.stdin.take() {
            let _ = w.flush();
        }
        let total = lines.len();
        loop {
            if let Err(stop) = seedkit::interrupt::check() {
                self.kill();
                anyhow::bail!("{stop}; the image is unusable, rebuild it");
            }
            let exited = self.child.try_wait().context("waiting for debugfs")?;
            if let Some(outcome) = self.poll(lines, expect)? {
                self.kill();
                return Ok(outcome);
            }
            done(self.matcher.done().saturating_sub(1));
            progress.update(|| {
                format!(
                    "ext4-ingest: {}/{total} debugfs commands",
                    self.matcher.done()
                )
            });
            if let Some(status) = exited {
                // Everything it wrote is in; a last line may lack its newline.
                if !self.pending.is_empty() {
                    let last = std::mem::take(&mut self.pending);
                    if let Some(outcome) = self.matcher.feed(lines, expect, &last) {
                        return Ok(outcome);
                    }
                }
                progress.finish();
                return Ok(self.matcher.finish(total, &status));
            }
            std::thread::sleep(POLL);
        }
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
        let expect: Vec<Option<u32>> = vec![None; cmds.len()];
        let mut m = Matcher::new();
        for l in [
            "debugfs 1.47.0 (5-Feb-2023)",
            "debugfs: set_current_time @5",
            "Setting current time to Thu Jan  1 00:00:05 1970",
            "",
            "debugfs: write \"a\" \"a\"",
            "Allocated inode: 12",
            "debugfs: sif \"./a\" mtime @1",
        ] {
            assert_eq!(m.feed(&cmds, &expect, l.as_bytes()), None, "{l}");
        }
        assert_eq!(
            m.finish(cmds.len(), &std::process::ExitStatus::from_raw(0)),
            Outcome::Done
        );
    }

    #[test]
    fn an_error_line_fails_the_last_echoed_command() {
        let cmds = lines(&["mkdir \"d\"", "write \"f\" \"f\""]);
        let expect: Vec<Option<u32>> = vec![None; cmds.len()];
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: mkdir \"d\""), None);
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: write \"f\" \"f\""), None);
        assert_eq!(
            m.feed(
                &cmds,
                &expect,
                b"write: Could not allocate block in ext2 filesystem"
            ),
            Some(Outcome::Failed {
                index: 1,
                message: b"write: Could not allocate block in ext2 filesystem".to_vec()
            })
        );
    }

    #[test]
    fn ss_errors_that_look_like_echoes_are_failures() {
        let cmds = lines(&["mkdir \"d\""]);
        let expect: Vec<Option<u32>> = vec![None; cmds.len()];
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: mkdir \"d\""), None);
        assert!(matches!(
            m.feed(
                &cmds,
                &expect,
                b"debugfs: Unbalanced quotes in command line"
            ),
            Some(Outcome::Failed { index: 0, .. })
        ));
    }

    #[test]
    fn an_image_that_does_not_open_is_caught_before_any_command() {
        let cmds = lines(&["mkdir \"d\""]);
        let expect: Vec<Option<u32>> = vec![None; cmds.len()];
        let mut m = Matcher::new();
        assert!(matches!(
            m.feed(
                &cmds,
                &expect,
                b"debugfs: Bad magic number in super-block while trying to open x"
            ),
            Some(Outcome::NotOpened { .. })
        ));
    }

    #[test]
    fn an_unexpected_inode_number_is_a_failure() {
        let cmds = lines(&["write \"a\" \"a\""]);
        let expect = [Some(12)];
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: write \"a\" \"a\""), None);
        assert!(matches!(
            m.feed(&cmds, &expect, b"Allocated inode: 13"),
            Some(Outcome::Failed { index: 0, .. })
        ));
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: write \"a\" \"a\""), None);
        assert_eq!(m.feed(&cmds, &expect, b"Allocated inode: 12"), None);
    }

    #[test]
    fn testi_answers_pass_only_for_the_predicted_inode() {
        let cmds = lines(&["testi \"<12>\""]);
        let expect = [Some(12)];
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: testi \"<12>\""), None);
        assert_eq!(m.feed(&cmds, &expect, b"Inode 12 is marked in use"), None);
        assert!(m.feed(&cmds, &expect, b"Inode 12 is not in use").is_some());
    }

    #[test]
    fn missing_commands_mean_debugfs_stopped() {
        let cmds = lines(&["mkdir \"d\"", "mkdir \"e\""]);
        let expect: Vec<Option<u32>> = vec![None; cmds.len()];
        let mut m = Matcher::new();
        assert_eq!(m.feed(&cmds, &expect, b"debugfs: mkdir \"d\""), None);
        assert!(matches!(
            m.finish(cmds.len(), &std::process::ExitStatus::from_raw(139)),
            Outcome::Stopped { index: 1, .. }
        ));
    }
}
