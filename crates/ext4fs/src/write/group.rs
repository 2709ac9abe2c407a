//! Block groups: descriptors, bitmaps, allocation of blocks and inodes, and writing them
//! back with their checksums (crc32c with metadata_csum, crc16 with gdt_csum alone).

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::error::{corrupt, WResult, WriteError};
use crate::csum;
use crate::format::{gd, BgFlags};
use crate::le::{put_u16, u16_at, u32_at};
use crate::superblock::Superblock;
use crate::Ino;

/// The image file, its superblock and the state of every group.
pub(crate) struct Groups {
    pub file: File,
    /// The superblock as it will be written back: the writer changes its free counts and
    /// read-only compatible features.
    pub sb: Superblock,
    /// Every descriptor, `desc_size` bytes each, as on disk.
    descs: Vec<u8>,
    block_bitmaps: Vec<Option<Vec<u8>>>,
    inode_bitmaps: Vec<Option<Vec<u8>>>,
    /// Where the next block search starts (contiguous, in call order).
    block_cursor: u64,
    /// Whether the search wrapped around once already.
    wrapped: bool,
    inode_cursor: u32,
}

impl Groups {
    pub fn open(file: File, sb: Superblock) -> WResult<Groups> {
        let bs = u64::from(sb.block_size);
        let desc_bytes = u64::from(sb.group_count) * u64::from(sb.desc_size);
        let desc_blocks = desc_bytes.div_ceil(bs);
        let first = u64::from(sb.first_data_block) + 1;
        if first + desc_blocks > sb.blocks_count {
            return corrupt(format!("{desc_blocks} descriptor blocks"));
        }
        let len = usize::try_from(desc_blocks * bs).map_err(|_| WriteError::Corrupt {
            reason: "descriptor table too large".into(),
        })?;
        let mut descs = vec![0u8; len];
        file.read_exact_at(&mut descs, first * bs)?;
        descs.truncate(desc_bytes as usize);
        let n = sb.group_count as usize;
        let g = Groups {
            file,
            descs,
            block_bitmaps: vec![None; n],
            inode_bitmaps: vec![None; n],
            block_cursor: u64::from(sb.first_data_block),
            wrapped: false,
            inode_cursor: sb.first_ino,
            sb,
        };
        for group in 0..g.sb.group_count {
            g.check_group(group)?;
        }
        Ok(g)
    }

    fn desc(&self, group: u32) -> &[u8] {
        let ds = self.sb.desc_size as usize;
        let at = group as usize * ds;
        &self.descs[at..at + ds]
    }

    fn desc_mut(&mut self, group: u32) -> &mut [u8] {
        let ds = self.sb.desc_size as usize;
        let at = group as usize * ds;
        &mut self.descs[at..at + ds]
    }

    fn wide(&self) -> bool {
        self.sb.desc_size >= gd::SIZE_64BIT
    }

    fn get32(&self, group: u32, lo: usize, hi: usize) -> u64 {
        let d = self.desc(group);
        let mut v = u64::from(u32_at(d, lo));
        if self.wide() {
            v |= u64::from(u32_at(d, hi)) << 32;
        }
        v
    }

    fn get16(&self, group: u32, lo: usize, hi: usize) -> u32 {
        let d = self.desc(group);
        let mut v = u32::from(u16_at(d, lo));
        if self.wide() {
            v |= u32::from(u16_at(d, hi)) << 16;
        }
        v
    }

    fn set16(&mut self, group: u32, lo: usize, hi: usize, v: u32) {
        let wide = self.wide();
        let d = self.desc_mut(group);
        put_u16(d, lo, v as u16);
        if wide {
            put_u16(d, hi, (v >> 16) as u16);
        }
    }

