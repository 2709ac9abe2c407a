//! clonecp on the host file system: sparse copies, modes, times, --force, every refusal.

use crate::common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok_record, run, same_content, sparse_image};
use testkit::{allocated_bytes, code, mode, names, stderr, stdout, TempDir};

/// Assert a refusal: exit 2, one diagnostic line holding `fragment`, nothing on stdout.
fn assert_refused(out: &std::process::Output, fragment: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 2, "stderr: {err}");
    assert!(stdout(out).is_empty(), "stdout: {}", stdout(out));
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("clonecp: "), "{err}");
    assert!(err.contains(fragment), "{fragment:?} not in: {err}");
}

#[test]
fn sparse_copy_on_the_host_keeps_content_holes_and_mode() {
    let t = TempDir::new();
    let (src, dst) = (t.join("seed.img"), t.join("work.img"));
    let data = sparse_image(&src, 64 << 20, 16, 256 << 10);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();

    let rec = ok_record(&run(["--json".as_ref(), src.as_os_str(), dst.as_os_str()]));
    assert_eq!(rec["src"], src.to_str().unwrap());
    assert_eq!(rec["dst"], dst.to_str().unwrap());
    assert_eq!(rec["size_bytes"], 64 << 20);
    assert_eq!(rec["holes_kept"], true);
    assert_eq!(rec["replaced"], false);
    let copied = rec["data_bytes"].as_u64().unwrap();
    assert!(copied >= data && copied < 64 << 20, "data_bytes {copied}");
    assert!(rec["seconds"].as_f64().unwrap() >= 0.0);

    assert!(same_content(&src, &dst));
    assert_eq!(fs::metadata(&dst).unwrap().len(), 64 << 20);
    let (a_src, a_dst) = (allocated_bytes(&src), allocated_bytes(&dst));
    assert!(a_dst <= a_src, "copy allocates {a_dst}, source {a_src}");
    assert_eq!(mode(&dst), 0o640);
}

#[test]
fn reflink_never_copies_and_keeps_holes() {
    let t = TempDir::new();
    let (src, dst) = (t.join("a"), t.join("b"));
    sparse_image(&src, 16 << 20, 4, 64 << 10);
    let rec = ok_record(&run([
        "--reflink=never".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ]));
    let method = rec["method"].as_str().unwrap();
    assert!(
        method == "copy_file_range" || method == "read_write",
        "method {method}"
    );
    assert!(same_content(&src, &dst));
    assert!(allocated_bytes(&dst) <= allocated_bytes(&src));
}

#[test]
fn a_file_ending_in_data_and_a_file_of_only_a_hole_are_copied() {
    let t = TempDir::new();
    let tail = t.join("tail");
    fs::File::create(&tail).unwrap().set_len(3 << 20).unwrap();
    testkit::write_at(&tail, (3 << 20) - 5000, &common::pattern(7, 5000));
    let hole = t.join("hole");
    fs::File::create(&hole).unwrap().set_len(5 << 20).unwrap();
    let empty = t.join("empty");
    fs::write(&empty, b"").unwrap();
    for src in [&tail, &hole, &empty] {
        let dst = t.join(format!(
            "{}.copy",
            src.file_name().unwrap().to_str().unwrap()
        ));
        let rec = ok_record(&run([
            "--reflink=never".as_ref(),
            "--json".as_ref(),
            src.as_os_str(),
            dst.as_os_str(),
        ]));
        assert!(same_content(src, &dst), "{}", src.display());
        assert_eq!(
            fs::metadata(&dst).unwrap().len(),
            fs::metadata(src).unwrap().len()
        );
        assert!(allocated_bytes(&dst) <= allocated_bytes(src));
        if src == &hole || src == &empty {
            assert_eq!(rec["data_bytes"], 0);
        }
    }
}

#[test]
fn all_twelve_permission_bits_are_copied() {
    let t = TempDir::new();
    for bits in [0o6755, 0o1644, 0o4711, 0o2640, 0o000] {
        let (src, dst) = (t.join(format!("s{bits:o}")), t.join(format!("d{bits:o}")));
        fs::write(&src, b"x").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(bits)).unwrap();
        if !testkit::is_root() && bits & 0o400 == 0 {
            continue; // unreadable to its owner unless root
        }
        let out = run([src.as_os_str(), dst.as_os_str()]);
        assert_eq!(code(&out), 0, "{bits:o}: {}", stderr(&out));
        assert_eq!(mode(&dst), bits, "mode {bits:04o}");
    }
}

