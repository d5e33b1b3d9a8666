//! The certificate the appliance serves, shared by HTTPS and SIP over TLS,
//! replaceable while running.
//!
//! [`CertStore`] is a rustls [`ResolvesServerCert`]: every TLS handshake asks
//! it for the current certificate, so installing a renewed one takes effect
//! on the next handshake, while connections already open (a phone's SIP/TLS
//! connection, a call in progress) keep the session they negotiated. Until
//! an ACME certificate exists the self-signed one from `<data>/tls/` is
//! served.

pub mod der;

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::clock::Timestamp;

/// What is known about a certificate, for the API, the renewal schedule and
/// the doctor's certificate check (`doctor::certificate::check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The DNS names it is valid for.
    pub names: Vec<String>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Who issued it (common name or organisation).
    pub issuer: String,
    /// Issued by itself (the appliance's fallback, refused by Twilio).
    pub self_signed: bool,
    /// Why the last attempt to obtain or renew it failed, if it did.
    pub last_error: Option<String>,
}

impl CertFacts {
    /// When renewal is due: two-thirds into its lifetime.
    pub fn renew_at(&self) -> Timestamp {
        let life = self.not_after.unix_millis() - self.not_before.unix_millis();
        Timestamp::from_unix_millis(self.not_before.unix_millis() + life.max(0) * 2 / 3)
    }
}

/// Why a certificate and key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The PEM holds no usable certificate.
    #[error("no certificate in the PEM data")]
    NoCertificate,
    /// The PEM could not be parsed.
    #[error("PEM: {0}")]
    Pem(String),
    /// The certificate's fields could not be read.
    #[error(transparent)]
    Der(#[from] der::DerError),
    /// rustls refused the key or the pair.
    #[error("the key does not fit: {0}")]
    Key(#[from] rustls::Error),
}

/// A certificate chain with its signing key, ready to serve.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What the leaf says (with `last_error` empty).
    pub facts: CertFacts,
}

impl Loaded {
    /// Parses a PEM chain (leaf first) and a PEM private key, and checks that
    /// they belong together.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, CertError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::Pem(e.to_string()))?;
        Loaded::from_der(chain, key)
    }

    /// Like [`Loaded::from_pem`], from DER.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Loaded, CertError> {
        let leaf = chain.first().ok_or(CertError::NoCertificate)?;
        let parsed = der::read(leaf)?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider)?;
        Ok(Loaded {
            key: Arc::new(certified),
            facts: CertFacts {
                names: parsed.names,
                not_before: parsed.not_before,
                not_after: parsed.not_after,
                issuer: parsed.issuer,
                self_signed: parsed.self_signed,
                last_error: None,
            },
        })
    }
}

/// The current certificate, swapped in place.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Loaded>,
}

impl CertStore {
    /// A store serving `initial`.
    pub fn new(initial: Loaded) -> Arc<CertStore> {
        Arc::new(CertStore {
            current: RwLock::new(initial),
        })
    }

    /// Serves `next` from the next handshake on.
    pub fn install(&self, next: Loaded) {
        tracing::info!(
            names = ?next.facts.names,
            not_after = %next.facts.not_after,
            issuer = %next.facts.issuer,
            "serving a new TLS certificate"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// What the served certificate says.
    pub fn facts(&self) -> CertFacts {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .facts
            .clone()
    }

    /// A rustls server configuration that asks this store on every handshake
    /// (ALPN as given, e.g. `http/1.1` for HTTPS, none for SIP).
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .key
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_checks_and_swaps() {
        let (c1, k1) = pem_pair("one.example");
        let (c2, k2) = pem_pair("two.example");
        let one = Loaded::from_pem(c1.as_bytes(), k1.as_bytes()).expect("pair");
        assert_eq!(one.facts.names, vec!["one.example"]);
        assert!(one.facts.self_signed);
        assert!(
            Loaded::from_pem(c1.as_bytes(), k2.as_bytes()).is_err(),
            "a key of another certificate is refused"
        );
        assert!(matches!(
            Loaded::from_pem(b"", k1.as_bytes()),
            Err(CertError::NoCertificate)
        ));
        let store = CertStore::new(one);
        store.install(Loaded::from_pem(c2.as_bytes(), k2.as_bytes()).expect("pair"));
        assert_eq!(store.facts().names, vec!["two.example"]);
        store.server_config(&[b"http/1.1"]).expect("config");
    }

    #[test]
    fn renewal_is_due_at_two_thirds() {
        let facts = CertFacts {
            names: vec![],
            not_before: Timestamp::from_unix_millis(0),
            not_after: Timestamp::from_unix_millis(90_000),
            issuer: "x".into(),
            self_signed: false,
            last_error: None,
        };
        assert_eq!(facts.renew_at(), Timestamp::from_unix_millis(60_000));
    }
}
