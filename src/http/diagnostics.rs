//! `GET /api/diagnostics` (admin): runs the doctor's checks (see
//! [`crate::doctor`]) and answers the report
//! `{"status","ran_at","checks":[{"id","title","status","detail","fix"}]}`.
//!
//! The database is read on its thread, live registrations come from the
//! registrar, and the network checks run on a blocking thread, each bounded
//! (5 s per request, 12 s in all): nothing waits on the reactor or the SIP
//! loop. One run at a time: a second request waits for the first to finish
//! rather than doubling the calls to Twilio.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::error::{ApiError, ApiResult};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::doctor::run::{self, Inputs, Registrations};

/// Serialises runs.
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route::new(
        Method::GET,
        "/api/diagnostics",
        Access::Admin,
        diagnostics,
    )]
}

async fn diagnostics(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let _one = RUNNING.lock().await;
    let now = state.clock.now();
    let secrets = state.secrets.clone();
    let db = state
        .db
        .call(move |c| Ok::<_, crate::store::StoreError>(run::gather_db(c, Some(&secrets), now)))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    // The certificate actually served, with its last renewal error.
    let served = state.acme.as_ref().map(|a| a.facts());
    let (data_dir, https_on, configured_ip) = (
        state.settings.data_dir.clone(),
        state.settings.http_tls_listen.is_some(),
        state.settings.media.public_ip,
    );
    let reaching = state
        .db
        .call(move |c| {
            Ok::<_, crate::store::StoreError>(
                crate::doctor::reaching::gather(c, &data_dir, https_on, configured_ip, served).ok(),
            )
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let registrations = match &state.sip {
        Some(sip) => {
            let mut live = HashMap::new();
            for r in sip.registrations().await {
                live.insert(r.device_id, r.contacts.len());
            }
            Registrations::Live(live)
        }
        None => Registrations::Recorded,
    };
    let inputs = Inputs {
        data_dir: state.settings.data_dir.clone(),
        storage_min_free_mib: state.settings.storage_min_free_mib,
        twilio_api_base: state.settings.twilio_api_base.clone(),
        trunking: state.settings.twilio_sip.trunking,
        listeners: Some(
            state
                .listeners
                .iter()
                .map(|(name, addr)| (name.to_string(), *addr))
                .collect(),
        ),
        registrations,
        root: PathBuf::from("/"),
        reaching,
    };
    let report = tokio::task::spawn_blocking(move || run::run(&inputs, db, now))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    Ok(json_response(StatusCode::OK, &report))
}
