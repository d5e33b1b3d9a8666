//! ACME against Pebble (a real ACME server) on loopback: the real binary
//! obtains a certificate for its public name over HTTP-01, serves it on
//! HTTPS and SIP over TLS without a restart, renews it (existing TLS
//! connections kept), and reports a failing challenge clearly.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::pebble::{tls_connect, Pebble, PebbleOptions, PebblePlan};
use common::{free_ports, setup_admin, wait_for, Homeline, Start};
use serde_json::{json, Value};

const NAME: &str = "pi.homeline.test";
const PASSWORD: &str = "correct horse battery staple";

fn addr(h: &Homeline, key: &str) -> SocketAddr {
    let ports: Value = serde_json::from_str(
        &std::fs::read_to_string(h.data().join("run/ports.json")).expect("ports"),
    )
    .expect("json");
    ports[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in ports.json: {ports}"))
        .parse()
        .expect("addr")
}

/// The appliance (HTTPS on, pointed at the planned Pebble), then Pebble
/// validating HTTP-01 on `http_port` (default: the appliance's HTTP port).
fn appliance_and_pebble(validity_secs: Option<u64>, http_port: Option<u16>) -> (Homeline, Pebble) {
    let plan = PebblePlan::new();
    let mut env = plan.env();
    env.push(("HOMELINE_HTTP_TLS_LISTEN".into(), "127.0.0.1:0".into()));
    let h = Homeline::start_with(Start {
        env,
        ..Start::default()
    });
    let pebble = plan.start(PebbleOptions {
        http_port: http_port.unwrap_or(h.http.port()),
        validity_secs,
    });
    (h, pebble)
}

fn enable(h: &Homeline, token: &str) {
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(token),
        Some(&json!({
            "system": { "public_url": format!("https://{NAME}") },
            "acme": { "enabled": true, "email": "admin@example.com" },
        })),
    );
    assert!(r.status < 300, "config: {} {}", r.status, r.text());
}

