//! The amplification table: every tool on every image, against what the image holds. For
//! each run: CPU seconds, peak RSS, host bytes written and output bytes (the kernel's own
//! accounting of that process and the children it waited for, `wait4`), against the
//! image's allocated size A (as the reader takes it) and the entries N that `ext4-ls -R`
//! lists (each a name read once from a directory block, so N is bounded by A too). Peak
//! RSS is an upper bound: Linux carries the spawning test process's own peak (a few MiB)
//! into the child's. The targets, for a sound image or a hostile one:
//!
//! - CPU <= 1 s + 1 s per 64 MiB of A + 0.5 ms per entry of N
//! - peak RSS <= 64 MiB + 4 x A
//! - host bytes <= 8 x A + 256 MiB
//! - output <= 4 x A + 1 MiB
//!
//! The tools: ext4-rdump (extracting), ext4-ls -R, ext4-ls -R --hash, seed-size
//! --from-image, ext4-ingest --from-image into a fresh image, work-seed. `make test` runs
//! the table over the crafted attack images, the sample rootfs and a few corpus images,
//! CPU allowed 10 times its target in a debug build; `make bench` runs it in release with
//! the exact targets over every corpus image, the crafted images, a 20,000-entry home tree
//! and a rootfs of this machine's Debian system directories, and prints the table.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::bounded::{run_within, Limits, Usage};
use testkit::TempDir;

use crate::common::{bin_dir, path_with, sample_rootfs, SCRIPT};

const MIB: u64 = 1 << 20;

/// One image of the table.
struct Subject {
    name: String,
    image: PathBuf,
}

/// What one tool used on one image.
struct Row {
    image: String,
    tool: &'static str,
    a: u64,
    n: u64,
    code: Option<i32>,
    cpu: Duration,
    rss: u64,
    host: u64,
    output: u64,
}

/// What the issue allows a run on an image of `a` allocated bytes listing `n` entries.
struct Targets {
    cpu: Duration,
    rss: u64,
    host: u64,
    output: u64,
}

fn targets(a: u64, n: u64, cpu_factor: u32) -> Targets {
    let cpu_us = 1_000_000 + a * 1_000_000 / (64 * MIB) + n * 500;
    Targets {
        cpu: Duration::from_micros(cpu_us) * cpu_factor,
        rss: 64 * MIB + 4 * a,
        host: 8 * a + 256 * MIB,
        output: 4 * a + MIB,
    }
}

/// How far over its target the host bytes may be before the run counts as missing it (see
/// [`Row::missed`]): 1%, a few MiB at most.
const HOST_SLACK: f64 = 1.01;

/// The columns, in the order of [`Row::ratios`].
const COLUMNS: [&str; 4] = ["cpu", "rss", "host", "output"];

impl Row {
    /// Each measure over its target.
    fn ratios(&self, cpu_factor: u32) -> [f64; 4] {
        let t = targets(self.a, self.n, cpu_factor);
        [
            self.cpu.as_secs_f64() / t.cpu.as_secs_f64(),
            self.rss as f64 / t.rss as f64,
            self.host as f64 / t.host as f64,
            self.output as f64 / t.output as f64,
        ]
    }

    /// The columns over their targets. Host bytes are the kernel's count of pages the run
    /// dirtied: besides what a tool writes (which its budget bounds exactly) it counts the
    /// host file system's own (a page dirtied again after writeback, metadata), up to a
    /// few hundred KiB either way from run to run; that column is allowed [`HOST_SLACK`].
    fn missed(&self, cpu_factor: u32) -> Vec<&'static str> {
        let slack = [1.0, 1.0, HOST_SLACK, 1.0];
        COLUMNS
            .iter()
            .zip(self.ratios(cpu_factor))
            .zip(slack)
            .filter(|((_, r), s)| r > s)
            .map(|((c, _), _)| *c)
            .collect()
    }
}

/// The image's allocated size, as the reader takes it (the file's own when it is no image
/// the reader opens).
fn allocated(image: &Path) -> u64 {
    fs::File::open(image)
        .ok()
        .and_then(|f| ext4fs::Fs::open(f).ok())
        .map_or_else(
            || testkit::allocated_bytes(image),
            |fs| fs.allocated_bytes(),
        )
}

