//! Web accounts: password hashing and policy, sessions, login protection and
//! ownership scopes. The HTTP layer (`http::auth`) applies them to every
//! request according to the route's declared access.

pub mod lockout;
pub mod password;
pub mod scope;
pub mod session;

use std::future::Future;

use crate::clock::SharedClock;
use crate::constants::SESSION_SWEEP_INTERVAL;
use crate::store::{sessions, Db};

/// Longest accepted e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Checks the shape of a login e-mail: `local@domain`, no spaces or control
/// characters, at most [`MAX_EMAIL_LEN`] bytes. Deliverability is not
/// checked: the address is a login name first.
pub fn check_email(email: &str) -> Result<(), String> {
    let (Some((local, domain)), 1) = (email.rsplit_once('@'), email.matches('@').count()) else {
        return Err("expected an e-mail address like name@example.org".into());
    };
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("at most {MAX_EMAIL_LEN} characters"));
    }
    let clean = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !clean(local) || !clean(domain) || domain.contains('@') || domain.starts_with('.') {
        return Err("expected an e-mail address like name@example.org".into());
    }
    Ok(())
}

/// Deletes expired sessions and stale login-failure counters every
/// [`SESSION_SWEEP_INTERVAL`] until `stopped` resolves. A sweep that finds
/// nothing writes nothing (SQLite does not touch pages for a DELETE that
/// matches no row), so an idle appliance does not wear its SD card.
pub async fn sweep_loop(db: Db, clock: SharedClock, stopped: impl Future<Output = ()>) {
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let now = clock.now();
        match db
            .call(move |c| {
                Ok::<_, crate::store::StoreError>((
                    sessions::delete_expired(c, now)?,
                    lockout::sweep(c, now)?,
                ))
            })
            .await
        {
            Ok((0, 0)) => {}
            Ok((sessions, counters)) => {
                tracing::debug!(
                    sessions,
                    counters,
                    "swept expired sessions and login counters"
                )
            }
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock, Timestamp};
    use crate::constants::SESSION_DURATION;
    use crate::store::users::{self, Role};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn the_sweep_deletes_expired_sessions_only() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_795_255_200_000,
        )));
        let (db, _thread) = Db::start(crate::store::open_in_memory().expect("db"));
        let now = clock.now();
        db.call(move |c| {
            let kid = users::tests::make(c, "kid@x.org", Role::User);
            session::open(c, &[1; 32], kid, None, None, now)?;
            session::open(
                c,
                &[2; 32],
                kid,
                None,
                None,
                now.plus(Duration::from_secs(3600)),
            )?;
            Ok::<_, crate::store::StoreError>(())
        })
        .await
        .expect("seed");
        clock.advance(SESSION_DURATION + Duration::from_secs(1));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sweep_loop(db.clone(), clock.clone(), async move {
            let _ = stopped.await;
        }));
        // The first sweep runs at once.
        let mut left = 2;
        for _ in 0..200 {
            left = db
                .call(|c| {
                    Ok::<_, crate::store::StoreError>(c.query_row(
                        "SELECT count(*) FROM sessions",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .await
                .expect("count");
            if left == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(left, 1, "the expired one went, the live one stayed");
        let _ = stop.send(());
        task.await.expect("sweep loop ends when stopped");
    }

    #[test]
    fn email_shapes() {
        for ok in ["mum@example.org", "a.b+c@x", "Kid@Home.Lan"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "mum",
            "@example.org",
            "mum@",
            "m um@x.org",
            "mum@x@y",
            "mum@.org",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_email(&format!("{}@x.org", "a".repeat(250))).is_err());
    }
}
