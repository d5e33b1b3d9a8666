//! Sending e-mail through Postmark's HTTP API (`POST /email`, server token
//! in `X-Postmark-Server-Token`). Postmark has no idempotency key: the
//! notification id travels in `Metadata` and the Message-ID header, so a
//! send resumed after a crash is recognisable in its activity log.

use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::email::File;
use super::queue::Notification;
use super::send::{self, Reason, SendError};

/// Postmark's API when `postmark.api_base` is unset.
pub const DEFAULT_API_BASE: &str = "https://api.postmarkapp.com";

/// The Postmark settings.
#[derive(Clone, PartialEq, Eq)]
pub struct PostmarkConfig {
    /// API base URL.
    pub api_base: String,
    /// Server token (secret).
    pub token: String,
}

impl std::fmt::Debug for PostmarkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostmarkConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
    #[serde(rename = "MessageID", default)]
    message_id: String,
}

/// The request body (public for the tests and the stand-in).
pub fn body(
    id: i64,
    n: &Notification,
    from: &str,
    message_id: &str,
    files: &[File],
) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "From": from,
        "To": n.target,
        "Subject": n.subject,
        "TextBody": n.text,
        "HtmlBody": n.html,
        "MessageStream": "outbound",
        "Headers": [{"Name": "Message-ID", "Value": message_id}],
        "Metadata": {"notification_id": id.to_string()},
        "Attachments": files.iter().map(|f| json!({
            "Name": f.filename,
            "Content": b64.encode(&f.bytes),
            "ContentType": f.content_type,
        })).collect::<Vec<_>>(),
    })
}

/// Sends (blocking: call from `spawn_blocking`); `Ok` is Postmark's MessageID.
pub fn send(cfg: &PostmarkConfig, body: &serde_json::Value) -> Result<String, SendError> {
    let url = format!("{}/email", cfg.api_base.trim_end_matches('/'));
    let req = send::agent()
        .post(&url)
        .header("X-Postmark-Server-Token", &cfg.token);
    let a = send::post_json(req, body.to_string().as_bytes())?;
    let reply: Option<Reply> = serde_json::from_slice(&a.body).ok();
    interpret(
        a.status,
        reply
            .as_ref()
            .map(|r| (r.error_code, r.message.as_str(), r.message_id.as_str())),
        &a,
    )
}

fn interpret(
    status: u16,
    reply: Option<(i64, &str, &str)>,
    a: &send::Answer,
) -> Result<String, SendError> {
    match (status, reply) {
        (200, Some((0, _, id))) => Ok(format!("Postmark accepted it as {id}")),
        (401, _) => Err(SendError::new(
            Reason::Auth,
            "Postmark refused the server token",
        )),
        (422, Some((code @ (406 | 300), msg, _))) => Err(SendError::permanent(
            Reason::RecipientRefused,
            format!("Postmark refused the recipient (ErrorCode {code}): {msg}"),
        )),
        (422, Some((code @ (400 | 401), msg, _))) => Err(SendError::new(
            Reason::SenderRefused,
            format!("Postmark refused the sender (ErrorCode {code}): {msg}"),
        )),
        (422, Some((10, msg, _))) => Err(SendError::new(Reason::Auth, format!("Postmark: {msg}"))),
        (422, Some((code, msg, _))) => Err(SendError::new(
            Reason::Other,
            format!("Postmark refused it (ErrorCode {code}): {msg}"),
        )),
        _ => Err(send::status_error(a, "Postmark")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> send::Answer {
        send::Answer {
            status,
            retry_after: None,
            body: vec![],
        }
    }

    #[test]
    fn answers_are_classified() {
        assert!(interpret(200, Some((0, "OK", "b7bc")), &answer(200)).is_ok());
        let e = interpret(422, Some((406, "inactive", "")), &answer(422)).expect_err("x");
        assert_eq!((e.reason, e.permanent), (Reason::RecipientRefused, true));
        let e = interpret(401, None, &answer(401)).expect_err("x");
        assert_eq!((e.reason, e.permanent), (Reason::Auth, false));
        let e = interpret(500, None, &answer(500)).expect_err("x");
        assert!(!e.permanent);
    }
}