/// The bytes the file system of `image` spans (its blocks count), 0 when unreadable.
fn fs_bytes(image: &Path) -> u64 {
    fs::File::open(image)
        .ok()
        .and_then(|f| ext4fs::Fs::open(f).ok())
        .map_or(0, |fs| {
            fs.superblock().blocks_count * u64::from(fs.block_size())
        })
}

/// Bytes allocated under `path` (a file or a tree), 0 when it is not there.
fn du(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.path().symlink_metadata().ok())
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .sum()
}

fn tool(name: &str) -> Command {
    let mut cmd = Command::new(bin_dir().join(name));
    cmd.env("PATH", path_with(&bin_dir()));
    cmd
}

/// Run `cmd` with kernel limits past the targets (so a runaway is stopped, and shows in
/// the table as what it used).
fn measure(cmd: &mut Command, a: u64, n: u64, cpu_factor: u32) -> Usage {
    let t = targets(a, n, cpu_factor);
    run_within(
        cmd,
        &Limits {
            cpu_seconds: (t.cpu.as_secs() * 2).max(30),
            memory_bytes: (t.rss * 4).max(4 << 30),
            output_bytes: t.output * 4,
            wall: Duration::from_secs(1200),
        },
    )
}

/// What `u` shows of `tool` on `s`; `host` what the tool left on the host, counted
/// besides what the kernel says it wrote (nothing on a file system without writeback).
fn row(s: &Subject, tool: &'static str, a: u64, n: u64, u: &Usage, host: u64) -> Row {
    Row {
        image: s.name.clone(),
        tool,
        a,
        n,
        code: u.code(),
        cpu: u.cpu,
        rss: u.peak_rss,
        host: host.max(u.host_written),
        output: u.stdout_bytes + u.stderr_bytes,
    }
}

/// Every tool on `s`.
fn rows_of(s: &Subject, work: &Path, cpu_factor: u32) -> Vec<Row> {
    let a = allocated(&s.image);
    let mut rows = Vec::new();
    // N is what the listing lists; until it is known the limits assume 64k entries.
    let ls = measure(
        tool("ext4-ls").arg("-R").arg(&s.image),
        a,
        1 << 16,
        cpu_factor,
    );
    let n = ls.stdout_lines;
    rows.push(row(s, "ext4-ls -R", a, n, &ls, 0));
    let hash = measure(
        tool("ext4-ls").args(["-R", "--hash"]).arg(&s.image),
        a,
        n,
        cpu_factor,
    );
    rows.push(row(s, "ext4-ls -R --hash", a, n, &hash, 0));
    let size = measure(
        tool("seed-size").arg("--from-image").arg(&s.image),
        a,
        n,
        cpu_factor,
    );
    rows.push(row(s, "seed-size --from-image", a, n, &size, 0));

    let dest = work.join("stage");
    let manifest = work.join("stage.manifest.jsonl");
    let rdump = measure(
        tool("ext4-rdump").arg("-o").arg(&dest).arg(&s.image),
        a,
        n,
        cpu_factor,
    );
    let staged = du(&dest) + du(&manifest);
    rows.push(row(s, "ext4-rdump", a, n, &rdump, staged));
    let _ = fs::remove_dir_all(&dest);
    let _ = fs::remove_file(&manifest);

    // A fresh image with room for what the source holds and for what its budget lets a
    // hostile one describe (sparse: room costs nothing).
    let into = work.join("ingest.ext4");
    let room = (4 * fs_bytes(&s.image) + n * 4096 + 8 * a + 320 * MIB).min(64 << 30);
    let inodes = (n + 1024).to_string();
    testkit::mkfs_from_tree(
        &into,
        &format!("{}k", room / 1024),
        None,
        &["-t", "ext4", "-N", &inodes],
    );
    let before = du(&into);
    let ingest = measure(
        tool("ext4-ingest")
            .arg("--from-image")
            .arg(&s.image)
            .arg(&into),
        a,
        n,
        cpu_factor,
    );
    let grown = du(&into).saturating_sub(before);
    rows.push(row(s, "ext4-ingest --from-image", a, n, &ingest, grown));
    let _ = fs::remove_file(&into);

    let seed = work.join("seed.ext4");
    let mut cmd = Command::new(SCRIPT);
    cmd.env("PATH", path_with(&bin_dir()))
        .env("TMPDIR", work)
        .arg("-q")
        .arg(&s.image)
        .arg(&seed);
    let built = measure(&mut cmd, a, n, cpu_factor);
    rows.push(row(s, "work-seed", a, n, &built, du(&seed)));
    let _ = fs::remove_file(&seed);
    rows
}