#[test]
fn preserve_keeps_times_to_the_nanosecond() {
    let t = TempDir::new();
    let (src, dst, plain) = (t.join("a"), t.join("b"), t.join("c"));
    fs::write(&src, b"data").unwrap();
    let at = std::time::UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
    let mt = std::time::UNIX_EPOCH + Duration::new(1_600_000_000, 987_654_321);
    fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_times(fs::FileTimes::new().set_accessed(at).set_modified(mt))
        .unwrap();
    let out = run(["-p".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m = fs::metadata(&dst).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 987_654_321));
    assert_eq!((m.atime(), m.atime_nsec()), (1_500_000_000, 123_456_789));

    let out = run([src.as_os_str(), plain.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(fs::metadata(&plain).unwrap().mtime(), 1_600_000_000);
}

#[test]
fn verbose_reports_the_method_on_stderr_only() {
    let t = TempDir::new();
    let (src, dst) = (t.join("a"), t.join("b"));
    sparse_image(&src, 8 << 20, 2, 4096);
    let out = run(["-v".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.starts_with("clonecp: '"), "{err}");
    assert!(err.contains(" -> "), "{err}");
    assert!(
        ["clone, ", "copy_file_range, ", "read_write, "]
            .iter()
            .any(|m| err.contains(m)),
        "{err}"
    );
    assert!(err.contains("8388608 bytes"), "{err}");
    assert!(err.contains("holes kept"), "{err}");
}

#[test]
fn reflink_always_fails_where_no_clone_is_possible_and_leaves_nothing() {
    // In memory (tmpfs), which never shares blocks, whatever the host's disk can do.
    let t = TempDir::in_memory();
    let (src, probe, dst) = (t.join("a"), t.join("probe"), t.join("b"));
    sparse_image(&src, 4 << 20, 2, 4096);
    let rec = ok_record(&run([
        "--json".as_ref(),
        src.as_os_str(),
        probe.as_os_str(),
    ]));
    if rec["method"] == "clone" {
        // No /dev/shm here, and the temp file system clones.
        return testkit::skip(
            "reflink_always_fails_where_no_clone_is_possible_and_leaves_nothing",
            "no file system without clones to test on",
        );
    }
    for always in ["--reflink=always", "--reflink"] {
        let out = run([always.as_ref(), src.as_os_str(), dst.as_os_str()]);
        assert_refused(&out, "cannot share blocks here");
        assert!(!dst.exists());
    }
    assert_eq!(names(t.path()), ["a", "probe"]);
}

#[test]
fn existing_dst_is_refused_without_force_and_left_alone() {
    let t = TempDir::new();
    let (src, dst) = (t.join("a"), t.join("b"));
    fs::write(&src, b"new").unwrap();
    fs::write(&dst, b"old").unwrap();
    let out = run([src.as_os_str(), dst.as_os_str()]);
    assert_refused(&out, &format!("creating '{}': it exists", dst.display()));
    assert_eq!(fs::read(&dst).unwrap(), b"old");
}

#[test]
fn force_replaces_dst_and_leaves_no_temporary_file() {
    let t = TempDir::new();
    let (src, dst) = (t.join("a"), t.join("b"));
    sparse_image(&src, 8 << 20, 3, 8192);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o751)).unwrap();
    fs::write(&dst, b"old").unwrap();
    let old_ino = fs::metadata(&dst).unwrap().ino();
    let rec = ok_record(&run([
        "-f".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ]));
    assert_eq!(rec["replaced"], true);
    assert!(same_content(&src, &dst));
    assert_eq!(mode(&dst), 0o751);
    assert_ne!(fs::metadata(&dst).unwrap().ino(), old_ino, "a new inode");
    assert_eq!(names(t.path()), ["a", "b"]);

    // --force with no DST simply creates it.
    let fresh = t.join("c");
    let rec = ok_record(&run([
        "--force".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
        fresh.as_os_str(),
    ]));
    assert_eq!(rec["replaced"], false);
    assert!(same_content(&src, &fresh));
}

#[test]
fn a_symlink_at_dst_is_never_followed() {
    let t = TempDir::new();
    let (src, dst, target) = (t.join("a"), t.join("b"), t.join("target"));
    fs::write(&src, b"new").unwrap();
    fs::write(&target, b"precious").unwrap();
    symlink(&target, &dst).unwrap();
    let out = run([src.as_os_str(), dst.as_os_str()]);
    assert_refused(&out, "it exists");
    let out = run(["-f".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(fs::symlink_metadata(&dst).unwrap().is_file());
    assert_eq!(fs::read(&dst).unwrap(), b"new");
    assert_eq!(fs::read(&target).unwrap(), b"precious");

    // A dangling link is not followed either (O_EXCL|O_NOFOLLOW).
    let dangling = t.join("dangling");
    symlink(t.join("nowhere"), &dangling).unwrap();
    let out = run([src.as_os_str(), dangling.as_os_str()]);
    assert_refused(&out, "it exists");
    assert!(!t.join("nowhere").exists());
}

#[test]
fn a_symlink_as_src_is_followed() {
    let t = TempDir::new();
    let (real, link, dst) = (t.join("real"), t.join("link"), t.join("b"));
    fs::write(&real, b"content").unwrap();
    symlink(&real, &link).unwrap();
    let out = run([link.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::read(&dst).unwrap(), b"content");
}

#[test]
fn same_file_is_refused_through_any_name() {
    let t = TempDir::new();
    let src = t.join("a");
    fs::write(&src, b"keep me").unwrap();
    let hard = t.join("hard");
    fs::hard_link(&src, &hard).unwrap();
    let soft = t.join("soft");
    symlink(&src, &soft).unwrap();
    let dot = t.path().join(".").join("a");
    for dst in [&src, &hard, &soft, &dot] {
        for force in [false, true] {
            let mut args = vec![src.as_os_str(), dst.as_os_str()];
            if force {
                args.insert(0, "-f".as_ref());
            }
            let out = run(args);
            assert_refused(&out, "they are the same file");
        }
    }
    assert_eq!(fs::read(&src).unwrap(), b"keep me");
    assert_eq!(names(t.path()), ["a", "hard", "soft"]);
}

#[test]
fn src_directory_is_refused() {
    let t = TempDir::new();
    let out = run([t.path().as_os_str(), t.join("b").as_os_str()]);
    assert_refused(&out, "it is a directory; only regular files are copied");
    assert!(!t.join("b").exists());
}

#[test]
fn src_fifo_is_refused_without_hanging() {
    let t = TempDir::new();
    let fifo = t.join("p");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let dst = t.join("b");
    let mut child = common::clonecp()
        .arg(&fifo)
        .arg(&dst)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("clonecp hangs on a fifo");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_refused(&out, "it is a fifo");
    assert!(!dst.exists());
}

#[test]
fn src_socket_and_devices_are_refused() {
    let t = TempDir::new();
    let sock = t.join("s");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let dst = t.join("b");
    let out = run([sock.as_os_str(), dst.as_os_str()]);
    assert_refused(&out, "it is a socket");
    let out = run(["/dev/null".as_ref(), dst.as_os_str()]);
    assert_refused(&out, "it is a character device");
    assert!(!dst.exists());
}

#[test]
fn missing_src_is_refused() {
    let t = TempDir::new();
    let src = t.join("nope");
    let out = run([src.as_os_str(), t.join("b").as_os_str()]);
    assert_refused(
        &out,
        &format!("opening '{}': No such file or directory", src.display()),
    );
    assert_eq!(names(t.path()), Vec::<String>::new());
}

#[test]
fn dst_in_a_missing_directory_is_refused() {
    let t = TempDir::new();
    let src = t.join("a");
    fs::write(&src, b"x").unwrap();
    let dst = t.join("no/such/dir/b");
    let out = run([src.as_os_str(), dst.as_os_str()]);
    assert_refused(
        &out,
        &format!("creating '{}': No such file or directory", dst.display()),
    );
    let out = run(["-f".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_refused(&out, "No such file or directory");
    // A file where a directory is expected.
    let out = run([src.as_os_str(), src.join("b").as_os_str()]);
    assert_refused(&out, "Not a directory");
}

#[test]
fn dst_in_an_unwritable_directory_is_refused() {
    let t = TempDir::new();
    let exe = testkit::copy_binary(common::EXE, t.path());
    let src = t.join("a");
    fs::write(&src, b"x").unwrap();
    let ro = t.join("ro");
    fs::create_dir(&ro).unwrap();
    t.give_to_nobody();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    for force in [false, true] {
        let mut cmd = Command::new(&exe);
        if force {
            cmd.arg("-f");
        }
        cmd.arg(&src).arg(ro.join("b"));
        let out = testkit::run(&mut testkit::unprivileged(cmd));
        assert_refused(&out, "Permission denied");
    }
    assert!(names(&ro).is_empty());
}

#[test]
fn dst_naming_a_directory_is_refused() {
    let t = TempDir::new();
    let src = t.join("a");
    fs::write(&src, b"x").unwrap();
    let dir = t.join("d");
    fs::create_dir(&dir).unwrap();
    for force in [false, true] {
        let mut args = vec![src.as_os_str(), dir.as_os_str()];
        if force {
            args.insert(0, "-f".as_ref());
        }
        assert_refused(&run(args), "it is a directory; DST must name a file");
    }
    for written_as_dir in ["new/", "new/.", "new/..", "d/."] {
        let dst = format!("{}/{written_as_dir}", t.path().display());
        assert_refused(
            &run([src.as_os_str(), dst.as_ref()]),
            "DST must name a file, not a directory",
        );
    }
    assert!(names(&dir).is_empty());
    assert_eq!(names(t.path()), ["a", "d"]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["only-one"],
        vec!["--reflink=sometimes", "a", "b"],
        vec!["--bogus", "a", "b"],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
    }
}

#[test]
fn a_set_group_id_bit_the_caller_may_not_set_is_dropped_with_a_warning() {
    const TEST: &str = "a_set_group_id_bit_the_caller_may_not_set_is_dropped_with_a_warning";
    if !testkit::is_root() {
        testkit::skip(
            TEST,
            "needs root to set up a directory of a group nobody is not in",
        );
        return;
    }
    let t = TempDir::new();
    let exe = testkit::copy_binary(common::EXE, t.path());
    // SRC is nobody's, of group root: the copy nobody makes has the same owner and group,
    // so its set-group-ID bit is not dropped by clonecp's own rule.
    let src = t.join("a");
    fs::write(&src, b"x").unwrap();
    std::os::unix::fs::chown(&src, Some(testkit::NOBODY), Some(0)).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o2755)).unwrap();
    // New files in a set-group-ID directory of group root get group root, which nobody is
    // not in: the kernel then clears S_ISGID on chmod (chmod(2)).
    let dir = t.join("shared");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(testkit::NOBODY), Some(0)).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o2755)).unwrap();
    let dst = dir.join("b");
    let mut cmd = Command::new(&exe);
    cmd.arg(&src).arg(&dst);
    let out = testkit::run(&mut testkit::unprivileged(cmd));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&dst), 0o755);
    let err = stderr(&out);
    assert!(
        err.contains("setting the mode of") && err.contains("0755 instead of 2755"),
        "{err}"
    );
}

#[test]
fn src_dash_reads_the_path_from_stdin_as_a_line_or_a_json_record() {
    let t = TempDir::new();
    let src = t.join("seed image");
    sparse_image(&src, 4 << 20, 2, 4096);
    let line = format!("{}\n", src.display());
    let json = format!(
        "{{\"path\":{},\"files\":1}}\n",
        serde_json::to_string(src.to_str().unwrap()).unwrap()
    );
    for (name, input) in [("from-line", line), ("from-json", json)] {
        let dst = t.join(name);
        let out = testkit::run_with_stdin(
            common::clonecp().arg("--json").arg("-").arg(&dst),
            input.as_bytes(),
        );
        let rec = ok_record(&out);
        assert_eq!(rec["src"], src.to_str().unwrap());
        assert!(same_content(&src, &dst));
    }
    let out = testkit::run_with_stdin(common::clonecp().arg("-").arg(t.join("x")), b"");
    assert_refused(&out, "reading a path from stdin: no path given");
    assert!(!t.join("x").exists());
}
