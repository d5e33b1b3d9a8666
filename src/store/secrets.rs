//! The `secrets` table: named secrets (Twilio auth token, SMTP password, API
//! keys), stored sealed. This module moves sealed bytes only; sealing and
//! opening is `secrets::SecretBox`'s job, with the key name as context.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::clock::Timestamp;

/// The sealed value of `key`, if set.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT sealed FROM secrets WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Stores the sealed value of `key`.
pub fn set(conn: &Connection, key: &str, sealed: &[u8], now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO secrets (key, sealed, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        params![key, sealed, now.to_string()],
    )?;
    Ok(())
}

/// Removes `key`; returns whether it was set.
pub fn delete(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM secrets WHERE key = ?1", [key])? > 0)
}

/// The names of the secrets that are set (what the API may tell).
pub fn keys(conn: &Connection) -> Result<BTreeSet<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key FROM secrets")?;
    let keys = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn set_get_list_delete() {
        let conn = db();
        assert_eq!(get(&conn, "twilio.auth_token").expect("get"), None);
        set(&conn, "twilio.auth_token", b"sealed-1", t(0)).expect("set");
        set(&conn, "twilio.auth_token", b"sealed-2", t(1)).expect("replace");
        set(&conn, "smtp.password", b"sealed-3", t(1)).expect("set");
        assert_eq!(
            get(&conn, "twilio.auth_token").expect("get").as_deref(),
            Some(&b"sealed-2"[..])
        );
        assert_eq!(
            keys(&conn).expect("keys").into_iter().collect::<Vec<_>>(),
            vec!["smtp.password".to_string(), "twilio.auth_token".to_string()]
        );
        assert!(delete(&conn, "smtp.password").expect("delete"));
        assert!(!delete(&conn, "smtp.password").expect("delete again"));
    }
}
