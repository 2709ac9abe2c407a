//! `seed-size`: measure a staged tree and print the size its work-seed image needs.
//!
//! Reads the tree named as argument, or from stdin (a path line, or a JSON record with a
//! `path` field, as `ext4-rdump --json` prints), `-` meaning stdin. Walks it without
//! following symlinks and without descending into other file systems, through directory
//! descriptors ([`seedkit::walk`]: any depth, a bounded number of descriptors). Prints the
//! image size in bytes on stdout, or with `--json` one [`SeedSize`] record.
//!
//! The byte figure keeps the established rule, with used = what the regular files hold
//! (each hard-linked inode once): a file's bytes outside holes, so that a sparse file
//! counts its data and not its apparent size ([`Census::add_file`], the one place every
//! source counts a file); size = max(2 x used + 256 MiB, 512 MiB),
//! rounded up to a multiple of 64 MiB. A tree the rule cannot hold (many small files each
//! taking a block, say) gets the smallest larger multiple of 64 MiB that holds it, with a
//! note on stderr. The inode figure is what `mkfs.ext4 -N` needs: every inode of the tree,
//! the 11 that mkfs reserves, a quarter more plus 1024 for the VM's own files, and never
//! fewer than mkfs would give that size by default (one per 16 KiB).
//!
//! When the tree came from `ext4-rdump`, entries that its manifest records but the host tree
//! could not hold (devices for an unprivileged user) are counted too. The manifest beside
//! the tree is read only when it is the caller's own
//! ([`seedkit::records::manifest::ManifestReader::beside`]); `--manifest FILE` names one,
//! `--no-manifest` goes without.
//!
//! The same census, rule and record come from three other sources ([`sources`]): a
//! directory of an image (`--from-image IMAGE [DIR]`), read with the workspace's ext4
//! reader, nothing extracted; the records `ext4-ls -R --json` prints (`--from-ls-json`, on
//! stdin); and a tar stream (`--from-tar FILE|-`), measured from its headers as
//! `ext4-ingest --from-tar` would write it ([`seedkit::tar`], the reader both share).
//!
//! Exit status: 0 success; 1 the tree was measured but a mount point inside it was not
//! descended, an entry of an image could not be read, or a tar member was refused (each
//! reported); 2 the tree could not be measured (unreadable directory, not a directory,
//! bad input, a tar stream truncated or damaged).

#![forbid(unsafe_code)]

mod sources;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Parser;
use seedkit::json::Bytes;
use seedkit::progress::Progress;
use seedkit::records::manifest::ManifestReader;
use seedkit::records::{emit, EntryKind, SeedSize, TreeCounts};
use seedkit::{quote, sys, walk, warn, Status};

const MIB: u64 = 1 << 20;
/// Block size of every image this rule makes: mkfs.ext4 picks 4 KiB from 512 MiB up.
const BLOCK: u64 = 4096;
/// Blocks per group with 4 KiB blocks (one block bitmap block of 32,768 bits).
const BLOCKS_PER_GROUP: u64 = 8 * BLOCK;
/// mkfs.ext4's default inode size.
const INODE_SIZE: u64 = 256;
/// Inodes 1-10 are reserved and 11 is lost+found.
const RESERVED_INODES: u64 = 11;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Measure a staged tree and print the size in bytes its work-seed image needs",
    after_help = "Exit status: 0 success, 1 measured but something was left out (a mount \
        point, an unreadable entry, a refused tar member), 2 the tree could not be measured.\n\n\
        Examples: ext4-rdump rootfs.ext4 /root | seed-size --json\n          \
        podman export CONTAINER | seed-size --from-tar -"
)]
pub struct Args {
    /// The staged tree; `-` or none reads a path line or a JSON record with `path` from stdin.
    /// With --from-image, the directory of the image (default /).
    #[arg(value_name = "PATH")]
    pub path: Option<OsString>,

    /// Measure directory PATH (default /) of this ext2/3/4 image instead of a host tree,
    /// from its metadata: nothing is extracted (PATH itself is not followed if a symlink).
    #[arg(long, value_name = "IMAGE", conflicts_with = "from_ls_json")]
    pub from_image: Option<std::path::PathBuf>,

    /// Measure the entries `ext4-ls -R --json` printed, read from standard input.
    #[arg(long, conflicts_with = "path")]
    pub from_ls_json: bool,

