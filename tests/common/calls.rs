//! What the call tests share: starting Homeline over phones or a
//! household with its own RTP range (tests run in parallel), registering a
//! sipp phone, and reading the calls and call records APIs.

use std::net::SocketAddr;
use std::time::Duration;

use super::{provision_devices, provision_household, sipp, wait_for, Homeline, SippRun, Start};

/// Starts Homeline with the data dir `dir` (already provisioned), its RTP
/// ports `rtp` and the `extra` environment.
fn start_in(dir: tempfile::TempDir, rtp: &str, extra: &[(&str, &str)]) -> Homeline {
    let mut env = vec![("HOMELINE_MEDIA_RTP_PORTS".to_string(), rtp.to_string())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Homeline::start_with(Start {
        dir: Some(dir),
        env,
        ..Start::default()
    })
}

/// Starts Homeline with `phones` (no number, no trunk) and its own RTP range.
pub fn start(phones: &[(&str, &str)], rtp: &str, extra: &[(&str, &str)]) -> Homeline {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), phones);
    start_in(dir, rtp, extra)
}

/// Starts Homeline over a provisioned household (the number, its
/// `phones`, the Twilio SIP credentials), plus `others` not assigned the
/// number, with its own RTP range.
pub fn start_household(
    number: &str,
    phones: &[(&str, &str)],
    others: &[(&str, &str)],
    rtp: &str,
    extra: &[(&str, &str)],
) -> Homeline {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_household(dir.path(), number, phones);
    provision_devices(dir.path(), others);
    start_in(dir, rtp, extra)
}

/// Registers `user` from `port` (the port its UAS will then listen on).
pub fn register(sip: SocketAddr, user: &str, password: &str, port: u16) {
    let (code, out) = sipp(
        sip,
        "register_auth.xml",
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-p",
            &port.to_string(),
        ],
    );
    assert_eq!(code, 0, "{user} registers: {out}");
}

/// The live calls (`GET /api/calls`).
pub fn calls(h: &Homeline, admin: &str) -> serde_json::Value {
    let r = h.call("GET", "/api/calls", Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The call records (`GET /api/cdrs`).
pub fn cdrs(h: &Homeline, admin: &str) -> Vec<serde_json::Value> {
    let r = h.call("GET", "/api/cdrs", Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

/// The call records once at least `n` are written (the writer is a task
/// behind the call layer, so they land a moment after the call ends).
pub fn wait_cdrs(h: &Homeline, admin: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(Duration::from_secs(5), || {
        let r = cdrs(h, admin);
        (r.len() >= n).then_some(r)
    })
    .unwrap_or_else(|| panic!("{n} call records"))
}

/// The kitchen phone (`kitchen`/`kitchenpw`, sipp media on `phone_media`)
/// dials (415) 555-0100 out through `h`, holding the call `hold_ms`, while
/// a sipp Twilio edge on 127.0.0.1:`edge` (media on `edge_media`) answers it. Asserts
/// both scenarios passed and answers the edge's log (what reached Twilio).
pub fn kitchen_dials_out(
    h: &Homeline,
    edge: u16,
    phone_media: u16,
    edge_media: u16,
    hold_ms: u32,
) -> String {
    let twilio = SippRun::spawn(
        None,
        "twilio_edge_uas.xml",
        &["-p", &edge.to_string(), "-mp", &edge_media.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    let phone = SippRun::spawn(
        Some(h.sip()),
        "uac_invite_rtp.xml",
        &[
            "-s",
            "(415)555-0100",
            "-key",
            "caller",
            "kitchen",
            "-au",
            "kitchen",
            "-ap",
            "kitchenpw",
            "-mp",
            &phone_media.to_string(),
            "-d",
            &hold_ms.to_string(),
        ],
    );
    let (code, out) = phone.wait(Duration::from_secs(20));
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "phone: {out}\nTwilio edge: {tout}");
    assert_eq!(tcode, 0, "Twilio edge (digest checked there): {tout}");
    tout
}
