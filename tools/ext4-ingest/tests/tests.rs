//! The integration tests of ext4-ingest, linked as one binary (one module per subject).

mod budget;
mod common;
mod durable;
mod hostile;
mod image;
mod ingest;
mod signals;
mod sources;
mod tar;
mod tar_hostile;
mod verify;
