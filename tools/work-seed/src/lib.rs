//! The work-seed build is the sh script `work-seed` beside this crate (installed by
//! `make install`), which chains `ext4-rdump`, `seed-size`, `mkfs.ext4`, `ext4-ingest` and
//! `e2fsck`. This crate holds its end-to-end tests, which run the script with the
//! workspace's freshly built tools on real images; the script `work-disk`, which makes a
//! VM's work disk from a seed (clonecp, truncate, resize2fs, e2fsck); `work-seed-lib.sh`,
//! what the two scripts share; `work-seed-summary`, the small binary `work-seed` ends
//! with; and `work-seed-fs` ([`fs_steps`]), the file-system steps the scripts cannot do
//! safely in sh.
//!
//! `work-seed-summary` reads the records the steps printed (`ext4-rdump --json` and
//! `ext4-ingest --json`, each with its format and version checked), checks that what was
//! extracted is what was written, and prints the build's summary with the numbers the script
//! had from `seed-size --format`: one [`WorkSeed`] record with `--json`, else one line for
//! people. So the script assembles no JSON and reads none.
//!
//! Exit status: 0 printed; 2 a record could not be read, or the counts of the two disagree.

#![forbid(unsafe_code)]

pub mod fs_steps;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use seedkit::json::Bytes;
use seedkit::records::{self, Ingest, RdumpSummary, Record, StageSeconds, WorkSeed};
use seedkit::{quote, Status};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Print the summary of a work-seed build from the records its steps printed",
    after_help = "Exit status: 0 printed, 2 a record could not be read or the steps' counts disagree.\n\n\
        Run by work-seed(1) as its last step; see work-seed-records(7) for the record."
)]
pub struct Args {
    /// Print one JSON record instead of the summary line.
    #[arg(long)]
    pub json: bool,

    /// Print no summary line and no note (a JSON record is still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// The seed that was built.
    #[arg(long, value_name = "PATH")]
    pub seed: OsString,

    /// The rootfs image it was built from.
    #[arg(long, value_name = "PATH")]
    pub rootfs: OsString,

    /// How the seed was written: image, staged or tar.
    #[arg(long, value_name = "ROUTE", value_parser = ["image", "staged", "tar"])]
    pub route: String,

    /// The directory of the rootfs the seed holds.
    #[arg(long, value_name = "DIR", default_value = "/root")]
    pub dir: OsString,

    /// The record `ext4-rdump --json` printed (the staged route).
    #[arg(long, value_name = "FILE")]
    pub rdump: Option<PathBuf>,

    /// The seed's size in bytes (seed-size's `size_bytes`).
    #[arg(long, value_name = "BYTES")]
    pub size_bytes: u64,

    /// The seed's inode count (seed-size's `inodes`).
    #[arg(long, value_name = "N")]
    pub inodes: u64,

    /// The space the source's files take (seed-size's `allocated_bytes`).
    #[arg(long, value_name = "BYTES")]
    pub allocated_bytes: u64,

    /// The record `ext4-ingest --json` printed.
    #[arg(long, value_name = "FILE")]
    pub ingest: PathBuf,

    /// e2fsck's verdict on the seed.
    #[arg(long, value_name = "TEXT")]
    pub e2fsck: String,

    /// The clock (nanoseconds, as `date +%s%N`) at the start and after each of the six
    /// steps: rdump, seed-size, mkfs, ingest, check, e2fsck (a step not taken ends where
    /// it began).
    #[arg(long, value_name = "NS,...", value_delimiter = ',', required = true)]
    pub times: Vec<u64>,
}

fn read<T: Record>(path: &Path) -> Result<T> {
    let text = fs::read(path).with_context(|| format!("reading {}", quote(path)))?;
    records::parse(text.trim_ascii()).with_context(|| format!("reading {}", quote(path)))
}

/// The summary of a build from its steps' records; `Err` when what was written is not
/// what was extracted.
pub fn summary(args: &Args) -> Result<WorkSeed> {
    let ingest: Ingest = read(&args.ingest)?;
    let mut missing = ingest.missing;
    if let Some(rdump) = &args.rdump {
        let rdump: RdumpSummary = read(rdump)?;
        if rdump.counts != ingest.counts {
            bail!(
                "building {}: ext4-ingest wrote another tree than ext4-rdump extracted: {:?} written, {:?} extracted",
                quote(&args.seed),
                ingest.counts,
                rdump.counts
            );
        }
        missing = rdump.missing;
    }
    let t = &args.times;
    let secs = |a: usize, b: usize| (t[b].saturating_sub(t[a]) / 1_000_000) as f64 / 1000.0;
    Ok(WorkSeed {
        path: Bytes::from(Path::new(&args.seed)),
        rootfs: Bytes::from(Path::new(&args.rootfs)),
        route: args.route.clone(),
        missing,
        counts: ingest.counts,
        allocated_bytes: args.allocated_bytes,
        size_bytes: args.size_bytes,
        inodes: args.inodes,
        e2fsck: args.e2fsck.clone(),
        seconds: secs(0, 6),
        stage_seconds: StageSeconds {
            rdump: secs(0, 1),
            seed_size: secs(1, 2),
            mkfs: secs(2, 3),
            ingest: secs(3, 4),
            check: secs(4, 5),
            e2fsck: secs(5, 6),
        },
    })
}

/// The summary line for people.
pub fn line(s: &WorkSeed, dir: &OsString) -> String {
    let c = &s.counts;
    let st = &s.stage_seconds;
    format!(
        "work-seed: built {}{}: {} MiB, {} inodes; {} files, {} directories, {} symlinks, {} special, {} extra hard links; e2fsck -fn: {}; {:.3}s ({}size {:.3}, mkfs {:.3}, ingest {:.3}, {}e2fsck {:.3})",
        quote(s.path.as_path()),
        if s.missing {
            format!(" (empty: the rootfs has no {})", quote(dir))
        } else {
            String::new()
        },
        s.size_bytes >> 20,
        s.inodes,
        c.files,
        c.directories,
        c.symlinks,
        c.specials(),
        c.extra_hard_links,
        s.e2fsck,
        s.seconds,
        if s.route == "staged" {
            format!("rdump {:.3}, ", st.rdump)
        } else {
            String::new()
        },
        st.seed_size,
        st.mkfs,
        st.ingest,
        if s.route == "tar" {
            String::new()
        } else {
            format!("check {:.3}, ", st.check)
        },
        st.e2fsck
    )
}

pub fn run(args: &Args) -> Result<Status> {
    if args.times.len() != 7 {
        bail!("--times takes seven clock readings");
    }
    let s = summary(args)?;
    if s.missing && !args.quiet {
        eprintln!(
            "work-seed: {} has no {}: the seed is empty",
            quote(s.rootfs.as_path()),
            quote(&args.dir)
        );
    }
    let mut out = io::stdout().lock();
    if args.json {
        records::emit(&mut out, &s)?;
    } else if !args.quiet {
        writeln!(out, "{}", line(&s, &args.dir))?;
    }
    Ok(Status::Success)
}
