//! The streaming form of [`normalize`](crate::normalize): list-file bytes go in as chunks of
//! any size and split anywhere, entries come out a piece at a time, and what is kept between
//! chunks does not grow with the length of a line.
//!
//! What is kept: nothing for leading white space (it is skipped) or a comment (dropped up to
//! the newline); for the entry itself only the white space after the content given out so
//! far, held back until more content shows it is inside the entry (it is dropped at the end
//! of the line), and at most two bytes of a character the end of a chunk cut in two, until
//! the next chunk tells whether it is white space. The held white space grows with a run of
//! white space inside an entry, and with nothing else; a large one is freed when its line
//! ends.
//!
//! The trailing carriage return that `normalize` removes first needs no step of its own
//! here: CR is white space, at the end of what is left of the line, so the trim takes it.

use std::io;

use memchr::{memchr, memchr2};

use crate::{leading_space_len, trailing_space_len};

/// Memory for held white space (or a whole entry, for `--json`) that is kept from one line for
/// the next: more than this was a rare line, and goes back when it ends.
pub const KEEP_CAPACITY: usize = 64 * 1024;

/// Where the entries of a stream go, a piece at a time.
pub trait Entries {
    /// Append `bytes` to the current entry.
    fn extend(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// End the current entry, which is not empty.
    fn end(&mut self) -> io::Result<()>;
}

/// Normalises a stream fed in chunks, with the same result as [`normalize`](crate::normalize)
/// on each of its lines: [`feed`](Self::feed) every chunk, then [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct Normalizer {
    /// After a `#`: everything up to the newline is dropped.
    comment: bool,
    /// Some of the current line's entry has been given out.
    open: bool,
    /// White space after the content given out so far, which belongs to the entry only if
    /// more content follows. Only held when `open`: leading white space is skipped.
    held: Vec<u8>,
    /// The first `split_len` bytes: the start of a 2- or 3-byte character that the end of the
    /// last chunk cut in two, which may yet be white space.
    split: [u8; 3],
    split_len: usize,
    /// Entries ended so far.
    entries: u64,
}

impl Normalizer {
    /// How many entries have been ended.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Take the next chunk of the stream. Errors are `out`'s.
    pub fn feed<E: Entries + ?Sized>(&mut self, mut chunk: &[u8], out: &mut E) -> io::Result<()> {
        if self.split_len > 0 {
            chunk = self.finish_split(chunk, out)?;
        }
        while !chunk.is_empty() {
            if self.comment {
                let Some(newline) = memchr(b'\n', chunk) else {
                    return Ok(());
                };
                self.comment = false;
                chunk = &chunk[newline + 1..];
                continue;
            }
            let Some(stop) = memchr2(b'\n', b'#', chunk) else {
                let (text, split) = chunk.split_at(chunk.len() - split_tail(chunk));
                self.text(text, out)?;
                self.split[..split.len()].copy_from_slice(split);
                self.split_len = split.len();
                return Ok(());
            };
            self.text(&chunk[..stop], out)?;
            self.end_line(out)?;
            self.comment = chunk[stop] == b'#';
            chunk = &chunk[stop + 1..];
        }
        Ok(())
    }

    /// End the stream: a last line without a newline is a line too. The normaliser is then
    /// ready for a new stream (its entry count goes on).
    pub fn finish<E: Entries + ?Sized>(&mut self, out: &mut E) -> io::Result<()> {
        if self.split_len > 0 {
            // Cut short by the end of the stream: not a character, so not white space.
            let split = self.split;
            let len = std::mem::take(&mut self.split_len);
            self.content(&split[..len], out)?;
        }
        self.comment = false;
        self.end_line(out)
    }

