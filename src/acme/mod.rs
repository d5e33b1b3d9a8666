//! The ACME client (RFC 8555) that obtains and renews the certificate for
//! the household's public name (the host of `system.public_url`; there is
//! no second source for it), so that Twilio, which refuses self-signed
//! certificates, can call the webhooks over HTTPS.
//!
//! * [`jws`]: the account key (P-256, sealed in `secrets`) and ES256 JWS.
//! * [`client`]: directory, nonces, signed POSTs, problem documents (ureq,
//!   blocking, on a blocking thread).
//! * [`order`]: one issuance with HTTP-01 (answered from memory by the plain
//!   HTTP listener's `/.well-known/acme-challenge/{token}`).
//! * [`store`]: the `acme_certificate` and `acme_state` tables.
//! * [`service`]: the background task: issue when there is none, renew at
//!   two-thirds of the lifetime, back off on failure, alert 14 days before
//!   expiry, install into the shared [`crate::certs::CertStore`].

pub mod client;
pub mod jws;
pub mod order;
pub mod service;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use service::{Acme, CertificateView, State};

/// Why an issuance failed, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcmeError {
    /// The CA could not be reached.
    #[error("{step}: could not reach the certificate authority at {url}: {reason}")]
    Network {
        /// What we were doing.
        step: &'static str,
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The CA refused a request (its problem document).
    #[error("{step}: the certificate authority refused ({kind}): {detail}")]
    Problem {
        /// What we were doing.
        step: &'static str,
        /// The problem type, e.g. `urn:ietf:params:acme:error:rateLimited`.
        kind: String,
        /// Its detail.
        detail: String,
    },
    /// The CA could not validate the HTTP-01 challenge.
    #[error("the certificate authority could not validate {url}: {detail} ({kind}) — {}", challenge_advice(.kind))]
    Challenge {
        /// The URL it fetched.
        url: String,
        /// The problem type.
        kind: String,
        /// Its detail.
        detail: String,
    },
    /// The CA's answer made no sense, or a local step failed.
    #[error("{step}: {reason}")]
    Protocol {
        /// What we were doing.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// Nothing to ask for yet.
    #[error("{0}")]
    NotConfigured(String),
}

impl AcmeError {
    /// A protocol error.
    pub fn protocol(step: &'static str, reason: impl Into<String>) -> AcmeError {
        AcmeError::Protocol {
            step,
            reason: reason.into(),
        }
    }

    /// A transport error (never includes anything secret: ureq names the
    /// host at most).
    pub fn network(step: &'static str, url: &str, e: &ureq::Error) -> AcmeError {
        let reason = match e {
            ureq::Error::Timeout(_) => "no answer in time".to_string(),
            ureq::Error::HostNotFound => "the name does not resolve".to_string(),
            ureq::Error::ConnectionFailed => "the connection was refused or failed".to_string(),
            ureq::Error::Tls(t) => format!("TLS: {t}"),
            other => other.to_string(),
        };
        AcmeError::Network {
            step,
            url: url.to_string(),
            reason,
        }
    }
}

impl From<crate::store::StoreError> for AcmeError {
    fn from(e: crate::store::StoreError) -> Self {
        AcmeError::protocol("using the database", e.to_string())
    }
}

/// What to do when the CA could not fetch the challenge.
fn challenge_advice(kind: &str) -> &'static str {
    match kind.rsplit(':').next().unwrap_or("") {
        "connection" => "forward port 80 (TCP) on the router to this Pi, and check that the public name points at your public address",
        "dns" => "the public name does not resolve: check the domain or the dynamic-DNS name",
        "unauthorized" | "incorrectResponse" => "something other than this Pi answered on port 80: check that the router forwards port 80 to this Pi",
        "tls" => "the CA's connection failed during TLS: check that port 80 is forwarded to this Pi, not to another device",
        _ => "check that http://<public name>/ reaches this Pi from the internet (port 80 forwarded on the router)",
    }
}

/// The HTTP-01 answers being validated right now, by token, served by
/// `GET /.well-known/acme-challenge/{token}` from memory (no database).
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

/// Withdraws a published answer when dropped (the issuance ended).
#[derive(Debug)]
pub struct Published {
    challenges: Challenges,
    token: String,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.challenges
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
    }
}

impl Challenges {
    /// Publishes `key_authorization` for `token` until the guard drops.
    #[must_use]
    pub fn publish(&self, token: &str, key_authorization: &str) -> Published {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), key_authorization.to_string());
        Published {
            challenges: self.clone(),
            token: token.to_string(),
        }
    }

    /// The answer for `token`, if it is being validated.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// The host of a public URL (`https://pi.example.net:8443/x` → `pi.example.net`),
/// lower case; `None` for an IP address (no CA issues for those) or junk.
pub fn public_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return None;
    }
    let host = host
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
        return None;
    }
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_name_is_the_host_of_the_url() {
        assert_eq!(
            public_name("https://Pi.Example.net/").as_deref(),
            Some("pi.example.net")
        );
        assert_eq!(
            public_name("https://pi.example.net:8443/x").as_deref(),
            Some("pi.example.net")
        );
        assert_eq!(
            public_name("https://203.0.113.7/"),
            None,
            "no certificates for addresses"
        );
        assert_eq!(public_name("https://[2001:db8::1]/"), None);
        assert_eq!(public_name("https://localhost/"), None);
        assert_eq!(public_name("nonsense"), None);
    }

    #[test]
    fn challenges_are_withdrawn_when_the_guard_drops() {
        let c = Challenges::default();
        let guard = c.publish("tok", "tok.thumb");
        assert_eq!(c.answer("tok").as_deref(), Some("tok.thumb"));
        assert_eq!(c.answer("other"), None);
        drop(guard);
        assert_eq!(c.answer("tok"), None);
    }

    #[test]
    fn a_failed_challenge_says_what_to_do() {
        let e = AcmeError::Challenge {
            url: "http://pi.example.net/.well-known/acme-challenge/abc".into(),
            kind: "urn:ietf:params:acme:error:connection".into(),
            detail: "connection refused".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("http://pi.example.net/.well-known/acme-challenge/abc"),
            "{text}"
        );
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("forward port 80"), "{text}");
    }
}
