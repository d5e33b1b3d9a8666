//! Login protection: [`MAX_FAILED_LOGIN_ATTEMPTS`] failures within
//! [`LOGIN_FAILURE_WINDOW`] lock the client address and the account for
//! [`LOGIN_LOCKOUT`].
//!
//! What GoSIP got wrong and this module does not:
//! * the lockout lasts the full 15 minutes (the counter is not pruned before
//!   the lock is checked);
//! * the client address is the TCP peer, not a header the client sends
//!   (the HTTP layer decides it, trusting forwarded headers only from the
//!   configured proxy);
//! * counters are in the database, so a restart does not reset them.
//!
//! Both keys are counted for every failure, and unknown e-mails are counted
//! like known ones, so the answer never tells whether an account exists.

use std::net::IpAddr;
use std::time::Duration;

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::constants::{LOGIN_FAILURE_WINDOW, LOGIN_LOCKOUT, MAX_FAILED_LOGIN_ATTEMPTS};
use crate::store::login_attempts::{self, Attempts};
use crate::store::StoreError;

/// The counter keys of one login attempt: the client address and the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    ip: String,
    account: String,
}

impl Keys {
    /// Keys for a login from `ip` as `email` (compared case-insensitively,
    /// like the `users.email` column).
    pub fn new(ip: IpAddr, email: &str) -> Self {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        Self {
            ip: format!("ip:{ip}"),
            account: format!("account:{}", email.trim().to_ascii_lowercase()),
        }
    }

    fn both(&self) -> [&str; 2] {
        [&self.ip, &self.account]
    }
}

fn remaining(a: &Attempts, now: Timestamp) -> Option<Duration> {
    a.locked_until
        .filter(|until| *until > now)
        .map(|until| until.since(now))
}

/// How long the attempt must still wait, if either key is locked (the longer
/// of the two).
pub fn locked_for(
    conn: &Connection,
    keys: &Keys,
    now: Timestamp,
) -> Result<Option<Duration>, StoreError> {
    let mut wait: Option<Duration> = None;
    for key in keys.both() {
        if let Some(left) = login_attempts::get(conn, key)?.and_then(|a| remaining(&a, now)) {
            wait = Some(wait.map_or(left, |w| w.max(left)));
        }
    }
    Ok(wait)
}

/// Counts a failure on both keys (in one transaction); returns the lockout
/// if this failure started one (or one was already running).
pub fn record_failure(
    conn: &mut Connection,
    keys: &Keys,
    now: Timestamp,
) -> Result<Option<Duration>, StoreError> {
    let tx = conn.transaction()?;
    let mut wait: Option<Duration> = None;
    for key in keys.both() {
        let next = match login_attempts::get(&tx, key)? {
            Some(a) if remaining(&a, now).is_some() => a,
            Some(a)
                if a.locked_until.is_none()
                    && now.since(a.window_started_at) < LOGIN_FAILURE_WINDOW =>
            {
                let failures = a.failures.saturating_add(1);
                Attempts {
                    failures,
                    window_started_at: a.window_started_at,
                    locked_until: (failures >= MAX_FAILED_LOGIN_ATTEMPTS)
                        .then(|| now.plus(LOGIN_LOCKOUT)),
                }
            }
            // No counter, an old window, or a lockout that has run out: start over.
            _ => Attempts {
                failures: 1,
                window_started_at: now,
                locked_until: (MAX_FAILED_LOGIN_ATTEMPTS <= 1).then(|| now.plus(LOGIN_LOCKOUT)),
            },
        };
        login_attempts::put(&tx, key, &next)?;
        if let Some(left) = remaining(&next, now) {
            wait = Some(wait.map_or(left, |w| w.max(left)));
        }
    }
    tx.commit()?;
    Ok(wait)
}

/// Forgets both counters after a successful login.
pub fn clear(conn: &Connection, keys: &Keys) -> Result<(), StoreError> {
    for key in keys.both() {
        login_attempts::delete(conn, key)?;
    }
    Ok(())
}

/// Until when the account of `email` is locked out, if it is now (the
/// address key is not looked at: it is about a client, not the account).
pub fn account_locked_until(
    conn: &Connection,
    email: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let key = format!("account:{}", email.trim().to_ascii_lowercase());
    Ok(login_attempts::get(conn, &key)?
        .and_then(|a| a.locked_until)
        .filter(|until| *until > now))
}

/// Forgets the account counter of `email` (console password reset, and an
/// admin's unlock in the Users page).
pub fn clear_account(conn: &Connection, email: &str) -> Result<bool, StoreError> {
    login_attempts::delete(
        conn,
        &format!("account:{}", email.trim().to_ascii_lowercase()),
    )
}

