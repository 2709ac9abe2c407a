//! `work-disk --size SIZE SEED OUTPUT`: a VM's work disk, cloned from the seed and grown.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use testkit::{code, names, run, sha256sum, stderr, TempDir};

use crate::common;
use crate::common::{bin_dir, work_disk, WORK_DISK};

fn seed(t: &TempDir) -> PathBuf {
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    testkit::fill_sample_tree(&tree, 50);
    let image = t.join("seed.ext4");
    testkit::mkfs_from_tree(&image, "600M", Some(&tree), &["-t", "ext4", "-b", "4096"]);
    image
}

#[test]
fn the_grown_disk_is_clean_holds_the_seed_and_the_kernel_sees_its_size() {
    let t = TempDir::new();
    let seed = seed(&t);
    let before = sha256sum(&seed);
    let disk = t.join("vm42.ext4");
    let out = work_disk(&[
        "--size".as_ref(),
        "2G".as_ref(),
        seed.as_os_str(),
        disk.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::metadata(&disk).unwrap().len(), 2 << 30);
    assert_eq!(sha256sum(&seed), before, "the seed was changed");
    testkit::e2fsck_clean(&disk).unwrap();
    // The same entries as the seed, owners included.
    let diff = run(Command::new(bin_dir().join("ext4-ls"))
        .arg("--diff")
        .arg(&disk)
        .arg(&seed));
    assert_eq!(
        code(&diff),
        0,
        "{}{}",
        testkit::stdout(&diff),
        stderr(&diff)
    );
    assert_eq!(names(t.path()), ["seed.ext4", "tree", "vm42.ext4"]);

    let mount = match testkit::Mount::image(&disk, "ro") {
        Ok(m) => m,
        Err(why) => {
            testkit::skip(
                "the_grown_disk_is_clean_holds_the_seed_and_the_kernel_sees_its_size",
                &why,
            );
            return;
        }
    };
    let vfs = nix::sys::statvfs::statvfs(mount.path()).unwrap();
    let total = vfs.blocks() * vfs.fragment_size();
    // statvfs leaves out the file system's own overhead (inode tables, journal): a few
    // percent of the 2 GiB, but far more than the 600 MiB seed.
    assert!(total > (2 << 30) * 9 / 10 && total <= 2 << 30, "{total}");
    assert!(mount.join("d/sub/big").is_file());
}

#[test]
fn a_size_smaller_than_the_seed_is_refused_and_nothing_is_left() {
    let t = TempDir::new();
    let seed = seed(&t);
    let disk = t.join("vm.ext4");
    let out = work_disk(&[
        "--size".as_ref(),
        "100M".as_ref(),
        seed.as_os_str(),
        disk.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("smaller than the seed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(t.path()), ["seed.ext4", "tree"]);
}

/// A seed that is not ext4 fails at resize2fs, with its message; nothing is left, not even
/// the scratch directory beside the output.
#[test]
fn a_failing_step_leaves_nothing_behind() {
    let t = TempDir::new();
    let junk = t.join("junk.ext4");
    fs::write(&junk, vec![7u8; 1 << 20]).unwrap();
    let disk = t.join("vm.ext4");
    let out = work_disk(&[
        "-s".as_ref(),
        "8M".as_ref(),
        junk.as_os_str(),
        disk.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("work-disk: making '"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(t.path()), ["junk.ext4"]);
    // An existing output is kept unless --force.
    fs::write(&disk, b"keep").unwrap();
    let seed = seed(&t);
    let out = work_disk(&[
        "-s".as_ref(),
        "1G".as_ref(),
        seed.as_os_str(),
        disk.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(fs::read(&disk).unwrap(), b"keep");
    let out = work_disk(&[
        "-f".as_ref(),
        "-s".as_ref(),
        "1G".as_ref(),
        seed.as_os_str(),
        disk.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::metadata(&disk).unwrap().len(), 1 << 30);
}

#[test]
fn man_page_documents_every_option() {
    testkit::check_man_page(WORK_DISK, testkit::man_page!("work-disk"));
}

#[test]
fn an_output_swapped_for_a_symlink_to_a_directory_is_replaced_not_followed() {
    // The attack: OUTPUT becomes a symlink to a directory after the last check, just before
    // the rename; `mv -f` then moved the disk into that directory and said nothing. Now the
    // rename is relative to OUTPUT's opened directory and onto the name itself: without
    // --force the name that appeared is left alone and the build fails; with it, the
    // symlink is replaced, never followed.
    let t = TempDir::new();
    let seed = seed(&t);
    let victim = t.join("victim");
    fs::create_dir(&victim).unwrap();
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    let real = PathBuf::from(testkit::tool("e2fsck").get_program());
    let e2fsck = wrap.join("e2fsck");
    fs::write(
        &e2fsck,
        format!(
            "#!/bin/sh\n'{}' \"$@\"; rc=$?\nln -s \"$SWAP_TARGET\" \"$SWAP_OUTPUT\"\nexit $rc\n",
            real.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&e2fsck, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut path = wrap.into_os_string();
    path.push(":");
    path.push(bin_dir());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path.push(":/usr/sbin:/sbin");
    for force in [false, true] {
        let disk = t.join(format!("vm{force}.ext4"));
        let mut cmd = Command::new(WORK_DISK);
        if force {
            cmd.arg("--force");
        }
        let out = run(cmd
            .args(["--size", "1G"])
            .arg(&seed)
            .arg(&disk)
            .env("PATH", &path)
            .env("SWAP_OUTPUT", &disk)
            .env("SWAP_TARGET", &victim));
        assert!(
            names(&victim).is_empty(),
            "the disk went into the directory: {:?}",
            names(&victim)
        );
        let meta = fs::symlink_metadata(&disk).unwrap();
        if force {
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            assert!(meta.is_file(), "OUTPUT is not the disk");
            testkit::e2fsck_clean(&disk).unwrap();
        } else {
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            assert!(stderr(&out).contains("File exists"), "{}", stderr(&out));
            assert!(
                meta.file_type().is_symlink(),
                "the name that appeared was replaced"
            );
        }
        assert!(
            !names(t.path()).iter().any(|n| n.starts_with(".work-disk.")),
            "{:?}",
            names(t.path())
        );
    }
}

#[test]
fn a_user_who_may_write_in_outputs_directory_cannot_take_over_the_scratch() {
    // work-disk made `mktemp -d DIR/.work-disk.XXXXXX` and then used `scratch/disk` by name.
    // In a directory anyone may write, another user renamed the scratch away, put a 0777
    // directory of the same name in its place and, after e2fsck, a symlink for the disk:
    // work-disk said "made" and OUTPUT was a symlink to a root-only file. The other user's
    // moves run here, as nobody, right after e2fsck (a wrapper on PATH).
    const TEST: &str = "a_user_who_may_write_in_outputs_directory_cannot_take_over_the_scratch";
    if !testkit::is_root() {
        testkit::skip(TEST, "needs root, and nobody as the other user");
        return;
    }
    let t = TempDir::new();
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let seed = common::small_seed(&t);
    let secret = t.join("secret");
    fs::write(&secret, b"root's only").unwrap();
    let wrap = t.join("wrap");
    fs::create_dir(&wrap).unwrap();
    let takeover = "cd \"$SHARED\" && for d in .work-disk.*; do \
        mv \"$d\" \"$d.gone\" && mkdir -m 777 \"$d\" && ln -s \"$SECRET\" \"$d/disk\"; done";
    common::script(
        &wrap,
        "e2fsck",
        &format!(
            "#!/bin/sh\n'{}' \"$@\"; rc=$?\n\
             setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '{takeover}' 2>/dev/null\n\
             exit $rc\n",
            common::real_program("e2fsck").display()
        ),
    );
    let mut path = wrap.into_os_string();
    path.push(":");
    path.push(common::path_with(&bin_dir()));
    for (mode, refused) in [(0o777, true), (0o1777, false)] {
        let shared = t.join(format!("shared{mode:o}"));
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        let disk = shared.join("vm.ext4");
        let out = run(Command::new(WORK_DISK)
            .args(["--size", "128M"])
            .arg(&seed)
            .arg(&disk)
            .env("PATH", &path)
            .env("SHARED", &shared)
            .env("SECRET", &secret));
        assert_eq!(fs::read(&secret).unwrap(), b"root's only");
        if refused {
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            assert!(stderr(&out).contains("not sticky"), "{}", stderr(&out));
            assert!(fs::symlink_metadata(&disk).is_err(), "something at OUTPUT");
        } else {
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let meta = fs::symlink_metadata(&disk).unwrap();
            assert!(meta.is_file(), "OUTPUT is not the disk: {meta:?}");
            testkit::e2fsck_clean(&disk).unwrap();
        }
        assert_eq!(
            names(&shared),
            if refused {
                vec![]
            } else {
                vec!["vm.ext4".to_owned()]
            }
        );
    }
}
