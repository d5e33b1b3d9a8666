//! A Gotify stand-in: `POST /message` with `X-Gotify-Key` (or `?token=`);
//! answers the created message, 401 for an unknown token.

#![allow(dead_code)]

use serde_json::json;

use super::recorder::Recorder;

pub const TOKEN: &str = "AgotifyAppToken1";

pub fn start() -> Recorder {
    Recorder::start(|r| {
        let token = r
            .header("x-gotify-key")
            .map(str::to_string)
            .or_else(|| r.path.split_once("token=").map(|(_, t)| t.to_string()));
        if r.method != "POST" || !r.path.starts_with("/message") {
            return (404, json!({"error": "Not Found", "errorCode": 404}));
        }
        if token.as_deref() != Some(TOKEN) {
            return (
                401,
                json!({"error": "Unauthorized", "errorCode": 401, "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (
            200,
            json!({"id": 25, "appid": 5, "message": v["message"], "title": v["title"], "priority": v["priority"], "date": "2026-12-02T10:00:00Z"}),
        )
    })
}
