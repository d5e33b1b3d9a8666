//! Rules and caller lists in their typed form, over the row-level
//! `store::routes` and `store::caller_lists`; and the [`Context`] of a
//! decision loaded in one go (blocklist, rules, lists, phones, DND, zone).

use jiff::tz::TimeZone;
use rusqlite::Connection;

use super::dnd;
use super::engine::Context;
use super::model::{
    CallerList, CallerListId, CallerListInput, Condition, Invalid, Rule, RuleId, RuleInput,
};
use crate::clock::Timestamp;
use crate::store::caller_lists::{self, ListRow};
use crate::store::devices::{self, DeviceId};
use crate::store::routes::{self, RouteFields, RouteRow};
use crate::store::{blocklist, config, dids, Page, StoreError};
use crate::sysconfig::SYSTEM_TIMEZONE;

fn corrupt(column: usize, e: serde_json::Error) -> StoreError {
    StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        Box::new(e),
    ))
}

fn to_rule(r: RouteRow) -> Result<Rule, StoreError> {
    Ok(Rule {
        id: RuleId(r.id),
        did_id: r.did_id,
        position: r.position,
        name: r.name,
        enabled: r.enabled,
        conditions: serde_json::from_str(&r.conditions).map_err(|e| corrupt(5, e))?,
        action: serde_json::from_str(&r.action).map_err(|e| corrupt(6, e))?,
    })
}

fn to_list(l: ListRow) -> CallerList {
    CallerList {
        id: CallerListId(l.id),
        name: l.name,
        numbers: l.numbers,
    }
}

/// The JSON columns of a rule input.
fn columns(input: &RuleInput) -> Result<(String, String), StoreError> {
    let conditions = serde_json::to_string(&input.conditions).map_err(|e| corrupt(5, e))?;
    let action = serde_json::to_string(&input.action).map_err(|e| corrupt(6, e))?;
    Ok((conditions, action))
}

/// A number's rules in position order.
pub fn rules_of(conn: &Connection, did_id: i64) -> Result<Vec<Rule>, StoreError> {
    routes::for_did(conn, did_id)?
        .into_iter()
        .map(to_rule)
        .collect()
}

/// One rule.
pub fn rule(conn: &Connection, id: RuleId) -> Result<Rule, StoreError> {
    to_rule(routes::get(conn, id.0)?)
}

/// Appends a rule (validated by the caller) to a number's rules.
pub fn create_rule(
    conn: &Connection,
    did_id: i64,
    input: &RuleInput,
    now: Timestamp,
) -> Result<Rule, StoreError> {
    let (conditions, action) = columns(input)?;
    let fields = RouteFields {
        name: input.name.trim(),
        enabled: input.enabled,
        conditions: &conditions,
        action: &action,
    };
    let id = routes::insert(conn, did_id, fields, now)?;
    rule(conn, RuleId(id))
}

/// Replaces a rule's editable fields.
pub fn update_rule(
    conn: &Connection,
    id: RuleId,
    input: &RuleInput,
    now: Timestamp,
) -> Result<Rule, StoreError> {
    let (conditions, action) = columns(input)?;
    let fields = RouteFields {
        name: input.name.trim(),
        enabled: input.enabled,
        conditions: &conditions,
        action: &action,
    };
    routes::update(conn, id.0, fields, now)?;
    rule(conn, id)
}

/// Every caller list.
pub fn caller_lists(conn: &Connection) -> Result<Vec<CallerList>, StoreError> {
    Ok(caller_lists::list(conn)?.into_iter().map(to_list).collect())
}

/// One caller list.
pub fn caller_list(conn: &Connection, id: CallerListId) -> Result<CallerList, StoreError> {
    caller_lists::get(conn, id.0).map(to_list)
}

/// Adds a caller list (normalized by the caller).
pub fn create_list(
    conn: &mut Connection,
    input: &CallerListInput,
    now: Timestamp,
) -> Result<CallerList, StoreError> {
    let id = caller_lists::insert(conn, &input.name, &input.numbers, now)?;
    caller_list(conn, CallerListId(id))
}

/// Replaces a caller list's name and numbers.
pub fn update_list(
    conn: &mut Connection,
    id: CallerListId,
    input: &CallerListInput,
    now: Timestamp,
) -> Result<CallerList, StoreError> {
    caller_lists::update(conn, id.0, &input.name, &input.numbers, now)?;
    caller_list(conn, id)
}

/// The rules (of any number) whose conditions use caller list `id`.
pub fn rules_using_list(conn: &Connection, id: CallerListId) -> Result<Vec<Rule>, StoreError> {
    let rules: Vec<Rule> = routes::all(conn)?
        .into_iter()
        .map(to_rule)
        .collect::<Result<_, _>>()?;
    Ok(rules
        .into_iter()
        .filter(|r| {
            r.conditions
                .iter()
                .any(|c| matches!(c, Condition::CallerList { list_id } if *list_id == id))
        })
        .collect())
}

