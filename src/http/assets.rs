//! The web UI, embedded from `ui-dist/` at build time (see `build.rs`).
//!
//! Hashed bundle files (`/assets/name-<hash>.js`) never change, so they are
//! cached for a year; `index.html` and other root files are revalidated on
//! every load (`no-cache` plus an ETag), so a new version shows up at once.
//! Client-side routes (`/calls`, `/settings`…) get `index.html` (SPA fallback).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{HeaderMap, Method, Response, StatusCode};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// URL path, e.g. `/assets/index-3f9a1c2b.js`.
    pub path: &'static str,
    /// Contents.
    pub body: &'static [u8],
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Safe to cache forever (content-hashed name).
    pub immutable: bool,
    /// Strong validator (hash of the contents).
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Looks up an embedded file by URL path.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// What to serve for a GET/HEAD outside the API: the file, the SPA shell for
/// a client route, or `None` (a missing file: the caller answers 404).
pub fn resolve(path: &str) -> Option<&'static Asset> {
    if let Some(a) = find(path) {
        return Some(a);
    }
    // A last segment with a dot names a file (`/assets/x.js`, `/favicon.ico`):
    // answering HTML for it would hide the error behind a MIME mismatch.
    let last = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("/api/") || last.contains('.') {
        return None;
    }
    find("/index.html")
}

/// The response for `asset`, honouring `If-None-Match`.
pub fn respond(
    asset: &'static Asset,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let body = if not_modified || *method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from_static(asset.body)
    };
    let mut r = Response::new(Full::new(body));
    if not_modified {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(ETAG, HeaderValue::from_static(asset.etag));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if asset.content_type.starts_with("text/html") {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; \
                 frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
            ),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spa_fallback_rules() {
        if find("/index.html").is_none() {
            return; // ui-dist not built in this checkout; the integration tests cover it.
        }
        assert_eq!(resolve("/").map(|a| a.path), Some("/index.html"));
        assert_eq!(resolve("/calls").map(|a| a.path), Some("/index.html"));
        assert_eq!(
            resolve("/settings/twilio").map(|a| a.path),
            Some("/index.html")
        );
        assert!(resolve("/assets/missing-12345678.js").is_none());
        assert!(resolve("/api/unknown").is_none());
        assert!(ASSETS
            .iter()
            .filter(|a| a.path.starts_with("/assets/"))
            .all(|a| a.immutable));
        assert!(!find("/index.html").is_some_and(|a| a.immutable));
    }
}
