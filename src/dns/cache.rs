//! Answers kept for their TTL, so a busy evening of outgoing calls asks
//! the DNS server once per TTL, not once per call.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Shortest time an answer is kept (a TTL of 0 would mean a lookup per call).
pub const MIN_TTL: Duration = Duration::from_secs(5);
/// Longest time an answer is kept, whatever its TTL says (a moved edge is
/// found within the hour).
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Names kept at most (Homeline resolves a handful).
const MAX_ENTRIES: usize = 64;

/// Addresses by lower-cased name, each with its expiry.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<String, (Vec<IpAddr>, Instant)>,
}

impl Cache {
    /// The addresses of `name`, unless they expired by `now`.
    pub fn get(&self, name: &str, now: Instant) -> Option<&[IpAddr]> {
        self.entries
            .get(&key(name))
            .filter(|(_, expires)| *expires > now)
            .map(|(addrs, _)| addrs.as_slice())
    }

    /// Keeps `addrs` for `ttl` (clamped to [`MIN_TTL`]..[`MAX_TTL`]) from `now`.
    pub fn insert(&mut self, name: &str, addrs: Vec<IpAddr>, ttl: Duration, now: Instant) {
        if addrs.is_empty() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        let ttl = ttl.clamp(MIN_TTL, MAX_TTL);
        self.entries.insert(key(name), (addrs, now + ttl));
    }
}

fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_answer_lives_for_its_ttl() {
        let now = Instant::now();
        let mut c = Cache::default();
        assert!(c.get("edge.example", now).is_none());
        c.insert(
            "Edge.Example.",
            vec![ip("192.0.2.1")],
            Duration::from_secs(60),
            now,
        );
        assert_eq!(
            c.get("edge.example", now + Duration::from_secs(59)),
            Some(&[ip("192.0.2.1")][..])
        );
        assert!(c
            .get("edge.example", now + Duration::from_secs(60))
            .is_none());
    }

    #[test]
    fn ttls_are_clamped() {
        let now = Instant::now();
        let mut c = Cache::default();
        c.insert("a", vec![ip("192.0.2.1")], Duration::ZERO, now);
        assert!(c
            .get("a", now + MIN_TTL - Duration::from_millis(1))
            .is_some());
        assert!(c.get("a", now + MIN_TTL).is_none());
        c.insert(
            "b",
            vec![ip("192.0.2.2")],
            Duration::from_secs(86400 * 7),
            now,
        );
        assert!(c.get("b", now + MAX_TTL).is_none());
    }

    #[test]
    fn nothing_is_cached_for_no_address_and_the_size_is_bounded() {
        let now = Instant::now();
        let mut c = Cache::default();
        c.insert("empty", Vec::new(), Duration::from_secs(60), now);
        assert!(c.get("empty", now).is_none());
        for i in 0..(MAX_ENTRIES * 3) {
            c.insert(
                &format!("n{i}"),
                vec![ip("192.0.2.3")],
                Duration::from_secs(60),
                now,
            );
        }
        assert!(c.entries.len() <= MAX_ENTRIES);
        assert!(c.get(&format!("n{}", MAX_ENTRIES * 3 - 1), now).is_some());
    }
}
