//! The work-seed build end to end: the `work-seed` script with the workspace's own tools
//! (from this build's target directory), on real images made by mkfs.ext4.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use seedkit::records::manifest::{manifest_path, ManifestEntry, ManifestLine};
use testkit::{code, run, stderr, stdout, TempDir};

use crate::common;
use common::{
    bin_dir, path_with, rootfs_from, sample_rootfs, temp_files_in, work_seed, work_seed_command,
    SCRIPT,
};

/// Extract DIR of an image with ext4-rdump and read its manifest, keyed by path.
fn extract(image: &Path, dir: &str, dest: &Path) -> BTreeMap<Vec<u8>, ManifestEntry> {
    let out = run(Command::new(bin_dir().join("ext4-rdump"))
        .arg("-o")
        .arg(dest)
        .arg(image)
        .arg(dir));
    assert_eq!(
        code(&out),
        0,
        "ext4-rdump {}: {}",
        image.display(),
        stderr(&out)
    );
    let text = fs::read_to_string(manifest_path(dest)).expect("manifest");
    text.lines()
        .filter_map(
            |l| match serde_json::from_str::<ManifestLine>(l).expect("manifest line") {
                ManifestLine::Entry(e) => Some((e.path.0.clone(), e)),
                ManifestLine::Header(_) => None,
            },
        )
        .collect()
}

/// Hard-link groups as sets of paths, whatever the inode numbers.
fn link_groups(m: &BTreeMap<Vec<u8>, ManifestEntry>) -> Vec<Vec<Vec<u8>>> {
    let mut groups: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for e in m.values() {
        if let Some(g) = e.link_group {
            groups.entry(g).or_default().push(e.path.0.clone());
        }
    }
    let mut v: Vec<_> = groups.into_values().collect();
    v.sort();
    v
}

/// The seed holds the rootfs's /root in everything but owners (all 0:0) and ctime, which
/// no unprivileged writer can choose; `lost+found` is the seed's own.
fn assert_seed_matches(rootfs: &Path, seed: &Path, _t: &TempDir) {
    // Extracted into a directory of this test's own (`t` may have been given to nobody,
    // where ext4-rdump, run as root, rightly refuses to write).
    let mine = TempDir::new();
    let want = extract(rootfs, "/root", &mine.join("from-rootfs"));
    let mut got = extract(seed, "/", &mine.join("from-seed"));
    got.remove(b"lost+found".as_slice());
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        let name = String::from_utf8_lossy(path);
        assert_eq!((g.uid, g.gid), (0, 0), "{name}: owner");
        assert_eq!(g.kind, w.kind, "{name}: type");
        assert_eq!(g.mode, w.mode, "{name}: mode");
        assert_eq!(g.size, w.size, "{name}: size");
        assert_eq!(g.mtime, w.mtime, "{name}: mtime");
        assert_eq!(g.atime, w.atime, "{name}: atime");
        assert_eq!(g.target, w.target, "{name}: symlink target");
        assert_eq!(g.rdev, w.rdev, "{name}: device numbers");
        assert_eq!(g.xattrs, w.xattrs, "{name}: xattrs");
        if w.kind == seedkit::records::EntryKind::File && w.staged {
            let a = fs::read(
                mine.join("from-rootfs")
                    .join(String::from_utf8_lossy(path).as_ref()),
            )
            .unwrap();
            let b = fs::read(
                mine.join("from-seed")
                    .join(String::from_utf8_lossy(path).as_ref()),
            )
            .unwrap();
            assert!(a == b, "{name}: content differs");
        }
    }
    assert_eq!(link_groups(&want), link_groups(&got), "hard-link groups");
}

#[test]
fn sample_rootfs_gives_a_faithful_root_owned_seed() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let out = work_seed(&[&rootfs]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seed = t.join("rootfs.work-seed.ext4");
    let summary = stdout(&out);
    assert!(
        summary.starts_with(&format!("work-seed: built '{}'", seed.display())),
        "{summary}"
    );
    assert!(summary.contains("e2fsck -fn: clean ("), "{summary}");
    assert_eq!(
        fs::metadata(&seed).unwrap().mode() & 0o7777,
        0o600,
        "the seed is 0600"
    );
    testkit::e2fsck_clean(&seed).unwrap();
    assert_seed_matches(&rootfs, &seed, &t);
    // debugfs, independently: setuid kept, root-owned, the sparse file sparse.
    let st = testkit::debugfs(&seed, "stat /projects/suid-hello");
    assert!(
        st.contains("Mode:  04755") && st.contains("User:     0   Group:     0"),
        "{st}"
    );
    let st = testkit::debugfs(&seed, "stat /disk.img");
    let blocks: u64 = st
        .split("Blockcount: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("Blockcount");
    assert!(
        blocks * 512 < 1 << 20,
        "disk.img should stay sparse: {blocks} sectors"
    );
    assert!(temp_files_in(t.path()).is_empty());
}

#[test]
fn two_builds_are_byte_identical() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let a = t.join("a.seed");
    let b = t.join("b.seed");
    assert_eq!(code(&work_seed(&[&rootfs, &a])), 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(code(&work_seed(&[&rootfs, &b])), 0);
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "the two seeds differ"
    );
}

