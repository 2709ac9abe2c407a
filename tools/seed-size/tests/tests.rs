//! The integration tests of seed-size, linked as one binary (one module per subject).

mod cli;
mod holes;
mod man;
mod sources;
mod tar;
