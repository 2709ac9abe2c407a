//! As an unprivileged user (dropping to nobody when run as root): the extraction is complete
//! (devices recorded, 0000 files and 0500 directories staged) and `rm -rf` removes it.

use crate::common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use testkit::{code, mkfs_from_tree, stderr, unprivileged, TempDir};

#[test]
fn unprivileged_run_is_complete_and_removable() {
    if !testkit::need("unprivileged_run_is_complete_and_removable", &["mke2fs"]) {
        return;
    }
    let t = TempDir::new();
    let tree = t.join("src");
    fs::create_dir_all(tree.join("locked/deeper")).unwrap();
    fs::write(tree.join("locked/deeper/f"), b"x").unwrap();
    fs::write(tree.join("nothing"), b"secret").unwrap();
    fs::set_permissions(tree.join("nothing"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(
        tree.join("locked/deeper"),
        fs::Permissions::from_mode(0o500),
    )
    .unwrap();
    fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let root = testkit::is_root();
    if root {
        testkit::make_device(&tree.join("sda"), false, 0o660, (8, 0));
    } else {
        eprintln!("not root: running as ourselves, without a device in the image");
    }
    let image = t.join("img");
    mkfs_from_tree(&image, "8M", Some(&tree), &["-t", "ext4"]);
    let bin = testkit::copy_binary(common::BIN, t.path());
    t.give_to_nobody();
    let dest = t.join("out");
    let mut cmd = Command::new(&bin);
    cmd.args([image.as_os_str(), OsStr::new("-o"), dest.as_os_str()]);
    let out = testkit::run(&mut unprivileged(cmd));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    if root {
        assert_eq!(fs::metadata(&dest).unwrap().uid(), testkit::NOBODY);
    }
    let m = common::manifest(&t.join("out.manifest.jsonl"));
    assert_eq!(m[&b"nothing".to_vec()].mode, 0);
    assert_eq!(m[&b"locked".to_vec()].mode, 0);
    assert_eq!(m[&b"locked/deeper".to_vec()].mode, 0o500);
    assert_eq!(
        fs::metadata(dest.join("nothing")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(dest.join("locked")).unwrap().mode() & 0o777,
        0o700
    );
    if root {
        let dev = &m[&b"sda".to_vec()];
        assert!(!dev.staged);
        assert_eq!(dev.rdev.map(|r| (r.major, r.minor)), Some((8, 0)));
        assert!(dest.join("sda").symlink_metadata().is_err());
    }
    // Complete: every entry of the source is in the tree or (devices) in the manifest.
    common::compare(&tree, &dest, "unprivileged");
    let mut rm = Command::new("rm");
    rm.arg("-rf").arg(&dest);
    let out = testkit::run(&mut unprivileged(rm));
    assert!(out.status.success(), "rm -rf: {}", stderr(&out));
    assert!(!dest.exists());
}
