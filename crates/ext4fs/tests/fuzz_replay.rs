//! The fuzz targets' corpora replayed on stable, as ordinary tests: every input kept in
//! `fuzz/regressions/<target>/`, whatever a local cargo-fuzz run left in
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`, and for the reader the
//! e2fsprogs image corpus (most images deliberately corrupt), each through the fuzz
//! target's own body (`ext4fs::fuzzing`). A panic fails the test, and so does replaying
//! nothing; a tree the writer finished must pass `e2fsck -fn`.

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

#[test]
fn every_kept_writer_input_replays_to_an_image_e2fsck_passes() {
    let test = "every_kept_writer_input_replays_to_an_image_e2fsck_passes";
    if !testkit::need(test, &["mke2fs", "e2fsck"]) {
        return;
    }
    let fuzz = Path::new(FUZZ);
    let inputs: Vec<PathBuf> = ["regressions", "corpus", "artifacts"]
        .iter()
        .flat_map(|sub| files(&fuzz.join(sub).join("write_tree")))
        .collect();
    assert!(
        !inputs.is_empty(),
        "no input in fuzz/regressions/write_tree: the replay would test nothing kept"
    );
    let t = testkit::TempDir::new();
    let bases: Vec<Vec<u8>> = ext4fs::fuzzing::WRITE_BASES
        .iter()
        .map(|options| {
            let image = t.join("base");
            testkit::mkfs_from_tree(&image, "8M", None, options);
            fs::read(&image).unwrap()
        })
        .collect();
    let scratch = t.join("scratch");
    let mut finished = 0;
    for path in &inputs {
        let data = input(path);
        let Some((&pick, rest)) = data.split_first() else {
            continue;
        };
        fs::write(&scratch, &bases[usize::from(pick) % bases.len()]).unwrap();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&scratch)
            .unwrap();
        if ext4fs::fuzzing::write_tree(rest, &file) {
            drop(file);
            if let Err(e) = testkit::e2fsck_clean(&scratch) {
                panic!("{}: {e}", path.display());
            }
            finished += 1;
        }
    }
    eprintln!(
        "{} writer inputs replayed, {finished} finished",
        inputs.len()
    );
    assert!(finished > 0, "no kept input made a finished image");
}
