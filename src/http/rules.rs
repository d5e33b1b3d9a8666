//! Routing rules, caller lists and the "what happens if…" simulator.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /api/dids/{id}/rules` (admins; a user for their own number) | `{items: [rule]}` by position |
//! | `POST /api/dids/{id}/rules` `{name, enabled?, conditions?, action}` | 201 rule, appended last |
//! | `PUT /api/dids/{id}/rules/order` `{ids: [every rule id of the number]}` | `{items}` in the new order |
//! | `PUT /api/rules/{id}` `{name, enabled?, conditions?, action}` | the rule |
//! | `DELETE /api/rules/{id}` | 204 |
//! | `POST /api/dids/{id}/simulate` `{from, caller_name?, at?, spam_score?, verstat?}` | the decision, with `rings` after DND |
//! | `GET /api/caller-lists` | `{items: [list]}` |
//! | `POST /api/caller-lists` `{name, numbers}` | 201 list |
//! | `PUT /api/caller-lists/{id}` `{name, numbers}` | the list |
//! | `DELETE /api/caller-lists/{id}` | 204; 409 while a rule uses it |
//!
//! The simulator loads the same context and calls the same
//! `rules::engine::decide` as the voice webhook, at the given local time
//! of the household, so its answer is what a real call then meets.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, no_content, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::rules::engine::{decide, CallFacts, Decision};
use crate::rules::model::{Action, CallerListId, CallerListInput, Invalid, RuleId, RuleInput};
use crate::rules::{signals, store as rules_store};
use crate::store::{devices, dids, routes, StoreError};
use crate::twilio::routing;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/dids/{id}/rules", Access::User, list),
        Route::new(Method::POST, "/api/dids/{id}/rules", Access::Admin, create),
        Route::new(
            Method::PUT,
            "/api/dids/{id}/rules/order",
            Access::Admin,
            reorder,
        ),
        Route::new(
            Method::POST,
            "/api/dids/{id}/simulate",
            Access::Admin,
            simulate,
        ),
        Route::new(Method::PUT, "/api/rules/{id}", Access::Admin, update),
        Route::new(Method::DELETE, "/api/rules/{id}", Access::Admin, delete),
        Route::new(Method::GET, "/api/caller-lists", Access::Admin, lists),
        Route::new(
            Method::POST,
            "/api/caller-lists",
            Access::Admin,
            create_list,
        ),
        Route::new(
            Method::PUT,
            "/api/caller-lists/{id}",
            Access::Admin,
            update_list,
        ),
        Route::new(
            Method::DELETE,
            "/api/caller-lists/{id}",
            Access::Admin,
            delete_list,
        ),
    ]
}

fn invalid(what: &str, e: Invalid) -> ApiError {
    ApiError::fields(
        format!("{what}: {e}"),
        vec![FieldError {
            field: e.field,
            message: e.message,
        }],
    )
}

/// Field checks of a rule, and the toll-fraud allow-list for a forward
/// (so a forward that could never go out is refused when typed).
fn checked(state: &ServerState, input: &RuleInput) -> Result<(), ApiError> {
    input
        .validate()
        .map_err(|e| invalid("the rule was not saved", e))?;
    if let Action::Forward { number } = &input.action {
        if !state.settings.calls.rules.destination_allowed(number) {
            return Err(invalid(
                "the rule was not saved",
                Invalid::new(
                    "action.number",
                    format!(
                        "{number} is not in an allowed country or prefix (calls.allowed_prefixes)"
                    ),
                ),
            ));
        }
    }
    Ok(())
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let did = req.id_param("id")?;
    let rules = state
        .db
        .call(move |c| {
            Scope::load(c, &me)?.check_did(did)?;
            dids::get(c, did)?;
            rules_store::rules_of(c, did)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "items": rules })))
}