/// Deletes counters that no longer matter: their window is over and they
/// are not locked.
pub fn sweep(conn: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    let cutoff = Timestamp::from_unix_millis(
        now.unix_millis()
            .saturating_sub(i64::try_from(LOGIN_FAILURE_WINDOW.as_millis()).unwrap_or(i64::MAX)),
    );
    login_attempts::delete_stale(conn, cutoff, now)
}

/// Whole seconds for `Retry-After`, rounded up so a client that waits exactly
/// that long is let in.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::testing::{db, t};
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn five_failures_lock_for_fifteen_minutes_then_release() {
        let mut conn = db();
        let clock = ManualClock::new(t(0));
        let keys = Keys::new(ip(1), "Mum@Example.org");
        for i in 1..MAX_FAILED_LOGIN_ATTEMPTS {
            assert_eq!(
                record_failure(&mut conn, &keys, clock.now()).expect("fail"),
                None,
                "failure {i} does not lock"
            );
            clock.advance(Duration::from_secs(10));
        }
        assert_eq!(
            record_failure(&mut conn, &keys, clock.now()).expect("fail"),
            Some(LOGIN_LOCKOUT),
            "the fifth failure locks"
        );
        assert_eq!(
            locked_for(&conn, &keys, clock.now()).expect("check"),
            Some(LOGIN_LOCKOUT)
        );
        clock.advance(LOGIN_LOCKOUT - Duration::from_secs(1));
        assert_eq!(
            locked_for(&conn, &keys, clock.now()).expect("check"),
            Some(Duration::from_secs(1)),
            "still locked one second before the end (GoSIP released after 1 minute)"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            locked_for(&conn, &keys, clock.now()).expect("check"),
            None,
            "released after 15 minutes"
        );
        assert_eq!(
            record_failure(&mut conn, &keys, clock.now()).expect("fail"),
            None,
            "after a lockout the count starts over"
        );
    }

    #[test]
    fn counted_per_ip_and_per_account() {
        let mut conn = db();
        let now = t(0);
        // One address trying many accounts is locked, for every account.
        for n in 0..MAX_FAILED_LOGIN_ATTEMPTS {
            record_failure(&mut conn, &Keys::new(ip(1), &format!("u{n}@x.org")), now)
                .expect("fail");
        }
        assert!(locked_for(&conn, &Keys::new(ip(1), "fresh@x.org"), now)
            .expect("check")
            .is_some());
        assert!(locked_for(&conn, &Keys::new(ip(2), "fresh@x.org"), now)
            .expect("check")
            .is_none());
        // Many addresses trying one account lock the account, from anywhere.
        for n in 10..10 + MAX_FAILED_LOGIN_ATTEMPTS as u8 {
            record_failure(&mut conn, &Keys::new(ip(n), "kid@x.org"), now).expect("fail");
        }
        assert!(locked_for(&conn, &Keys::new(ip(99), "KID@x.org"), now)
            .expect("check")
            .is_some());
        // IPv4-mapped IPv6 is the same client.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(
            Keys::new(mapped, "a@x.org").ip,
            Keys::new(ip(1), "a@x.org").ip
        );
    }

    #[test]
    fn failures_outside_the_window_and_successes_reset_the_count() {
        let mut conn = db();
        let clock = ManualClock::new(t(0));
        let keys = Keys::new(ip(1), "mum@x.org");
        for _ in 1..MAX_FAILED_LOGIN_ATTEMPTS {
            record_failure(&mut conn, &keys, clock.now()).expect("fail");
        }
        clock.advance(LOGIN_FAILURE_WINDOW);
        assert_eq!(
            record_failure(&mut conn, &keys, clock.now()).expect("fail"),
            None,
            "a new window"
        );
        for _ in 2..MAX_FAILED_LOGIN_ATTEMPTS {
            record_failure(&mut conn, &keys, clock.now()).expect("fail");
        }
        clear(&conn, &keys).expect("success");
        assert_eq!(
            record_failure(&mut conn, &keys, clock.now()).expect("fail"),
            None,
            "a success forgets earlier failures"
        );
    }

    #[test]
    fn sweep_keeps_locks_and_live_windows() {
        let mut conn = db();
        let clock = ManualClock::new(t(0));
        let locked = Keys::new(ip(1), "mum@x.org");
        for _ in 0..MAX_FAILED_LOGIN_ATTEMPTS {
            record_failure(&mut conn, &locked, clock.now()).expect("fail");
        }
        record_failure(&mut conn, &Keys::new(ip(2), "kid@x.org"), clock.now()).expect("fail");
        assert_eq!(sweep(&conn, clock.now()).expect("sweep"), 0);
        clock.advance(LOGIN_FAILURE_WINDOW);
        // The lock ends exactly now too: everything goes.
        assert_eq!(sweep(&conn, clock.now()).expect("sweep"), 4);
        assert!(clear_account(&conn, "mum@x.org").is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(900)), 900);
        assert_eq!(retry_after_secs(Duration::from_millis(899_001)), 900);
    }
}
