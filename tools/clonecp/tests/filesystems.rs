//! clonecp on real file systems: loop-mounted XFS (reflink=1) and btrfs, where the clone
//! must be taken and share blocks, and tmpfs, across which the fallback must be taken.
//! These need root, loop devices, xfsprogs and btrfs-progs: each test says `SKIP: <why>`
//! when something is missing, and fails instead when CI=true.

use crate::common;

use std::fs;
use std::path::Path;

use common::{ok_record, run, same_content, sparse_image};
use testkit::{allocated_bytes, code, free_bytes, names, skip, stderr, Mount};

fn mount_or_skip(test: &str, mount: Result<Mount, String>) -> Option<Mount> {
    match mount {
        Ok(m) => Some(m),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

/// Whether every extent `filefrag -v` lists for `path` is shared (and there is one).
fn every_extent_shared(path: &Path) -> Result<(), String> {
    let out = testkit::run(testkit::tool("filefrag").arg("-v").arg(path));
    let text = testkit::stdout(&out);
    if !out.status.success() {
        return Err(format!("filefrag failed: {text}{}", stderr(&out)));
    }
    // Extent lines start with "<n>:" after optional spaces.
    let extents: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| !n.is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    if extents.is_empty() {
        return Err(format!("no extents listed:\n{text}"));
    }
    match extents.iter().find(|l| !l.contains("shared")) {
        Some(l) => Err(format!("extent not shared: {l}\n{text}")),
        None => Ok(()),
    }
}

/// Clone a sparse image of `size` bytes on `fs` and check that the clone path was taken,
/// the content is the same, every extent is shared and no data blocks were spent.
fn clone_shares_blocks(fs: &Mount, size: u64, pieces: u64) {
    let (src, dst) = (fs.join("seed.img"), fs.join("work.img"));
    let data = sparse_image(&src, size, pieces, 1 << 20);
    let free_before = free_bytes(fs.path());
    let rec = ok_record(&run([
        "--reflink=always".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ]));
    let free_after = free_bytes(fs.path());
    assert_eq!(rec["method"], "clone");
    assert_eq!(rec["size_bytes"], size);
    assert_eq!(rec["data_bytes"], data);
    assert_eq!(rec["holes_kept"], true);
    every_extent_shared(&dst).unwrap();
    let spent = free_before.saturating_sub(free_after);
    assert!(
        spent < data / 4,
        "a clone of {data} bytes of data used {spent} bytes"
    );
    assert!(same_content(&src, &dst));

    // auto clones too, and -v says so.
    let auto = fs.join("auto.img");
    let out = run(["-v".as_ref(), src.as_os_str(), auto.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(": clone, "), "{}", stderr(&out));
}

#[test]
fn clone_on_xfs_shares_every_block_of_a_1gib_image() {
    const TEST: &str = "clone_on_xfs_shares_every_block_of_a_1gib_image";
    let Some(xfs) = mount_or_skip(
        TEST,
        Mount::loop_fs("xfs", &["-q", "-m", "reflink=1"], 512 << 20),
    ) else {
        return;
    };
    // 1 GiB apparent, 32 MiB of data scattered over it.
    clone_shares_blocks(&xfs, 1 << 30, 32);
}

#[test]
fn clone_on_btrfs_shares_every_block() {
    const TEST: &str = "clone_on_btrfs_shares_every_block";
    let Some(btrfs) = mount_or_skip(TEST, Mount::loop_fs("btrfs", &["-q"], 256 << 20)) else {
        return;
    };
    clone_shares_blocks(&btrfs, 256 << 20, 16);
}

#[test]
fn across_tmpfs_and_the_host_the_fallback_is_taken_and_reported() {
    const TEST: &str = "across_tmpfs_and_the_host_the_fallback_is_taken_and_reported";
    let Some(tmpfs) = mount_or_skip(TEST, Mount::tmpfs("64m")) else {
        return;
    };
    let host = testkit::TempDir::new();
    // Three pieces: few enough extents for any file system to hold them in the inode.
    let (src, dst) = (tmpfs.join("seed.img"), host.join("work.img"));
    let data = sparse_image(&src, 32 << 20, 3, 256 << 10);
    let out = run([
        "-v".as_ref(),
        "--json".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ]);
    let rec = ok_record(&out);
    let method = rec["method"].as_str().unwrap();
    assert!(
        method == "copy_file_range" || method == "read_write",
        "method {method}"
    );
    assert!(
        stderr(&out).contains(&format!(": {method}, ")),
        "{}",
        stderr(&out)
    );
    assert_eq!(rec["data_bytes"], data);
    assert_eq!(rec["holes_kept"], true);
    assert!(same_content(&src, &dst));
    assert!(allocated_bytes(&dst) <= allocated_bytes(&src));

    // And back, host to tmpfs.
    let back = tmpfs.join("back.img");
    let rec = ok_record(&run(["--json".as_ref(), dst.as_os_str(), back.as_os_str()]));
    assert_ne!(rec["method"], "clone");
    assert!(same_content(&src, &back));
    assert!(allocated_bytes(&back) <= allocated_bytes(&dst));

    // Where no clone is possible, --reflink=always refuses and leaves nothing.
    let never = host.join("never.img");
    let out = run([
        "--reflink=always".as_ref(),
        src.as_os_str(),
        never.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot share blocks here"),
        "{}",
        stderr(&out)
    );
    assert!(!never.exists());
}

#[test]
fn a_copy_that_fails_midway_leaves_nothing_at_dst() {
    const TEST: &str = "a_copy_that_fails_midway_leaves_nothing_at_dst";
    let Some(small) = mount_or_skip(TEST, Mount::tmpfs("4m")) else {
        return;
    };
    let host = testkit::TempDir::new();
    let src = host.join("seed.img");
    sparse_image(&src, 64 << 20, 8, 1 << 20);
    let dst = small.join("work.img");
    let out = run([src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert!(names(small.path()).is_empty(), "{:?}", names(small.path()));

    // With --force the old DST survives untouched and no temporary file is left.
    fs::write(&dst, b"old").unwrap();
    let out = run(["-f".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert_eq!(fs::read(&dst).unwrap(), b"old");
    assert_eq!(names(small.path()), ["work.img"]);
}
