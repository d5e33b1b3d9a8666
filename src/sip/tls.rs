//! TLS for SIP (SIP over TLS on 5061, RFC 3261 §26.2), with rustls and the
//! ring provider only.
//!
//! The certificate comes from settings (`sip.tls_cert`, `sip.tls_key`, PEM),
//! which pin SIP to those files. Otherwise SIP serves the appliance's shared
//! [`crate::certs::CertStore`] (the ACME certificate once there is one, hot
//! swapped on renewal). Until the household has a real one, a self-signed
//! certificate is generated on first start and kept in `<data>/tls/` (key
//! mode 0600), so the phones' TLS accounts keep working across restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::certs::{CertError, CertStore, Loaded};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Names the self-signed certificate is made out to.
pub const SELF_SIGNED_NAMES: &[&str] = &["homeline.local", "homeline", "localhost"];

/// The certificate SIP starts with: from the given PEM files, or the
/// self-signed pair in `<data>/tls/` (created if missing).
pub fn initial_certificate(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Loaded, TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => ensure_self_signed(&data_dir.join("tls"))?,
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let (chain, key) = (read(&cert_path)?, read(&key_path)?);
    Loaded::from_pem(&chain, &key).map_err(|e| TlsError::File {
        // A key error names the key file; everything else the certificate.
        path: match e {
            CertError::Key(_) => key_path.clone(),
            _ if PrivateKeyDer::from_pem_slice(&key).is_err() => key_path.clone(),
            _ => cert_path.clone(),
        },
        reason: e.to_string(),
    })
}

/// The server configuration for SIP over TLS, answering each handshake from
/// `store` (no ALPN: SIP phones do not offer any).
pub fn server_config(store: &Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(store.server_config(&[])?)
}

/// Creates `sip.crt`/`sip.key` in `dir` unless both exist; returns their paths.
fn ensure_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = (dir.join("sip.crt"), dir.join("sip.key"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let io = |path: &Path, e: std::io::Error| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| io(&key_path, e))?;
    key_file
        .write_all(certified.signing_key.serialize_pem().as_bytes())
        .map_err(|e| io(&key_path, e))?;
    std::fs::write(&cert_path, certified.cert.pem()).map_err(|e| io(&cert_path, e))?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate for SIP over TLS");
    Ok((cert_path, key_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = initial_certificate(dir.path(), None, None).expect("generated");
        assert!(first.facts.self_signed);
        assert!(first.facts.names.iter().any(|n| n == "homeline.local"));
        server_config(&CertStore::new(first)).expect("config");
        let cert = std::fs::read(dir.path().join("tls/sip.crt")).expect("cert");
        initial_certificate(dir.path(), None, None).expect("reused");
        assert_eq!(
            std::fs::read(dir.path().join("tls/sip.crt")).expect("cert"),
            cert,
            "not regenerated"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/sip.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let c = dir.path().join("tls/sip.crt");
        let k = dir.path().join("tls/sip.key");
        initial_certificate(dir.path(), Some(&c), Some(&k)).expect("from explicit paths");
        let err = initial_certificate(dir.path(), Some(&k), Some(&k)).unwrap_err();
        assert!(err.to_string().contains("sip.key"), "{err}");
    }
}
