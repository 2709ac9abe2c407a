//! A regular file's bytes copied into blocks of the image, holes kept.

use std::os::unix::fs::FileExt;

use super::error::WResult;
use super::extent::Piece;
use super::group::Groups;
use super::source::Source;

/// Files up to this size are read whole into memory and written run by run, their holes
/// and all-zero blocks left unallocated (as mke2fs -d does); larger ones are copied range
/// by range, holes kept.
const SMALL_FILE: u64 = 64 * 1024;

/// Copy a file of `size` bytes from `src` into newly allocated blocks; returns where its
/// logical blocks went, in order.
pub(super) fn copy(g: &mut Groups, src: &mut dyn Source, size: u64) -> WResult<Vec<Piece>> {
    let mut pieces = Vec::new();
    let from = if size <= SMALL_FILE {
        copy_small(g, src, size, &mut pieces)?;
        size
    } else {
        0
    };
    copy_ranges(g, src, size, from, &mut pieces)?;
    Ok(pieces)
}

/// Read the file whole into its blocks, zero tail included: one read, one write per run
/// of blocks holding data, no hole search. A hole reads as zeros, so a block of zeros is
/// left a hole whether the host stored it or not.
fn copy_small(
    g: &mut Groups,
    src: &mut dyn Source,
    size: u64,
    pieces: &mut Vec<Piece>,
) -> WResult<()> {
    let bs = u64::from(g.sb.block_size);
    let blocks = size.div_ceil(bs);
    let mut buf = vec![0u8; (blocks * bs) as usize];
    src.read_at(&mut buf[..size as usize], 0)?;
    let zero = |b: u64| {
        let at = (b * bs) as usize;
        buf[at..at + bs as usize].iter().all(|&x| x == 0)
    };
    let mut first = 0;
    while first < blocks {
        if zero(first) {
            first += 1;
            continue;
        }
        let mut run = 1;
        while first + run < blocks && !zero(first + run) {
            run += 1;
        }
        let (physical, len) = g.alloc_run(run)?;
        let at = (first * bs) as usize;
        let end = ((first + len) * bs) as usize;
        g.file.write_all_at(&buf[at..end], physical * bs)?;
        pieces.push(Piece {
            logical: first,
            physical,
            len,
        });
        first += len;
    }
    Ok(())
}

/// Copy the ranges `src` says may hold data, from byte `pos` on, each into blocks as long
/// as the allocator gives, the last block's tail past the size zeroed.
fn copy_ranges(
    g: &mut Groups,
    src: &mut dyn Source,
    size: u64,
    mut pos: u64,
    pieces: &mut Vec<Piece>,
) -> WResult<()> {
    let bs = u64::from(g.sb.block_size);
    while let Some((start, end)) = src.next_data(pos, size)? {
        let mut first = (start / bs).max(pos.div_ceil(bs));
        let last = end.min(size).div_ceil(bs);
        while first < last {
            let (physical, len) = g.alloc_run(last - first)?;
            let from = first * bs;
            let upto = ((first + len) * bs).min(size);
            src.copy_to(from, upto - from, &g.file, physical * bs)?;
            let tail = (len * bs) - (upto - from);
            if tail > 0 {
                let zeros = vec![0u8; tail as usize];
                g.file.write_all_at(&zeros, physical * bs + (upto - from))?;
            }
            match pieces.last_mut() {
                Some(p) if p.logical + p.len == first && p.physical + p.len == physical => {
                    p.len += len;
                }
                _ => pieces.push(Piece {
                    logical: first,
                    physical,
                    len,
                }),
            }
            first += len;
        }
        pos = last * bs;
        if pos >= size {
            break;
        }
    }
    Ok(())
}
