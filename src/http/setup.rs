//! The first-boot setup wizard's API (public, because no account exists yet):
//! `GET /api/setup/status` and `POST /api/setup/complete`.
//!
//! `complete` runs once: it creates the first administrator, sets the time
//! zone, and optionally stores Twilio credentials (checked against Twilio
//! first) and the household's phone numbers, all in one transaction with the
//! `setup.completed` flag, then logs the new admin in. Afterwards it answers
//! 409, so the public endpoint cannot be used to make a second admin. Twilio
//! may be skipped and configured later in the settings. It also answers 409
//! once the step-by-step wizard ([`super::setup_steps`]) has made the
//! administrator.

use std::sync::Arc;

use hyper::header::SET_COOKIE;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::auth;
use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::system::check_twilio;
use super::ServerState;
use crate::accounts::{check_email, password, session};
use crate::store::users::{self, NewUser, Role};
use crate::store::{config, dids, StoreError};
use crate::sysconfig::{
    self, Change, SETUP_COMPLETED, SYSTEM_TIMEZONE, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
};
use crate::twilio::client::is_account_sid;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/setup/status", Access::Public, status),
        Route::new(
            Method::POST,
            "/api/setup/complete",
            Access::Public,
            complete,
        ),
    ]
}

const ALREADY: &str =
    "setup has already been completed; log in as an administrator to change the settings";

/// Where the household is in the wizard (see [`super::setup_steps::progress`]).
async fn status(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let p = state
        .db
        .call(|c| super::setup_steps::progress(c))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &p))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    admin: AdminBody,
    timezone: String,
    #[serde(default)]
    twilio: Option<TwilioBody>,
    #[serde(default)]
    phone_numbers: Vec<NumberBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminBody {
    email: String,
    password: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioBody {
    account_sid: String,
    auth_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    number: String,
    #[serde(default)]
    name: String,
}

/// E.164: `+`, a non-zero digit, at most 15 digits in all.
fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn field(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn validate(b: &SetupBody) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if let Err(m) = check_email(b.admin.email.trim()) {
        problems.push(field("admin.email", m));
    }
    if let Err(e) = password::check_policy(&b.admin.password) {
        problems.push(field("admin.password", e.to_string()));
    }
    if b.admin.display_name.chars().count() > 100 {
        problems.push(field("admin.display_name", "at most 100 characters"));
    }
    if let Err(m) = sysconfig::check_timezone(b.timezone.trim()) {
        problems.push(field("timezone", m));
    }
    if let Some(t) = &b.twilio {
        if !is_account_sid(t.account_sid.trim()) {
            problems.push(field(
                "twilio.account_sid",
                "expected a Twilio Account SID: AC followed by 32 hex digits",
            ));
        }
        if t.auth_token.is_empty() || t.auth_token.len() > 1024 {
            problems.push(field("twilio.auth_token", "required (at most 1024 bytes)"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, n) in b.phone_numbers.iter().enumerate() {
        let number = n.number.trim();
        if !is_e164(number) {
            problems.push(field(
                format!("phone_numbers[{i}].number"),
                "expected E.164, e.g. +15551234567",
            ));
        } else if !seen.insert(number) {
            problems.push(field(format!("phone_numbers[{i}].number"), "listed twice"));
        }
        if n.name.chars().count() > 100 {
            problems.push(field(
                format!("phone_numbers[{i}].name"),
                "at most 100 characters",
            ));
        }
    }
    problems
}

async fn complete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.as_str();
    // One completion at a time; the flag is checked again in the transaction.
    let _only_one = state.setup_lock.lock().await;
    let done = state
        .db
        .call(|c| sysconfig::setup_completed(c))
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    if done {
        return Err(ApiError::conflict(ALREADY));
    }
    let body: SetupBody = req.json()?;
    let problems = validate(&body);
    if !problems.is_empty() {
        return Err(ApiError::fields("setup was not completed", problems));
    }
    let hash = state
        .hashes
        .hash(body.admin.password)
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    let mut changes = vec![Change {
        key: SYSTEM_TIMEZONE.into(),
        value: Some(body.timezone.trim().to_string()),
        secret: false,
    }];
    let mut account_name = None;
    if let Some(t) = body.twilio {
        let sid = t.account_sid.trim().to_string();
        let info = check_twilio(&state, sid.clone(), t.auth_token.clone(), rid).await?;
        account_name = Some(info.friendly_name);
        changes.push(Change {
            key: TWILIO_ACCOUNT_SID.into(),
            value: Some(sid),
            secret: false,
        });
        changes.push(Change {
            key: TWILIO_AUTH_TOKEN.into(),
            value: Some(t.auth_token),
            secret: true,
        });
    }
    let writes =
        sysconfig::seal(&changes, &state.secrets).map_err(|e| ApiError::internal(rid, &e))?;
    let token = session::new_token().map_err(|e| ApiError::internal(rid, &e))?;
    let cookie = auth::session_cookie(&token.token, req.https, rid)?;
    let email = body.admin.email.trim().to_string();
    let display_name = body.admin.display_name.trim().to_string();
    let numbers: Vec<(String, String)> = body
        .phone_numbers
        .into_iter()
        .map(|n| (n.number.trim().to_string(), n.name.trim().to_string()))
        .collect();
    let (ua, ip, now) = (
        super::login::user_agent(&req),
        req.client_ip.to_string(),
        state.clock.now(),
    );
    let user = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            if sysconfig::setup_completed(&tx)? {
                return Err(StoreError::Conflict(ALREADY.into()));
            }
            // The step-by-step wizard may have made the administrator
            // already: this public route must not make a second one.
            if users::count_admins(&tx)? > 0 {
                return Err(StoreError::Conflict(
                    "an administrator already exists; log in to finish the setup".into(),
                ));
            }
            let id = users::insert(
                &tx,
                &NewUser {
                    email: &email,
                    display_name: &display_name,
                    password_hash: &hash,
                    role: Role::Admin,
                },
                now,
            )?;
            sysconfig::apply(&tx, &writes, now)?;
            for (number, name) in &numbers {
                dids::insert(&tx, number, name, None, now)?;
            }
            config::set(&tx, SETUP_COMPLETED, "true", now)?;
            users::record_login(&tx, id, now)?;
            session::open(&tx, &token.hash, id, ua.as_deref(), Some(&ip), now)?;
            let user = users::get(&tx, id)?;
            tx.commit()?;
            Ok(user)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    tracing::info!(
        user_id = user.id,
        twilio = account_name.is_some(),
        "setup completed"
    );
    let mut resp = json_response(
        StatusCode::CREATED,
        &json!({
            "user": user,
            "twilio": account_name.map(|name| json!({ "friendly_name": name })),
        }),
    );
    resp.headers_mut().insert(SET_COOKIE, cookie);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        for ok in ["+15551234567", "+442071234567", "+12"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in [
            "15551234567",
            "+0123",
            "+1",
            "+1234567890123456",
            "+1 555",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }
}
