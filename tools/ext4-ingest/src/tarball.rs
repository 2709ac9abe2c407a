//! A regular file's content as a tar stream gives it ([`seedkit::tar`] reads the stream),
//! for the image writer.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use seedkit::tar::{Member, TarStream};

/// What receives each data byte of a file with its offset.
pub type Tap<'s> = &'s mut dyn FnMut(u64, &[u8]);

/// A regular file's content as it comes in the stream, for the image writer: its segments'
/// bytes in order, zeros between them. The writer asks for ranges in increasing order; a
/// range behind what was read already is an error, never a seek.
pub struct Content<'s, R> {
    stream: &'s mut TarStream<R>,
    size: u64,
    segments: &'s [(u64, u64)],
    /// The segment being read and how much of it was read.
    seg: usize,
    done_in_seg: u64,
    /// The file offset up to which data was read.
    read_to: u64,
    /// Receives every data byte with its offset (for the digests `--verify` keeps).
    pub tap: Option<Tap<'s>>,
}

impl<'s, R: Read> Content<'s, R> {
    pub fn new(stream: &'s mut TarStream<R>, member: &'s Member) -> Content<'s, R> {
        Content {
            stream,
            size: member.size,
            segments: &member.segments,
            seg: 0,
            done_in_seg: 0,
            read_to: 0,
            tap: None,
        }
    }

    /// Fill `buf` with the file's bytes at `offset`: zeros, and the segments' data read
    /// from the stream (data before `offset` not asked for is dropped).
    fn fill_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset < self.read_to {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "file data asked for out of order",
            ));
        }
        buf.fill(0);
        let end = offset + buf.len() as u64;
        while let Some(&(start, len)) = self.segments.get(self.seg) {
            if len == 0 {
                self.seg += 1;
                continue;
            }
            let at = start + self.done_in_seg;
            let seg_end = start + len;
            if at >= end {
                break;
            }
            if at < offset {
                self.read_into(None, at, offset.min(seg_end) - at)?;
                continue;
            }
            let upto = seg_end.min(end);
            let from = (at - offset) as usize;
            let to = (upto - offset) as usize;
            self.read_into(Some(&mut buf[from..to]), at, upto - at)?;
        }
        Ok(())
    }

    /// Read `n` bytes of the current segment, at file offset `at`, into `dst` (or drop
    /// them), through the tap.
    fn read_into(&mut self, dst: Option<&mut [u8]>, at: u64, n: u64) -> io::Result<()> {
        if let Some(buf) = dst {
            self.stream.read_data(buf)?;
            if let Some(tap) = self.tap.as_mut() {
                tap(at, buf);
            }
        } else {
            {
                let mut scratch = vec![0u8; n.min(1 << 16) as usize];
                let mut pos = at;
                while pos < at + n {
                    let k = (at + n - pos).min(scratch.len() as u64) as usize;
                    self.stream.read_data(&mut scratch[..k])?;
                    if let Some(tap) = self.tap.as_mut() {
                        tap(pos, &scratch[..k]);
                    }
                    pos += k as u64;
                }
            }
        }
        self.read_to = at + n;
        self.advance(n);
        Ok(())
    }

    fn advance(&mut self, n: u64) {
        self.done_in_seg += n;
        while let Some(&(_, len)) = self.segments.get(self.seg) {
            if self.done_in_seg < len {
                break;
            }
            self.seg += 1;
            self.done_in_seg = 0;
        }
    }

    /// Read whatever the writer did not ask for (a file it refused), so the digests and
    /// the stream stay whole.
    pub fn drain(&mut self) -> io::Result<()> {
        while let Some(&(start, len)) = self.segments.get(self.seg) {
            let at = start + self.done_in_seg;
            self.read_into(None, at, len - self.done_in_seg)?;
        }
        Ok(())
    }
}

impl<R: Read> ext4fs::write::Source for Content<'_, R> {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        let found = self.segments[self.seg.min(self.segments.len())..]
            .iter()
            .find(|&&(start, len)| len > 0 && start + len > from);
        Ok(found
            .map(|&(start, len)| (start.max(from), (start + len).min(size)))
            .filter(|&(s, e)| s < e))
    }

    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            self.fill_at(&mut buf[..n], offset + done)?;
            dst.write_all_at(&buf[..n], dst_offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.fill_at(buf, offset)
    }
}