#[test]
fn json_summary_names_the_seed_and_its_figures() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let seed = t.join("s.img");
    let out = run(Command::new(SCRIPT)
        .arg("--json")
        .arg(&rootfs)
        .arg(&seed)
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(v["format"], "work-seed");
    assert_eq!(v["version"], 1);
    assert_eq!(v["path"], seed.to_str().unwrap());
    assert_eq!(v["missing"], false);
    assert_eq!(v["size_bytes"], 512 << 20);
    assert!(v["files"].as_u64().unwrap() >= 6);
    assert!(v["seconds"].as_f64().is_some());
    assert!(v["stage_seconds"]["ingest"].as_f64().is_some());
}

#[test]
fn default_output_names_follow_the_pattern() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let plain = t.join("rootfs-image");
    fs::rename(&rootfs, &plain).unwrap();
    assert_eq!(code(&work_seed(&[&plain])), 0);
    assert!(t.join("rootfs-image.work-seed").is_file());
}

#[test]
fn a_rootfs_without_root_gives_an_empty_seed() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    let rootfs = rootfs_from(&t, &tree, "16M");
    let out = work_seed(&[&rootfs]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no '/root': the seed is empty"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("(empty: the rootfs has no '/root')"),
        "{}",
        stdout(&out)
    );
    let seed = t.join("custom.work-seed.ext4");
    testkit::e2fsck_clean(&seed).unwrap();
    let ls = testkit::debugfs(&seed, "ls /");
    assert!(ls.contains("lost+found") && !ls.contains("etc"), "{ls}");
}

fn assert_failed_cleanly(out: &Output, t: &TempDir, seed: &Path) {
    assert_ne!(code(out), 0, "should fail");
    let err = stderr(out);
    assert!(
        err.lines().any(|l| l.starts_with("work-seed: building")),
        "{err}"
    );
    assert!(!seed.exists(), "no output on failure");
    assert!(
        temp_files_in(t.path()).is_empty(),
        "temporary image left behind"
    );
}

#[test]
fn a_corrupt_or_foreign_rootfs_fails_with_the_readers_message() {
    let t = TempDir::new();
    let rootfs = t.join("junk.ext4");
    fs::write(&rootfs, vec![0x5au8; 4 << 20]).unwrap();
    let out = work_seed(&[&rootfs]);
    assert_failed_cleanly(&out, &t, &t.join("junk.work-seed.ext4"));
    // The first step that reads it is seed-size, through the reader.
    assert!(stderr(&out).starts_with("seed-size: "), "{}", stderr(&out));
}

#[test]
fn root_as_a_symlink_or_a_file_fails() {
    for kind in ["symlink", "file"] {
        let t = TempDir::new();
        let tree = t.join("tree");
        fs::create_dir_all(tree.join("home/root")).unwrap();
        if kind == "symlink" {
            std::os::unix::fs::symlink("home/root", tree.join("root")).unwrap();
        } else {
            fs::write(tree.join("root"), b"not a directory").unwrap();
        }
        let rootfs = rootfs_from(&t, &tree, "16M");
        let out = work_seed(&[&rootfs]);
        assert_failed_cleanly(&out, &t, &t.join("custom.work-seed.ext4"));
    }
}

#[test]
fn an_existing_output_is_untouched_when_a_build_fails() {
    let t = TempDir::new();
    let rootfs = t.join("junk.ext4");
    fs::write(&rootfs, b"not an image").unwrap();
    let seed = t.join("junk.work-seed.ext4");
    fs::write(&seed, b"previous seed").unwrap();
    let out = work_seed(&[&rootfs]);
    assert_ne!(code(&out), 0);
    assert_eq!(fs::read(&seed).unwrap(), b"previous seed");
    assert!(temp_files_in(t.path()).is_empty());
}

#[test]
fn an_output_that_is_a_directory_is_refused() {
    // `mv` put the seed inside it, under its temporary name, and the build said "built".
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let dir = t.join("seed");
    fs::create_dir(&dir).unwrap();
    let out = work_seed(&[&rootfs, &dir]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("Is a directory"), "{}", stderr(&out));
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "something put inside"
    );
    assert!(temp_files_in(t.path()).is_empty());
}

