//! Helpers for the integration tests of the work-seed tools. Dev-dependency only.
//!
//! Everything here is real: temp directories on the host file system, the built binaries,
//! `mkfs.ext4`, `debugfs` and `e2fsck` from e2fsprogs, and a real unprivileged uid.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The uid and gid unprivileged runs use (`nobody` on Debian).
pub const NOBODY: u32 = 65534;

/// A temporary directory removed (after making everything in it writable) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let path = nix::unistd::mkdtemp(&base.join("seedkit-test.XXXXXX")).expect("mkdtemp");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// Hand the directory to `nobody`, so an unprivileged run can work in it.
    pub fn give_to_nobody(&self) {
        chown_recursive(&self.path, NOBODY);
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SEEDKIT_KEEP_TEMP").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        make_removable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn make_removable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                make_removable(&e.path());
            }
        }
    }
}

/// chown -R (never following symlinks).
pub fn chown_recursive(path: &Path, id: u32) {
    let uid = nix::unistd::Uid::from_raw(id);
    let gid = nix::unistd::Gid::from_raw(id);
    let _ = nix::unistd::fchownat(
        None,
        path,
        Some(uid),
        Some(gid),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                chown_recursive(&e.path(), id);
            }
        }
    }
}

/// Whether this process is root (and so can, and must, drop privilege for unprivileged tests).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A command that runs as `nobody` with no supplementary groups when this process is root;
/// unchanged otherwise (the caller is then unprivileged already).
pub fn unprivileged(mut cmd: Command) -> Command {
    if is_root() {
        // std clears the supplementary groups itself when a root parent sets a uid
        // (`setgroups(0, NULL)` before `setgid`/`setuid`); a `pre_exec` setgroups would run
        // after the uid change and fail with EPERM.
        cmd.gid(NOBODY).uid(NOBODY);
    }
    cmd
}

/// Copy a built binary into `dir` (world-executable) so that `nobody` can run it even when
/// the build tree sits under a directory only root may enter.
pub fn copy_binary(exe: &str, dir: &Path) -> PathBuf {
    let name = Path::new(exe).file_name().expect("binary name");
    let to = dir.join(name);
    fs::copy(exe, &to).expect("copy binary");
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod binary");
    to
}

/// Run a command with `stdin` as input and capture everything.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// Run a command with empty stdin.
pub fn run(cmd: &mut Command) -> Output {
    run_with_stdin(cmd, b"")
}

/// The exit code, or a panic naming the signal that killed the process.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a program is on PATH (or at the e2fsprogs sbin paths).
pub fn have(program: &str) -> bool {
    find_program(program).is_some()
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A command for an e2fsprogs (or other system) program, found on PATH or in /sbin.
pub fn tool(program: &str) -> Command {
    Command::new(find_program(program).unwrap_or_else(|| PathBuf::from(program)))
}

/// `mkfs.ext4 -q -F [extra...] -d tree image size` with a fixed time, so images are stable.
/// Panics with mkfs's output when it fails.
pub fn mkfs_from_tree(image: &Path, size: &str, tree: Option<&Path>, extra: &[&str]) {
    let _ = fs::remove_file(image);
    let mut cmd = tool("mke2fs");
    cmd.env("E2FSPROGS_FAKE_TIME", "1700000000")
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf");
    cmd.args(["-q", "-F"]).args(extra);
    if let Some(t) = tree {
        cmd.arg("-d").arg(t);
    }
    cmd.arg(image).arg(size);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "mke2fs failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `e2fsck -fn image`: Ok when clean, Err with its output otherwise.
pub fn e2fsck_clean(image: &Path) -> Result<(), String> {
    let out = run(tool("e2fsck").arg("-fn").arg(image));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {}: {}{}",
            image.display(),
            stdout(&out),
            stderr(&out)
        ))
    }
}

/// `debugfs -R request image`, returning stdout (the banner on stderr is dropped).
pub fn debugfs(image: &Path, request: impl AsRef<OsStr>) -> String {
    let out = run(tool("debugfs").arg("-R").arg(request).arg(image));
    stdout(&out)
}

/// Write `data` at `offset` of `path`, creating it; used to build sparse files.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .expect("open");
    f.write_all_at(data, offset).expect("write_at");
}
