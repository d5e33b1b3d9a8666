//! The security gate every request passes before its handler runs, driven by
//! the route's [`Access`]: who is calling (session cookie), whether their
//! role may use the route, and whether a state-changing browser request
//! really comes from our own pages (CSRF). Also: which address the client
//! has (the TCP peer unless a trusted proxy says otherwise) and whether it
//! came over HTTPS, and the session cookie itself.
//!
//! Order of checks, so answers are predictable: no valid session → 401;
//! wrong role → 403; failed CSRF check → 403. Public routes skip the first
//! two; webhook routes skip all three (they are signature-checked).

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderValue, COOKIE, HOST, ORIGIN};
use hyper::{HeaderMap, Method};

use super::error::ApiError;
use super::router::Access;
use super::ServerState;
use crate::accounts::session::{self, Principal};
use crate::constants::{SESSION_COOKIE, SESSION_DURATION};
use crate::store::config;
use crate::sysconfig::SYSTEM_PUBLIC_URL;

/// The custom header our web UI sends on every API call. A cross-site page
/// cannot add it without a CORS preflight, which we never grant.
pub const CSRF_HEADER: &str = "x-requested-with";
/// Its value.
pub const CSRF_VALUE: &str = "homeline";

/// What the gate established for one request.
#[derive(Debug, Default)]
pub struct Gate {
    /// The caller, on `User` and `Admin` routes.
    pub principal: Option<Principal>,
    /// A fresh session cookie when the session's expiry was just extended,
    /// so the browser's copy slides too.
    pub refresh_cookie: Option<HeaderValue>,
}

/// Whether the method may change state (and so needs the CSRF check).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Runs the checks `access` requires.
pub async fn check(
    state: &ServerState,
    access: Access,
    method: &Method,
    headers: &HeaderMap,
    https: bool,
    request_id: &str,
) -> Result<Gate, ApiError> {
    let (role_needed, admin_only) = match access {
        Access::Webhook => return Ok(Gate::default()),
        Access::Public => (false, false),
        Access::User => (true, false),
        Access::Admin => (true, true),
    };
    if !role_needed {
        if changes_state(method) {
            csrf(state, headers, request_id).await?;
        }
        return Ok(Gate::default());
    }
    let token = session_token(headers)
        .ok_or_else(|| ApiError::unauthenticated("log in first"))?
        .to_string();
    let now = state.clock.now();
    let t = token.clone();
    // Looked up on a reader (every request does this); the rare slide of
    // the expiry goes to the writer.
    let found = state
        .db
        .read(move |c| session::lookup(c, &t, now))
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?;
    if let Some(a) = found.filter(|a| a.refreshed) {
        let id = a.principal.session_id;
        state
            .db
            .call(move |c| session::slide(c, id, now))
            .await
            .map_err(|e| ApiError::internal(request_id, &e))?;
    }
    let Some(auth) = found else {
        return Err(ApiError::unauthenticated(
            "your session has ended or expired; log in again",
        ));
    };
    if admin_only && !auth.principal.is_admin() {
        return Err(ApiError::forbidden("this needs an administrator account"));
    }
    if changes_state(method) {
        csrf(state, headers, request_id).await?;
    }
    let refresh_cookie = if auth.refreshed {
        Some(session_cookie(&token, https, request_id)?)
    } else {
        None
    };
    Ok(Gate {
        principal: Some(auth.principal),
        refresh_cookie,
    })
}

/// The session token from the `Cookie` header(s), if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// `homeline_session=<token>; Path=/; HttpOnly; SameSite=Strict; Max-Age=…`,
/// plus `Secure` when the client came over HTTPS. `HttpOnly`: scripts (an
/// XSS) cannot read it, unlike GoSIP's token in localStorage. `Strict`: other
/// sites' pages never make the browser send it.
pub fn session_cookie(token: &str, https: bool, request_id: &str) -> Result<HeaderValue, ApiError> {
    cookie(token, SESSION_DURATION.as_secs(), https, request_id)
}

/// A cookie that makes the browser forget the session (logout).
pub fn clearing_cookie(https: bool, request_id: &str) -> Result<HeaderValue, ApiError> {
    cookie("", 0, https, request_id)
}

fn cookie(
    value: &str,
    max_age: u64,
    https: bool,
    request_id: &str,
) -> Result<HeaderValue, ApiError> {
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .map_err(|e| ApiError::internal(request_id, &e))
}

/// Refuses state-changing requests that do not come from our own pages:
/// the custom header must be there, `Sec-Fetch-Site` must not say another
/// site, and an `Origin` must be this host or the configured public URL.
async fn csrf(state: &ServerState, headers: &HeaderMap, request_id: &str) -> Result<(), ApiError> {
    if headers.get(CSRF_HEADER).map(HeaderValue::as_bytes) != Some(CSRF_VALUE.as_bytes()) {
        return Err(ApiError::forbidden(format!(
            "request refused as possibly cross-site: the {CSRF_HEADER}: {CSRF_VALUE} header is missing"
        )));
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if matches!(site.as_bytes(), b"cross-site" | b"same-site") {
            return Err(ApiError::forbidden(
                "request refused: the browser says it comes from another site",
            ));
        }
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| origin_is_host(origin, h)) {
        return Ok(());
    }
    let public = state
        .db
        .call(|c| config::get(c, SYSTEM_PUBLIC_URL))
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?;
    if public.is_some_and(|url| origin_is_url(origin, &url)) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "request refused: its Origin is neither this host nor the configured public URL",
    ))
}