    pub fn block_bitmap_at(&self, group: u32) -> u64 {
        self.get32(group, gd::BLOCK_BITMAP_LO, gd::BLOCK_BITMAP_HI)
    }
    pub fn inode_bitmap_at(&self, group: u32) -> u64 {
        self.get32(group, gd::INODE_BITMAP_LO, gd::INODE_BITMAP_HI)
    }
    pub fn inode_table_at(&self, group: u32) -> u64 {
        self.get32(group, gd::INODE_TABLE_LO, gd::INODE_TABLE_HI)
    }
    pub fn free_blocks(&self, group: u32) -> u32 {
        self.get16(group, gd::FREE_BLOCKS_COUNT_LO, gd::FREE_BLOCKS_COUNT_HI)
    }
    fn set_free_blocks(&mut self, group: u32, n: u32) {
        self.set16(group, gd::FREE_BLOCKS_COUNT_LO, gd::FREE_BLOCKS_COUNT_HI, n);
    }
    pub fn free_inodes(&self, group: u32) -> u32 {
        self.get16(group, gd::FREE_INODES_COUNT_LO, gd::FREE_INODES_COUNT_HI)
    }
    fn set_free_inodes(&mut self, group: u32, n: u32) {
        self.set16(group, gd::FREE_INODES_COUNT_LO, gd::FREE_INODES_COUNT_HI, n);
    }
    fn used_dirs(&self, group: u32) -> u32 {
        self.get16(group, gd::USED_DIRS_COUNT_LO, gd::USED_DIRS_COUNT_HI)
    }
    fn set_used_dirs(&mut self, group: u32, n: u32) {
        self.set16(group, gd::USED_DIRS_COUNT_LO, gd::USED_DIRS_COUNT_HI, n);
    }
    fn itable_unused(&self, group: u32) -> u32 {
        self.get16(group, gd::ITABLE_UNUSED_LO, gd::ITABLE_UNUSED_HI)
    }
    fn set_itable_unused(&mut self, group: u32, n: u32) {
        self.set16(group, gd::ITABLE_UNUSED_LO, gd::ITABLE_UNUSED_HI, n);
    }
    pub fn flags(&self, group: u32) -> BgFlags {
        BgFlags::from_bits_retain(u16_at(self.desc(group), gd::FLAGS))
    }
    /// Clear `flags` of a group (an `*_UNINIT` flag once the group is used).
    fn clear_flags(&mut self, group: u32, flags: BgFlags) {
        let left = self.flags(group).difference(flags);
        put_u16(self.desc_mut(group), gd::FLAGS, left.bits());
    }

    /// Blocks in `group` (the last one may be short).
    fn blocks_in(&self, group: u32) -> u64 {
        let first = self.sb.group_first_block(group);
        (self.sb.blocks_count - first).min(u64::from(self.sb.blocks_per_group))
    }

    /// A descriptor's locations and counts must be in range before anything trusts them.
    fn check_group(&self, group: u32) -> WResult<()> {
        let n = self.sb.blocks_count;
        let bad = |what: &str| {
            corrupt(format!(
                "descriptor of block group {group}: {what} out of range"
            ))
        };
        if !(1..n).contains(&self.block_bitmap_at(group)) {
            return bad("block bitmap");
        }
        if !(1..n).contains(&self.inode_bitmap_at(group)) {
            return bad("inode bitmap");
        }
        let it = self.inode_table_at(group);
        if it == 0
            || it
                .checked_add(self.sb.inode_table_blocks())
                .is_none_or(|e| e > n)
        {
            return bad("inode table");
        }
        if u64::from(self.free_blocks(group)) > self.blocks_in(group) {
            return bad("free block count");
        }
        if self.free_inodes(group) > self.sb.inodes_per_group
            || self.itable_unused(group) > self.sb.inodes_per_group
        {
            return bad("free inode count");
        }
        Ok(())
    }

    /// Blocks of `group` that hold metadata of any group: superblock and descriptor copies,
    /// reserved descriptor blocks, and (with flex_bg, anyone's) bitmaps and inode tables.
    fn metadata_in(&self, group: u32) -> Vec<(u64, u64)> {
        let start = self.sb.group_first_block(group);
        let end = start + self.blocks_in(group);
        let mut out = Vec::new();
        if self.sb.group_has_super(group) {
            let gdt = u64::from(self.sb.group_count).div_ceil(u64::from(self.sb.descs_per_block()));
            out.push((start, 1 + gdt + u64::from(self.sb.reserved_gdt_blocks)));
        }
        let tb = self.sb.inode_table_blocks();
        for g in 0..self.sb.group_count {
            for (at, len) in [
                (self.block_bitmap_at(g), 1),
                (self.inode_bitmap_at(g), 1),
                (self.inode_table_at(g), tb),
            ] {
                if at < end && at + len > start {
                    let s = at.max(start);
                    out.push((s, (at + len).min(end) - s));
                }
            }
        }
        out
    }

    fn load_block_bitmap(&mut self, group: u32) -> WResult<()> {
        if self.block_bitmaps[group as usize].is_some() {
            return Ok(());
        }
        let bs = self.sb.block_size as usize;
        let start = self.sb.group_first_block(group);
        let meta = self.metadata_in(group);
        let uninit = self.sb.group_csums() && self.flags(group).contains(BgFlags::BLOCK_UNINIT);
        let bitmap = if uninit {
            let mut b = vec![0u8; bs];
            for &(at, len) in &meta {
                for blk in at..at + len {
                    set_bit(&mut b, (blk - start) as usize);
                }
            }
            for bit in self.blocks_in(group) as usize..bs * 8 {
                set_bit(&mut b, bit);
            }
            b
        } else {
            let mut b = vec![0u8; bs];
            self.file
                .read_exact_at(&mut b, self.block_bitmap_at(group) * bs as u64)?;
            for &(at, len) in &meta {
                for blk in at..at + len {
                    if !bit(&b, (blk - start) as usize) {
                        return corrupt(format!(
                            "block bitmap of group {group} marks metadata block {blk} free"
                        ));
                    }
                }
            }
            b
        };
        self.block_bitmaps[group as usize] = Some(bitmap);
        Ok(())
    }

