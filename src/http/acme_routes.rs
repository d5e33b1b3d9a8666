//! The HTTPS certificate (see `acme`).
//!
//! | Route | Who | Answer |
//! |---|---|---|
//! | `GET /.well-known/acme-challenge/{token}` | anyone (the CA) | the key authorisation, `text/plain`; 404 for an unknown token |
//! | `GET /api/certificate` | admins | the served certificate, the ACME state, the last error, the next renewal |
//! | `POST /api/certificate/renew` | admins | 202: an issuance starts now; 409 when ACME is off or there is no public name |
//!
//! The challenge route is public, needs no session and is not sent to the
//! setup wizard: the CA fetches it over plain HTTP on port 80 through the
//! router's forward. It answers from memory (no database access).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::acme::{Acme, State};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/.well-known/acme-challenge/{token}",
            Access::Public,
            challenge,
        ),
        Route::new(Method::GET, "/api/certificate", Access::Admin, show),
        Route::new(Method::POST, "/api/certificate/renew", Access::Admin, renew),
    ]
}

fn service(state: &ServerState) -> Result<&Acme, ApiError> {
    state
        .acme
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the certificate service is not running", 5))
}

async fn challenge(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let token = req.param("token").unwrap_or_default();
    let answer = state
        .acme
        .as_ref()
        .and_then(|a| a.challenges().answer(token))
        .ok_or_else(|| ApiError::not_found("no ACME challenge is pending for this token"))?;
    let mut resp = Response::new(Full::new(Bytes::from(answer)));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn show(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let view = service(&state)?
        .view()
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &view))
}

async fn renew(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let acme = service(&state)?;
    let view = acme
        .view()
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    match view.state {
        State::Off => Err(ApiError::conflict(
            "ACME is turned off: enable it (settings group acme, enabled) first",
        )),
        State::NoPublicName => Err(ApiError::conflict(
            "there is no public name to get a certificate for: set the public URL (system.public_url) to your domain or dynamic-DNS name first",
        )),
        _ => {
            acme.renew_now();
            Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({ "state": "working", "name": view.name }),
            ))
        }
    }
}
