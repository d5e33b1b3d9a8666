//! Event webhooks: the notification's JSON POSTed to the admin's URL,
//! signed so the receiver can tell it came from this appliance.
//!
//! Headers: `X-Homeline-Event: <topic>`, `X-Homeline-Delivery: <notification
//! id>` (the same on every retry: a receiver drops ids it has seen),
//! `X-Homeline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`. The secret is the whole `whsec_…` string's bytes. 2xx is
//! delivered, 410 Gone means the receiver is gone for good, anything else is
//! retried.

use ring::hmac;

use super::send::{self, Reason, SendError};

/// The signature header's value for `body` at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A new secret: `whsec_` and 32 random bytes in base64url.
pub fn new_secret() -> Result<String, SendError> {
    use base64::Engine;
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| SendError::new(Reason::Other, "no randomness"))?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

/// One delivery.
pub struct Delivery<'a> {
    /// The receiver.
    pub url: &'a str,
    /// The signing secret.
    pub secret: &'a str,
    /// `X-Homeline-Event`.
    pub event: &'a str,
    /// `X-Homeline-Delivery`.
    pub id: i64,
    /// The JSON body.
    pub body: &'a [u8],
    /// Signing time (unix seconds).
    pub t: i64,
}

/// POSTs (blocking: call from `spawn_blocking`).
pub fn send(d: &Delivery<'_>) -> Result<String, SendError> {
    let req = send::agent()
        .post(d.url)
        .header("X-Homeline-Event", d.event)
        .header("X-Homeline-Delivery", &d.id.to_string())
        .header("X-Homeline-Signature", &signature(d.secret, d.t, d.body));
    let a = send::post_json(req, d.body)?;
    match a.status {
        200..=299 => Ok(format!("the receiver answered HTTP {}", a.status)),
        410 => Err(SendError::permanent(
            Reason::Other,
            "the receiver answered 410 Gone; it will not be tried again",
        )),
        _ => Err(send::status_error(&a, "the receiver")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_k",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("whsec_k", 1_700_000_000, b"{}"),
            "t=1700000000,v1=8b20524faff2b12e1089e404a8cf60fbe577e5320e899ebff7329ebbcb9ada22"
        );
        let s = new_secret().expect("secret");
        assert!(s.starts_with("whsec_") && s.len() == 6 + 43, "{s}");
    }
}
