//! HTTP GET with bounded retries and clear, one-line errors.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// A failed download.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered 404 or 410: this mirror does not have the file.
    #[error("{url}: not found (HTTP {status})")]
    NotFound {
        /// The URL.
        url: String,
        /// 404 or 410.
        status: u16,
    },
    /// Any other non-success status, after retries.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Connection, timeout or body errors, after retries.
    #[error("{url}: {what}")]
    Network {
        /// The URL.
        url: String,
        /// What went wrong.
        what: String,
    },
    /// The body exceeded the caller's limit.
    #[error("{url}: response is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
}

impl HttpError {
    /// Did the mirror say it does not have the file (as opposed to failing)?
    pub fn is_not_found(&self) -> bool {
        matches!(self, HttpError::NotFound { .. })
    }
}

/// A blocking HTTP client shared by all downloads.
#[derive(Clone)]
pub struct Http {
    client: reqwest::blocking::Client,
    retries: u32,
}

impl Http {
    /// A client with connect and per-read timeouts but no total timeout (large .debs).
    pub fn new() -> Result<Http, String> {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("debless/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            // The blocking client applies this to the connect, the headers and each body
            // read, so it detects stalls without capping the length of a large download.
            .timeout(timeout())
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| format!("cannot create an HTTP client: {e}"))?;
        Ok(Http { client, retries: 3 })
    }

