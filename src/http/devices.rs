//! Phones: `GET/POST /api/devices`, `GET/PUT/DELETE /api/devices/{id}`,
//! `GET /api/devices/{id}/credentials`, `POST /api/devices/{id}/password`
//! (a new generated SIP password) and `GET /api/devices/registrations`.
//!
//! Why SIP passwords are sealed, not hashed: digest authentication needs the
//! password (or a realm-bound HA1) and provisioning must hand it to the phone,
//! so it is stored encrypted with the appliance's key (`secrets`), bound to
//! its column. Lists and single reads never include it; owners and admins
//! get it from the `credentials` route, meant for setting up the phone. After
//! every change the SIP endpoint reloads its credential table, so a new
//! phone can register at once and a deleted one loses its bindings.
//!
//! Users see and read only their own phones (another's answers 404, like a
//! missing one); creating, changing and deleting phones is for admins.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::password;
use crate::accounts::scope::Scope;
use crate::store::devices::DeviceId;
use crate::store::devices::{self, DeviceFields, DeviceType, SIP_PASSWORD_CONTEXT};

/// Shortest SIP password accepted from an admin (a generated one is 20).
const MIN_SIP_PASSWORD: usize = 8;
/// Longest SIP user name or password.
const MAX_SIP_FIELD: usize = 64;
/// Longest phone name.
const MAX_NAME: usize = 100;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/devices", Access::User, list),
        Route::new(Method::POST, "/api/devices", Access::Admin, create),
        Route::new(
            Method::GET,
            "/api/devices/registrations",
            Access::User,
            registrations,
        ),
        Route::new(Method::GET, "/api/devices/{id}", Access::User, get),
        Route::new(
            Method::GET,
            "/api/devices/{id}/credentials",
            Access::User,
            credentials,
        ),
        Route::new(Method::PUT, "/api/devices/{id}", Access::Admin, update),
        Route::new(
            Method::POST,
            "/api/devices/{id}/password",
            Access::Admin,
            regenerate_password,
        ),
        Route::new(Method::DELETE, "/api/devices/{id}", Access::Admin, delete),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    username: String,
    /// Absent on create: one is generated. Absent on update: unchanged.
    password: Option<String>,
    #[serde(default = "default_type")]
    device_type: DeviceType,
    user_id: Option<i64>,
    #[serde(default)]
    recording_enabled: bool,
}

fn default_type() -> DeviceType {
    DeviceType::Softphone
}

impl DeviceInput {
    fn fields(&self) -> DeviceFields<'_> {
        DeviceFields {
            user_id: self.user_id,
            name: self.name.trim(),
            username: &self.username,
            device_type: self.device_type,
            recording_enabled: self.recording_enabled,
        }
    }
}

/// Seals a SIP password for its column.
fn seal(state: &ServerState, req: &ApiRequest, password: &str) -> Result<Vec<u8>, ApiError> {
    state
        .secrets
        .seal(SIP_PASSWORD_CONTEXT, password.as_bytes())
        .map_err(|e| ApiError::internal(&req.request_id, &e))
}

