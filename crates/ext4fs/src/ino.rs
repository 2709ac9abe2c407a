//! Inode numbers as a type of their own: never 0, never mixed up with a count, a block
//! number or an offset.

use std::fmt;
use std::num::NonZeroU32;

/// An inode number (1-based; 0 means "no inode" on disk and is not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(NonZeroU32);

impl Ino {
    /// The root directory.
    pub const ROOT: Ino = Ino(NonZeroU32::MIN.saturating_add(crate::format::ROOT_INO - 1));

    /// The inode `n`, `None` for 0.
    pub const fn new(n: u32) -> Option<Ino> {
        match NonZeroU32::new(n) {
            Some(n) => Some(Ino(n)),
            None => None,
        }
    }

    /// The number, as stored on disk.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Ino> for u32 {
    fn from(ino: Ino) -> u32 {
        ino.get()
    }
}

impl From<Ino> for u64 {
    fn from(ino: Ino) -> u64 {
        u64::from(ino.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_inode() {
        assert_eq!(Ino::new(0), None);
        assert_eq!(Ino::new(2), Some(Ino::ROOT));
        assert_eq!(Ino::ROOT.get(), 2);
        assert_eq!(Ino::ROOT.to_string(), "2");
    }
}
