//! Voicemail: `GET /api/voicemails` (paged, newest first, narrowed to the
//! caller's mailboxes), `GET /api/voicemails/unread`, `GET/DELETE
//! /api/voicemails/{id}`, `PUT /api/voicemails/{id}/read`, and
//! `GET /api/voicemails/{id}/audio` (the file stored on the appliance, with
//! `Range` support so browsers can seek).
//!
//! A mailbox is a number: its voicemail belongs to the users the number is
//! assigned to (and admins). Deleting a voicemail also deletes its
//! recording at Twilio (through the outbox).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::events::{Event, VoicemailChange};
use crate::outbox::{Outbox, Task};
use crate::store::voicemails::{self, Voicemail};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/voicemails", Access::User, list),
        Route::new(Method::GET, "/api/voicemails/unread", Access::User, unread),
        Route::new(Method::GET, "/api/voicemails/{id}", Access::User, get),
        Route::new(Method::DELETE, "/api/voicemails/{id}", Access::User, delete),
        Route::new(
            Method::PUT,
            "/api/voicemails/{id}/read",
            Access::User,
            set_read,
        ),
        Route::new(
            Method::GET,
            "/api/voicemails/{id}/audio",
            Access::User,
            audio,
        ),
    ]
}

/// A voicemail as the API shows it: the row plus where to play it.
fn shown(v: &Voicemail) -> Value {
    let mut j = json!(v);
    if let Some(o) = j.as_object_mut() {
        o.remove("twilio_recording_url");
        o.insert(
            "audio_url".into(),
            json!(v
                .audio_path
                .as_ref()
                .map(|_| format!("/api/voicemails/{}/audio", v.id))),
        );
    }
    j
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let page = req.page()?;
    let rows = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            voicemails::list(c, scope.did_ids(), page.window())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let items: Vec<Value> = rows.items.iter().map(shown).collect();
    Ok(paged_response(
        page,
        crate::store::Paged {
            items,
            total: rows.total,
        },
    ))
}

async fn unread(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let count = state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            voicemails::unread_total(c, scope.did_ids())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "count": count })))
}

/// Loads voicemail `id` if the caller may see it (otherwise not found).
async fn visible(state: &ServerState, req: &ApiRequest) -> Result<Voicemail, ApiError> {
    let me = req.principal()?;
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| {
            let scope = Scope::load(c, &me)?;
            let v = voicemails::get(c, id)?;
            scope.check_did_of("voicemail", id, Some(v.did_id))?;
            Ok(v)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let v = visible(&state, &req).await?;
    Ok(json_response(StatusCode::OK, &shown(&v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    is_read: bool,
}

async fn set_read(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let v = visible(&state, &req).await?;
    let body: ReadBody = req.json()?;
    let id = v.id;
    let updated = state
        .db
        .call(move |c| {
            voicemails::set_read(c, id, body.is_read)?;
            voicemails::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.events.publish(Event::Voicemail {
        voicemail_id: Some(id),
        did_id: v.did_id,
        change: VoicemailChange::Read,
    });
    Ok(json_response(StatusCode::OK, &shown(&updated)))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let v = visible(&state, &req).await?;
    let (id, now) = (v.id, state.clock.now());
    let sid = v.recording_sid.clone();
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            voicemails::delete(&tx, id)?;
            if let Some(recording_sid) = sid {
                Outbox::enqueue_in(&tx, &Task::DeleteRecording { recording_sid }, now)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state.outbox.wake();
    if let Some(rel) = &v.audio_path {
        if let Err(e) = tokio::fs::remove_file(state.settings.data_dir.join(rel)).await {
            tracing::warn!(voicemail = id, error = %e, "could not remove the voicemail's audio file");
        }
    }
    state.events.publish(Event::Voicemail {
        voicemail_id: Some(id),
        did_id: v.did_id,
        change: VoicemailChange::Deleted,
    });
    Ok(super::request::no_content())
}

/// A `Range` header that cannot be satisfied for the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single byte range of a `len`-byte file: `Ok(None)` for the whole file.
/// Multiple ranges are served as the whole file (allowed by RFC 9110).
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(Unsatisfiable);
        }
        (start, end)
    };
    Ok(Some(range))
}

async fn audio(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let v = visible(&state, &req).await?;
    let Some(rel) = v.audio_path.clone() else {
        return Err(ApiError::not_found(
            "this voicemail's audio has not been downloaded yet",
        ));
    };
    let bytes = tokio::fs::read(state.settings.data_dir.join(&rel))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &format!("reading {rel}: {e}")))?;
    let len = bytes.len() as u64;
    let content_type = if rel.ends_with(".wav") {
        "audio/wav"
    } else {
        "audio/mpeg"
    };
    let range = req.headers.get(RANGE).and_then(|h| h.to_str().ok());
    let mut resp = match parse_range(range, len) {
        Ok(None) => Response::new(Full::new(Bytes::from(bytes))),
        Ok(Some((start, end))) => {
            let part = Bytes::from(bytes).slice(start as usize..=end as usize);
            let mut r = Response::new(Full::new(part));
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            r
        }
        Err(Unsatisfiable) => {
            let mut e =
                ApiError::validation(format!("the range is outside the file ({len} bytes)"));
            e.status = StatusCode::RANGE_NOT_SATISFIABLE;
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=x-1",
            "bytes=1",
        ] {
            assert_eq!(parse_range(Some(bad), 100), Err(Unsatisfiable), "{bad}");
        }
    }
}
