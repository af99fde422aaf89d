//! One repository of one registry over the distribution API: authentication (anonymous,
//! basic, bearer tokens), blob existence, mounts, uploads and manifest PUTs, and the GETs
//! of manifests and blobs the registry layer cache reads. Every request
//! that can be answered 401 is retried once after (re-)authenticating. The HTTP itself is
//! [`crate::http`]'s; retrying whole operations is the caller's ([`super::push`]). Reading
//! back (manifests, blobs and referrers, each checked against its digest) is in `read.rs`,
//! an `impl Client` of its own over the same requests.
//!
//! Over 600 lines on purpose: one client, one state (the repository, its auth and its
//! retries) shared by every request; split, the auth dance would be spread over files.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, Url};

use super::auth::{Credentials, parse_www_authenticate};
use super::plan::{Blob, BlobData, Document};
use super::{Access, At, PushError, Target};
use crate::digest::Digest;
use crate::http::{Http, HttpError, display_url, retryable_status};

mod read;

pub use read::Fetched;

/// The largest token answer read.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// What the registry said to a manifest PUT besides "created".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Stored {
    /// `OCI-Subject`: a registry with the referrers API names the `subject` it indexed
    /// (distribution-spec "Pushing Manifests with Subject").
    pub subject: Option<String>,
}

/// What a mount attempt got.
pub(super) enum Mount {
    /// The registry linked the blob from the other repository.
    Mounted,
    /// It did not (202): upload into this session instead.
    Session(Url),
}

/// A client for `host/repository`.
pub(super) struct Client {
    http: Http,
    /// `scheme://host/v2/`.
    base: Url,
    /// Registry host (and port).
    pub host: String,
    /// Repository pushed to.
    pub repository: String,
    /// What the session asks a token service for.
    access: Access,
    credentials: Option<Credentials>,
    /// Where credentials were looked for, for the message when none were found.
    searched: String,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    /// The `Authorization` value to send, once known.
    header: Option<String>,
    /// Scopes asked of the token service: ours plus any a challenge named.
    scopes: BTreeSet<String>,
}

/// The context of an error: which request, for what.
struct Ctx<'a> {
    url: &'a Url,
    what: &'a str,
}

impl Client {
    /// A client for `target` over `http` (`insecure`: plain HTTP) that will `access` it.
    pub fn new(
        http: Http,
        target: &Target,
        insecure: bool,
        access: Access,
        credentials: Option<Credentials>,
        searched: String,
    ) -> Result<Client, PushError> {
        let scheme = if insecure { "http" } else { "https" };
        // Parsed so that it is normalised (a default port dropped) like the URLs compared
        // with it.
        let base = Url::parse(&format!("{scheme}://{}/v2/", target.host)).map_err(|e| {
            PushError::Host {
                host: target.host.clone(),
                source: e.into(),
            }
        })?;
        Ok(Client {
            http,
            base,
            host: target.host.clone(),
            repository: target.repository.clone(),
            access,
            credentials,
            searched,
            auth: Mutex::new(AuthState::default()),
        })
    }

    fn url(&self, rest: &str) -> Result<Url, PushError> {
        self.base.join(rest).map_err(|e| PushError::Host {
            host: self.host.clone(),
            source: e.into(),
        })
    }

