//! The client against a real socket: retries, timeouts, resume, limits, redirects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::testserver::{Reply, Server};
use super::*;
use crate::text::error_line;

/// Retries that do not slow the tests down.
const FAST: RetryPolicy = RetryPolicy {
    retries: 3,
    first_delay: Duration::from_millis(5),
};

fn client() -> Http {
    Http::with_timeout(Duration::from_secs(10))
        .unwrap()
        .with_retry(FAST)
}

/// Bytes that differ at every offset, so a wrong splice shows.
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7919 % 251) as u8).collect()
}

#[test]
fn a_503_is_retried_and_the_next_answer_taken() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = Server::start(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(503),
        _ => Reply::status(200).body("hello"),
    });
    let body = client().get(&server.url("/f"), 100).unwrap();
    assert_eq!(body, b"hello");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_404_or_a_403_is_not_retried_and_a_500_is_until_the_budget_is_spent() {
    let server = Server::start(|r| match r.path() {
        "/gone" => Reply::status(404),
        "/denied" => Reply::status(403),
        _ => Reply::status(500),
    });
    let http = client();
    let e = http.get(&server.url("/gone"), 100).unwrap_err();
    assert!(e.is_not_found() && !e.is_retryable(), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{}: not found (HTTP 404)", server.url("/gone"))
    );
    let e = http.get(&server.url("/denied"), 100).unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert_eq!(server.requests().len(), 2, "one request each");

    let e = http.get(&server.url("/broken"), 100).unwrap_err();
    assert_eq!(e.status(), Some(500));
    let broken = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/broken")
        .count();
    assert_eq!(broken, 1 + FAST.retries as usize);
}

#[test]
fn a_stall_is_a_timeout_that_names_the_url() {
    let server = Server::start(|r| match r.path() {
        "/mute" => Reply::status(200).stall_headers(Duration::from_secs(5)),
        _ => Reply::status(200)
            .body(data(1000))
            .stall(Duration::from_secs(5)),
    });
    let http = Http::with_timeout(Duration::from_secs(1))
        .unwrap()
        .with_retry(RetryPolicy::with_retries(0));
    let start = Instant::now();
    let url = server.url("/slow.deb");
    let e = http.get(&url, 10_000).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(e.is_retryable(), "a stall is worth another try: {e}");
    let line = error_line(&e);
    assert!(
        line.starts_with(&url) && line.contains("timed out"),
        "{line}"
    );

    // No answer at all: the same, for the request.
    let mute = server.url("/mute");
    let e = http.get(&mute, 10_000).unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let line = error_line(&e);
    assert!(
        line.starts_with(&format!("GET {mute}")) && line.contains("timed out"),
        "{line}"
    );

    // The same for a download, whose error says how far it got.
    let tmp = tempfile::tempdir().unwrap();
    let e = http
        .download(&url, &tmp.path().join("part"), 1000, &|_| {})
        .unwrap_err();
    let line = error_line(&e);
    assert!(
        line.starts_with(&url) && line.contains("after 0 bytes") && line.contains("timed out"),
        "{line}"
    );
}

