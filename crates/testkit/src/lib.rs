//! Helpers for the integration tests of the work-seed tools. Dev-dependency only.
//!
//! Everything here is real: temp directories on the host file system, the built binaries,
//! `mkfs.ext4`, `debugfs` and `e2fsck` from e2fsprogs, and a real unprivileged uid.

pub mod bounded;
pub mod craft;
pub mod mkfs;
pub mod schema;
pub mod tarstream;
pub mod trace;
pub mod tree;

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
        TempDir::new_in(&base)
    }

    /// A temporary directory under `base`.
    pub fn new_in(base: &Path) -> TempDir {
        let path = nix::unistd::mkdtemp(&base.join("seedkit-test.XXXXXX")).expect("mkdtemp");
        TempDir { path }
    }

    /// A temporary directory in memory (`/dev/shm`) when the host has one, else as `new`:
    /// for tests that create tens of thousands of files, which a disk file system makes
    /// slowly when their names collide in its directory hash.
    pub fn in_memory() -> TempDir {
        let shm = Path::new("/dev/shm");
        let writable = nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
        if shm.is_dir() && writable {
            TempDir::new_in(shm)
        } else {
            TempDir::new()
        }
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
        if fs::remove_dir_all(&self.path).is_err() {
            // A chain deeper than std's removal can go (one descriptor per level): rm's
            // walk has no such limit.
            let _ = Command::new("rm").arg("-rf").arg(&self.path).status();
        }
    }
}

/// `exe` run with at most `files` open descriptors and a main-thread stack of `stack`
/// bytes (`prlimit`): a walk that holds a descriptor or a stack frame per directory level
/// fails under it on a deep chain.
pub fn limited(exe: impl AsRef<OsStr>, files: u32, stack: u32) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={files}"))
        .arg(format!("--stack={stack}"))
        .arg("--")
        .arg(exe);
    cmd
}

/// A rootfs image (mkfs.ext4 -d, 64 MiB) built to make a reader report much: in `/root`,
/// `target`, a file, and a chain of `levels` directories with names of 255 bytes, the last
/// holding `names` further names of `target` (`n0000`, ...), whose link count is then set
/// to 1. A reader that stages an inode once reports each name past the link count, each
/// with a path of `levels` x 256 bytes.
pub fn names_past_the_link_count(image: &Path, levels: usize, names: usize) {
    use seedkit::sys;
    let tree = image.with_extension("tree");
    let root = tree.join("root");
    fs::create_dir_all(&root).expect("mkdir");
    fs::write(root.join("target"), b"one file\n").expect("write");
    let top = sys::open_dir(&root).expect("open the tree");
    let name = "x".repeat(255);
    let mut dir = sys::open_dir(&root).expect("open the tree");
    for _ in 0..levels {
        nix::sys::stat::mkdirat(
            &dir,
            name.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .expect("mkdir");
        dir = sys::open_dir_at(&dir, name.as_bytes()).expect("open");
    }
    for i in 0..names {
        let link = format!("n{i:04}");
        nix::unistd::linkat(
            &top,
            "target",
            &dir,
            link.as_str(),
            nix::fcntl::AtFlags::empty(),
        )
        .expect("link");
    }
    mkfs_from_tree(image, "64M", Some(&tree), &["-t", "ext4"]);
    let out = run(tool("debugfs")
        .args(["-w", "-R", "sif /root/target links_count 1"])
        .arg(image));
    assert!(out.status.success(), "debugfs: {}", stderr(&out));
}

/// `exe` run with at most `bytes` of data memory (`prlimit --data`: heap, anonymous
/// mappings and thread stacks): a tool that holds what it reads fails under it.
pub fn memory_limited(exe: impl AsRef<OsStr>, bytes: u64) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--data={bytes}")).arg("--").arg(exe);
    cmd
}