fn show(rows: &[Row], cpu_factor: u32) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<36} {:<24} {:>9} {:>7} {:>4} {:>7} {:>8} {:>9} {:>8}  missed",
        "image", "tool", "A (KiB)", "N", "exit", "cpu (s)", "rss (KiB)", "host (KiB)", "out (KiB)",
    );
    // Per column: the worst ratio, and the row's image and tool.
    let mut worst: [(f64, &str, &str); 4] = [(0.0, "", ""); 4];
    for r in rows {
        for (i, ratio) in r.ratios(cpu_factor).into_iter().enumerate() {
            if ratio > worst[i].0 {
                worst[i] = (ratio, &r.image, r.tool);
            }
        }
        let missed = r.missed(cpu_factor);
        let _ = writeln!(
            t,
            "{:<36} {:<24} {:>9} {:>7} {:>4} {:>7.2} {:>8} {:>9} {:>8}  {}",
            r.image,
            r.tool,
            r.a / 1024,
            r.n,
            r.code.map_or_else(|| "sig".to_string(), |c| c.to_string()),
            r.cpu.as_secs_f64(),
            r.rss / 1024,
            r.host / 1024,
            r.output / 1024,
            if missed.is_empty() {
                String::new()
            } else {
                format!("MISSED {}", missed.join(","))
            }
        );
    }
    let _ = writeln!(
        t,
        "worst ratio to target per column{}:",
        if cpu_factor == 1 {
            String::new()
        } else {
            format!(" (CPU target x {cpu_factor})")
        }
    );
    for (i, c) in COLUMNS.iter().enumerate() {
        let _ = writeln!(
            t,
            "  {c:<7} {:.3}  ({}, {})",
            worst[i].0, worst[i].1, worst[i].2
        );
    }
    t
}

/// Run the table over `subjects`; print it (and write it to $AMPLIFICATION_TABLE when
/// set); fail on any target missed.
fn table(subjects: &[Subject], cpu_factor: u32) {
    let work = TempDir::new();
    let mut rows = Vec::new();
    for s in subjects {
        rows.extend(rows_of(s, work.path(), cpu_factor));
    }
    let text = show(&rows, cpu_factor);
    if let Some(path) = std::env::var_os("AMPLIFICATION_TABLE") {
        fs::write(path, &text).expect("write the table");
    }
    eprintln!("{text}");
    let missed = text.lines().filter(|l| l.contains("MISSED")).count();
    assert_eq!(missed, 0, "{missed} runs missed their targets:\n{text}");
}

/// The corpus images whose names `keep` accepts, unpacked into `dir`.
fn corpus(dir: &Path, test: &str, keep: &dyn Fn(&str) -> bool) -> Vec<Subject> {
    testkit::corpus_images(test)
        .iter()
        .filter_map(|gz| {
            let name = gz
                .file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".img.gz").to_string())
                .unwrap_or_default();
            if !keep(&name) {
                return None;
            }
            let image = dir.join(format!("{name}.img"));
            fs::write(&image, testkit::gunzip(gz)).expect("unpack a corpus image");
            Some(Subject { name, image })
        })
        .collect()
}

/// The crafted images of the findings.
fn crafted(dir: &Path) -> Vec<Subject> {
    testkit::craft::all(dir)
        .into_iter()
        .map(|(name, image)| Subject {
            name: format!("crafted: {name}"),
            image,
        })
        .collect()
}

