//! The local mirror: a small threaded HTTP/1.1 file server on 127.0.0.1, enough for
//! debless (reqwest) and apt (keep-alive, pipelined GETs). It has no Range support: a 200
//! with the whole file is always a valid answer, and nothing here drops a connection.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

/// The longest request or header line read.
const MAX_LINE: u64 = 16 * 1024;
/// How long an idle keep-alive connection is kept.
const IDLE: Duration = Duration::from_secs(60);

/// A running server; it serves until the process exits.
pub struct Server {
    url: String,
}

impl Server {
    /// Serve the files under `root` on a free port; requests that fail are logged to `log`.
    pub fn start(root: &Path, log: &Path) -> anyhow::Result<Server> {
        // Port 0: the kernel picks a free one.
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot listen on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let log = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let log = Arc::new(Mutex::new(log));
        let root = Arc::new(root.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, log) = (Arc::clone(&root), Arc::clone(&log));
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &root, &log) {
                        note(&log, &format!("connection: {e}"));
                    }
                });
            }
        });
        Ok(Server {
            url: format!("http://127.0.0.1:{port}/"),
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn note(log: &Mutex<File>, line: &str) {
    if let Ok(mut f) = log.lock() {
        let _ = writeln!(f, "{line}");
    }
}

/// Answer the requests of one connection until the client closes it or asks to.
fn serve(stream: TcpStream, root: &Path, log: &Mutex<File>) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let Some(request) = read_line(&mut reader)? else {
            return Ok(());
        };
        if request.is_empty() {
            continue; // a stray CRLF between requests is allowed
        }
        let mut words = request.split(' ');
        let (method, target, version) = (words.next(), words.next(), words.next());
        let mut keep_alive = version == Some("HTTP/1.1");
        loop {
            let Some(header) = read_line(&mut reader)? else {
                return Ok(());
            };
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.trim().eq_ignore_ascii_case("connection")
            {
                let value = value.trim().to_ascii_lowercase();
                keep_alive = (keep_alive || value == "keep-alive") && value != "close";
            }
        }
        let file = match (method, target) {
            (Some("GET" | "HEAD"), Some(target)) => resolve(root, target)
                .filter(|p| p.is_file())
                .and_then(|p| File::open(p).ok()),
            _ => {
                note(log, &format!("{request}: 501"));
                respond(&mut stream, "501 Not Implemented", 0, false)?;
                return Ok(());
            }
        };
        match file {
            Some(mut file) => {
                let len = file.metadata()?.len();
                respond(&mut stream, "200 OK", len, keep_alive)?;
                if method == Some("GET") {
                    // File to socket: std uses sendfile.
                    io::copy(&mut file, &mut stream)?;
                }
            }
            None => {
                note(log, &format!("{request}: 404"));
                respond(&mut stream, "404 Not Found", 0, keep_alive)?;
            }
        }
        if !keep_alive {
            return Ok(());
        }
    }
}

/// One CRLF-terminated line without its terminator; None at the end of the stream.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = String::new();
    if reader.by_ref().take(MAX_LINE).read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

fn respond(stream: &mut TcpStream, status: &str, len: u64, keep_alive: bool) -> io::Result<()> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {len}\r\nConnection: {connection}\r\n\r\n"
    )
}

/// The file a request target names under `root`: percent-decoded, no `.` or `..`
/// segments; None if it names nothing servable.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = match target.split_once("://") {
        // absolute-form (`http://host/path`), as a proxy would be asked
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = String::from_utf8(percent_decode(path)?).ok()?;
    let mut out = root.to_owned();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// `%2b` → `+`; None for a malformed escape. apt percent-encodes pool file names.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_inside_the_root() {
        let root = Path::new("/m");
        assert_eq!(
            resolve(root, "/debian/pool/main/g/gcc/libstdc%2b%2b6_1_amd64.deb"),
            Some(PathBuf::from(
                "/m/debian/pool/main/g/gcc/libstdc++6_1_amd64.deb"
            ))
        );
        assert_eq!(
            resolve(root, "http://127.0.0.1:1/debian/dists/x/InRelease?a=b"),
            Some(PathBuf::from("/m/debian/dists/x/InRelease"))
        );
        assert_eq!(resolve(root, "/debian/../../etc/passwd"), None);
        assert_eq!(resolve(root, "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/bad%zz"), None);
    }

    #[test]
    fn serves_files_over_keep_alive() -> anyhow::Result<()> {
        let d = tempfile::tempdir()?;
        std::fs::create_dir_all(d.path().join("a"))?;
        std::fs::write(d.path().join("a/f+1"), b"hello")?;
        let server = Server::start(d.path(), &d.path().join("log"))?;
        let addr = server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let mut s = TcpStream::connect(addr)?;
        // Two pipelined requests on one connection, the second one closing it.
        s.write_all(b"GET /a/f%2b1 HTTP/1.1\r\nHost: x\r\n\r\nGET /a/nope HTTP/1.1\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Content-Length: 5\r\n"), "{answer}");
        assert!(
            answer.contains("\r\n\r\nhelloHTTP/1.1 404 Not Found\r\n"),
            "{answer}"
        );
        Ok(())
    }
}
