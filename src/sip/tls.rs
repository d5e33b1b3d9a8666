//! TLS for SIP (SIP over TLS on 5061, RFC 3261 §26.2), with rustls and the
//! ring provider only.
//!
//! The certificate comes from settings (`sip.tls_cert`, `sip.tls_key`, PEM).
//! Until the household has a real one, a self-signed certificate is
//! generated on first start and kept in `<data>/tls/` (key mode 0600), so the
//! phones' TLS accounts keep working across restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Names the self-signed certificate is made out to.
pub const SELF_SIGNED_NAMES: &[&str] = &["homeline.local", "homeline", "localhost"];

/// The server configuration for SIP over TLS: from the given PEM files, or
/// from the self-signed pair in `<data>/tls/` (created if missing).
pub fn server_config(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => ensure_self_signed(&data_dir.join("tls"))?,
    };
    let file_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| file_err(&cert_path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&cert_path, &e))?;
    if chain.is_empty() {
        return Err(file_err(&cert_path, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_err(&key_path, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
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
        server_config(dir.path(), None, None).expect("generated");
        let cert = std::fs::read(dir.path().join("tls/sip.crt")).expect("cert");
        server_config(dir.path(), None, None).expect("reused");
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
        server_config(dir.path(), Some(&c), Some(&k)).expect("from explicit paths");
        let err = server_config(dir.path(), Some(&k), Some(&k)).unwrap_err();
        assert!(err.to_string().contains("sip.key"), "{err}");
    }
}