    /// GET `url` into memory, retrying 5xx and network errors with backoff.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let mut attempt = 0;
        loop {
            match self.get_once(url, limit) {
                Ok(b) => return Ok(b),
                Err(e) if attempt < self.retries && retryable(&e) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn get_once(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let net = |e: &dyn std::fmt::Display| HttpError::Network {
            url: url.to_owned(),
            what: e.to_string(),
        };
        let resp = self
            .client
            .get(url)
            .send()
            .map_err(|e| net(&error_chain(&e)))?;
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
        let expected = resp.content_length();
        if expected.is_some_and(|n| n > limit) {
            return Err(HttpError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        let mut body = Vec::with_capacity(expected.unwrap_or(0).min(limit) as usize);
        resp.take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| net(&format!("reading the body failed: {e}")))?;
        if body.len() as u64 > limit {
            return Err(HttpError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        if let Some(n) = expected
            && n != body.len() as u64
        {
            return Err(net(&format!(
                "body is {} bytes, Content-Length said {n}",
                body.len()
            )));
        }
        Ok(body)
    }
}

impl Http {
    /// Download `url` into `partial`, resuming from whatever it already holds with an HTTP
    /// Range request, until it is `size` bytes long. Interrupted bodies are resumed (the
    /// retry budget is refilled whenever an attempt made progress); the caller verifies
    /// the hash. `progress` is told about every chunk written.
    pub fn download(
        &self,
        url: &str,
        partial: &Path,
        size: u64,
        progress: &dyn Fn(u64),
    ) -> Result<(), HttpError> {
        let io = |what: String| HttpError::Network {
            url: url.to_owned(),
            what,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(partial)
            .map_err(|e| io(format!("cannot open {} ({e})", partial.display())))?;
        let mut failures = 0;
        // The longest the partial file has been. Progress means growing past it, not merely
        // writing bytes: a mirror that answers every Range request with the same short 200
        // body (an HTML error page) rewrites the file from zero each time, and counting that
        // as progress refilled the retry budget forever.
        let mut longest = 0u64;
        loop {
            let have = file
                .seek(SeekFrom::End(0))
                .map_err(|e| io(format!("cannot seek {} ({e})", partial.display())))?;
            if have > size {
                file.set_len(0)
                    .map_err(|e| io(format!("cannot truncate {} ({e})", partial.display())))?;
                continue;
            }
            if have == size {
                return Ok(());
            }
            longest = longest.max(have);
            match self.download_once(url, &mut file, have, size, progress) {
                Ok(()) => {}
                Err((e, wrote)) => {
                    let now = file.seek(SeekFrom::End(0)).unwrap_or(0);
                    if wrote && now > longest {
                        failures = 0;
                        longest = now;
                    }
                    if failures >= self.retries || !retryable(&e) {
                        return Err(e);
                    }
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(200 << failures));
                }
            }
        }
    }

    /// One request: Range from `have`; appends to `file`. On error, says whether any
    /// bytes were written (so a slow but working mirror is not given up on).
    fn download_once(
        &self,
        url: &str,
        file: &mut File,
        have: u64,
        size: u64,
        progress: &dyn Fn(u64),
    ) -> Result<(), (HttpError, bool)> {
        let fail = |what: String| {
            (
                HttpError::Network {
                    url: url.to_owned(),
                    what,
                },
                false,
            )
        };
        let mut req = self.client.get(url);
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = req.send().map_err(|e| fail(error_chain(&e)))?;
        let status = resp.status().as_u16();
        match status {
            404 | 410 => {
                return Err((
                    HttpError::NotFound {
                        url: url.to_owned(),
                        status,
                    },
                    false,
                ));
            }
            206 => {
                let start = resp
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start);
                if start != Some(have) {
                    // The server resumed somewhere else: start over rather than splice.
                    file.set_len(0)
                        .map_err(|e| fail(format!("cannot truncate ({e})")))?;
                    return Err(fail(format!(
                        "server answered a Range request from byte {have} with {start:?}"
                    )));
                }
            }
            // No Range support: the body is the whole file again.
            200 if have > 0 => {
                file.set_len(0)
                    .map_err(|e| fail(format!("cannot truncate ({e})")))?;
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| fail(format!("cannot seek ({e})")))?;
            }
            416 => {
                file.set_len(0)
                    .map_err(|e| fail(format!("cannot truncate ({e})")))?;
                return Err(fail(
                    "server refused the resume range (HTTP 416)".to_owned(),
                ));
            }
            _ if !resp.status().is_success() => {
                return Err((
                    HttpError::Status {
                        url: url.to_owned(),
                        status,
                    },
                    false,
                ));
            }
            _ => {}
        }
        let start = file
            .stream_position()
            .map_err(|e| fail(format!("cannot seek ({e})")))?;
        if resp.content_length().is_some_and(|n| start + n > size) {
            return Err((
                HttpError::TooLarge {
                    url: url.to_owned(),
                    limit: size,
                },
                false,
            ));
        }
        let mut buf = vec![0u8; 256 << 10];
        let mut written = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err((
                        HttpError::Network {
                            url: url.to_owned(),
                            // The chain says why ("operation timed out"); the top
                            // error only says that decoding the body failed.
                            what: format!(
                                "reading the body failed after {written} bytes: {}",
                                error_chain(&e)
                            ),
                        },
                        written > 0,
                    ));
                }
            };
            if start + written + n as u64 > size {
                return Err((
                    HttpError::TooLarge {
                        url: url.to_owned(),
                        limit: size,
                    },
                    written > 0,
                ));
            }
            file.write_all(&buf[..n]).map_err(|e| {
                (
                    HttpError::Network {
                        url: url.to_owned(),
                        what: format!("cannot write the download ({e})"),
                    },
                    false,
                )
            })?;
            written += n as u64;
            progress(n as u64);
        }
        if start + written < size {
            return Err((
                HttpError::Network {
                    url: url.to_owned(),
                    what: format!("connection closed at byte {} of {size}", start + written),
                },
                written > 0,
            ));
        }
        Ok(())
    }
}

/// The stall timeout: `DEBLESS_HTTP_TIMEOUT_SECS` (whole seconds, at least 1), else 60 s.
/// A slow link may need more; tests use a short one to provoke stalls quickly.
fn timeout() -> Duration {
    let secs = std::env::var("DEBLESS_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// The first byte of a `Content-Range: bytes A-B/N` header.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

fn retryable(e: &HttpError) -> bool {
    match e {
        HttpError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        HttpError::Network { .. } => true,
        _ => false,
    }
}

/// reqwest's Display hides the cause ("error sending request"); include the chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
