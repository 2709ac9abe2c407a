//! The routes of a build: image to image (the default, nothing staged), through ext4-rdump's
//! stage (`--staged`), and the end-to-end check and size limit every build goes through.

use std::fs;
use std::path::Path;
use std::process::Command;

use testkit::{code, run, stderr, stdout, TempDir};

use crate::common::{self, path_with, rootfs_from, sample_rootfs, script, temp_files_in};

/// A rootfs whose /root holds every kind of entry mkfs.ext4 -d copies: files with
/// set-ID bits, holes, hard links, symlinks, fifos, xattrs and a hash-indexed directory.
fn rich_rootfs(t: &TempDir) -> std::path::PathBuf {
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root")).unwrap();
    fs::create_dir_all(tree.join("etc")).unwrap();
    testkit::fill_sample_tree(&tree.join("root"), 400);
    rootfs_from(t, &tree, "64M")
}

fn build(rootfs: &Path, seed: &Path, extra: &[&str]) {
    let out = run(common::work_seed_command()
        .args(extra)
        .arg(rootfs)
        .arg(seed));
    assert_eq!(code(&out), 0, "{extra:?}: {}", stderr(&out));
}

#[test]
fn every_route_gives_the_same_seed_byte_for_byte() {
    let t = TempDir::new();
    for (name, rootfs) in [("sample", sample_rootfs(&t)), ("rich", rich_rootfs(&t))] {
        let image = t.join(format!("{name}-image.seed"));
        let staged = t.join(format!("{name}-staged.seed"));
        build(&rootfs, &image, &[]);
        build(&rootfs, &staged, &["--staged"]);
        assert!(
            fs::read(&image).unwrap() == fs::read(&staged).unwrap(),
            "{name}: the image route and the staged route give different seeds"
        );
        testkit::e2fsck_clean(&image).unwrap();
    }
}

#[test]
fn the_default_route_stages_nothing_under_tmpdir() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    // A TMPDIR that does not exist: a build that needs it fails.
    let gone = t.join("no-such-tmpdir");
    let out = run(common::work_seed_command()
        .arg(&rootfs)
        .arg(t.join("a.seed"))
        .env("TMPDIR", &gone));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(common::work_seed_command()
        .arg("--staged")
        .arg(&rootfs)
        .arg(t.join("b.seed"))
        .env("TMPDIR", &gone));
    assert_eq!(code(&out), 2, "the staged route uses TMPDIR");
    assert!(!t.join("b.seed").exists());
    assert!(temp_files_in(t.path()).is_empty());
}

/// Every build compares the seed with the rootfs: an ext4-ingest that wrote something else
/// (here a wrapper that changes a mode after the real one) fails the build.
#[test]
fn a_seed_that_differs_from_its_rootfs_fails_the_build() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    let real = common::real_program("ext4-ingest");
    let debugfs = common::real_program("debugfs");
    // The image is the argument before the last.
    script(
        &wrap,
        "ext4-ingest",
        &format!(
            "#!/bin/sh\n'{}' \"$@\" || exit\nfor a; do img=$prev; prev=$a; done\n\
             '{}' -w -R 'sif /.bashrc mode 0100600' \"$img\" >/dev/null 2>&1\n",
            real.display(),
            debugfs.display()
        ),
    );
    let seed = t.join("s.seed");
    for staged in [false, true] {
        let mut cmd = Command::new(common::SCRIPT);
        if staged {
            cmd.arg("--staged");
        }
        let mut path = wrap.as_os_str().to_owned();
        path.push(":");
        path.push(path_with(&common::bin_dir()));
        let out = run(cmd.arg(&rootfs).arg(&seed).env("PATH", path));
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("changed .bashrc (mode"), "{err}");
        assert!(err.contains("the seed differs from /root of"), "{err}");
        assert!(!seed.exists());
        assert!(temp_files_in(t.path()).is_empty());
    }
}

