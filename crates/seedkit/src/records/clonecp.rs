use serde::{Deserialize, Serialize};

use super::Record;
use crate::json::Bytes;

/// How `clonecp` copied the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyMethod {
    /// FICLONE: the destination shares every block of the source.
    Clone,
    /// `copy_file_range(2)` over the source's data regions (the kernel may copy on the
    /// server or share blocks).
    CopyFileRange,
    /// `pread`/`pwrite` over the source's data regions.
    ReadWrite,
}

impl CopyMethod {
    /// The name used in JSON and in `clonecp -v`.
    pub fn name(self) -> &'static str {
        match self {
            CopyMethod::Clone => "clone",
            CopyMethod::CopyFileRange => "copy_file_range",
            CopyMethod::ReadWrite => "read_write",
        }
    }
}

/// What `clonecp --json` prints for a finished copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clonecp {
    pub src: Bytes,
    pub dst: Bytes,
    /// The method that finished the copy (`copy_file_range` when there was neither data to
    /// copy nor a clone).
    pub method: CopyMethod,
    /// Apparent size of the copy in bytes.
    pub size_bytes: u64,
    /// Bytes in the source's data regions: written by the fallbacks, shared by a clone.
    pub data_bytes: u64,
    /// Whether the source's holes are holes in the copy (false only when the file system
    /// could not tell data from holes and every byte was written).
    pub holes_kept: bool,
    /// Whether an existing destination was replaced (`--force`).
    pub replaced: bool,
    /// Wall-clock time of the whole copy, flushes included.
    pub seconds: f64,
}

impl Record for Clonecp {
    const FORMAT: &'static str = "clonecp";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_match_json() {
        for m in [
            CopyMethod::Clone,
            CopyMethod::CopyFileRange,
            CopyMethod::ReadWrite,
        ] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
        }
    }
}
