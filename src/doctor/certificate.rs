//! The doctor's certificate check: is the certificate served on HTTPS and
//! SIP over TLS one Twilio accepts (issued by a CA, for the public name,
//! not expired), and will it stay so (renewal working, time left)?

use super::Check;
use crate::certs::CertFacts;
use crate::clock::Timestamp;

const ID: &str = "certificate";
const TITLE: &str = "HTTPS certificate";
/// Less time than this left is a warning (renewal normally happens with a
/// third of the lifetime left, about 30 days for a 90-day certificate).
const WARN_BEFORE_MS: i64 = 14 * 86_400 * 1000;

fn day(t: Timestamp) -> String {
    t.to_string()[..10].to_string()
}

/// `facts`: the served certificate (`None`: none is served at all);
/// `public_name`: the host of `system.public_url`, if set.
pub fn check(facts: Option<&CertFacts>, public_name: Option<&str>, now: Timestamp) -> Check {
    let Some(facts) = facts else {
        return Check::error(
            ID,
            TITLE,
            "no certificate is served",
            "Set http.tls_listen (0.0.0.0:443 on the appliance image) and restart Homeline.",
        );
    };
    let name = public_name.filter(|n| !n.is_empty());
    if facts.self_signed {
        return match name {
            Some(name) => Check::error(
                ID,
                TITLE,
                format!(
                    "the certificate is self-signed; Twilio refuses it, so webhooks to https://{name}/ fail{}",
                    facts
                        .last_error
                        .as_deref()
                        .map(|e| format!(". Last attempt: {e}"))
                        .unwrap_or_default()
                ),
                "Turn on the certificate in Settings → HTTPS certificate and press \"Get certificate now\"; port 80 must be forwarded on the router to this Pi.",
            ),
            None => Check::warning(
                ID,
                TITLE,
                "a self-signed certificate is served and no public name is set",
                "Set the public URL (your domain or dynamic-DNS name) in the setup wizard's \"Reaching the Pi\" step, then get a certificate.",
            ),
        };
    }
    if let Some(name) = name {
        if !facts.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Check::error(
                ID,
                TITLE,
                format!(
                    "the certificate is for {} but the public name is {name}",
                    facts.names.join(", ")
                ),
                "Press \"Get certificate now\" in Settings → HTTPS certificate to get one for the current public name.",
            );
        }
    }
    if now >= facts.not_after {
        return Check::error(
            ID,
            TITLE,
            format!("the certificate expired on {}", day(facts.not_after)),
            renewal_fix(facts),
        );
    }
    let left_ms = facts.not_after.unix_millis() - now.unix_millis();
    if left_ms < WARN_BEFORE_MS {
        return Check::warning(
            ID,
            TITLE,
            format!(
                "the certificate expires in {} days ({})",
                left_ms / 86_400_000,
                day(facts.not_after)
            ),
            renewal_fix(facts),
        );
    }
    if let Some(e) = &facts.last_error {
        return Check::warning(
            ID,
            TITLE,
            format!(
                "valid until {}, but the last renewal failed: {e}",
                day(facts.not_after)
            ),
            renewal_fix(facts),
        );
    }
    Check::ok(
        ID,
        TITLE,
        format!(
            "valid for {} until {}, issued by {}",
            facts.names.join(", "),
            day(facts.not_after),
            facts.issuer
        ),
    )
}

fn renewal_fix(facts: &CertFacts) -> String {
    match &facts.last_error {
        Some(e) => format!("Renewal failed: {e}. Fix that, then press \"Get certificate now\" in Settings → HTTPS certificate."),
        None => "Press \"Get certificate now\" in Settings → HTTPS certificate; check that port 80 is forwarded to this Pi.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const DAY: i64 = 86_400_000;

    fn facts(days_left: i64, self_signed: bool, error: Option<&str>) -> CertFacts {
        CertFacts {
            names: vec!["pi.example.net".into()],
            not_before: Timestamp::from_unix_millis(0),
            not_after: Timestamp::from_unix_millis(100 * DAY + days_left * DAY),
            issuer: "R11".into(),
            self_signed,
            last_error: error.map(str::to_string),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(100 * DAY)
    }

    #[test]
    fn ok_when_issued_matching_and_far_from_expiry() {
        let c = check(Some(&facts(60, false, None)), Some("pi.example.net"), now());
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.detail.contains("R11") && c.fix.is_none(), "{c:?}");
        let c = check(Some(&facts(60, false, None)), Some("PI.example.net"), now());
        assert_eq!(c.status, Status::Ok, "names compare without case");
    }

    #[test]
    fn warnings_for_little_time_left_or_a_failed_renewal() {
        let c = check(Some(&facts(10, false, None)), Some("pi.example.net"), now());
        assert_eq!(c.status, Status::Warning, "{c:?}");
        assert!(c.detail.contains("10 days"), "{c:?}");
        let c = check(
            Some(&facts(40, false, Some("connection refused"))),
            Some("pi.example.net"),
            now(),
        );
        assert_eq!(c.status, Status::Warning, "{c:?}");
        assert!(c.detail.contains("connection refused"), "{c:?}");
        let c = check(Some(&facts(60, true, None)), None, now());
        assert_eq!(
            c.status,
            Status::Warning,
            "self-signed without a public name"
        );
    }

    #[test]
    fn errors_for_self_signed_mismatch_expired_or_none() {
        let c = check(Some(&facts(60, true, None)), Some("pi.example.net"), now());
        assert_eq!(c.status, Status::Error, "{c:?}");
        assert!(c.detail.contains("Twilio"), "{c:?}");
        let c = check(
            Some(&facts(60, false, None)),
            Some("other.example.net"),
            now(),
        );
        assert_eq!(c.status, Status::Error, "{c:?}");
        assert!(c.detail.contains("other.example.net"), "{c:?}");
        let c = check(Some(&facts(-1, false, None)), Some("pi.example.net"), now());
        assert_eq!(c.status, Status::Error, "{c:?}");
        assert!(c.detail.contains("expired"), "{c:?}");
        let c = check(None, Some("pi.example.net"), now());
        assert_eq!(c.status, Status::Error);
        assert!(c.fix.is_some());
    }
}
