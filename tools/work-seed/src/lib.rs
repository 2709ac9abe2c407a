//! The work-seed build is the POSIX sh script `work-seed` beside this crate (installed by
//! `make install`), which chains `ext4-rdump`, `seed-size`, `mkfs.ext4`, `ext4-ingest` and
//! `e2fsck`. This crate holds its end-to-end tests, which run the script with the
//! workspace's freshly built tools on real images; and the script `work-disk`, which makes a
//! VM's work disk from a seed (clonecp, truncate, resize2fs, e2fsck).
