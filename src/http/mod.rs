//! The one HTTP client: how debless talks to mirrors and registries alike. One place builds
//! the client (rustls, the system proxy, the stall timeout from `DEBLESS_HTTP_TIMEOUT_SECS`),
//! one [`RetryPolicy`] says what is worth another try and how long to wait, and
//! [`HttpError`] names the URL and keeps its cause as its `source()`.
//!
//! Callers keep their own protocol: mirrors (`pin`'s indices, `fetch`'s .debs) are read
//! with [`Http::get`] and [`Http::download`]; `registry` builds its API requests with
//! [`Http::request`] and sends them with [`Http::send`].

mod download;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testserver;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{RequestBuilder, Response};

/// Environment variable overriding the stall timeout, in whole seconds.
pub const TIMEOUT_ENV: &str = "DEBLESS_HTTP_TIMEOUT_SECS";

/// The stall timeout when [`TIMEOUT_ENV`] is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A request that carries bulk data (a blob upload) may take this many stall timeouts to be
/// answered: the server reads the whole body first (600 s with the default timeout, as
/// before the registry honoured the variable).
const UPLOAD_TIMEOUTS: u32 = 10;

/// Why an HTTP exchange failed. A failed exchange names its URL; [`Http::send`] shows it
/// without its query (registry upload sessions and signed redirects keep state there that
/// is noise, or secret, in a message).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The client could not be built (the TLS roots or the proxy settings are unusable).
    #[error("cannot create an HTTP client; check the proxy environment variables")]
    Client(#[source] reqwest::Error),
    /// A request could not be put together (a header value that is not one).
    #[error("cannot build the HTTP request")]
    Request(#[source] reqwest::Error),
    /// The request could not be sent or answered: refused, reset, timed out, too many
    /// redirects.
    #[error("{method} {url}: {}", TransportCause::of(source))]
    Transport {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// reqwest's error, without its copy of the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered 404 or 410: it does not have the file.
    #[error("{url}: not found (HTTP {status})")]
    NotFound {
        /// The URL.
        url: String,
        /// 404 or 410.
        status: u16,
    },
    /// Any other status that is not a success.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The connection failed while the body arrived.
    #[error("{url}: reading the body failed after {read} bytes")]
    Body {
        /// The URL.
        url: String,
        /// Bytes read before the failure (in this request).
        read: u64,
        /// The read error (its own source says why: "operation timed out").
        #[source]
        source: std::io::Error,
    },
    /// The body is, or says it is, larger than the caller allows.
    #[error("{url}: response is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The body ended before its Content-Length.
    #[error("{url}: body is {got} bytes, Content-Length said {expected}")]
    ShortBody {
        /// The URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Content-Length.
        expected: u64,
    },
    /// The connection closed before a download was complete.
    #[error("{url}: connection closed at byte {at} of {size}")]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes the file holds.
        at: u64,
        /// Bytes it should hold.
        size: u64,
    },
    /// A Range request was answered from another offset; the partial file was restarted.
    #[error(
        "{url}: a Range request from byte {from} was answered {}; starting the file over",
        match answered { Some(b) => format!("from byte {b}"), None => "without a usable Content-Range".to_owned() }
    )]
    BadResume {
        /// The URL.
        url: String,
        /// The offset asked for.
        from: u64,
        /// The offset answered, if the server said one.
        answered: Option<u64>,
    },
    /// The server refused to resume (416); the partial file was restarted.
    #[error("{url}: server refused the resume range (HTTP 416); starting the file over")]
    RangeRefused {
        /// The URL.
        url: String,
    },
    /// The local file a download goes into failed.
    #[error("{}: {what}; check the disk and permissions", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl HttpError {
    /// Did the server say it does not have the file (as opposed to failing)?
    pub fn is_not_found(&self) -> bool {
        matches!(self, HttpError::NotFound { .. })
    }

    /// The status the server answered, if that is the failure.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::NotFound { status, .. } | HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An error that knows whether another attempt could succeed.
pub trait Retryable {
    /// Worth another try?
    fn is_retryable(&self) -> bool;
}

impl Retryable for HttpError {
    /// The policy: a status [`retryable_status`] names; a connection refused, reset or
    /// timed out, or a body cut short; never a redirect loop, a 4xx other than 408 and 429,
    /// a body over the limit, or a local file error.
    fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => retryable_status(*status),
            HttpError::Transport { source, .. } => !(source.is_redirect() || source.is_builder()),
            HttpError::Body { .. }
            | HttpError::ShortBody { .. }
            | HttpError::Truncated { .. }
            | HttpError::BadResume { .. }
            | HttpError::RangeRefused { .. } => true,
            HttpError::Client(_)
            | HttpError::Request(_)
            | HttpError::NotFound { .. }
            | HttpError::TooLarge { .. }
            | HttpError::File { .. } => false,
        }
    }
}

/// Is an answer with this status worth another try? 5xx (the server failed), 429 (too
/// many requests) and 408 (the server timed out waiting for us); no other 4xx, which would
/// be answered the same way again.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// How often, and after how long, a failed exchange is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// The wait before the first retry; each further retry waits twice as long as the last.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries after 0.4 s, 0.8 s and 1.6 s: enough to ride out a mirror or registry
    /// restarting, short enough that a dead one fails within seconds.
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            first_delay: Duration::from_millis(400),
        }
    }
}

impl RetryPolicy {
    /// The default delays with `retries` retries.
    pub fn with_retries(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        self.first_delay
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
    }