/// An image of `size` (4 KiB blocks) whose directory `/many/blob` holds one name for every
/// 16 bytes of `blocks` blocks, `n0000000`, `n0000001`..., each a name of the one file
/// `/target`, which has a user xattr of `xattr_len` bytes (none when 0) and a link count of
/// `links`. Built as no tool would: mkfs.ext4 -d makes `/many/blob`, a file of `blocks`
/// blocks, whose blocks are then filled with directory entries and which is made a
/// directory (`debugfs sif`), without metadata_csum, dir_index or a journal so nothing else has to
/// agree. Only a reader believes it; e2fsck would not.
pub fn names_of_one_file(image: &Path, size: &str, blocks: usize, xattr_len: usize, links: u16) {
    use std::os::unix::fs::FileExt;
    let tree = image.with_extension("tree");
    fs::create_dir_all(tree.join("many")).expect("mkdir");
    fs::write(tree.join("target"), b"one file, many names\n").expect("write");
    if xattr_len > 0 {
        assert!(set_xattr(
            &tree.join("target"),
            "user.big",
            &vec![b'x'; xattr_len]
        ));
    }
    // Data mkfs stores as it is (no zeros it could leave out).
    let blob: Vec<u8> = (0..blocks * 4096).map(|i| (i % 251) as u8 | 1).collect();
    fs::write(tree.join("many/blob"), blob).expect("write");
    mkfs_from_tree(
        image,
        size,
        Some(&tree),
        &[
            "-t",
            "ext4",
            "-b",
            "4096",
            "-N",
            "64",
            "-O",
            "^metadata_csum,^dir_index,^has_journal",
        ],
    );
    fs::remove_dir_all(&tree).expect("rm");
    let stat = debugfs(image, "stat /target");
    let ino: u32 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("debugfs stat: {stat}"));
    let listed = debugfs(image, "blocks /many/blob");
    let numbers: Vec<u64> = listed
        .split_whitespace()
        .map(|w| w.parse().expect("block number"))
        .collect();
    assert_eq!(numbers.len(), blocks, "{listed}");
    let file = fs::OpenOptions::new()
        .write(true)
        .open(image)
        .expect("open");
    let mut n = 0u32;
    for block in numbers {
        let mut raw = Vec::with_capacity(4096);
        // 256 entries of 16 bytes fill the block: inode, record length, name length and
        // type (a regular file), the name.
        for _ in 0..256 {
            raw.extend_from_slice(&ino.to_le_bytes());
            raw.extend_from_slice(&16u16.to_le_bytes());
            raw.extend_from_slice(&[8, 1]);
            raw.extend_from_slice(format!("n{n:07}").as_bytes());
            n += 1;
        }
        file.write_all_at(&raw, block * 4096).expect("write");
    }
    for request in [
        "sif /many/blob mode 040755".to_string(),
        format!("sif /target links_count {links}"),
    ] {
        let out = run(tool("debugfs").arg("-w").arg("-R").arg(&request).arg(image));
        assert!(out.status.success(), "debugfs {request}: {}", stderr(&out));
    }
}

/// A chain of `levels` directories named `d` under `top` (which exists), built through
/// descriptors since its path is far longer than PATH_MAX, with a file `f` holding
/// `bottom` at its end.
pub fn deep_chain(top: &Path, levels: usize) {
    use nix::fcntl::OFlag;
    use seedkit::sys;
    let mut dir = sys::open_dir(top).expect("open the top of the chain");
    for _ in 0..levels {
        nix::sys::stat::mkdirat(&dir, "d", nix::sys::stat::Mode::from_bits_truncate(0o755))
            .expect("mkdir");
        dir = sys::open_dir_at(&dir, b"d").expect("open");
    }
    let f = sys::open_at(&dir, b"f", OFlag::O_WRONLY | OFlag::O_CREAT, 0o644)
        .expect("create the file at the bottom");
    fs::File::from(f)
        .write_all(b"bottom")
        .expect("write the file at the bottom");
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
        nix::fcntl::AT_FDCWD,
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
#[allow(unsafe_code)]
pub fn unprivileged(mut cmd: Command) -> Command {
    if is_root() {
        // std's own uid/gid switch runs before pre_exec closures, when setgroups would no
        // longer be allowed; so the whole switch happens here, in the order the kernel needs.
        // SAFETY: these calls are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let id = NOBODY;
                nix::unistd::setgroups(&[])?;
                nix::unistd::setgid(nix::unistd::Gid::from_raw(id))?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(id))?;
                Ok(())
            });
        }
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

/// Start a command, retrying while its executable is busy: a binary just written by
/// [`copy_binary`] stays open for writing in children that other test threads fork before
/// they exec, and exec fails with ETXTBSY until they do.
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.expect("spawn"),
        }
    }
}

/// Run a command with `stdin` as input and capture everything.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd);
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

