//! The `auto_replies` table: automatic SMS answers of a number, and
//! `auto_reply_sent`, when each of them last answered each sender (the
//! loop and abuse protection). The trigger is kept as the API's JSON object
//! (`{"type": "dnd" | "after_hours" | "keyword", …}`); `messages::auto_reply`
//! gives it its type and decides when a rule answers.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{conflict_as, found, one_row, StoreError};
use crate::clock::Timestamp;

/// An automatic reply rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutoReply {
    /// Row id (ignored on insert).
    pub id: i64,
    /// The number it answers for.
    pub did_id: i64,
    /// What triggers it: `{"type": …, …parameters}`.
    pub trigger: Value,
    /// The reply.
    pub reply_text: String,
    /// Disabled rules are skipped.
    pub enabled: bool,
}

const COLUMNS: &str = "id, did_id, trigger_def, reply_text, enabled";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AutoReply> {
    let trigger: String = r.get(2)?;
    Ok(AutoReply {
        id: r.get(0)?,
        did_id: r.get(1)?,
        trigger: serde_json::from_str(&trigger).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        reply_text: r.get(3)?,
        enabled: r.get(4)?,
    })
}

/// Adds a rule; returns its id.
pub fn insert(conn: &Connection, a: &AutoReply) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO auto_replies (did_id, trigger_def, reply_text, enabled) VALUES (?1, ?2, ?3, ?4)",
        params![a.did_id, a.trigger.to_string(), a.reply_text, a.enabled],
    )
    .map_err(|e| conflict_as(e, "no such number, or the trigger has no known type"))?;
    Ok(conn.last_insert_rowid())
}

/// One rule.
pub fn get(conn: &Connection, id: i64) -> Result<AutoReply, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM auto_replies WHERE id = ?1"),
            [id],
            from_row,
        ),
        "auto-reply",
        id,
    )
}

/// The rules of a number, in the order they are tried (oldest first).
pub fn for_did(conn: &Connection, did: i64) -> Result<Vec<AutoReply>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM auto_replies WHERE did_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([did], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Replaces a rule's trigger, text and switch (its number stays).
pub fn update(conn: &Connection, a: &AutoReply) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE auto_replies SET trigger_def = ?2, reply_text = ?3, enabled = ?4 WHERE id = ?1",
            params![a.id, a.trigger.to_string(), a.reply_text, a.enabled],
        )
        .map_err(|e| conflict_as(e, "the trigger has no known type"))?;
    one_row(n, "auto-reply", a.id)
}

/// Removes a rule (and its record of whom it answered).
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM auto_replies WHERE id = ?1", [id])?,
        "auto-reply",
        id,
    )
}

/// When rule `auto_reply_id` last answered `sender`, if ever.
pub fn last_sent(
    conn: &Connection,
    auto_reply_id: i64,
    sender: &str,
) -> Result<Option<Timestamp>, StoreError> {
    let at: Option<String> = conn
        .prepare_cached(
            "SELECT sent_at FROM auto_reply_sent WHERE auto_reply_id = ?1 AND sender = ?2",
        )?
        .query_row(params![auto_reply_id, sender], |r| r.get(0))
        .optional()?;
    Ok(at.as_deref().and_then(Timestamp::parse_rfc3339))
}

/// Records that rule `auto_reply_id` answered `sender` at `now` (one row
/// per rule and sender, overwritten).
pub fn record_sent(
    conn: &Connection,
    auto_reply_id: i64,
    sender: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO auto_reply_sent (auto_reply_id, sender, sent_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (auto_reply_id, sender) DO UPDATE SET sent_at = excluded.sent_at",
    )?
    .execute(params![auto_reply_id, sender, now.to_string()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::db;
    use serde_json::json;

    fn rule(did_id: i64, trigger: Value) -> AutoReply {
        AutoReply {
            id: 0,
            did_id,
            trigger,
            reply_text: "We're closed".into(),
            enabled: true,
        }
    }

    #[test]
    fn rules_per_number_in_order() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let other = dids::tests::make(&conn, "+15551230002");
        let mut ids = Vec::new();
        for trigger in [
            json!({"type": "dnd"}),
            json!({"type": "after_hours", "schedule": {"weekly": [], "dates": []}}),
            json!({"type": "keyword", "keywords": ["hours"], "match": "contains"}),
        ] {
            ids.push(insert(&conn, &rule(home, trigger)).expect("every trigger fits"));
        }
        insert(&conn, &rule(other, json!({"type": "dnd"}))).expect("other number");
        let rules = for_did(&conn, home).expect("list");
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[2].trigger["keywords"][0], "hours");
        assert_eq!(rules.iter().map(|r| r.id).collect::<Vec<_>>(), ids);

        let mut changed = rules[1].clone();
        changed.enabled = false;
        changed.reply_text = "Back at 8".into();
        update(&conn, &changed).expect("update");
        assert_eq!(get(&conn, ids[1]).expect("get"), changed);

        delete(&conn, ids[0]).expect("delete");
        assert!(matches!(
            delete(&conn, ids[0]),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            get(&conn, ids[0]),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn the_schema_refuses_unknown_triggers_and_numbers() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        assert!(insert(&conn, &rule(home, json!({"type": "moon"}))).is_err());
        assert!(insert(&conn, &rule(home + 99, json!({"type": "dnd"}))).is_err());
    }

    #[test]
    fn the_last_answer_per_rule_and_sender_is_one_row() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let id = insert(&conn, &rule(home, json!({"type": "dnd"}))).expect("insert");
        let (t1, t2) = (
            Timestamp::from_unix_millis(1_000_000),
            Timestamp::from_unix_millis(2_000_000),
        );
        assert_eq!(last_sent(&conn, id, "+15559870000").expect("read"), None);
        record_sent(&conn, id, "+15559870000", t1).expect("record");
        record_sent(&conn, id, "+15559870000", t2).expect("record again");
        assert_eq!(
            last_sent(&conn, id, "+15559870000").expect("read"),
            Some(t2)
        );
        assert_eq!(last_sent(&conn, id, "+15559870001").expect("read"), None);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM auto_reply_sent", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 1);
        delete(&conn, id).expect("delete");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM auto_reply_sent", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 0, "the record goes with its rule");
    }
}
