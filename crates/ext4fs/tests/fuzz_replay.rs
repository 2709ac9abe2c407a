//! The fuzz target's corpus replayed on stable, as an ordinary test: every input kept in
//! `fuzz/regressions/read_image/`, whatever a local cargo-fuzz run left in
//! `fuzz/corpus/read_image/` and `fuzz/artifacts/read_image/`, and the e2fsprogs image
//! corpus (most images deliberately corrupt), each through the fuzz target's own body,
//! `ext4fs::fuzzing::read_image`. A panic fails the test, and so does replaying nothing.

use std::fs;
use std::path::{Path, PathBuf};

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// The inputs in `dir` (its README left out), sorted; none when it does not exist.
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

/// The bytes of a kept input, unpacked when its name ends in `.gz`.
fn input(path: &Path) -> Vec<u8> {
    if path.extension().is_some_and(|x| x == "gz") {
        testkit::gunzip(path)
    } else {
        fs::read(path).unwrap()
    }
}

#[test]
fn every_kept_input_and_corpus_image_replays_without_panic() {
    let fuzz = Path::new(FUZZ);
    let regressions = files(&fuzz.join("regressions/read_image"));
    assert!(
        !regressions.is_empty(),
        "no input in fuzz/regressions/read_image: the replay would test nothing kept"
    );
    let mut replayed = 0;
    for sub in ["regressions", "corpus", "artifacts"] {
        for path in files(&fuzz.join(sub).join("read_image")) {
            eprintln!("{}", path.display());
            ext4fs::fuzzing::read_image(&input(&path));
            replayed += 1;
        }
    }
    let images = testkit::corpus_images("every_kept_input_and_corpus_image_replays_without_panic");
    for gz in &images {
        ext4fs::fuzzing::read_image(&testkit::gunzip(gz));
        replayed += 1;
    }
    eprintln!("{replayed} inputs replayed");
    assert!(replayed > 0, "nothing replayed");
}
