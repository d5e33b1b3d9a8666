//! Twilio administration: the numbers of the account and the one-click step
//! that points one at this appliance, the outbox's jobs and the open admin
//! alerts.
//!
//! | Route | Access |
//! |---|---|
//! | `GET /api/twilio/numbers` (asks Twilio; 502 if it cannot) | Admin |
//! | `POST /api/twilio/numbers/{sid}/connect` → 202 (outbox job; the number is added to Homeline) | Admin |
//! | `GET /api/twilio/sip-credentials` (for the SIP Domain's credential list) | Admin |
//! | `GET /api/twilio/connections` (each number's connection state, below) | Admin |
//! | `GET /api/system/outbox?unfinished=true` (paged) | Admin |
//! | `POST /api/system/outbox/{id}/retry` → the job, due now (409 if done or running) | Admin |
//! | `GET /api/system/alerts`, `DELETE /api/system/alerts/{id}` (dismiss) | Admin |

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::outbox::store::RetryRefused;
use crate::outbox::{self, Outbox, Task};
use crate::store::{alerts, dids};
use crate::sysconfig;
use crate::twilio::client::{is_sid, Client};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/twilio/numbers", Access::Admin, numbers),
        Route::new(
            Method::POST,
            "/api/twilio/numbers/{sid}/connect",
            Access::Admin,
            connect,
        ),
        Route::new(
            Method::GET,
            "/api/twilio/sip-credentials",
            Access::Admin,
            sip_credentials,
        ),
        Route::new(
            Method::GET,
            "/api/twilio/connections",
            Access::Admin,
            connections,
        ),
        Route::new(Method::GET, "/api/system/outbox", Access::Admin, jobs),
        Route::new(
            Method::POST,
            "/api/system/outbox/{id}/retry",
            Access::Admin,
            retry_job,
        ),
        Route::new(
            Method::GET,
            "/api/system/alerts",
            Access::Admin,
            open_alerts,
        ),
        Route::new(
            Method::DELETE,
            "/api/system/alerts/{id}",
            Access::Admin,
            dismiss_alert,
        ),
    ]
}

async fn client(state: &ServerState, req: &ApiRequest) -> Result<Client, ApiError> {
    let secrets = state.secrets.clone();
    let creds = state
        .db
        .call(move |c| sysconfig::twilio_credentials(c, &secrets))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let creds = creds.ok_or_else(|| ApiError::conflict("Twilio is not configured yet"))?;
    Ok(Client::from_credentials(
        &state.settings.twilio_api_base,
        &creds,
    ))
}

/// The account's numbers, asked of Twilio on a blocking thread.
async fn list_numbers(
    state: &ServerState,
    req: &ApiRequest,
) -> Result<Vec<crate::twilio::client::IncomingNumber>, ApiError> {
    let client = client(state, req).await?;
    tokio::task::spawn_blocking(move || client.list_numbers())
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?
        .map_err(|e| {
            ApiError::bad_gateway("twilio", format!("Twilio could not list the numbers: {e}"))
        })
}

async fn numbers(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let listed = list_numbers(&state, &req).await?;
    Ok(json_response(StatusCode::OK, &json!({ "items": listed })))
}

async fn connect(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let sid = req.param("sid").unwrap_or("").to_string();
    if !is_sid(&sid, "PN") {
        return Err(ApiError::not_found(format!(
            "{sid:?} is not a Twilio number SID"
        )));
    }
    let listed = list_numbers(&state, &req).await?;
    let Some(number) = listed.into_iter().find(|n| n.sid == sid) else {
        return Err(ApiError::not_found(format!(
            "the Twilio account has no number {sid}"
        )));
    };
    let now = state.clock.now();
    let job = state
        .db
        .call(move |c| {
            let Some(public) = sysconfig::public_url(c)? else {
                return Ok(Err(()));
            };
            let tx = c.transaction()?;
            let did_id = match dids::find_by_number(&tx, &number.phone_number)? {
                Some(d) => d.id,
                None => dids::insert(
                    &tx,
                    &number.phone_number,
                    &number.friendly_name,
                    Some(&number.sid),
                    now,
                )?,
            };
            tx.execute(
                "UPDATE dids SET twilio_sid = ?2 WHERE id = ?1 AND twilio_sid IS NULL",
                rusqlite::params![did_id, number.sid],
            )?;
            let id = Outbox::enqueue_in(
                &tx,
                &Task::UpdateNumber {
                    number_sid: number.sid.clone(),
                    voice_url: format!("{public}/api/webhooks/voice/incoming"),
                    sms_url: format!("{public}/api/webhooks/sms/incoming"),
                    status_callback: format!("{public}/api/webhooks/voice/status"),
                },
                now,
            )?;
            tx.commit()?;
            Ok(Ok((id, did_id)))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let Ok((job_id, did_id)) = job else {
        return Err(ApiError::conflict(
            "set system.public_url first: Twilio must know where to reach the appliance",
        ));
    };
    state.outbox.wake();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "job_id": job_id, "did_id": did_id }),
    ))
}

