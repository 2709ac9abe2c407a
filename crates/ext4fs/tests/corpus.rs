//! Every image of the e2fsprogs test corpus (most of them deliberately corrupt) read in full:
//! no panic, bounded time, a result or a typed error for each.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use ext4fs::{Backing, Content, EntryKind, Fs, Ino};

/// Read everything reachable from the root; returns (entries, errors).
fn read_everything(fs: &Fs) -> (u64, u64) {
    let (mut entries, mut errors) = (0u64, 0u64);
    let mut seen_dirs = HashSet::new();
    let mut todo = vec![Ino::ROOT];
    let mut buf = vec![0u8; 1 << 16];
    while let Some(ino) = todo.pop() {
        if !seen_dirs.insert(ino) {
            continue;
        }
        let Ok(dir) = fs.inode(ino) else {
            errors += 1;
            continue;
        };
        let Ok(list) = fs.read_dir(&dir) else {
            errors += 1;
            continue;
        };
        for e in list {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            entries += 1;
            let Ok(inode) = fs.inode(e.ino) else {
                errors += 1;
                continue;
            };
            errors += u64::from(fs.xattrs(&inode).is_err());
            match inode.kind() {
                Some(EntryKind::Directory) => todo.push(e.ino),
                Some(EntryKind::Symlink) => errors += u64::from(fs.symlink_target(&inode).is_err()),
                Some(EntryKind::File) => match fs.content(&inode) {
                    Ok(Content::Runs(runs)) => {
                        for r in runs {
                            if let Backing::Data { physical } = r.backing {
                                let n = (r.len * u64::from(fs.block_size())).min(buf.len() as u64);
                                errors += u64::from(
                                    fs.read_blocks(physical, &mut buf[..n as usize]).is_err(),
                                );
                            }
                        }
                    }
                    Ok(Content::Inline(_)) => {}
                    Err(_) => errors += 1,
                },
                _ => {}
            }
        }
    }
    (entries, errors)
}

#[test]
fn every_corpus_image_reads_without_panic() {
    let names = testkit::corpus_images("every_corpus_image_reads_without_panic");
    let tmp = testkit::TempDir::new();
    let (mut opened, mut refused) = (0, 0);
    for gz in &names {
        let image = tmp.join("image");
        fs::write(&image, testkit::gunzip(gz)).unwrap();
        let start = Instant::now();
        match Fs::open(fs::File::open(&image).unwrap()) {
            Ok(fs) => {
                opened += 1;
                let (entries, errors) = read_everything(&fs);
                eprintln!("{}: {entries} entries, {errors} errors", gz.display());
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().contains('\n'));
                eprintln!("{}: {e}", gz.display());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} took {:?}",
            gz.display(),
            start.elapsed()
        );
    }
    eprintln!("{opened} opened, {refused} refused of {}", names.len());
    assert!(opened > names.len() / 2);
}