/// The content digest ext4-ls `--hash` defines, of the bytes the kernel reads from `path`,
/// computed apart from the tool: the stream is built here by the definition (4 KiB pieces,
/// each maximal run of n all-zero pieces as one zero piece and n in 8 big-endian bytes)
/// and hashed by coreutils' sha256sum. For test files of a few MiB.
pub fn content_digest(path: &Path) -> String {
    const PIECE: usize = 4096;
    let data = fs::read(path).expect("read");
    let mut stream = Vec::with_capacity(data.len());
    let mut run = 0u64;
    let end_run = |stream: &mut Vec<u8>, run: &mut u64| {
        if *run > 0 {
            stream.extend_from_slice(&[0; PIECE]);
            stream.extend_from_slice(&run.to_be_bytes());
            *run = 0;
        }
    };
    for piece in data.chunks(PIECE) {
        if piece.len() == PIECE && piece.iter().all(|&b| b == 0) {
            run += 1;
        } else {
            end_run(&mut stream, &mut run);
            stream.extend_from_slice(piece);
        }
    }
    end_run(&mut stream, &mut run);
    let out = run_with_stdin(&mut Command::new("sha256sum"), &stream);
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Whether the file at `path` holds an all-zero 4 KiB piece (at a multiple of 4 KiB).
pub fn has_zero_piece(path: &Path) -> bool {
    fs::read(path)
        .expect("read")
        .chunks_exact(4096)
        .any(|p| p.iter().all(|&b| b == 0))
}

/// Make a fifo at `path` (mode 0600): as an image, a fifo without a writer blocks `open`.
pub fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

/// Everything `pipe` gives until its end, read by a thread.
fn read_in_background<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Run a command (empty stdin, everything captured) in a process group of its own, and wait
/// at most `limit` for it. Past that, the group gets SIGTERM and, two seconds later,
/// SIGKILL, and the test fails saying which ended it: a tool that blocks, and one that
/// does not answer SIGTERM, each fail visibly instead of hanging the test run.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use nix::sys::signal::{killpg, Signal};
    use std::time::{Duration, Instant};
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn(cmd);
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let wait_until = |child: &mut std::process::Child, deadline: Instant| loop {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes are read while waiting, so that a chatty child cannot block on them.
    let out_reader = read_in_background(child.stdout.take());
    let err_reader = read_in_background(child.stderr.take());
    if !wait_until(&mut child, Instant::now() + limit) {
        let _ = killpg(group, Signal::SIGTERM);
        let answered = wait_until(&mut child, Instant::now() + Duration::from_secs(2));
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
        panic!(
            "{cmd:?} still running after {limit:?}; {}",
            if answered {
                "SIGTERM ended it"
            } else {
                "it did not answer SIGTERM (killed)"
            }
        );
    }
    // Whatever the child left running in its group must not outlive the test.
    let _ = killpg(group, Signal::SIGKILL);
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
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

/// `debugfs -w -f SCRIPT image`: run the lines of `script` against `image` (the script is
/// written beside the image first). Panics when debugfs fails.
pub fn debugfs_script(image: &Path, script: &str) {
    let mut path = image.as_os_str().to_owned();
    path.push(".debugfs-script");
    fs::write(&path, script).expect("write the debugfs script");
    let out = run(tool("debugfs").arg("-w").arg("-f").arg(&path).arg(image));
    assert!(out.status.success(), "debugfs: {}", stderr(&out));
}

/// An 8 MiB ext4 image `img` in `t`, made by `mkfs.ext4 -d` from a tree `src` that holds
/// one file `/f` (`x`): the image a test changes with [`debugfs_script`].
pub fn one_file_image(t: &TempDir) -> PathBuf {
    let tree = t.join("src");
    fs::create_dir(&tree).expect("mkdir");
    fs::write(tree.join("f"), b"x").expect("write");
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    image
}

/// A POSIX ACL as Linux stores it in `system.posix_acl_access` (version 2), from its
/// (tag, permissions, id) entries.
pub fn posix_acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut acl = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    acl
}

/// Whether every one of `programs` is installed; when one is not, [`skip`] `test` (a
/// failure under `CI=true`) and say which.
pub fn need(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    if missing.is_empty() {
        return true;
    }
    skip(test, &format!("not installed: {}", missing.join(", ")));
    false
}

/// A tree of `dirs` directories `dNN` under `tree`, each of `files` small files `fNNNN`
/// (holding their own path): a run over it lasts long enough to be caught half-way.
pub fn many_files(tree: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = tree.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..files {
            fs::write(dir.join(format!("f{f:04}")), format!("{d}/{f}")).expect("write");
        }
    }
}

