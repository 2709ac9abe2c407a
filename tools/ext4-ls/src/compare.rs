//! `--diff`'s content comparison: two files of the same size read side by side, never
//! whole, never hashed.
//!
//! The first image's file is read in the calling thread; the second's by a helper thread
//! that hands its stored pieces over a channel of two, so both are read at once and memory
//! stays at a few pieces of 1 MiB. What one side does not store (holes, unwritten extents)
//! reads as zeros and is never read: a hole against a hole compares for nothing, a hole
//! against stored bytes reads the stored side only and checks it is all zeros. The first
//! difference stops both. Files of at most [`SMALL`] bytes are read into memory in the
//! calling thread, which costs less than a hand-over.
//!
//! Each side's stored bytes read in one run are bounded by [`crate::content::data_budget`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::Scope;

use ext4fs::{Fs, Ino, Inode};

/// Files up to this size are compared in memory.
const SMALL: u64 = 1 << 20;
/// Pairs of files whose verdict is kept, so that further names of the same two inodes are
/// not read again (8 bytes and a verdict each); past it, they are.
const VERDICTS_KEPT: usize = 1 << 18;

/// What the helper thread hands over: a stored piece (offset, bytes), then the end.
enum Piece {
    Data(u64, Vec<u8>),
    End(Result<(), String>),
}

/// Which side a content error is on.
pub enum Failed {
    First(String),
    Second(String),
}

/// The comparison of files between two images.
pub struct Comparer<'a> {
    first: &'a Fs,
    second: &'a Fs,
    first_left: u64,
    second_left: u64,
    requests: Sender<Inode>,
    incoming: Incoming,
    cancel: &'a AtomicBool,
    verdicts: HashMap<(Ino, Ino), bool>,
}

impl<'a> Comparer<'a> {
    /// A comparer whose helper thread lives in `scope`; `budgets` bound the stored bytes
    /// read from each image.
    pub fn start<'s>(
        scope: &'s Scope<'s, 'a>,
        (first, second): (&'a Fs, &'a Fs),
        budgets: (u64, u64),
        cancel: &'a AtomicBool,
    ) -> Comparer<'a> {
        let (requests, wanted) = mpsc::channel();
        let (pieces, rx) = mpsc::sync_channel(2);
        let (recycle, spare) = mpsc::channel();
        scope.spawn(move || serve(second, &wanted, &pieces, &spare, budgets.1, cancel));
        Comparer {
            first,
            second,
            first_left: budgets.0,
            second_left: budgets.1,
            requests,
            incoming: Incoming::new(rx, recycle),
            cancel,
            verdicts: HashMap::new(),
        }
    }

    /// Whether two files of `size` bytes hold the same bytes; a pair of inodes is read
    /// once, however many names reach them (whatever their link counts say).
    pub fn same(&mut self, a: &Inode, b: &Inode, size: u64) -> Result<bool, Failed> {
        if let Some(&known) = self.verdicts.get(&(a.ino, b.ino)) {
            return Ok(known);
        }
        let same = self.read_both(a, b, size)?;
        if self.verdicts.len() < VERDICTS_KEPT {
            self.verdicts.insert((a.ino, b.ino), same);
        }
        Ok(same)
    }

    fn read_both(&mut self, a: &Inode, b: &Inode, size: u64) -> Result<bool, Failed> {
        if size <= SMALL {
            let x = read_small(self.first, a, size, &mut self.first_left).map_err(Failed::First)?;
            let y =
                read_small(self.second, b, size, &mut self.second_left).map_err(Failed::Second)?;
            return Ok(x == y);
        }
        self.cancel.store(false, Ordering::Relaxed);
        if self.requests.send(b.clone()).is_err() {
            return Err(Failed::Second("the reading thread ended".into()));
        }
        let mut same = true;
        let mut cursor = 0;
        let mut failure = None;
        let left = &mut self.first_left;
        let incoming = &mut self.incoming;
        let read = self.first.for_each_chunk(a, &mut |offset, bytes| {
            let len = bytes.len() as u64;
            if offset < cursor {
                failure = Some(format!("content out of order at byte {offset}"));
                return false;
            }
            if let Err(e) = charge(left, len) {
                failure = Some(e);
                return false;
            }
            // The hole before this piece, then the piece.
            same = incoming.region(cursor..offset, None)
                && incoming.region(offset..offset + len, Some(bytes));
            cursor = offset + len;
            same
        });
        if let Err(e) = read {
            failure = Some(format!("reading the content: {e}"));
        }
        if same && failure.is_none() {
            same = self.incoming.region(cursor..size, None);
        }
        self.cancel.store(true, Ordering::Relaxed);
        let second = self.incoming.finish();
        match (failure, second) {
            (Some(e), _) => Err(Failed::First(e)),
            (None, Err(e)) if same => Err(Failed::Second(e)),
            _ => Ok(same),
        }
    }
}