async fn create(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did = req.id_param("id")?;
    let input: RuleInput = req.json()?;
    checked(&state, &input)?;
    let now = state.clock.now();
    let outcome = state
        .db
        .call(move |c| {
            dids::get(c, did)?;
            if let Err(e) = rules_store::check_references(c, &input)? {
                return Ok(Err(e));
            }
            rules_store::create_rule(c, did, &input, now).map(Ok)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let rule = outcome.map_err(|e| invalid("the rule was not saved", e))?;
    tracing::info!(rule = rule.id.0, did, name = %rule.name, "routing rule added");
    Ok(json_response(StatusCode::CREATED, &rule))
}

async fn update(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = RuleId(req.id_param("id")?);
    let input: RuleInput = req.json()?;
    checked(&state, &input)?;
    let now = state.clock.now();
    let outcome = state
        .db
        .call(move |c| {
            routes::get(c, id.0)?;
            if let Err(e) = rules_store::check_references(c, &input)? {
                return Ok(Err(e));
            }
            rules_store::update_rule(c, id, &input, now).map(Ok)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let rule = outcome.map_err(|e| invalid("the rule was not saved", e))?;
    tracing::info!(rule = id.0, name = %rule.name, "routing rule changed");
    Ok(json_response(StatusCode::OK, &rule))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    state
        .db
        .call(move |c| routes::delete(c, id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(rule = id, "routing rule removed");
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    ids: Vec<i64>,
}

async fn reorder(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did = req.id_param("id")?;
    let order: Order = req.json()?;
    let rules = state
        .db
        .call(move |c| {
            dids::get(c, did)?;
            match routes::reorder(c, did, &order.ids) {
                Err(StoreError::Conflict(_)) => return Ok(None),
                other => other?,
            }
            rules_store::rules_of(c, did).map(Some)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    match rules {
        Some(items) => Ok(json_response(StatusCode::OK, &json!({ "items": items }))),
        None => Err(ApiError::fields(
            "the order was not changed",
            vec![FieldError {
                field: "ids".into(),
                message: "list every rule of the number exactly once".into(),
            }],
        )),
    }
}

async fn lists(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let items = state
        .db
        .call(|c| rules_store::caller_lists(c))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "items": items })))
}

async fn create_list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let input: CallerListInput = req.json()?;
    let input = input
        .normalized()
        .map_err(|e| invalid("the caller list was not saved", e))?;
    let now = state.clock.now();
    let list = state
        .db
        .call(move |c| rules_store::create_list(c, &input, now))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::CREATED, &list))
}

async fn update_list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = CallerListId(req.id_param("id")?);
    let input: CallerListInput = req.json()?;
    let input = input
        .normalized()
        .map_err(|e| invalid("the caller list was not saved", e))?;
    let now = state.clock.now();
    let list = state
        .db
        .call(move |c| rules_store::update_list(c, id, &input, now))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &list))
}

