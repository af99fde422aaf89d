//! One repository of one registry over the distribution API: authentication (anonymous,
//! basic, bearer tokens), blob existence, mounts, uploads and manifest PUTs. Every request
//! that can be answered 401 is retried once after (re-)authenticating.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};

use super::auth::{Credentials, parse_www_authenticate};
use super::plan::{Blob, Document};
use super::{PushError, Target};
use crate::http::error_chain;

/// Bodies of requests carrying blob data may take longer than the default 60 s.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// What a mount attempt got.
pub(super) enum Mount {
    /// The registry linked the blob from the other repository.
    Mounted,
    /// It did not (202): upload into this session instead.
    Session(Url),
}

/// A client for `host/repository`.
pub(super) struct Client {
    http: reqwest::blocking::Client,
    /// `scheme://host/v2/`.
    base: String,
    /// Registry host (and port).
    pub host: String,
    /// Repository pushed to.
    pub repository: String,
    credentials: Option<Credentials>,
    /// Searched auth files, for the message when none had credentials.
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
    /// A client for `target` (`insecure`: plain HTTP).
    pub fn new(
        target: &Target,
        insecure: bool,
        credentials: Option<Credentials>,
        searched: String,
    ) -> Result<Client, PushError> {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("debless/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| PushError::Local(format!("cannot create an HTTP client: {e}")))?;
        let scheme = if insecure { "http" } else { "https" };
        // Parsed so that it is normalised (a default port dropped) like the URLs compared
        // with it.
        let base = Url::parse(&format!("{scheme}://{}/v2/", target.host)).map_err(|e| {
            PushError::Target {
                target: target.to_string(),
                why: format!("{} is not a host name ({e})", target.host),
            }
        })?;
        Ok(Client {
            http,
            base: base.to_string(),
            host: target.host.clone(),
            repository: target.repository.clone(),
            credentials,
            searched,
            auth: Mutex::new(AuthState::default()),
        })
    }

    fn url(&self, rest: &str) -> Result<Url, PushError> {
        let s = format!("{}{rest}", self.base);
        Url::parse(&s).map_err(|e| PushError::Local(format!("{s} is not a URL ({e})")))
    }

    /// `GET /v2/`: check that the registry speaks the API and settle authentication before
    /// the parallel uploads start (so they do not all meet a 401 at once).
    pub fn ping(&self) -> Result<(), PushError> {
        let url = self.url("")?;
        let what = "API check";
        let resp = self.send(&Ctx { url: &url, what }, &|| Ok(self.http.get(url.clone())))?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.status_error(resp, &Ctx { url: &url, what }))
    }

