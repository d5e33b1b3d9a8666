//! Do-Not-Disturb settings (see `rules::dnd`).
//!
//! | Route | Who | Answer |
//! |---|---|---|
//! | `GET /api/dnd` | admins: every setting; a user: the household's, their own and their phones' | `{items: [state]}` |
//! | `PUT /api/dnd/system` `{on, schedule}` | admins | the new state |
//! | `PUT /api/users/{id}/dnd` `{on, schedule}` | admins, or the user themself | the new state |
//! | `PUT /api/devices/{id}/dnd` `{on, schedule}` | admins, or the phone's owner | the new state |
//!
//! A state is `{scope, subject_id, on, schedule, active}`: `active` is
//! whether it is in effect now (on, or the schedule, in the household's
//! zone, contains this moment). Every account and phone is listed, with
//! `on: false, schedule: null` when it never had a setting. Another user's
//! account or phone answers 404, as a missing one does. A change is
//! announced (`dnd` on the event stream) and reaches the call router
//! before the answer, so the next call already sees it.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope as Ownership;
use crate::events::Event;
use crate::rules::dnd::{self as rdnd, DndState};
use crate::rules::schedule::Schedule;
use crate::store::devices::DeviceId;
use crate::store::dnd::{self, Scope};
use crate::store::StoreError;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/dnd", Access::User, list),
        Route::new(Method::PUT, "/api/dnd/system", Access::Admin, put_system),
        Route::new(Method::PUT, "/api/users/{id}/dnd", Access::User, put_user),
        Route::new(
            Method::PUT,
            "/api/devices/{id}/dnd",
            Access::User,
            put_device,
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DndInput {
    on: Option<bool>,
    #[serde(default)]
    schedule: Value,
}

/// The setting to store (`on`, the schedule's JSON), or every problem.
fn validate(input: &DndInput) -> Result<(bool, Option<String>), ApiError> {
    let mut problems = Vec::new();
    let field = |f: &str, m: String| FieldError {
        field: f.into(),
        message: m,
    };
    if input.on.is_none() {
        problems.push(field("on", "true or false".into()));
    }
    let schedule = match &input.schedule {
        Value::Null => None,
        v => match serde_json::from_value::<Schedule>(v.clone()) {
            Ok(s) => match s.validate() {
                Ok(()) => Some(s),
                Err(m) => {
                    problems.push(field("schedule", m));
                    None
                }
            },
            Err(e) => {
                problems.push(field(
                    "schedule",
                    format!("not a schedule ({e}); e.g. {{\"weekly\":[{{\"days\":[\"mon\"],\"from\":\"21:00\",\"to\":\"07:00\"}}],\"dates\":[]}}"),
                ));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::fields(
            "the DND setting was not changed",
            problems,
        ));
    }
    let json = schedule.map(|s| serde_json::to_string(&s)).transpose();
    let json = json.map_err(|e| ApiError::validation(format!("schedule: {e}")))?;
    Ok((input.on.unwrap_or(false), json))
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let principal = req.principal()?;
    let now = rdnd::instant(state.clock.now());
    let items = state
        .db
        .read(move |c| {
            let scope = Ownership::load(c, &principal)?;
            let tz = rdnd::household_zone(c)?;
            let stored = dnd::all(c)?;
            let state_of = |scope: Scope, id: i64| {
                stored
                    .iter()
                    .find(|s| s.scope == scope && s.subject_id == id)
                    .map(|s| DndState::of(s, now, &tz))
                    .unwrap_or_else(|| DndState::off(scope, id))
            };
            let users = match scope.owner() {
                None => dnd::user_ids(c)?,
                Some(me) => vec![me],
            };
            let devices = dnd::device_ids(c, scope.owner())?;
            let mut items = vec![state_of(Scope::System, 0)];
            items.extend(users.into_iter().map(|u| state_of(Scope::User, u)));
            items.extend(devices.into_iter().map(|d| state_of(Scope::Device, d)));
            Ok::<_, StoreError>(items)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "items": items })))
}

async fn put_system(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    write(state, req, Scope::System, 0).await
}

async fn put_user(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let principal = req.principal()?;
    if !principal.is_admin() && principal.user_id != id {
        // Another account is "not found", as a missing one is.
        return Err(ApiError::not_found(format!("user {id} not found")));
    }
    write(state, req, Scope::User, id).await
}

async fn put_device(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let principal = req.principal()?;
    state
        .db
        .read(move |c| Ownership::load(c, &principal)?.check_device(c, DeviceId(id)))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    write(state, req, Scope::Device, id).await
}

/// Stores a setting, tells the call router and the event stream, and
/// answers with the new state.
async fn write(state: Arc<ServerState>, req: ApiRequest, scope: Scope, id: i64) -> ApiResult {
    let input: DndInput = req.json()?;
    let (on, schedule) = validate(&input)?;
    let now = state.clock.now();
    let setting = state
        .db
        .call(move |c| {
            let s = dnd::put(c, scope, id, on, schedule.as_deref(), now)?;
            Ok::<_, StoreError>((s, rdnd::household_zone(c)?))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let (setting, tz) = setting;
    let new = DndState::of(&setting, rdnd::instant(now), &tz);
    tracing::info!(%scope, subject = id, on = new.on, active = new.active, scheduled = new.schedule.is_some(), "DND changed");
    announce(&state.events, &new).await;
    Ok(json_response(StatusCode::OK, &new))
}

/// Publishes a changed setting and waits until the call router has it.
pub async fn announce(events: &crate::events::Events, new: &DndState) {
    events.publish(Event::DndChanged {
        scope: new.scope.as_str(),
        subject_id: new.subject_id,
        on: new.on,
        active: new.active,
    });
    events.directory_changed().await;
}
