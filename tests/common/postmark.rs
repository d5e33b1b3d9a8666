//! A Postmark stand-in following its documented `POST /email`: checks the
//! server token header and the required fields, answers
//! `{"ErrorCode":0,"MessageID":…}`, 401 for a wrong token, and 422
//! `ErrorCode 406` (inactive recipient) for addresses starting `inactive`.

#![allow(dead_code)]

use serde_json::json;

use super::recorder::Recorder;

pub const TOKEN: &str = "pm-server-token-1";

pub fn start() -> Recorder {
    Recorder::start(|r| {
        if r.method != "POST" || r.path != "/email" {
            return (404, json!({"ErrorCode": 404, "Message": "not found"}));
        }
        if r.header("x-postmark-server-token") != Some(TOKEN) {
            return (
                401,
                json!({"ErrorCode": 10, "Message": "Bad or missing Server API token."}),
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        for k in ["From", "To", "Subject", "MessageStream"] {
            if !v[k].is_string() {
                return (
                    422,
                    json!({"ErrorCode": 300, "Message": format!("Invalid email request: {k}")}),
                );
            }
        }
        if v["To"].as_str().unwrap_or("").starts_with("inactive") {
            return (
                422,
                json!({"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."}),
            );
        }
        (
            200,
            json!({"To": v["To"], "SubmittedAt": "2026-12-02T10:00:00Z", "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"}),
        )
    })
}
