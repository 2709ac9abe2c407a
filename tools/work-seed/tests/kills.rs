//! A build killed with SIGKILL at any step (the whole build: the script and the step it
//! runs, as a daemon that kills a build's process group or a power loss would) cannot clean
//! up. The next build in the same place removes what it left, says so, and makes the new
//! output: nothing temporary stays.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use testkit::{code, run, stderr, TempDir};

use crate::common;
use common::{path_with, script};

/// A directory of wrappers: `step` kills the whole build (its process group) when it is
/// reached, the others run the real program. `work-seed-fs` is killed only at its
/// subcommand `when_fs` (publish, remove), since every build runs it early.
fn killer(t: &TempDir, step: &str, when_fs: Option<&str>) -> std::path::PathBuf {
    let wrap = t.join(format!("kill-at-{step}{}", when_fs.unwrap_or("")));
    fs::create_dir(&wrap).unwrap();
    let real = common::real_program(step);
    let test = match when_fs {
        Some(sub) => format!("case \" $* \" in *\" {sub} \"*) kill -s KILL 0 ;; esac\n"),
        None => "kill -s KILL 0\n".to_owned(),
    };
    script(
        &wrap,
        step,
        &format!("#!/bin/sh\n{test}exec '{}' \"$@\"\n", real.display()),
    );
    wrap
}

/// `cmd` run in a process group of its own, with `wrap` first on PATH: the group is
/// killed at the wrapped step. Returns once everything in the group is gone.
fn killed_at(mut cmd: Command, wrap: &Path) {
    let mut path = wrap.as_os_str().to_owned();
    path.push(":");
    path.push(path_with(&common::bin_dir()));
    cmd.env("PATH", path).process_group(0);
    let out = run(&mut cmd);
    assert!(
        out.status.code().is_none(),
        "not killed at {}: {:?} {}",
        wrap.display(),
        out.status,
        stderr(&out)
    );
    // Every process of the group was killed with the script (and is gone once reaped).
    let start = std::time::Instant::now();
    loop {
        let users = testkit::processes_using(wrap);
        if users.is_empty() {
            break;
        }
        assert!(start.elapsed().as_secs() < 10, "still running: {users:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn leftovers(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn a_work_seed_killed_at_any_step_is_cleaned_up_by_the_next_build() {
    let t = TempDir::new();
    let rootfs = common::sample_rootfs(&t);
    let tmp = t.join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out_dir = t.join("out");
    fs::create_dir(&out_dir).unwrap();
    let seed = out_dir.join("seed.ext4");
    // The seed this rootfs gives, built alone elsewhere.
    let alone = t.join("alone.ext4");
    let out = run(common::work_seed_command()
        .arg(&rootfs)
        .arg(&alone)
        .env("TMPDIR", &tmp));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want = fs::read(&alone).unwrap();
    // ext4-rdump runs on the staged route only.
    let steps = [
        ("ext4-rdump", None),
        ("seed-size", None),
        ("ext4-ls", None),
        ("truncate", None),
        ("mkfs.ext4", None),
        ("ext4-ingest", None),
        ("e2fsck", None),
        ("work-seed-summary", None),
        ("work-seed-fs", Some("publish")),
        ("work-seed-fs", Some("remove")),
    ];
    for (step, when_fs) in steps {
        // An old seed at OUTPUT, to be replaced.
        fs::write(&seed, b"the previous seed").unwrap();
        let wrap = killer(&t, step, when_fs);
        let mut cmd = Command::new(common::SCRIPT);
        if step == "ext4-rdump" {
            cmd.arg("--staged");
        }
        cmd.arg(&rootfs).arg(&seed).env("TMPDIR", &tmp);
        killed_at(cmd, &wrap);
        let left = leftovers(&out_dir, ".work-seed.");
        assert_eq!(left.len(), 1, "killed at {step} {when_fs:?}: {left:?}");
        // Killed before the rename, OUTPUT is the previous seed; after, the new one.
        let now = fs::read(&seed).unwrap();
        assert!(
            now == b"the previous seed" || now == want,
            "killed at {step} {when_fs:?}: OUTPUT is neither seed"
        );

        // The next build on the same route: only --staged uses TMPDIR, where its stage was.
        let mut next = common::work_seed_command();
        if step == "ext4-rdump" {
            next.arg("--staged");
        }
        let out = run(next.arg(&rootfs).arg(&seed).env("TMPDIR", &tmp));
        assert_eq!(code(&out), 0, "after {step}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "work-seed: removed '{}/{}'",
                out_dir.display(),
                left[0]
            )),
            "after {step} {when_fs:?}: {err}"
        );
        assert!(
            leftovers(&out_dir, ".work-seed.").is_empty(),
            "after {step}"
        );
        assert!(leftovers(&tmp, "work-seed.").is_empty(), "after {step}");
        assert!(
            fs::read(&seed).unwrap() == want,
            "after {step}: not the new seed"
        );
    }
}

#[test]
fn a_work_disk_killed_at_any_step_is_cleaned_up_by_the_next_build() {
    let t = TempDir::new();
    let seed = common::small_seed(&t);
    let out_dir = t.join("out");
    fs::create_dir(&out_dir).unwrap();
    let disk = out_dir.join("vm.ext4");
    let steps = [
        ("clonecp", None),
        ("truncate", None),
        ("resize2fs", None),
        ("e2fsck", None),
        ("work-seed-fs", Some("publish")),
        ("work-seed-fs", Some("remove")),
    ];
    for (step, when_fs) in steps {
        let _ = fs::remove_file(&disk);
        let wrap = killer(&t, step, when_fs);
        let mut cmd = Command::new(common::WORK_DISK);
        cmd.args(["--size", "128M"]).arg(&seed).arg(&disk);
        killed_at(cmd, &wrap);
        let left = leftovers(&out_dir, ".work-disk.");
        assert_eq!(left.len(), 1, "killed at {step} {when_fs:?}: {left:?}");
        // Killed after the rename, the disk is there, whole; the next build replaces it.
        let published = disk.exists();
        if published {
            testkit::e2fsck_clean(&disk).unwrap();
        }

        let mut again = common::work_disk_command();
        if published {
            again.arg("--force");
        }
        let out = run(again.args(["--size", "128M"]).arg(&seed).arg(&disk));
        assert_eq!(code(&out), 0, "after {step}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "work-disk: removed '{}/{}'",
                out_dir.display(),
                left[0]
            )),
            "after {step} {when_fs:?}: {}",
            stderr(&out)
        );
        assert!(
            leftovers(&out_dir, ".work-disk.").is_empty(),
            "after {step}"
        );
        assert_eq!(fs::metadata(&disk).unwrap().len(), 128 << 20);
        testkit::e2fsck_clean(&disk).unwrap();
    }
}
