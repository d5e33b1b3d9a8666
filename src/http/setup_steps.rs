//! The setup wizard one step at a time, so that a reload (or another
//! browser) resumes where the household is: the server derives the current
//! step from what is stored, never from the browser.
//!
//! Steps: `welcome` (household name and time zone, public, until the admin
//! exists), `admin` (creates the first administrator and logs in; refused
//! once one exists), then, as that admin: `twilio` (credentials checked live,
//! or an explicit skip that the dashboard reminds of), `internet` (public URL
//! and the port-forward checklist), `numbers` and `phone` (done with the
//! existing number and phone routes, then marked), and `finish`, which sets
//! `setup.completed`. After that every step answers 409; the settings pages
//! change the same values. The one-shot `POST /api/setup/complete` stays for
//! scripted installs.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::SET_COOKIE;
use hyper::{Method, StatusCode};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth;
use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::system::check_twilio;
use super::ServerState;
use crate::accounts::{check_email, password, session};
use crate::store::users::{self, NewUser, Role};
use crate::store::{config, secrets, StoreError};
use crate::sysconfig::{
    self, Change, SETUP_COMPLETED, SYSTEM_PUBLIC_URL, SYSTEM_TIMEZONE, TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
};
use crate::twilio::client::is_account_sid;

/// `config` key: the household's name, shown in the UI.
pub const SETUP_HOUSEHOLD_NAME: &str = "setup.household_name";
/// `config` key: `true` when the admin chose "skip, do it later" for Twilio.
pub const SETUP_TWILIO_SKIPPED: &str = "setup.twilio_skipped";
/// `config` key prefix of the steps that store nothing of their own.
const STEP_DONE_PREFIX: &str = "setup.done.";
/// Longest household name.
const MAX_HOUSEHOLD_NAME: usize = 100;

/// The wizard's steps, in order.
pub const STEPS: [&str; 6] = ["welcome", "admin", "twilio", "internet", "numbers", "phone"];
/// Steps marked done by `PUT /api/setup/step` (the others are done by
/// storing their data).
const MARKED_STEPS: [&str; 3] = ["internet", "numbers", "phone"];

const ALREADY: &str = "setup has already been completed; the settings pages change these values";

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::PUT,
            "/api/setup/household",
            Access::Public,
            household,
        ),
        Route::new(Method::POST, "/api/setup/admin", Access::Public, admin),
        Route::new(Method::PUT, "/api/setup/twilio", Access::Admin, twilio),
        Route::new(Method::GET, "/api/setup/network", Access::Admin, network),
        Route::new(
            Method::PUT,
            "/api/setup/network",
            Access::Admin,
            save_network,
        ),
        Route::new(Method::PUT, "/api/setup/step", Access::Admin, mark_step),
        Route::new(Method::POST, "/api/setup/finish", Access::Admin, finish),
    ]
}

/// Where the household is in the wizard (the body of `GET /api/setup/status`).
pub fn progress(c: &Connection) -> Result<Value, StoreError> {
    let completed = sysconfig::setup_completed(c)?;
    let twilio_configured = config::get(c, TWILIO_ACCOUNT_SID)?.is_some()
        && secrets::get(c, TWILIO_AUTH_TOKEN)?.is_some();
    let twilio_skipped = sysconfig::flag(c, SETUP_TWILIO_SKIPPED)?;
    let household_name = config::get(c, SETUP_HOUSEHOLD_NAME)?;
    let timezone = config::get(c, SYSTEM_TIMEZONE)?;
    let admin_exists = users::count_admins(c)? > 0;
    let mut done = vec![
        household_name.is_some() && timezone.is_some(),
        admin_exists,
        twilio_configured || twilio_skipped,
    ];
    for step in MARKED_STEPS {
        done.push(sysconfig::flag(c, &format!("{STEP_DONE_PREFIX}{step}"))?);
    }
    let step = if completed {
        "done"
    } else {
        // The first step not done; the admin step gates everything after it.
        STEPS
            .iter()
            .zip(&done)
            .find(|(_, d)| !**d)
            .map_or("finish", |(s, _)| *s)
    };
    Ok(json!({
        "setup_completed": completed,
        "twilio_configured": twilio_configured,
        "twilio_skipped": twilio_skipped && !twilio_configured,
        "household_name": household_name,
        "timezone": timezone,
        "admin_exists": admin_exists,
        "step": step,
        "steps_done": STEPS.iter().zip(&done).filter(|(_, d)| **d).map(|(s, _)| *s).collect::<Vec<_>>(),
    }))
}