#[test]
fn names_that_start_with_a_dash_are_paths_not_options() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    fs::rename(&rootfs, t.join("-r.ext4")).unwrap();
    fs::create_dir(t.join("-o")).unwrap();
    let out = run(Command::new(SCRIPT)
        .args(["--", "-r.ext4", "-o/seed.ext4"])
        .current_dir(t.path())
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    testkit::e2fsck_clean(&t.join("-o/seed.ext4")).unwrap();
    let out = run(Command::new(SCRIPT)
        .args(["--", "-r.ext4"])
        .current_dir(t.path())
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(t.join("-r.work-seed.ext4").is_file());
}

#[test]
fn the_rootfs_is_never_replaced_by_its_seed() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let before = fs::read(&rootfs).unwrap();
    let link = t.join("same.ext4");
    fs::hard_link(&rootfs, &link).unwrap();
    for out in [&rootfs, &link] {
        let res = work_seed(&[&rootfs, out]);
        assert_eq!(code(&res), 2, "{}", stderr(&res));
        assert!(
            stderr(&res).contains("the rootfs itself"),
            "{}",
            stderr(&res)
        );
    }
    assert!(fs::read(&rootfs).unwrap() == before, "the rootfs changed");
    assert!(temp_files_in(t.path()).is_empty());
}

