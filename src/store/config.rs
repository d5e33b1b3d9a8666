//! The `config` table: runtime settings edited from the web UI.
//!
//! A write that does not change the value writes nothing (SD-card wear).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::clock::Timestamp;

/// Every key and value.
pub fn all(conn: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM config")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One value, if set.
pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Sets `key` to `value`; returns whether anything was written.
pub fn set(conn: &Connection, key: &str, value: &str, now: Timestamp) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO config (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
         WHERE config.value IS NOT excluded.value",
        params![key, value, now.to_string()],
    )?;
    Ok(n > 0)
}

/// Removes `key`; returns whether it existed.
pub fn delete(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM config WHERE key = ?1", [key])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn set_get_delete_and_unchanged_writes_nothing() {
        let conn = db();
        assert_eq!(get(&conn, "http.listen").expect("get"), None);
        assert!(set(&conn, "http.listen", "0.0.0.0:80", t(0)).expect("set"));
        assert!(
            !set(&conn, "http.listen", "0.0.0.0:80", t(1)).expect("same value"),
            "no write for no change"
        );
        assert!(set(&conn, "http.listen", "0.0.0.0:81", t(2)).expect("change"));
        assert_eq!(
            get(&conn, "http.listen").expect("get").as_deref(),
            Some("0.0.0.0:81")
        );
        assert_eq!(all(&conn).expect("all").len(), 1);
        assert!(delete(&conn, "http.listen").expect("delete"));
        assert!(!delete(&conn, "http.listen").expect("delete again"));
    }
}
