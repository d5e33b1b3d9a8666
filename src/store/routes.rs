//! The `routes` table: call-routing rules per number, in priority order.
//! The rules engine that evaluates them lives above this layer.

use rusqlite::{params, Connection, Row};
use serde::Serialize;
use serde_json::Value;

use super::{conflict_as, one_row, StoreError};

text_enum! {
    /// When a rule applies.
    pub enum ConditionType { Time = "time", CallerId = "callerid", Default = "default" }
}

text_enum! {
    /// What a matching rule does.
    pub enum ActionType { Ring = "ring", Forward = "forward", Voicemail = "voicemail", Reject = "reject" }
}

/// A routing rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// Row id.
    pub id: i64,
    /// The number it applies to; `None` for every number.
    pub did_id: Option<i64>,
    /// Lower runs first.
    pub priority: i64,
    /// Shown in the UI.
    pub name: String,
    /// Kind of condition.
    pub condition_type: ConditionType,
    /// Its parameters.
    pub condition_data: Value,
    /// Kind of action.
    pub action_type: ActionType,
    /// Its parameters.
    pub action_data: Value,
    /// Disabled rules are skipped.
    pub enabled: bool,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Route> {
    let json = |i: usize| -> rusqlite::Result<Value> {
        let text: String = r.get(i)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        })
    };
    Ok(Route {
        id: r.get(0)?,
        did_id: r.get(1)?,
        priority: r.get(2)?,
        name: r.get(3)?,
        condition_type: r.get(4)?,
        condition_data: json(5)?,
        action_type: r.get(6)?,
        action_data: json(7)?,
        enabled: r.get(8)?,
    })
}

/// Adds a rule (the `id` field is ignored); returns its id.
pub fn insert(conn: &Connection, rule: &Route) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO routes (did_id, priority, name, condition_type, condition_data, action_type, action_data, enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            rule.did_id,
            rule.priority,
            rule.name,
            rule.condition_type,
            rule.condition_data.to_string(),
            rule.action_type,
            rule.action_data.to_string(),
            rule.enabled
        ],
    )
    .map_err(|e| conflict_as(e, "no such number"))?;
    Ok(conn.last_insert_rowid())
}

/// The rules that apply to a number (its own and the global ones), in the
/// order the engine must try them.
pub fn for_did(conn: &Connection, did: i64) -> Result<Vec<Route>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, did_id, priority, name, condition_type, condition_data, action_type, action_data, enabled
         FROM routes WHERE did_id = ?1 OR did_id IS NULL ORDER BY priority, id",
    )?;
    let rows = stmt.query_map([did], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Sets priorities from the order of `ids` (0, 1, 2…), in one transaction.
pub fn reorder(conn: &mut Connection, ids: &[i64]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for (priority, id) in ids.iter().enumerate() {
        if tx.execute(
            "UPDATE routes SET priority = ?2 WHERE id = ?1",
            params![id, priority as i64],
        )? == 0
        {
            return Err(StoreError::not_found("route", id));
        }
    }
    tx.commit()?;
    Ok(())
}

/// Turns a rule on or off.
pub fn set_enabled(conn: &Connection, id: i64, enabled: bool) -> Result<(), StoreError> {
    if conn.execute(
        "UPDATE routes SET enabled = ?2 WHERE id = ?1",
        params![id, enabled],
    )? == 0
    {
        return Err(StoreError::not_found("route", id));
    }
    Ok(())
}

/// Removes a rule.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM routes WHERE id = ?1", [id])?,
        "route",
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::db;
    use serde_json::json;

    fn rule(did: Option<i64>, priority: i64, name: &str) -> Route {
        Route {
            id: 0,
            did_id: did,
            priority,
            name: name.into(),
            condition_type: ConditionType::Time,
            condition_data: json!({"start": "08:00", "end": "18:00"}),
            action_type: ActionType::Ring,
            action_data: json!({}),
            enabled: true,
        }
    }

    #[test]
    fn ordered_per_did_with_global_rules_and_reorder() {
        let mut conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let other = dids::tests::make(&conn, "+15551230002");
        let a = insert(&conn, &rule(Some(home), 5, "day")).expect("insert");
        let b = insert(&conn, &rule(None, 1, "global")).expect("insert");
        insert(&conn, &rule(Some(other), 0, "other")).expect("insert");
        let names: Vec<String> = for_did(&conn, home)
            .expect("list")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["global", "day"]);
        reorder(&mut conn, &[a, b]).expect("reorder");
        let got = for_did(&conn, home).expect("list");
        assert_eq!(
            (got[0].id, got[0].condition_data["start"].as_str()),
            (a, Some("08:00"))
        );
        assert!(matches!(
            reorder(&mut conn, &[b, 999]),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(
            for_did(&conn, home).expect("list")[0].id,
            a,
            "a failed reorder changes nothing"
        );
        set_enabled(&conn, a, false).expect("disable");
        delete(&conn, b).expect("delete");
        assert_eq!(for_did(&conn, home).expect("list").len(), 1);
    }

    #[test]
    fn every_condition_and_action_fits_the_schema() {
        let conn = db();
        for c in ConditionType::ALL {
            for a in ActionType::ALL {
                let mut r = rule(None, 0, "x");
                (r.condition_type, r.action_type) = (*c, *a);
                insert(&conn, &r).expect("allowed by CHECK");
            }
        }
        assert!(conn.execute("INSERT INTO routes (name, condition_type, action_type, condition_data) VALUES ('x','time','ring','{')", []).is_err());
    }
}
