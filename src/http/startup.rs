//! Startup settings edited from the web UI (admins):
//! `GET/PUT /api/system/startup-settings`.
//!
//! Some settings of [`crate::settings`] are read once at startup (SIP over
//! TLS only, the flood guard's limits, how Twilio's SIP side is trusted):
//! the web UI may store them in the `config` table, and they take effect at
//! the next start. Each item therefore says what runs now, what is saved,
//! what the next start will use and whether a restart is needed for that.
//! A value pinned by a command-line flag or a `HOMELINE_*` variable wins
//! over the table, so the API refuses to save one (it would never apply).
//!
//! `PUT` takes `{"<key>": value | null}` (strings, numbers or booleans;
//! `null` goes back to the default) and validates the whole configuration
//! the next start would see, exactly as startup will, before writing.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::settings::{RawInputs, Settings, Source, SPECS};
use crate::store::config;

/// The startup settings the web UI edits, in display order.
pub const EDITABLE: &[&str] = &[
    "sip.tls_only",
    "sip.digest_sha256",
    "sip.guard.max_auth_failures",
    "sip.guard.max_garbage",
    "sip.guard.max_requests",
    "sip.guard.ban_secs",
    "twilio.sip_mode",
    "twilio.sip_sources",
];

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/system/startup-settings",
            Access::Admin,
            get,
        ),
        Route::new(
            Method::PUT,
            "/api/system/startup-settings",
            Access::Admin,
            put,
        ),
    ]
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Flag => "flag",
        Source::Env => "environment",
        Source::Database => "config",
        Source::File => "file",
        Source::Default => "default",
    }
}

/// Whether the running process took `key` from a flag or the environment
/// (which the next start will do again).
fn pinned(settings: &Settings, key: &str) -> bool {
    matches!(settings.sources.get(key), Some(Source::Flag | Source::Env))
}

/// The items as the API shows them, given the `config` table now.
fn view(settings: &Settings, table: &BTreeMap<String, String>) -> Value {
    let items: Vec<Value> = EDITABLE
        .iter()
        .filter_map(|key| SPECS.iter().find(|s| s.key == *key))
        .map(|spec| {
            let running = settings.values.get(spec.key).cloned().unwrap_or_default();
            let saved = table.get(spec.key).cloned();
            let is_pinned = pinned(settings, spec.key);
            let next = if is_pinned {
                running.clone()
            } else {
                saved.clone().unwrap_or_else(|| settings.fallback(spec.key))
            };
            json!({
                "key": spec.key,
                "doc": spec.doc,
                "default": spec.default,
                "running": running,
                "source": settings.sources.get(spec.key).map(|s| source_name(*s)),
                "saved": saved,
                "next": next,
                "pinned": is_pinned.then_some(spec.env),
                "restart_required": next != running,
            })
        })
        .collect();
    json!({ "items": items })
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let table = state
        .db
        .call(|c| config::all(c))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(
        StatusCode::OK,
        &view(&state.settings, &table),
    ))
}

fn problem(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The body as changes (`None` clears), or the problems with it.
fn parse(
    settings: &Settings,
    body: &Value,
) -> Result<Vec<(&'static str, Option<String>)>, ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::validation(
            "expected an object of settings, e.g. {\"sip.tls_only\": true}",
        ));
    };
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in fields {
        let Some(key) = EDITABLE.iter().copied().find(|k| k == key) else {
            problems.push(problem(key, "not a startup setting the web UI can change"));
            continue;
        };
        if pinned(settings, key) {
            let env = SPECS.iter().find(|s| s.key == key).map_or("", |s| s.env);
            problems.push(problem(
                key,
                format!("set by a command-line flag or {env}; change it there"),
            ));
            continue;
        }
        let text = match value {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                problems.push(problem(
                    key,
                    "expected a string, number or boolean, or null",
                ));
                continue;
            }
        };
        if text
            .as_deref()
            .is_some_and(|t| t.len() > 1024 || t.chars().any(char::is_control))
        {
            problems.push(problem(
                key,
                "at most 1024 characters, no control characters",
            ));
            continue;
        }
        changes.push((key, text));
    }
    if problems.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::fields("nothing was saved", problems))
    }
}

