//! How the internet reaches this home: the certificate Twilio sees, the
//! public name against the router's public address, and the router's
//! forwards. The facts come from the database (the ACME certificate, the
//! router's state as last found) so the command line and the running
//! appliance report the same; the running appliance passes the certificate
//! it actually serves instead.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{certificate, forwards, public_address, Check};
use crate::certs::{der, CertFacts};
use crate::clock::Timestamp;
use crate::netaddr::{persist, MappingState};

/// Longest wait for the public name's DNS answer.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the three checks need.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The certificate served on HTTPS and SIP over TLS (`None`: none is).
    pub certificate: Option<CertFacts>,
    /// The host of `system.public_url`.
    pub public_name: Option<String>,
    /// The public address: `media.public_ip` when set, else the one found.
    pub public_ip: Option<IpAddr>,
    /// Where the address came from (`setting`, `upnp`, `nat-pmp`, `stun`…).
    pub source: String,
    /// The forwards asked of the router (empty unless the admin agreed).
    pub mappings: Vec<MappingState>,
    /// Whether the admin agreed to let Homeline ask the router.
    pub auto_forward: bool,
}

/// Reads the facts from the database. `configured_ip` is `media.public_ip`;
/// `served` the certificate the running appliance serves (`None` on the
/// command line: then the stored ACME certificate, or the self-signed one
/// in `<data>/tls/` when HTTPS is on).
pub fn gather(
    conn: &Connection,
    data_dir: &Path,
    https_on: bool,
    configured_ip: Option<IpAddr>,
    served: Option<CertFacts>,
) -> Result<Facts, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let (found_ip, source, mappings, auto_forward) = persist::doctor_facts(conn).map_err(e)?;
    let (public_ip, source) = match configured_ip {
        Some(ip) => (Some(ip), "setting".to_string()),
        None => (found_ip, source.as_str().to_string()),
    };
    let certificate = match served {
        Some(facts) => Some(facts),
        None => stored_certificate(conn, data_dir, https_on)?,
    };
    let public_name = crate::sysconfig::public_url(conn)
        .map_err(e)?
        .and_then(|url| crate::acme::public_name(&url));
    Ok(Facts {
        certificate,
        public_name,
        public_ip,
        source,
        mappings,
        auto_forward,
    })
}

/// The stored ACME certificate, else the self-signed fallback when HTTPS is
/// served at all.
fn stored_certificate(
    conn: &Connection,
    data_dir: &Path,
    https_on: bool,
) -> Result<Option<CertFacts>, String> {
    let last_error = crate::acme::store::attempt_state(conn)
        .map_err(|e| e.to_string())?
        .last_error;
    let pem = match crate::acme::store::certificate(conn).map_err(|e| e.to_string())? {
        Some(stored) => Some(stored.chain_pem.into_bytes()),
        None if https_on => std::fs::read(data_dir.join("tls").join("cert.pem")).ok(),
        None => None,
    };
    let Some(pem) = pem else {
        return Ok(None);
    };
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or("the stored certificate holds no PEM certificate")?
        .map_err(|e| format!("the stored certificate cannot be read: {e}"))?;
    let parsed =
        der::read(&leaf).map_err(|e| format!("the stored certificate cannot be read: {e}"))?;
    Ok(Some(CertFacts {
        names: parsed.names,
        not_before: parsed.not_before,
        not_after: parsed.not_after,
        issuer: parsed.issuer,
        self_signed: parsed.self_signed,
        last_error,
    }))
}

/// What DNS answers for `name`, within [`RESOLVE_TIMEOUT`] (empty when it
/// does not answer: the check then says the name does not resolve).
fn resolve(name: &str) -> Vec<IpAddr> {
    let (tx, rx) = mpsc::channel();
    let target = format!("{name}:443");
    std::thread::spawn(move || {
        let found: Vec<IpAddr> = target
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default();
        let _ = tx.send(found);
    });
    rx.recv_timeout(RESOLVE_TIMEOUT).unwrap_or_default()
}

/// The certificate, public address and forwards checks. The name is looked
/// up only when there is an address to compare it with and it is a name.
pub fn checks(facts: &Facts, now: Timestamp) -> Vec<Check> {
    let name = facts.public_name.as_deref();
    let needs_lookup = facts.public_ip.is_some()
        && name.is_some_and(|n| n.parse::<IpAddr>().is_err() && !n.is_empty());
    let resolved = match name {
        Some(n) if needs_lookup => resolve(n),
        _ => Vec::new(),
    };
    vec![
        certificate::check(facts.certificate.as_ref(), name, now),
        public_address::check(facts.public_ip, &facts.source, name, &resolved),
        forwards::check(&facts.mappings, facts.auto_forward),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_address_no_name_is_looked_up_and_each_check_reports() {
        let facts = Facts {
            public_name: Some("home.invalid".into()),
            source: "none".into(),
            ..Facts::default()
        };
        let checks = checks(&facts, Timestamp::from_unix_millis(1_800_000_000_000));
        let ids: Vec<_> = checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, ["certificate", "public_address", "forwards"]);
        assert_eq!(
            checks[0].status,
            super::super::Status::Error,
            "no certificate served"
        );
        assert_eq!(
            checks[1].status,
            super::super::Status::Warning,
            "address unknown"
        );
    }
}
