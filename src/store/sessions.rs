//! The `sessions` table: browser sessions, stored by the SHA-256 of their
//! token (the token itself only ever lives in the browser's cookie).
//!
//! Expiry is compared as RFC 3339 text, which sorts like time because the
//! clock always writes the same UTC shape.

use rusqlite::{params, Connection, OptionalExtension};

use super::users::Role;
use super::StoreError;
use crate::clock::Timestamp;

/// What it takes to open a session.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// SHA-256 of the cookie token.
    pub token_hash: &'a [u8],
    /// The account.
    pub user_id: i64,
    /// The browser's `User-Agent`, for a future "your sessions" page.
    pub user_agent: Option<&'a str>,
    /// The client address at login.
    pub ip: Option<&'a str>,
}

/// A session that has not expired, with its account's current role (read
/// fresh on every request, so a demotion takes effect at once).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSession {
    /// Row id.
    pub id: i64,
    /// The account.
    pub user_id: i64,
    /// The account's role now.
    pub role: Role,
    /// When the expiry was last extended.
    pub last_seen_at: Option<Timestamp>,
    /// When the session ends unless extended.
    pub expires_at: Option<Timestamp>,
}

/// Opens a session that ends at `expires_at`.
pub fn insert(
    conn: &Connection,
    s: &NewSession<'_>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, user_agent, ip)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
        params![
            s.token_hash,
            s.user_id,
            now.to_string(),
            expires_at.to_string(),
            s.user_agent,
            s.ip
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The live session with this token hash, if any (expired ones are invisible).
pub fn find_active(
    conn: &Connection,
    token_hash: &[u8],
    now: Timestamp,
) -> Result<Option<ActiveSession>, StoreError> {
    // Every request asks this: the statement is prepared once per connection.
    let row = conn
        .prepare_cached(
            "SELECT s.id, s.user_id, u.role, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )?
        .query_row(params![token_hash, now.to_string()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Role>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    Ok(
        row.map(|(id, user_id, role, last_seen, expires)| ActiveSession {
            id,
            user_id,
            role,
            last_seen_at: Timestamp::parse_rfc3339(&last_seen),
            expires_at: Timestamp::parse_rfc3339(&expires),
        }),
    )
}

/// The role of the account of session `id` if that session is still live
/// at `now` (an open event stream re-checks this).
pub fn live_role(conn: &Connection, id: i64, now: Timestamp) -> Result<Option<Role>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ?1 AND s.expires_at > ?2",
            params![id, now.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Slides a session: seen at `now`, ending at `expires_at`.
pub fn extend(
    conn: &Connection,
    id: i64,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2, expires_at = ?3 WHERE id = ?1",
        params![id, now.to_string(), expires_at.to_string()],
    )?;
    Ok(())
}

/// Ends one session; returns whether it existed.
pub fn delete(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM sessions WHERE id = ?1", [id])? > 0)
}

/// Ends every session of `user_id` except `keep` (the one changing the
/// password); returns how many ended.
pub fn delete_for_user(
    conn: &Connection,
    user_id: i64,
    keep: Option<i64>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)",
        params![user_id, keep],
    )?)
}

/// Deletes sessions that ended at or before `now`; returns how many.
pub fn delete_expired(conn: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [now.to_string()],
    )?)
}

/// How many sessions `user_id` has (expired or not).
pub fn count_for_user(conn: &Connection, user_id: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sessions WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};
    use crate::store::users::{self, Role};

    fn open(conn: &Connection, hash: u8, user: i64, expires: i64) -> i64 {
        insert(
            conn,
            &NewSession {
                token_hash: &[hash; 32],
                user_id: user,
                user_agent: Some("test"),
                ip: Some("192.0.2.1"),
            },
            t(0),
            t(expires),
        )
        .expect("insert session")
    }

    #[test]
    fn find_extend_and_expire() {
        let conn = db();
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        let id = open(&conn, 1, kid, 100);
        let s = find_active(&conn, &[1; 32], t(99))
            .expect("find")
            .expect("live");
        assert_eq!(
            (s.id, s.user_id, s.role, s.last_seen_at, s.expires_at),
            (id, kid, Role::User, Some(t(0)), Some(t(100)))
        );
        assert_eq!(
            find_active(&conn, &[1; 32], t(100)).expect("find"),
            None,
            "expired at its expiry instant"
        );
        assert_eq!(find_active(&conn, &[2; 32], t(0)).expect("find"), None);
        extend(&conn, id, t(90), t(200)).expect("extend");
        let s = find_active(&conn, &[1; 32], t(150))
            .expect("find")
            .expect("live after extension");
        assert_eq!(s.last_seen_at, Some(t(90)));
        users::update(&conn, kid, "", Role::Admin, t(1)).expect("promote");
        assert_eq!(
            find_active(&conn, &[1; 32], t(150))
                .expect("find")
                .map(|s| s.role),
            Some(Role::Admin),
            "the role is read fresh"
        );
    }

    #[test]
    fn delete_for_user_keeps_one_and_sweep_removes_only_expired() {
        let conn = db();
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        let keep = open(&conn, 1, mum, 100);
        open(&conn, 2, mum, 100);
        open(&conn, 3, mum, 10);
        open(&conn, 4, kid, 10);
        assert_eq!(delete_for_user(&conn, mum, Some(keep)).expect("delete"), 2);
        assert_eq!(count_for_user(&conn, mum).expect("count"), 1);
        assert_eq!(delete_expired(&conn, t(10)).expect("sweep"), 1, "kid's");
        assert_eq!(delete_expired(&conn, t(10)).expect("sweep"), 0);
        assert!(delete(&conn, keep).expect("delete"));
        assert!(!delete(&conn, keep).expect("delete again"));
        open(&conn, 5, kid, 100);
        users::delete(&conn, kid).expect("delete user");
        assert_eq!(
            count_for_user(&conn, kid).expect("count"),
            0,
            "sessions go with their account"
        );
    }

    #[test]
    fn token_hash_must_be_32_bytes_and_unique() {
        let conn = db();
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        open(&conn, 1, mum, 100);
        let dup = insert(
            &conn,
            &NewSession {
                token_hash: &[1; 32],
                user_id: mum,
                user_agent: None,
                ip: None,
            },
            t(0),
            t(1),
        );
        assert!(dup.is_err());
        let short = insert(
            &conn,
            &NewSession {
                token_hash: &[1; 8],
                user_id: mum,
                user_agent: None,
                ip: None,
            },
            t(0),
            t(1),
        );
        assert!(short.is_err());
    }
}
