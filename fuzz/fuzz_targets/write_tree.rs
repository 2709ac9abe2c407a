//! A random tree written into a random image: the input's first byte picks one of the
//! images `ext4fs::fuzzing::WRITE_BASES` describes (each made once per process by
//! `mkfs.ext4`, since mkfs is far too slow to run per input), the rest drives the writer.
//! The body is `ext4fs::fuzzing::write_tree`, which reads the image back; a finished image
//! must then pass `e2fsck -fn`. `crates/ext4fs/tests/fuzz_replay.rs` replays every kept
//! input the same way, on stable.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The base images, made once: their bytes, copied into a scratch file for each input.
fn bases() -> &'static (PathBuf, Vec<Vec<u8>>) {
    static BASES: OnceLock<(PathBuf, Vec<Vec<u8>>)> = OnceLock::new();
    BASES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ext4fs-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("a scratch directory");
        let images = ext4fs::fuzzing::WRITE_BASES
            .iter()
            .map(|options| {
                let image = dir.join("base");
                testkit::mkfs_from_tree(&image, "8M", None, options);
                fs::read(&image).expect("read a base image")
            })
            .collect();
        (dir.join("scratch"), images)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (scratch, images) = bases();
    fs::write(scratch, &images[usize::from(pick) % images.len()]).expect("write the scratch image");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(scratch)
        .expect("open the scratch image");
    if ext4fs::fuzzing::write_tree(rest, &file) {
        drop(file);
        if let Err(e) = testkit::e2fsck_clean(scratch) {
            panic!("{e}");
        }
    }
});