/// The names in `dir`, sorted (empty when it cannot be read, e.g. is gone).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        },
    );
    v.sort();
    v
}

/// The permission bits (with set-ID and sticky bits) of `path`, a symlink as itself.
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("lstat")
        .permissions()
        .mode()
        & 0o7777
}

/// `chmod mode path`.
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// As root, a device node at `path` (`char` or block, `mode` bits, `major:minor`), and
/// true; unprivileged, nothing, and false (only root may make device nodes).
pub fn make_device(path: &Path, char: bool, mode: u32, (major, minor): (u64, u64)) -> bool {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    if !is_root() {
        return false;
    }
    let kind = if char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
    let made = mknod(
        path,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    );
    assert!(made.is_ok(), "mknod {}: {made:?}", path.display());
    true
}

/// The SHA-256 of a file's content, in hex, as `sha256sum` (coreutils) prints it.
pub fn sha256sum(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    assert!(out.status.success(), "sha256sum: {}", stderr(&out));
    stdout(&out).chars().take(64).collect()
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
    // Flushed, so that st_blocks counts what the file really holds (extent blocks included)
    // rather than delayed-allocation reservations.
    f.sync_all().expect("fsync");
}

/// Bytes a file occupies on disk (`st_blocks` x 512).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).expect("stat").blocks() * 512
}

/// Free bytes of the file system holding `path`, as an unprivileged user sees them.
pub fn free_bytes(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).expect("statvfs");
    st.blocks_available() * st.fragment_size()
}

/// Whether the tests run in CI (`CI=true`), where every capability a test needs (root, loop
/// devices, mkfs tools) must be present: a test that cannot run there fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Report that a test cannot run here: print `SKIP: <test>: <why>` on stderr so the test
/// passes visibly skipped; in CI, fail instead.
pub fn skip(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test}: cannot run in CI: {why} (CI=true requires it)"
    );
    // Written to the stderr handle rather than with eprintln!, which the test harness
    // captures and shows only for failing tests.
    let _ = writeln!(std::io::stderr().lock(), "SKIP: {test}: {why}");
}

/// A file system mounted on a directory inside a [`TempDir`], unmounted (lazily, should it
/// be busy) on drop. Needs root; constructors return `Err(why)` when something is missing.
pub struct Mount {
    point: PathBuf,
    // Declared last: dropped after the unmount.
    dir: TempDir,
}

impl Mount {
    /// A loop-mounted file system of type `fstype` on a sparse image of `size` bytes, made
    /// with `mkfs.<fstype> [mkfs_args...] image`.
    pub fn loop_fs(fstype: &str, mkfs_args: &[&str], size: u64) -> Result<Mount, String> {
        if !is_root() {
            return Err(format!("mounting {fstype} needs root"));
        }
        let mkfs = format!("mkfs.{fstype}");
        if !have(&mkfs) {
            return Err(format!("{mkfs} is not installed"));
        }
        let dir = TempDir::new();
        let image = dir.join("fs.img");
        fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .map_err(|e| format!("creating {}: {e}", image.display()))?;
        let out = run(tool(&mkfs).args(mkfs_args).arg(&image));
        if !out.status.success() {
            return Err(format!("{mkfs} failed: {}{}", stdout(&out), stderr(&out)));
        }
        Mount::attach(dir, &["-t", fstype, "-o", "loop"], Some(&image))
    }

    /// An existing image loop-mounted with `mount -o loop,<options>` (`ro` to look without
    /// touching it).
    pub fn image(image: &Path, options: &str) -> Result<Mount, String> {
        if !is_root() {
            return Err("mounting an image needs root".into());
        }
        let opts = format!("loop,{options}");
        Mount::attach(TempDir::new(), &["-o", &opts], Some(image))
    }

    /// A tmpfs of `size` (as `mount -o size=` takes it).
    pub fn tmpfs(size: &str) -> Result<Mount, String> {
        if !is_root() {
            return Err("mounting tmpfs needs root".into());
        }
        let opts = format!("size={size}");
        Mount::attach(TempDir::new(), &["-t", "tmpfs", "-o", &opts], None)
    }

