//! The integration tests of ext4-ls, linked as one binary (one module per subject).

mod budget;
mod cli;
mod common;
mod hostile;
mod man;
mod oracles;
