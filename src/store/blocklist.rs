//! The `blocklist` table: numbers whose calls and messages are refused.
//! Matching (exact, prefix, regex) is done above this layer.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{conflict_as, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

text_enum! {
    /// How a pattern is compared with a caller's number.
    pub enum PatternType { Exact = "exact", Prefix = "prefix", Regex = "regex" }
}

/// A blocked pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Row id.
    pub id: i64,
    /// The number, prefix or expression.
    pub pattern: String,
    /// How to compare.
    pub pattern_type: PatternType,
    /// Why it was blocked.
    pub reason: String,
    /// When.
    pub created_at: String,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        pattern: r.get(1)?,
        pattern_type: r.get(2)?,
        reason: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Adds a pattern; the same pattern twice is a `Conflict`.
pub fn insert(
    conn: &Connection,
    pattern: &str,
    ty: PatternType,
    reason: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO blocklist (pattern, pattern_type, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![pattern, ty, reason, now.to_string()],
    )
    .map_err(|e| conflict_as(e, "this pattern is blocked already"))?;
    Ok(conn.last_insert_rowid())
}

/// One pattern.
pub fn get(conn: &Connection, id: i64) -> Result<Entry, StoreError> {
    conn.query_row(
        "SELECT id, pattern, pattern_type, reason, created_at FROM blocklist WHERE id = ?1",
        [id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::not_found("blocklist entry", id))
}

/// Patterns, newest first.
pub fn list(conn: &Connection, page: Page) -> Result<Paged<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, pattern, pattern_type, reason, created_at FROM blocklist ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let items = stmt
        .query_map(params![page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row("SELECT count(*) FROM blocklist", [], |r| r.get(0))?;
    Ok(Paged { items, total })
}

/// Removes a pattern.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM blocklist WHERE id = ?1", [id])?,
        "blocklist entry",
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn insert_list_delete() {
        let conn = db();
        let mut ids = Vec::new();
        for (i, ty) in PatternType::ALL.iter().enumerate() {
            ids.push(insert(&conn, "+1900", *ty, "premium", t(i as i64)).expect("each type once"));
        }
        assert!(matches!(
            insert(&conn, "+1900", PatternType::Prefix, "", t(9)),
            Err(StoreError::Conflict(_))
        ));
        let page = list(
            &conn,
            Page {
                limit: 2,
                offset: 0,
            },
        )
        .expect("list");
        assert_eq!(
            (page.total, page.items[0].pattern_type),
            (3, PatternType::Regex)
        );
        assert_eq!(
            get(&conn, ids[1]).expect("get").pattern_type,
            PatternType::Prefix
        );
        delete(&conn, ids[0]).expect("delete");
        assert!(matches!(
            get(&conn, ids[0]),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            delete(&conn, ids[0]),
            Err(StoreError::NotFound { .. })
        ));
    }
}