    /// Does the repository have `digest`?
    pub fn blob_exists(&self, digest: &str) -> Result<bool, PushError> {
        let url = self.url(&format!("{}/blobs/{digest}", self.repository))?;
        let what = format!("blob {digest}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.head(url.clone())))?;
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
    pub fn mount(&self, digest: &str, from: &str) -> Result<Mount, PushError> {
        let mut url = self.url(&format!("{}/blobs/uploads/", self.repository))?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let what = format!("blob {digest} (mount from {from})");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.post(url.clone()).body(Vec::new())))?;
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
    pub fn start_upload(&self, digest: &str) -> Result<Url, PushError> {
        let url = self.url(&format!("{}/blobs/uploads/", self.repository))?;
        let what = format!("blob {digest}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.post(url.clone()).body(Vec::new())))?;
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
        let open = || {
            File::open(&blob.path).map_err(|e| {
                PushError::Local(format!(
                    "{}: cannot read blob {} ({e}); rebuild the layout",
                    blob.path.display(),
                    blob.digest
                ))
            })
        };
        if blob.size <= chunk_size {
            let url = with_digest(&session, &blob.digest);
            let ctx = Ctx {
                url: &url,
                what: &what,
            };
            let resp = self.send(&ctx, &|| {
                Ok(self
                    .http
                    .put(url.clone())
                    .timeout(UPLOAD_TIMEOUT)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(Body::sized(open()?, blob.size)))
            })?;
            return self.finish(resp, &blob.digest, &ctx).map(|()| 1);
        }

        let mut file = open()?;
        let mut loc = session;
        let mut offset = 0u64;
        let mut chunks = 0;
        let mut buf = vec![0u8; chunk_size as usize];
        while offset < blob.size {
            let n = chunk_size.min(blob.size - offset) as usize;
            file.read_exact(&mut buf[..n]).map_err(|e| {
                PushError::Local(format!(
                    "{}: cannot read blob {} at byte {offset} ({e}); rebuild the layout",
                    blob.path.display(),
                    blob.digest
                ))
            })?;
            let end = offset + n as u64 - 1;
            let ctx = Ctx {
                url: &loc,
                what: &what,
            };
            let resp = self.send(&ctx, &|| {
                Ok(self
                    .http
                    .patch(loc.clone())
                    .timeout(UPLOAD_TIMEOUT)
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
                return Err(PushError::Network {
                    url: strip_query(&loc),
                    repository: self.repository.clone(),
                    what: what.clone(),
                    problem: format!(
                        "after bytes {offset}-{end} the registry holds {range:?}, not 0-{end}"
                    ),
                    hint: "the upload will be retried from the start".to_string(),
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
                .put(url.clone())
                .header(CONTENT_LENGTH, 0)
                .body(Vec::new()))
        })?;
        self.finish(resp, &blob.digest, &ctx)?;
        Ok(chunks)
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the document's exact bytes.
    pub fn put_manifest(&self, reference: &str, doc: &Document) -> Result<(), PushError> {
        let url = self.url(&format!("{}/manifests/{reference}", self.repository))?;
        let what = if reference == doc.digest {
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
                .put(url.clone())
                .header(CONTENT_TYPE, doc.media_type.as_str())
                .body(doc.bytes.clone()))
        })?;
        self.finish(resp, &doc.digest, &ctx)
    }

    /// A 201 whose Docker-Content-Digest (if any) is `digest`.
    fn finish(&self, resp: Response, digest: &str, ctx: &Ctx) -> Result<(), PushError> {
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(resp, ctx));
        }
        self.check_digest(&resp, digest, ctx)
    }

    fn check_digest(&self, resp: &Response, digest: &str, ctx: &Ctx) -> Result<(), PushError> {
        match header(resp, "docker-content-digest") {
            Some(got) if got != digest => Err(PushError::DigestMismatch {
                url: strip_query(ctx.url),
                repository: self.repository.clone(),
                what: ctx.what.to_string(),
                expected: digest.to_string(),
                got,
            }),
            _ => Ok(()),
        }
    }

    /// The `Location` of an upload session, resolved against the request URL.
    fn location(&self, resp: &Response, ctx: &Ctx) -> Result<Url, PushError> {
        let bad = |problem: String| PushError::Network {
            url: strip_query(ctx.url),
            repository: self.repository.clone(),
            what: ctx.what.to_string(),
            problem,
            hint: "the registry does not follow the distribution API; report it to its \
                   operator"
                .to_string(),
        };
        let loc = header(resp, LOCATION.as_str())
            .ok_or_else(|| bad(format!("HTTP {} without a Location", resp.status())))?;
        ctx.url
            .join(&loc)
            .map_err(|e| bad(format!("Location {loc:?} is not a URL ({e})")))
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
            let mut req = make()?.build().map_err(|e| self.network_error(&e, ctx))?;
            // Only the registry itself gets our credentials, not a host an upload
            // Location points elsewhere.
            if let Some(h) = &used
                && self.is_registry(req.url())
            {
                let v = reqwest::header::HeaderValue::from_str(h).map_err(|_| {
                    PushError::Local("the registry credentials are not a valid header".into())
                })?;
                req.headers_mut().insert(AUTHORIZATION, v);
            }
            let resp = self
                .http
                .execute(req)
                .map_err(|e| self.network_error(&e, ctx))?;
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
        let origin = format!("{}://{}/", url.scheme(), url.authority());
        self.base.starts_with(&origin)
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
            state
                .scopes
                .insert(format!("repository:{}:pull,push", self.repository));
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
        let mut url = Url::parse(realm).map_err(|e| PushError::Network {
            url: strip_query(ctx.url),
            repository: self.repository.clone(),
            what: ctx.what.to_string(),
            problem: format!("the token realm {realm:?} is not a URL ({e})"),
            hint: "the registry's auth configuration is broken; report it to its operator"
                .to_string(),
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
        let mut rb = self.http.get(url.clone());
        if let Some(c) = &self.credentials {
            rb = rb.header(AUTHORIZATION, c.basic_header());
        }
        let resp = rb.send().map_err(|e| self.network_error(&e, &tctx))?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &tctx));
        }
        #[derive(serde::Deserialize)]
        struct TokenJson {
            token: Option<String>,
            access_token: Option<String>,
        }
        let mut text = Vec::new();
        let read = resp
            .take(1 << 20)
            .read_to_end(&mut text)
            .map_err(|e| e.to_string());
        let parsed = read
            .and_then(|_| serde_json::from_slice::<TokenJson>(&text).map_err(|e| e.to_string()));
        let body = parsed.map_err(|e| PushError::Network {
            url: strip_query(&url),
            repository: self.repository.clone(),
            what: what.clone(),
            problem: format!("the token answer is not JSON with a token ({e})"),
            hint: "the registry's auth service is broken; report it to its operator".to_string(),
        })?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PushError::Network {
                url: strip_query(&url),
                repository: self.repository.clone(),
                what,
                problem: "the token answer has neither token nor access_token".to_string(),
                hint: "the registry's auth service is broken; report it to its operator"
                    .to_string(),
            })
    }

