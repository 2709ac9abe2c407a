//! Where a regular file's bytes come from: an open [`File`] (holes found with
//! `SEEK_DATA`/`SEEK_HOLE`, bytes moved with `copy_file_range`, else `pread`/`pwrite`) or any
//! `Read + Seek` ([`Dense`], every byte data).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// The content of one regular file, read once.
pub trait Source {
    /// Its size in bytes (read once, when the file is added).
    fn size(&mut self) -> io::Result<u64>;
    /// The next range `[start, end)` at or after `from` that may hold data, below `size`;
    /// `None` past the last. Ranges that hold zeros are fine (they are copied).
    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>>;
    /// Copy `len` bytes from `offset` to `dst` at `dst_offset`; fails if the source ends
    /// early.
    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()>;
    /// Fill `buf` with the bytes at `offset`; fails if the source ends early.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while it was read",
    )
}

impl Source for &File {
    fn size(&mut self) -> io::Result<u64> {
        self.as_fd().size()
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        self.as_fd().next_data(from, size)
    }

    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        self.as_fd().copy_to(offset, len, dst, dst_offset)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_fd().read_at(buf, offset)
    }
}

/// A descriptor of a regular file (as a tree walk opens them).
impl Source for BorrowedFd<'_> {
    fn size(&mut self) -> io::Result<u64> {
        Ok(nix::sys::stat::fstat(*self)?.st_size as u64)
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        if from >= size {
            return Ok(None);
        }
        let fd = *self;
        let Ok(at) = i64::try_from(from) else {
            return Ok(None);
        };
        let start = match lseek(fd, at, Whence::SeekData) {
            Ok(s) => s as u64,
            Err(Errno::ENXIO) => return Ok(None),
            // No hole support here: everything is data.
            Err(Errno::EINVAL) => return Ok(Some((from, size))),
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            return Ok(None);
        }
        let end = match lseek(fd, start as i64, Whence::SeekHole) {
            Ok(e) => (e as u64).min(size),
            Err(Errno::ENXIO) => size,
            Err(e) => return Err(e.into()),
        };
        Ok(Some((start, end.max(start + 1).min(size))))
    }

    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        let mut done = 0u64;
        while done < len {
            let mut off_in = (offset + done) as i64;
            let mut off_out = (dst_offset + done) as i64;
            let chunk = (len - done).min(1 << 30) as usize;
            match nix::fcntl::copy_file_range(
                *self,
                Some(&mut off_in),
                dst,
                Some(&mut off_out),
                chunk,
            ) {
                Ok(0) => return Err(shrank()),
                Ok(n) => done += n as u64,
                Err(Errno::EINTR) => {}
                Err(
                    Errno::EXDEV
                    | Errno::EINVAL
                    | Errno::ENOSYS
                    | Errno::EOPNOTSUPP
                    | Errno::EBADF
                    | Errno::EPERM,
                ) => return pread_copy(*self, offset + done, len - done, dst, dst_offset + done),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match nix::sys::uio::pread(*self, &mut buf[done..], (offset + done as u64) as i64) {
                Ok(0) => return Err(shrank()),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn pread_copy(
    src: BorrowedFd<'_>,
    offset: u64,
    len: u64,
    dst: &File,
    dst_offset: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        let got = nix::sys::uio::pread(src, &mut buf[..n], (offset + done) as i64)?;
        if got == 0 {
            return Err(shrank());
        }
        dst.write_all_at(&buf[..got], dst_offset + done)?;
        done += got as u64;
    }
    Ok(())
}

/// Any `Read + Seek` as a source without holes.
#[derive(Debug)]
pub struct Dense<R>(pub R);

impl<R: Read + Seek> Source for Dense<R> {
    fn size(&mut self) -> io::Result<u64> {
        self.0.seek(SeekFrom::End(0))
    }

    fn next_data(&mut self, from: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
        Ok((from < size).then_some((from, size)))
    }

    fn copy_to(&mut self, offset: u64, len: u64, dst: &File, dst_offset: u64) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            let got = self.0.read(&mut buf[..n])?;
            if got == 0 {
                return Err(shrank());
            }
            dst.write_all_at(&buf[..got], dst_offset + done)?;
            done += got as u64;
        }
        Ok(())
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                shrank()
            } else {
                e
            }
        })
    }
}
