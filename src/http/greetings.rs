//! Voicemail greetings: a number's own recorded greeting, played by Twilio
//! (`<Play>`) instead of the spoken default (`<Say>`).
//!
//! * `GET /api/dids/{id}/greeting` — `{did_id, greeting: url | null}`, the
//!   current greeting's URL (for playback in the web UI), by anyone who
//!   sees the number.
//! * `PUT /api/dids/{id}/greeting` — the audio as the body (`audio/mpeg` or
//!   `audio/wav`, at most 1 MiB), by anyone who sees the number.
//! * `DELETE /api/dids/{id}/greeting` — back to the spoken greeting.
//! * `GET /api/greetings/{name}` — public, for Twilio's `<Play>` (Twilio
//!   fetches media without a signature we could check). The name carries
//!   128 random bits, so only a URL handed to Twilio in TwiML finds a file;
//!   a new upload gets a new name.
//!
//! Files live in `<data>/greetings/<did_id>-<token>.<ext>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};

use super::error::{ApiError, ApiResult};
use super::request::ApiRequest;
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::store::dids;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/dids/{id}/greeting", Access::User, show),
        Route::new(Method::PUT, "/api/dids/{id}/greeting", Access::User, upload),
        Route::new(
            Method::DELETE,
            "/api/dids/{id}/greeting",
            Access::User,
            remove,
        ),
        Route::new(Method::GET, "/api/greetings/{name}", Access::Public, serve),
    ]
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("greetings")
}

/// Whether `name` is a greeting file name we create (`12-<32 hex>.mp3`).
fn valid_name(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (id, token) = stem.split_once('-')?;
    let ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    match (ok, ext) {
        (true, "mp3") => Some("audio/mpeg"),
        (true, "wav") => Some("audio/wav"),
        _ => None,
    }
}

/// The current greeting file name of number `did_id`, if one was uploaded.
pub async fn current(data_dir: &Path, did_id: i64) -> Option<String> {
    let mut entries = tokio::fs::read_dir(dir(data_dir)).await.ok()?;
    let prefix = format!("{did_id}-");
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && valid_name(&name).is_some() {
            return Some(name);
        }
    }
    None
}

async fn remove_all(data_dir: &Path, did_id: i64, keep: Option<&str>) {
    let Ok(mut entries) = tokio::fs::read_dir(dir(data_dir)).await else {
        return;
    };
    let prefix = format!("{did_id}-");
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && Some(name.as_str()) != keep {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}

async fn check_number(state: &ServerState, req: &ApiRequest) -> Result<i64, ApiError> {
    let me = req.principal()?;
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(id)?;
            dids::get(c, id).map(|d| d.id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))
}

async fn show(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did_id = check_number(&state, &req).await?;
    let greeting = current(&state.settings.data_dir, did_id)
        .await
        .map(|name| format!("/api/greetings/{name}"));
    Ok(super::request::json_response(
        StatusCode::OK,
        &serde_json::json!({ "did_id": did_id, "greeting": greeting }),
    ))
}

async fn upload(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did_id = check_number(&state, &req).await?;
    let ct = req.content_type();
    let body = &req.body;
    let ext = match ct.as_str() {
        "audio/mpeg" | "audio/mp3"
            if body.starts_with(b"ID3")
                || (body.len() > 1 && body[0] == 0xFF && body[1] & 0xE0 == 0xE0) =>
        {
            "mp3"
        }
        "audio/wav" | "audio/x-wav" | "audio/wave"
            if body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WAVE" =>
        {
            "wav"
        }
        "audio/mpeg" | "audio/mp3" | "audio/wav" | "audio/x-wav" | "audio/wave" => {
            return Err(ApiError::validation("the body is not an MP3 or WAV file"))
        }
        _ => return Err(ApiError::unsupported_media_type("audio/mpeg or audio/wav")),
    };
    let mut token = [0u8; 16];
    SystemRandom::new()
        .fill(&mut token)
        .map_err(|_| ApiError::internal(&req.request_id, &"the random generator failed"))?;
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{did_id}-{token}.{ext}");
    let path = dir(&state.settings.data_dir).join(&name);
    let bytes = body.clone();
    tokio::task::spawn_blocking(move || crate::twilio::jobs::write_atomically(&path, &bytes))
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    remove_all(&state.settings.data_dir, did_id, Some(&name)).await;
    Ok(super::request::json_response(
        StatusCode::OK,
        &serde_json::json!({ "did_id": did_id, "greeting": format!("/api/greetings/{name}") }),
    ))
}

async fn remove(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did_id = check_number(&state, &req).await?;
    remove_all(&state.settings.data_dir, did_id, None).await;
    Ok(super::request::no_content())
}

async fn serve(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let name = req.param("name").unwrap_or("");
    let Some(ct) = valid_name(name) else {
        return Err(ApiError::not_found("no such greeting"));
    };
    let bytes = tokio::fs::read(dir(&state.settings.data_dir).join(name))
        .await
        .map_err(|_| ApiError::not_found("no such greeting"))?;
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_our_names_are_served() {
        assert_eq!(
            valid_name("12-0123456789abcdef0123456789abcdef.mp3"),
            Some("audio/mpeg")
        );
        assert_eq!(
            valid_name("3-0123456789abcdef0123456789abcdef.wav"),
            Some("audio/wav")
        );
        for bad in [
            "12-0123456789abcdef0123456789abcdef.txt",
            "12-0123456789ABCDEF0123456789abcdef.mp3",
            "12-short.mp3",
            "../12-0123456789abcdef0123456789abcdef.mp3",
            "x-0123456789abcdef0123456789abcdef.mp3",
            "-0123456789abcdef0123456789abcdef.mp3",
        ] {
            assert_eq!(valid_name(bad), None, "{bad}");
        }
    }
}
