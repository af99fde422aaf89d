//! Parallel gzip with output that does not depend on the thread count.
//!
//! The input is cut into fixed [`CHUNK`]-byte pieces. Each piece is deflated on its own,
//! primed with the last 32 KiB of the piece before it as a preset dictionary (so matches
//! still reach back across the cut), and ends with a sync flush that byte-aligns it; the
//! last piece ends the stream instead. Concatenated, the pieces are one ordinary deflate
//! stream inside one gzip member, which every gzip reader accepts. Because the cuts sit at
//! fixed input offsets, the bytes are the same whether one thread or sixteen compress them
//! (the same scheme as pigz). A layer is the slowest thing a build makes; this lets one big
//! layer use every core.

use std::io::{self, Write};

use flate2::{Compress, Crc, FlushCompress, Status};
use rayon::prelude::*;

/// Input bytes per independently compressed piece (part of every digest).
pub const CHUNK: usize = 1 << 20;

/// How much of the previous piece primes the next one: deflate's whole window.
const DICT: usize = 32 * 1024;

/// Pieces gathered before compressing them in parallel: bounds memory, not output.
const BATCH: usize = 8;

/// A gzip writer compressing [`CHUNK`]-sized pieces of its input in parallel (on the
/// current rayon pool), with fixed header fields: no name, mtime 0, OS `os`.
pub struct ParGzEncoder<W: Write> {
    out: W,
    level: u32,
    /// Input not yet compressed (less than `BATCH` pieces, or the final piece).
    pending: Vec<u8>,
    /// The last [`DICT`] bytes of the input already compressed.
    tail: Vec<u8>,
    crc: Crc,
    wrote_header: bool,
    os: u8,
}

impl<W: Write> ParGzEncoder<W> {
    /// A compressor at deflate `level` (0–9) writing to `out`.
    pub fn new(out: W, level: u32, os: u8) -> ParGzEncoder<W> {
        ParGzEncoder {
            out,
            level,
            pending: Vec::with_capacity(CHUNK * BATCH),
            tail: Vec::new(),
            crc: Crc::new(),
            wrote_header: false,
            os,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.wrote_header {
            // Magic, deflate, no flags, mtime 0, no extra flags, OS.
            self.out
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, self.os])?;
            self.wrote_header = true;
        }
        Ok(())
    }

    /// Compress every whole piece in `pending`, in parallel; the remainder stays.
    fn compress_pending(&mut self) -> io::Result<()> {
        self.header()?;
        let whole = self.pending.len() / CHUNK;
        if whole == 0 {
            return Ok(());
        }
        let take = whole * CHUNK;
        let pieces: Vec<(usize, &[u8])> = self.pending[..take].chunks(CHUNK).enumerate().collect();
        let pending = &self.pending;
        let tail = &self.tail;
        let level = self.level;
        let out: Vec<io::Result<Vec<u8>>> = pieces
            .par_iter()
            .map(|(i, piece)| {
                let dict: &[u8] = if *i == 0 {
                    tail
                } else {
                    &pending[i * CHUNK - DICT..i * CHUNK]
                };
                deflate_piece(level, dict, piece, false)
            })
            .collect();
        for o in out {
            self.out.write_all(&o?)?;
        }
        self.tail = self.pending[take - DICT..take].to_vec();
        self.pending.drain(..take);
        Ok(())
    }

    /// Compress the rest, write the trailer, and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.compress_pending()?;
        let last = deflate_piece(self.level, &self.tail, &self.pending, true)?;
        self.out.write_all(&last)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.pending.extend_from_slice(buf);
        // The pieces are always the whole CHUNKs from the start plus the remainder (maybe
        // empty) as the final piece, however the input arrives.
        if self.pending.len() >= CHUNK * BATCH {
            self.compress_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing would add a cut that depends on when the caller flushed.
        Ok(())
    }
}

/// Raw-deflate one piece, primed with `dict`, ending with a sync flush (or, for the last
/// piece, the end of the stream).
fn deflate_piece(level: u32, dict: &[u8], input: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(input.len() / 4 + 4096);
        }
        let room = out.capacity() - out.len();
        let before = out.len();
        let done = c.total_in() as usize;
        let status = c
            .compress_vec(&input[done..], &mut out, flush)
            .map_err(io::Error::other)?;
        let used_all = c.total_in() as usize == input.len();
        let finished = if last {
            status == Status::StreamEnd
        } else {
            // A sync flush is complete once a call leaves output space unused.
            used_all && out.len() - before < room
        };
        if finished {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut e = ParGzEncoder::new(Vec::new(), 6, 255);
            for part in data.chunks(write_size.max(1)) {
                e.write_all(part).unwrap();
            }
            e.finish().unwrap()
        })
    }

    /// Compressible but not trivial: text-like runs with a counter woven in.
    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut i = 0u64;
        while v.len() < len {
            v.extend_from_slice(format!("line {i} of the sample {}\n", i * 7919 % 1013).as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn gunzip(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_at_every_boundary() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            CHUNK * BATCH,
            CHUNK * BATCH + 1,
            CHUNK * (BATCH + 3) + 17,
        ] {
            let data = sample(len);
            let blob = gz(&data, 2, 65536);
            assert_eq!(gunzip(&blob), data, "length {len}");
            // One member, and the trailer's size matches.
            assert_eq!(
                u32::from_le_bytes(blob[blob.len() - 4..].try_into().unwrap()),
                len as u32
            );
        }
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = sample(CHUNK * (BATCH + 2) + 12345);
        let one = gz(&data, 1, 512);
        assert_eq!(one, gz(&data, 2, 65536));
        assert_eq!(one, gz(&data, 3, CHUNK * 3 + 5));
        assert_eq!(one, gz(&data, 2, data.len()));
    }

    #[test]
    fn pieces_reach_back_across_the_cut() {
        // The second piece repeats the end of the first: primed with it, it costs almost
        // nothing; unprimed it would cost as much as compressing it alone.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let half: Vec<u8> = (0..CHUNK)
            .map(|_| {
                // xorshift: incompressible on its own.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut data = half.clone();
        // (16 KiB back: zlib never matches the window's last 262 bytes.)
        data.extend_from_slice(&half[CHUNK - DICT / 2..]);
        let blob = gz(&data, 2, 65536);
        let alone = gz(&half[CHUNK - DICT / 2..], 1, 65536);
        assert!(
            blob.len() < gz(&half, 1, 65536).len() + alone.len() / 4,
            "{} bytes",
            blob.len()
        );
    }
}