    fn attach(dir: TempDir, opts: &[&str], image: Option<&Path>) -> Result<Mount, String> {
        let point = dir.join("mnt");
        fs::create_dir(&point).map_err(|e| format!("mkdir {}: {e}", point.display()))?;
        let mut cmd = tool("mount");
        cmd.args(opts);
        match image {
            Some(img) => cmd.arg(img),
            None => cmd.arg("tmpfs"),
        };
        let out = run(cmd.arg(&point));
        if !out.status.success() {
            return Err(format!(
                "mount {} failed (no loop devices, or no kernel support?): {}{}",
                opts.join(" "),
                stdout(&out),
                stderr(&out)
            ));
        }
        Ok(Mount { point, dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.point
    }

    /// A path under the mount point.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.point.join(p)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let out = run(tool("umount").arg(&self.point));
        if !out.status.success() {
            let _ = run(tool("umount").arg("-l").arg(&self.point));
        }
        let _ = &self.dir;
    }
}

/// The man page `man/<name>.1` of the workspace, found from the calling crate
/// (`tools/<tool>` or `crates/<crate>`, two levels below the root) when that crate is
/// compiled, so that it follows the checkout the tests run from.
#[macro_export]
macro_rules! man_page {
    ($name:literal) => {
        ::std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../man/",
            $name,
            ".1"
        ))
    };
}

/// The man page of a tool (see [`man_page!`]) must mention every long option `--help`
/// lists, and `groff -man -ww -z` must find nothing to say about it.
pub fn check_man_page(bin: &str, page_path: &Path) {
    let page =
        fs::read_to_string(page_path).unwrap_or_else(|e| panic!("{}: {e}", page_path.display()));
    // groff escapes hyphens in option names as \-.
    let page_text = page.replace("\\-", "-");
    let help = stdout(&run(Command::new(bin).arg("--help")));
    let mut missing = Vec::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=') {
        if let Some(opt) = word.strip_prefix("--") {
            let opt: String = opt
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !opt.is_empty()
                && opt != "help"
                && opt != "version"
                && !page_text.contains(&format!("--{opt}"))
            {
                missing.push(format!("--{opt}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} does not document {missing:?}",
        page_path.display()
    );
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            page.contains(&format!(".SH {section}"))
                || page.contains(&format!(".SH \"{section}\"")),
            "{} has no {section} section",
            page_path.display()
        );
    }
    if have("groff") {
        let out = run(Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(page_path));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "groff -man -ww -z {}: {}{}",
            page_path.display(),
            stdout(&out),
            stderr(&out)
        );
    } else {
        skip(
            &format!("man page lint of {}", page_path.display()),
            "groff is not installed",
        );
    }
}

/// Set an extended attribute on `path` (not following a final symlink). Returns false when
/// the host file system refuses it.
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).is_ok()
}

/// Set atime and mtime (with nanoseconds) of `path` without following a symlink.
pub fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::new(atime.0, atime.1),
        &TimeSpec::new(mtime.0, mtime.1),
        UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

/// Fill `root` (an existing empty directory) with a tree exercising what ext4 holds:
/// files of many sizes (empty, inline-sized, multi-block, sparse with a trailing hole), all
/// 12 mode bits, 0000 files and 0500 directories, fast and slow symlinks, hard links, a
/// fifo, a socket, user xattrs (when the host allows them), nanosecond times, and a directory of
/// `big_dir` entries (large enough to be hash-indexed).
pub fn fill_sample_tree(root: &Path, big_dir: usize) {
    let put = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel);
        fs::write(&p, data).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    fs::create_dir_all(root.join("d/sub")).expect("mkdir");
    put("empty", b"", 0o644);
    put("small", b"hello\n", 0o640);
    put("d/suid", b"#!/bin/sh\n", 0o4755);
    put("d/sgid", b"x", 0o2711);
    put("d/none", b"secret", 0o000);
    let pattern: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    put("d/sub/big", &pattern, 0o600);
    let sparse = root.join("sparse");
    write_at(&sparse, 0, b"head");
    write_at(&sparse, 5 << 20, b"middle");
    fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .and_then(|f| f.set_len(9 << 20))
        .expect("truncate");
    std::os::unix::fs::symlink("small", root.join("link")).expect("symlink");
    let long = format!("{}/end", "long-component".repeat(12));
    std::os::unix::fs::symlink(&long, root.join("d/longlink")).expect("symlink");
    fs::hard_link(root.join("small"), root.join("d/hard")).expect("link");
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o620),
    )
    .expect("mkfifo");
    set_xattr(&root.join("small"), "user.greeting", b"hi\x00there");
    set_xattr(&root.join("d"), "user.dir", b"v");
    let many = root.join("many");
    fs::create_dir(&many).expect("mkdir");
    for i in 0..big_dir {
        fs::write(
            many.join(format!("entry-with-a-longish-name-{i:05}")),
            i.to_string(),
        )
        .expect("write");
    }
    fs::create_dir(root.join("sticky")).expect("mkdir");
    fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    fs::create_dir(root.join("locked")).expect("mkdir");
    put("locked/inside", b"in", 0o444);
    fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o500)).expect("chmod");
    for (i, rel) in ["small", "d/sub/big", "sparse", "link", "d", "locked/inside"]
        .iter()
        .enumerate()
    {
        let i = i as i64;
        set_times(
            &root.join(rel),
            (1_600_000_000 + i, 123_456_789),
            (1_500_000_000 - i, 987_654_321 - i),
        );
    }
    set_times(&root.join("locked"), (1_000, 1), (2_000, 2));
}

