//! The `acme_certificate` and `acme_state` tables (migration 009). Moves
//! sealed bytes only; sealing is the service's job.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Timestamp;
use crate::store::StoreError;

/// The stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The name it was ordered for.
    pub name: String,
    /// PEM chain, leaf first.
    pub chain_pem: String,
    /// The private key, sealed with context [`CERT_KEY_CONTEXT`].
    pub key_sealed: Vec<u8>,
    /// When it was obtained.
    pub obtained_at: String,
}

/// Sealing context of the certificate's private key.
pub const CERT_KEY_CONTEXT: &str = "acme.certificate_key";
/// `secrets` key (and sealing context) of the account key.
pub const ACCOUNT_KEY: &str = "acme.account_key";

/// The attempts' bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptState {
    /// The account URL at the CA.
    pub account_url: Option<String>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<Timestamp>,
    /// Why it failed (`None`: it succeeded, or none was made).
    pub last_error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Not before this time again (backoff).
    pub retry_at: Option<Timestamp>,
}

/// The certificate, if one was obtained.
pub fn certificate(conn: &Connection) -> Result<Option<StoredCertificate>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, chain_pem, key_sealed, obtained_at FROM acme_certificate WHERE id = 1",
            [],
            |r| {
                Ok(StoredCertificate {
                    name: r.get(0)?,
                    chain_pem: r.get(1)?,
                    key_sealed: r.get(2)?,
                    obtained_at: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Replaces the certificate (chain and key together) and records the
/// successful attempt, in one transaction.
#[allow(clippy::too_many_arguments)]
pub fn save_certificate(
    conn: &mut Connection,
    cert: &StoredCertificate,
    not_before: Timestamp,
    not_after: Timestamp,
    issuer: &str,
    directory_url: &str,
    account_url: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO acme_certificate (id, name, chain_pem, key_sealed, not_before, not_after, issuer, obtained_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, chain_pem = excluded.chain_pem,
           key_sealed = excluded.key_sealed, not_before = excluded.not_before,
           not_after = excluded.not_after, issuer = excluded.issuer, obtained_at = excluded.obtained_at",
        params![
            cert.name,
            cert.chain_pem,
            cert.key_sealed,
            not_before.to_string(),
            not_after.to_string(),
            issuer,
            now.to_string()
        ],
    )?;
    tx.execute(
        "INSERT INTO acme_state (id, directory_url, account_url, last_attempt_at, last_error, failures, retry_at, updated_at)
         VALUES (1, ?1, ?2, ?3, NULL, 0, NULL, ?3)
         ON CONFLICT (id) DO UPDATE SET directory_url = excluded.directory_url,
           account_url = excluded.account_url, last_attempt_at = excluded.last_attempt_at,
           last_error = NULL, failures = 0, retry_at = NULL, updated_at = excluded.updated_at",
        params![directory_url, account_url, now.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Records a failed attempt.
pub fn save_failure(
    conn: &Connection,
    error: &str,
    failures: u32,
    retry_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO acme_state (id, last_attempt_at, last_error, failures, retry_at, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?1)
         ON CONFLICT (id) DO UPDATE SET last_attempt_at = excluded.last_attempt_at,
           last_error = excluded.last_error, failures = excluded.failures,
           retry_at = excluded.retry_at, updated_at = excluded.updated_at",
        params![now.to_string(), error, failures, retry_at.to_string()],
    )?;
    Ok(())
}

/// The attempts' bookkeeping (defaults when none was made).
pub fn attempt_state(conn: &Connection) -> Result<AttemptState, StoreError> {
    let ts = |s: Option<String>| s.and_then(|s| Timestamp::parse_rfc3339(&s));
    Ok(conn
        .query_row(
            "SELECT account_url, last_attempt_at, last_error, failures, retry_at FROM acme_state WHERE id = 1",
            [],
            |r| {
                Ok(AttemptState {
                    account_url: r.get(0)?,
                    last_attempt_at: ts(r.get(1)?),
                    last_error: r.get(2)?,
                    failures: r.get(3)?,
                    retry_at: ts(r.get(4)?),
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn certificate_and_attempts_round_trip() {
        let mut conn = db();
        assert_eq!(certificate(&conn).expect("read"), None);
        assert_eq!(attempt_state(&conn).expect("read"), AttemptState::default());
        save_failure(&conn, "port 80 closed", 1, t(60), t(0)).expect("failure");
        let s = attempt_state(&conn).expect("read");
        assert_eq!(
            (s.failures, s.last_error.as_deref()),
            (1, Some("port 80 closed"))
        );
        assert_eq!(s.retry_at, Some(t(60)));
        let cert = StoredCertificate {
            name: "pi.example.net".into(),
            chain_pem: "PEM".into(),
            key_sealed: vec![1, 2, 3],
            obtained_at: t(5).to_string(),
        };
        save_certificate(
            &mut conn,
            &cert,
            t(0),
            t(90),
            "Pebble",
            "https://ca/dir",
            "https://ca/acct/1",
            t(5),
        )
        .expect("save");
        save_certificate(
            &mut conn,
            &cert,
            t(0),
            t(90),
            "Pebble",
            "https://ca/dir",
            "https://ca/acct/1",
            t(5),
        )
        .expect("replace");
        assert_eq!(certificate(&conn).expect("read"), Some(cert));
        let s = attempt_state(&conn).expect("read");
        assert_eq!(
            (s.failures, s.last_error, s.retry_at),
            (0, None, None),
            "success clears the failure"
        );
        assert_eq!(s.account_url.as_deref(), Some("https://ca/acct/1"));
    }
}