async fn delete_list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = CallerListId(req.id_param("id")?);
    state
        .db
        .call(move |c| {
            rules_store::caller_list(c, id)?;
            let users = rules_store::rules_using_list(c, id)?;
            if !users.is_empty() {
                let names: Vec<String> = users.iter().map(|r| format!("\"{}\"", r.name)).collect();
                return Err(StoreError::Conflict(format!(
                    "the caller list is used by the rule{} {}; change or remove them first",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )));
            }
            crate::store::caller_lists::delete(c, id.0)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Simulation {
    from: String,
    #[serde(default)]
    caller_name: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    spam_score: Option<f64>,
    #[serde(default)]
    verstat: Option<String>,
}

fn field(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::fields(
        "the simulation was not run",
        vec![FieldError {
            field: name.into(),
            message: message.into(),
        }],
    )
}

/// The instant of a local time `YYYY-MM-DDTHH:MM[:SS]` in `tz` (a time
/// skipped by DST reads as the instant after the gap; a repeated one as
/// its first pass, like a wall clock).
pub fn local_instant(text: &str, tz: &jiff::tz::TimeZone) -> Result<jiff::Timestamp, String> {
    let dt: jiff::civil::DateTime = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a local time like 2026-12-02T23:00"))?;
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .map_err(|e| format!("{text:?}: {e}"))
}

/// The simulator's answer: the decision, the local time it was made for,
/// and who rings (names included).
fn simulated(decision: &Decision, at: String, zone: String, names: &[(i64, String)]) -> Value {
    let mut v = json!(decision);
    let rings: Vec<Value> = decision
        .rings
        .iter()
        .map(|s| {
            json!({
                "devices": s.devices.iter().map(|d| json!({
                    "id": d.0,
                    "name": names.iter().find(|(id, _)| *id == d.0).map(|(_, n)| n.clone()).unwrap_or_default(),
                })).collect::<Vec<_>>(),
                "secs": s.secs,
            })
        })
        .collect();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("rings".into(), json!(rings));
        obj.insert("at".into(), json!(at));
        obj.insert("time_zone".into(), json!(zone));
    }
    v
}

async fn simulate(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let did = req.id_param("id")?;
    let sim: Simulation = req.json()?;
    if sim.from.trim().chars().count() > 64 {
        return Err(field("from", "at most 64 characters"));
    }
    if let Some(s) = sim.spam_score {
        if !(0.0..=1.0).contains(&s) {
            return Err(field(
                "spam_score",
                "a score from 0.0 to 1.0, or null for unknown",
            ));
        }
    }
    if sim.verstat.as_ref().is_some_and(|v| v.len() > 64) {
        return Err(field("verstat", "at most 64 characters"));
    }
    let now = rules_store::instant(state.clock.now());
    let reject_anonymous = state.settings.calls.reject_anonymous;
    let dial_rules = state.settings.calls.rules.clone();
    let outcome = state
        .db
        .call(move |c| {
            let number = dids::get(c, did)?.number;
            let tz = rules_store::household_zone(c)?;
            let at = match &sim.at {
                Some(text) => match local_instant(text, &tz) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(field("at", e))),
                },
                None => now,
            };
            let ctx = rules_store::load_context(c, did, at, reject_anonymous)?;
            let facts = CallFacts {
                to: number,
                from: sim.from.trim().to_string(),
                caller_name: sim.caller_name.filter(|n| !n.trim().is_empty()),
                withheld: signals::is_withheld(&sim.from),
                spam_score: sim.spam_score,
                verstat: sim.verstat.filter(|v| !v.trim().is_empty()),
            };
            let mut decision = decide(&facts, &ctx);
            // The webhook's toll-fraud check of a forward, as a real call
            // meets it (the hourly cap aside): refused means voicemail.
            if let Action::Forward { number } = &decision.action {
                if let Err(why) = routing::outgoing_call_allowed(c, &facts.to, number, &dial_rules)?
                {
                    decision.explanation = format!(
                        "{} The forward would be refused ({why}), so the caller gets voicemail.",
                        decision.explanation
                    );
                    decision.action = Action::Voicemail;
                }
            }
            let mut names = Vec::new();
            for step in &decision.rings {
                for d in &step.devices {
                    match devices::get(c, *d) {
                        Ok(dev) => names.push((d.0, dev.name)),
                        Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let local = ctx
                .tz
                .to_datetime(at)
                .strftime("%Y-%m-%dT%H:%M")
                .to_string();
            let zone = ctx.tz.iana_name().unwrap_or("UTC").to_string();
            Ok(Ok(simulated(&decision, local, zone, &names)))
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &outcome?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_in_the_household_zone() {
        let ny = jiff::tz::TimeZone::get("America/New_York").expect("zone");
        let t = local_instant("2026-12-02T23:00", &ny).expect("instant");
        assert_eq!(t.to_string(), "2026-12-03T04:00:00Z");
        // 02:30 does not exist on 2026-03-08: the instant after the gap.
        let gap = local_instant("2026-03-08T02:30", &ny).expect("instant");
        assert_eq!(gap.to_string(), "2026-03-08T07:30:00Z");
        assert!(local_instant("tonight", &ny).is_err());
        assert!(
            local_instant("2026-12-02", &ny).is_ok(),
            "a date is its midnight"
        );
    }
}
