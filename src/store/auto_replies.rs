//! The `auto_replies` table: automatic SMS answers (do-not-disturb,
//! after-hours, keyword). Evaluated by the messaging service above.

use rusqlite::{params, Connection, Row};
use serde::Serialize;
use serde_json::Value;

use super::{conflict_as, one_row, StoreError};

text_enum! {
    /// What triggers an automatic reply.
    pub enum TriggerType { Dnd = "dnd", AfterHours = "after_hours", Keyword = "keyword" }
}

/// An automatic reply rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoReply {
    /// Row id (ignored on insert).
    pub id: i64,
    /// The number it answers for; `None` for all.
    pub did_id: Option<i64>,
    /// What triggers it.
    pub trigger_type: TriggerType,
    /// Trigger parameters, e.g. `{"keywords": ["STOP"]}`.
    pub trigger_data: Value,
    /// The reply.
    pub reply_text: String,
    /// Disabled rules are skipped.
    pub enabled: bool,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AutoReply> {
    let data: String = r.get(3)?;
    Ok(AutoReply {
        id: r.get(0)?,
        did_id: r.get(1)?,
        trigger_type: r.get(2)?,
        trigger_data: serde_json::from_str(&data).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?,
        reply_text: r.get(4)?,
        enabled: r.get(5)?,
    })
}

/// Adds a rule; returns its id.
pub fn insert(conn: &Connection, a: &AutoReply) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO auto_replies (did_id, trigger_type, trigger_data, reply_text, enabled) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![a.did_id, a.trigger_type, a.trigger_data.to_string(), a.reply_text, a.enabled],
    )
    .map_err(|e| conflict_as(e, "no such number"))?;
    Ok(conn.last_insert_rowid())
}

/// Rules that apply to a number (its own and the global ones).
pub fn for_did(conn: &Connection, did: i64) -> Result<Vec<AutoReply>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, did_id, trigger_type, trigger_data, reply_text, enabled FROM auto_replies
         WHERE did_id = ?1 OR did_id IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([did], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Turns a rule on or off.
pub fn set_enabled(conn: &Connection, id: i64, enabled: bool) -> Result<(), StoreError> {
    if conn.execute(
        "UPDATE auto_replies SET enabled = ?2 WHERE id = ?1",
        params![id, enabled],
    )? == 0
    {
        return Err(StoreError::not_found("auto-reply", id));
    }
    Ok(())
}

/// Removes a rule.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM auto_replies WHERE id = ?1", [id])?,
        "auto-reply",
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::db;
    use serde_json::json;

    #[test]
    fn rules_per_did_with_globals() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let mut ids = Vec::new();
        for (i, ty) in TriggerType::ALL.iter().enumerate() {
            let a = AutoReply {
                id: 0,
                did_id: if i == 0 { None } else { Some(home) },
                trigger_type: *ty,
                trigger_data: json!({"keywords": ["HOURS"]}),
                reply_text: "We're closed".into(),
                enabled: true,
            };
            ids.push(insert(&conn, &a).expect("every trigger fits the schema"));
        }
        let rules = for_did(&conn, home).expect("list");
        assert_eq!(
            (rules.len(), rules[2].trigger_data["keywords"][0].as_str()),
            (3, Some("HOURS"))
        );
        set_enabled(&conn, ids[1], false).expect("disable");
        assert!(!for_did(&conn, home).expect("list")[1].enabled);
        delete(&conn, ids[0]).expect("delete");
        assert!(matches!(
            delete(&conn, ids[0]),
            Err(StoreError::NotFound { .. })
        ));
    }
}