#[test]
fn a_seed_over_the_maximum_size_is_refused_before_anything_is_written() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let seed = t.join("s.seed");
    let out = run(common::work_seed_command()
        .args(["--max-size", "100M"])
        .arg(&rootfs)
        .arg(&seed));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("more than --max-size 100M (104857600 bytes)"),
        "{}",
        stderr(&out)
    );
    assert!(!seed.exists());
    assert!(temp_files_in(t.path()).is_empty());
    let out = run(common::work_seed_command()
        .args(["--max-size", "lots"])
        .arg(&rootfs)
        .arg(&seed));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("size 'lots': not a number"),
        "{}",
        stderr(&out)
    );
    build(&rootfs, &seed, &["--max-size=512M"]);
}

#[test]
fn dir_and_preserve_owner_copy_a_whole_rootfs() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let copy = t.join("copy.ext4");
    build(&rootfs, &copy, &["--dir", "/", "--preserve-owner", "-q"]);
    let out = run(Command::new(common::SCRIPT)
        .env("PATH", path_with(&common::bin_dir()))
        .args(["--check", "--dir", "/", "--preserve-owner"])
        .arg(&rootfs)
        .arg(&copy));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

/// A seed from a container's export: the stream's root/ as the seed, from a file and from
/// standard input; the same content as the seed of the image the stream was made from.
#[test]
fn a_tar_stream_gives_the_seed_of_its_root_directory() {
    let t = TempDir::new();
    let rootfs = rich_rootfs(&t);
    let from_image = t.join("image.seed");
    build(&rootfs, &from_image, &[]);
    // The whole rootfs as a tar stream, as `podman export` gives one.
    let export = t.join("export.tar");
    let out = run(Command::new(common::bin_dir().join("ext4-rdump"))
        .arg("--tar")
        .arg(&rootfs)
        .arg("/"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    fs::write(&export, &out.stdout).unwrap();
    let from_file = t.join("file.seed");
    build(&t.join("export.tar"), &from_file, &["--from-tar"]);
    let from_stdin = t.join("stdin.seed");
    let out = testkit::run_with_stdin(
        common::work_seed_command()
            .args(["--json", "--from-tar", "-"])
            .arg(&from_stdin),
        &fs::read(&export).unwrap(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"route\":\"tar\""),
        "{}",
        stdout(&out)
    );
    assert!(
        fs::read(&from_file).unwrap() == fs::read(&from_stdin).unwrap(),
        "the same stream from a file and from stdin gives different seeds"
    );
    for seed in [&from_file, &from_stdin] {
        testkit::e2fsck_clean(seed).unwrap();
        let out = run(Command::new(common::bin_dir().join("ext4-ls"))
            .args(["--exclude", "lost+found", "--diff"])
            .arg(seed)
            .arg(&from_image)
            .arg("/"));
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    }
    // An empty stream (a failed export) is refused.
    let out = testkit::run_with_stdin(
        common::work_seed_command()
            .args(["--from-tar", "-"])
            .arg(t.join("empty.seed")),
        b"",
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
    assert!(!t.join("empty.seed").exists());
    assert!(temp_files_in(t.path()).is_empty());
}

/// Attack: a stream on standard input that never ends filled the host's disk (2.4 GB in
/// 6 s): it is kept at most --max-size bytes, then the build fails, leaving nothing.
#[test]
fn an_endless_stream_on_stdin_stops_at_the_maximum_size() {
    let t = TempDir::new();
    let seed = t.join("s.seed");
    let mut child = common::work_seed_command()
        .args(["--max-size", "4M", "--from-tar", "-"])
        .arg(&seed)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let block = vec![b'y'; 65536];
        let mut sent = 0u64;
        while stdin.write_all(&block).is_ok() {
            sent += block.len() as u64;
            assert!(sent < 1 << 30, "the build read 1 GiB of a 4 MiB limit");
        }
        sent
    });
    let out = child.wait_with_output().unwrap();
    let sent = feeder.join().unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("larger than --max-size 4M"),
        "{}",
        stderr(&out)
    );
    assert!(sent < 64 << 20, "{sent} bytes read");
    assert!(!seed.exists());
    assert!(temp_files_in(t.path()).is_empty());
}

