//! The dial plan: what a phone's dialled string means, and whether an
//! outgoing call may go out at all (the toll-fraud guard).
//!
//! A stolen SIP password on a PBX with a Twilio account behind it is a bill
//! of thousands within hours, mostly to premium numbers abroad. So every
//! outgoing call passes three checks here before an INVITE leaves for
//! Twilio: the destination's prefix must be allowed (by default only the
//! home country; in the North American plan the Caribbean and other
//! non-US/Canada area codes, a classic fraud target, need an explicit
//! longer prefix), a cap on concurrent outgoing calls, and a cap on calls
//! per hour. Emergency numbers are never refused.

use std::collections::VecDeque;

use crate::clock::Timestamp;

/// What a dialled string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialed {
    /// Another phone of the household, by its SIP user name.
    Extension(String),
    /// A public number, normalised to E.164 (`+` and 8 to 15 digits).
    Number(String),
    /// An emergency number, passed on as dialled.
    Emergency(String),
    /// The pickup feature code ([`PICKUP_CODE`]): answer a call ringing
    /// elsewhere in the house.
    Pickup,
    /// A Do-Not-Disturb feature code ([`DND_ON_CODE`] or [`DND_OFF_CODE`]):
    /// the calling phone goes into DND (`true`) or comes out of it.
    Dnd(bool),
}

/// The feature code that picks up a call ringing elsewhere in the house.
/// Feature codes are read before anything else, so no extension or number
/// can shadow them.
pub const PICKUP_CODE: &str = "*8";

/// The feature code that puts the calling phone in Do-Not-Disturb.
pub const DND_ON_CODE: &str = "*78";

/// The feature code that takes the calling phone out of Do-Not-Disturb.
pub const DND_OFF_CODE: &str = "*79";

/// Why a dialled string is not a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// Nothing that reads as a number or an extension.
    #[error("{0:?} is not a phone number or an extension")]
    NotANumber(String),
}

/// Why the guard refused an outgoing call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The destination's prefix is not on the allow-list.
    #[error("destination {0} is not in an allowed country or prefix")]
    Destination(String),
    /// Too many outgoing calls at once.
    #[error("{0} outgoing calls are already up (the limit)")]
    Concurrent(usize),
    /// Too many outgoing calls in the last hour.
    #[error("{0} outgoing calls in the last hour (the limit)")]
    Hourly(usize),
}

/// The household's dialling rules (settings `calls.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRules {
    /// The home country calling code, digits only (`1`, `44`, `49`…).
    pub home_country: String,
    /// Allowed E.164 prefixes (digits, no `+`); empty means the home country.
    pub allowed_prefixes: Vec<String>,
    /// Most outgoing calls up at once.
    pub max_concurrent: usize,
    /// Most outgoing calls started per hour.
    pub max_per_hour: usize,
}

/// Area codes of the North American plan outside the US and Canada (and
/// US territories), where "call me back" and premium fraud ends up.
/// Allowed only by a prefix at least as long (e.g. `1876`).
const NANP_RISKY: &[&str] = &[
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "658", "664", "721", "758",
    "767", "784", "809", "829", "849", "868", "869", "876",
];

/// Emergency numbers that always go out.
const EMERGENCY: &[&str] = &["911", "112", "999", "000", "110", "119"];

/// Whether `number` is an emergency number (never refused).
pub fn is_emergency(number: &str) -> bool {
    EMERGENCY.contains(&number)
}

impl DialRules {
    /// Reads what the phone dialled. `is_extension` says whether a string
    /// names one of the household's phones (checked before numbers, so an
    /// extension `100` is not taken for a short number).
    pub fn interpret(
        &self,
        dialed: &str,
        is_extension: impl Fn(&str) -> bool,
    ) -> Result<Dialed, DialError> {
        let raw = dialed.trim();
        match raw {
            PICKUP_CODE => return Ok(Dialed::Pickup),
            DND_ON_CODE => return Ok(Dialed::Dnd(true)),
            DND_OFF_CODE => return Ok(Dialed::Dnd(false)),
            _ => {}
        }
        if is_extension(raw) {
            return Ok(Dialed::Extension(raw.to_string()));
        }
        let digits: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let bad = || DialError::NotANumber(raw.to_string());
        let (plus, body) = match digits.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, digits.as_str()),
        };
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !plus && EMERGENCY.contains(&body) {
            return Ok(Dialed::Emergency(body.to_string()));
        }
        let international = if plus {
            body.to_string()
        } else if let Some(rest) = body
            .strip_prefix("011")
            .filter(|_| self.home_country == "1")
        {
            rest.to_string()
        } else if let Some(rest) = body.strip_prefix("00").filter(|_| self.home_country != "1") {
            rest.to_string()
        } else if self.home_country == "1" {
            match body.len() {
                10 => format!("1{body}"),
                11 if body.starts_with('1') => body.to_string(),
                _ => return Err(bad()),
            }
        } else if let Some(national) = body.strip_prefix('0') {
            format!("{}{national}", self.home_country)
        } else {
            return Err(bad());
        };
        if !(8..=15).contains(&international.len()) || international.starts_with('0') {
            return Err(bad());
        }
        Ok(Dialed::Number(format!("+{international}")))
    }

    /// Whether an E.164 destination may be called: the longest allowed
    /// prefix that matches must be longer than any risky prefix that does.
    pub fn destination_allowed(&self, e164: &str) -> bool {
        let digits = e164.trim_start_matches('+');
        let home = [self.home_country.clone()];
        let allowed: &[String] = if self.allowed_prefixes.is_empty() {
            &home
        } else {
            &self.allowed_prefixes
        };
        let best_allow = allowed
            .iter()
            .filter(|p| !p.is_empty() && digits.starts_with(p.as_str()))
            .map(String::len)
            .max();
        let Some(best_allow) = best_allow else {
            return false;
        };
        let risky = NANP_RISKY
            .iter()
            .map(|a| format!("1{a}"))
            .filter(|p| digits.starts_with(p.as_str()))
            .map(|p| p.len())
            .max()
            .unwrap_or(0);
        best_allow >= risky
    }
}

