//! The integration tests of work-seed, linked as one binary (one module per subject).

mod amplification;
mod attacks;
mod check;
mod common;
mod disk;
mod durable;
mod e2e;
mod kills;
mod makefile;
mod man;
mod races;
mod records;
mod routes;
mod scale;
mod scripts;
mod signals;
