//! `GET /health` (liveness: the process answers) and `GET /api/health/ready`
//! (readiness: the database takes writes, listeners are up, core loops are
//! making progress, the data disk has room). Readiness also reports whether
//! the clock is synchronised (`clock`), without depending on it.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::json;

use super::error::ApiResult;
use super::request::{json_response, ApiRequest};
use super::ServerState;
use crate::constants::HEARTBEAT_STALE_AFTER;
use crate::storage::{self, StorageState};
use crate::store::migrate;

/// Liveness: cheap, touches nothing.
pub async fn live(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    let uptime = state.clock.now().since(state.started_at).as_secs();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "status": "ok", "version": crate::VERSION, "git": crate::GIT_REV, "uptime_secs": uptime }),
    ))
}

/// Readiness: 200 when every check passes, 503 with the same body otherwise.
pub async fn ready(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    // A write lock proves the database is writable, without writing a byte
    // (a readiness probe must not wear the SD card).
    let db = tokio::time::timeout(
        Duration::from_secs(2),
        state.db.call(|c| {
            c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            migrate::current_version(c)
        }),
    )
    .await;
    let (db_ok, db_check) = match db {
        Ok(Ok(version)) => (true, json!({ "ok": true, "schema_version": version })),
        Ok(Err(e)) => (false, json!({ "ok": false, "error": e.to_string() })),
        Err(_) => (
            false,
            json!({ "ok": false, "error": "the database did not answer within 2 s" }),
        ),
    };

    let data_dir = state.settings.data_dir.clone();
    let min_free = state.settings.storage_min_free_mib;
    let (dir_writable, sample) = tokio::task::spawn_blocking(move || {
        let writable = nix::unistd::access(&data_dir, nix::unistd::AccessFlags::W_OK).is_ok();
        (writable, storage::sample(&data_dir, min_free))
    })
    .await
    .unwrap_or((false, Err(std::io::Error::other("storage check panicked"))));
    let (storage_ok, storage_check) = match sample {
        Ok(r) => (
            r.state != StorageState::Critical && dir_writable,
            json!({
                "ok": r.state != StorageState::Critical && dir_writable,
                "state": r.state, "free_bytes": r.free_bytes, "total_bytes": r.total_bytes, "data_dir_writable": dir_writable,
            }),
        ),
        Err(e) => (false, json!({ "ok": false, "error": e.to_string() })),
    };

    let max_age = HEARTBEAT_STALE_AFTER;
    let loops: serde_json::Map<String, serde_json::Value> = state
        .heartbeats
        .ages()
        .into_iter()
        .map(|(name, age)| {
            (
                name.to_string(),
                json!({ "ok": age <= max_age, "last_beat_ms": age.as_millis() as u64 }),
            )
        })
        .collect();
    let loops_ok = loops.values().all(|v| v["ok"] == true);
    let listeners: serde_json::Map<String, serde_json::Value> = state
        .listeners
        .iter()
        .map(|(name, addr)| (name.to_string(), json!(addr.to_string())))
        .collect();

    // Reported, never a reason to be unready: a Pi without network (or the
    // image's boot test) still serves the LAN.
    let clock = match crate::doctor::clock::sync_state(std::path::Path::new("/")) {
        crate::doctor::clock::SyncState::Synchronised => {
            json!({ "synchronised": true, "state": "synchronised" })
        }
        crate::doctor::clock::SyncState::NotSynchronised => {
            json!({ "synchronised": false, "state": "not_synchronised" })
        }
        crate::doctor::clock::SyncState::Unknown => {
            json!({ "synchronised": false, "state": "unknown" })
        }
    };
    let ready = db_ok && storage_ok && loops_ok && !listeners.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(
        status,
        &json!({
            "ready": ready,
            "checks": {
                "database": db_check,
                "storage": storage_check,
                "loops": { "ok": loops_ok, "beats": loops },
                "listeners": { "ok": !listeners.is_empty(), "bound": listeners },
            },
            "clock": clock,
        }),
    ))
}
