//! SMS auto-replies of a number (see `messages::auto_reply` for when they
//! answer and the loop protection).
//!
//! | Route | Access | Answer |
//! |---|---|---|
//! | `GET /api/dids/{id}/auto-replies` | User (own numbers) | `{items: [auto-reply]}`, in the order they are tried |
//! | `POST /api/dids/{id}/auto-replies` `{trigger, reply_text, enabled?}` | Admin | 201 auto-reply |
//! | `PUT /api/auto-replies/{id}` `{trigger?, reply_text?, enabled?}` | Admin | the auto-reply (absent fields kept) |
//! | `DELETE /api/auto-replies/{id}` | Admin | 204 |
//!
//! An auto-reply is `{id, did_id, trigger, reply_text, enabled}` with
//! `trigger` one of `{"type":"dnd"}`, `{"type":"after_hours","schedule":…}`,
//! `{"type":"keyword","keywords":[…],"match":"exact"|"contains"}`.
//! Validation errors are 400 with `details[]` naming each field.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, no_content, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::messages::auto_reply::{Trigger, MAX_REPLY_CHARS};
use crate::store::auto_replies::{self, AutoReply};
use crate::store::dids;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/dids/{id}/auto-replies",
            Access::User,
            list,
        ),
        Route::new(
            Method::POST,
            "/api/dids/{id}/auto-replies",
            Access::Admin,
            create,
        ),
        Route::new(Method::PUT, "/api/auto-replies/{id}", Access::Admin, update),
        Route::new(
            Method::DELETE,
            "/api/auto-replies/{id}",
            Access::Admin,
            delete,
        ),
    ]
}

/// A body of POST (all required but `enabled`) or PUT (all optional).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    trigger: Option<Value>,
    reply_text: Option<Value>,
    enabled: Option<Value>,
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The validated parts of an input that are present.
struct Checked {
    trigger: Option<Trigger>,
    reply_text: Option<String>,
    enabled: Option<bool>,
}

fn check(input: &Input, creating: bool) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let trigger = match &input.trigger {
        None if creating => {
            errors.push(field(
                "trigger",
                "required: {\"type\": \"dnd\" | \"after_hours\" | \"keyword\", …}",
            ));
            None
        }
        None => None,
        Some(v) => match Trigger::from_json(v) {
            Ok(t) => Some(t),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(f, m)| field(&f, m)));
                None
            }
        },
    };
    let reply_text = match &input.reply_text {
        None if creating => {
            errors.push(field("reply_text", "required: the text sent back"));
            None
        }
        None => None,
        Some(v) => match v.as_str().map(str::trim) {
            Some(t)
                if !t.is_empty()
                    && t.chars().count() <= MAX_REPLY_CHARS
                    && !t.chars().any(|c| c.is_control() && c != '\n') =>
            {
                Some(t.to_string())
            }
            _ => {
                errors.push(field(
                    "reply_text",
                    "1 to 1600 characters, no control characters but line breaks",
                ));
                None
            }
        },
    };
    let enabled = match &input.enabled {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(field("enabled", "true or false"));
            None
        }
    };
    if errors.is_empty() {
        Ok(Checked {
            trigger,
            reply_text,
            enabled,
        })
    } else {
        Err(errors)
    }
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let did_id = req.id_param("id")?;
    let items = state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(did_id)?;
            dids::get(c, did_id)?;
            auto_replies::for_did(c, did_id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "items": items })))
}

async fn create(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did_id = req.id_param("id")?;
    let input: Input = req.json()?;
    let checked = check(&input, true)
        .map_err(|errors| ApiError::fields("the auto-reply was not added", errors))?;
    let (Some(trigger), Some(reply_text)) = (checked.trigger, checked.reply_text) else {
        return Err(ApiError::validation("trigger and reply_text are required"));
    };
    let rule = AutoReply {
        id: 0,
        did_id,
        trigger: trigger.to_json(),
        reply_text,
        enabled: checked.enabled.unwrap_or(true),
    };
    let saved = state
        .db
        .call(move |c| {
            dids::get(c, did_id)?;
            let id = auto_replies::insert(c, &rule)?;
            auto_replies::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(
        id = saved.id,
        did = did_id,
        trigger = trigger.kind(),
        "auto-reply added"
    );
    Ok(json_response(StatusCode::CREATED, &saved))
}

async fn update(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let input: Input = req.json()?;
    let checked = check(&input, false)
        .map_err(|errors| ApiError::fields("the auto-reply was not changed", errors))?;
    let saved = state
        .db
        .call(move |c| {
            let mut rule = auto_replies::get(c, id)?;
            if let Some(t) = checked.trigger {
                rule.trigger = t.to_json();
            }
            if let Some(text) = checked.reply_text {
                rule.reply_text = text;
            }
            if let Some(on) = checked.enabled {
                rule.enabled = on;
            }
            auto_replies::update(c, &rule)?;
            auto_replies::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id, enabled = saved.enabled, "auto-reply changed");
    Ok(json_response(StatusCode::OK, &saved))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| auto_replies::delete(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(id, "auto-reply removed");
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> Input {
        serde_json::from_value(v).expect("input shape")
    }

    fn fields(r: Result<Checked, Vec<FieldError>>) -> Vec<String> {
        match r {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|f| f.field).collect(),
        }
    }

    #[test]
    fn creating_needs_a_trigger_and_a_text() {
        assert_eq!(
            fields(check(&input(json!({})), true)),
            ["trigger", "reply_text"]
        );
        assert!(fields(check(&input(json!({})), false)).is_empty());
    }

    #[test]
    fn each_problem_names_its_field() {
        let r = check(
            &input(json!({
                "trigger": {"type": "keyword", "keywords": ["STOP"], "match": "sometimes"},
                "reply_text": "   ",
                "enabled": "yes"
            })),
            true,
        );
        assert_eq!(
            fields(r),
            ["trigger.keywords", "trigger.match", "reply_text", "enabled"]
        );
        let r = check(
            &input(json!({"trigger": {"type": "dnd", "schedule": null}, "reply_text": "x"})),
            true,
        );
        assert_eq!(fields(r), ["trigger.schedule"]);
        let r = check(
            &input(json!({"trigger": {"type": "after_hours"}, "reply_text": "x"})),
            true,
        );
        assert_eq!(fields(r), ["trigger.schedule"]);
        let r = check(
            &input(json!({"trigger": "dnd", "reply_text": "x".repeat(1601)})),
            true,
        );
        assert_eq!(fields(r), ["trigger", "reply_text"]);
    }

    #[test]
    fn a_valid_rule_passes() {
        let r = check(
            &input(json!({
                "trigger": {"type": "keyword", "keywords": ["hours", "opening times"], "match": "contains"},
                "reply_text": "Open 9-5.\nClosed Sundays.",
            })),
            true,
        )
        .map_err(|e| e.len());
        let c = r.expect("valid");
        assert_eq!(c.reply_text.as_deref(), Some("Open 9-5.\nClosed Sundays."));
        assert_eq!(c.enabled, None);
    }
}
