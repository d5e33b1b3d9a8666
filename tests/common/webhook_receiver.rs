//! An event-webhook receiver that records deliveries; `verify` checks the
//! documented signature scheme in Rust, `verify_python` the README's Python.

#![allow(dead_code)]

use serde_json::json;

use super::recorder::{Recorder, Request};

pub fn start() -> Recorder {
    Recorder::start(|_| (200, json!({"ok": true})))
}

/// `X-Homeline-Signature: t=<secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn verify(secret: &str, r: &Request) -> bool {
    let Some(sig) = r.header("x-homeline-signature") else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(&r.body);
    let tag: String = ring::hmac::sign(&key, &msg)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    tag == v1
}

/// The README's Python verification snippet, run on `r`.
pub fn verify_python(secret: &str, r: &Request) -> bool {
    let script = r#"
import hashlib, hmac, sys
secret, header, body = sys.argv[1], sys.argv[2], open(sys.argv[3], 'rb').read()
fields = dict(p.split('=', 1) for p in header.split(','))
expected = hmac.new(secret.encode(), fields['t'].encode() + b'.' + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, fields['v1']) else 1)
"#;
    let dir = tempfile::tempdir().expect("tmp");
    let body = dir.path().join("body");
    std::fs::write(&body, &r.body).expect("body");
    std::process::Command::new("python3")
        .args([
            "-c",
            script,
            secret,
            r.header("x-homeline-signature").unwrap_or(""),
        ])
        .arg(&body)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