    fn load_inode_bitmap(&mut self, group: u32) -> WResult<()> {
        if self.inode_bitmaps[group as usize].is_some() {
            return Ok(());
        }
        let bs = self.sb.block_size as usize;
        let uninit = self.sb.group_csums() && self.flags(group).contains(BgFlags::INODE_UNINIT);
        let bitmap = if uninit {
            let mut b = vec![0u8; bs];
            for bit in self.sb.inodes_per_group as usize..bs * 8 {
                set_bit(&mut b, bit);
            }
            b
        } else {
            let mut b = vec![0u8; bs];
            self.file
                .read_exact_at(&mut b, self.inode_bitmap_at(group) * bs as u64)?;
            b
        };
        self.inode_bitmaps[group as usize] = Some(bitmap);
        Ok(())
    }

    /// Free inodes of the whole image.
    pub fn total_free_inodes(&self) -> u64 {
        (0..self.sb.group_count)
            .map(|g| u64::from(self.free_inodes(g)))
            .sum()
    }

    /// Free blocks of the whole image.
    pub fn total_free_blocks(&self) -> u64 {
        (0..self.sb.group_count)
            .map(|g| u64::from(self.free_blocks(g)))
            .sum()
    }

    /// Allocate up to `want` contiguous blocks (at least one): the first free run at or
    /// after the cursor, so files follow each other in call order.
    pub fn alloc_run(&mut self, want: u64) -> WResult<(u64, u64)> {
        let want = want.max(1);
        loop {
            if self.block_cursor >= self.sb.blocks_count {
                if self.wrapped {
                    return Err(WriteError::OutOfSpace);
                }
                self.wrapped = true;
                self.block_cursor = u64::from(self.sb.first_data_block);
            }
            let group = self.sb.group_of_block(self.block_cursor);
            let start = self.sb.group_first_block(group);
            let end = start + self.blocks_in(group);
            if self.free_blocks(group) == 0 {
                self.block_cursor = end;
                continue;
            }
            self.load_block_bitmap(group)?;
            let Some(bitmap) = self.block_bitmaps[group as usize].as_mut() else {
                return corrupt(format!("block bitmap of group {group}"));
            };
            let mut at = self.block_cursor;
            while at < end && bit(bitmap, (at - start) as usize) {
                at += 1;
            }
            if at == end {
                self.block_cursor = end;
                continue;
            }
            let mut len = 0;
            while at + len < end && len < want && !bit(bitmap, (at + len - start) as usize) {
                set_bit(bitmap, (at + len - start) as usize);
                len += 1;
            }
            let free = self.free_blocks(group);
            let Some(left) = free.checked_sub(len as u32) else {
                return corrupt(format!("free block count of group {group}"));
            };
            self.set_free_blocks(group, left);
            self.clear_flags(group, BgFlags::BLOCK_UNINIT);
            self.block_cursor = at + len;
            return Ok((at, len));
        }
    }

    /// Give back a block (the root directory's old blocks).
    pub fn free_block(&mut self, block: u64) -> WResult<()> {
        if block < u64::from(self.sb.first_data_block) || block >= self.sb.blocks_count {
            return corrupt(format!("block {block} out of range"));
        }
        let group = self.sb.group_of_block(block);
        self.load_block_bitmap(group)?;
        let start = self.sb.group_first_block(group);
        if let Some(b) = self.block_bitmaps[group as usize].as_mut() {
            let i = (block - start) as usize;
            if bit(b, i) {
                b[i / 8] &= !(1 << (i % 8));
                let free = self.free_blocks(group) + 1;
                self.set_free_blocks(group, free);
            }
        }
        Ok(())
    }

