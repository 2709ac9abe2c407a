//! The integration tests of seed-size, linked as one binary (one module per subject).

mod cli;
mod man;
mod sources;
