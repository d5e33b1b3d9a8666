//! Notification delivery for admins: the test button, the delivery log and
//! the event webhooks.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /api/notifications/test` `{channel: "email", to}` or `{channel: "push"}` | 200 `{delivered: true, detail}` or `{delivered: false, reason, message}` (sent directly, 20 s limit) |
//! | `GET /api/notifications?limit=50&before=<id>` | `{items: [{id, channel, event, target, subject, state, attempts, error, created_at, sent_at}]}` newest first |
//! | `GET /api/webhooks` | `{items: [{id, url, events, enabled, created_at}]}` |
//! | `POST /api/webhooks` `{url, events}` | 201 the row and `secret` (`whsec_…`, shown only here) |
//! | `PUT /api/webhooks/{id}` `{url?, events?, enabled?}` | the row |
//! | `DELETE /api/webhooks/{id}` | 204 |
//! | `POST /api/webhooks/{id}/test` | 202 `{notification_id}` (a `test` event through the outbox) |

use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, no_content, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::notify::deliver::{self, WEBHOOK_SECRET_CONTEXT};
use crate::notify::hooks;
use crate::notify::queue::{self, Channel, Notification, Topic};
use crate::notify::send::{Reason, SendError, SEND_TIMEOUT};
use crate::notify::webhook;
use crate::store::StoreError;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/notifications/test",
            Access::Admin,
            test_send,
        ),
        Route::new(Method::GET, "/api/notifications", Access::Admin, log),
        Route::new(Method::GET, "/api/webhooks", Access::Admin, list_hooks),
        Route::new(Method::POST, "/api/webhooks", Access::Admin, create_hook),
        Route::new(
            Method::PUT,
            "/api/webhooks/{id}",
            Access::Admin,
            update_hook,
        ),
        Route::new(
            Method::DELETE,
            "/api/webhooks/{id}",
            Access::Admin,
            delete_hook,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/{id}/test",
            Access::Admin,
            test_hook,
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestInput {
    channel: String,
    to: Option<String>,
}

fn test_note(channel: Channel, target: String, now: &str) -> Notification {
    Notification {
        channel,
        topic: Topic::Test,
        user_id: None,
        target,
        subject: "Homeline test notification".into(),
        text: format!("This is a test from your Homeline, sent at {now}. If you read this, notifications work."),
        html: Some(format!(
            "<p>This is a test from your Homeline, sent at {now}.</p><p>If you read this, notifications work.</p>"
        )),
        payload: None,
        attachments: vec![],
        link: None,
        priority: 5,
        dedupe_key: format!("test:{now}"),
    }
}

async fn test_send(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let input: TestInput = req.json()?;
    let now = state.clock.now().to_string();
    let b = state.secrets.clone();
    let rid = req.request_id.clone();
    let result: Result<String, SendError> = match input.channel.as_str() {
        "email" => {
            let to = input.to.unwrap_or_default().trim().to_string();
            if crate::accounts::check_email(&to).is_err() {
                return Err(ApiError::fields(
                    "nothing was sent",
                    vec![FieldError {
                        field: "to".into(),
                        message: "an e-mail address".into(),
                    }],
                ));
            }
            let cfg = state
                .db
                .read(move |c| Ok::<_, StoreError>(deliver::email_config(c, &b)))
                .await
                .map_err(|e| ApiError::from_store(&rid, e))?
                .map_err(|e| ApiError::internal(&rid, &e))?;
            match cfg {
                Ok(cfg) => {
                    within_limit(deliver::send_email(
                        &cfg,
                        0,
                        &test_note(Channel::Email, to, &now),
                    ))
                    .await
                }
                Err(e) => Err(e),
            }
        }
        "push" => {
            let cfg = state
                .db
                .read(move |c| Ok::<_, StoreError>(deliver::push_config(c, &b, "household")))
                .await
                .map_err(|e| ApiError::from_store(&rid, e))?
                .map_err(|e| ApiError::internal(&rid, &e))?;
            match cfg {
                Ok(cfg) => {
                    within_limit(deliver::send_push(
                        &cfg,
                        0,
                        &test_note(Channel::Push, "household".into(), &now),
                    ))
                    .await
                }
                Err(e) => Err(e),
            }
        }
        _ => {
            return Err(ApiError::fields(
                "nothing was sent",
                vec![FieldError {
                    field: "channel".into(),
                    message: "email or push".into(),
                }],
            ))
        }
    };
    let body = match result {
        Ok(detail) => json!({"delivered": true, "detail": detail}),
        Err(e) => {
            tracing::info!(channel = %input.channel, reason = e.reason.as_str(), "test notification not delivered");
            json!({"delivered": false, "reason": e.reason, "message": e.message})
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

async fn within_limit(
    f: impl std::future::Future<Output = Result<String, SendError>>,
) -> Result<String, SendError> {
    tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(1), f)
        .await
        .unwrap_or_else(|_| {
            Err(SendError::new(
                Reason::Timeout,
                "no answer within 20 seconds",
            ))
        })
}

async fn log(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let q = req.query();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = match get("limit") {
        None => 50,
        Some(v) => match v.parse::<u32>() {
            Ok(n @ 1..=200) => n,
            _ => return Err(ApiError::validation("limit: 1 to 200")),
        },
    };
    let before = match get("before") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::validation("before: a notification id"))?,
        ),
    };
    let rows = state
        .db
        .read(move |c| hooks::log(c, limit, before))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({"items": rows})))
}

