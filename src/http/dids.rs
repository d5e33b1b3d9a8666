//! Phone numbers and who they belong to: `GET /api/dids`, `GET /api/dids/{id}`
//! (any account, narrowed by its scope: a user sees the numbers assigned to
//! them; another user's number is "not found"), and
//! `PUT /api/dids/{id}/users` (admins: assign a number to accounts).
//!
//! Numbers are added by the setup wizard, or from the Twilio account with
//! `POST /api/twilio/numbers/{sid}/connect` (`http::twilio_admin`).

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::store::{dids, users, StoreError};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/dids", Access::User, list),
        Route::new(Method::GET, "/api/dids/{id}", Access::User, get),
        Route::new(
            Method::PUT,
            "/api/dids/{id}/users",
            Access::Admin,
            set_users,
        ),
    ]
}

/// A number as the API shows it; admins also see who it is assigned to.
fn shown(did: &dids::Did, user_ids: Option<Vec<i64>>) -> Value {
    let mut v = json!(did);
    if let (Some(ids), Some(obj)) = (user_ids, v.as_object_mut()) {
        obj.insert("user_ids".into(), json!(ids));
    }
    v
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let rows = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            dids::list(c, scope.owner(), page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let id = req.id_param("id")?;
    let body = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            scope.check_did(id)?;
            let did = dids::get(c, id)?;
            let user_ids = match scope {
                Scope::All => Some(dids::users_of(c, id)?),
                Scope::Own { .. } => None,
            };
            Ok(shown(&did, user_ids))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Assignment {
    user_ids: Vec<i64>,
}

async fn set_users(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let body: Assignment = req.json()?;
    let mut wanted = body.user_ids;
    wanted.sort_unstable();
    wanted.dedup();
    let outcome = state
        .db
        .call(move |c| {
            let did = dids::get(c, id)?;
            let mut missing = Vec::new();
            for u in &wanted {
                match users::get(c, *u) {
                    Ok(_) => {}
                    Err(StoreError::NotFound { .. }) => missing.push(*u),
                    Err(e) => return Err(e),
                }
            }
            if !missing.is_empty() {
                return Ok(Err(missing));
            }
            dids::set_users(c, id, &wanted)?;
            Ok(Ok(shown(&did, Some(dids::users_of(c, id)?))))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    if outcome.is_ok() {
        // Who rings for the number changed: tell the call router.
        state.events.directory_changed().await;
    }
    match outcome {
        Ok(body) => Ok(json_response(StatusCode::OK, &body)),
        Err(missing) => Err(ApiError::fields(
            "the assignment was not changed",
            vec![FieldError {
                field: "user_ids".into(),
                message: format!("no such accounts: {missing:?}"),
            }],
        )),
    }
}
