//! Files over GET: small ones into memory with a size limit, large ones into a partial file
//! resumed with Range requests.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use reqwest::Method;
use reqwest::blocking::Response;

use super::{Http, HttpError, Retryable, transport};

impl Http {
    /// GET `url` into memory, at most `limit` bytes, retried as the [`super::RetryPolicy`]
    /// says.
    /// The whole exchange, retries included, has the deadline of a download of `limit`
    /// bytes ([`Http::deadline_for`]), so pass the expected size where it is known.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let clock = Clock::start(self, limit);
        self.retry.run(|| {
            clock.check(url, 0)?;
            self.get_once(url, limit, &clock)
        })
    }

    fn get_once(&self, url: &str, limit: u64, clock: &Clock) -> Result<Vec<u8>, HttpError> {
        let mut resp = self.send_get(url, None)?;
        check_status(&resp, url)?;
        let expected = resp.content_length();
        if expected.is_some_and(|n| n > limit) {
            return Err(too_large(url, limit));
        }
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(limit) as usize);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    return Err(HttpError::Body {
                        url: url.to_owned(),
                        read: body.len() as u64,
                        source,
                    });
                }
            };
            if body.len() + n > limit as usize {
                return Err(too_large(url, limit));
            }
            body.extend_from_slice(&buf[..n]);
            clock.check(url, body.len() as u64)?;
        }
        let got = body.len() as u64;
        if got > limit {
            return Err(too_large(url, limit));
        }
        if let Some(expected) = expected
            && expected != got
        {
            return Err(HttpError::ShortBody {
                url: url.to_owned(),
                got,
                expected,
            });
        }
        Ok(body)
    }

    /// Download `url` into `partial`, resuming from whatever it already holds with an HTTP
    /// Range request, until it is `size` bytes long. Interrupted bodies are resumed, and
    /// the retry budget is refilled whenever an attempt made the file longer than it has
    /// ever been; the caller verifies the hash. `progress` is told about every chunk
    /// written.
    pub fn download(
        &self,
        url: &str,
        partial: &Path,
        size: u64,
        progress: &dyn Fn(u64),
    ) -> Result<(), HttpError> {
        // Never through a link planted at the path: the file is replaced, not followed.
        let mut file = crate::tmp::open_owned(partial)
            .map_err(file_err(partial, "cannot open the partial download"))?;
        let clock = Clock::start(self, size);
        let mut failures = 0;
        // The longest the partial file has been. Progress means growing past it, not merely
        // writing bytes: a mirror that answers every Range request with the same short 200
        // body (an HTML error page) rewrites the file from zero each time, and counting that
        // as progress refilled the retry budget forever.
        let mut longest = 0u64;
        loop {
            let have = file
                .seek(SeekFrom::End(0))
                .map_err(file_err(partial, "cannot seek the partial download"))?;
            if have > size {
                file.set_len(0)
                    .map_err(file_err(partial, "cannot truncate the partial download"))?;
                continue;
            }
            if have == size {
                return Ok(());
            }
            longest = longest.max(have);
            clock.check(url, have)?;
            if let Err((e, wrote)) =
                self.download_once(url, partial, &mut file, have, size, progress, &clock)
            {
                let now = file.seek(SeekFrom::End(0)).unwrap_or(0);
                if wrote && now > longest {
                    failures = 0;
                    longest = now;
                }
                if failures >= self.retry.retries || !e.is_retryable() {
                    return Err(e);
                }
                failures += 1;
                std::thread::sleep(self.retry.delay(failures));
            }
        }
    }

    /// One request: Range from `have`; appends to `file`. On error, says whether any
    /// bytes were written (so a slow but working mirror is not given up on).
    #[allow(clippy::too_many_arguments)]
    fn download_once(
        &self,
        url: &str,
        path: &Path,
        file: &mut File,
        have: u64,
        size: u64,
        progress: &dyn Fn(u64),
        clock: &Clock,
    ) -> Result<(), (HttpError, bool)> {
        let nothing_written = |e: HttpError| (e, false);
        let restart = |file: &mut File| {
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
                .map_err(file_err(path, "cannot truncate the partial download"))
                .map_err(nothing_written)
        };
        let mut resp = self
            .send_get(url, (have > 0).then_some(have))
            .map_err(nothing_written)?;
        match resp.status().as_u16() {
            206 => {
                let answered = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start);
                if answered != Some(have) {
                    // The server resumed somewhere else: start over rather than splice.
                    restart(file)?;
                    return Err(nothing_written(HttpError::BadResume {
                        url: url.to_owned(),
                        from: have,
                        answered,
                    }));
                }
            }
            // No Range support: the body is the whole file again.
            200 if have > 0 => restart(file)?,
            416 => {
                restart(file)?;
                return Err(nothing_written(HttpError::RangeRefused {
                    url: url.to_owned(),
                }));
            }
            _ => check_status(&resp, url).map_err(nothing_written)?,
        }
        let start = file
            .stream_position()
            .map_err(file_err(path, "cannot seek the partial download"))
            .map_err(nothing_written)?;
        if resp.content_length().is_some_and(|n| start + n > size) {
            return Err(nothing_written(too_large(url, size)));
        }
        let mut buf = vec![0u8; 256 << 10];
        let mut written = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    let e = HttpError::Body {
                        url: url.to_owned(),
                        read: written,
                        source,
                    };
                    return Err((e, written > 0));
                }
            };
            if start + written + n as u64 > size {
                return Err((too_large(url, size), written > 0));
            }
            file.write_all(&buf[..n])
                .map_err(file_err(path, "cannot write the download"))
                .map_err(nothing_written)?;
            written += n as u64;
            progress(n as u64);
            crate::tmp::kill_point("download-body");
            clock.check(url, start + written).map_err(|e| (e, true))?;
        }
        if start + written < size {
            let e = HttpError::Truncated {
                url: url.to_owned(),
                at: start + written,
                size,
            };
            return Err((e, written > 0));
        }
        Ok(())
    }

    /// GET `url`, from byte `from` on if given.
    fn send_get(&self, url: &str, from: Option<u64>) -> Result<Response, HttpError> {
        let mut req = self.client.get(url);
        if let Some(from) = from {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        // Not `send`: a URL that does not parse is reported with the URL as given.
        req.send()
            .map_err(|e| transport(Method::GET, url.to_owned(), e))
    }
}

