//! ext4-ls as a user runs it: the text form, field selection, errors, and --diff.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{records, BIN};
use testkit::{code, run, stderr, stdout, TempDir};

fn image_of(t: &TempDir, name: &str, fill: impl FnOnce(&std::path::Path)) -> std::path::PathBuf {
    let tree = t.join(format!("{name}.tree"));
    fs::create_dir(&tree).unwrap();
    fill(&tree);
    let image = t.join(format!("{name}.ext4"));
    testkit::mkfs_from_tree(&image, "16M", Some(&tree), &["-t", "ext4"]);
    image
}

#[test]
fn text_form_quotes_names_and_shows_targets_and_full_times() {
    let t = TempDir::new();
    let image = image_of(&t, "a", |tree| {
        fs::write(tree.join("plain"), b"12345").unwrap();
        fs::write(tree.join("new\nline"), b"").unwrap();
        fs::write(tree.join("\x1b[31mred"), b"").unwrap();
        std::os::unix::fs::symlink("plain", tree.join("link")).unwrap();
        testkit::set_times(&tree.join("plain"), (0, 0), (1_700_000_000, 123_456_789));
    });
    let out = run(Command::new(BIN).arg("--full-time").arg(&image));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        // mkfs.ext4 -d keeps whole seconds only.
        text.contains("         5 2023-11-14 22:13:20.000000000 +0000 plain\n"),
        "{text}"
    );
    assert!(text.contains(" link -> plain\n"), "{text}");
    assert!(text.contains(" 'new\\x0aline'\n"), "{text}");
    assert!(text.contains(" '\\x1b[31mred'\n"), "{text}");
    assert!(!text.contains('\x1b'), "{text}");
    assert_eq!(text.lines().count(), 4 + 1, "{text} (and lost+found)");
}

#[test]
fn format_prints_chosen_fields_and_directory_lists_dir_itself() {
    let t = TempDir::new();
    let image = image_of(&t, "a", |tree| {
        fs::create_dir(tree.join("d")).unwrap();
        fs::write(tree.join("d/f"), b"abc").unwrap();
    });
    let out = run(Command::new(BIN)
        .args(["-R", "--hash", "--format", "path,kind,size,digest"])
        .arg(&image)
        .arg("/d"));
    assert_eq!(
        stdout(&out),
        "f\tfile\t3\tba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    let dir = records(&image, "/d", &["-d"]);
    assert_eq!(dir.len(), 1);
    assert_eq!(dir[0].path.0, b".");
}

#[test]
fn a_missing_directory_or_a_non_image_is_one_error_line_and_exit_2() {
    let t = TempDir::new();
    let image = image_of(&t, "a", |_| {});
    let out = run(Command::new(BIN).arg(&image).arg("/nope"));
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("ext4-ls: finding '/nope' in '"),
        "{}",
        stderr(&out)
    );
    fs::write(t.join("junk"), vec![7u8; 100_000]).unwrap();
    let out = run(Command::new(BIN).arg(t.join("junk")));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("ext4-ls: reading '"),
        "{}",
        stderr(&out)
    );
}