    /// `GET /v2/`: check that the registry speaks the API and settle authentication before
    /// the parallel uploads start (so they do not all meet a 401 at once).
    pub fn ping(&self) -> Result<(), PushError> {
        let url = self.url("")?;
        let ctx = Ctx {
            url: &url,
            what: "API check",
        };
        let resp = self.send(&ctx, &|| Ok(self.http.request(Method::GET, url.clone())))?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.status_error(resp, &ctx))
    }

    /// Does the repository have `digest`?
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool, PushError> {
        let url = self.url(&format!("{}/blobs/{digest}", self.repository))?;
        let what = format!("blob {digest}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.request(Method::HEAD, url.clone())))?;
        match resp.status().as_u16() {
            200 => {
                self.check_digest(&resp, digest, &ctx)?;
                Ok(true)
            }
            404 => Ok(false),
            _ => Err(self.status_error(resp, &ctx)),
        }
    }

    /// Ask the registry to link `digest` from repository `from` (same registry).
    pub fn mount(&self, digest: &Digest, from: &str) -> Result<Mount, PushError> {
        let mut url = self.url(&format!("{}/blobs/uploads/", self.repository))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let what = format!("blob {digest} (mount from {from})");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| {
            Ok(self
                .http
                .request(Method::POST, url.clone())
                .body(Vec::new()))
        })?;
        match resp.status().as_u16() {
            201 => {
                self.check_digest(&resp, digest, &ctx)?;
                Ok(Mount::Mounted)
            }
            202 => Ok(Mount::Session(self.location(&resp, &ctx)?)),
            _ => Err(self.status_error(resp, &ctx)),
        }
    }

    /// Open an upload session for `digest`.
    pub fn start_upload(&self, digest: &Digest) -> Result<Url, PushError> {
        let url = self.url(&format!("{}/blobs/uploads/", self.repository))?;
        let what = format!("blob {digest}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| {
            Ok(self
                .http
                .request(Method::POST, url.clone())
                .body(Vec::new()))
        })?;
        match resp.status().as_u16() {
            202 => self.location(&resp, &ctx),
            _ => Err(self.status_error(resp, &ctx)),
        }
    }

    /// Send `blob` into the upload `session`: one PUT when it fits in `chunk_size`, else
    /// PATCHes of `chunk_size` bytes and a closing PUT. Returns the number of requests
    /// that carried data.
    pub fn upload(&self, session: Url, blob: &Blob, chunk_size: u64) -> Result<usize, PushError> {
        let what = format!("blob {}", blob.digest);
        if blob.size <= chunk_size {
            let url = with_digest(&session, &blob.digest);
            let ctx = Ctx {
                url: &url,
                what: &what,
            };
            let resp = self.send(&ctx, &|| {
                Ok(self
                    .http
                    .request(Method::PUT, url.clone())
                    .timeout(self.http.upload_timeout())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body(blob)?))
            })?;
            return self.finish(resp, &blob.digest, &ctx).map(|()| 1);
        }

        let mut chunks_of = Chunks::open(blob)?;
        let mut loc = session;
        let mut offset = 0u64;
        let mut chunks = 0;
        let mut buf = vec![0u8; chunk_size as usize];
        while offset < blob.size {
            let n = chunk_size.min(blob.size - offset) as usize;
            chunks_of.read(&mut buf[..n], offset)?;
            let end = offset + n as u64 - 1;
            let ctx = Ctx {
                url: &loc,
                what: &what,
            };
            let resp = self.send(&ctx, &|| {
                Ok(self
                    .http
                    .request(Method::PATCH, loc.clone())
                    .timeout(self.http.upload_timeout())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{offset}-{end}"))
                    .header(CONTENT_LENGTH, n)
                    .body(buf[..n].to_vec()))
            })?;
            if resp.status().as_u16() != 202 {
                return Err(self.status_error(resp, &ctx));
            }
            // The registry says how much it holds; anything else than all we sent means
            // the session is not where we think, and the retry starts the blob over.
            if let Some(range) = header(&resp, "range")
                && range != format!("0-{end}")
            {
                return Err(PushError::Protocol {
                    at: self.at(&Ctx {
                        url: &loc,
                        what: &what,
                    }),
                    problem: format!(
                        "after bytes {offset}-{end} the registry holds {range:?}, not 0-{end}"
                    ),
                    hint: "the upload will be retried from the start",
                });
            }
            loc = self.location(&resp, &ctx)?;
            offset += n as u64;
            chunks += 1;
        }
        let url = with_digest(&loc, &blob.digest);
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| {
            Ok(self
                .http
                .request(Method::PUT, url.clone())
                .header(CONTENT_LENGTH, 0)
                .body(Vec::new()))
        })?;
        self.finish(resp, &blob.digest, &ctx)?;
        Ok(chunks)
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the document's exact bytes.
    pub fn put_manifest(&self, reference: &str, doc: &Document) -> Result<Stored, PushError> {
        let url = self.url(&format!("{}/manifests/{reference}", self.repository))?;
        let what = if reference == doc.digest.to_string() {
            format!("manifest {}", doc.digest)
        } else {
            format!("tag {reference} ({})", doc.digest)
        };
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| {
            Ok(self
                .http
                .request(Method::PUT, url.clone())
                .header(CONTENT_TYPE, doc.media_type.as_str())
                .body(doc.bytes.clone()))
        })?;
        let stored = Stored {
            subject: header(&resp, "oci-subject"),
        };
        self.finish(resp, &doc.digest, &ctx)?;
        Ok(stored)
    }

    /// A 201 whose Docker-Content-Digest (if any) is `digest`.
    fn finish(&self, resp: Response, digest: &Digest, ctx: &Ctx) -> Result<(), PushError> {
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(resp, ctx));
        }
        self.check_digest(&resp, digest, ctx)
    }

    /// Registries compare digests as text, and so does this.
    fn check_digest(&self, resp: &Response, digest: &Digest, ctx: &Ctx) -> Result<(), PushError> {
        match header(resp, "docker-content-digest") {
            Some(got) if got != digest.to_string() => Err(PushError::DigestMismatch {
                at: self.at(ctx),
                expected: *digest,
                got,
            }),
            _ => Ok(()),
        }
    }

    /// The `Location` of an upload session, resolved against the request URL.
    fn location(&self, resp: &Response, ctx: &Ctx) -> Result<Url, PushError> {
        let Some(loc) = header(resp, LOCATION.as_str()) else {
            return Err(PushError::Protocol {
                at: self.at(ctx),
                problem: format!("HTTP {} without a Location", resp.status()),
                hint: "the registry does not follow the distribution API; report it to its \
                       operator",
            });
        };
        ctx.url.join(&loc).map_err(|e| PushError::BadLocation {
            at: self.at(ctx),
            location: loc,
            source: e.into(),
        })
    }

    /// Send the request `make` builds (it is rebuilt for the retry), with our
    /// `Authorization`; on a 401, authenticate as the challenge says and try once more.
    fn send(
        &self,
        ctx: &Ctx,
        make: &dyn Fn() -> Result<RequestBuilder, PushError>,
    ) -> Result<Response, PushError> {
        let mut attempt = 0;
        loop {
            let used = self.lock_auth().header.clone();
            let mut req = make()?;
            // Only the registry itself gets our credentials, not a host an upload
            // Location points elsewhere.
            if let Some(h) = &used
                && self.is_registry(ctx.url)
            {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = self.http.send(req).map_err(|e| self.http_error(e, ctx))?;
            if resp.status().as_u16() == 401 && attempt == 0 {
                let challenges: Vec<String> = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect();
                if self.authenticate(&challenges, used.as_deref(), ctx)? {
                    attempt += 1;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Is `url` on the registry (same scheme, host and port)?
    fn is_registry(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host() == self.base.host()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answer a 401's challenges; true if there is a new `Authorization` worth a retry.
    /// Holds the lock while fetching a token, so parallel uploads wait for one token
    /// instead of each fetching their own.
    fn authenticate(
        &self,
        challenges: &[String],
        used: Option<&str>,
        ctx: &Ctx,
    ) -> Result<bool, PushError> {
        let mut state = self.lock_auth();
        if state.header.as_deref() != used {
            // Another request already re-authenticated.
            return Ok(true);
        }
        let parsed: Vec<_> = challenges
            .iter()
            .flat_map(|c| parse_www_authenticate(c))
            .collect();
        if let Some(c) = parsed.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = c.param("realm")
        {
            let actions = match self.access {
                Access::Pull => "pull",
                Access::Push => "pull,push",
            };
            state
                .scopes
                .insert(format!("repository:{}:{actions}", self.repository));
            if let Some(s) = c.param("scope") {
                state
                    .scopes
                    .extend(s.split_whitespace().map(str::to_string));
            }
            let token = self.fetch_token(realm, c.param("service"), &state.scopes, ctx)?;
            state.header = Some(format!("Bearer {token}"));
            return Ok(true);
        }
        if parsed.iter().any(|c| c.scheme == "basic")
            && let Some(cred) = &self.credentials
        {
            let h = cred.basic_header();
            if used == Some(h.as_str()) {
                return Ok(false);
            }
            state.header = Some(h);
            return Ok(true);
        }
        Ok(false)
    }

    /// The bearer token flow: GET the realm with the service and scopes, with basic
    /// credentials if we have any; the answer's `token` (or `access_token`).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &BTreeSet<String>,
        ctx: &Ctx,
    ) -> Result<String, PushError> {
        let mut url = Url::parse(realm).map_err(|e| PushError::BadRealm {
            at: self.at(ctx),
            realm: realm.to_owned(),
            source: e.into(),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let what = format!("token for {}", ctx.what);
        let tctx = Ctx {
            url: &url,
            what: &what,
        };
        let mut req = self.http.request(Method::GET, url.clone());
        if let Some(c) = &self.credentials {
            req = req.header(AUTHORIZATION, c.basic_header());
        }
        let resp = self.http.send(req).map_err(|e| self.http_error(e, &tctx))?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &tctx));
        }
        #[derive(serde::Deserialize)]
        struct TokenJson {
            token: Option<String>,
            access_token: Option<String>,
        }
        let mut text = Vec::new();
        resp.take(MAX_TOKEN_ANSWER)
            .read_to_end(&mut text)
            .map_err(|source| {
                let e = HttpError::Body {
                    url: display_url(&url),
                    read: text.len() as u64,
                    source,
                };
                self.http_error(e, &tctx)
            })?;
        let body: TokenJson =
            serde_json::from_slice(&text).map_err(|source| PushError::TokenAnswer {
                at: self.at(&tctx),
                source,
            })?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PushError::Protocol {
                at: self.at(&tctx),
                problem: "the token answer has neither token nor access_token".to_string(),
                hint: "the registry's auth service is broken; report it to its operator",
            })
    }

    /// Where an error about `what` at `/v2/<rest>` happened, for a caller that checks an
    /// answer itself.
    pub fn at_path(&self, what: &str, rest: &str) -> Box<At> {
        let url = match self.url(rest) {
            Ok(u) => display_url(&u),
            Err(_) => format!("{}{rest}", self.base),
        };
        Box::new(At {
            what: what.to_owned(),
            repository: self.repository.clone(),
            url,
        })
    }

    /// Where an error happened.
    fn at(&self, ctx: &Ctx) -> Box<At> {
        Box::new(At {
            what: ctx.what.to_string(),
            repository: self.repository.clone(),
            url: display_url(ctx.url),
        })
    }

    fn http_error(&self, source: HttpError, ctx: &Ctx) -> PushError {
        PushError::Http {
            repository: self.repository.clone(),
            what: ctx.what.to_string(),
            hint: if ctx.url.scheme() == "https" {
                "check the registry is up and reachable; if it speaks plain HTTP (a local test \
                 registry), pass --insecure"
            } else {
                "check the registry is up and reachable"
            },
            source,
        }
    }

    /// The error for an unexpected answer, with the registry's own message.
    fn status_error(&self, resp: Response, ctx: &Ctx) -> PushError {
        let status = resp.status().as_u16();
        let at = self.at(ctx);
        let detail = registry_message(resp);
        let who = match &self.credentials {
            Some(c) => format!("user {} (from {})", c.username, c.source),
            None => "anonymous".to_string(),
        };
        match status {
            401 => PushError::Unauthorized {
                at,
                detail,
                hint: match &self.credentials {
                    Some(_) => format!(
                        "the registry refused {who}: check --username/--password-stdin, \
                         or run `docker login {}` again",
                        self.host
                    ),
                    None => format!(
                        "the registry wants credentials and none were found (searched {}): \
                         pass --username U --password-stdin, or run `docker login {}`",
                        self.searched, self.host
                    ),
                },
            },
            403 => PushError::Denied {
                at,
                detail,
                who,
                access: self.access,
            },
            _ => PushError::Status {
                at,
                status,
                detail,
                hint: if retryable_status(status) {
                    "the registry failed (retries exhausted); try again later"
                } else if status == 404 {
                    "the registry has no such repository or upload (is the path right, \
                     and does the registry allow creating repositories by push?)"
                } else {
                    "the registry refused the request"
                },
            },
        }
    }
}

/// The whole blob as a request body (a file is streamed, not loaded).
fn body(blob: &Blob) -> Result<Body, PushError> {
    Ok(match &blob.data {
        BlobData::File(path) => {
            let file = File::open(path).map_err(unreadable(blob, path))?;
            Body::sized(file, blob.size)
        }
        BlobData::Bytes(bytes) => Body::from(bytes.clone()),
    })
}

/// A blob read in order, one chunk at a time.
enum Chunks<'a> {
    File(File, &'a Blob, &'a Path),
    Bytes(&'a [u8]),
}

impl<'a> Chunks<'a> {
    fn open(blob: &'a Blob) -> Result<Chunks<'a>, PushError> {
        Ok(match &blob.data {
            BlobData::File(path) => Chunks::File(
                File::open(path).map_err(unreadable(blob, path))?,
                blob,
                path,
            ),
            BlobData::Bytes(bytes) => Chunks::Bytes(bytes),
        })
    }

    /// Fill `buf` with the bytes from `offset` on (the next ones: chunks come in order).
    fn read(&mut self, buf: &mut [u8], offset: u64) -> Result<(), PushError> {
        match self {
            Chunks::File(file, blob, path) => file.read_exact(buf).map_err(unreadable(blob, path)),
            Chunks::Bytes(bytes) => {
                let start = offset as usize;
                buf.copy_from_slice(&bytes[start..start + buf.len()]);
                Ok(())
            }
        }
    }
}

fn unreadable(blob: &Blob, path: &Path) -> impl FnOnce(std::io::Error) -> PushError {
    let (path, digest) = (path.to_path_buf(), blob.digest);
    move |source| PushError::Blob {
        path,
        digest,
        source,
    }
}

/// `: CODE: message` from a distribution error body (`{"errors":[{"code","message"}]}`),
/// or empty.
fn registry_message(resp: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorJson>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorJson {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let mut body = Vec::new();
    // The message is a courtesy: a body that cannot be read leaves it out.
    let _ = resp.take(64 << 10).read_to_end(&mut body);
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|e| format!(": {}: {}", e.code, e.message))
            .collect(),
        Err(_) => String::new(),
    }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// `url` with `digest=` added to its query (upload sessions carry state there).
fn with_digest(url: &Url, digest: &Digest) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    u
}
