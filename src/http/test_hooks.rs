//! Test-only routes (feature `test-hooks`, never in release builds): they let
//! integration tests stall a core loop to prove the watchdog notices, and
//! set the wall clock (`POST /api/test/clock {"at": RFC 3339 UTC}` or
//! `{"advance_secs": N}`; answers the new time) for time-based rules.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;

/// The test routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::POST, "/api/test/stall", Access::Public, stall),
        Route::new(Method::GET, "/api/test/panic", Access::Public, panic_now),
        Route::new(Method::POST, "/api/test/clock", Access::Public, set_clock),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetClock {
    at: Option<String>,
    advance_secs: Option<i64>,
}

async fn set_clock(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    use crate::clock::{test_offset, Timestamp};
    let s: SetClock = req.json()?;
    let now = state.clock.now().unix_millis();
    match (s.at.as_deref(), s.advance_secs) {
        (Some(at), None) => {
            let Some(at) = Timestamp::parse_rfc3339(at) else {
                return Err(ApiError::validation(
                    "at: expected RFC 3339 UTC, e.g. 2026-12-02T23:00:00Z",
                ));
            };
            test_offset::set(test_offset::get() + at.unix_millis() - now);
        }
        (None, Some(secs)) => {
            test_offset::set(test_offset::get().saturating_add(secs.saturating_mul(1000)));
        }
        _ => return Err(ApiError::validation("give either at or advance_secs")),
    }
    // Jobs may have become due: the worker sleeps on the real clock.
    state.outbox.wake();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "now": state.clock.now().to_string() }),
    ))
}

#[derive(Deserialize)]
struct Stall {
    #[serde(rename = "loop")]
    which: String,
    seconds: u64,
}

async fn stall(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s: Stall = req.json()?;
    let ms = s.seconds.saturating_mul(1000);
    match s.which.as_str() {
        "http" => state.stall_http_ms.store(ms, Ordering::SeqCst),
        "db" => {
            // Occupy the database thread; its heartbeat probe queues behind.
            let db = state.db.clone();
            tokio::spawn(async move {
                let _ = db
                    .call(move |_| {
                        std::thread::sleep(Duration::from_millis(ms));
                        Ok::<_, crate::store::StoreError>(())
                    })
                    .await;
            });
        }
        other => {
            return Err(ApiError::validation(format!(
                "unknown loop {other:?}; expected http or db"
            )))
        }
    }
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "stalled": s.which, "seconds": s.seconds }),
    ))
}

async fn panic_now(_state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    panic!("test hook: deliberate panic")
}

/// Called by the accept loop on each tick: blocks its thread if asked to.
pub fn maybe_stall(state: &ServerState) {
    let ms = state.stall_http_ms.swap(0, Ordering::SeqCst);
    if ms > 0 {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