/// Read an extended attribute of `path` (not following a final symlink); `None` when it is
/// absent or the host refuses.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let len = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// Where debugfs says inode `path` of `image` lives: (block, byte offset in it).
pub fn inode_location(image: &Path, path: &str) -> (u64, u64) {
    let text = debugfs(image, format!("imap {path}"));
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .rposition(|w| *w == "block")
        .expect("imap output");
    let block = words[at + 1].trim_end_matches(',').parse().expect("block");
    let offset = u64::from_str_radix(words[at + 3].trim_start_matches("0x"), 16).expect("offset");
    (block, offset)
}

/// The signals a tool must clean up after: SIGINT, SIGTERM and SIGHUP.
pub const TERMINATING: [nix::sys::signal::Signal; 3] = [
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGHUP,
];

/// Start `cmd` (stdout and stderr captured), send it `signal` as soon as `ready(pid)` holds
/// (polled every millisecond), and wait for it. Panics when the command ends first: the
/// test then proved nothing about the signal.
pub fn signal_when(
    cmd: &mut Command,
    signal: nix::sys::signal::Signal,
    ready: impl Fn(u32) -> bool,
) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd);
    let start = std::time::Instant::now();
    while !ready(child.id()) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let out = child.wait_with_output().expect("wait");
            panic!(
                "ended ({status}) before the {signal} was due: {}",
                stderr(&out)
            );
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "never ready for the {signal}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("kill");
    child.wait_with_output().expect("wait")
}

/// The run was stopped by `signal` and its handler ran: exit status 128 + N (not death by
/// the signal), and `tool: ... interrupted by SIGNAME` on stderr.
pub fn assert_interrupted(out: &Output, signal: nix::sys::signal::Signal, tool: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(128 + signal as i32),
        "{tool} after {signal}: {:?}: {err}",
        out.status
    );
    assert!(
        err.lines().any(|l| l.starts_with(&format!("{tool}: "))
            && l.contains(&format!("interrupted by {}", signal.as_str()))),
        "{tool} after {signal}: {err}"
    );
}

/// Bytes process `pid` has handed to `write` and its kin so far (`wchar` of
/// `/proc/PID/io`), 0 when unknown: a sign that a tool has begun writing its output.
pub fn bytes_written_by(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar: ").and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Processes (other than zombies) whose command line mentions `path`.
pub fn processes_using(path: &Path) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    let needle = path.as_os_str().as_bytes();
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .filter_map(|e| {
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let found = cmdline.windows(needle.len()).any(|w| w == needle);
            found.then(|| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

/// The e2fsprogs test images (most deliberately corrupt) that the corpus tests feed to the
/// tools: `shared/corpus/e2fsprogs-images` beside the checkout, as CI lays it out.
pub const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/e2fsprogs-images"
);

/// The corpus's images (`*.img.gz`), sorted; empty after a visible skip (a failure in CI)
/// when the corpus is not there.
pub fn corpus_images(test: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        skip(test, &format!("corpus not found at {}", dir.display()));
        return Vec::new();
    }
    let mut images: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read the corpus directory")
        .map(|e| e.expect("read the corpus directory").path())
        .filter(|p| p.to_string_lossy().ends_with(".img.gz"))
        .collect();
    images.sort();
    assert!(!images.is_empty(), "no images in {}", dir.display());
    images
}

/// The bytes of a gzip-compressed corpus image.
pub fn gunzip(gz: &Path) -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip -dc {}", gz.display());
    out.stdout
}