/// The SIP login shared with Twilio, generated on first use: the admin
/// copies it into the SIP Domain's credential list (like a phone's password
/// for provisioning, it must be readable by an admin).
async fn sip_credentials(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let secrets = state.secrets.clone();
    let body = state
        .db
        .call(move |c| {
            let (username, password) = sysconfig::twilio_sip_credentials(c, &secrets)?;
            let domain = crate::store::config::get(c, sysconfig::TWILIO_SIP_DOMAIN)?;
            let target = sysconfig::sip_public_target(c)?;
            Ok::<_, sysconfig::ConfigError>(json!({
                "username": username,
                "password": password,
                "sip_domain": domain,
                "public_host": target.as_ref().map(|t| t.0.clone()),
                "public_port": target.map(|t| t.1),
            }))
        })
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn jobs(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let page = req.page()?;
    let unfinished = req
        .query()
        .iter()
        .any(|(k, v)| k == "unfinished" && v == "true");
    let rows = state
        .db
        .call(move |c| outbox::store::list(c, unfinished, page.window()))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

/// An administrator wants a failed job (or one waiting out its backoff)
/// attempted now.
async fn retry_job(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let now = state.clock.now();
    let outcome = state
        .db
        .call(move |c| outbox::store::retry(c, id, now))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    match outcome {
        Ok(job) => {
            tracing::info!(job = id, kind = %job.kind, "outbox job retried on request");
            state.outbox.wake();
            Ok(json_response(StatusCode::OK, &job))
        }
        Err(RetryRefused::Done) => Err(ApiError::conflict("this job has succeeded already")),
        Err(RetryRefused::Attempting) => Err(ApiError::conflict(
            "this job is being attempted (or its last attempt's outcome is being checked); wait for it to finish",
        )),
    }
}

/// Whether Twilio's side of each number points at the appliance.
///
/// For every number Homeline has: `connecting` while the job that points
/// it here is pending, `failed` when that job gave up (`detail` says why),
/// otherwise what Twilio says now: `connected` (its voice URL is ours),
/// `elsewhere` (another voice URL; `detail` is it), `not_connected` (no
/// voice URL) or `missing` (not in the account). When Twilio cannot be asked (`twilio` is `not_configured` or
/// `unreachable`, `message` says why), a number whose last update
/// succeeded is `connected` as of that update, and `unknown` otherwise.
async fn connections(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let (listed, twilio, message) = match list_numbers(&state, &req).await {
        Ok(listed) => (Some(listed), "ok", None),
        Err(e) if e.status == StatusCode::CONFLICT => (None, "not_configured", Some(e.message)),
        Err(e) if e.status == StatusCode::BAD_GATEWAY => (None, "unreachable", Some(e.message)),
        Err(e) => return Err(e),
    };
    let (numbers, jobs, public) = state
        .db
        .call(|c| {
            Ok((
                dids::list(c, None, crate::store::Page::ALL)?.items,
                outbox::store::latest_number_updates(c)?,
                sysconfig::public_url(c)?,
            ))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let ours = public.map(|p| format!("{p}/api/webhooks/voice/incoming"));
    let items: Vec<_> = numbers
        .iter()
        .map(|did| {
            let at_twilio = listed.as_ref().map(|l| {
                l.iter().find(|n| {
                    Some(&n.sid) == did.twilio_sid.as_ref() || n.phone_number == did.number
                })
            });
            let sid = did
                .twilio_sid
                .clone()
                .or_else(|| at_twilio.flatten().map(|n| n.sid.clone()));
            let job = sid.as_ref().and_then(|s| jobs.get(s));
            let (state, detail) = connection_state(job, at_twilio, ours.as_deref());
            json!({
                "did_id": did.id,
                "number": did.number,
                "number_sid": sid,
                "state": state,
                "detail": detail,
                "job_id": job.map(|j| j.id),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "twilio": twilio, "message": message, "items": items }),
    ))
}

/// The state of one number (see [`connections`]); `at_twilio` is `None`
/// when Twilio could not be asked, `Some(None)` when it lacks the number.
fn connection_state(
    job: Option<&outbox::store::JobRow>,
    at_twilio: Option<Option<&crate::twilio::client::IncomingNumber>>,
    ours: Option<&str>,
) -> (&'static str, Option<String>) {
    match (job.map(|j| j.state.as_str()), at_twilio) {
        (Some("pending" | "attempting"), _) => {
            ("connecting", job.and_then(|j| j.last_error.clone()))
        }
        (Some("failed"), _) => ("failed", job.and_then(|j| j.last_error.clone())),
        (_, Some(Some(n))) => match n.voice_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) if Some(url) == ours => ("connected", None),
            Some(url) => ("elsewhere", Some(url.to_string())),
            None => ("not_connected", None),
        },
        (_, Some(None)) => ("missing", None),
        (Some("done"), None) => (
            "connected",
            Some("as of the last update; Twilio could not be asked now".into()),
        ),
        (_, None) => ("unknown", None),
    }
}

async fn open_alerts(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rows = state
        .db
        .call(|c| alerts::open(c))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "items": rows })))
}

/// An admin has seen an alert (e.g. a message Twilio refused for good) and
/// closes it. A job that fails again raises a new one.
async fn dismiss_alert(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let now = state.clock.now();
    state
        .db
        .call(move |c| alerts::dismiss(c, id, now))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.events.publish(crate::events::Event::Alert {
        alert_id: id,
        change: crate::events::AlertChange::Dismissed,
    });
    Ok(super::request::no_content())
}
