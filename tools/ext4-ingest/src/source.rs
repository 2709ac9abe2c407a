//! Where the entries come from: one small trait, and one file per kind that implements it.
//!
//! - a host tree ([`HostTree`], `tree.rs`): walked through descriptors, merged with the
//!   `ext4-rdump` manifest beside it;
//! - a directory of another image (`from_image.rs`): read with the workspace's reader;
//! - a tar stream (`from_tar.rs`): read once, in order.
//!
//! A source hands its entries to [`Ingest`], which writes each as it comes: in a walk's
//! order through [`Ingest::add`](crate::Ingest) (directories closed as the walk leaves
//! them), or placed in any order (a tar stream). A fourth kind is one more file.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::Ingest;

pub(crate) trait EntrySource {
    /// The file this source reads, if it reads one (a source that is the image being
    /// written is refused).
    fn file(&self) -> Option<&Path>;

    /// Give every entry to `ingest`, which writes it.
    fn feed(&mut self, ingest: &mut Ingest<'_>) -> Result<()>;
}

/// A host tree, walked through descriptors ([`crate::tree::walk`]), with its manifest.
pub(crate) struct HostTree {
    pub root: PathBuf,
}

impl EntrySource for HostTree {
    fn file(&self) -> Option<&Path> {
        None
    }

    fn feed(&mut self, ingest: &mut Ingest<'_>) -> Result<()> {
        crate::tree::walk(&self.root, &mut |item| {
            seedkit::interrupt::check()?;
            ingest.take(item)
        })?;
        ingest.manifest_rest()
    }
}
