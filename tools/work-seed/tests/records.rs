//! The JSON records as a contract: every tool's real `--json` output (and the manifest)
//! against its schema in `schemas/`, the schemas against the record types, and the counts
//! of one tree agreeing across seed-size, ext4-rdump, ext4-ingest and work-seed.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use seedkit::json::Bytes;
use seedkit::records::manifest::{manifest_path, ManifestEntry, ManifestHeader, ManifestLine};
use seedkit::records::{
    self, Change, Clonecp, CopyMethod, EntryKind, Ingest, LsDiff, LsEntry, Rdev, RdumpError,
    RdumpSummary, Record, SeedSize, StageSeconds, Timestamp, TreeCounts, WorkSeed, Xattr,
};
use serde_json::Value;
use testkit::schema::Schema;
use testkit::{code, run, run_with_stdin, stderr, TempDir};

use crate::common::{bin_dir, path_with, SCRIPT};

/// `schemas/<name>.schema.json` of the workspace.
fn schema_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../schemas/{name}.schema.json"))
}

fn schema(name: &str) -> Schema {
    Schema::load(&schema_path(name))
}

/// This build's `tool`.
fn bin(tool: &str) -> PathBuf {
    bin_dir().join(tool)
}

/// Run a tool, expect success, and give its one line of JSON.
fn json_of(cmd: &mut Command) -> Value {
    let out = run(cmd.env("PATH", path_with(&bin_dir())));
    assert_eq!(code(&out), 0, "{cmd:?}: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).expect("UTF-8 JSON");
    assert_eq!(text.lines().count(), 1, "one record: {text}");
    serde_json::from_str(&text).expect("a JSON record")
}

fn counts_of(v: &Value) -> TreeCounts {
    serde_json::from_value(v.clone()).expect("the counts of a tree")
}

const MIB: u64 = 1 << 20;

/// A rootfs whose /root holds one entry of most kinds: 4 files (one with two more names, a
/// sparse one, one whose name is not UTF-8), 3 directories with /root (one empty), 2
/// symlinks (one too long to sit in its inode), a fifo, and as root a character device.
fn rootfs(t: &TempDir) -> (PathBuf, TreeCounts) {
    let root = t.join("src/root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("a"), vec![1u8; 1000]).unwrap();
    fs::hard_link(root.join("a"), root.join("a2")).unwrap();
    fs::hard_link(root.join("a"), root.join("sub/a3")).unwrap();
    fs::write(root.join("sub/b"), vec![2u8; 5000]).unwrap();
    testkit::write_at(&root.join("sparse"), 10 * MIB, b"end");
    fs::write(root.join(OsStr::from_bytes(b"x\xff")), b"12345").unwrap();
    symlink("a", root.join("link")).unwrap();
    symlink("t".repeat(300), root.join("long")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    testkit::set_xattr(&root.join("sub/b"), "user.k", b"v");
    let device = testkit::make_device(&root.join("null"), true, 0o666, (1, 3));
    let image = t.join("rootfs.ext4");
    testkit::mkfs_from_tree(&image, "32M", Some(&t.join("src")), &["-t", "ext4"]);
    let want = TreeCounts {
        files: 4,
        directories: 3,
        symlinks: 2,
        fifos: 1,
        sockets: 0,
        char_devices: u64::from(device),
        block_devices: 0,
        extra_hard_links: 2,
        bytes: 1000 + 5000 + 10 * MIB + 3 + 5,
    };
    (image, want)
}

#[test]
fn every_tools_output_matches_its_schema_and_the_counts_of_one_tree_agree() {
    let t = TempDir::new();
    let (image, want) = rootfs(&t);

    let stage = t.join("stage");
    let rdump = json_of(
        Command::new(bin("ext4-rdump"))
            .args(["--json", "-o"])
            .arg(&stage)
            .arg(&image)
            .arg("/root"),
    );
    schema("ext4-rdump").assert_valid(&rdump, "ext4-rdump --json");
    records::parse::<RdumpSummary>(rdump.to_string().as_bytes()).unwrap();

    let manifest = schema("ext4-rdump-manifest");
    let text = fs::read_to_string(manifest_path(&stage)).unwrap();
    for (n, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        manifest.assert_valid(&v, &format!("manifest line {}", n + 1));
    }

    let size = json_of(Command::new(bin("seed-size")).arg("--json").arg(&stage));
    schema("seed-size").assert_valid(&size, "seed-size --json");

    let seed = t.join("seed.ext4");
    testkit::mkfs_from_tree(&seed, "64M", None, &["-t", "ext4"]);
    let ingest = json_of(
        Command::new(bin("ext4-ingest"))
            .args(["--json", "--verify"])
            .arg(&seed)
            .arg(&stage),
    );
    schema("ext4-ingest").assert_valid(&ingest, "ext4-ingest --json");

    let clone = json_of(
        Command::new(bin("clonecp"))
            .arg("--json")
            .arg(&seed)
            .arg(t.join("vm.ext4")),
    );
    schema("clonecp").assert_valid(&clone, "clonecp --json");

    let built = json_of(
        Command::new(SCRIPT)
            .arg("--json")
            .arg(&image)
            .arg(t.join("rootfs.work-seed.ext4")),
    );
    schema("work-seed").assert_valid(&built, "work-seed --json");

    // ext4-ls: one record per entry, and with --diff one per difference (the seed has
    // lost+found, the rootfs's /root not: one `extra`).
    let ls = schema("ext4-ls");
    let out = run(Command::new(bin("ext4-ls"))
        .args(["--json", "-R", "--hash"])
        .arg(&image)
        .arg("/root"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() >= 12, "{text}");
    for line in text.lines() {
        ls.assert_valid(&serde_json::from_str(line).unwrap(), "ext4-ls --json");
    }
    let out = run(Command::new(bin("ext4-ls"))
        .args(["--json", "--diff"])
        .arg(&seed)
        .args(["--diff-dir", "/", "--no-owner"])
        .arg(&image)
        .arg("/root"));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let diff = schema("ext4-ls-diff");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() >= 1, "{text}");
    for line in text.lines() {
        diff.assert_valid(
            &serde_json::from_str(line).unwrap(),
            "ext4-ls --diff --json",
        );
    }

    // One tree, one set of counts, whoever counted it; and the counts are the tree's.
    for (tool, v) in [
        ("ext4-rdump", &rdump),
        ("seed-size", &size),
        ("ext4-ingest", &ingest),
        ("work-seed", &built),
    ] {
        assert_eq!(counts_of(v), want, "{tool}: {v}");
    }
}

#[test]
fn a_record_of_a_newer_version_on_stdin_is_refused() {
    let t = TempDir::new();
    fs::create_dir(t.join("tree")).unwrap();
    let line = format!(
        r#"{{"format":"ext4-rdump","version":2,"path":{}}}"#,
        serde_json::to_string(t.join("tree").to_str().unwrap()).unwrap()
    );
    let out = run_with_stdin(&mut Command::new(bin("seed-size")), line.as_bytes());
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "seed-size: reading a JSON record from stdin: ext4-rdump record version 2 is newer than this toolkit reads (version 1 at most): upgrade the toolkit\n"
    );
}

/// A value of each record type with every optional field present, so the schema can be
/// checked for fields it lacks and fields the type lacks.
fn every_field<T: Record>(record: &T) -> Value {
    serde_json::from_str(&records::to_string(record)).unwrap()
}

/// The schema declares exactly the fields of the record (nested objects included).
fn assert_schema_is_the_type(name: &str, sample: &Value) {
    let schema = schema(name);
    schema.assert_valid(sample, name);
    let text = fs::read_to_string(schema_path(name)).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    let declared: Vec<&String> = root["properties"].as_object().unwrap().keys().collect();
    let present: Vec<&String> = sample.as_object().unwrap().keys().collect();
    assert_eq!(
        declared, present,
        "{name}: the schema's fields are the record's"
    );
}

#[test]
// One record of every type, every field set: a table, not logic.
#[allow(clippy::too_many_lines)]
fn each_schema_declares_exactly_its_record_types_fields() {
    let counts = TreeCounts {
        files: 1,
        directories: 2,
        symlinks: 3,
        fifos: 4,
        sockets: 5,
        char_devices: 6,
        block_devices: 7,
        extra_hard_links: 8,
        bytes: 9,
    };
    let raw = Bytes(b"x\xff".to_vec());
    assert_schema_is_the_type(
        "seed-size",
        &every_field(&SeedSize {
            path: raw.clone(),
            counts,
            allocated_bytes: 1,
            size_bytes: 2,
            inodes: 3,
            missing: false,
        }),
    );
    assert_schema_is_the_type(
        "ext4-rdump",
        &every_field(&RdumpSummary {
            path: raw.clone(),
            manifest: Bytes(b"m".to_vec()),
            image: Bytes(b"i".to_vec()),
            source: Bytes(b"/root".to_vec()),
            counts,
            recorded_only: 1,
            missing: false,
            needs_recovery: true,
            failures: 1,
            errors: vec![RdumpError {
                path: raw.clone(),
                message: "m".into(),
            }],
        }),
    );
    assert_schema_is_the_type(
        "ext4-ingest",
        &every_field(&Ingest {
            image: Bytes(b"i".to_vec()),
            path: raw.clone(),
            counts,
            inodes_used: 1,
            failures: 0,
            indexed_directories: 1,
            missing: false,
            verified: true,
            seconds: 0.5,
        }),
    );
    assert_schema_is_the_type(
        "clonecp",
        &every_field(&Clonecp {
            src: raw.clone(),
            dst: Bytes(b"d".to_vec()),
            method: CopyMethod::ReadWrite,
            size_bytes: 1,
            data_bytes: 1,
            holes_kept: true,
            replaced: false,
            seconds: 0.1,
        }),
    );
    assert_schema_is_the_type(
        "work-seed",
        &every_field(&WorkSeed {
            path: raw.clone(),
            rootfs: Bytes(b"r".to_vec()),
            route: "image".into(),
            missing: false,
            counts,
            allocated_bytes: 1,
            size_bytes: 2,
            inodes: 3,
            e2fsck: "clean".into(),
            seconds: 1.0,
            stage_seconds: StageSeconds::default(),
        }),
    );

    assert_schema_is_the_type(
        "ext4-ls",
        &every_field(&LsEntry {
            path: raw.clone(),
            kind: EntryKind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            ino: 12,
            links: 1,
            size: 3,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            crtime: Some(Timestamp::default()),
            target: Some(raw.clone()),
            rdev: Some(Rdev { major: 1, minor: 3 }),
            xattrs: vec![raw.clone()],
            digest: Some("00".into()),
        }),
    );
    assert_schema_is_the_type(
        "ext4-ls-diff",
        &every_field(&LsDiff {
            path: raw.clone(),
            change: Change::Changed,
            fields: vec!["mode".into()],
        }),
    );

    let manifest = schema("ext4-rdump-manifest");
    let header = ManifestLine::Header(ManifestHeader {
        format: "ext4-rdump-manifest".into(),
        version: 1,
        image: raw.clone(),
        source: Bytes(b"/root".to_vec()),
    });
    let stamp = Timestamp { sec: -1, nsec: 5 };
    let entry = ManifestLine::Entry(ManifestEntry {
        path: raw.clone(),
        kind: EntryKind::CharDevice,
        mode: 0o644,
        uid: 1,
        gid: 2,
        atime: stamp,
        mtime: stamp,
        ctime: stamp,
        crtime: Some(stamp),
        size: 0,
        rdev: Some(Rdev { major: 1, minor: 3 }),
        target: Some(raw.clone()),
        link_group: Some(12),
        xattrs: vec![Xattr {
            name: Bytes(b"user.k".to_vec()),
            value: raw,
        }],
        staged: false,
    });
    let text = fs::read_to_string(schema_path("ext4-rdump-manifest")).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    for (line, def) in [(header, "header"), (entry, "entry")] {
        let v = serde_json::to_value(&line).unwrap();
        manifest.assert_valid(&v, def);
        let declared: Vec<&String> = root["$defs"][def]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let present: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            declared, present,
            "manifest {def}: the schema's fields are the record's"
        );
    }
}
