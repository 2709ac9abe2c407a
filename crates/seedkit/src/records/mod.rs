//! The JSON records the tools print and read, defined once.
//!
//! Fields are snake_case and stable: new fields may be added, none is renamed or removed.
//! Byte-string fields follow the rule in [`crate::json`].

pub mod clonecp;
pub mod ingest;
pub mod ls;
pub mod manifest;
pub mod rdump;
pub mod seed_size;

pub use clonecp::{Clonecp, CopyMethod};
pub use ingest::Ingest;
pub use ls::{Change, LsDiff, LsEntry};
pub use manifest::{
    EntryKind, ManifestEntry, ManifestHeader, ManifestLine, Rdev, Timestamp, Xattr,
};
pub use rdump::{RdumpError, RdumpSummary};
pub use seed_size::SeedSize;
