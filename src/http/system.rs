//! The system configuration API (admins only): `GET/PUT /api/system/config`.
//!
//! Groups and validation live in `sysconfig`. Secrets are write-only: the
//! answer says whether each is set, never what it is. New Twilio credentials
//! are checked against Twilio before they are stored; when the check fails
//! nothing is stored:
//! * Twilio rejects them → 400 `VALIDATION_ERROR`, details `[{"field":"twilio",…}]`;
//! * Twilio cannot be reached or answers an error → 502, `details.upstream = "twilio"`.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::Value;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::store::{config, secrets};
use crate::sysconfig::{self, Change, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN};
use crate::twilio::{AccountInfo, Client, TwilioError};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/system/config", Access::Admin, get),
        Route::new(Method::PUT, "/api/system/config", Access::Admin, put),
    ]
}

/// Checks Twilio credentials against the API at `settings.twilio_api_base`
/// (on a blocking thread) and maps failures to the answers documented above.
pub(crate) async fn check_twilio(
    state: &ServerState,
    account_sid: String,
    auth_token: String,
    request_id: &str,
) -> Result<AccountInfo, ApiError> {
    let base = state.settings.twilio_api_base.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        Client::new(&base, &account_sid, &auth_token).check_credentials()
    })
    .await
    .map_err(|e| ApiError::internal(request_id, &e))?;
    match outcome {
        Ok(info) if info.status == "active" => Ok(info),
        Ok(info) => Err(ApiError::fields(
            "the Twilio account is not usable",
            vec![FieldError {
                field: "twilio".into(),
                message: format!("Twilio says the account is {}", info.status),
            }],
        )),
        Err(e @ (TwilioError::Unauthorized { .. } | TwilioError::InvalidAccountSid)) => {
            Err(ApiError::fields(
                "Twilio rejected these credentials",
                vec![FieldError {
                    field: "twilio".into(),
                    message: e.to_string(),
                }],
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "Twilio credentials check failed");
            Err(ApiError::bad_gateway(
                "twilio",
                format!("the credentials could not be checked with Twilio; nothing was saved. {e}"),
            ))
        }
    }
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let view = state
        .db
        .call(|c| sysconfig::view(c))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &view))
}

async fn put(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let body: Value = req.json()?;
    let rid = req.request_id.as_str();
    let changes = sysconfig::parse_update(&body).map_err(|problems| {
        ApiError::fields(
            "the configuration was not changed",
            problems
                .into_iter()
                .map(|p| FieldError {
                    field: p.field,
                    message: p.message,
                })
                .collect(),
        )
    })?;
    if changes
        .iter()
        .any(|c| c.sets(TWILIO_ACCOUNT_SID) || c.sets(TWILIO_AUTH_TOKEN))
    {
        let (sid, token) = effective_twilio(&state, &changes, rid).await?;
        check_twilio(&state, sid, token, rid).await?;
    }
    let writes =
        sysconfig::seal(&changes, &state.secrets).map_err(|e| ApiError::internal(rid, &e))?;
    let now = state.clock.now();
    let view = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            sysconfig::apply(&tx, &writes, now)?;
            let view = sysconfig::view(&tx)?;
            tx.commit()?;
            Ok(view)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    tracing::info!(?keys, "system configuration changed");
    if keys
        .iter()
        .any(|k| k.starts_with("twilio.sip_") || *k == sysconfig::SYSTEM_TIMEZONE)
    {
        // The SIP Domain or the SIP credentials changed: the call router
        // uses them; the zone decides when DND schedules are active.
        state.events.directory_changed().await;
    }
    Ok(json_response(StatusCode::OK, &view))
}

/// The Twilio credentials as they would be after `changes`: new values where
/// given, stored ones otherwise. Both are needed for the check.
async fn effective_twilio(
    state: &ServerState,
    changes: &[Change],
    request_id: &str,
) -> Result<(String, String), ApiError> {
    let new = |key: &str| {
        changes
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.clone())
    };
    let (stored_sid, stored_token) = state
        .db
        .call(|c| {
            Ok::<_, crate::store::StoreError>((
                config::get(c, TWILIO_ACCOUNT_SID)?,
                secrets::get(c, TWILIO_AUTH_TOKEN)?,
            ))
        })
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?;
    let sid = new(TWILIO_ACCOUNT_SID).unwrap_or(stored_sid);
    let token = match new(TWILIO_AUTH_TOKEN) {
        Some(token) => token,
        None => sysconfig::open_secret(&state.secrets, TWILIO_AUTH_TOKEN, stored_token)
            .map_err(|e| ApiError::internal(request_id, &e))?,
    };
    match (sid, token) {
        (Some(sid), Some(token)) => Ok((sid, token)),
        (sid, _) => Err(ApiError::fields(
            "the configuration was not changed",
            vec![FieldError {
                field: if sid.is_none() {
                    "twilio.account_sid".into()
                } else {
                    "twilio.auth_token".into()
                },
                message: "Twilio needs both the Account SID and the auth token".into(),
            }],
        )),
    }
}
