//! The work-seed build is the POSIX sh script `work-seed` beside this crate (installed by
//! `make install`), which chains `ext4-rdump`, `seed-size`, `mkfs.ext4`, `ext4-ingest` and
//! `e2fsck`. This crate holds its end-to-end tests, which run the script with the
//! workspace's freshly built tools on real images.
