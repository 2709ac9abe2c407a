//! The body of the fuzz target (`fuzz/fuzz_targets/read_image.rs`), here so that the same
//! code replays the fuzz corpus and every kept crash input as an ordinary test on stable
//! (`tests/fuzz_replay.rs`).

use std::collections::HashSet;

use crate::{Backing, Content, EntryKind, Fs, Ino};

/// Entries visited per input, so one input stays fast.
const BUDGET: usize = 4096;

/// Any bytes as an image: open it and read everything reachable from the root (directories,
/// inodes, xattrs, symlink targets, data maps and a bounded amount of data). The reader must
/// return a value or an error, never panic, loop or allocate without bound.
pub fn read_image(data: &[u8]) {
    let Ok(fs) = Fs::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = fs.lookup(b"/a/b/../c");
    let mut seen = HashSet::new();
    let mut todo = vec![Ino::ROOT];
    let mut budget = BUDGET;
    let mut buf = vec![0u8; 1 << 16];
    while let Some(ino) = todo.pop() {
        if !seen.insert(ino) {
            continue;
        }
        let Ok(dir) = fs.inode(ino) else { continue };
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            budget = match budget.checked_sub(1) {
                Some(b) => b,
                None => return,
            };
            let Ok(inode) = fs.inode(e.ino) else { continue };
            let _ = fs.xattrs(&inode);
            match inode.kind() {
                Some(EntryKind::Directory) => todo.push(e.ino),
                Some(EntryKind::Symlink) => {
                    let _ = fs.symlink_target(&inode);
                }
                Some(EntryKind::File) => {
                    if let Ok(Content::Runs(runs)) = fs.content(&inode) {
                        for r in runs.iter().take(64) {
                            if let Backing::Data { physical } = r.backing {
                                let _ = fs.read_blocks(physical, &mut buf[..1024]);
                            }
                        }
                    }
                    // At most 4 chunks (4 MiB) of data per file.
                    let mut chunks = 0;
                    let _ = fs.for_each_chunk(&inode, &mut |_, _| {
                        chunks += 1;
                        chunks < 4
                    });
                }
                _ => {}
            }
        }
    }
}