    fn network_error(&self, e: &reqwest::Error, ctx: &Ctx) -> PushError {
        let https = ctx.url.scheme() == "https";
        PushError::Network {
            url: strip_query(ctx.url),
            repository: self.repository.clone(),
            what: ctx.what.to_string(),
            problem: error_chain(e),
            hint: if https {
                "check the registry is up and reachable; if it speaks plain HTTP (a local \
                 test registry), pass --insecure"
                    .to_string()
            } else {
                "check the registry is up and reachable".to_string()
            },
        }
    }

    /// The error for an unexpected answer, with the registry's own message.
    fn status_error(&self, resp: Response, ctx: &Ctx) -> PushError {
        let status = resp.status().as_u16();
        let url = strip_query(ctx.url);
        let repository = self.repository.clone();
        let what = ctx.what.to_string();
        let detail = registry_message(resp);
        let who = match &self.credentials {
            Some(c) => format!("user {} (from {})", c.username, c.source),
            None => "anonymous".to_string(),
        };
        match status {
            401 => PushError::Unauthorized {
                url,
                repository,
                what,
                detail,
                hint: match &self.credentials {
                    Some(_) => format!(
                        "the registry refused {who}: check --username/--password-stdin, \
                         or run `docker login {}` again",
                        self.host
                    ),
                    None => format!(
                        "the registry wants credentials and none were found (searched \
                         --username/--password-stdin, ${}/${}, {}): pass --username U \
                         --password-stdin, or run `docker login {}`",
                        super::USER_ENV,
                        super::PASSWORD_ENV,
                        self.searched,
                        self.host
                    ),
                },
            },
            403 => PushError::Denied {
                url,
                repository,
                what,
                detail,
                who,
            },
            _ => PushError::Status {
                url,
                repository,
                what,
                status,
                detail,
                hint: if status >= 500 || status == 429 || status == 408 {
                    "the registry failed (retries exhausted); try again later".to_string()
                } else if status == 404 {
                    "the registry has no such repository or upload (is the path right, \
                     and does the registry allow creating repositories by push?)"
                        .to_string()
                } else {
                    "the registry refused the request".to_string()
                },
            },
        }
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
fn with_digest(url: &Url, digest: &str) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair("digest", digest);
    u
}

/// A URL for messages: upload session URLs carry long opaque state in their query.
fn strip_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}