    /// Run `f` until it succeeds, fails with an error that is not retryable, or the
    /// retries are spent; sleeps [`RetryPolicy::delay`] between attempts.
    pub fn run<T, E: Retryable>(&self, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let mut retry = 0;
        loop {
            match f() {
                Err(e) if retry < self.retries && e.is_retryable() => {
                    retry += 1;
                    std::thread::sleep(self.delay(retry));
                }
                r => return r,
            }
        }
    }
}

/// The blocking HTTP client every download and registry request goes through.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::blocking::Client,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Http {
    /// A client with the stall timeout from `$DEBLESS_HTTP_TIMEOUT_SECS` and the default
    /// [`RetryPolicy`].
    pub fn new() -> Result<Http, HttpError> {
        Http::with_timeout(timeout_from_env())
    }

    /// A client whose connection may stall for at most `timeout`: the blocking client
    /// applies it to the connect, the answer's headers and each read of the body, so it
    /// catches a stall without capping the length of a large download. Proxies come from
    /// the environment (`https_proxy`, `no_proxy`...); TLS is rustls with the platform's
    /// roots.
    pub fn with_timeout(timeout: Duration) -> Result<Http, HttpError> {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("debless/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(HttpError::Client)?;
        Ok(Http {
            client,
            timeout,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Http {
        self.retry = retry;
        self
    }

    /// The retry policy of this client.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The stall timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A request to fill in and pass to [`Http::send`].
    pub fn request(&self, method: Method, url: reqwest::Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// How long a request whose body is bulk data (a blob upload) may take to be answered:
    /// the server may read all of it first.
    pub fn upload_timeout(&self) -> Duration {
        self.timeout.saturating_mul(UPLOAD_TIMEOUTS)
    }

    /// Send a request once (no retry: the caller's protocol decides what to repeat). Any
    /// answer, whatever its status, is `Ok`.
    pub fn send(&self, request: RequestBuilder) -> Result<Response, HttpError> {
        let req = request.build().map_err(HttpError::Request)?;
        let method = req.method().clone();
        let url = display_url(req.url());
        self.client
            .execute(req)
            .map_err(|e| transport(method, url, e))
    }
}

/// A transport error for `url`, without reqwest's own copy of the URL (with its query).
fn transport(method: Method, url: String, e: reqwest::Error) -> HttpError {
    HttpError::Transport {
        method,
        url,
        source: e.without_url(),
    }
}

/// What went wrong below HTTP, as a user would name it: each says what to check. Computed
/// from the error when shown, so [`HttpError`] stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportCause {
    /// Nothing listens at the host and port.
    Refused,
    /// The host name does not resolve.
    Dns,
    /// The TLS handshake failed: an untrusted certificate, or no TLS on that port.
    Tls,
    /// No answer within the timeout.
    Timeout,
    /// The server or a middlebox closed the connection.
    Reset,
    /// Too many redirects.
    Redirects,
    /// Anything else (reqwest's text follows).
    Other,
}

impl TransportCause {
    /// Classify `e` by its kind and its chain of causes.
    pub fn of(e: &reqwest::Error) -> TransportCause {
        if e.is_redirect() {
            return TransportCause::Redirects;
        }
        let mut texts = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(cause) = next {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                match io.kind() {
                    ConnectionRefused => return TransportCause::Refused,
                    TimedOut => return TransportCause::Timeout,
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                        return TransportCause::Reset;
                    }
                    _ => {}
                }
            }
            texts.push(cause.to_string().to_ascii_lowercase());
            next = cause.source();
        }
        let any = |needles: &[&str]| texts.iter().any(|t| needles.iter().any(|n| t.contains(n)));
        if e.is_timeout() || any(&["timed out", "deadline has elapsed"]) {
            TransportCause::Timeout
        } else if any(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
        ]) {
            TransportCause::Dns
        } else if any(&[
            "certificate",
            "tls",
            "handshake",
            "corrupt message",
            "alert",
        ]) {
            TransportCause::Tls
        } else if any(&["connection refused"]) {
            TransportCause::Refused
        } else if any(&["connection reset", "connection closed", "broken pipe"]) {
            TransportCause::Reset
        } else {
            TransportCause::Other
        }
    }
}

impl std::fmt::Display for TransportCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportCause::Refused => {
                "connection refused: nothing listens there; check the URL's host and port, and that the server is up"
            }
            TransportCause::Dns => {
                "the host name does not resolve; check the URL and the machine's DNS"
            }
            TransportCause::Tls => {
                "TLS failed: the certificate is not trusted or the port does not speak TLS; check https:// against http:// and the CA bundle (SSL_CERT_FILE)"
            }
            TransportCause::Timeout => {
                "timed out; the server is slow or unreachable (raise DEBLESS_HTTP_TIMEOUT_SECS for a slow one)"
            }
            TransportCause::Reset => "the connection was closed or reset mid-request",
            TransportCause::Redirects => "too many redirects",
            TransportCause::Other => "the request failed",
        })
    }
}

/// `url` for messages: without its query.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// The stall timeout: `DEBLESS_HTTP_TIMEOUT_SECS` (whole seconds, at least 1), else 60 s.
/// A slow link may need more; tests use a short one to provoke stalls quickly.
pub fn timeout_from_env() -> Duration {
    parse_timeout(std::env::var(TIMEOUT_ENV).ok().as_deref())
}

/// A timeout in whole seconds; anything else (unset, 0, not a number) is the default.
fn parse_timeout(secs: Option<&str>) -> Duration {
    secs.and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}