/// A download's deadline: it started at `start` and may take `limit` in all.
struct Clock {
    start: Instant,
    limit: std::time::Duration,
    size: u64,
    rate: u64,
}

impl Clock {
    fn start(http: &Http, size: u64) -> Clock {
        Clock {
            start: Instant::now(),
            limit: http.deadline_for(size),
            size,
            rate: http.min_rate,
        }
    }

    /// Fail once the deadline has passed, saying how far the answer got.
    fn check(&self, url: &str, got: u64) -> Result<(), HttpError> {
        let spent = self.start.elapsed();
        if spent <= self.limit {
            return Ok(());
        }
        Err(HttpError::TooSlow {
            url: url.to_owned(),
            got,
            size: self.size,
            secs: u32::try_from(spent.as_secs()).unwrap_or(u32::MAX),
            rate: u32::try_from(self.rate).unwrap_or(u32::MAX),
        })
    }
}

/// 404 and 410 are [`HttpError::NotFound`]; any other status but a success is
/// [`HttpError::Status`].
fn check_status(resp: &Response, url: &str) -> Result<(), HttpError> {
    let status = resp.status().as_u16();
    if status == 404 || status == 410 {
        return Err(HttpError::NotFound {
            url: url.to_owned(),
            status,
        });
    }
    if !resp.status().is_success() {
        return Err(HttpError::Status {
            url: url.to_owned(),
            status,
        });
    }
    Ok(())
}

fn too_large(url: &str, limit: u64) -> HttpError {
    HttpError::TooLarge {
        url: url.to_owned(),
        limit,
    }
}

fn file_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> HttpError {
    let path = path.to_path_buf();
    move |source| HttpError::File { path, what, source }
}

/// The first byte of a `Content-Range: bytes A-B/N` header.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}
