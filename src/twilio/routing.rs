//! The call and message decisions Homeline makes before the rules engine
//! lands: the blocklist (calls and SMS alike), which numbers are ours, and
//! the toll-fraud hook for outgoing calls.
//!
//! Blocklist patterns: `exact` and `prefix` compare digits only (so
//! `+1 555-0100` blocks `+15550100`); `regex` matches the whole number as
//! received (E.164 with `+`), compiled to a size-limited DFA (no
//! backtracking, so a hostile pattern cannot stall a webhook).

use regex_automata::dfa::{dense, Automaton};
use regex_automata::{Anchored, Input};
use rusqlite::Connection;

use crate::store::blocklist::{self, Entry, PatternType};
use crate::store::{Page, StoreError};

/// Largest compiled DFA for one blocklist pattern.
const MAX_DFA_BYTES: usize = 256 * 1024;

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Compiles a blocklist expression the way every match does: anchored at
/// both ends, bytes rather than Unicode, within [`MAX_DFA_BYTES`].
fn compile(pattern: &str) -> Result<dense::DFA<Vec<u32>>, String> {
    dense::Builder::new()
        .configure(dense::Config::new().dfa_size_limit(Some(MAX_DFA_BYTES)))
        .build(&format!("(?-u)(?:{pattern})$"))
        .map_err(|e| {
            // The outermost message ("error building NFA") says little; the
            // innermost cause names the problem ("unclosed group").
            let mut cause: &dyn std::error::Error = &e;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            cause.to_string()
        })
}

/// Whether `number` matches `pattern` fully. A pattern that does not
/// compile (or is too large) matches nothing and is logged.
fn regex_matches(pattern: &str, number: &str) -> bool {
    let dfa = match compile(pattern) {
        Ok(d) => d,
        Err(error) => {
            tracing::warn!(pattern, %error, "blocklist pattern ignored: it does not compile");
            return false;
        }
    };
    matches!(
        dfa.try_search_fwd(&Input::new(number).anchored(Anchored::Yes)),
        Ok(Some(_))
    )
}

/// Whether a new blocklist entry can ever match: `exact` and `prefix`
/// need digits (they compare digits only), `regex` must compile within the
/// size limit. The message is for the person who typed the pattern.
pub fn check_pattern(ty: PatternType, pattern: &str) -> Result<(), String> {
    match ty {
        PatternType::Exact | PatternType::Prefix if digits(pattern).is_empty() => {
            Err("needs at least one digit (only digits are compared)".into())
        }
        PatternType::Exact | PatternType::Prefix => Ok(()),
        PatternType::Regex => compile(pattern)
            .map(|_| ())
            .map_err(|e| format!("not a usable regular expression: {e}")),
    }
}

/// The entry that refuses calls and messages from `number`, if any (the
/// oldest, when several match). The same decision the webhooks make, so
/// the web UI's "would this be blocked?" answers what a real call meets.
pub fn blocking_entry(conn: &Connection, number: &str) -> Result<Option<Entry>, StoreError> {
    let entries = blocklist::list(conn, Page::ALL)?.items;
    Ok(first_match(&entries, number).cloned())
}

/// Whether `number` matches `pattern` the way the blocklist compares:
/// digits only for `exact` and `prefix`, the whole number for `regex`.
/// Routing rules' caller conditions use the same comparison.
pub fn pattern_matches(ty: PatternType, pattern: &str, number: &str) -> bool {
    match ty {
        PatternType::Exact => {
            let d = digits(number);
            !d.is_empty() && digits(pattern) == d
        }
        PatternType::Prefix => {
            let p = digits(pattern);
            !p.is_empty() && digits(number).starts_with(&p)
        }
        PatternType::Regex => regex_matches(pattern, number),
    }
}

/// The oldest of `entries` (as listed: newest first) that matches `number`.
pub fn first_match<'a>(entries: &'a [Entry], number: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .rev()
        .find(|e| pattern_matches(e.pattern_type, &e.pattern, number))
}

/// Whether calls and messages from `number` are refused.
pub fn is_blocked(conn: &Connection, number: &str) -> Result<bool, StoreError> {
    Ok(blocking_entry(conn, number)?.is_some())
}

/// Whether `s` is an E.164 number: `+`, a non-zero digit, at most 15 digits.
pub fn is_e164(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_digit())
        && !rest.starts_with('0')
}

/// The user part of a SIP URI (`sip:+15551230001@domain;transport=tls` →
/// `+15551230001`), or the value itself if it is not a URI.
pub fn sip_user(uri: &str) -> &str {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    let user = rest.split('@').next().unwrap_or("");
    user.split([';', '?']).next().unwrap_or("")
}

