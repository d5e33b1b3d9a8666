//! The `alerts` table: conditions an administrator must see (in the API and
//! the log), such as an outbox job failing three times in a row. One open
//! alert per key; raising it again changes nothing, clearing closes it.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;
use crate::clock::Timestamp;

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Row id.
    pub id: i64,
    /// What it is about, e.g. `outbox:12`.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
    /// When it was raised.
    pub raised_at: String,
    /// When it was cleared; `None` while open.
    pub cleared_at: Option<String>,
}

/// Opens an alert for `key` unless one is open; returns whether it is new.
pub fn raise(
    conn: &Connection,
    key: &str,
    message: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    Ok(raise_id(conn, key, message, now)?.is_some())
}

/// Like [`raise`], returning the new alert's id (`None`: one was open).
pub fn raise_id(
    conn: &Connection,
    key: &str,
    message: &str,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let n = conn.execute(
        "INSERT INTO alerts (key, message, raised_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![key, message, now.to_string()],
    )?;
    Ok((n > 0).then(|| conn.last_insert_rowid()))
}

/// Closes the open alert for `key`, if any; returns whether one was open.
pub fn clear(conn: &Connection, key: &str, now: Timestamp) -> Result<bool, StoreError> {
    Ok(clear_id(conn, key, now)?.is_some())
}

/// Like [`clear`], returning the closed alert's id.
pub fn clear_id(conn: &Connection, key: &str, now: Timestamp) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "UPDATE alerts SET cleared_at = ?2 WHERE key = ?1 AND cleared_at IS NULL RETURNING id",
            params![key, now.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Closes alert `id` (an admin dismissed it); `NotFound` if it is not open.
pub fn dismiss(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE alerts SET cleared_at = ?2 WHERE id = ?1 AND cleared_at IS NULL",
        params![id, now.to_string()],
    )?;
    super::one_row(n, "open alert", id)
}

/// Open alerts, newest first.
pub fn open(conn: &Connection) -> Result<Vec<Alert>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, key, message, raised_at, cleared_at FROM alerts WHERE cleared_at IS NULL ORDER BY id DESC",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Alert {
                id: r.get(0)?,
                key: r.get(1)?,
                message: r.get(2)?,
                raised_at: r.get(3)?,
                cleared_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn one_open_alert_per_key() {
        let conn = db();
        assert!(raise(&conn, "outbox:1", "failing", t(0)).expect("raise"));
        assert!(!raise(&conn, "outbox:1", "still failing", t(1)).expect("again"));
        assert!(raise(&conn, "outbox:2", "failing", t(2)).expect("other"));
        assert_eq!(open(&conn).expect("open").len(), 2);
        assert!(clear(&conn, "outbox:1", t(3)).expect("clear"));
        assert!(!clear(&conn, "outbox:1", t(4)).expect("clear again"));
        assert_eq!(open(&conn).expect("open")[0].key, "outbox:2");
        assert!(raise(&conn, "outbox:1", "failing again", t(5)).expect("reopen"));
        let id = open(&conn).expect("open")[0].id;
        dismiss(&conn, id, t(6)).expect("dismiss");
        assert!(matches!(
            dismiss(&conn, id, t(7)),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(open(&conn).expect("open").len(), 1);
    }
}
