//! The integration tests of completions, linked as one binary (one module per subject).

mod completions;