/// A tree of 6,000 small files under `root/` (plus `extra` bytes in `root/blob`), made into
/// a rootfs; the build runs with a private TMPDIR and gets SIGTERM as soon as `ready(tmp)`
/// holds. Afterwards: the build failed, and nothing is left at the output, beside it or in
/// TMPDIR.
fn interrupt_build_when(extra: u32, image_size: &str, ready: impl Fn(&TempDir, &Path) -> bool) {
    let t = TempDir::new();
    let tree = t.join("tree");
    testkit::many_files(&tree.join("root"), 20, 300);
    if extra > 0 {
        let data: Vec<u8> = (0..extra)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(tree.join("root/blob"), data).unwrap();
    }
    let rootfs = rootfs_from(&t, &tree, image_size);
    // A private TMPDIR: other tests' stages come and go in the shared one.
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let mut child = Command::new(SCRIPT)
        .arg(&rootfs)
        .env("TMPDIR", &tmp)
        .env("PATH", path_with(&bin_dir()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready(&t, &tmp) {
        assert!(start.elapsed().as_secs() < 120, "the step never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before the signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!t.join("custom.work-seed.ext4").exists());
    assert!(temp_files_in(t.path()).is_empty());
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn an_interrupted_build_leaves_nothing() {
    // The temporary image appears before the extraction starts: signal as soon as it does.
    interrupt_build_when(0, "64M", |t, _| !temp_files_in(t.path()).is_empty());
}

/// Whether the ingest step has started: its JSON summary file exists in a private
/// directory in `dir`.
fn ingest_started_in(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().flatten().any(|e| {
        e.path().is_dir()
            && fs::read_dir(e.path()).is_ok_and(|rd| {
                rd.flatten()
                    .any(|c| c.file_name().to_string_lossy() == "ingest.json")
            })
    })
}

#[test]
fn an_interrupt_while_ingesting_leaves_nothing_behind() {
    // 64 MiB to copy, so the ingest (or the check after it) is still running at the signal.
    interrupt_build_when(64 << 20, "200M", |t, _| ingest_started_in(t.path()));
}

#[test]
fn fifty_thousand_small_files_fit() {
    let t = TempDir::new();
    let tree = t.join("tree");
    testkit::many_files(&tree.join("root"), 50, 1000);
    let rootfs = rootfs_from(&t, &tree, "400M");
    let out = run(Command::new(SCRIPT)
        .arg("--json")
        .arg(&rootfs)
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["files"], 50_000);
    assert!(v["inodes"].as_u64().unwrap() > 50_000 + 50 + 11);
    testkit::e2fsck_clean(&t.join("custom.work-seed.ext4")).unwrap();
}

#[test]
fn huge_sparse_files_fit() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root")).unwrap();
    for i in 0..3u64 {
        let f = tree.join(format!("root/disk{i}.img"));
        testkit::write_at(&f, 0, b"head");
        testkit::write_at(&f, (4 << 30) + i * 4096, b"tail");
    }
    let rootfs = rootfs_from(&t, &tree, "64M");
    let out = run(Command::new(SCRIPT)
        .arg("--json")
        .arg(&rootfs)
        .env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // used = what the files hold, a block or two each, not their 4 GiB: the 512 MiB floor,
    // which holds them (holes cost nothing).
    assert_eq!(v["size_bytes"].as_u64().unwrap(), 512 << 20);
    let seed = t.join("custom.work-seed.ext4");
    testkit::e2fsck_clean(&seed).unwrap();
    let out = run(work_seed_command().arg("--check").arg(&rootfs).arg(&seed));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // The seed itself stays sparse on the host.
    assert!(fs::metadata(&seed).unwrap().blocks() * 512 < 1 << 30);
}

/// Run the build as `nobody` (when root), with the tools and the script copied where that
/// user can run them and `t/tmp` as its TMPDIR; `t` is handed to `nobody`.
fn build_as_nobody(t: &TempDir, rootfs: &Path, seed: &Path) -> Output {
    let bins = t.join("bin");
    fs::create_dir(&bins).unwrap();
    for tool in [
        "ext4-rdump",
        "seed-size",
        "ext4-ingest",
        "ext4-ls",
        "work-seed-summary",
        "work-seed-fs",
    ] {
        testkit::copy_binary(bin_dir().join(tool).to_str().unwrap(), &bins);
    }
    // Installed together: the script and its library beside the tools.
    let script = bins.join("work-seed");
    fs::copy(SCRIPT, &script).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(common::SCRIPT_LIB, bins.join("work-seed-lib.sh")).unwrap();
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    t.give_to_nobody();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    run(testkit::unprivileged(Command::new(&script))
        .arg(rootfs)
        .arg(seed)
        .env("TMPDIR", &tmp)
        .env("PATH", path_with(&bins)))
}

#[test]
fn the_whole_build_runs_unprivileged() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let seed = t.join("seed.ext4");
    let out = build_as_nobody(&t, &rootfs, &seed);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    if testkit::is_root() {
        assert_eq!(fs::metadata(&seed).unwrap().uid(), testkit::NOBODY);
    }
    assert_seed_matches(&rootfs, &seed, &t);
    assert_eq!(
        fs::read_dir(t.join("tmp")).unwrap().count(),
        0,
        "stage left behind"
    );
}

#[test]
fn a_clone_of_the_seed_is_an_independent_disk() {
    let t = TempDir::new();
    let rootfs = sample_rootfs(&t);
    let seed = t.join("seed.ext4");
    assert_eq!(code(&work_seed(&[&rootfs, &seed])), 0);
    let before = fs::read(&seed).unwrap();
    let disk = t.join("vm1.ext4");
    let out = run(Command::new(bin_dir().join("clonecp"))
        .arg(&seed)
        .arg(&disk));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The VM writes its disk: a new file through debugfs.
    fs::write(t.join("note"), b"written by the VM").unwrap();
    let w = run(testkit::tool("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!("write {} note", t.join("note").display()))
        .arg(&disk));
    assert!(w.status.success());
    assert!(testkit::debugfs(&disk, "ls /").contains("note"));
    assert_eq!(fs::read(&seed).unwrap(), before, "the seed changed");
    assert!(!testkit::debugfs(&seed, "ls /").contains("note"));
}

#[test]
fn a_full_disk_for_the_output_fails_cleanly() {
    let mount = match testkit::Mount::tmpfs("4m") {
        Ok(m) => m,
        Err(why) => return testkit::skip("a_full_disk_for_the_output_fails_cleanly", &why),
    };
    let t = TempDir::new();
    // 6 MiB of data that does not compress into holes: the seed cannot fit in 4 MiB.
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root")).unwrap();
    let data: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(tree.join("root/blob"), data).unwrap();
    let rootfs = rootfs_from(&t, &tree, "32M");
    let seed = mount.join("seed.ext4");
    let out = work_seed(&[&rootfs, &seed]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("work-seed: building"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_dir(mount.path()).unwrap().count(),
        0,
        "something left on the full disk"
    );
}

#[test]
fn the_seed_depends_on_the_rootfs_content_not_its_path_nor_the_builder() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir_all(tree.join("root")).unwrap();
    fs::write(tree.join("root/f"), b"data").unwrap();
    // An unprivileged build records a device in the manifest only (not staged).
    let device = testkit::make_device(&tree.join("root/null"), true, 0o666, (1, 3));
    let rootfs = rootfs_from(&t, &tree, "16M");
    let a = t.join("a.seed");
    assert_eq!(code(&work_seed(&[&rootfs, &a])), 0);
    // The same bytes elsewhere, under another name.
    let other = t.join("other dir");
    fs::create_dir(&other).unwrap();
    let copy = other.join("copy.ext4");
    fs::copy(&rootfs, &copy).unwrap();
    let b = other.join("b.seed");
    let out = work_seed(&[&copy, &b]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "the seed depends on the path of the rootfs"
    );
    if !device {
        return testkit::skip(
            "the_seed_depends_on_the_rootfs_content_not_its_path_nor_the_builder (as nobody)",
            "needs root to make a device and drop privilege",
        );
    }
    let c = t.join("c.seed");
    let out = build_as_nobody(&t, &rootfs, &c);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        fs::read(&a).unwrap() == fs::read(&c).unwrap(),
        "the seed depends on who builds it"
    );
}