fn certificate(h: &Homeline, token: &str) -> Value {
    let r = h.call("GET", "/api/certificate", Some(token), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_state(h: &Homeline, p: &Pebble, token: &str, want: &str, within: Duration) -> Value {
    let mut last = Value::Null;
    wait_for(within, || {
        last = certificate(h, token);
        (last["state"] == want).then(|| last.clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "certificate never became {want}: {last}\nlog:\n{}\npebble:\n{}",
            log(h),
            p.log()
        )
    })
}

fn log(h: &Homeline) -> String {
    let text = std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("acme") || l.contains("certificate") || l.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn open_alerts(h: &Homeline, token: &str) -> Vec<Value> {
    let r = h.call("GET", "/api/system/alerts", Some(token), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    v["items"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// A GET over an established TLS stream.
fn https_get(stream: &mut impl ReadWrite, path: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// An OPTIONS over an established SIP/TLS connection; returns the status line.
fn sip_options(stream: &mut impl ReadWrite, seq: u32) -> String {
    let msg = format!(
        "OPTIONS sip:{NAME} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKacme{seq}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{NAME}>;tag=a{seq}\r\nTo: <sip:{NAME}>\r\nCall-ID: acme-probe-{seq}\r\nCSeq: {seq} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(msg.as_bytes()).expect("write");
    let mut buf = [0u8; 4096];
    let n = stream
        .read(&mut buf)
        .expect("a SIP answer on the same connection");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn issuance_is_served_on_https_and_sip_tls_without_a_restart() {
    let (mut h, pebble) = appliance_and_pebble(None, None);
    let root = pebble.issuing_root();
    let token = setup_admin(&h, "admin@example.com", PASSWORD);
    let pid = h.child.id();

    // Before: the self-signed certificate, which a client trusting only
    // the CA refuses (as Twilio refuses it).
    let before = certificate(&h, &token);
    assert_eq!(before["state"], "off", "{before}");
    assert_eq!(before["self_signed"], true, "{before}");
    let err = tls_connect(addr(&h, "https"), NAME, &root, &[b"http/1.1"])
        .err()
        .expect("a self-signed certificate is refused");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let r = h.call("POST", "/api/certificate/renew", Some(&token), None);
    assert_eq!(r.status, 409, "off: {}", r.text());
    assert_eq!(
        h.get("/.well-known/acme-challenge/unknown").status,
        404,
        "no answer for a token nobody asked about"
    );

    enable(&h, &token);
    let r = h.call("POST", "/api/certificate/renew", Some(&token), None);
    assert_eq!(r.status, 202, "{}", r.text());
    let got = wait_state(&h, &pebble, &token, "valid", Duration::from_secs(60));
    assert_eq!(got["name"], NAME);
    assert_eq!(got["self_signed"], false, "{got}");
    assert!(got["names"]
        .as_array()
        .expect("names")
        .contains(&json!(NAME)));
    assert!(got["next_renewal"].is_string(), "{got}");
    assert_eq!(got["last_error"], Value::Null);

    // Served on HTTPS (the same routes as HTTP) and SIP over TLS, by the
    // same process.
    let mut https = tls_connect(addr(&h, "https"), NAME, &root, &[b"http/1.1"])
        .unwrap_or_else(|e| panic!("HTTPS with the CA's certificate: {e}\n{}", log(&h)));
    let leaf = homeline::certs::der::read(&https.leaf).expect("leaf");
    assert_eq!(leaf.names, vec![NAME.to_string()]);
    assert!(!leaf.self_signed);
    let answer = https_get(&mut https.stream, "/health");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let sip = tls_connect(addr(&h, "sip_tls"), NAME, &root, &[]).expect("SIP over TLS");
    assert_eq!(sip.leaf, https.leaf, "one certificate for HTTPS and SIP");
    assert_eq!(h.child.id(), pid);
    assert!(
        h.child.try_wait().expect("wait").is_none(),
        "never restarted"
    );

    // Kept across a restart: loaded from the database (key sealed) before
    // the listeners start.
    h.restart();
    let again = tls_connect(addr(&h, "https"), NAME, &root, &[b"http/1.1"])
        .expect("the stored certificate after a restart");
    assert_eq!(again.leaf, https.leaf);
    let sealed: Vec<u8> = std::fs::read(h.data().join("homeline.db")).expect("db");
    assert!(
        !String::from_utf8_lossy(&sealed).contains("BEGIN PRIVATE KEY"),
        "the certificate's key is sealed"
    );
}

#[test]
fn renewal_at_two_thirds_serves_a_new_certificate_and_keeps_connections() {
    // A 45-second certificate: renewal is due after 30 s.
    let (h, pebble) = appliance_and_pebble(Some(45), None);
    let root = pebble.issuing_root();
    let token = setup_admin(&h, "admin@example.com", PASSWORD);
    enable(&h, &token);
    let first = wait_state(&h, &pebble, &token, "valid", Duration::from_secs(60));
    let old = tls_connect(addr(&h, "https"), NAME, &root, &[b"http/1.1"]).expect("HTTPS");
    let mut sip = tls_connect(addr(&h, "sip_tls"), NAME, &root, &[]).expect("SIP/TLS");
    assert!(sip_options(&mut sip.stream, 1).starts_with("SIP/2.0 "));
    let not_before = first["not_before"]
        .as_str()
        .expect("not_before")
        .to_string();
    let renew_at = first["next_renewal"]
        .as_str()
        .expect("next_renewal")
        .to_string();
    assert!(renew_at > not_before, "{first}");

    // Less than 14 days left: the admin is alerted (the expiry alert).
    let alerts = open_alerts(&h, &token);
    assert!(
        alerts.iter().any(|a| a["key"] == "acme:expiry"
            && a["message"].as_str().is_some_and(|m| m.contains(NAME))),
        "{alerts:?}"
    );

    let renewed = wait_for(Duration::from_secs(60), || {
        let now = tls_connect(addr(&h, "https"), NAME, &root, &[b"http/1.1"]).ok()?;
        (now.leaf != old.leaf).then_some(now)
    })
    .unwrap_or_else(|| panic!("never renewed\n{}\n{}", log(&h), pebble.log()));
    let leaf = homeline::certs::der::read(&renewed.leaf).expect("leaf");
    assert_eq!(leaf.names, vec![NAME.to_string()]);
    let after = certificate(&h, &token);
    assert_eq!(after["state"], "valid", "{after}");
    assert!(
        after["not_after"].as_str() > first["not_after"].as_str(),
        "{after}"
    );
    // The SIP/TLS connection opened before the renewal still carries requests.
    assert!(
        sip_options(&mut sip.stream, 2).starts_with("SIP/2.0 "),
        "existing TLS connection kept"
    );
    // New SIP/TLS handshakes get the renewed certificate too.
    let fresh = tls_connect(addr(&h, "sip_tls"), NAME, &root, &[]).expect("SIP/TLS");
    assert_eq!(fresh.leaf, renewed.leaf);
}

#[test]
fn a_failing_challenge_is_reported_clearly_and_alerted() {
    // Pebble validates on a port where nothing listens: as if port 80 were
    // not forwarded on the router.
    let closed = free_ports(1);
    let (h, pebble) = appliance_and_pebble(None, Some(closed));
    let token = setup_admin(&h, "admin@example.com", PASSWORD);
    enable(&h, &token);
    let failed = wait_state(&h, &pebble, &token, "failed", Duration::from_secs(60));
    let error = failed["last_error"]
        .as_str()
        .expect("last_error")
        .to_string();
    assert!(
        error.contains(&format!("http://{NAME}/.well-known/acme-challenge/")),
        "names the URL: {error}"
    );
    assert!(error.contains("connection"), "says what failed: {error}");
    assert!(
        error.contains("forward port 80"),
        "says what to do: {error}"
    );
    assert!(failed["retry_at"].is_string(), "backs off: {failed}");
    assert_eq!(
        failed["self_signed"], true,
        "the self-signed one is still served"
    );
    let alerts = open_alerts(&h, &token);
    assert!(
        alerts.iter().any(|a| a["key"] == "acme:failed"
            && a["message"]
                .as_str()
                .is_some_and(|m| m.contains("forward port 80"))),
        "{alerts:?}"
    );
}
