//! The fuzz target's corpus replayed on stable, as an ordinary test: the e2fsprogs image
//! corpus (most images deliberately corrupt), every crash input kept in
//! `fuzz/regressions/read_image/`, and whatever a local cargo-fuzz run left in
//! `fuzz/corpus/read_image/` and `fuzz/artifacts/read_image/`, each through the fuzz target's
//! own body, `ext4fs::fuzzing::read_image`. A panic fails the test.

use std::fs;
use std::path::{Path, PathBuf};

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(list) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = list
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    out.sort();
    out
}

#[test]
fn kept_crash_inputs_replay_without_panic() {
    let fuzz = Path::new(FUZZ);
    let mut n = 0;
    for sub in ["regressions", "corpus", "artifacts"] {
        for input in files(&fuzz.join(sub).join("read_image")) {
            eprintln!("{}", input.display());
            ext4fs::fuzzing::read_image(&fs::read(&input).unwrap());
            n += 1;
        }
    }
    eprintln!("{n} inputs replayed");
}

#[test]
fn the_image_corpus_replays_through_the_fuzz_target() {
    let images = testkit::corpus_images("the_image_corpus_replays_through_the_fuzz_target");
    for gz in &images {
        ext4fs::fuzzing::read_image(&testkit::gunzip(gz));
    }
    eprintln!("{} images replayed", images.len());
}
