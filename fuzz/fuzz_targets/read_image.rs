//! Any bytes as an image: open it and read everything reachable from the root. The body is
//! `ext4fs::fuzzing::read_image`, which `crates/ext4fs/tests/fuzz_replay.rs` also
//! runs on the corpus and on every kept crash input, on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ext4fs::fuzzing::read_image(data);
});