    /// Measure the members of this tar stream (`-`: standard input) from their headers, as
    /// `ext4-ingest --from-tar` would write them (only those below directory PATH of the
    /// stream, when given); a file's data is skipped (by seeking when FILE is a regular
    /// file).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["from_image", "from_ls_json"]
    )]
    pub from_tar: Option<PathBuf>,

    /// With --from-image or --from-tar: a PATH the source lacks measures as an empty
    /// directory instead of failing.
    #[arg(long)]
    pub missing_ok: bool,

    /// Print one JSON record: counts, apparent and allocated bytes, size and inode count.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Print only these fields of the --json record, tab-separated (for example
    /// `size_bytes,inodes`), for shell scripts.
    #[arg(long, value_name = "FIELDS")]
    pub format: Option<seedkit::fields::Fields>,

    /// Read this manifest instead of PATH.manifest.jsonl (which is read only when it is
    /// yours, or root's, and no one else may write it).
    #[arg(long, value_name = "FILE", conflicts_with = "no_manifest")]
    pub manifest: Option<PathBuf>,

    /// Ignore any manifest: count only what the tree holds.
    #[arg(long)]
    pub no_manifest: bool,
}

/// Where the manifest comes from.
pub enum Manifest<'a> {
    /// Beside the tree, when it is there and the caller's own.
    Beside,
    /// This file, named by the caller.
    Named(&'a Path),
    /// None.
    Without,
}

pub fn run(args: &Args) -> Result<Status> {
    let manifest = match (&args.manifest, args.no_manifest) {
        (_, true) => Manifest::Without,
        (Some(m), false) => Manifest::Named(m),
        (None, false) => Manifest::Beside,
    };
    if args.missing_ok && args.from_image.is_none() && args.from_tar.is_none() {
        anyhow::bail!("--missing-ok goes with --from-image or --from-tar");
    }
    let (root, (census, status)) = if let Some(image) = &args.from_image {
        let dir = args.path.as_deref().map_or(&b"/"[..], |p| p.as_bytes());
        (
            image.clone(),
            sources::measure_image(image, dir, args.missing_ok)?,
        )
    } else if let Some(tar) = &args.from_tar {
        let dir = args.path.as_deref().map_or(&b""[..], |p| p.as_bytes());
        (
            tar.clone(),
            sources::measure_tar(tar, dir, args.missing_ok)?,
        )
    } else if args.from_ls_json {
        let records = sources::measure_ls_json(io::stdin().lock())?;
        (std::path::PathBuf::from("-"), records)
    } else {
        let root = seedkit::input::resolve(args.path.as_deref())?;
        let measured = measure(&root, &manifest)?;
        (root, measured)
    };
    let record = census.record(Bytes::from(root.as_path()));
    if record.size_bytes > rule_size(census.used_bytes) {
        warn(format_args!(
            "{} needs more than the 2 x used + 256 MiB rule gives ({} blocks of data and metadata); using {} bytes",
            quote(&root),
            census.blocks_needed(),
            record.size_bytes
        ));
    }
    let mut out = io::stdout().lock();
    if args.json {
        emit(&mut out, &record)?;
    } else if let Some(fields) = &args.format {
        fields.write(&mut out, &record)?;
    } else {
        writeln!(out, "{}", record.size_bytes)?;
    }
    Ok(status)
}

/// What a walk of the tree found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Census {
    /// The counts the record reports (the top directory included).
    pub counts: TreeCounts,
    pub allocated_bytes: u64,
    /// What the size rule calls used: the regular files' bytes outside holes.
    pub used_bytes: u64,
    /// 4 KiB blocks the files' data takes (holes excluded).
    pub data_blocks: u64,
    /// 4 KiB blocks the directories take (entries of 8 bytes plus the name, 4-aligned).
    pub directory_blocks: u64,
    /// Symlinks of 60 bytes or more take a block each.
    pub long_symlinks: u64,
    /// The source lacked the directory asked for (`--missing-ok`).
    pub missing: bool,
}

