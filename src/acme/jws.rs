//! The ACME account key and JSON Web Signatures (RFC 7515, RFC 8555 §6.2):
//! ES256 with ring, the public key as a JWK (RFC 7517) and its thumbprint
//! (RFC 7638) for HTTP-01 key authorisations.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// Base64url without padding, as JOSE wants it.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why the account key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("account key: {0}")]
pub struct KeyError(&'static str);

/// The account's P-256 key pair.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(..)")
    }
}

impl AccountKey {
    /// A new key, as PKCS#8 (what is sealed and stored).
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError("the system random generator failed"))
    }

    /// The key stored as PKCS#8.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AccountKey, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| KeyError("the stored key is not a P-256 key"))?;
        Ok(AccountKey { pair, rng })
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        // Uncompressed point: 0x04 ‖ x (32) ‖ y (32).
        let point = self.pair.public_key().as_ref();
        json!({
            "crv": "P-256",
            "kty": "EC",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        })
    }

    /// The JWK thumbprint (RFC 7638): SHA-256 over the required members in
    /// lexicographic order without spaces.
    pub fn thumbprint(&self) -> String {
        let point = self.pair.public_key().as_ref();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&point[1..33]),
            b64(&point[33..65])
        );
        b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The key authorisation for a challenge token (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// A flattened JWS for `url`: signed with the account URL as `kid` once
    /// the account exists, with the JWK before. `payload` `None` is a
    /// POST-as-GET (empty payload).
    pub fn sign(
        &self,
        url: &str,
        nonce: &str,
        kid: Option<&str>,
        payload: Option<&Value>,
    ) -> Result<Value, KeyError> {
        let mut protected = json!({ "alg": "ES256", "nonce": nonce, "url": url });
        match kid {
            Some(kid) => protected["kid"] = json!(kid),
            None => protected["jwk"] = self.jwk(),
        }
        let protected = b64(protected.to_string().as_bytes());
        let payload = match payload {
            Some(p) => b64(p.to_string().as_bytes()),
            None => String::new(),
        };
        let signing_input = format!("{protected}.{payload}");
        let sig = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| KeyError("signing failed"))?;
        Ok(json!({ "protected": protected, "payload": payload, "signature": b64(sig.as_ref()) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn signatures_verify_and_the_header_is_right() {
        let pkcs8 = AccountKey::generate_pkcs8().expect("key");
        let key = AccountKey::from_pkcs8(&pkcs8).expect("parsed");
        let jws = key
            .sign("https://ca/new-acct", "n0nce", None, Some(&json!({"a": 1})))
            .expect("signed");
        let protected = jws["protected"].as_str().expect("protected");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(protected).expect("b64")).expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "n0nce");
        assert_eq!(header["jwk"]["kty"], "EC");
        let input = format!("{protected}.{}", jws["payload"].as_str().expect("payload"));
        let sig = URL_SAFE_NO_PAD
            .decode(jws["signature"].as_str().expect("sig"))
            .expect("b64");
        assert_eq!(sig.len(), 64, "r ‖ s, not DER");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.pair.public_key().as_ref())
            .verify(input.as_bytes(), &sig)
            .expect("verifies");
        let get = key
            .sign("u", "n", Some("https://ca/acct/1"), None)
            .expect("signed");
        assert_eq!(get["payload"], "", "POST-as-GET");
        assert!(AccountKey::from_pkcs8(b"junk").is_err());
    }

    #[test]
    fn thumbprint_matches_rfc_7638_shape() {
        let key = AccountKey::from_pkcs8(&AccountKey::generate_pkcs8().expect("key")).expect("key");
        let t = key.thumbprint();
        assert_eq!(t.len(), 43, "base64url of 32 bytes");
        assert_eq!(key.key_authorization("tok"), format!("tok.{t}"));
        assert_eq!(t, key.thumbprint(), "stable");
    }
}