/// Attack: ROOTFS was opened by name at every step, so whoever could change what the name
/// leads to while the build ran (here a wrapper of mkfs.ext4 swapping the symlink) got a
/// seed measured and named after one image and holding another. The build opens it once.
#[test]
fn a_rootfs_swapped_during_the_build_is_not_read() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let other = rich_rootfs(&t);
    let link = t.join("link.ext4");
    std::os::unix::fs::symlink(&rootfs, &link).unwrap();
    let want = t.join("want.seed");
    build(&rootfs, &want, &[]);
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    script(
        &wrap,
        "mkfs.ext4",
        &format!(
            "#!/bin/sh\nln -sfn '{}' '{}'\nexec '{}' \"$@\"\n",
            other.display(),
            link.display(),
            common::real_program("mkfs.ext4").display()
        ),
    );
    let mut path = wrap.as_os_str().to_owned();
    path.push(":");
    path.push(path_with(&common::bin_dir()));
    for staged in [false, true] {
        // The link back to the sample before each build.
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&rootfs, &link).unwrap();
        let seed = t.join(format!("swapped-{staged}.seed"));
        let mut cmd = Command::new(common::SCRIPT);
        if staged {
            cmd.arg("--staged");
        }
        let out = run(cmd.arg(&link).arg(&seed).env("PATH", &path));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(
            fs::read(&seed).unwrap() == fs::read(&want).unwrap(),
            "staged {staged}: the seed is not the sample's"
        );
    }
}

/// Attack: whether /root was missing was told by a listing of its parent compared as
/// text, so `--dir /root/.` or a name the listing escapes made a full build skip its check
/// and name the seed after nothing. Now `.` and `..` are refused, and seed-size, which
/// looks the directory up, says whether it is there.
#[test]
fn the_directory_asked_for_is_looked_up_not_compared_as_text() {
    let t = TempDir::new();
    let tree = t.join("tree");
    let odd = "we\\ird \u{202e}dir";
    fs::create_dir_all(tree.join(odd)).unwrap();
    fs::write(tree.join(odd).join("f"), b"data\n").unwrap();
    let rootfs = rootfs_from(&t, &tree, "16M");
    let seed = t.join("s.seed");
    let out = run(common::work_seed_command()
        .arg("--json")
        .arg("--dir")
        .arg(format!("/{odd}"))
        .arg(&rootfs)
        .arg(&seed));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let record = stdout(&out);
    assert!(
        record.contains("\"missing\":false") && record.contains("\"files\":1"),
        "{record}"
    );
    for dir in ["/root/.", "/root/sub/..", "/./root"] {
        let out = run(common::work_seed_command()
            .args(["--dir", dir])
            .arg(&rootfs)
            .arg(&seed));
        assert_eq!(code(&out), 2, "{dir}");
        assert!(stderr(&out).contains("without . or .."), "{}", stderr(&out));
    }
}

/// Attack: a container export holding, outside root/, a name ext4 cannot hold or one
/// through `..` failed the whole build; what lies outside the directory asked for is
/// skipped, whatever its name. And a stream named like an option is a file.
#[test]
fn members_outside_the_directory_do_not_matter() {
    let t = TempDir::new();
    let long = format!("etc/{}", "x".repeat(300));
    let stream = testkit::tarstream::Raw(Vec::new())
        .header(b"root/", b'5', 0, b"")
        .file("root/a", b"kept\n")
        .pax(&[("path", long.as_bytes())])
        .file("etc/long", b"x")
        .file("etc/../y", b"y")
        .file("/etc/abs", b"z")
        .end();
    let tar = t.join("-export.tar");
    fs::write(&tar, stream).unwrap();
    let seed = t.join("s.seed");
    let out = run(common::work_seed_command()
        .args(["--json", "--from-tar"])
        .arg("-export.tar")
        .arg(&seed)
        .current_dir(t.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("\"files\":1"), "{}", stdout(&out));
    testkit::e2fsck_clean(&seed).unwrap();
    assert!(testkit::debugfs(&seed, "cat /a").contains("kept"));
}
