//! The ext2/ext3/ext4 on-disk format, read and written: a memory-safe reader of images, and
//! (module [`write`](mod@write)) a writer that adds a tree to an image made by mkfs, over the same
//! superblock, descriptor, inode, extent and xattr definitions and checksums.
//!
//! It reads an image through a [`File`](std::fs::File) with positioned reads (no mmap, no `unsafe`) and
//! treats every byte as hostile: each length, offset, count and block number is checked
//! before use, allocations are bounded by the block size or by what the image can hold, tree
//! walks are depth-bounded and refuse blocks used twice, and every failure is an [`Error`]
//! naming the inode or block. Checksums (metadata_csum) are verified on the superblock,
//! group descriptors, inodes, extent blocks, directory blocks (leaves and htree nodes) and
//! xattr blocks.
//!
//! ```no_run
//! let fs = ext4fs::Fs::open(std::fs::File::open("rootfs.ext4")?)?;
//! let dir = fs.inode(fs.lookup(b"/etc")?)?;
//! for entry in fs.read_dir(&dir)? {
//!     println!("{}", String::from_utf8_lossy(&entry.name));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every open image has a work budget ([`default_budget`] of its allocated size): reading
//! costs what it reads, no metadata block serves two inodes, and past the budget every call
//! fails with [`Error::OverBudget`], so no image makes the reader work, or hold memory, much
//! beyond its size. Path lookups go through a directory's hash index where it has one.
//!
//! What the reader does not do: replay the journal ([`Fs::needs_recovery`] says when one should
//! be), or read encrypted or compressed file systems (refused by feature name).
//!
//! # What is public
//!
//! - Reading: [`Fs`] (open an image, [`Fs::inode`], [`Fs::read_dir`], [`Fs::lookup`],
//!   [`Fs::content`], [`Fs::for_each_chunk`], [`Fs::xattrs`], ...; its budget:
//!   [`Fs::allocated_bytes`], [`Fs::budget`], [`Fs::set_budget`], [`Fs::work_done`],
//!   [`default_budget`]) and the values it gives:
//!   [`Superblock`], [`Inode`], [`DirEntry`], [`Run`] and [`Backing`], [`Content`],
//!   [`Xattr`], [`Time`], and the flag types their fields use ([`Compat`], [`Incompat`],
//!   [`RoCompat`], [`State`], [`SbFlags`], [`InodeFlags`]).
//! - Types every tool of the workspace shares: [`Ino`] (an inode number, never 0) and
//!   [`EntryKind`] (what a file is: its mode bits, its directory entry type byte, and,
//!   with the `serde` feature, the name the JSON records give it).
//! - [`write`](mod@write): the writer ([`write::Writer`]) and the directory block builder it uses
//!   ([`write::build_dir_blocks`]), whose layout rules `docs/ext4-htree.md` and
//!   `docs/ext4-writer-layout.md` write down.
//! - [`dirhash`]: the hashes that order indexed directories (legacy, half-MD4, TEA).
//! - [`Error`] and [`Checksummed`], the reader's errors; [`write::WriteError`], the
//!   writer's.
//!
//! Everything else is private: the on-disk layout (every offset, magic number and flag,
//! defined once in `format`), the checksums (one function per structure in `csum`, used
//! by the reader to verify and by the writer to set), and the parsing of each structure.

#![forbid(unsafe_code)]

mod budget;
mod crc;
mod csum;
mod dir;
pub mod dirhash;
mod error;
mod format;
mod fs;
#[doc(hidden)]
pub mod fuzzing;
mod ino;
mod inode;
mod kind;
mod le;
mod map;
mod superblock;
pub mod write;
mod xattr;

pub use budget::{default_budget, BUDGET_FLOOR, BUDGET_MULTIPLE};
pub use dir::DirEntry;
pub use error::{Checksummed, Error, Result};
pub use format::{Compat, Incompat, InodeFlags, RoCompat, SbFlags, State};
pub use fs::{Content, Fs, SYMLINK_MAX};
pub use ino::Ino;
pub use inode::{Inode, Time};
pub use kind::EntryKind;
pub use map::{Backing, Run};
pub use superblock::Superblock;
pub use xattr::Xattr;