/// Walk `root` and count. An unreadable directory, or any error of the walk, is fatal: a
/// silent undercount would make an image that does not hold the tree.
///
/// The walk is [`seedkit::walk`]: entries are stat'ed relative to their open directory,
/// directories are opened without following symlinks, and a chain of any depth is measured
/// with a bounded number of descriptors.
pub fn measure(root: &Path, manifest: &Manifest) -> Result<(Census, Status)> {
    let mut count = Counter {
        census: Census::default(),
        top_dev: None,
        seen_links: HashSet::new(),
        skipped_mounts: 0,
        progress: Progress::new(),
        entries: 0,
    };
    walk::walk(root, walk::Options::default(), &mut count)?;
    count.progress.finish();
    let mut census = count.census;
    census.add_unstaged(root, manifest)?;
    Ok((census, Status::from_failures(count.skipped_mounts)))
}

/// The walk's visitor: counts every entry, enters the directories of the root's file system.
struct Counter {
    census: Census,
    top_dev: Option<u64>,
    seen_links: HashSet<(u64, u64)>,
    skipped_mounts: u64,
    progress: Progress,
    entries: u64,
}

impl walk::Visit for Counter {
    fn entry(&mut self, e: &walk::Entry<'_>) -> Result<bool> {
        let st = e.stat;
        let census = &mut self.census;
        let Some(top) = self.top_dev else {
            // The root.
            self.top_dev = Some(st.st_dev);
            census.counts.add(EntryKind::Directory, 0);
            return Ok(true);
        };
        self.entries += 1;
        let entries = self.entries;
        self.progress
            .update(|| format!("seed-size: {entries} entries"));
        let kind = e.kind();
        if kind == Some(EntryKind::Directory) {
            census.counts.add(EntryKind::Directory, 0);
            if st.st_dev == top {
                return Ok(true);
            }
            warn(format_args!(
                "not descending into {}: another file system",
                quote(e.path)
            ));
            self.skipped_mounts += 1;
            return Ok(false);
        }
        if st.st_nlink > 1 && !self.seen_links.insert((st.st_dev, st.st_ino)) {
            census.counts.extra_hard_links += 1;
            return Ok(false);
        }
        let size = st.st_size.max(0) as u64;
        let Some(entry_kind) = EntryKind::from_mode(st.st_mode) else {
            anyhow::bail!("measuring {}: unknown file type", quote(e.path));
        };
        if entry_kind == EntryKind::File {
            let allocated = (st.st_blocks.max(0) as u64).saturating_mul(512);
            // Fewer blocks than bytes: holes (or a compressing file system); ask where
            // the data is.
            let data = if allocated < size {
                data_bytes(e)
            } else {
                None
            };
            census.add_file(size, allocated, data);
            return Ok(false);
        }
        census.counts.add(entry_kind, size);
        if entry_kind == EntryKind::Symlink && size >= 60 {
            census.long_symlinks += 1;
        }
        Ok(false)
    }

    fn enter(&mut self, dir: &mut walk::Dir<'_>) -> Result<()> {
        // `.` and `..` take 12 bytes each.
        let bytes = 24 + dir.names.iter().map(|n| dirent_size(n.len())).sum::<u64>();
        self.census.close_directory(bytes);
        Ok(())
    }
}

/// The bytes of a regular file outside its holes (`SEEK_DATA` and `SEEK_HOLE` through a
/// descriptor of the very file stat'ed); `None` when that cannot be told.
fn data_bytes(e: &walk::Entry<'_>) -> Option<u64> {
    use nix::fcntl::OFlag;
    let parent = e.parent?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = sys::open_at(parent, e.name, flags, 0).ok()?;
    sys::Identity::of(&fd)
        .ok()
        .filter(|id| *id == sys::Identity::from_stat(e.stat))?;
    let size = e.stat.st_size.max(0) as u64;
    let mut data = 0u64;
    let mut at = 0;
    while at < size {
        let Some(start) = sys::seek_data(&fd, at).ok()? else {
            break;
        };
        let end = sys::seek_hole(&fd, start).ok()?.min(size);
        data = data.saturating_add(end.saturating_sub(start));
        at = end.max(start + 1);
    }
    Some(data)
}

/// Size of an ext4 directory entry holding a name of `len` bytes.
fn dirent_size(len: usize) -> u64 {
    8 + (len as u64).next_multiple_of(4)
}

