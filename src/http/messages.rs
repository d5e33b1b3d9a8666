//! SMS/MMS: conversations grouped by (number, remote party), threads, unread
//! counts, marking read, sending (through the outbox: the message is stored
//! `pending` with its job in one transaction and answered 202; its status
//! follows Twilio's callbacks), media files, and a status sync.
//!
//! | Route | Access |
//! |---|---|
//! | `GET /api/messages/conversations` (paged) | User (own numbers) |
//! | `GET /api/messages/conversation/{number}?did_id=` (paged, oldest first) | User |
//! | `PUT /api/messages/conversation/{number}/read?did_id=` | User |
//! | `GET /api/messages/unread/count` | User |
//! | `POST /api/messages` `{did_id, to, body, media_urls?}` → 202 | User |
//! | `GET /api/messages/{id}`, `GET /api/messages/{id}/media/{index}` | User |
//! | `POST /api/messages/sync` (fetch statuses of messages still in flight) | Admin |

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::events::{Event, MessageChange};
use crate::outbox::{Outbox, Task};
use crate::store::messages::{self, Direction, NewMessage};
use crate::store::{dids, StoreError};
use crate::twilio::routing::is_e164;

/// Longest text accepted (Twilio's limit is 1600 characters).
const MAX_BODY_CHARS: usize = 1600;
/// Most media URLs on one outgoing MMS (Twilio's limit).
const MAX_MEDIA_URLS: usize = 10;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/messages/conversations",
            Access::User,
            conversations,
        ),
        Route::new(
            Method::GET,
            "/api/messages/conversation/{number}",
            Access::User,
            thread,
        ),
        Route::new(
            Method::PUT,
            "/api/messages/conversation/{number}/read",
            Access::User,
            mark_read,
        ),
        Route::new(
            Method::GET,
            "/api/messages/unread/count",
            Access::User,
            unread,
        ),
        Route::new(Method::POST, "/api/messages", Access::User, send),
        Route::new(Method::POST, "/api/messages/sync", Access::Admin, sync),
        Route::new(Method::GET, "/api/messages/{id}", Access::User, get),
        Route::new(
            Method::GET,
            "/api/messages/{id}/media/{index}",
            Access::User,
            media,
        ),
    ]
}

async fn conversations(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let rows = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            messages::conversations(c, scope.did_ids(), page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

/// The conversation's number (path) and mailbox (`?did_id=`), checked
/// against the caller's scope.
fn conversation_key(req: &ApiRequest) -> Result<(String, i64), ApiError> {
    let number = super::request::decode_path_segment(req.param("number").unwrap_or(""));
    let did = req
        .query()
        .into_iter()
        .find(|(k, _)| k == "did_id")
        .map(|(_, v)| v);
    let Some(did_id) = did.and_then(|v| v.parse::<i64>().ok()) else {
        return Err(ApiError::fields(
            "which of your numbers? add ?did_id=",
            vec![FieldError {
                field: "did_id".into(),
                message: "required: the id of the number the conversation is on".into(),
            }],
        ));
    };
    Ok((number, did_id))
}

async fn thread(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let (number, did_id) = conversation_key(&req)?;
    let rows = state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(did_id)?;
            messages::thread(c, did_id, &number, page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

async fn mark_read(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let (number, did_id) = conversation_key(&req)?;
    let changed = state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(did_id)?;
            messages::mark_read(c, did_id, &number)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "marked_read": changed }),
    ))
}

async fn unread(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let count = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            messages::unread_count(c, scope.did_ids())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "count": count })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    did_id: i64,
    to: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    media_urls: Vec<String>,
}

fn check_send(s: &Send) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        })
    };
    if !is_e164(&s.to) {
        err("to", "expected an E.164 number such as +15551234567");
    }
    if s.body.trim().is_empty() && s.media_urls.is_empty() {
        err("body", "a message needs text or media");
    }
    if s.body.chars().count() > MAX_BODY_CHARS {
        err("body", "at most 1600 characters");
    }
    if s.media_urls.len() > MAX_MEDIA_URLS {
        err("media_urls", "at most 10 media URLs");
    }
    if s.media_urls
        .iter()
        .any(|u| crate::settings::check_http_url(u.split('?').next().unwrap_or("")).is_err())
    {
        err(
            "media_urls",
            "each must be a public http(s) URL Twilio can fetch",
        );
    }
    errors
}

async fn send(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let s: Send = req.json()?;
    let errors = check_send(&s);
    if !errors.is_empty() {
        return Err(ApiError::fields("the message was not sent", errors));
    }
    let now = state.clock.now();
    let media = json!(s
        .media_urls
        .iter()
        .map(|u| json!({ "url": u }))
        .collect::<Vec<_>>());
    let msg = state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(s.did_id)?;
            let did = dids::get(c, s.did_id)?;
            let tx = c.transaction()?;
            let (id, _) = messages::insert_once(
                &tx,
                &NewMessage {
                    message_sid: None,
                    direction: Direction::Outbound,
                    did_id: did.id,
                    from_number: &did.number,
                    to_number: &s.to,
                    body: &s.body,
                    media: &media,
                    status: "pending",
                },
                now,
            )?;
            Outbox::enqueue_in(&tx, &Task::SendMessage { message_id: id }, now)?;
            tx.commit()?;
            messages::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.outbox.wake();
    state.events.publish(Event::Message {
        message_id: msg.id,
        did_id: msg.did_id,
        change: MessageChange::Status,
        status: Some(msg.status.clone()),
    });
    Ok(json_response(StatusCode::ACCEPTED, &msg))
}

async fn visible(state: &ServerState, req: &ApiRequest) -> Result<messages::Message, ApiError> {
    let me = req.principal()?;
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            let m = messages::get(c, id)?;
            scope.check_did_of("message", id, Some(m.did_id))?;
            Ok(m)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let m = visible(&state, &req).await?;
    Ok(json_response(StatusCode::OK, &m))
}

async fn media(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let m = visible(&state, &req).await?;
    let index: usize = req
        .param("index")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| ApiError::not_found("no such media item"))?;
    let item = &m.media[index];
    let (Some(path), Some(ct)) = (item["path"].as_str(), item["content_type"].as_str()) else {
        return Err(ApiError::not_found("this media item is not stored (yet)"));
    };
    if path.contains("..") {
        return Err(ApiError::not_found("no such media item"));
    }
    let bytes = tokio::fs::read(state.settings.data_dir.join(path))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &format!("reading {path}: {e}")))?;
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Media from strangers is never rendered as a page of ours.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("sandbox"),
    );
    Ok(r)
}

async fn sync(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let now = state.clock.now();
    let queued = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let pending = messages::pending_outbound(&tx)?;
            for (message_id, _) in &pending {
                Outbox::enqueue_in(
                    &tx,
                    &Task::FetchMessage {
                        message_id: *message_id,
                    },
                    now,
                )?;
            }
            tx.commit()?;
            Ok::<_, StoreError>(pending.len())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.outbox.wake();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "queued": queued }),
    ))
}
