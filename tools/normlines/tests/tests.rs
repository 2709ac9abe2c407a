//! The integration tests of normlines, linked as one binary (one module per subject).

mod cli;
mod man;
mod memory;