/// Splits `scheme://authority…` into the scheme and the authority in
/// lower case with the scheme's default port removed.
fn scheme_authority(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split('/').next()?.to_ascii_lowercase();
    Some((scheme.clone(), strip_default_port(&scheme, &authority)))
}

fn strip_default_port(scheme: &str, authority: &str) -> String {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    match authority.strip_suffix(default) {
        Some(a) if !default.is_empty() => a.to_string(),
        _ => authority.to_string(),
    }
}

/// Whether `Origin` names the host the request was sent to.
fn origin_is_host(origin: &str, host: &str) -> bool {
    match scheme_authority(origin) {
        Some((scheme, authority)) if !authority.is_empty() => {
            authority == strip_default_port(&scheme, &host.to_ascii_lowercase())
        }
        _ => false,
    }
}

/// Whether `Origin` is the origin of `url` (the configured public URL).
fn origin_is_url(origin: &str, url: &str) -> bool {
    match (scheme_authority(origin), scheme_authority(url)) {
        (Some(o), Some(u)) => !o.1.is_empty() && o == u,
        _ => false,
    }
}

/// The client's address: the TCP peer, unless the peer is the configured
/// trusted proxy, in which case the last `X-Forwarded-For` hop (the one the
/// proxy itself appended; earlier hops are whatever the client wrote).
pub fn client_ip(trusted_proxy: Option<IpAddr>, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    if trusted_proxy.map(canonical) != Some(peer_ip) {
        return peer_ip;
    }
    let last_hop = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .map(str::trim);
    last_hop
        .and_then(|hop| {
            hop.parse::<IpAddr>()
                .ok()
                .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        })
        .map(canonical)
        .unwrap_or(peer_ip)
}

/// Whether a trusted proxy says the client reached it over HTTPS
/// (`X-Forwarded-Proto: https`). Requests on Homeline's own HTTPS listener
/// (`http::tls_listener`) are HTTPS without asking this.
pub fn is_https(trusted_proxy: Option<IpAddr>, peer: SocketAddr, headers: &HeaderMap) -> bool {
    trusted_proxy.map(canonical) == Some(canonical(peer.ip()))
        && headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// An IPv4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; treat it
/// as `a.b.c.d` everywhere.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn forwarded_headers_count_only_from_the_trusted_proxy() {
        let spoof = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = addr("192.168.1.50:40000");
        assert_eq!(
            client_ip(None, peer, &spoof),
            peer.ip(),
            "no proxy configured: the peer"
        );
        assert_eq!(
            client_ip("192.168.1.2".parse().ok(), peer, &spoof),
            peer.ip(),
            "a peer that is not the proxy cannot claim another address"
        );
        assert!(!is_https(None, peer, &spoof));

        let proxy = addr("192.168.1.2:50000");
        let trusted = "192.168.1.2".parse().ok();
        let chain = headers(&[
            ("x-forwarded-for", "10.9.9.9, 198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            client_ip(trusted, proxy, &chain),
            "203.0.113.9".parse::<IpAddr>().expect("ip"),
            "the last hop, appended by the proxy"
        );
        assert!(is_https(trusted, proxy, &chain));
        assert_eq!(
            client_ip(trusted, proxy, &headers(&[("x-forwarded-for", "garbage")])),
            proxy.ip(),
            "unparsable: the proxy itself"
        );
        assert_eq!(
            client_ip(
                trusted,
                proxy,
                &headers(&[("x-forwarded-for", "[2001:db8::1]:443")])
            ),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        let mapped = SocketAddr::new("::ffff:192.168.1.2".parse::<IpAddr>().expect("ip"), 1);
        assert!(is_https(trusted, mapped, &chain), "v4-mapped proxy address");
        assert!(!is_https(
            trusted,
            proxy,
            &headers(&[("x-forwarded-proto", "http")])
        ));
    }

    #[test]
    fn session_cookie_attributes() {
        let c = session_cookie("abc", false, "r").expect("cookie");
        assert_eq!(
            c.to_str().expect("ascii"),
            "homeline_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400"
        );
        let c = session_cookie("abc", true, "r").expect("cookie");
        assert!(c.to_str().expect("ascii").ends_with("; Secure"));
        let c = clearing_cookie(false, "r").expect("cookie");
        assert!(
            c.to_str().expect("ascii").contains("homeline_session=; ")
                && c.to_str().expect("ascii").contains("Max-Age=0")
        );
        assert_eq!(
            session_token(&headers(&[("cookie", "a=1; homeline_session=tok; b=2")])),
            Some("tok")
        );
        assert_eq!(
            session_token(&headers(&[
                ("cookie", "a=1"),
                ("cookie", "homeline_session=x")
            ])),
            Some("x")
        );
        assert_eq!(
            session_token(&headers(&[("cookie", "xhomeline_session=x")])),
            None
        );
    }

    #[test]
    fn origins() {
        assert!(origin_is_host(
            "http://192.168.1.10:8080",
            "192.168.1.10:8080"
        ));
        assert!(origin_is_host("http://homeline.local", "homeline.local:80"));
        assert!(origin_is_host("http://HomeLine.local", "homeline.local"));
        assert!(!origin_is_host("http://evil.example", "homeline.local"));
        assert!(!origin_is_host(
            "http://homeline.local:8081",
            "homeline.local:8080"
        ));
        assert!(!origin_is_host("null", "homeline.local"));
        assert!(origin_is_url(
            "https://home.example.org",
            "https://home.example.org/"
        ));
        assert!(origin_is_url(
            "https://home.example.org",
            "https://home.example.org:443/x"
        ));
        assert!(!origin_is_url(
            "http://home.example.org",
            "https://home.example.org"
        ));
        assert!(!origin_is_url("null", "https://home.example.org"));
    }
}
