//! The integration tests of clonecp, linked as one binary (one module per subject).

mod attacks;
mod clonecp;
mod common;
mod filesystems;
mod man;
mod races;
mod signals;
