//! Test-only routes (feature `test-hooks`, never in release builds): they let
//! integration tests stall a core loop to prove the watchdog notices.

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
    ]
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