/// A home directory under /root of `dirs` x 20 project directories of 45 files each (up
/// to 6 KB of text), one 16 MiB file of noise, a 1 GiB sparse disk image, symlinks and
/// hard links: 20,000 entries at 20 x 20 x 45.
fn home_rootfs(dir: &Path, dirs: usize) -> Subject {
    let tree = dir.join("home-src");
    let home = tree.join("root");
    for i in 0..dirs {
        for j in 0..20 {
            let d = home.join(format!("proj{i:02}/src{j:02}"));
            fs::create_dir_all(&d).expect("mkdir");
            for k in 0..45 {
                let len = (i * 7919 + j * 104_729 + k * 1_299_709) % 6000;
                let text: Vec<u8> = (0..len).map(|n| b"abcdefghij klmnop\n"[n % 18]).collect();
                fs::write(d.join(format!("file{k:02}.txt")), text).expect("write");
                if k % 9 == 0 {
                    std::os::unix::fs::symlink(
                        format!("file{k:02}.txt"),
                        d.join(format!("link{k:02}")),
                    )
                    .expect("symlink");
                }
                if k % 15 == 0 {
                    fs::hard_link(
                        d.join(format!("file{k:02}.txt")),
                        d.join(format!("hard{k:02}")),
                    )
                    .expect("link");
                }
            }
        }
    }
    let noise: Vec<u8> = (0u32..16 << 20)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(home.join("archive.bin"), noise).expect("write");
    testkit::write_at(&home.join("disk.img"), (1 << 30) - 3, b"end");
    let image = dir.join(format!("home-{dirs}.img"));
    testkit::mkfs_from_tree(&image, "1G", Some(&tree), &["-t", "ext4", "-N", "65536"]);
    let _ = fs::remove_dir_all(&tree);
    Subject {
        name: format!(
            "home tree, {} entries",
            dirs * 20 * (45 + 5 + 3 + 1) + dirs + 3
        ),
        image,
    }
}

/// A few small corpus images of different kinds, for the test run: extents, inline data,
/// xattrs, a sparse file, a damaged directory.
const SMALL_CORPUS: &[&str] = &[
    "f_extents",
    "d_inline_dump",
    "f_ea_checks",
    "f_big_sparse",
    "f_baddir",
];

/// What every test run checks: each tool on the crafted images, the sample rootfs and a
/// few small corpus images, within 10 times the CPU targets in a debug build.
#[test]
fn every_tool_stays_within_its_bounds_on_every_image() {
    let test = "every_tool_stays_within_its_bounds_on_every_image";
    if !testkit::need(test, &["mke2fs", "debugfs", "e2fsck"]) {
        return;
    }
    let t = TempDir::new();
    let mut subjects = crafted(t.path());
    subjects.push(Subject {
        name: "the sample rootfs".into(),
        image: sample_rootfs(&t),
    });
    subjects.extend(corpus(t.path(), test, &|n| SMALL_CORPUS.contains(&n)));
    table(&subjects, if cfg!(debug_assertions) { 10 } else { 1 });
}

/// `make bench`: the same in release with the exact targets, over every corpus image, the
/// crafted images, a 20,000-entry home tree and a rootfs of this machine's Debian system
/// directories.
#[test]
#[ignore = "make bench runs it, in release"]
fn amplification_table() {
    let test = "amplification_table";
    if !testkit::need(test, &["mke2fs", "debugfs", "e2fsck"]) {
        return;
    }
    let t = TempDir::new();
    let mut subjects = crafted(t.path());
    subjects.push(home_rootfs(t.path(), 20));
    if let Some(debian) = debian_rootfs(t.path()) {
        subjects.push(debian);
    }
    subjects.extend(corpus(t.path(), test, &|_| true));
    table(&subjects, if cfg!(debug_assertions) { 10 } else { 1 });
}

/// A rootfs of the system directories of this machine (a Debian one: /etc, /usr/bin,
/// /usr/sbin, /usr/share/man, /var/lib/dpkg: about 400 MiB), with a small /root; `None`
/// where there is no such system.
fn debian_rootfs(dir: &Path) -> Option<Subject> {
    if !Path::new("/var/lib/dpkg/status").exists() {
        return None;
    }
    let tree = dir.join("debian-src");
    fs::create_dir_all(tree.join("root/.ssh")).expect("mkdir");
    fs::write(tree.join("root/.bashrc"), b"# ~/.bashrc\n").expect("write");
    let parts = [
        "etc",
        "usr/bin",
        "usr/sbin",
        "usr/share/man",
        "var/lib/dpkg",
    ];
    for part in parts {
        let from = Path::new("/").join(part);
        if !from.is_dir() {
            continue;
        }
        let to = tree.join(part);
        fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        let out = testkit::run(Command::new("cp").arg("-a").arg(&from).arg(&to));
        if !out.status.success() {
            // Unreadable pieces of a live system are left out.
            eprintln!("debian rootfs: cp {part}: {}", testkit::stderr(&out));
        }
    }
    let image = dir.join("debian.img");
    testkit::mkfs_from_tree(&image, "2G", Some(&tree), &["-t", "ext4"]);
    let _ = fs::remove_dir_all(&tree);
    Some(Subject {
        name: "Debian rootfs (this machine's)".into(),
        image,
    })
}
