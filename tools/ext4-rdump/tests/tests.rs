//! The integration tests of ext4-rdump, linked as one binary (one module per subject).

mod archive;
mod bad_input;
mod budget;
mod common;
mod corpus;
mod details;
mod extract;
mod hostile;
mod man;
mod security;
mod signals;
mod unprivileged;
