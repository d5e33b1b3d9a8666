//! The `routes` table: each number's routing rules in position order, and
//! `call_decisions`, the decision the voice webhook made for each Twilio
//! call (which the call record takes its rule from).
//!
//! Rows carry the conditions and the action as JSON text; their typed form
//! and validation are `rules::model`, above this layer (`rules::store`
//! converts).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{conflict_as, found, one_row, StoreError};
use crate::clock::Timestamp;

/// One stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    /// Row id.
    pub id: i64,
    /// The number.
    pub did_id: i64,
    /// 0 first.
    pub position: i64,
    /// Shown in the UI.
    pub name: String,
    /// Disabled rules are skipped.
    pub enabled: bool,
    /// JSON array of conditions.
    pub conditions: String,
    /// JSON action.
    pub action: String,
}

/// The editable part of a rule row.
#[derive(Debug, Clone, Copy)]
pub struct RouteFields<'a> {
    /// Shown in the UI.
    pub name: &'a str,
    /// On or off.
    pub enabled: bool,
    /// JSON array of conditions.
    pub conditions: &'a str,
    /// JSON action.
    pub action: &'a str,
}

const COLUMNS: &str = "id, did_id, position, name, enabled, conditions, action";

fn from_row(r: &Row<'_>) -> rusqlite::Result<RouteRow> {
    Ok(RouteRow {
        id: r.get(0)?,
        did_id: r.get(1)?,
        position: r.get(2)?,
        name: r.get(3)?,
        enabled: r.get(4)?,
        conditions: r.get(5)?,
        action: r.get(6)?,
    })
}

/// Appends a rule after the number's last one; returns its id.
pub fn insert(
    conn: &Connection,
    did_id: i64,
    f: RouteFields<'_>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO routes (did_id, position, name, enabled, conditions, action, created_at, updated_at)
         VALUES (?1, (SELECT coalesce(max(position) + 1, 0) FROM routes WHERE did_id = ?1),
                 ?2, ?3, ?4, ?5, ?6, ?6)",
        params![did_id, f.name, f.enabled, f.conditions, f.action, now.to_string()],
    )
    .map_err(|e| conflict_as(e, "no such number"))?;
    Ok(conn.last_insert_rowid())
}

/// One rule.
pub fn get(conn: &Connection, id: i64) -> Result<RouteRow, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM routes WHERE id = ?1"),
            [id],
            from_row,
        ),
        "rule",
        id,
    )
}

/// A number's rules in the order the engine tries them.
pub fn for_did(conn: &Connection, did_id: i64) -> Result<Vec<RouteRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM routes WHERE did_id = ?1 ORDER BY position, id"
    ))?;
    let rows = stmt
        .query_map([did_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every rule of every number (to find the rules using a caller list).
pub fn all(conn: &Connection) -> Result<Vec<RouteRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM routes ORDER BY did_id, position, id"
    ))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Replaces a rule's editable fields (its number and position stay).
pub fn update(
    conn: &Connection,
    id: i64,
    f: RouteFields<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    one_row(
        conn.execute(
            "UPDATE routes SET name = ?2, enabled = ?3, conditions = ?4, action = ?5, updated_at = ?6
             WHERE id = ?1",
            params![id, f.name, f.enabled, f.conditions, f.action, now.to_string()],
        )?,
        "rule",
        id,
    )
}

/// Removes a rule.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM routes WHERE id = ?1", [id])?,
        "rule",
        id,
    )
}

