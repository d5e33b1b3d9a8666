//! Music on hold (admins): `GET /api/system/hold-music` says which music
//! plays, `PUT` replaces it with an uploaded WAV (validated, converted to
//! 8 kHz mono and kept as `<data>/hold-music.wav`), `DELETE` goes back to
//! the embedded tune, and `GET /api/system/hold-music/audio` is the music
//! itself (a WAV, for a preview in the browser). New holds use the new music
//! at once.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::media::music::{HoldMusic, FILE_NAME};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/system/hold-music", Access::Admin, get),
        Route::new(Method::PUT, "/api/system/hold-music", Access::Admin, put),
        Route::new(
            Method::DELETE,
            "/api/system/hold-music",
            Access::Admin,
            remove,
        ),
        Route::new(
            Method::GET,
            "/api/system/hold-music/audio",
            Access::Admin,
            audio,
        ),
    ]
}

fn describe(uploaded: bool, music: &HoldMusic) -> serde_json::Value {
    json!({
        "source": if uploaded { "uploaded" } else { "default" },
        "seconds": (music.seconds() * 100.0).round() / 100.0,
    })
}

async fn get(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    let uploaded = tokio::fs::try_exists(state.settings.data_dir.join(FILE_NAME))
        .await
        .unwrap_or(false);
    let music = HoldMusic::load(&state.settings.data_dir);
    Ok(json_response(StatusCode::OK, &describe(uploaded, &music)))
}

/// The WAV that plays: the uploaded file as converted, or the default tune.
/// `no-store`, since the same URL plays other music after an upload.
async fn audio(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let bytes = match tokio::fs::read(state.settings.data_dir.join(FILE_NAME)).await {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Bytes::from_static(crate::media::music::default_wav())
        }
        Err(e) => return Err(ApiError::internal(&req.request_id, &e)),
    };
    let mut r = Response::new(Full::new(bytes));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn put(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    if !matches!(
        req.content_type().as_str(),
        "audio/wav" | "audio/x-wav" | "audio/wave"
    ) {
        return Err(ApiError::unsupported_media_type("audio/wav"));
    }
    let body = req.body.clone();
    let converted = tokio::task::spawn_blocking(move || HoldMusic::convert(&body))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let (file, music) = converted.map_err(|e| ApiError::validation(e.to_string()))?;
    let dir = state.settings.data_dir.clone();
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let write = async {
        tokio::fs::write(&tmp, &file).await?;
        tokio::fs::rename(&tmp, dir.join(FILE_NAME)).await
    };
    write
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let music = Arc::new(music);
    let shown = describe(true, &music);
    if let Some(sip) = &state.sip {
        sip.set_hold_music(music).await;
    }
    tracing::info!(seconds = shown["seconds"].as_f64(), "hold music replaced");
    Ok(json_response(StatusCode::OK, &shown))
}

async fn remove(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    match tokio::fs::remove_file(state.settings.data_dir.join(FILE_NAME)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(&req.request_id, &e)),
    }
    let music = HoldMusic::default_tune();
    let shown = describe(false, &music);
    if let Some(sip) = &state.sip {
        sip.set_hold_music(music).await;
    }
    Ok(json_response(StatusCode::OK, &shown))
}