fn field(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Answers the current progress.
async fn progress_response(state: &ServerState, rid: &str, status: StatusCode) -> ApiResult {
    let p = state
        .db
        .call(|c| progress(c))
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    Ok(json_response(status, &p))
}

/// Refuses when setup is over.
async fn still_open(state: &ServerState, rid: &str) -> Result<(), ApiError> {
    let done = state
        .db
        .call(|c| sysconfig::setup_completed(c))
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    if done {
        Err(ApiError::conflict(ALREADY))
    } else {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Household {
    #[serde(default)]
    household_name: String,
    #[serde(default)]
    timezone: String,
}

/// Step 1. Public while no administrator exists (nobody can log in yet);
/// afterwards the settings change the time zone.
async fn household(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    let body: Household = req.json()?;
    let name = body.household_name.trim().to_string();
    let tz = body.timezone.trim().to_string();
    let mut problems = Vec::new();
    let len = name.chars().count();
    if len == 0 || len > MAX_HOUSEHOLD_NAME || name.chars().any(char::is_control) {
        problems.push(field(
            "household_name",
            "1 to 100 characters, no control characters",
        ));
    }
    if let Err(m) = sysconfig::check_timezone(&tz) {
        problems.push(field("timezone", m));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("the household was not saved", problems));
    }
    let now = state.clock.now();
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            if sysconfig::setup_completed(&tx)? {
                return Err(StoreError::Conflict(ALREADY.into()));
            }
            if users::count_admins(&tx)? > 0 {
                return Err(StoreError::Conflict(
                    "the administrator exists: log in and change the time zone in the settings"
                        .into(),
                ));
            }
            config::set(&tx, SETUP_HOUSEHOLD_NAME, &name, now)?;
            config::set(&tx, SYSTEM_TIMEZONE, &tz, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    progress_response(&state, &rid, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
}

/// Step 2: the first administrator, logged in at once. Refused (409) before
/// step 1 is saved (it is public only until now, so it must come first) and
/// once any administrator exists, so this public route cannot make a second one.
async fn admin(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    // Serialised with /api/setup/complete: two browsers racing get one admin.
    let _only_one = state.setup_lock.lock().await;
    still_open(&state, &rid).await?;
    let body: AdminBody = req.json()?;
    let email = body.email.trim().to_string();
    let display_name = body.display_name.trim().to_string();
    let mut problems = Vec::new();
    if let Err(m) = check_email(&email) {
        problems.push(field("email", m));
    }
    if let Err(e) = password::check_policy(&body.password) {
        problems.push(field("password", e.to_string()));
    }
    if display_name.chars().count() > 100 || display_name.chars().any(char::is_control) {
        problems.push(field(
            "display_name",
            "at most 100 characters, no control characters",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(
            "the administrator was not created",
            problems,
        ));
    }
    let hash = state
        .hashes
        .hash(body.password)
        .await
        .map_err(|e| ApiError::internal(&rid, &e))?;
    let token = session::new_token().map_err(|e| ApiError::internal(&rid, &e))?;
    let cookie = auth::session_cookie(&token.token, req.https, &rid)?;
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
            if users::count_admins(&tx)? > 0 {
                return Err(StoreError::Conflict(
                    "an administrator already exists; log in to continue the setup".into(),
                ));
            }
            // Step 1 is public only until the admin exists: it must come first.
            if config::get(&tx, SYSTEM_TIMEZONE)?.is_none()
                || config::get(&tx, SETUP_HOUSEHOLD_NAME)?.is_none()
            {
                return Err(StoreError::Conflict(
                    "save the household name and time zone first (PUT /api/setup/household)".into(),
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
            users::record_login(&tx, id, now)?;
            session::open(&tx, &token.hash, id, ua.as_deref(), Some(&ip), now)?;
            let user = users::get(&tx, id)?;
            tx.commit()?;
            Ok(user)
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    tracing::info!(user_id = user.id, "setup: administrator created");
    let mut resp = json_response(StatusCode::CREATED, &json!({ "user": user }));
    resp.headers_mut().insert(SET_COOKIE, cookie);
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioBody {
    #[serde(default)]
    account_sid: String,
    #[serde(default)]
    auth_token: String,
    #[serde(default)]
    skip: bool,
}

/// Step 3: credentials checked with Twilio before they are stored, or an
/// explicit skip (recorded, so the dashboard can remind).
async fn twilio(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    still_open(&state, &rid).await?;
    let body: TwilioBody = req.json()?;
    let now = state.clock.now();
    if body.skip {
        state
            .db
            .call(move |c| config::set(c, SETUP_TWILIO_SKIPPED, "true", now).map(drop))
            .await
            .map_err(|e| ApiError::from_store(&rid, e))?;
        return progress_response(&state, &rid, StatusCode::OK).await;
    }
    let sid = body.account_sid.trim().to_string();
    let mut problems = Vec::new();
    if !is_account_sid(&sid) {
        problems.push(field(
            "account_sid",
            "expected a Twilio Account SID: AC followed by 32 hex digits",
        ));
    }
    if body.auth_token.is_empty() || body.auth_token.len() > 1024 {
        problems.push(field("auth_token", "required (at most 1024 bytes)"));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("Twilio was not set up", problems));
    }
    let info = check_twilio(&state, sid.clone(), body.auth_token.clone(), &rid)
        .await
        .map_err(token_field)?;
    let changes = [
        Change {
            key: TWILIO_ACCOUNT_SID.into(),
            value: Some(sid),
            secret: false,
        },
        Change {
            key: TWILIO_AUTH_TOKEN.into(),
            value: Some(body.auth_token),
            secret: true,
        },
    ];
    let writes =
        sysconfig::seal(&changes, &state.secrets).map_err(|e| ApiError::internal(&rid, &e))?;
    let p = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            sysconfig::apply(&tx, &writes, now)?;
            config::delete(&tx, SETUP_TWILIO_SKIPPED)?;
            tx.commit()?;
            progress(c)
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    tracing::info!("setup: Twilio credentials stored");
    let mut out = p;
    out["twilio_account"] = json!({ "friendly_name": info.friendly_name });
    Ok(json_response(StatusCode::OK, &out))
}

/// Twilio's refusal names the `twilio` field; in this form it belongs under
/// the auth token (the SID's format was checked already).
fn token_field(mut e: ApiError) -> ApiError {
    if let Some(items) = e.details.as_array_mut() {
        for item in items {
            if item["field"] == "twilio" {
                item["field"] = json!("auth_token");
            }
        }
    }
    e
}

/// One line of the router checklist.
fn rule(protocol: &str, ports: String, to_port: String, purpose: &str) -> Value {
    json!({ "protocol": protocol, "ports": ports, "to_port": to_port, "purpose": purpose })
}

/// The IPv4 addresses of this machine's interfaces that a router could
/// forward to (not loopback, not link-local). IPv6 is left out: home
/// routers port-forward IPv4.
fn lan_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) else {
                continue;
            };
            let ip = v4.ip();
            if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
                out.push(IpAddr::V4(ip));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The port-forward plan for this machine: where the router must send the
/// internet's SIP, RTP and HTTPS traffic.
async fn network(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let public_url = state
        .db
        .call(|c| config::get(c, SYSTEM_PUBLIC_URL))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let port_of = |name: &str| {
        state
            .listeners
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    };
    let http = port_of("http").unwrap_or(state.settings.http_listen);
    // A listener bound to one address can only be reached there.
    let lan: Vec<IpAddr> = if http.ip().is_unspecified() {
        lan_addresses()
    } else {
        vec![http.ip()]
    };
    let media = &state.settings.media;
    let mut rules = Vec::new();
    if let Some(tls) = port_of("sip_tls") {
        rules.push(rule(
            "TCP",
            sysconfig::DEFAULT_SIP_PUBLIC_PORT.to_string(),
            tls.port().to_string(),
            "calls from Twilio (SIP over TLS)",
        ));
    }
    rules.push(rule(
        "UDP",
        format!("{}-{}", media.rtp_first, media.rtp_last),
        format!("{}-{}", media.rtp_first, media.rtp_last),
        "the sound of calls (RTP)",
    ));
    match port_of("https") {
        // Homeline serves HTTPS itself, with the ACME certificate, whose
        // HTTP-01 check arrives on port 80.
        Some(https) => {
            rules.push(rule(
                "TCP",
                "443".into(),
                https.port().to_string(),
                "Twilio's webhooks and the web UI (HTTPS)",
            ));
            rules.push(rule(
                "TCP",
                "80".into(),
                http.port().to_string(),
                "the HTTPS certificate: Let's Encrypt checks the public name over HTTP",
            ));
        }
        None => rules.push(rule(
            "TCP",
            "443".into(),
            http.port().to_string(),
            "Twilio's webhooks (HTTPS, through a TLS proxy or tunnel in front of Homeline)",
        )),
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "lan_addresses": lan,
            "public_url": public_url,
            "web_port": http.port(),
            "rules": rules,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkBody {
    public_url: Option<String>,
}

/// Step 4: the public URL (validated like the System settings; empty or
/// null leaves it unset, for households that use Twilio for outgoing calls
/// only for now), and the step is done.
async fn save_network(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    still_open(&state, &rid).await?;
    let body: NetworkBody = req.json()?;
    let url = body
        .public_url
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty());
    let mut writes = Vec::new();
    if let Some(u) = &url {
        let changes = sysconfig::parse_update(&json!({ "system": { "public_url": u } })).map_err(
            |invalid| {
                ApiError::fields(
                    "the public address was not saved",
                    invalid
                        .into_iter()
                        .map(|i| field("public_url", i.message))
                        .collect(),
                )
            },
        )?;
        writes =
            sysconfig::seal(&changes, &state.secrets).map_err(|e| ApiError::internal(&rid, &e))?;
    }
    let now = state.clock.now();
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            sysconfig::apply(&tx, &writes, now)?;
            config::set(&tx, &format!("{STEP_DONE_PREFIX}internet"), "true", now)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    progress_response(&state, &rid, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    #[serde(default)]
    step: String,
}

/// Marks a step whose work is done through other routes (connecting
/// numbers, creating the phone) as done, so a reload goes on after it.
async fn mark_step(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    still_open(&state, &rid).await?;
    let body: StepBody = req.json()?;
    if !MARKED_STEPS.contains(&body.step.as_str()) {
        return Err(ApiError::fields(
            "unknown step",
            vec![field("step", format!("one of {}", MARKED_STEPS.join(", ")))],
        ));
    }
    let (key, now) = (
        format!("{STEP_DONE_PREFIX}{}", body.step),
        state.clock.now(),
    );
    state
        .db
        .call(move |c| config::set(c, &key, "true", now).map(drop))
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    progress_response(&state, &rid, StatusCode::OK).await
}

/// Ends the wizard. The household must have a name and a time zone (the
/// admin exists: this route needs them); Twilio may have been skipped.
async fn finish(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rid = req.request_id.clone();
    let _only_one = state.setup_lock.lock().await;
    let now = state.clock.now();
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            if sysconfig::setup_completed(&tx)? {
                return Err(StoreError::Conflict(ALREADY.into()));
            }
            if config::get(&tx, SYSTEM_TIMEZONE)?.is_none() {
                return Err(StoreError::Conflict(
                    "the time zone is not set: complete the first step".into(),
                ));
            }
            config::set(&tx, SETUP_COMPLETED, "true", now)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    tracing::info!("setup completed (wizard)");
    progress_response(&state, &rid, StatusCode::OK).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses_are_routable_v4() {
        for ip in lan_addresses() {
            assert!(ip.is_ipv4() && !ip.is_loopback(), "{ip}");
        }
    }

    #[test]
    fn marked_steps_are_steps() {
        for s in MARKED_STEPS {
            assert!(STEPS.contains(&s));
        }
    }
}
