//! Defence against SIP scanners: every exposed PBX is probed within hours.
//!
//! Per source IP, within a sliding minute, we count authentication failures,
//! unparseable messages and requests. Past a threshold the source is banned
//! (everything it sends is dropped without an answer) for a while. Sources
//! with a live registration are exempt from the request-rate limit, so a
//! flood from elsewhere cannot starve the household's phones of service.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Timestamp;

/// Thresholds (per source IP, per minute) and the ban length.
#[derive(Debug, Clone, Copy)]
pub struct GuardConfig {
    /// Wrong passwords / unknown users before a ban.
    pub max_auth_failures: u32,
    /// Unparseable messages before a ban.
    pub max_garbage: u32,
    /// Requests per minute from a source without a registration.
    pub max_requests: u32,
    /// How long a ban lasts.
    pub ban: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_auth_failures: 10,
            max_garbage: 30,
            max_requests: 600,
            ban: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Entry {
    window_start: Option<Timestamp>,
    auth_failures: u32,
    garbage: u32,
    requests: u32,
    banned_until: Option<Timestamp>,
    reason: &'static str,
}

/// A currently banned source, for the API and logs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ban {
    /// The source address.
    pub ip: IpAddr,
    /// Until when (RFC 3339).
    pub until: String,
    /// Why.
    pub reason: &'static str,
}

/// The per-source counters.
#[derive(Debug, Default)]
pub struct Guard {
    cfg: GuardConfig,
    entries: HashMap<IpAddr, Entry>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Guard {
    /// A guard with these thresholds.
    pub fn new(cfg: GuardConfig) -> Self {
        Self {
            cfg,
            entries: HashMap::new(),
        }
    }

    fn entry(&mut self, ip: IpAddr, now: Timestamp) -> &mut Entry {
        let e = self.entries.entry(ip).or_default();
        if e.window_start.is_none_or(|s| now.since(s) >= WINDOW) {
            e.window_start = Some(now);
            e.auth_failures = 0;
            e.garbage = 0;
            e.requests = 0;
        }
        e
    }

    /// Whether messages from `ip` are dropped now.
    pub fn is_banned(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        match self.entries.get(&ip).and_then(|e| e.banned_until) {
            Some(until) if until > now => true,
            Some(_) => {
                if let Some(e) = self.entries.get_mut(&ip) {
                    e.banned_until = None;
                }
                false
            }
            None => false,
        }
    }

    /// Counts a request; `false` when the source exceeds the rate limit
    /// (`registered` sources are never limited).
    pub fn allow_request(&mut self, ip: IpAddr, registered: bool, now: Timestamp) -> bool {
        let max = self.cfg.max_requests;
        let e = self.entry(ip, now);
        e.requests += 1;
        registered || e.requests <= max
    }

    /// Counts a failed authentication; returns `true` if this banned the source.
    pub fn auth_failed(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        let (max, ban) = (self.cfg.max_auth_failures, self.cfg.ban);
        let e = self.entry(ip, now);
        e.auth_failures += 1;
        Self::maybe_ban(
            e,
            e.auth_failures > max,
            "authentication failures",
            ban,
            now,
            ip,
        )
    }

    /// Counts an unparseable message; returns `true` if this banned the source.
    pub fn garbage(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        let (max, ban) = (self.cfg.max_garbage, self.cfg.ban);
        let e = self.entry(ip, now);
        e.garbage += 1;
        Self::maybe_ban(e, e.garbage > max, "malformed messages", ban, now, ip)
    }

    fn maybe_ban(
        e: &mut Entry,
        over: bool,
        reason: &'static str,
        ban: Duration,
        now: Timestamp,
        ip: IpAddr,
    ) -> bool {
        if over && e.banned_until.is_none_or(|u| u <= now) {
            e.banned_until = Some(now.plus(ban));
            e.reason = reason;
            tracing::warn!(%ip, reason, ban_secs = ban.as_secs(), "SIP source banned");
            return true;
        }
        false
    }

    /// Current bans.
    pub fn bans(&self, now: Timestamp) -> Vec<Ban> {
        let mut v: Vec<Ban> = self
            .entries
            .iter()
            .filter_map(|(ip, e)| {
                e.banned_until.filter(|u| *u > now).map(|u| Ban {
                    ip: *ip,
                    until: u.to_string(),
                    reason: e.reason,
                })
            })
            .collect();
        v.sort_by_key(|b| b.ip);
        v
    }

    /// Lifts the ban on `ip` (an administrator decided the source is
    /// friendly, e.g. a phone that had the wrong password). Its counters are
    /// reset too, so the next failure does not ban it again at once.
    /// Returns whether it was banned.
    pub fn unban(&mut self, ip: IpAddr, now: Timestamp) -> bool {
        let banned = self
            .entries
            .get(&ip)
            .and_then(|e| e.banned_until)
            .is_some_and(|u| u > now);
        if banned {
            self.entries.remove(&ip);
            tracing::info!(%ip, "SIP source unbanned");
        }
        banned
    }

    /// Forgets quiet sources (bounded memory under a scan from many IPs).
    pub fn prune(&mut self, now: Timestamp) {
        self.entries.retain(|_, e| {
            e.banned_until.is_some_and(|u| u > now)
                || e.window_start.is_some_and(|s| now.since(s) < WINDOW)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_255_200_000 + secs * 1000)
    }

    #[test]
    fn bans_after_failures_and_lifts_after_the_ban() {
        let mut g = Guard::new(GuardConfig {
            max_auth_failures: 3,
            ..GuardConfig::default()
        });
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        for i in 0..3 {
            assert!(!g.auth_failed(ip, t(i)));
        }
        assert!(g.auth_failed(ip, t(4)), "the 4th failure bans");
        assert!(g.is_banned(ip, t(5)));
        assert_eq!(g.bans(t(5))[0].reason, "authentication failures");
        assert!(!g.is_banned(ip, t(4 + 601)), "ban lifted");
        assert!(g.bans(t(700)).is_empty());
        g.prune(t(2000));
        assert!(g.entries.is_empty());
    }

    #[test]
    fn unban_lifts_the_ban_and_resets_the_counters() {
        let mut g = Guard::new(GuardConfig {
            max_auth_failures: 1,
            ..GuardConfig::default()
        });
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        let other: IpAddr = "203.0.113.10".parse().expect("ip");
        assert!(!g.unban(ip, t(0)), "not banned yet");
        g.auth_failed(ip, t(0));
        assert!(g.auth_failed(ip, t(1)));
        assert!(g.unban(ip, t(2)));
        assert!(!g.is_banned(ip, t(2)) && g.bans(t(2)).is_empty());
        assert!(!g.auth_failed(ip, t(3)), "the counters start afresh");
        assert!(!g.unban(other, t(3)));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut g = Guard::new(GuardConfig {
            max_auth_failures: 3,
            ..GuardConfig::default()
        });
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        for i in 0..10 {
            assert!(
                !g.auth_failed(ip, t(i * 30)),
                "one failure every 30 s never bans"
            );
        }
        assert!(!g.is_banned(ip, t(301)));
    }

    #[test]
    fn registered_sources_are_not_rate_limited() {
        let mut g = Guard::new(GuardConfig {
            max_requests: 5,
            ..GuardConfig::default()
        });
        let scanner: IpAddr = "203.0.113.9".parse().expect("ip");
        let phone: IpAddr = "192.168.1.20".parse().expect("ip");
        let allowed = (0..10)
            .filter(|_| g.allow_request(scanner, false, t(0)))
            .count();
        assert_eq!(allowed, 5);
        assert!((0..100).all(|_| g.allow_request(phone, true, t(0))));
    }
}
