//! What a handler gets: the request with its body read (bounded), the path
//! parameters, and helpers that turn bad input into [`ApiError`]s.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Response, StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::error::{ApiError, FieldError};
use crate::accounts::session::Principal;
use crate::constants::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::store::{Page, Paged};

/// A request as handlers see it.
#[derive(Debug)]
pub struct ApiRequest {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body, already bounded by the server.
    pub body: Bytes,
    /// Path parameters from the route pattern.
    pub params: Vec<(String, String)>,
    /// The TCP peer (not a forwarded header).
    pub peer: SocketAddr,
    /// The client's address: the peer, or the last `X-Forwarded-For` hop
    /// when the peer is the configured trusted proxy.
    pub client_ip: IpAddr,
    /// Whether the client reached us over HTTPS (only a trusted proxy can
    /// say so); decides the session cookie's `Secure` attribute.
    pub https: bool,
    /// Who is calling, for `User` and `Admin` routes (checked before the
    /// handler runs); `None` on `Public` and `Webhook` routes.
    pub principal: Option<Principal>,
    /// This request's id, echoed in `X-Request-Id` and in logs.
    pub request_id: String,
    /// Its connection, which a streaming response may cut.
    pub connection: super::body::Connection,
    /// The verified Twilio parameters, on `Webhook` routes (checked before
    /// the handler runs); `None` elsewhere.
    pub signed: Option<super::signed::Signed>,
}

impl ApiRequest {
    /// The parameters of a request whose Twilio signature checked out; 403
    /// if there are none (only possible if a non-webhook route asks).
    pub fn signed(&self) -> Result<&super::signed::Signed, ApiError> {
        self.signed
            .as_ref()
            .ok_or_else(|| ApiError::forbidden("invalid X-Twilio-Signature"))
    }

    /// The authenticated caller; 401 if there is none (only possible if a
    /// `Public` route's handler asks).
    pub fn principal(&self) -> Result<Principal, ApiError> {
        self.principal
            .ok_or_else(|| ApiError::unauthenticated("log in first"))
    }

    /// The body's media type, lower case, without parameters (`audio/wav`
    /// for `Audio/WAV; rate=8000`); empty when there is none.
    pub fn content_type(&self) -> String {
        self.headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// A path parameter by name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric id path parameter, or 404 (a non-number names no resource).
    pub fn id_param(&self, name: &str) -> Result<i64, ApiError> {
        let raw = self.param(name).unwrap_or("");
        raw.parse()
            .map_err(|_| ApiError::not_found(format!("no resource with {name} {raw:?}")))
    }

    /// The body as JSON of type `T`; errors say where and what.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let ct = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
        {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            let mut err = ApiError::validation(format!("invalid JSON body: {e}"));
            err.details = json!({ "line": e.line(), "column": e.column() });
            err
        })
    }

    /// Query parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        self.uri.query().map(parse_query).unwrap_or_default()
    }

    /// `?page=&per_page=` (1-based page; default 20 per page, at most 100).
    pub fn page(&self) -> Result<PageParams, ApiError> {
        PageParams::from_query(&self.query())
    }
}

/// Decodes `a=1&b=x%20y` (with `+` as space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes in a path segment (`+` stays a plus: only query
/// strings use it for spaces). Router parameters arrive undecoded.
pub fn decode_path_segment(s: &str) -> String {
    percent_decode(&s.replace('+', "%2B"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Validated pagination parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
}

impl PageParams {
    /// Reads `page` and `per_page` from query pairs.
    pub fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let get = |name: &str, default: u32, max: u32| -> Result<u32, FieldError> {
            match q.iter().find(|(k, _)| k == name) {
                None => Ok(default),
                Some((_, v)) => match v.parse::<u32>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(FieldError {
                        field: name.into(),
                        message: format!("must be a whole number from 1 to {max}"),
                    }),
                },
            }
        };
        let page = get("page", 1, 1_000_000);
        let per_page = get("per_page", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        match (page, per_page) {
            (Ok(page), Ok(per_page)) => Ok(Self { page, per_page }),
            (p, pp) => Err(ApiError::fields(
                "invalid pagination",
                p.err().into_iter().chain(pp.err()).collect(),
            )),
        }
    }

    /// The storage window.
    pub fn window(self) -> Page {
        Page {
            limit: self.per_page,
            offset: u64::from(self.page - 1) * u64::from(self.per_page),
        }
    }
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => ApiError::internal("serialize", &e).into_response(),
    }
}

/// `204 No Content` (deletions, Twilio status callbacks).
pub fn no_content() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The envelope of every paginated list: `{items, page, per_page, total}`.
pub fn paged_response<T: Serialize>(p: PageParams, rows: Paged<T>) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        &json!({ "items": rows.items, "page": p.page, "per_page": p.per_page, "total": rows.total }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        parse_query(s)
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            q("a=1&b=x%20y+z&c&=&d=%zz%4"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into()),
                ("".into(), "".into()),
                ("d".into(), "%zz%4".into()),
            ]
        );
        assert_eq!(
            q("n=%C3%A9t%C3%A9&m=é%"),
            vec![("n".into(), "été".into()), ("m".into(), "é%".into())]
        );
        assert_eq!(
            q("to=%2B15551234567"),
            vec![("to".into(), "+15551234567".into())]
        );
    }

    #[test]
    fn pagination_defaults_limits_and_errors() {
        let p = PageParams::from_query(&q("")).expect("defaults");
        assert_eq!(
            (p.page, p.per_page, p.window()),
            (
                1,
                DEFAULT_PAGE_SIZE,
                Page {
                    limit: 20,
                    offset: 0
                }
            )
        );
        let p = PageParams::from_query(&q("page=3&per_page=100")).expect("max");
        assert_eq!(
            p.window(),
            Page {
                limit: 100,
                offset: 200
            }
        );
        let e = PageParams::from_query(&q("page=0&per_page=101")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.details.as_array().map(Vec::len), Some(2));
        assert!(PageParams::from_query(&q("per_page=ten")).is_err());
    }

    #[test]
    fn paged_envelope() {
        let p = PageParams {
            page: 2,
            per_page: 1,
        };
        let r = paged_response(
            p,
            Paged {
                items: vec!["b"],
                total: 2,
            },
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
