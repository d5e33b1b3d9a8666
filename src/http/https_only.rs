//! Plain HTTP from the internet reaches only what must be plain.
//!
//! The appliance listens on port 80 for the LAN (`http://homeline.local`)
//! and, through the router's forward, for the ACME CA's HTTP-01 challenge.
//! That same forward would otherwise carry an admin's password and session
//! cookie across the internet unencrypted. So once HTTPS is served, a
//! request that arrived over plain HTTP from an internet address is sent to
//! `https://` with a 308 — except the challenge (the CA asks over HTTP) and
//! Twilio's webhooks (signed, and a household without a CA certificate yet
//! can only give Twilio an `http://` URL). LAN clients are never redirected:
//! they may have no name a certificate could cover.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, HOST, LOCATION};
use hyper::{HeaderMap, Response, StatusCode, Uri};
use serde_json::json;

use super::request::json_response;

/// Where the CA fetches HTTP-01 answers.
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Whether a request must be redirected: plain HTTP, HTTPS served, from an
/// internet address, not the ACME challenge. (Webhooks are left to the
/// caller, which knows the route.)
pub fn must_redirect(https_served: bool, https: bool, client_ip: IpAddr, path: &str) -> bool {
    https_served
        && !https
        && crate::netaddr::is_public(client_ip)
        && !path.starts_with(CHALLENGE_PREFIX)
}

/// The 308 to the same host and path over HTTPS (the router forwards 443
/// to the HTTPS listener, so the default port is the right one), with a
/// body in the JSON error format for API clients.
pub fn redirect(headers: &HeaderMap, uri: &Uri) -> Response<Full<Bytes>> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port)
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    let Some(host) = host else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": "https_required", "message": "use HTTPS: this address is only served over HTTPS from the internet", "details": []}}),
        );
    };
    let target = format!(
        "https://{host}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut r = json_response(
        StatusCode::PERMANENT_REDIRECT,
        &json!({"error": {"code": "https_required", "message": format!("use HTTPS: {target}"), "details": []}}),
    );
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// `name:80` → `name`; `[v6]:80` → `[v6]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_requests_from_the_internet_are_redirected_once_https_is_served() {
        let internet: IpAddr = "203.0.113.9".parse().unwrap();
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        assert!(must_redirect(true, false, internet, "/api/me"));
        assert!(
            !must_redirect(true, false, lan, "/api/me"),
            "LAN stays on HTTP"
        );
        assert!(
            !must_redirect(false, false, internet, "/api/me"),
            "no HTTPS to go to"
        );
        assert!(
            !must_redirect(true, true, internet, "/api/me"),
            "already HTTPS"
        );
        assert!(!must_redirect(
            true,
            false,
            internet,
            "/.well-known/acme-challenge/tok"
        ));
    }

    #[test]
    fn the_redirect_keeps_host_path_and_query_and_drops_the_port() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("myhome.duckdns.org:80"));
        let uri: Uri = "/login?next=%2Fcalls".parse().unwrap();
        let r = redirect(&headers, &uri);
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            r.headers()[LOCATION],
            "https://myhome.duckdns.org/login?next=%2Fcalls"
        );
        assert_eq!(strip_port("[2001:db8::1]:80"), "[2001:db8::1]");
        assert_eq!(
            redirect(&HeaderMap::new(), &uri).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