/// Whether `bytes` are all zeros, at `memcmp`'s speed.
fn zeros(bytes: &[u8]) -> bool {
    const ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Take `len` bytes from a budget.
fn charge(left: &mut u64, len: u64) -> Result<(), String> {
    if len > *left {
        return Err("the image's files name more data than it holds: not compared".into());
    }
    *left -= len;
    Ok(())
}

/// A small file's bytes, holes as zeros (left as they were allocated, never read).
fn read_small(fs: &Fs, inode: &Inode, size: u64, left: &mut u64) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; size as usize];
    let mut failure = None;
    fs.for_each_chunk(inode, &mut |offset, bytes| {
        let at = offset as usize;
        match charge(left, bytes.len() as u64) {
            Ok(()) if at + bytes.len() <= out.len() => {
                out[at..at + bytes.len()].copy_from_slice(bytes);
                true
            }
            Ok(()) => {
                failure = Some(format!("content past the size at byte {offset}"));
                false
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    })
    .map_err(|e| format!("reading the content: {e}"))?;
    failure.map_or(Ok(out), Err)
}

/// The helper thread: each requested file's stored pieces, then its end. It stops a file
/// early when `cancel` is set, and ends when the requests do.
fn serve(
    fs: &Fs,
    wanted: &Receiver<Inode>,
    pieces: &SyncSender<Piece>,
    spare: &Receiver<Vec<u8>>,
    mut left: u64,
    cancel: &AtomicBool,
) {
    for inode in wanted {
        let mut failure = None;
        let read = fs.for_each_chunk(&inode, &mut |offset, bytes| {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            if let Err(e) = charge(&mut left, bytes.len() as u64) {
                failure = Some(e);
                return false;
            }
            let mut buf = spare.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(bytes);
            pieces.send(Piece::Data(offset, buf)).is_ok()
        });
        let end = match (read, failure) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(format!("reading the content: {e}")),
            (Ok(()), None) => Ok(()),
        };
        if pieces.send(Piece::End(end)).is_err() {
            return;
        }
    }
}

/// The second side's pieces as they arrive, consumed in order of offset.
struct Incoming {
    rx: Receiver<Piece>,
    recycle: Sender<Vec<u8>>,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`, and how much of `buf` was consumed.
    offset: u64,
    used: usize,
    end: Option<Result<(), String>>,
}

impl Incoming {
    fn new(rx: Receiver<Piece>, recycle: Sender<Vec<u8>>) -> Incoming {
        Incoming {
            rx,
            recycle,
            buf: Vec::new(),
            offset: 0,
            used: 0,
            end: None,
        }
    }

    /// Whether the second file's bytes over `range` are `first` (`None`: zeros). Its
    /// stored pieces there are consumed; a piece past the range is kept for the next.
    fn region(&mut self, range: Range<u64>, first: Option<&[u8]>) -> bool {
        let start = range.start;
        let mut at = start;
        while let Some((offset, taken)) = self.next_before(range.end) {
            let theirs = &self.buf[taken];
            if offset < at {
                // Pieces out of order: not the same content, whatever it is.
                return false;
            }
            let (gap, ours) = ((at - start) as usize, (offset - start) as usize);
            let same = match first {
                Some(f) => zeros(&f[gap..ours]) && f[ours..ours + theirs.len()] == *theirs,
                None => zeros(theirs),
            };
            if !same {
                return false;
            }
            at = offset + theirs.len() as u64;
        }
        first.is_none_or(|f| zeros(&f[(at - start) as usize..]))
    }

    /// The next stored bytes that start before `end` (cut at `end`): their offset and
    /// where they are in `buf`.
    fn next_before(&mut self, end: u64) -> Option<(u64, Range<usize>)> {
        loop {
            if self.used < self.buf.len() {
                let offset = self.offset + self.used as u64;
                if offset >= end {
                    return None;
                }
                let n = ((end - offset) as usize).min(self.buf.len() - self.used);
                let taken = self.used..self.used + n;
                self.used += n;
                return Some((offset, taken));
            }
            if self.end.is_some() {
                return None;
            }
            match self.rx.recv() {
                Ok(Piece::Data(offset, buf)) => {
                    let done = std::mem::replace(&mut self.buf, buf);
                    let _ = self.recycle.send(done);
                    (self.offset, self.used) = (offset, 0);
                }
                Ok(Piece::End(end)) => self.end = Some(end),
                Err(_) => self.end = Some(Err("the reading thread ended".into())),
            }
        }
    }

    /// Wait for the file's end, dropping what is left, and say how its reading went.
    fn finish(&mut self) -> Result<(), String> {
        self.used = self.buf.len();
        while self.next_before(u64::MAX).is_some() {
            self.used = self.buf.len();
        }
        let end = self.end.take().unwrap_or(Ok(()));
        self.buf.clear();
        (self.offset, self.used) = (0, 0);
        end
    }
}
