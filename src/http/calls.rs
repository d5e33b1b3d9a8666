//! Calls: the live ones (`GET /api/calls`, hold, hang up; admins) and the
//! history (`GET /api/cdrs`; a user sees the calls of their numbers).

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::b2bua::Party;
use crate::clock::Timestamp;
use crate::endpoint::TransferRefused;
use crate::store::cdrs::{self, Direction, Disposition, Filter};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/calls", Access::Admin, list),
        Route::new(Method::DELETE, "/api/calls/{id}", Access::Admin, hang_up),
        Route::new(Method::POST, "/api/calls/{id}/hold", Access::Admin, hold),
        Route::new(
            Method::POST,
            "/api/calls/{id}/transfer",
            Access::Admin,
            transfer,
        ),
        Route::new(Method::GET, "/api/cdrs", Access::User, history),
    ]
}

fn sip(state: &ServerState) -> Result<&crate::endpoint::SipHandle, ApiError> {
    state
        .sip
        .as_ref()
        .ok_or_else(|| ApiError::conflict("the SIP service is not running"))
}

fn call_id(req: &ApiRequest) -> Result<u64, ApiError> {
    let id = req.id_param("id")?;
    u64::try_from(id).map_err(|_| ApiError::not_found("no such call"))
}

async fn list(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    let calls = sip(&state)?.calls().await;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "items": calls, "total": calls.len() }),
    ))
}

async fn hang_up(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    if sip(&state)?.hang_up(id).await {
        Ok(json_response(
            StatusCode::OK,
            &json!({ "id": id, "ended": true }),
        ))
    } else {
        Err(ApiError::not_found("no such call"))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    #[serde(default = "yes")]
    on: bool,
}

fn yes() -> bool {
    true
}

async fn hold(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    let body: HoldBody = req.json()?;
    let sip = sip(&state)?;
    if sip.hold(id, body.on).await {
        Ok(json_response(
            StatusCode::OK,
            &json!({ "id": id, "on_hold": body.on }),
        ))
    } else if sip.calls().await.iter().any(|c| c.id == id) {
        Err(ApiError::conflict("the call is not answered yet"))
    } else {
        Err(ApiError::not_found("no such call"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    /// The phone (SIP user name) that takes the call over.
    to: String,
    /// Which party is replaced: `a` (the caller's side) or `b`; by default
    /// the household's phone in the call.
    side: Option<Party>,
}

async fn transfer(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    let body: TransferBody = req.json()?;
    match sip(&state)?.transfer(id, body.to.trim(), body.side).await {
        Ok(()) => Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({ "id": id, "transferring_to": body.to.trim() }),
        )),
        Err(TransferRefused::NoSuchCall) => Err(ApiError::not_found("no such call")),
        Err(TransferRefused::NotNow) => Err(ApiError::conflict(
            "the call is not answered yet, or a transfer is already under way",
        )),
        Err(TransferRefused::UnknownExtension) => Err(ApiError::fields(
            "cannot transfer there",
            vec![field("to", "not one of the household's phones")],
        )),
    }
}

async fn history(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let mut filter = Filter::default();
    let mut problems = Vec::new();
    for (k, v) in req.query() {
        match k.as_str() {
            "direction" => match v.parse::<Direction>() {
                Ok(d) => filter.direction = Some(d),
                Err(_) => problems.push(field("direction", "inbound, outbound or internal")),
            },
            "disposition" => match v.parse::<Disposition>() {
                Ok(d) => filter.disposition = Some(d),
                Err(_) => problems.push(field("disposition", "not a known disposition")),
            },
            "since" | "until" => {
                if Timestamp::parse_rfc3339(&v).is_none() {
                    problems.push(field(&k, "an RFC 3339 UTC time like 2026-11-21T10:00:00Z"));
                } else if k == "since" {
                    filter.since = Some(v);
                } else {
                    filter.until = Some(v);
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("invalid filter", problems));
    }
    let rows = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            filter.did_ids = scope.did_ids().map(<[i64]>::to_vec);
            cdrs::list(c, &filter, page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}