/// Whether what a rule refers to exists: its phones and caller lists.
/// The outer error is the database's, the inner one names the field.
pub fn check_references(
    conn: &Connection,
    input: &RuleInput,
) -> Result<Result<(), Invalid>, StoreError> {
    for (i, c) in input.conditions.iter().enumerate() {
        if let Condition::CallerList { list_id } = c {
            match caller_lists::get(conn, list_id.0) {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    return Ok(Err(Invalid::new(
                        format!("conditions[{i}].list_id"),
                        format!("there is no caller list {list_id}"),
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }
    for d in input.action.devices() {
        match devices::get(conn, d) {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Ok(Err(Invalid::new(
                    "action",
                    format!("there is no phone {d}"),
                )))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(()))
}

/// The phones of a number's users, ascending, without repeats.
pub fn devices_of_did(conn: &Connection, did_id: i64) -> Result<Vec<DeviceId>, StoreError> {
    let mut out = Vec::new();
    for user in dids::users_of(conn, did_id)? {
        out.extend(devices::ids_of_user(conn, user)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The household's time zone: `system.timezone` from the IANA database;
/// unset, the system's zone; unknown (a name the database lacks), logged
/// and UTC, so a typo cannot stop calls.
pub fn household_zone(conn: &Connection) -> Result<TimeZone, StoreError> {
    Ok(match config::get(conn, SYSTEM_TIMEZONE)? {
        Some(name) if !name.trim().is_empty() => TimeZone::get(name.trim()).unwrap_or_else(|e| {
            tracing::warn!(zone = %name, error = %e, "unknown time zone; rules use UTC");
            TimeZone::UTC
        }),
        _ => TimeZone::try_system().unwrap_or(TimeZone::UTC),
    })
}

/// The instant of a store timestamp for `jiff`.
pub fn instant(t: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.unix_millis()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Everything a decision for a call to number `did_id` at `now` needs.
pub fn load_context(
    conn: &Connection,
    did_id: i64,
    now: jiff::Timestamp,
    reject_anonymous: bool,
) -> Result<Context, StoreError> {
    let tz = household_zone(conn)?;
    let rules = rules_of(conn, did_id)?;
    let used: Vec<CallerListId> = rules
        .iter()
        .filter(|r| r.enabled)
        .flat_map(|r| r.input().caller_lists())
        .collect();
    let lists = if used.is_empty() {
        Vec::new()
    } else {
        caller_lists(conn)?
            .into_iter()
            .filter(|l| used.contains(&l.id))
            .collect()
    };
    let mut ctx = Context::new(now, tz);
    ctx.dnd = dnd::view_for_did(conn, did_id, now, &ctx.tz)?;
    ctx.blocklist = blocklist::list(conn, Page::ALL)?.items;
    ctx.reject_anonymous = reject_anonymous;
    ctx.rules = rules;
    ctx.caller_lists = lists;
    ctx.devices = devices_of_did(conn, did_id)?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::engine::{decide, CallFacts};
    use crate::rules::model::Action;
    use crate::store::testing::{db, t};
    use crate::store::users::{self, Role};
    use serde_json::json;

    #[test]
    fn rules_round_trip_and_load_into_a_context() {
        let mut conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        dids::assign(&conn, home, mum).expect("assign");
        let vip = create_list(
            &mut conn,
            &CallerListInput {
                name: "VIP".into(),
                numbers: vec!["+15550000001".into()],
            },
            t(0),
        )
        .expect("list");
        let input: RuleInput = serde_json::from_value(json!({
            "name": " Grandma ",
            "conditions": [{"type":"caller_list","list_id": vip.id}],
            "action": {"type":"voicemail"}
        }))
        .expect("input");
        assert_eq!(check_references(&conn, &input).expect("db"), Ok(()));
        let r = create_rule(&conn, home, &input, t(1)).expect("create");
        assert_eq!((r.name.as_str(), r.position), ("Grandma", 0));
        assert_eq!(
            rules_of(&conn, home).expect("list"),
            std::slice::from_ref(&r)
        );
        assert_eq!(
            rules_using_list(&conn, vip.id).expect("using"),
            std::slice::from_ref(&r)
        );
        let bad: RuleInput = serde_json::from_value(json!({
            "name": "x", "conditions": [{"type":"spam"},{"type":"caller_list","list_id": 99}],
            "action": {"type":"ring","devices":[42]}
        }))
        .expect("input");
        assert_eq!(
            check_references(&conn, &bad)
                .expect("db")
                .expect_err("missing")
                .field,
            "conditions[1].list_id"
        );
        conn.execute("INSERT INTO config (key, value, updated_at) VALUES ('system.timezone', 'Europe/Berlin', 'x')", [])
            .expect("zone");
        let ctx = load_context(&conn, home, instant(t(2)), true).expect("context");
        assert_eq!(ctx.tz.iana_name(), Some("Europe/Berlin"));
        assert!(ctx.reject_anonymous);
        assert_eq!(ctx.caller_lists.len(), 1);
        let call = CallFacts {
            from: "+15550000001".into(),
            ..CallFacts::default()
        };
        assert_eq!(decide(&call, &ctx).action, Action::Voicemail);
        conn.execute(
            "UPDATE config SET value = 'Mars/Olympus' WHERE key = 'system.timezone'",
            [],
        )
        .expect("zone");
        assert_eq!(household_zone(&conn).expect("zone"), TimeZone::UTC);
    }
}
