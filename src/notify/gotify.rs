//! Gotify push: `POST {gotify.url}/message` with the application token in
//! `X-Gotify-Key`; a tap opens the notification's link
//! (`extras["client::notification"].click.url`). The notification id rides
//! in `extras["homeline::delivery"]` so a resumed push can be recognised.

use serde_json::json;

use super::queue::Notification;
use super::send::{self, Reason, SendError};

/// The JSON of notification `id`.
pub fn body(id: i64, n: &Notification, priority: u8) -> serde_json::Value {
    let mut extras = json!({"homeline::delivery": {"notification_id": id}});
    if let Some(link) = &n.link {
        extras["client::notification"] = json!({"click": {"url": link}});
    }
    json!({
        "title": n.subject,
        "message": n.text,
        "priority": priority.min(10),
        "extras": extras,
    })
}

/// Sends (blocking: call from `spawn_blocking`); `Ok` is Gotify's message id.
pub fn send(server: &str, token: &str, body: &serde_json::Value) -> Result<String, SendError> {
    let url = format!("{}/message", server.trim_end_matches('/'));
    let req = send::agent().post(&url).header("X-Gotify-Key", token);
    let a = send::post_json(req, body.to_string().as_bytes())?;
    match a.status {
        200..=299 => {
            let id = serde_json::from_slice::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| v["id"].as_i64());
            Ok(match id {
                Some(id) => format!("Gotify accepted it as message {id}"),
                None => "Gotify accepted it".into(),
            })
        }
        401 | 403 => Err(SendError::new(
            Reason::Auth,
            "Gotify refused the application token",
        )),
        _ => Err(send::status_error(&a, "Gotify")),
    }
}