/// The toll-fraud decision for an outgoing call from a phone to `dest`
/// (E.164) with caller ID `did`.
///
/// The call layer has already applied the whole toll-fraud guard
/// ([`crate::dialplan`]: allow-list and rate caps) before its INVITE left;
/// this is the second check Twilio's request gets, without the rate caps
/// (the call was already counted): emergency numbers go out, anything else
/// must be E.164, allowed by the dial rules and not blocklisted.
pub fn outgoing_call_allowed(
    conn: &Connection,
    did: &str,
    dest: &str,
    rules: &crate::dialplan::DialRules,
) -> Result<Result<(), String>, StoreError> {
    if crate::dialplan::is_emergency(dest) {
        return Ok(Ok(()));
    }
    if !is_e164(dest) {
        return Ok(Err(format!("{dest:?} is not an E.164 number")));
    }
    if dest == did {
        return Ok(Err("a number cannot call itself".into()));
    }
    if !rules.destination_allowed(dest) {
        return Ok(Err(format!(
            "destination {dest} is not in an allowed country or prefix"
        )));
    }
    if is_blocked(conn, dest)? {
        return Ok(Err("the destination is on the blocklist".into()));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn blocklist_exact_prefix_and_regex() {
        let conn = db();
        blocklist::insert(&conn, "+1 555-0100", PatternType::Exact, "", t(0)).expect("insert");
        blocklist::insert(&conn, "+1900", PatternType::Prefix, "", t(0)).expect("insert");
        blocklist::insert(&conn, r"\+44(70|76)\d+", PatternType::Regex, "", t(0)).expect("insert");
        blocklist::insert(&conn, "(unclosed", PatternType::Regex, "", t(0)).expect("insert");
        blocklist::insert(&conn, "(a+)+(b+)+(c+)+$", PatternType::Regex, "", t(0)).expect("insert");
        for blocked in [
            "+15550100",
            "+19005551234",
            "+447012345678",
            "+447698765432",
        ] {
            assert!(is_blocked(&conn, blocked).expect("check"), "{blocked}");
        }
        for free in [
            "+15550101",
            "+15559000000",
            "+447112345678",
            "x+447012345678",
            "",
        ] {
            assert!(!is_blocked(&conn, free).expect("check"), "{free}");
        }
    }

    #[test]
    fn the_blocking_entry_is_named_and_patterns_are_checked() {
        let conn = db();
        let prefix = blocklist::insert(&conn, "+1900", PatternType::Prefix, "premium", t(0))
            .expect("insert");
        blocklist::insert(&conn, "+19005551234", PatternType::Exact, "", t(1)).expect("insert");
        let hit = blocking_entry(&conn, "+19005551234").expect("check");
        assert_eq!(hit.map(|e| e.id), Some(prefix), "the oldest match is named");
        assert_eq!(blocking_entry(&conn, "+15550100").expect("check"), None);
        assert!(check_pattern(PatternType::Exact, "+1 555-0100").is_ok());
        assert!(check_pattern(PatternType::Prefix, "+").is_err());
        assert!(check_pattern(PatternType::Regex, r"\+1900\d*").is_ok());
        let unclosed = check_pattern(PatternType::Regex, "(unclosed").expect_err("unclosed");
        assert!(unclosed.contains("unclosed group"), "{unclosed}");
        assert!(
            check_pattern(PatternType::Regex, r"\w{1000}\w{1000}\w{1000}").is_err(),
            "too large a DFA is refused when typed, not ignored later"
        );
    }

    #[test]
    fn numbers_and_sip_users() {
        assert!(is_e164("+15551230001"));
        for bad in [
            "15551230001",
            "+0555",
            "+1",
            "+1234567890123456",
            "+1555x",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
        assert_eq!(
            sip_user("sip:+15551230001@home.sip.twilio.com;transport=tls"),
            "+15551230001"
        );
        assert_eq!(sip_user("sips:alice@x"), "alice");
        assert_eq!(sip_user("+15551230001"), "+15551230001");
        let conn = db();
        let rules = crate::dialplan::DialRules {
            home_country: "1".into(),
            allowed_prefixes: vec![],
            max_concurrent: 2,
            max_per_hour: 20,
        };
        let allowed = |dest: &str| {
            outgoing_call_allowed(&conn, "+15551230001", dest, &rules)
                .expect("ok")
                .is_ok()
        };
        assert!(allowed("+15559870000"));
        assert!(allowed("911"), "emergency numbers always go out");
        assert!(!allowed("0900123"));
        assert!(!allowed("+442079460000"), "not in the allow-list");
        assert!(!allowed("+18765550100"), "a risky NANP area code");
    }
}
