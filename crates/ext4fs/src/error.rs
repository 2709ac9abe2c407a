//! The reader's errors: one typed enum, each message naming the inode or block concerned.

use std::fmt;
use std::io;

use crate::Ino;

/// What a metadata checksum protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksummed {
    Superblock,
    GroupDescriptor { group: u32 },
    Inode { ino: Ino },
    ExtentBlock { ino: Ino, block: u64 },
    DirectoryBlock { ino: Ino, block: u64 },
    XattrBlock { ino: Ino, block: u64 },
}

impl fmt::Display for Checksummed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Checksummed::Superblock => write!(f, "the superblock"),
            Checksummed::GroupDescriptor { group } => {
                write!(f, "the descriptor of block group {group}")
            }
            Checksummed::Inode { ino } => write!(f, "inode {ino}"),
            Checksummed::ExtentBlock { ino, block } => {
                write!(f, "extent block {block} of inode {ino}")
            }
            Checksummed::DirectoryBlock { ino, block } => {
                write!(f, "directory block {block} of inode {ino}")
            }
            Checksummed::XattrBlock { ino, block } => {
                write!(f, "extended attribute block {block} of inode {ino}")
            }
        }
    }
}

/// Everything that can go wrong reading an image.
#[derive(Debug)]
pub enum Error {
    /// Reading the image file failed.
    Io(io::Error),
    /// The image ended before a structure it must hold.
    ShortImage { offset: u64, len: usize },
    /// No ext2/3/4 superblock (bad magic or impossible geometry).
    NotExt4 { reason: String },
    /// The file system uses an incompatible feature this reader does not support.
    UnsupportedFeature { feature: &'static str },
    /// One inode uses something this reader does not support.
    Unsupported { ino: Ino, what: &'static str },
    /// A superblock field is out of range.
    BadSuperblock { reason: String },
    /// A group descriptor is out of range.
    BadGroupDescriptor { group: u32, reason: String },
    /// An inode is corrupt or cannot be read.
    BadInode { ino: Ino, reason: String },
    /// A block that an inode refers to is corrupt.
    BadBlock {
        ino: Ino,
        block: u64,
        reason: String,
    },
    /// A metadata checksum does not match.
    ChecksumMismatch { what: Checksummed },
    /// A path lookup failed: the component was not found.
    NotFound { path: Vec<u8> },
    /// A path lookup met something that is not a directory.
    NotADirectory { path: Vec<u8> },
    /// Too many symbolic links while resolving a path.
    SymlinkLoop { path: Vec<u8> },
    /// A metadata block of an inode's map or directory already belongs to another inode
    /// (no two inodes share one in a sound file system): this inode is not read.
    Claimed { ino: Ino, block: u64, owner: Ino },
    /// The work budget of the image is spent: nothing more is read (every later call
    /// fails the same way).
    OverBudget { limit: u64 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::ShortImage { offset, len } => {
                write!(
                    f,
                    "image too short: {len} bytes at offset {offset} are missing"
                )
            }
            Error::NotExt4 { reason } => write!(f, "not an ext2/ext3/ext4 file system: {reason}"),
            Error::UnsupportedFeature { feature } => {
                write!(f, "unsupported file system feature: {feature}")
            }
            Error::Unsupported { ino, what } => write!(f, "inode {ino}: unsupported: {what}"),
            Error::BadSuperblock { reason } => write!(f, "corrupt superblock: {reason}"),
            Error::BadGroupDescriptor { group, reason } => {
                write!(f, "corrupt descriptor of block group {group}: {reason}")
            }
            Error::BadInode { ino, reason } => write!(f, "corrupt inode {ino}: {reason}"),
            Error::BadBlock { ino, block, reason } => {
                write!(f, "corrupt block {block} of inode {ino}: {reason}")
            }
            Error::ChecksumMismatch { what } => write!(f, "checksum mismatch in {what}"),
            // The path is left to the caller, who shows it as it shows names (in the tools:
            // seedkit::quote); a format library does not decide how names look as text.
            Error::NotFound { .. } => write!(f, "no such file or directory in the image"),
            Error::NotADirectory { .. } => write!(f, "not a directory in the image"),
            Error::SymlinkLoop { .. } => {
                write!(f, "too many levels of symbolic links in the image")
            }
            Error::Claimed { ino, block, owner } => write!(
                f,
                "corrupt block {block} of inode {ino}: it belongs to inode {owner} already"
            ),
            Error::OverBudget { limit } => write!(
                f,
                "the image needs more work than its budget of {limit} bytes of reading \
                 (a damaged or hostile image?)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
