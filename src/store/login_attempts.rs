//! The `login_attempts` table: failed-login counters per client address and
//! per account, and the lockout they led to. The rules (how many, how long)
//! live in `accounts::lockout`; this module only stores the counters.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::clock::Timestamp;

/// The counter of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Failures since `window_started_at`.
    pub failures: u32,
    /// The first failure of the current window.
    pub window_started_at: Timestamp,
    /// Set when the key is locked out.
    pub locked_until: Option<Timestamp>,
}

/// The counter of `key`, if any. A stored time that does not parse (someone
/// edited the row by hand) reads as the Unix epoch, i.e. long past.
pub fn get(conn: &Connection, key: &str) -> Result<Option<Attempts>, StoreError> {
    let row = conn
        .query_row(
            "SELECT failures, window_started_at, locked_until FROM login_attempts WHERE key = ?1",
            [key],
            |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?;
    let epoch = Timestamp::from_unix_millis(0);
    Ok(row.map(|(failures, started, locked)| Attempts {
        failures,
        window_started_at: Timestamp::parse_rfc3339(&started).unwrap_or(epoch),
        locked_until: locked.map(|l| Timestamp::parse_rfc3339(&l).unwrap_or(epoch)),
    }))
}

/// Stores the counter of `key`.
pub fn put(conn: &Connection, key: &str, a: &Attempts) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO login_attempts (key, failures, window_started_at, locked_until)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
             window_started_at = excluded.window_started_at, locked_until = excluded.locked_until",
        params![
            key,
            a.failures,
            a.window_started_at.to_string(),
            a.locked_until.map(|t| t.to_string())
        ],
    )?;
    Ok(())
}

/// Forgets the counter of `key` (after a successful login); returns whether
/// there was one. Nothing is written when there was none.
pub fn delete(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM login_attempts WHERE key = ?1", [key])? > 0)
}

/// Deletes counters whose window started at or before `window_started_before`
/// and that are not locked at `now`; returns how many.
pub fn delete_stale(
    conn: &Connection,
    window_started_before: Timestamp,
    now: Timestamp,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM login_attempts
         WHERE window_started_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        params![window_started_before.to_string(), now.to_string()],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn put_get_delete_and_sweep() {
        let conn = db();
        assert_eq!(get(&conn, "ip:192.0.2.1").expect("get"), None);
        let a = Attempts {
            failures: 2,
            window_started_at: t(0),
            locked_until: None,
        };
        put(&conn, "ip:192.0.2.1", &a).expect("put");
        let locked = Attempts {
            failures: 5,
            window_started_at: t(0),
            locked_until: Some(t(900)),
        };
        put(&conn, "account:mum@x.org", &locked).expect("put");
        assert_eq!(get(&conn, "ip:192.0.2.1").expect("get"), Some(a));
        assert_eq!(get(&conn, "account:mum@x.org").expect("get"), Some(locked));
        assert_eq!(
            delete_stale(&conn, t(0), t(899)).expect("sweep"),
            1,
            "the unlocked stale counter goes, the locked one stays"
        );
        assert_eq!(delete_stale(&conn, t(0), t(900)).expect("sweep"), 1);
        put(&conn, "ip:192.0.2.1", &a).expect("put");
        assert!(delete(&conn, "ip:192.0.2.1").expect("delete"));
        assert!(!delete(&conn, "ip:192.0.2.1").expect("delete again"));
    }
}