/// Resolves the settings the next start would see, the way it will: the
/// pinned values as flags, the `config` table after the changes.
fn check_next_start(
    settings: &Settings,
    table: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let flags = settings
        .values
        .iter()
        .filter(|(k, _)| pinned(settings, k))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let raw = RawInputs {
        flags,
        file: settings.file.clone(),
        ..RawInputs::default()
    };
    raw.resolve(table)
        .map(|_| ())
        .map_err(|e| problem(e.key, e.reason))
}

async fn put(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let body: Value = req.json()?;
    let changes = parse(&state.settings, &body)?;
    let now = state.clock.now();
    let settings = state.settings.clone();
    let outcome = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let mut table = config::all(&tx)?;
            for (key, value) in &changes {
                match value {
                    Some(v) => table.insert(key.to_string(), v.clone()),
                    None => table.remove(*key),
                };
            }
            if let Err(problem) = check_next_start(&settings, &table) {
                return Ok(Err(problem));
            }
            for (key, value) in &changes {
                match value {
                    Some(v) => config::set(&tx, key, v, now)?,
                    None => config::delete(&tx, key)?,
                };
            }
            tx.commit()?;
            Ok(Ok((view(&settings, &table), changes)))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    match outcome {
        Ok((shown, changes)) => {
            let keys: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
            tracing::info!(
                ?keys,
                "startup settings saved; they apply at the next start"
            );
            Ok(json_response(StatusCode::OK, &shown))
        }
        Err(p) => Err(ApiError::fields("nothing was saved", vec![p])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(db: &[(&str, &str)], env: &[(&str, &str)]) -> Settings {
        let raw = RawInputs {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..RawInputs::default()
        };
        let table = db
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        raw.resolve(&table).expect("valid")
    }

    fn item<'a>(v: &'a Value, key: &str) -> &'a Value {
        v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["key"] == key))
            .expect("item")
    }

    #[test]
    fn a_saved_value_needs_a_restart_and_a_pinned_one_is_refused() {
        let s = running(&[], &[("HOMELINE_SIP_GUARD_BAN_SECS", "60")]);
        let table = [("sip.tls_only".to_string(), "true".to_string())].into();
        let v = view(&s, &table);
        let tls = item(&v, "sip.tls_only");
        assert_eq!(
            (tls["running"].as_str(), tls["next"].as_str()),
            (Some("false"), Some("true"))
        );
        assert_eq!(tls["restart_required"], true);
        let ban = item(&v, "sip.guard.ban_secs");
        assert_eq!(
            (ban["source"].as_str(), ban["restart_required"].as_bool()),
            (Some("environment"), Some(false))
        );
        assert_eq!(ban["pinned"], "HOMELINE_SIP_GUARD_BAN_SECS");
        assert!(parse(&s, &json!({"sip.guard.ban_secs": 30})).is_err());
        assert!(
            parse(&s, &json!({"http.listen": "0.0.0.0:1"})).is_err(),
            "not editable here"
        );
        assert_eq!(
            parse(&s, &json!({"sip.tls_only": true, "twilio.sip_mode": null})).expect("ok"),
            vec![
                ("sip.tls_only", Some("true".into())),
                ("twilio.sip_mode", None)
            ]
        );
    }

    #[test]
    fn the_next_start_is_checked_as_startup_checks_it() {
        let s = running(&[], &[("HOMELINE_SIP_TLS_LISTEN", "")]);
        let table = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let err =
            check_next_start(&s, &table(&[("sip.tls_only", "true")])).expect_err("TLS is off");
        assert_eq!(err.field, "sip.tls_only");
        let err =
            check_next_start(&s, &table(&[("sip.guard.max_garbage", "lots")])).expect_err("nan");
        assert_eq!(err.field, "sip.guard.max_garbage");
        check_next_start(&s, &table(&[("twilio.sip_mode", "domain")])).expect("fine");
    }
}
