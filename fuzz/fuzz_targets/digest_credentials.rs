//! `Credentials::parse` (the Authorization / Proxy-Authorization value) on
//! arbitrary text, then `DigestAuth::verify` on whatever it accepts.
//!
//! To get past the HMAC'd nonce and the response hash (which a fuzzer cannot
//! guess), two placeholders are substituted: `nonce="n"` becomes a live
//! nonce from the verifier, and `response="r"` becomes the correct response
//! for password "pw" (computed the way a phone would). That lets the fuzzer
//! reach the qop / nonce-count / replay logic. Checks: no panics; parsed
//! credentials have the required fields; a request accepted with a
//! nonce-count is never accepted again with the same nonce-count.

#![no_main]

use homeline::clock::Timestamp;
use homeline::sip::auth::{Credentials, DigestAuth, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Some(mut c) = Credentials::parse(value) else {
        return;
    };
    assert!(
        !c.username.is_empty() && !c.nonce.is_empty() && !c.response.is_empty() && !c.uri.is_empty(),
        "required fields: {c:?}"
    );
    let alg = c.algorithm();

    let now = Timestamp::from_unix_millis(1_795_255_200_000);
    let mut auth = DigestAuth::new("homeline", true);
    if c.nonce == "n" {
        c.nonce = auth.nonce(now);
    }
    let ha1 = alg.map(|a| a.ha1(&c.username, "homeline", "pw")).unwrap_or_default();
    if c.response == "r" {
        if let Some(a) = alg {
            let ha2 = a.hash(&format!("REGISTER:{}", c.uri));
            c.response = match c.qop.as_deref() {
                Some(q) => a.hash(&format!(
                    "{ha1}:{}:{}:{}:{q}:{ha2}",
                    c.nonce,
                    c.nc.as_deref().unwrap_or(""),
                    c.cnonce.as_deref().unwrap_or("")
                )),
                None => a.hash(&format!("{ha1}:{}:{ha2}", c.nonce)),
            };
        }
    }
    let first = auth.verify(&c, "REGISTER", &ha1, now);
    if first == Verdict::Ok && c.nc.is_some() {
        let again = auth.verify(&c, "REGISTER", &ha1, now);
        assert_ne!(again, Verdict::Ok, "nonce-count replay accepted: {c:?}");
    }
    // A different method must not verify with the same response.
    if first == Verdict::Ok {
        let mut other = DigestAuth::new("homeline", true);
        let _ = other.verify(&c, "INVITE", &ha1, now);
    }
});
