//! Every source gives the same image for the same tree: the host tree, that tree in an
//! image, and that tree as tar streams of GNU tar, bsdtar and Python's tarfile ingest to
//! images that `ext4-ls --diff` finds equal.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{code, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ext4-ingest");

fn ingest(image: &Path, args: &[&OsStr]) {
    let out = testkit::run(
        Command::new(BIN)
            .arg("--verify")
            .arg(image)
            .args(args)
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    assert_eq!(code(&out), 0, "{:?}: {}", args, stderr(&out));
}

fn fresh(t: &TempDir, name: &str) -> PathBuf {
    crate::common::image_named(t, name, "64M", &["-b", "4096", "-I", "256"])
}

/// `ext4-ls --diff A / B /` finds nothing.
fn same(ls: &Path, a: &Path, b: &Path, what: &str) {
    let out = testkit::run(Command::new(ls).arg("--diff").arg(b).arg(a).arg("/"));
    assert_eq!(
        code(&out),
        0,
        "{what}: {}{}",
        testkit::stdout(&out),
        stderr(&out)
    );
}

#[test]
fn every_source_gives_the_same_image() {
    let name = "every_source_gives_the_same_image";
    if !testkit::need(name, &["mkfs.ext4", "tar", "bsdtar", "python3"]) {
        return;
    }
    let ls = Path::new(BIN).with_file_name("ext4-ls");
    if !ls.is_file() {
        testkit::skip(
            name,
            "ext4-ls is not built (cargo test --workspace builds it)",
        );
        return;
    }
    let t = TempDir::new();
    for (label, plain) in [("full", false), ("plain", true)] {
        let tree = t.join(label);
        fs::create_dir(&tree).unwrap();
        if plain {
            // Python's tarfile keeps neither xattrs nor nanoseconds.
            testkit::tarstream::plain_tree(&tree, true);
        } else {
            testkit::fill_sample_tree(&tree, 300);
        }
        let host = fresh(&t, &format!("{label}-host.img"));
        ingest(&host, &[tree.as_os_str()]);
        let rootfs = fresh(&t, &format!("{label}-rootfs.img"));
        ingest(&rootfs, &["--preserve-owner".as_ref(), tree.as_os_str()]);
        let from_image = fresh(&t, &format!("{label}-image.img"));
        ingest(
            &from_image,
            &[OsStr::new("--from-image"), rootfs.as_os_str()],
        );
        same(&ls, &host, &from_image, &format!("{label}: from the image"));
        let mut streams: Vec<(&str, Vec<&str>)> = vec![
            (
                "gnu",
                vec!["tar", "--format=posix", "--xattrs", "--sparse", "-cf"],
            ),
            ("bsd", vec!["bsdtar", "--format", "pax", "--xattrs", "-cf"]),
        ];
        if plain {
            streams.push(("python", vec!["python3", "-c", "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t: t.add('.')\n"]));
        }
        for (kind, cmd) in streams {
            let archive = t.join(format!("{label}-{kind}.tar"));
            let mut c = Command::new(cmd[0]);
            c.args(&cmd[1..]).arg(&archive).current_dir(&tree);
            if kind != "python" {
                c.arg(".");
            }
            let out = testkit::run(&mut c);
            assert!(out.status.success(), "{kind}: {}", stderr(&out));
            let img = fresh(&t, &format!("{label}-{kind}.img"));
            ingest(&img, &[OsStr::new("--from-tar"), archive.as_os_str()]);
            same(&ls, &host, &img, &format!("{label}: {kind} tar"));
        }
    }
}
