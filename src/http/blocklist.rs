//! The blocklist (admins): numbers whose calls and messages are refused.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /api/blocklist` (paged, newest first) | `{items: [entry], page, per_page, total}` |
//! | `POST /api/blocklist` `{pattern, pattern_type, reason?}` | 201 entry; 400 with `details[]` for a pattern that could never match; 409 if it is there already |
//! | `DELETE /api/blocklist/{id}` | 204 |
//! | `GET /api/blocklist/check?number=…` | `{number, blocked, entry: entry \| null}` |
//!
//! The check asks `twilio::routing`, the code the webhooks use on a real
//! call or message, so it cannot disagree with them.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, no_content, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::store::blocklist::{self, PatternType};
use crate::twilio::routing;

/// Longest pattern or number accepted.
const MAX_PATTERN: usize = 200;
/// Longest reason.
const MAX_REASON: usize = 200;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/blocklist", Access::Admin, list),
        Route::new(Method::POST, "/api/blocklist", Access::Admin, create),
        Route::new(Method::GET, "/api/blocklist/check", Access::Admin, check),
        Route::new(Method::DELETE, "/api/blocklist/{id}", Access::Admin, delete),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryInput {
    #[serde(default)]
    pattern: String,
    pattern_type: Option<PatternType>,
    #[serde(default)]
    reason: String,
}

fn problem(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The entry to store, or every problem with the input.
fn validate(input: &EntryInput) -> Result<(String, PatternType, String), ApiError> {
    let mut problems = Vec::new();
    let pattern = input.pattern.trim();
    let reason = input.reason.trim();
    if pattern.is_empty() || pattern.len() > MAX_PATTERN || pattern.chars().any(char::is_control) {
        problems.push(problem(
            "pattern",
            "1 to 200 characters, no control characters",
        ));
    }
    match input.pattern_type {
        None => problems.push(problem("pattern_type", "exact, prefix or regex")),
        Some(ty) if problems.is_empty() => {
            if let Err(message) = routing::check_pattern(ty, pattern) {
                problems.push(problem("pattern", message));
            }
        }
        Some(_) => {}
    }
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        problems.push(problem(
            "reason",
            "at most 200 characters, no control characters",
        ));
    }
    match (problems.is_empty(), input.pattern_type) {
        (true, Some(ty)) => Ok((pattern.to_string(), ty, reason.to_string())),
        _ => Err(ApiError::fields("the entry was not added", problems)),
    }
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let page = req.page()?;
    let rows = state
        .db
        .call(move |c| blocklist::list(c, page.window()))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

async fn create(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let input: EntryInput = req.json()?;
    let (pattern, ty, reason) = validate(&input)?;
    let now = state.clock.now();
    let entry = state
        .db
        .call(move |c| {
            let id = blocklist::insert(c, &pattern, ty, &reason, now)?;
            blocklist::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id = entry.id, pattern = %entry.pattern, kind = %entry.pattern_type, "blocklist entry added");
    Ok(json_response(StatusCode::CREATED, &entry))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| blocklist::delete(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id, "blocklist entry removed");
    Ok(no_content())
}

async fn check(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let number = req
        .query()
        .into_iter()
        .find(|(k, _)| k == "number")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if number.is_empty() || number.len() > MAX_PATTERN || number.chars().any(char::is_control) {
        return Err(ApiError::fields(
            "nothing to check",
            vec![problem(
                "number",
                "a phone number as callers send it, e.g. +15551230001",
            )],
        ));
    }
    let asked = number.clone();
    let entry = state
        .db
        .call(move |c| routing::blocking_entry(c, &asked))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "number": number, "blocked": entry.is_some(), "entry": entry }),
    ))
}
