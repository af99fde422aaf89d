//! A tiny HTTP/1.1 server on 127.0.0.1 for in-process tests of the client and of the
//! registry protocol: one request per connection, every request recorded, each answered
//! by a handler that may also cut the body short or stall.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// `GET`, `PUT`...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        reqwest::Url::parse(&format!("http://x/?{q}"))
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// An answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close (Content-Length still says all).
    cut_at: Option<usize>,
    /// Wait this long after the headers, before the body.
    stall: Option<Duration>,
    /// Wait this long before the headers.
    stall_headers: Option<Duration>,
    /// Leave out Content-Length (a HEAD answer describing a body it does not send).
    no_length: bool,
    /// Send the body this many bytes at a time, waiting this long before each piece.
    drip: Option<(usize, Duration)>,
}

impl Reply {
    /// An empty answer with this status.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    /// With this body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// With this header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Close the connection after `n` bytes of the body.
    pub fn cut_at(mut self, n: usize) -> Reply {
        self.cut_at = Some(n);
        self
    }

    /// Send nothing for `d` after the headers.
    pub fn stall(mut self, d: Duration) -> Reply {
        self.stall = Some(d);
        self
    }

    /// Send nothing for `d` before the headers.
    pub fn stall_headers(mut self, d: Duration) -> Reply {
        self.stall_headers = Some(d);
        self
    }

    /// Send the body `n` bytes at a time, `every` apart: never a stall, always slow.
    pub fn drip(mut self, n: usize, every: Duration) -> Reply {
        self.drip = Some((n.max(1), every));
        self
    }

    /// No Content-Length header (the handler may set its own).
    pub fn without_length(mut self) -> Reply {
        self.no_length = true;
        self
    }
}

/// What answers a request.
pub(crate) type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The server; stops accepting on drop.
pub(crate) struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Serve `handler` on a free port.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (seen, handler) = (seen2.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &seen, &*handler));
            }
        });
        Server { port, seen, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Request>>, handler: &Handler) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(req.clone());
    let reply = handler(&req);
    let _ = write_reply(conn, &req, &reply);
}

fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn write_reply(mut conn: TcpStream, req: &Request, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if let Some(d) = reply.stall_headers {
        std::thread::sleep(d);
    }
    conn.write_all(head.as_bytes())?;
    conn.flush()?;
    if let Some(d) = reply.stall {
        std::thread::sleep(d);
    }
    if req.method == "HEAD" {
        return Ok(());
    }
    let body = match reply.cut_at {
        Some(n) => &reply.body[..n.min(reply.body.len())],
        None => &reply.body[..],
    };
    if let Some((n, every)) = reply.drip {
        for piece in body.chunks(n) {
            std::thread::sleep(every);
            conn.write_all(piece)?;
            conn.flush()?;
        }
        return Ok(());
    }
    conn.write_all(body)?;
    conn.flush()
}