async fn list_hooks(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let rows = state
        .db
        .read(hooks::list)
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({"items": rows})))
}

fn check_url(url: &str, problems: &mut Vec<FieldError>) -> String {
    let url = url.trim().to_string();
    if url.len() > 2048 || crate::settings::check_http_url(&url).is_err() {
        problems.push(FieldError {
            field: "url".into(),
            message: "an http:// or https:// URL".into(),
        });
    }
    url
}

fn check_events(events: &[String], problems: &mut Vec<FieldError>) {
    if let Some(bad) = events.iter().find(|e| Topic::parse(e).is_none()) {
        problems.push(FieldError {
            field: "events".into(),
            message: format!(
                "unknown event {bad:?}; expected voicemail, voicemail_transcript, missed_call, message, message_out, alert or test"
            ),
        });
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateHook {
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: Vec<String>,
}

async fn create_hook(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let input: CreateHook = req.json()?;
    let mut problems = Vec::new();
    let url = check_url(&input.url, &mut problems);
    check_events(&input.events, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::fields("the webhook was not added", problems));
    }
    let secret =
        webhook::new_secret().map_err(|e| ApiError::internal(&req.request_id, &e.message))?;
    let sealed = state
        .secrets
        .seal(WEBHOOK_SECRET_CONTEXT, secret.as_bytes())
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let now = state.clock.now();
    let events = input.events;
    let row = state
        .db
        .call(move |c| {
            let id = hooks::insert(c, &url, &events, &sealed, now)?;
            hooks::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id = row.id, url = %row.url, "webhook added");
    let mut body =
        serde_json::to_value(&row).map_err(|e| ApiError::internal(&req.request_id, &e))?;
    body["secret"] = json!(secret);
    Ok(json_response(StatusCode::CREATED, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateHook {
    url: Option<String>,
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

async fn update_hook(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let input: UpdateHook = req.json()?;
    let mut problems = Vec::new();
    let url = input.url.as_deref().map(|u| check_url(u, &mut problems));
    if let Some(e) = &input.events {
        check_events(e, &mut problems);
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("the webhook was not changed", problems));
    }
    let now = state.clock.now();
    let row = state
        .db
        .call(move |c| {
            hooks::update(
                c,
                id,
                url.as_deref(),
                input.events.as_deref(),
                input.enabled,
                now,
            )
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &row))
}

async fn delete_hook(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| hooks::delete(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id, "webhook removed");
    Ok(no_content())
}

async fn test_hook(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let now = state.clock.now();
    let nid = state
        .db
        .call(move |c| {
            hooks::get(c, id)?;
            let tx = c.transaction()?;
            let n = Notification {
                channel: Channel::Webhook,
                topic: Topic::Test,
                user_id: None,
                target: id.to_string(),
                subject: "test".into(),
                text: String::new(),
                html: None,
                payload: Some(json!({
                    "id": format!("test:{}", now.unix_millis()),
                    "event": "test",
                    "occurred_at": now.to_string(),
                    "data": {"webhook_id": id},
                })),
                attachments: vec![],
                link: None,
                priority: 5,
                dedupe_key: format!("test:webhook:{id}:{}", now.unix_millis()),
            };
            let nid = queue::enqueue_in(&tx, &n, now)?.ok_or_else(|| {
                StoreError::Conflict("a test was sent this very millisecond; try again".into())
            })?;
            tx.commit()?;
            Ok::<_, StoreError>(nid)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.outbox.wake();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"notification_id": nid}),
    ))
}