fn problem(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks the input; returns the password to store (given or generated).
fn validate(input: &DeviceInput, creating: bool) -> Result<Option<String>, ApiError> {
    let mut problems = Vec::new();
    let name_len = input.name.trim().chars().count();
    if name_len == 0 || name_len > MAX_NAME || input.name.chars().any(char::is_control) {
        problems.push(problem(
            "name",
            "1 to 100 characters, no control characters",
        ));
    }
    let u = &input.username;
    if u.is_empty()
        || u.len() > MAX_SIP_FIELD
        || !u
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        problems.push(problem(
            "username",
            "1 to 64 characters: letters, digits, '.', '_' or '-'",
        ));
    }
    if let Some(p) = &input.password {
        if p.chars().count() < MIN_SIP_PASSWORD
            || p.len() > MAX_SIP_FIELD
            || p.chars().any(|c| c.is_control() || c == '"')
        {
            problems.push(problem(
                "password",
                "8 to 64 characters, no quotes or control characters",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("invalid phone", problems));
    }
    match (&input.password, creating) {
        (Some(p), _) => Ok(Some(p.clone())),
        (None, true) => password::generate()
            .map(Some)
            .map_err(|e| ApiError::internal("generate", &e)),
        (None, false) => Ok(None),
    }
}

/// Tells the SIP endpoint that phones changed; returns once it reloaded, so
/// the phone can register with its new credentials as soon as we answer.
async fn reload_sip(state: &ServerState) {
    state.events.directory_changed().await;
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let rows = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            devices::list(c, scope.owner(), page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let (me, id) = (req.principal()?, DeviceId(req.id_param("id")?));
    let device = state
        .db
        .call(move |c| Scope::load(c, &me)?.check_device(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &device))
}

async fn credentials(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let (me, id) = (req.principal()?, DeviceId(req.id_param("id")?));
    credentials_of(&state, &req, me, id).await
}

/// Replaces a phone's SIP password with a generated one (the old one stops
/// working at once: the SIP endpoint reloads) and answers the new login.
async fn regenerate_password(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let (me, id) = (req.principal()?, DeviceId(req.id_param("id")?));
    let pw = password::generate().map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let sealed = seal(&state, &req, &pw)?;
    let now = state.clock.now();
    state
        .db
        .call(move |c| {
            devices::get(c, id)?;
            devices::set_sealed_password(c, id, &sealed, now)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(device_id = id.0, "phone SIP password regenerated");
    reload_sip(&state).await;
    credentials_of(&state, &req, me, id).await
}

/// The SIP login of a phone the caller may see.
async fn credentials_of(
    state: &ServerState,
    req: &ApiRequest,
    me: crate::accounts::session::Principal,
    id: DeviceId,
) -> ApiResult {
    let (device, sealed) = state
        .db
        .call(move |c| {
            let device = Scope::load(c, &me)?.check_device(c, id)?;
            let (_, sealed) = devices::credentials(c, &device.username)?
                .ok_or_else(|| crate::store::StoreError::not_found("device", id))?;
            Ok((device, sealed))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let plain = state
        .secrets
        .open(SIP_PASSWORD_CONTEXT, &sealed)
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let listeners: serde_json::Map<String, serde_json::Value> = state
        .listeners
        .iter()
        .filter(|(n, _)| n.starts_with("sip"))
        .map(|(n, a)| (n.to_string(), json!(a.port())))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "device_id": device.id,
            "username": device.username,
            "password": String::from_utf8_lossy(&plain),
            "realm": crate::endpoint::REALM,
            "ports": listeners,
        }),
    ))
}

async fn create(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let input: DeviceInput = req.json()?;
    let pw = validate(&input, true)?.unwrap_or_default();
    let sealed = seal(&state, &req, &pw)?;
    let now = state.clock.now();
    let device = state
        .db
        .call(move |c| {
            let f = input.fields();
            let id = devices::insert(c, &f, &sealed, now)?;
            devices::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(device_id = device.id.0, username = %device.username, "phone created");
    reload_sip(&state).await;
    Ok(json_response(StatusCode::CREATED, &device))
}

async fn update(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = DeviceId(req.id_param("id")?);
    let input: DeviceInput = req.json()?;
    let new_password = validate(&input, false)?;
    let sealed = new_password
        .as_deref()
        .map(|p| seal(&state, &req, p))
        .transpose()?;
    let now = state.clock.now();
    let device = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let f = input.fields();
            devices::update(&tx, id, &f, now)?;
            if let Some(s) = &sealed {
                devices::set_sealed_password(&tx, id, s, now)?;
            }
            let d = devices::get(&tx, id)?;
            tx.commit()?;
            Ok(d)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    reload_sip(&state).await;
    Ok(json_response(StatusCode::OK, &device))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = DeviceId(req.id_param("id")?);
    state
        .db
        .call(move |c| devices::delete(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(device_id = id.0, "phone deleted");
    reload_sip(&state).await;
    Ok(json_response(StatusCode::OK, &json!({ "deleted": id })))
}

async fn registrations(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let mine: Option<Vec<DeviceId>> = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            match scope.owner() {
                None => Ok(None),
                Some(owner) => Ok(Some(
                    devices::list(c, Some(owner), crate::store::Page::ALL)?
                        .items
                        .into_iter()
                        .map(|d| d.id)
                        .collect(),
                )),
            }
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let all = match &state.sip {
        Some(sip) => sip.registrations().await,
        None => Vec::new(),
    };
    let items: Vec<_> = all
        .into_iter()
        .filter(|r| {
            mine.as_ref()
                .is_none_or(|ids| ids.contains(&DeviceId(r.device_id)))
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "items": items })))
}
