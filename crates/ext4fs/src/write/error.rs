//! The writer's errors: what the caller can act on, by kind.

use std::fmt;
use std::io;

/// Everything that can go wrong adding a tree to an image.
#[derive(Debug)]
pub enum WriteError {
    /// Reading or writing the image (or a source file) failed.
    Io(io::Error),
    /// The image has no free block left for what was asked.
    OutOfSpace,
    /// The image has no free inode left.
    OutOfInodes,
    /// The image uses a feature (or a layout) the writer does not handle, named here.
    Unsupported { feature: String },
    /// One entry cannot be added; the image is still consistent after [`finish`]
    /// (nothing of the entry was written).
    ///
    /// [`finish`]: crate::write::Writer::finish
    EntryRefused { name: Vec<u8>, why: String },
    /// The image is inconsistent (a bitmap, descriptor or inode out of range).
    Corrupt { reason: String },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "{e}"),
            WriteError::OutOfSpace => write!(f, "no space left in the image"),
            WriteError::OutOfInodes => write!(f, "no free inodes left in the image"),
            WriteError::Unsupported { feature } => {
                write!(f, "the writer does not handle the image's {feature}")
            }
            // The name is the caller's to show (see the reader's errors).
            WriteError::EntryRefused { why, .. } => write!(f, "entry refused: {why}"),
            WriteError::Corrupt { reason } => write!(f, "corrupt image: {reason}"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

impl From<crate::Error> for WriteError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Io(e) => WriteError::Io(e),
            crate::Error::UnsupportedFeature { feature } => WriteError::Unsupported {
                feature: format!("feature {feature}"),
            },
            other => WriteError::Corrupt {
                reason: other.to_string(),
            },
        }
    }
}

pub(crate) fn corrupt<T>(reason: String) -> Result<T, WriteError> {
    Err(WriteError::Corrupt { reason })
}

pub type WResult<T> = Result<T, WriteError>;