impl Census {
    /// Count one regular file (each inode once): `apparent` bytes long, taking `allocated`
    /// bytes of storage (`st_blocks` x 512 on a host, its data blocks in an image), of
    /// which `data` lie outside holes when known (else the smaller of the two). The rule
    /// counts the data: a hole costs an ext4 image nothing but extent entries (12 bytes
    /// per run of data, which the 1% [`fits`] keeps for extent trees covers), so a sparse
    /// file of any apparent size makes no larger seed.
    pub fn add_file(&mut self, apparent: u64, allocated: u64, data: Option<u64>) {
        let data = data.unwrap_or(allocated).min(apparent);
        self.counts.add(EntryKind::File, apparent);
        self.allocated_bytes = self.allocated_bytes.saturating_add(allocated);
        self.used_bytes = self.used_bytes.saturating_add(data);
        // A compressing file system may hold fewer blocks than the data takes in ext4.
        self.data_blocks += allocated.max(data).div_ceil(BLOCK);
    }

    fn close_directory(&mut self, bytes: u64) {
        // A block keeps 12 bytes for the checksum tail; a directory of more than one
        // block becomes hash-indexed and gains an index block.
        let blocks = bytes.div_ceil(BLOCK - 12).max(1);
        self.directory_blocks += if blocks > 1 { blocks + 1 } else { blocks };
    }

    /// Count what the manifest beside the tree records but the host tree does not hold.
    fn add_unstaged(&mut self, root: &Path, manifest: &Manifest) -> Result<()> {
        let manifest = match manifest {
            Manifest::Beside => ManifestReader::beside(root)?,
            Manifest::Named(path) => Some(ManifestReader::open(path)?),
            Manifest::Without => None,
        };
        let Some(manifest) = manifest else {
            return Ok(());
        };
        let mut groups = HashSet::new();
        for entry in manifest {
            let entry = entry?;
            if entry.staged {
                continue;
            }
            if entry.link_group.is_some_and(|g| !groups.insert(g)) {
                self.counts.extra_hard_links += 1;
            } else {
                self.counts.add(entry.kind, entry.size);
            }
        }
        Ok(())
    }

    /// Inodes the tree takes in the image: the tree's root is the image's root inode.
    pub fn inodes_used(&self) -> u64 {
        self.counts.inodes().saturating_sub(1)
    }

    /// Blocks of data and directories (metadata of the file system excluded).
    pub fn blocks_needed(&self) -> u64 {
        self.data_blocks + self.directory_blocks + self.long_symlinks
    }

    /// The inode count to ask for, with headroom, for an image of `size` bytes.
    pub fn inodes_for(&self, size: u64) -> u64 {
        let needed = self.inodes_used() + RESERVED_INODES;
        (needed + needed / 4 + 1024).max(size / 16384)
    }

    /// The smallest size, from the rule up in 64 MiB steps, that holds the tree.
    pub fn size(&self) -> u64 {
        let mut size = rule_size(self.used_bytes);
        while !fits(size, self.inodes_for(size), self.blocks_needed()) {
            match size.checked_add(64 * MIB) {
                Some(bigger) => size = bigger,
                None => break, // beyond any real file system; mkfs will say so
            }
        }
        size
    }

    /// What a directory the source lacks measures as (`--missing-ok`): an empty one.
    pub fn missing() -> Census {
        let mut census = Census {
            missing: true,
            ..Census::default()
        };
        census.counts.add(EntryKind::Directory, 0);
        census.close_directory(24);
        census
    }

    pub fn record(&self, path: Bytes) -> SeedSize {
        let size = self.size();
        SeedSize {
            path,
            counts: self.counts,
            allocated_bytes: self.allocated_bytes,
            size_bytes: size,
            inodes: self.inodes_for(size),
            missing: self.missing,
        }
    }
}

/// The established rule: max(2 x used + 256 MiB, 512 MiB), rounded up to 64 MiB.
pub fn rule_size(used: u64) -> u64 {
    let step = 64 * MIB;
    let bytes = used
        .saturating_mul(2)
        .saturating_add(256 * MIB)
        .max(512 * MIB);
    bytes
        .checked_next_multiple_of(step)
        .unwrap_or(u64::MAX - u64::MAX % step)
}