    /// Allocate the next free inode (in number order); `dir` counts it as a directory.
    pub fn alloc_inode(&mut self, dir: bool) -> WResult<Ino> {
        let ipg = self.sb.inodes_per_group;
        loop {
            let next = self.inode_cursor.saturating_add(1);
            let Some(ino) = Ino::new(next)
                .filter(|_| next <= self.sb.inodes_count && self.inode_cursor != u32::MAX)
            else {
                return Err(WriteError::OutOfInodes);
            };
            let (group, index) = self.sb.inode_location(ino);
            if self.free_inodes(group) == 0 {
                self.inode_cursor = (group + 1).saturating_mul(ipg);
                continue;
            }
            self.load_inode_bitmap(group)?;
            let Some(bitmap) = self.inode_bitmaps[group as usize].as_mut() else {
                return corrupt(format!("inode bitmap of group {group}"));
            };
            self.inode_cursor = next;
            if bit(bitmap, index as usize) {
                continue;
            }
            set_bit(bitmap, index as usize);
            let left = self.free_inodes(group) - 1;
            self.set_free_inodes(group, left);
            if dir {
                let dirs = self.used_dirs(group).saturating_add(1);
                self.set_used_dirs(group, dirs);
            }
            if self.sb.group_csums() {
                let used = ipg - self.itable_unused(group);
                if index >= used {
                    self.set_itable_unused(group, ipg - index - 1);
                }
            }
            self.clear_flags(group, BgFlags::INODE_UNINIT);
            return Ok(ino);
        }
    }

    /// Byte offset of inode `ino`'s record.
    pub fn inode_offset(&self, ino: Ino) -> WResult<u64> {
        if ino.get() > self.sb.inodes_count {
            return corrupt(format!("inode {ino} out of range"));
        }
        let (group, index) = self.sb.inode_location(ino);
        Ok(self.inode_table_at(group) * u64::from(self.sb.block_size)
            + u64::from(index) * u64::from(self.sb.inode_size))
    }

    pub fn read_inode(&self, ino: Ino) -> WResult<Vec<u8>> {
        let mut raw = vec![0u8; self.sb.inode_size as usize];
        self.file.read_exact_at(&mut raw, self.inode_offset(ino)?)?;
        Ok(raw)
    }

    /// Write an inode record, its checksum filled in.
    pub fn write_inode(&self, ino: Ino, raw: &mut [u8]) -> WResult<()> {
        if self.sb.metadata_csum() {
            csum::set_inode(self.sb.csum_seed, ino.get(), raw);
        }
        self.file.write_all_at(raw, self.inode_offset(ino)?)?;
        Ok(())
    }

    pub fn write_block(&self, block: u64, data: &[u8]) -> WResult<()> {
        if block >= self.sb.blocks_count {
            return corrupt(format!("block {block} out of range"));
        }
        self.file
            .write_all_at(data, block * u64::from(self.sb.block_size))?;
        Ok(())
    }

    /// Write every loaded bitmap and every descriptor with their checksums.
    pub fn flush(&mut self) -> WResult<()> {
        for group in 0..self.sb.group_count {
            if let Some(b) = self.block_bitmaps[group as usize].take() {
                let at = self.block_bitmap_at(group);
                let bits = self.sb.blocks_per_group;
                self.write_bitmap(group, &b, at, BgFlags::BLOCK_UNINIT, bits)?;
            }
            if let Some(b) = self.inode_bitmaps[group as usize].take() {
                let at = self.inode_bitmap_at(group);
                let bits = self.sb.inodes_per_group;
                self.write_bitmap(group, &b, at, BgFlags::INODE_UNINIT, bits)?;
            }
            let sb = &self.sb;
            let ds = sb.desc_size as usize;
            let at = group as usize * ds;
            csum::set_group_desc(sb, group, &mut self.descs[at..at + ds]);
        }
        let first = u64::from(self.sb.first_data_block) + 1;
        self.file
            .write_all_at(&self.descs, first * u64::from(self.sb.block_size))?;
        Ok(())
    }

    /// Write one bitmap of `bits` bits at block `at`, and its checksum into the descriptor;
    /// nothing while the group's `uninit` flag says the bitmap is not in use.
    fn write_bitmap(
        &mut self,
        group: u32,
        bitmap: &[u8],
        at: u64,
        uninit: BgFlags,
        bits: u32,
    ) -> WResult<()> {
        if self.flags(group).contains(uninit) {
            return Ok(());
        }
        self.file
            .write_all_at(bitmap, at * u64::from(self.sb.block_size))?;
        if self.sb.metadata_csum() {
            let c = csum::bitmap(self.sb.csum_seed, bitmap, bits);
            let (lo, hi) = if uninit == BgFlags::BLOCK_UNINIT {
                (gd::BLOCK_BITMAP_CSUM_LO, gd::BLOCK_BITMAP_CSUM_HI)
            } else {
                (gd::INODE_BITMAP_CSUM_LO, gd::INODE_BITMAP_CSUM_HI)
            };
            self.set16(group, lo, hi, c);
        }
        Ok(())
    }
}

fn bit(b: &[u8], i: usize) -> bool {
    b.get(i / 8).is_none_or(|byte| byte & (1 << (i % 8)) != 0)
}

fn set_bit(b: &mut [u8], i: usize) {
    if let Some(byte) = b.get_mut(i / 8) {
        *byte |= 1 << (i % 8);
    }
}