    /// Decide the character the last chunk ended inside of, with the bytes `chunk` starts
    /// with; returns the rest of `chunk`.
    fn finish_split<'a, E: Entries + ?Sized>(
        &mut self,
        mut chunk: &'a [u8],
        out: &mut E,
    ) -> io::Result<&'a [u8]> {
        let want = if self.split[0] >= 0xe0 { 3 } else { 2 };
        while self.split_len < want {
            match chunk.first() {
                Some(&b @ 0x80..=0xbf) => {
                    self.split[self.split_len] = b;
                    self.split_len += 1;
                    chunk = &chunk[1..];
                }
                Some(_) => break,
                None => return Ok(chunk),
            }
        }
        let split = self.split;
        let len = std::mem::take(&mut self.split_len);
        // Cut short (`len < want`) or complete, it is white space only as one whole character.
        if leading_space_len(&split[..len]) == Some(len) {
            self.hold(&split[..len]);
        } else {
            // An invalid sequence: content, like any byte that is not white space.
            self.content(&split[..len], out)?;
        }
        Ok(chunk)
    }

    /// Bytes of a line with no `#` or newline in them, that start and end on character
    /// boundaries (or inside invalid UTF-8, which is content either way).
    fn text<E: Entries + ?Sized>(&mut self, text: &[u8], out: &mut E) -> io::Result<()> {
        let mut end = text.len();
        while let Some(n) = trailing_space_len(&text[..end]) {
            end -= n;
        }
        let (content, space) = text.split_at(end);
        if !content.is_empty() {
            self.content(content, out)?;
        }
        self.hold(space);
        Ok(())
    }

    /// Bytes that end with content (not white space): the white space held before them is
    /// inside the entry after all; at the start of an entry, leading white space is skipped.
    fn content<E: Entries + ?Sized>(&mut self, mut bytes: &[u8], out: &mut E) -> io::Result<()> {
        if self.open {
            out.extend(&self.held)?;
            self.held.clear();
        } else {
            while let Some(n) = leading_space_len(bytes) {
                bytes = &bytes[n..];
            }
            self.open = true;
        }
        out.extend(bytes)
    }

    /// White space: inside the entry if content follows it, else trailing and dropped.
    fn hold(&mut self, space: &[u8]) {
        if self.open {
            self.held.extend_from_slice(space);
        }
    }

    fn end_line<E: Entries + ?Sized>(&mut self, out: &mut E) -> io::Result<()> {
        self.held.clear();
        if self.held.capacity() > KEEP_CAPACITY {
            // A long run of inner white space is rare: give its memory back.
            self.held = Vec::new();
        }
        if std::mem::take(&mut self.open) {
            self.entries += 1;
            out.end()?;
        }
        Ok(())
    }
}

