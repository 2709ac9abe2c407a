//! Conventions shared by every tool of the work-seed toolkit.
//!
//! - [`cli`]: the `main` wrapper: one error line `<tool>: <what> '<path>': <cause>` on
//!   stderr, exit codes 0 (success), 1 (partial failure), 2 (usage or fatal error), and a
//!   quiet exit 0 on a broken pipe.
//! - [`interrupt`]: SIGINT, SIGTERM and SIGHUP: stop at the next check, undo, exit 128 + N.
//! - [`input`]: where a tool finds the tree or file it works on: its argument, or stdin
//!   holding a path line or a JSON record with a `path` field; `-` means stdin.
//! - [`holes`]: which zeros of a file stay holes when it is staged or copied.
//! - [`fields`]: `--format FIELDS`, chosen fields of a record as tab-separated text for
//!   shell scripts.
//! - [`json`]: how records are printed (one object per line) and the one rule for
//!   non-UTF-8 paths.
//! - [`output`]: where outputs are made: a checked directory, a private locked temporary,
//!   one durable rename.
//! - [`records`]: the record types, defined once so producers and consumers cannot drift.
//! - [`progress`]: progress lines on stderr, only when stderr is a terminal.
//! - [`quote`]: how names appear as text (diagnostics, listings, fields): one rule.
//! - [`diag`]: the bounds on diagnostics: long paths shortened, repeated warnings folded,
//!   their total and the errors a record keeps capped.
//! - [`sys`]: the descriptor-based system calls (no symlink followed), and the one
//!   `unsafe` block of the product (installing a signal handler). The workspace denies
//!   `unsafe_code` and only `sys` allows it, so a new `unsafe` anywhere else fails the build.
//! - [`tar`]: a tar stream read member by member within bounds, and the placing of its
//!   names, shared by the tools that write it and measure it.
//! - [`walk`]: the tree walk built on them (any depth, few descriptors, nothing followed).

pub mod base64;
pub mod cli;
pub mod diag;
pub mod fields;
pub mod holes;
pub mod input;
pub mod interrupt;
pub mod json;
pub mod output;
pub mod progress;
pub mod quote;
pub mod records;
pub mod sys;
pub mod tar;
pub mod walk;

pub use cli::{inform, run, warn, Status};
pub use quote::quote;
