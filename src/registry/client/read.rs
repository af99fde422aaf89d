//! Reading back from the repository: manifests by tag or digest, blobs, and the referrers
//! API, each answer checked against the digest that names it and read only up to a bound
//! (distribution-spec "Pulling manifests": the client verifies content against the digest
//! it asked for).

use std::io::Read;

use reqwest::Method;
use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK};

use super::{Client, Ctx, header};
use crate::digest::{Digest, Hasher};
use crate::http::{HttpError, display_url};
use crate::oci::{Descriptor, INDEX_MEDIA_TYPE, MAX_DOCUMENT};
use crate::registry::PushError;

/// Pages of a referrers list followed at most (a registry paginates with `Link`; a loop
/// of links must end).
const MAX_REFERRER_PAGES: usize = 64;

/// A manifest or index read back from the registry: its exact bytes, checked against the
/// digest it was asked for (or, asked by tag, against the registry's
/// `Docker-Content-Digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The media type: the answer's `Content-Type`, else the document's own `mediaType`.
    pub media_type: String,
    /// The document.
    pub bytes: Vec<u8>,
}

impl Fetched {
    /// Its descriptor (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest,
            size: self.bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        }
    }
}

impl Client {
    /// `GET /v2/<repo>/manifests/<reference>` accepting `accept`; `None` on 404. Asked by
    /// digest, the bytes must hash to it; asked by tag, to the `Docker-Content-Digest` the
    /// registry answers, if it answers one (distribution-spec "Pulling manifests": the
    /// client verifies against the digest it asked for).
    pub fn get_manifest(
        &self,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<Fetched>, PushError> {
        let url = self.url(&format!("{}/manifests/{reference}", self.repository))?;
        let what = format!("manifest {reference}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| {
            Ok(self
                .http
                .request(Method::GET, url.clone())
                .header(ACCEPT, accept.join(", ")))
        })?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error(resp, &ctx)),
        }
        let said = header(&resp, "docker-content-digest");
        let content_type = header(&resp, CONTENT_TYPE.as_str())
            .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
            .filter(|t| !t.is_empty());
        let bytes = self.read_body(resp, MAX_DOCUMENT, &ctx)?;
        let digest = Digest::of(&bytes);
        let expected = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => said.as_deref().and_then(|s| Digest::parse(s).ok()),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(PushError::Altered {
                at: self.at(&ctx),
                expected,
                actual: digest,
            });
        }
        let media_type = match content_type {
            Some(t) => t,
            None => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Head {
                    #[serde(default)]
                    media_type: String,
                }
                serde_json::from_slice::<Head>(&bytes)
                    .map(|h| h.media_type)
                    .unwrap_or_default()
            }
        };
        Ok(Some(Fetched {
            digest,
            media_type,
            bytes,
        }))
    }

    /// `GET /v2/<repo>/blobs/<digest>` into memory, at most `limit` bytes, checked against
    /// the digest; `None` on 404.
    pub fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Option<Vec<u8>>, PushError> {
        let url = self.url(&format!("{}/blobs/{digest}", self.repository))?;
        let what = format!("blob {digest}");
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.request(Method::GET, url.clone())))?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error(resp, &ctx)),
        }
        let bytes = self.read_body(resp, limit, &ctx)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(PushError::Altered {
                at: self.at(&ctx),
                expected: *digest,
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// `GET` the blob `d` names, streaming it through `sink` (nothing is kept here), and
    /// check it is `d.size` bytes hashing to `d.digest`; false on 404. `sink` sees the
    /// bytes before they are checked: a caller that keeps them must discard them on error.
    pub fn stream_blob(
        &self,
        d: &Descriptor,
        sink: &mut dyn std::io::Write,
    ) -> Result<bool, PushError> {
        let url = self.url(&format!("{}/blobs/{}", self.repository, d.digest))?;
        let what = format!("blob {}", d.digest);
        let ctx = Ctx {
            url: &url,
            what: &what,
        };
        let resp = self.send(&ctx, &|| Ok(self.http.request(Method::GET, url.clone())))?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            _ => return Err(self.status_error(resp, &ctx)),
        }
        let mut hasher = Hasher::new();
        // One byte more than declared tells a longer blob from an exact one.
        let mut body = resp.take(d.size.saturating_add(1));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let e = HttpError::Body {
                        url: display_url(&url),
                        read: hasher.len(),
                        source,
                    };
                    return Err(self.http_error(e, &ctx));
                }
            };
            hasher.update(&buf[..n]);
            sink.write_all(&buf[..n])
                .map_err(|source| PushError::Sink {
                    what: what.clone(),
                    source,
                })?;
        }
        let len = hasher.len();
        let actual = hasher.finish();
        if len != d.size || actual != d.digest {
            return Err(PushError::Altered {
                at: self.at(&ctx),
                expected: d.digest,
                actual,
            });
        }
        Ok(true)
    }

    /// `GET /v2/<repo>/referrers/<subject>`: the image index of the manifests whose
    /// `subject` is `subject`, every page of it (`Link: <...>; rel="next"`), as the JSON
    /// documents the registry answered; `None` on 404, which the distribution spec makes the
    /// sign that the registry has no referrers API ("Listing Referrers").
    pub fn get_referrers(&self, subject: &Digest) -> Result<Option<Vec<Vec<u8>>>, PushError> {
        let mut url = self.url(&format!("{}/referrers/{subject}", self.repository))?;
        let what = format!("referrers of {subject}");
        let mut pages = Vec::new();
        loop {
            let ctx = Ctx {
                url: &url,
                what: &what,
            };
            let resp = self.send(&ctx, &|| {
                Ok(self
                    .http
                    .request(Method::GET, url.clone())
                    .header(ACCEPT, INDEX_MEDIA_TYPE))
            })?;
            match resp.status().as_u16() {
                200 => {}
                404 if pages.is_empty() => return Ok(None),
                _ => return Err(self.status_error(resp, &ctx)),
            }
            let next = resp
                .headers()
                .get_all(LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            pages.push(self.read_body(resp, MAX_DOCUMENT, &ctx)?);
            let Some(next) = next else {
                return Ok(Some(pages));
            };
            if pages.len() >= MAX_REFERRER_PAGES {
                return Err(PushError::Protocol {
                    at: self.at(&ctx),
                    problem: format!("the referrers list goes on past {MAX_REFERRER_PAGES} pages"),
                    hint: "the registry's pagination loops; report it to its operator",
                });
            }
            let joined = url.join(&next).map_err(|e| PushError::BadLocation {
                at: self.at(&ctx),
                location: next.clone(),
                source: e.into(),
            })?;
            if !self.is_registry(&joined) {
                return Err(PushError::Protocol {
                    at: self.at(&ctx),
                    problem: format!(
                        "the next page of the referrers list is on another host ({next})"
                    ),
                    hint: "the registry's pagination is broken; report it to its operator",
                });
            }
            url = joined;
        }
    }

    /// A body of at most `limit` bytes.
    fn read_body(&self, resp: Response, limit: u64, ctx: &Ctx) -> Result<Vec<u8>, PushError> {
        let mut bytes = Vec::new();
        resp.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| {
                let e = HttpError::Body {
                    url: display_url(ctx.url),
                    read: bytes.len() as u64,
                    source,
                };
                self.http_error(e, ctx)
            })?;
        if bytes.len() as u64 > limit {
            return Err(PushError::TooLarge {
                at: self.at(ctx),
                limit,
            });
        }
        Ok(bytes)
    }
}

/// The target of a `Link` header value's `rel="next"` entry (RFC 8288), if it has one.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once('>')?;
        let target = target.trim().strip_prefix('<')?;
        params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
            })
            .then(|| target.to_owned())
    })
}
