//! Sealing secrets at rest (SIP passwords, the Twilio auth token, SMTP
//! passwords) with a key kept in the data dir.
//!
//! Why not a hash: a phone's SIP password must be handed to the phone when it
//! is provisioned, and the Twilio token must be sent to Twilio, so they must be
//! recoverable. Why a key file: a stolen database file (a backup, a copied SD
//! card image without `secret.key`) then reveals nothing. It does not protect
//! against someone who has the whole card; nothing on an unattended Pi can.
//!
//! Format: `0x01 ‖ nonce (12) ‖ ChaCha20-Poly1305(ciphertext ‖ tag)`, with a
//! caller-chosen context as associated data, so a sealed value cannot be moved
//! into another column and still open.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const FORMAT_V1: u8 = 1;
const KEY_LEN: usize = 32;

/// What can go wrong while sealing or opening.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or created.
    #[error("secret key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file exists but is not a key.
    #[error("secret key file {0} is not 32 bytes; restore it from a backup")]
    BadKey(String),
    /// The sealed bytes are damaged, were sealed with another key, or belong
    /// to another context.
    #[error("a sealed secret could not be opened (wrong key, context or damaged data)")]
    Open,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// Seals and opens secrets with the appliance's key.
pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Loads `<data>/secret.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join("secret.key");
        let shown = path.display().to_string();
        let io = |source| SecretError::KeyFile {
            path: shown.clone(),
            source,
        };
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| SecretError::Random)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                key.to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        Self::from_key(&bytes).ok_or(SecretError::BadKey(shown))
    }

    /// A box over raw key bytes (tests); `None` unless 32 bytes.
    pub fn from_key(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plain` for use in `context` (e.g. `"device.sip_password"`).
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`SecretBox::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        let (&version, rest) = sealed.split_first().ok_or(SecretError::Open)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Open)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let b = SecretBox::from_key(&[7; 32]).expect("key");
        let sealed = b
            .seal("device.sip_password", b"correct horse")
            .expect("seal");
        assert_ne!(
            &sealed[13..26],
            b"correct horse",
            "ciphertext is not the plain text"
        );
        assert_eq!(
            b.open("device.sip_password", &sealed).expect("open"),
            b"correct horse"
        );
        assert!(
            matches!(b.open("twilio.auth_token", &sealed), Err(SecretError::Open)),
            "context is bound"
        );
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(b.open("device.sip_password", &damaged).is_err());
        assert!(b.open("device.sip_password", &[]).is_err());
        assert!(b.open("device.sip_password", &[1, 2, 3]).is_err());
        let other = SecretBox::from_key(&[8; 32]).expect("key");
        assert!(
            other.open("device.sip_password", &sealed).is_err(),
            "another key cannot open it"
        );
        assert_ne!(
            b.seal("c", b"x").expect("seal"),
            b.seal("c", b"x").expect("seal"),
            "fresh nonce per seal"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sealed = SecretBox::load_or_create(dir.path())
            .expect("create")
            .seal("c", b"v")
            .expect("seal");
        let mode = fs::metadata(dir.path().join("secret.key"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretBox::load_or_create(dir.path()).expect("load");
        assert_eq!(
            again.open("c", &sealed).expect("same key after restart"),
            b"v"
        );
        fs::write(dir.path().join("secret.key"), b"short").expect("write");
        assert!(matches!(
            SecretBox::load_or_create(dir.path()),
            Err(SecretError::BadKey(_))
        ));
    }
}
