//! Browser sessions: 256-bit random tokens handed out in a cookie, stored
//! only as their SHA-256, valid for [`SESSION_DURATION`] after the last
//! extension.
//!
//! Why a hash: a leaked database (a backup, a copied SD card) must not hand
//! out live sessions. SHA-256 without salt is enough because the token is
//! 256 random bits: there is nothing to guess or precompute.
//!
//! Sliding expiry without wearing the SD card: a request extends the session
//! only when at least [`SESSION_REFRESH_INTERVAL`] has passed since the last
//! extension, so an active browser costs one small write every five minutes.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::constants::{SESSION_DURATION, SESSION_REFRESH_INTERVAL, SESSION_REFRESH_ON_ACTIVITY};
use crate::store::sessions::{self, ActiveSession, NewSession};
use crate::store::users::Role;
use crate::store::StoreError;

/// Bytes of randomness in a token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// The authenticated caller of a request, as the HTTP layer hands it to
/// handlers after checking the session and the route's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The account.
    pub user_id: i64,
    /// Its role at the time of the request.
    pub role: Role,
    /// The session the request came with (to keep it when others are ended).
    pub session_id: i64,
}

impl Principal {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A fresh token: the cookie value (hex) and the hash to store.
#[derive(Debug)]
pub struct NewToken {
    /// Goes into the cookie, never into the database or a log.
    pub token: String,
    /// Goes into the database.
    pub hash: [u8; 32],
}

/// The system random generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// Draws a new token from the system's CSPRNG.
pub fn new_token() -> Result<NewToken, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash_token(&token);
    Ok(NewToken { token, hash })
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Whether `token` has the shape [`new_token`] makes (64 lower-case hex
/// characters); anything else is not looked up at all.
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// When a session opened or extended at `now` ends.
pub fn expiry(now: Timestamp) -> Timestamp {
    now.plus(SESSION_DURATION)
}

/// Whether a session last extended at `last_seen` should be extended at `now`.
pub fn due_for_refresh(last_seen: Option<Timestamp>, now: Timestamp) -> bool {
    match last_seen {
        Some(seen) => now.since(seen) >= SESSION_REFRESH_INTERVAL,
        None => true,
    }
}

/// Opens a session for `user_id`; returns the session id.
pub fn open(
    conn: &rusqlite::Connection,
    token_hash: &[u8; 32],
    user_id: i64,
    user_agent: Option<&str>,
    ip: Option<&str>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    sessions::insert(
        conn,
        &NewSession {
            token_hash,
            user_id,
            user_agent,
            ip,
        },
        now,
        expiry(now),
    )
}

/// What authenticating a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// Who it is.
    pub principal: Principal,
    /// Whether the expiry was just extended (the cookie should be re-sent
    /// with a fresh `Max-Age`).
    pub refreshed: bool,
}

/// Finds the live session of `token` and slides it if it is due.
pub fn authenticate(
    conn: &rusqlite::Connection,
    token: &str,
    now: Timestamp,
) -> Result<Option<Authenticated>, StoreError> {
    let found = lookup(conn, token, now)?;
    if let Some(a) = found.filter(|a| a.refreshed) {
        slide(conn, a.principal.session_id, now)?;
    }
    Ok(found)
}

/// Finds the live session of `token` without writing (a read connection
/// will do); `refreshed` says whether it is due to slide, which the caller
/// then does with [`slide`] on the writer.
pub fn lookup(
    conn: &rusqlite::Connection,
    token: &str,
    now: Timestamp,
) -> Result<Option<Authenticated>, StoreError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let Some(ActiveSession {
        id,
        user_id,
        role,
        last_seen_at,
        ..
    }) = sessions::find_active(conn, &hash_token(token), now)?
    else {
        return Ok(None);
    };
    let refreshed = SESSION_REFRESH_ON_ACTIVITY && due_for_refresh(last_seen_at, now);
    Ok(Some(Authenticated {
        principal: Principal {
            user_id,
            role,
            session_id: id,
        },
        refreshed,
    }))
}

/// Extends session `id` from `now` (the sliding expiry).
pub fn slide(conn: &rusqlite::Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    sessions::extend(conn, id, now, expiry(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};
    use crate::store::users;
    use std::time::Duration;

    #[test]
    fn tokens_are_random_hex_and_stored_hashed() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a.token, b.token);
        assert!(well_formed(&a.token), "{}", a.token);
        assert_eq!(a.hash, hash_token(&a.token));
        assert_ne!(&a.hash[..], a.token.as_bytes());
        assert!(!well_formed("short"));
        assert!(!well_formed(&a.token.to_uppercase()));
        assert!(!well_formed(&format!("{}g", &a.token[1..])));
    }

    #[test]
    fn sessions_slide_only_every_refresh_interval_and_expire_after_a_day() {
        let conn = db();
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        let tok = new_token().expect("token");
        let id = open(&conn, &tok.hash, kid, None, None, t(0)).expect("open");
        let at = |secs: u64| t(0).plus(Duration::from_secs(secs));

        let a = authenticate(&conn, &tok.token, at(60))
            .expect("auth")
            .expect("live");
        assert_eq!(
            (a.principal.session_id, a.principal.user_id, a.refreshed),
            (id, kid, false),
            "a minute in: no write"
        );
        let a = authenticate(&conn, &tok.token, at(300))
            .expect("auth")
            .expect("live");
        assert!(a.refreshed, "five minutes in: extended");
        let day = SESSION_DURATION.as_secs();
        let other = new_token().expect("token");
        open(&conn, &other.hash, kid, None, None, at(300)).expect("open");
        // Used every hour for three days: always live.
        for hour in 1..=72 {
            assert!(authenticate(&conn, &other.token, at(300 + hour * 3600))
                .expect("auth")
                .is_some());
        }
        // The first one, untouched since 300 s, ends a day later.
        assert!(authenticate(&conn, &tok.token, at(day + 299))
            .expect("auth")
            .is_some());
        assert!(
            authenticate(&conn, &tok.token, at(day + 299 + day))
                .expect("auth")
                .is_none(),
            "a day after the last extension, it is gone"
        );
        assert!(authenticate(&conn, "0".repeat(64).as_str(), at(0))
            .expect("auth")
            .is_none());
    }
}
