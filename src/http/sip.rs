//! The SIP flood guard's bans (admins): `GET /api/sip/bans` lists the
//! sources being ignored, `DELETE /api/sip/bans/{addr}` lifts one (a phone
//! that had a wrong password, a guest's softphone) without waiting for the
//! ban to run out. Bans live in the SIP endpoint's memory only, so a restart
//! also lifts them.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::request::{decode_path_segment, json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/sip/bans", Access::Admin, bans),
        Route::new(Method::DELETE, "/api/sip/bans/{addr}", Access::Admin, unban),
    ]
}

async fn bans(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    let bans = match &state.sip {
        Some(sip) => sip.bans().await,
        None => Vec::new(),
    };
    Ok(json_response(StatusCode::OK, &json!({ "items": bans })))
}

/// The address of a path segment: `203.0.113.9`, `2001:db8::1` (also
/// percent-encoded, or in brackets as URLs write IPv6 hosts).
fn parse_addr(raw: &str) -> Option<IpAddr> {
    let decoded = decode_path_segment(raw);
    let bare = decoded
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&decoded);
    bare.parse().ok()
}

async fn unban(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let raw = req.param("addr").unwrap_or("");
    let Some(ip) = parse_addr(raw) else {
        return Err(ApiError::validation(format!(
            "{:?} is not an IP address",
            decode_path_segment(raw)
        )));
    };
    let sip = state
        .sip
        .as_ref()
        .ok_or_else(|| ApiError::conflict("the SIP service is not running"))?;
    if sip.unban(ip).await {
        Ok(json_response(StatusCode::OK, &json!({ "unbanned": ip })))
    } else {
        Err(ApiError::not_found(format!("{ip} is not banned")))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_addr;

    #[test]
    fn addresses_in_every_spelling() {
        assert_eq!(parse_addr("203.0.113.9"), "203.0.113.9".parse().ok());
        assert_eq!(parse_addr("2001%3Adb8%3A%3A1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_addr("[::1]"), "::1".parse().ok());
        for bad in ["", "host", "1.2.3", "203.0.113.9:5060", "%5B"] {
            assert_eq!(parse_addr(bad), None, "{bad}");
        }
    }
}
