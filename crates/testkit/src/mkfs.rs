//! The mkfs feature matrix: the `mke2fs` options of every image configuration the tests
//! read, write and extract, each named once. A test module runs the ones it covers with
//! [`mkfs_matrix!`](crate::mkfs_matrix), which makes one `#[test]` per name, so that a
//! failure names its configuration.
#![allow(non_upper_case_globals)]

/// mke2fs's defaults for ext4 (for a small image: 1 KiB or 4 KiB blocks, as mke2fs.conf says).
pub const ext4: &[&str] = &["-t", "ext4"];
pub const ext4_1k: &[&str] = &["-t", "ext4", "-b", "1024"];
pub const ext4_2k: &[&str] = &["-t", "ext4", "-b", "2048"];
pub const ext4_4k: &[&str] = &["-t", "ext4", "-b", "4096"];
/// 128-byte inodes: no room for nanoseconds, creation times or in-inode xattrs.
pub const ext4_inode_128: &[&str] = &["-t", "ext4", "-I", "128"];
pub const ext4_inline_data: &[&str] = &["-t", "ext4", "-O", "inline_data"];
/// Block maps instead of extents (64bit needs extents).
pub const ext4_without_extents: &[&str] = &["-t", "ext4", "-O", "^extent,^64bit"];
pub const ext4_without_metadata_csum: &[&str] = &["-t", "ext4", "-O", "^metadata_csum"];
pub const ext4_without_64bit: &[&str] = &["-t", "ext4", "-O", "^64bit"];
pub const ext4_without_flex_bg: &[&str] = &["-t", "ext4", "-O", "^flex_bg"];
pub const ext4_without_dir_index: &[&str] = &["-t", "ext4", "-O", "^dir_index"];
pub const ext4_orphan_file: &[&str] = &["-t", "ext4", "-O", "orphan_file"];
pub const ext4_metadata_csum_seed: &[&str] = &["-t", "ext4", "-O", "metadata_csum_seed"];
pub const ext4_large_dir: &[&str] = &["-t", "ext4", "-O", "large_dir"];
/// 64 KiB blocks and meta_bg (no resize inode): needs an image of 64 MiB or more.
pub const ext4_meta_bg_64k: &[&str] = &["-t", "ext4", "-b", "65536", "-O", "meta_bg,^resize_inode"];
pub const ext3: &[&str] = &["-t", "ext3"];
pub const ext2: &[&str] = &["-t", "ext2"];
pub const ext2_1k: &[&str] = &["-t", "ext2", "-b", "1024"];

/// One `#[test]` per named configuration of [`crate::mkfs`], each calling
/// `check(options, size)`:
/// `testkit::mkfs_matrix!(check, "32M": ext4, ext4_1k, ext3);`
#[macro_export]
macro_rules! mkfs_matrix {
    ($check:path, $size:literal: $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($crate::mkfs::$name, $size);
            }
        )+
    };
}