/// Journal blocks mke2fs gives a 4 KiB-block file system of `blocks` blocks
/// (lib/ext2fs/mkjournal.c `ext2fs_default_journal_size`).
fn journal_blocks(blocks: u64) -> u64 {
    match blocks {
        b if b < 32 * 1024 => 1024,
        b if b < 256 * 1024 => 4096,
        b if b < 512 * 1024 => 8192,
        b if b < 4096 * 1024 => 16384,
        b if b < 8192 * 1024 => 32768,
        b if b < 16384 * 1024 => 65536,
        b if b < 32768 * 1024 => 131_072,
        _ => 262_144,
    }
}

/// Whether an image of `size` bytes with `inodes` inodes holds `data` blocks.
fn fits(size: u64, inodes: u64, data: u64) -> bool {
    let blocks = size / BLOCK;
    let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
    let per_group = inodes.div_ceil(groups);
    if per_group > BLOCKS_PER_GROUP {
        return false; // mkfs refuses more inodes than an inode bitmap block can map
    }
    let inode_tables = (groups * per_group * INODE_SIZE).div_ceil(BLOCK);
    // Bitmaps, descriptors and the blocks reserved for growth; 1% for extent trees and the
    // odd external xattr block.
    let metadata = journal_blocks(blocks) + inode_tables + groups * 2 + 1024 + blocks / 100;
    metadata + data <= blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_kept() {
        assert_eq!(rule_size(0), 512 * MIB);
        assert_eq!(rule_size(128 * MIB), 512 * MIB);
        assert_eq!(rule_size(128 * MIB + 1), 576 * MIB); // 512 MiB + 2 bytes rounds up
        assert_eq!(rule_size(1 << 30), 2304 * MIB);
        assert_eq!(rule_size(u64::MAX) % (64 * MIB), 0);
    }

    #[test]
    fn an_empty_tree_gets_the_mkfs_default_inodes() {
        let c = Census {
            counts: TreeCounts {
                directories: 1,
                ..TreeCounts::default()
            },
            ..Census::default()
        };
        assert_eq!(c.size(), 512 * MIB);
        assert_eq!(c.inodes_for(c.size()), 32768);
    }

    #[test]
    fn fifty_thousand_small_files_get_their_inodes() {
        let c = Census {
            counts: TreeCounts {
                files: 50_000,
                directories: 1,
                bytes: 50_000 * 100,
                ..TreeCounts::default()
            },
            data_blocks: 50_000,
            directory_blocks: 300,
            ..Census::default()
        };
        assert_eq!(c.size(), 512 * MIB);
        let inodes = c.inodes_for(c.size());
        assert!(inodes >= 50_011 + 12_000, "{inodes}");
    }

    #[test]
    fn a_tree_the_rule_cannot_hold_grows() {
        // A million one-byte files: the rule says 512 MiB, the blocks alone need 4 GiB.
        let c = Census {
            counts: TreeCounts {
                files: 1_000_000,
                directories: 1,
                bytes: 1_000_000,
                ..TreeCounts::default()
            },
            data_blocks: 1_000_000,
            ..Census::default()
        };
        let size = c.size();
        assert!(size > 4 << 30, "{size}");
        assert_eq!(size % (64 * MIB), 0);
        assert!(fits(size, c.inodes_for(size), c.blocks_needed()));
    }

    #[test]
    fn a_file_counts_its_data_never_its_holes() {
        let mut c = Census::default();
        c.add_file(2 << 40, 0, Some(0));
        c.add_file(100, 4096, None);
        c.add_file(10 * MIB, 4 * MIB, Some(3 * MIB));
        assert_eq!(c.counts.bytes, (2 << 40) + 100 + 10 * MIB);
        assert_eq!(c.used_bytes, 100 + 3 * MIB);
        assert_eq!(c.allocated_bytes, 4096 + 4 * MIB);
        // Data a compressing file system holds in fewer blocks still takes its blocks.
        c.add_file(MIB, 4096, Some(MIB));
        assert_eq!(c.data_blocks, 1 + 1024 + 256);
        assert_eq!(c.size(), 512 * MIB);
    }

    #[test]
    fn directory_entries_are_aligned() {
        assert_eq!(dirent_size(1), 12);
        assert_eq!(dirent_size(4), 12);
        assert_eq!(dirent_size(5), 16);
        assert_eq!(dirent_size(255), 264);
    }
}
