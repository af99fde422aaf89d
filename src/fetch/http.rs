//! HTTP GET with bounded retries and clear, one-line errors.

use std::io::Read;
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
            .timeout(Duration::from_secs(60))
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

fn retryable(e: &HttpError) -> bool {
    match e {
        HttpError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        HttpError::Network { .. } => true,
        _ => false,
    }
}

/// reqwest's Display hides the cause ("error sending request"); include the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
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