#[test]
fn a_truncated_download_resumes_with_a_range_request() {
    let body = data(100_000);
    let served = body.clone();
    let server = Server::start(move |r| match r.header("range") {
        None => Reply::status(200).body(served.clone()).cut_at(30_000),
        Some(range) => {
            let from: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            Reply::status(206)
                .header(
                    "Content-Range",
                    format!("bytes {from}-{}/{}", served.len() - 1, served.len()),
                )
                .body(served[from..].to_vec())
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("part");
    let got = AtomicUsize::new(0);
    client()
        .download(&server.url("/a.deb"), &part, body.len() as u64, &|n| {
            got.fetch_add(n as usize, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), body);
    let ranges: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=30000-".to_owned())]);
    assert_eq!(got.load(Ordering::SeqCst), body.len());
}

#[test]
fn a_resume_answered_from_the_wrong_offset_starts_over() {
    let body = data(50_000);
    let served = body.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = Server::start(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::status(200).body(served.clone()).cut_at(10_000),
        // Claims to resume but from byte 0: never spliced.
        1 => Reply::status(206)
            .header("Content-Range", format!("bytes 0-49999/{}", served.len()))
            .body(served.clone()),
        // A server without Range support sends it all again.
        _ => Reply::status(200).body(served.clone()),
    });
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("part");
    client()
        .download(&server.url("/b.deb"), &part, body.len() as u64, &|_| {})
        .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), body);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn bodies_over_the_limit_are_refused_and_not_retried() {
    let server = Server::start(|r| match r.path() {
        "/declared" => Reply::status(200).body(data(100)),
        // No Content-Length: the limit is enforced while reading.
        _ => Reply::status(200).body(data(100)).without_length(),
    });
    let http = client();
    for path in ["/declared", "/undeclared"] {
        let e = http.get(&server.url(path), 10).unwrap_err();
        assert!(matches!(e, HttpError::TooLarge { limit: 10, .. }), "{e}");
        assert!(e.to_string().contains("larger than 10 bytes"), "{e}");
    }
    assert_eq!(server.requests().len(), 2, "never retried");

    // A download whose Content-Length exceeds the pinned size.
    let tmp = tempfile::tempdir().unwrap();
    let e = http
        .download(&server.url("/declared"), &tmp.path().join("p"), 50, &|_| {})
        .unwrap_err();
    assert!(matches!(e, HttpError::TooLarge { limit: 50, .. }), "{e}");
}

#[test]
fn redirects_are_followed_and_a_loop_is_refused_at_once() {
    let server = Server::start(|r| match r.path() {
        "/old" => Reply::status(302).header("Location", "/new"),
        "/new" => Reply::status(200).body("moved"),
        _ => Reply::status(302).header("Location", "/loop"),
    });
    let http = client();
    assert_eq!(http.get(&server.url("/old"), 100).unwrap(), b"moved");
    let before = server.requests().len();
    let e = http.get(&server.url("/loop"), 100).unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    let line = error_line(&e);
    assert!(
        line.starts_with(&format!("GET {}", server.url("/loop"))) && line.contains("redirect"),
        "{line}"
    );
    // Ten redirects followed, then the error; no second round.
    assert_eq!(server.requests().len() - before, 11);
}

#[test]
fn the_policy_doubles_its_delay_and_stops_at_what_cannot_succeed() {
    let p = RetryPolicy::default();
    assert_eq!(
        (1..=3).map(|r| p.delay(r)).collect::<Vec<_>>(),
        [400, 800, 1600].map(Duration::from_millis)
    );
    for (status, retry) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (404, false),
        (401, false),
        (403, false),
        (400, false),
    ] {
        assert_eq!(retryable_status(status), retry, "{status}");
    }
    let tries = AtomicUsize::new(0);
    let r: Result<(), HttpError> = FAST.run(|| {
        tries.fetch_add(1, Ordering::SeqCst);
        Err(HttpError::NotFound {
            url: "u".into(),
            status: 404,
        })
    });
    assert!(r.is_err());
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}

#[test]
fn send_delivers_the_request_and_its_errors_never_show_the_query() {
    let server = Server::start(|r| match r.path() {
        "/ok" => Reply::status(201).body(r.body.clone()),
        _ => Reply::status(200).stall_headers(Duration::from_secs(5)),
    });
    let http = Http::with_timeout(Duration::from_secs(1)).unwrap();
    let url = |path: &str| reqwest::Url::parse(&server.url(path)).unwrap();
    let resp = http
        .send(
            http.request(Method::PUT, url("/ok?digest=sha256%3Aab"))
                .body("abc"),
        )
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "any answer is Ok");
    let seen = &server.requests()[0];
    assert_eq!((seen.method.as_str(), &seen.body[..]), ("PUT", &b"abc"[..]));
    assert_eq!(seen.query("digest").as_deref(), Some("sha256:ab"));

    // An upload session's state (or a signed URL's signature) stays out of the message.
    let e = http
        .send(http.request(Method::PATCH, url("/session?_state=secret")))
        .unwrap_err();
    let line = error_line(&e);
    assert!(
        line.starts_with(&format!("PATCH {}", server.url("/session"))),
        "{line}"
    );
    assert!(
        !line.contains("secret") && line.contains("timed out"),
        "{line}"
    );
}

#[test]
fn the_timeout_is_whole_seconds_or_60() {
    assert_eq!(parse_timeout(Some(" 2 ")), Duration::from_secs(2));
    for bad in [None, Some("0"), Some("1.5"), Some(""), Some("soon")] {
        assert_eq!(parse_timeout(bad), DEFAULT_TIMEOUT, "{bad:?}");
    }
}

#[test]
fn transport_failures_say_what_happened() {
    let http = Http::with_timeout(Duration::from_secs(1))
        .unwrap()
        .with_retry(RetryPolicy::with_retries(0));
    let cause = |url: &str| match http.get(url, 1000).unwrap_err() {
        HttpError::Transport { source, .. } => TransportCause::of(&source),
        e => panic!("{url}: not a transport error: {e}"),
    };
    // Nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = format!("http://127.0.0.1:{port}/x");
    assert_eq!(cause(&refused), TransportCause::Refused);
    let line = error_line(&http.get(&refused, 1000).unwrap_err());
    assert!(
        line.starts_with(&format!(
            "GET {refused}: connection refused: nothing listens there"
        )),
        "{line}"
    );
    // A name that never resolves (RFC 2606 reserves .invalid).
    assert_eq!(cause("http://debless-test.invalid/x"), TransportCause::Dns);
    // TLS spoken to a plain-HTTP server.
    let server = Server::start(|_| Reply::status(200).body("plain"));
    let tls = server.url("/x").replacen("http://", "https://", 1);
    assert_eq!(cause(&tls), TransportCause::Tls);
    // No answer within the timeout.
    let mute = Server::start(|_| Reply::status(200).stall_headers(Duration::from_secs(5)));
    assert_eq!(cause(&mute.url("/x")), TransportCause::Timeout);
}