/// A changed file (same size), a changed mode, a changed xattr value and a missing entry are
/// each found; an identical copy agrees.
#[test]
fn diff_finds_content_mode_xattr_and_missing_entries() {
    let t = TempDir::new();
    let base = |tree: &std::path::Path| {
        fs::create_dir(tree.join("d")).unwrap();
        fs::write(tree.join("d/content"), b"version 1").unwrap();
        fs::write(tree.join("mode"), b"m").unwrap();
        fs::write(tree.join("xattr"), b"x").unwrap();
        fs::write(tree.join("gone"), b"g").unwrap();
        assert!(testkit::set_xattr(&tree.join("xattr"), "user.k", b"one"));
        for p in ["d/content", "mode", "xattr", "gone", "d", "."] {
            testkit::set_times(&tree.join(p), (1, 0), (1_600_000_000, 5));
        }
    };
    let a = image_of(&t, "a", base);
    let same = image_of(&t, "same", base);
    let b = image_of(&t, "b", |tree| {
        base(tree);
        fs::write(tree.join("d/content"), b"version 2").unwrap();
        fs::set_permissions(tree.join("mode"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(testkit::set_xattr(&tree.join("xattr"), "user.k", b"two"));
        fs::remove_file(tree.join("gone")).unwrap();
        for p in ["d/content", "mode", "xattr", "d", "."] {
            testkit::set_times(&tree.join(p), (1, 0), (1_600_000_000, 5));
        }
    });
    let out = run(Command::new(BIN).arg("--diff").arg(&same).arg(&a));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "");
    let out = run(Command::new(BIN).arg("--diff").arg(&b).arg(&a));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "changed d/content (content)\n\
         missing gone\n\
         changed mode (mode 0644 -> 0600)\n\
         changed xattr (xattrs)\n"
    );
    let out = run(Command::new(BIN)
        .arg("--json")
        .arg("--diff")
        .arg(&a)
        .arg(&b));
    let diffs: Vec<seedkit::records::LsDiff> = out
        .stdout
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(diffs.len(), 4);
    assert_eq!(diffs[1].change, seedkit::records::Change::Extra);
    assert_eq!(diffs[3].fields, ["xattrs"]);
    // --exclude leaves a path out on both sides.
    let out = run(Command::new(BIN)
        .args([
            "--exclude",
            "gone",
            "--exclude",
            "d",
            "--exclude",
            "mode",
            "--exclude",
            "xattr",
            "--diff",
        ])
        .arg(&b)
        .arg(&a));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

/// A name that is not UTF-8 keeps its bytes in JSON (the toolkit's base64 form) and is
/// escaped, never printed raw, in the text and --format forms.
#[test]
fn a_name_that_is_not_utf8_keeps_its_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new();
    let image = image_of(&t, "a", |tree| {
        fs::write(
            tree.join(std::ffi::OsStr::from_bytes(b"caf\xe9")),
            b"latin-1",
        )
        .unwrap();
    });
    let entries = records(&image, "/", &[]);
    assert!(
        entries.iter().any(|e| e.path.0 == b"caf\xe9"),
        "{entries:?}"
    );
    let json = stdout(&run(Command::new(BIN).arg("--json").arg(&image)));
    assert!(json.contains(r#""path":{"bytes":"Y2Fm6Q=="}"#), "{json}");
    let text = stdout(&run(Command::new(BIN).arg(&image)));
    assert!(text.contains(" 'caf\\xe9'\n"), "{text}");
    let plain = stdout(&run(Command::new(BIN)
        .args(["--format", "path"])
        .arg(&image)));
    assert!(plain.lines().any(|l| l == "caf\\xe9"), "{plain}");
}

/// Overwrite blocks `from..to` of the file `path` inside `image` with `byte`, in place: the
/// blocks stay allocated (a hole stays a hole; stored zeros are stored).
fn poke_blocks(image: &std::path::Path, path: &str, blocks: std::ops::Range<usize>, byte: u8) {
    use std::os::unix::fs::FileExt;
    let listed = testkit::debugfs(image, format!("blocks {path}"));
    let numbers: Vec<u64> = listed
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    let file = fs::OpenOptions::new().write(true).open(image).unwrap();
    for &block in &numbers[blocks] {
        file.write_all_at(&[byte; 4096], block * 4096).unwrap();
    }
}

/// `--diff` compares contents byte for byte, reading both files side by side (files past
/// 1 MiB through its reading thread, smaller ones at once): a difference in the last byte
/// is found, a hole equals stored zeros, and a hole does not equal stored data.
#[test]
fn diff_compares_contents_side_by_side() {
    let t = TempDir::new();
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 253) as u8 | 1).collect();
    let fill = |tree: &std::path::Path, last: u8| {
        let mut big = data.clone();
        *big.last_mut().unwrap() = last;
        fs::write(tree.join("big"), &big).unwrap();
        fs::write(tree.join("small"), &big[big.len() - 5000..]).unwrap();
        // 3 MiB with its middle MiB a hole on this side.
        fs::write(tree.join("holes"), &data).unwrap();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(tree.join("holes"))
            .unwrap();
        nix::fcntl::fallocate(
            &f,
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            1 << 20,
            1 << 20,
        )
        .unwrap();
        for p in ["big", "small", "holes", "."] {
            testkit::set_times(&tree.join(p), (1, 0), (1_600_000_000, 5));
        }
    };
    let opts = ["-t", "ext4", "-b", "4096"];
    let image = |name: &str, last: u8| {
        let tree = t.join(name);
        fs::create_dir(&tree).unwrap();
        fill(&tree, last);
        let image = t.join(format!("{name}.ext4"));
        testkit::mkfs_from_tree(&image, "32M", Some(&tree), &opts);
        image
    };
    let a = image("a", 1);
    let b = image("b", 2);
    let diff = |x: &std::path::Path, y: &std::path::Path| {
        let out = run(Command::new(BIN).arg("--diff").arg(y).arg(x));
        (code(&out), stdout(&out), stderr(&out))
    };
    let (c, out, err) = diff(&a, &a);
    assert_eq!((c, out.as_str()), (0, ""), "{err}");
    assert_eq!(
        diff(&a, &b).1,
        "changed big (content)\nchanged small (content)\n"
    );

    // The other side stores the middle MiB as zeros: the same content. Rewritten as data
    // (a hole against stored bytes), it differs.
    let c2 = image("c", 1);
    let tree = t.join("c");
    fs::write(tree.join("holes"), &data).unwrap();
    testkit::set_times(&tree.join("holes"), (1, 0), (1_600_000_000, 5));
    testkit::mkfs_from_tree(&c2, "32M", Some(&tree), &opts);
    poke_blocks(&c2, "/holes", 256..512, 0);
    let (c, out, err) = diff(&a, &c2);
    assert_eq!((c, out.as_str()), (0, ""), "{err}");
    poke_blocks(&c2, "/holes", 300..301, 7);
    assert_eq!(diff(&a, &c2).1, "changed holes (content)\n");
    assert_eq!(diff(&c2, &a).1, "changed holes (content)\n");
}