/// How many bytes at the end of `s` may start a white-space character that the next chunk
/// completes: the lead byte of a 2- or 3-byte sequence, with at most one continuation byte
/// after it. (No 4-byte character is white space, and no white space starts outside the lead
/// bytes `leading_space_len` accepts.)
fn split_tail(s: &[u8]) -> usize {
    match s {
        [.., 0xc2..=0xef] => 1,
        [.., 0xe0..=0xef, 0x80..=0xbf] => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{normalize, trim_space};

    /// The entries, collected whole.
    #[derive(Default)]
    struct Collected {
        entries: Vec<Vec<u8>>,
        current: Vec<u8>,
    }

    impl Entries for Collected {
        fn extend(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.current.extend_from_slice(bytes);
            Ok(())
        }
        fn end(&mut self) -> io::Result<()> {
            assert!(!self.current.is_empty(), "an empty entry was ended");
            self.entries.push(std::mem::take(&mut self.current));
            Ok(())
        }
    }

    /// What the line-based reference makes of `text`.
    fn by_lines(text: &[u8]) -> Vec<Vec<u8>> {
        text.split_inclusive(|&b| b == b'\n')
            .map(normalize)
            .filter(|e| !e.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// What the normaliser makes of `text` fed as `chunks`.
    fn streamed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
        let mut normalizer = Normalizer::default();
        let mut out = Collected::default();
        for chunk in chunks {
            normalizer.feed(chunk, &mut out).unwrap();
        }
        normalizer.finish(&mut out).unwrap();
        assert!(out.current.is_empty(), "an entry was left open");
        assert_eq!(normalizer.entries(), out.entries.len() as u64);
        out.entries
    }

    /// `text` cut after every byte `i` whose bit is set in `cuts`.
    fn split_by_mask(text: &[u8], cuts: u64) -> Vec<&[u8]> {
        let mut chunks = Vec::new();
        let mut start = 0;
        for i in 0..text.len().saturating_sub(1) {
            if cuts & (1 << i) != 0 {
                chunks.push(&text[start..=i]);
                start = i + 1;
            }
        }
        chunks.push(&text[start..]);
        chunks
    }

    /// xorshift64*: a small deterministic generator, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every Unicode White_Space character, as UTF-8.
    fn white_space() -> Vec<Vec<u8>> {
        (0..=0x10_ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .map(|c| c.to_string().into_bytes())
            .collect()
    }

    /// The pieces lines are made of: ASCII, every white-space character, characters that are
    /// not white space (some look like it), invalid UTF-8 (lone leads, cut-off white space,
    /// overlong and surrogate forms, stray continuation bytes that complete a cut-off piece
    /// before them), comments and CR.
    fn pieces() -> Vec<Vec<u8>> {
        let mut pieces = white_space();
        let others: &[&[u8]] = &[
            b"a",
            b"Z",
            b"0",
            b"-",
            b"#",
            b"#",
            b"\r",
            b"\r",
            b"\0",
            "é".as_bytes(),
            "中".as_bytes(),
            "😀".as_bytes(),
            "\u{feff}".as_bytes(),
            "\u{200b}".as_bytes(),
            "\u{180e}".as_bytes(),
            "\u{800}".as_bytes(),
            b"\xff",
            b"\xfe",
            b"\x80",
            b"\x85",
            b"\xa0",
            b"\xc2",
            b"\xe2",
            b"\xe3",
            b"\xe2\x80",
            b"\xe3\x80",
            b"\xe1\x9a",
            b"\xf0\x9f",
            b"\xf0\x9f\x98",
            b"\xc0\xa0",
            b"\xe0\x80\xa0",
            b"\xed\xa0\x80",
            b"\xc1",
        ];
        pieces.extend(others.iter().map(|p| p.to_vec()));
        pieces
    }

    /// A text of up to `max_pieces` pieces, white space and plain letters more often than the
    /// rest, with a newline now and then.
    fn text(rng: &mut Rng, pieces: &[Vec<u8>], max_pieces: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for _ in 0..rng.below(max_pieces + 1) {
            match rng.below(10) {
                0 => text.push(b'\n'),
                1 | 2 => text.push(b' '),
                3 => text.push(b'x'),
                _ => text.extend_from_slice(&pieces[rng.below(pieces.len())]),
            }
        }
        text
    }

    fn check(text: &[u8], chunks: &[&[u8]]) {
        assert_eq!(
            streamed(chunks.iter().copied()),
            by_lines(text),
            "text {text:?} in chunks {chunks:?}"
        );
    }

    #[test]
    fn agrees_with_normalize_on_every_split_of_short_texts() {
        let pieces = pieces();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let mut text = text(&mut rng, &pieces, 8);
            text.truncate(13);
            for cuts in 0..1u64 << text.len().saturating_sub(1) {
                check(&text, &split_by_mask(&text, cuts));
            }
        }
    }

    #[test]
    fn agrees_with_normalize_on_long_texts_cut_anywhere() {
        let pieces = pieces();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..1000 {
            let text = text(&mut rng, &pieces, 60);
            check(&text, &[&text]);
            for cut in 0..=text.len() {
                check(&text, &[&text[..cut], &text[cut..]]);
            }
            for size in 1..=text.len().min(16) {
                check(&text, &text.chunks(size).collect::<Vec<_>>());
            }
            for _ in 0..20 {
                let mut chunks = Vec::new();
                let mut rest = &text[..];
                while !rest.is_empty() {
                    let (chunk, after) = rest.split_at(rng.below(rest.len().min(8)) + 1);
                    chunks.push(chunk);
                    rest = after;
                }
                check(&text, &chunks);
            }
        }
    }

    #[test]
    fn every_white_space_char_cut_at_every_byte_is_still_trimmed() {
        for space in white_space() {
            for pad in [&b""[..], b" ", b"x"] {
                let line = [pad, &space, b"a", &space, b"b", &space, pad, b"\n"].concat();
                for cut in 0..=line.len() {
                    check(&line, &[&line[..cut], &line[cut..]]);
                }
            }
        }
    }

    #[test]
    fn removing_one_trailing_cr_is_subsumed_by_the_trim() {
        // `normalize` removes one trailing CR before the comment cut and the trim; the
        // normaliser has no such step. The same lines without that step give the same entry.
        let without_the_cr_step = |line: &[u8]| -> Vec<u8> {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = match line.iter().position(|&b| b == b'#') {
                Some(i) => &line[..i],
                None => line,
            };
            trim_space(line).to_vec()
        };
        let pieces = pieces();
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let ends: &[&[u8]] = &[b"", b"\n", b"\r", b"\r\n", b"\r\r\n", b"#\r\n", b"\r#\r\n"];
        for _ in 0..20_000 {
            let mut line = text(&mut rng, &pieces, 12);
            line.retain(|&b| b != b'\n');
            line.extend_from_slice(ends[rng.below(ends.len())]);
            assert_eq!(normalize(&line), without_the_cr_step(&line), "{line:?}");
        }
    }

    #[test]
    fn keeps_no_leading_space_comment_or_content() {
        let mut normalizer = Normalizer::default();
        let mut out = Collected::default();
        let chunk = [b' '; 4096];
        for _ in 0..256 {
            normalizer.feed(&chunk, &mut out).unwrap();
        }
        normalizer.feed(b"x", &mut out).unwrap();
        for _ in 0..256 {
            normalizer.feed(&[b'y'; 4096], &mut out).unwrap();
        }
        normalizer.feed(b" #", &mut out).unwrap();
        for _ in 0..256 {
            normalizer.feed(&[b'c'; 4096], &mut out).unwrap();
        }
        // One space was held before the `#`; a megabyte of space, content and comment were not.
        assert!(
            normalizer.held.capacity() <= 8,
            "{}",
            normalizer.held.capacity()
        );
        normalizer.feed(b"\n", &mut out).unwrap();
        normalizer.finish(&mut out).unwrap();
        assert_eq!(out.entries.len(), 1);
        assert_eq!(out.entries[0].len(), 1 + 256 * 4096);
    }

    #[test]
    fn holds_only_a_run_of_inner_white_space() {
        let mut normalizer = Normalizer::default();
        let mut out = Collected::default();
        normalizer.feed(b"a", &mut out).unwrap();
        normalizer.feed(&[b' '; 1000], &mut out).unwrap();
        assert_eq!(normalizer.held.len(), 1000);
        normalizer.feed("\u{3000}b".as_bytes(), &mut out).unwrap();
        assert_eq!(normalizer.held.len(), 0);
        normalizer.feed(b" \r\n", &mut out).unwrap();
        normalizer.finish(&mut out).unwrap();
        let want = [&b"a"[..], &[b' '; 1000], "\u{3000}b".as_bytes()].concat();
        assert_eq!(out.entries, [want]);
    }

    #[test]
    fn a_long_run_of_inner_white_space_is_given_back_when_its_line_ends() {
        let mut normalizer = Normalizer::default();
        let mut out = Collected::default();
        normalizer.feed(b"a", &mut out).unwrap();
        normalizer.feed(&vec![b' '; 1 << 20], &mut out).unwrap();
        assert!(normalizer.held.capacity() >= 1 << 20);
        normalizer.feed(b"\n", &mut out).unwrap();
        assert_eq!(normalizer.held.capacity(), 0);
    }

    #[test]
    fn a_character_cut_by_the_end_of_the_stream_is_content() {
        assert_eq!(streamed([&b" a \xe3\x80"[..]]), [b"a \xe3\x80"]);
        assert_eq!(streamed([&b" \xe3"[..], b"\x80"]), [b"\xe3\x80"]);
        assert_eq!(
            streamed([&b" \xe3"[..], b"\x80", b"\x80"]),
            Vec::<Vec<u8>>::new()
        );
    }
}
