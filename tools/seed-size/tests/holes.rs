//! Holes cost an ext4 image nothing but extent entries, so they do not count: a 4 MiB
//! image holding one empty file that says 2 TiB (e2fsck passes it) made work-seed build a
//! 4 TiB seed with 268 million inodes, write 1.1 GB of the host's disk, and then every
//! work disk under 4 TiB refused. The rule now counts what a file holds.

use std::fs;
use std::process::Command;

use seedkit::records::SeedSize;
use testkit::{code, craft, run, stderr, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_seed-size");
const MIB: u64 = 1 << 20;
const TIB: u64 = 1 << 40;

fn record(cmd: &mut Command) -> SeedSize {
    let out = run(cmd.arg("--json"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    seedkit::records::parse(&out.stdout).expect("one seed-size record")
}

#[test]
fn a_sparse_file_of_two_tib_in_a_staged_tree_counts_what_it_holds() {
    let t = TempDir::new();
    let tree = t.join("tree");
    fs::create_dir(&tree).unwrap();
    testkit::write_at(&tree.join("huge"), 2 * TIB - 4, b"end!");
    fs::write(tree.join("small"), vec![1u8; 1 << 20]).unwrap();
    let r = record(Command::new(BIN).arg(&tree));
    assert_eq!(
        r.counts.bytes,
        2 * TIB + MIB,
        "the apparent sizes are still reported"
    );
    assert_eq!(r.size_bytes, 512 * MIB);
}

#[test]
fn a_sparse_file_of_two_tib_in_an_image_counts_what_it_holds() {
    if !testkit::need(
        "a_sparse_file_of_two_tib_in_an_image_counts_what_it_holds",
        &["mke2fs", "debugfs", "e2fsck"],
    ) {
        return;
    }
    let t = TempDir::new();
    let image = craft::sparse_file_of(t.path(), 2 * TIB);
    testkit::e2fsck_clean(&image).unwrap();
    let r = record(
        Command::new(BIN)
            .arg("--from-image")
            .arg(&image)
            .arg("/root"),
    );
    assert_eq!(r.counts.bytes, 2 * TIB);
    assert_eq!(r.size_bytes, 512 * MIB);
}
