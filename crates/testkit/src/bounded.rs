//! Running a tool the way a daemon facing hostile input would: within limits of CPU time,
//! memory, output and wall time, and measuring what it used (the kernel's own accounting:
//! `wait4`'s resource usage of exactly that process).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What a run may use. Past `cpu_seconds` the kernel kills it (`RLIMIT_CPU`); past
/// `memory_bytes` of address space its allocations fail (`RLIMIT_AS`); past `output_bytes`
/// on stdout or stderr, or `wall`, it is killed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub output_bytes: u64,
    pub wall: Duration,
}

impl Default for Limits {
    /// Generous: a minute of CPU, 2 GiB of address space, 256 MiB of output, ten minutes.
    fn default() -> Limits {
        Limits {
            cpu_seconds: 60,
            memory_bytes: 2 << 30,
            output_bytes: 256 << 20,
            wall: Duration::from_secs(600),
        }
    }
}

/// What a run used and gave.
#[derive(Debug)]
pub struct Usage {
    pub status: ExitStatus,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident memory in bytes.
    pub peak_rss: u64,
    pub stdout_bytes: u64,
    /// Lines on stdout.
    pub stdout_lines: u64,
    pub stderr_bytes: u64,
    /// Bytes it (and the children it waited for) wrote to files on the host, as the
    /// kernel counts them when pages are dirtied (`ru_oublock` x 512; 0 on tmpfs).
    pub host_written: u64,
    /// The first MiB of each stream.
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Why the run was killed by the watcher (output or wall limit), if it was.
    pub killed: Option<String>,
}

impl Usage {
    /// The exit code, `None` when a signal ended it.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether the run ended by itself within every limit.
    pub fn within_limits(&self) -> bool {
        self.killed.is_none() && self.status.signal().is_none()
    }

    /// How many warnings on stderr contain `needle`: those printed, and those a
    /// `... and N more like this: ...` line counts (the tools fold repeated warnings).
    pub fn warnings(&self, needle: &str) -> u64 {
        self.stderr
            .lines()
            .filter(|l| l.contains(needle))
            .map(|l| {
                l.split_once("... and ")
                    .and_then(|(_, rest)| rest.split_once(" more like this"))
                    .map_or(1, |(n, _)| n.replace(',', "").parse().unwrap_or(0))
            })
            .sum()
    }

    /// A one-line account, for assertion messages.
    pub fn describe(&self) -> String {
        let first: String = self.stderr.lines().take(3).collect::<Vec<_>>().join(" / ");
        format!(
            "status {:?} (signal {:?}){}, cpu {:.2} s, peak rss {} KiB, stdout {} bytes, \
             stderr {} bytes: {first}",
            self.status.code(),
            self.status.signal(),
            self.killed
                .as_ref()
                .map_or(String::new(), |k| format!(", killed: {k}")),
            self.cpu.as_secs_f64(),
            self.peak_rss / 1024,
            self.stdout_bytes,
            self.stderr_bytes,
        )
    }
}

const KEPT: usize = 1 << 20;

/// Read a stream to its end, counting bytes and lines; kill `pid` once it passes `limit`
/// bytes.
fn drain(
    mut r: impl Read + Send + 'static,
    limit: u64,
    pid: i32,
    over: Arc<AtomicBool>,
) -> thread::JoinHandle<(u64, u64, Vec<u8>)> {
    thread::spawn(move || {
        let mut total = 0u64;
        let mut lines = 0u64;
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            lines += buf[..n].split(|&b| b == b'\n').count() as u64 - 1;
            let room = KEPT.saturating_sub(kept.len()).min(n);
            kept.extend_from_slice(&buf[..room]);
            if total > limit && !over.swap(true, Ordering::SeqCst) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        (total, lines, kept)
    })
}

/// Run `cmd` (stdin from /dev/null) within `limits`; what it used.
#[allow(unsafe_code)]
pub fn run_within(cmd: &mut Command, limits: &Limits) -> Usage {
    use nix::sys::resource::{setrlimit, Resource};
    let (cpu, memory) = (limits.cpu_seconds, limits.memory_bytes);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            setrlimit(Resource::RLIMIT_CPU, cpu, cpu)?;
            setrlimit(Resource::RLIMIT_AS, memory, memory)?;
            Ok(())
        });
    }
    // Waited for with wait4 below, which gives the child's own resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tool");
    let pid = i32::try_from(child.id()).expect("a pid");
    let out_over = Arc::new(AtomicBool::new(false));
    let err_over = Arc::new(AtomicBool::new(false));
    let out = drain(
        child.stdout.take().expect("stdout"),
        limits.output_bytes,
        pid,
        Arc::clone(&out_over),
    );
    let err = drain(
        child.stderr.take().expect("stderr"),
        limits.output_bytes,
        pid,
        Arc::clone(&err_over),
    );
    let done = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, timed_out, wall) = (Arc::clone(&done), Arc::clone(&timed_out), limits.wall);
        thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > wall {
                    timed_out.store(true, Ordering::SeqCst);
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut raw_status = 0;
    // SAFETY: a zeroed rusage is a valid value of a plain C struct; pid is our child, not
    // waited for by anything else; both pointers are valid for the call.
    let (waited, ru) = unsafe {
        let mut ru: nix::libc::rusage = std::mem::zeroed();
        let waited = nix::libc::wait4(pid, &raw mut raw_status, 0, &raw mut ru);
        (waited, ru)
    };
    assert_eq!(waited, pid, "wait4 on the tool");
    done.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    let (stdout_bytes, stdout_lines, stdout) = out.join().expect("stdout reader");
    let (stderr_bytes, _, stderr) = err.join().expect("stderr reader");
    let time = |t: nix::libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let killed = if out_over.load(Ordering::SeqCst) || err_over.load(Ordering::SeqCst) {
        Some(format!("more than {} bytes of output", limits.output_bytes))
    } else if timed_out.load(Ordering::SeqCst) {
        Some(format!("still running after {:?}", limits.wall))
    } else {
        None
    };
    Usage {
        status: ExitStatus::from_raw(raw_status),
        cpu: time(ru.ru_utime) + time(ru.ru_stime),
        peak_rss: u64::try_from(ru.ru_maxrss).unwrap_or(0) * 1024,
        stdout_bytes,
        stdout_lines,
        stderr_bytes,
        host_written: u64::try_from(ru.ru_oublock).unwrap_or(0) * 512,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        killed,
    }
}