/// Puts number `did_id`'s rules in the order of `ids` (positions 0, 1, 2…)
/// in one transaction. `ids` must name every rule of the number exactly
/// once; otherwise nothing changes and the error says what differs.
pub fn reorder(conn: &mut Connection, did_id: i64, ids: &[i64]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let mut current: Vec<i64> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM routes WHERE did_id = ?1")?;
        let ids = stmt
            .query_map([did_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids
    };
    let mut given = ids.to_vec();
    current.sort_unstable();
    given.sort_unstable();
    if current != given {
        return Err(StoreError::Conflict(
            "the order must list every rule of the number exactly once".into(),
        ));
    }
    for (position, id) in ids.iter().enumerate() {
        tx.execute(
            "UPDATE routes SET position = ?2 WHERE id = ?1",
            params![id, position as i64],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// What the voice webhook decided for one Twilio call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallDecision {
    /// Twilio's `CA…`.
    pub call_sid: String,
    /// The number called.
    pub did_id: Option<i64>,
    /// The rule that matched.
    pub rule_id: Option<i64>,
    /// Its name then.
    pub rule_name: Option<String>,
    /// The built-in default that decided (`blocklist`, `anonymous`, `no_rules`).
    pub default_kind: Option<String>,
    /// The action, JSON.
    pub action: String,
    /// The spam score Twilio's add-on gave, if any.
    pub spam_score: Option<f64>,
}

/// Records a decision once (a redelivered webhook keeps the first), and
/// names the rule on the call's record if one exists already.
pub fn record_decision(
    conn: &Connection,
    d: &CallDecision,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO call_decisions (call_sid, did_id, rule_id, rule_name, default_kind, action, spam_score, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (call_sid) DO NOTHING",
        params![
            d.call_sid,
            d.did_id,
            d.rule_id,
            d.rule_name,
            d.default_kind,
            d.action,
            d.spam_score.filter(|s| (0.0..=1.0).contains(s)),
            now.to_string()
        ],
    )?;
    conn.execute(
        "UPDATE cdrs SET rule_id = ?2, rule_name = ?3, spam_score = coalesce(spam_score, ?4)
         WHERE call_sid = ?1 AND rule_name IS NULL",
        params![
            d.call_sid,
            d.rule_id,
            d.rule_name,
            d.spam_score.filter(|s| (0.0..=1.0).contains(s))
        ],
    )?;
    Ok(())
}

/// The decision recorded for a call.
pub fn decision_for_call(
    conn: &Connection,
    call_sid: &str,
) -> Result<Option<CallDecision>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT call_sid, did_id, rule_id, rule_name, default_kind, action, spam_score
             FROM call_decisions WHERE call_sid = ?1",
            [call_sid],
            |r| {
                Ok(CallDecision {
                    call_sid: r.get(0)?,
                    did_id: r.get(1)?,
                    rule_id: r.get(2)?,
                    rule_name: r.get(3)?,
                    default_kind: r.get(4)?,
                    action: r.get(5)?,
                    spam_score: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// The rule named on a call record (`rule_id`, `rule_name`).
pub fn rule_of_cdr(
    conn: &Connection,
    cdr_id: i64,
) -> Result<(Option<i64>, Option<String>), StoreError> {
    found(
        conn.query_row(
            "SELECT rule_id, rule_name FROM cdrs WHERE id = ?1",
            [cdr_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ),
        "call record",
        cdr_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cdrs;
    use crate::store::dids;
    use crate::store::testing::{db, t};

    fn fields(name: &str) -> RouteFields<'_> {
        RouteFields {
            name,
            enabled: true,
            conditions: "[]",
            action: r#"{"type":"ring_all"}"#,
        }
    }

    #[test]
    fn rules_are_appended_listed_in_order_and_reordered_atomically() {
        let mut conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let other = dids::tests::make(&conn, "+15551230002");
        let a = insert(&conn, home, fields("a"), t(0)).expect("insert");
        let b = insert(&conn, home, fields("b"), t(1)).expect("insert");
        let c = insert(&conn, home, fields("c"), t(2)).expect("insert");
        let x = insert(&conn, other, fields("x"), t(3)).expect("insert");
        let names = |conn: &Connection| -> Vec<String> {
            for_did(conn, home)
                .expect("list")
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(names(&conn), ["a", "b", "c"]);
        assert_eq!(
            get(&conn, x).expect("get").position,
            0,
            "positions are per number"
        );
        reorder(&mut conn, home, &[c, a, b]).expect("reorder");
        assert_eq!(names(&conn), ["c", "a", "b"]);
        for bad in [vec![c, a], vec![c, a, b, x], vec![c, a, a], vec![c, a, 999]] {
            assert!(matches!(
                reorder(&mut conn, home, &bad),
                Err(StoreError::Conflict(_))
            ));
        }
        assert_eq!(
            names(&conn),
            ["c", "a", "b"],
            "a refused order changes nothing"
        );
        update(
            &conn,
            a,
            RouteFields {
                name: "a2",
                enabled: false,
                conditions: r#"[{"type":"spam"}]"#,
                action: r#"{"type":"voicemail"}"#,
            },
            t(5),
        )
        .expect("update");
        let row = get(&conn, a).expect("get");
        assert_eq!(
            (row.name.as_str(), row.enabled, row.position),
            ("a2", false, 1)
        );
        delete(&conn, b).expect("delete");
        assert!(matches!(delete(&conn, b), Err(StoreError::NotFound { .. })));
        assert!(matches!(get(&conn, b), Err(StoreError::NotFound { .. })));
        let d = insert(&conn, home, fields("d"), t(6)).expect("insert");
        assert_eq!(
            get(&conn, d).expect("get").position,
            2,
            "after the last one"
        );
        assert_eq!(all(&conn).expect("all").len(), 4);
        dids::delete(&conn, home).expect("delete number");
        assert_eq!(
            for_did(&conn, home).expect("list"),
            [],
            "rules go with their number"
        );
        assert!(matches!(
            insert(&conn, home, fields("orphan"), t(7)),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn the_schema_refuses_what_is_not_json() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        for (conditions, action) in [("{", "{}"), ("{}", "{}"), ("[]", "[]"), ("[]", "x")] {
            let f = RouteFields {
                name: "x",
                enabled: true,
                conditions,
                action,
            };
            assert!(
                insert(&conn, home, f, t(0)).is_err(),
                "{conditions} {action}"
            );
        }
    }

    #[test]
    fn the_call_record_takes_the_rule_of_its_decision() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let decision = CallDecision {
            call_sid: "CA01".into(),
            did_id: Some(home),
            rule_id: Some(7),
            rule_name: Some("Kids' bedtime".into()),
            default_kind: None,
            action: r#"{"type":"ring","devices":[2]}"#.into(),
            spam_score: Some(0.2),
        };
        record_decision(&conn, &decision, t(0)).expect("record");
        let mut again = decision.clone();
        again.rule_name = Some("changed".into());
        record_decision(&conn, &again, t(1)).expect("redelivery");
        assert_eq!(
            decision_for_call(&conn, "CA01").expect("get"),
            Some(decision)
        );
        // Twilio's status callback writes the record after the decision.
        let mut cdr = crate::cdr::blocked("CA01", "+15557654321", "+15551230001", Some(home), t(2));
        cdr.disposition = cdrs::Disposition::Answered;
        let id = cdrs::insert(&conn, &cdr).expect("insert");
        assert_eq!(
            rule_of_cdr(&conn, id).expect("rule"),
            (Some(7), Some("Kids' bedtime".into()))
        );
        assert_eq!(cdrs::get(&conn, id).expect("cdr").spam_score, Some(0.2));
        // The call layer's record gets its CallSid later (dial result).
        let mut sip = crate::cdr::blocked("", "+15557654321", "+15551230001", Some(home), t(3));
        sip.sip_call_id = Some("abc@home".into());
        let sip_id = cdrs::insert(&conn, &sip).expect("insert");
        assert_eq!(rule_of_cdr(&conn, sip_id).expect("rule"), (None, None));
        let d2 = CallDecision {
            call_sid: "CA02".into(),
            rule_id: None,
            rule_name: None,
            default_kind: Some("no_rules".into()),
            spam_score: None,
            ..again
        };
        record_decision(&conn, &d2, t(4)).expect("record");
        let d3 = CallDecision {
            call_sid: "CA03".into(),
            rule_id: Some(9),
            rule_name: Some("Night".into()),
            ..d2.clone()
        };
        record_decision(&conn, &d3, t(4)).expect("record");
        assert!(cdrs::link_call_sid(&conn, "abc@home", "CA03").expect("link"));
        assert_eq!(
            rule_of_cdr(&conn, sip_id).expect("rule"),
            (Some(9), Some("Night".into()))
        );
        assert_eq!(decision_for_call(&conn, "CA99").expect("get"), None);
    }
}
