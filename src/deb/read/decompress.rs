//! Decompressing a .deb's tar members: gzip, xz (on several threads for big members) and
//! zstd, each behind a bound on how much it may yield, so a decompression bomb is refused
//! before it fills memory.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The most data.tar may decompress to for a package of `installed_size` KiB.
///
/// dpkg-gencontrol computes Installed-Size as every file rounded up to 1 KiB plus 1 KiB per
/// directory, symlink and other entry. The tar stream spends a 512-byte header per entry,
/// pads data to 512 bytes, and adds 1–3 more blocks for long names or PAX records, so it can
/// exceed Installed-Size for trees of tiny files with long names, but not by twice the
/// 1 KiB each entry is counted at. The 1 MiB on top covers the end-of-archive blocks, tiny
/// packages and hand-written Installed-Size values that are a little low. Anything beyond
/// is not the package the signed index describes (a decompression bomb): it is refused
/// before it can fill memory or the disk.
pub fn max_data_bytes(installed_size_kib: u64) -> u64 {
    installed_size_kib
        .saturating_mul(1024 * 2)
        .saturating_add(1 << 20)
}

/// How a tar member of the .deb is compressed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
}

/// `control.tar*` or `data.tar*`, still compressed.
pub(super) struct TarMember<'a> {
    /// The ar member's name (`data.tar.xz`).
    pub name: String,
    /// Its compressed bytes.
    pub data: &'a [u8],
    /// How they are compressed.
    pub compression: Compression,
    /// At most this many decompressed bytes (data.tar only).
    pub limit: Option<u64>,
    /// Set when `limit` was exceeded.
    pub hit: Rc<Cell<bool>>,
}

impl<'a> TarMember<'a> {
    /// A reader of the uncompressed tar stream, straight from the .deb's bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + 'a>> {
        let raw: Box<dyn Read + 'a> = match self.compression {
            Compression::None => Box::new(self.data),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(self.data)),
            Compression::Xz if self.data.len() >= XZ_PARALLEL_FROM => {
                Box::new(XzParallel::new(self.data)?)
            }
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(self.data)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(self.data)?),
        };
        Ok(match self.limit {
            Some(limit) => Box::new(Bounded {
                inner: raw,
                left: limit,
                hit: self.hit.clone(),
            }),
            None => raw,
        })
    }
}

/// Compressed size from which an xz member is decoded on several threads: Debian's
/// large packages are multi-block (dpkg-deb compresses them on threads), and one JRE
/// takes 4.6 s to decode on one core, 2.7 s on two.
const XZ_PARALLEL_FROM: usize = 8 << 20;

/// xz decoding on every thread of the pool, block by block, one stream after another
/// (like the single-threaded decoder's concatenated mode): the multithreaded decoder
/// stops at the end of a stream, so the next stream, after any null padding, gets a
/// decoder of its own.
struct XzParallel<'a> {
    current: liblzma::bufread::XzDecoder<&'a [u8]>,
}

impl<'a> XzParallel<'a> {
    fn new(data: &'a [u8]) -> io::Result<XzParallel<'a>> {
        Ok(XzParallel {
            current: Self::decoder(data)?,
        })
    }

    fn decoder(data: &'a [u8]) -> io::Result<liblzma::bufread::XzDecoder<&'a [u8]>> {
        let threads = rayon::current_num_threads().clamp(1, 16) as u32;
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(threads)
            .memlimit_stop(u64::MAX)
            .decoder()
            .map_err(io::Error::other)?;
        Ok(liblzma::bufread::XzDecoder::new_stream(data, stream))
    }
}

impl Read for XzParallel<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let rest: &[u8] = self.current.get_ref();
            let rest = &rest[rest.iter().take_while(|b| **b == 0).count()..];
            if rest.is_empty() {
                return Ok(0);
            }
            self.current = Self::decoder(rest)?;
        }
    }
}

/// A decompressed stream that fails once it has yielded more than its budget. The tar
/// reader may wrap or reword the I/O error, so the flag, not the error, tells the caller
/// that the bound was hit.
struct Bounded<'a> {
    inner: Box<dyn Read + 'a>,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than the budget so that a stream of exactly the budget
        // passes and one byte beyond it fails.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.hit.set(true);
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8], block_size: u64) -> Vec<u8> {
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(2)
            .block_size(block_size)
            .preset(1)
            .encoder()
            .unwrap();
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn parallel_xz_reads_multi_block_and_concatenated_streams() {
        let a: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let b = b"the second stream".repeat(1000);
        // Four blocks, then null stream padding, then a second stream.
        let mut data = xz(&a, a.len() as u64 / 4);
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(&xz(&b, 1 << 20));
        let mut out = Vec::new();
        XzParallel::new(&data)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), a.len() + b.len());
        assert!(out[..a.len()] == a[..] && out[a.len()..] == b[..]);
        // Garbage after a stream is an error, not silently ignored.
        let mut bad = xz(&a, 1 << 20);
        bad.extend_from_slice(b"junk");
        let mut sink = Vec::new();
        assert!(
            XzParallel::new(&bad)
                .unwrap()
                .read_to_end(&mut sink)
                .is_err()
        );
    }
}