/// The rate side of the guard: when outgoing calls started, in a sliding
/// hour. Lives in the call layer (RAM only: a restart forgets it, which
/// costs at most one hour's cap).
#[derive(Debug, Default)]
pub struct TollGuard {
    started: VecDeque<Timestamp>,
}

impl TollGuard {
    /// Decides on an outgoing call to `e164` with `active` outgoing calls
    /// up; on success the call counts towards the hourly cap.
    pub fn admit(
        &mut self,
        rules: &DialRules,
        e164: &str,
        active: usize,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        if !rules.destination_allowed(e164) {
            return Err(Refusal::Destination(e164.to_string()));
        }
        if active >= rules.max_concurrent {
            return Err(Refusal::Concurrent(active));
        }
        let hour = std::time::Duration::from_secs(3600);
        while self.started.front().is_some_and(|t| now.since(*t) >= hour) {
            self.started.pop_front();
        }
        if self.started.len() >= rules.max_per_hour {
            return Err(Refusal::Hourly(self.started.len()));
        }
        self.started.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn us() -> DialRules {
        DialRules {
            home_country: "1".into(),
            allowed_prefixes: vec![],
            max_concurrent: 2,
            max_per_hour: 3,
        }
    }

    fn no_ext(_: &str) -> bool {
        false
    }

    #[test]
    fn normalises_what_people_dial() {
        let r = us();
        assert_eq!(
            r.interpret("(415) 555-0100", no_ext),
            Ok(Dialed::Number("+14155550100".into()))
        );
        assert_eq!(
            r.interpret("1 415 555 0100", no_ext),
            Ok(Dialed::Number("+14155550100".into()))
        );
        assert_eq!(
            r.interpret("011 44 20 7946 0000", no_ext),
            Ok(Dialed::Number("+442079460000".into()))
        );
        assert_eq!(
            r.interpret("+44 20 7946 0000", no_ext),
            Ok(Dialed::Number("+442079460000".into()))
        );
        assert_eq!(
            r.interpret("911", no_ext),
            Ok(Dialed::Emergency("911".into()))
        );
        assert_eq!(
            r.interpret("alice", |s| s == "alice"),
            Ok(Dialed::Extension("alice".into()))
        );
        assert!(r.interpret("5550100", no_ext).is_err());
        assert!(r.interpret("*69", no_ext).is_err());
        assert_eq!(r.interpret(" *8 ", |_| true), Ok(Dialed::Pickup));
        assert_eq!(r.interpret("*78", |_| true), Ok(Dialed::Dnd(true)));
        assert_eq!(r.interpret("*79", |_| true), Ok(Dialed::Dnd(false)));
        assert!(r.interpret("*77", no_ext).is_err());
        assert!(r.interpret("", no_ext).is_err());
        let uk = DialRules {
            home_country: "44".into(),
            ..us()
        };
        assert_eq!(
            uk.interpret("020 7946 0000", no_ext),
            Ok(Dialed::Number("+442079460000".into()))
        );
        assert_eq!(
            uk.interpret("0033 1 23 45 67 89", no_ext),
            Ok(Dialed::Number("+33123456789".into()))
        );
        assert_eq!(
            uk.interpret("999", no_ext),
            Ok(Dialed::Emergency("999".into()))
        );
    }

    #[test]
    fn only_allowed_destinations_go_out() {
        let r = us();
        assert!(r.destination_allowed("+14155550100"));
        assert!(!r.destination_allowed("+442079460000"));
        assert!(
            !r.destination_allowed("+18765550100"),
            "Jamaica needs an explicit prefix"
        );
        let r = DialRules {
            allowed_prefixes: vec!["1".into(), "1876".into(), "44".into()],
            ..us()
        };
        assert!(r.destination_allowed("+18765550100"));
        assert!(r.destination_allowed("+442079460000"));
        assert!(!r.destination_allowed("+8821234567"));
    }

    #[test]
    fn caps_concurrent_and_hourly_calls() {
        let r = us();
        let mut g = TollGuard::default();
        let t0 = Timestamp::from_unix_millis(1_800_000_000_000);
        assert_eq!(
            g.admit(&r, "+44201", 0, t0),
            Err(Refusal::Destination("+44201".into()))
        );
        assert_eq!(
            g.admit(&r, "+14155550100", 2, t0),
            Err(Refusal::Concurrent(2))
        );
        for i in 0..3 {
            g.admit(&r, "+14155550100", 0, t0.plus(Duration::from_secs(i)))
                .unwrap();
        }
        assert_eq!(
            g.admit(&r, "+14155550100", 0, t0.plus(Duration::from_secs(60))),
            Err(Refusal::Hourly(3))
        );
        // An hour after the first, one slot is free again.
        assert!(g
            .admit(&r, "+14155550100", 0, t0.plus(Duration::from_secs(3600)))
            .is_ok());
    }
}
