//! The integration tests of work-seed, linked as one binary (one module per subject).

mod attacks;
mod check;
mod common;
mod disk;
mod e2e;
mod makefile;
mod man;
mod races;
mod records;
mod scale;
mod signals;
