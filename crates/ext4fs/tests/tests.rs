//! The integration tests of ext4fs, linked as one binary (one module per subject).

mod budget;
mod corpus;
mod dir_blocks;
mod dirhash;
mod fuzz_replay;
mod hostile;
mod mkfs_images;
mod write_errors;
mod write_holes;
mod write_matrix;
mod write_slack;
