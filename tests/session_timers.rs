//! Session timers (RFC 4028) through the real binary with sipp as both
//! phones, each taking the refresher's part on its own leg.
//!
//! RFC 4028 forbids intervals below 90 s, so a refresh sent by Homeline (at
//! half the interval) would be seen at 45 s at the earliest. Two tests keep
//! this under ~10 s each:
//! - the phones refresh (a peer may refresh any time before half the
//!   interval), with the real 90 s minimum: Homeline refuses a too-small
//!   interval with 422 and `Min-SE`, asks for a timer in its own INVITE,
//!   agrees the refresher on both legs (`Require: timer`), answers each
//!   leg's refresh re-INVITE with the session and keeps the call up;
//! - Homeline refreshes, with the minimum lowered to 4 s through the
//!   `test-hooks` variable `HOMELINE_TEST_SESSION_MIN_SE_SECS`: its
//!   re-INVITEs reach the phone every 2 s with the same SDP.
//!
//! The expiry, glare and the 422 retry of Homeline's INVITE are unit tests
//! on virtual time (`src/b2bua/tests_dialog.rs`).

mod common;

use std::time::Duration;

use common::calls::register;
use common::{free_udp_port, provision_devices, setup_admin, Homeline, SippRun, Start};

#[test]
fn both_phones_refresh_their_sessions_and_the_call_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw"), ("bob", "bobpw")]);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![(
            "HOMELINE_MEDIA_RTP_PORTS".to_string(),
            "23400-23419".to_string(),
        )],
        ..Start::default()
    });
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let uas = SippRun::spawn(
        None,
        "timer_uas_refreshes.xml",
        &["-p", &bob.to_string(), "-mp", "23500"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let uac = SippRun::spawn(
        Some(sip),
        "timer_uac_refreshes.xml",
        &[
            "-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alicepw", "-mp",
            "23600",
        ],
    );
    // While the refreshes go on, the call is up.
    let up = common::wait_for(Duration::from_secs(8), || {
        let r = h.call("GET", "/api/calls", Some(&admin), None);
        let c = r.json()["items"].as_array()?.first()?.clone();
        (c["state"] == "answered").then_some(c)
    });
    let (uac_code, uac_out) = uac.wait(Duration::from_secs(20));
    let (uas_code, uas_out) = uas.wait(Duration::from_secs(10));
    assert_eq!(
        (uac_code, uas_code),
        (0, 0),
        "caller: {uac_out}\ncallee: {uas_out}"
    );
    assert!(up.is_some(), "the call was answered");
    // One call, answered, ended by the caller after both refreshes.
    let rows = common::wait_for(Duration::from_secs(3), || {
        let r = h.call("GET", "/api/cdrs", Some(&admin), None);
        let rows = r.json()["items"].as_array().cloned().unwrap_or_default();
        (!rows.is_empty()).then_some(rows)
    })
    .expect("a call record");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["disposition"], "answered");
    assert_eq!(rows[0]["hangup_cause"], "caller hung up");
    assert!(
        rows[0]["duration_secs"].as_i64().unwrap_or(0) >= 2,
        "{}",
        rows[0]
    );
}

#[test]
fn homeline_refreshes_the_callees_session_at_half_the_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw"), ("bob", "bobpw")]);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![
            (
                "HOMELINE_MEDIA_RTP_PORTS".to_string(),
                "23420-23439".to_string(),
            ),
            (
                "HOMELINE_TEST_SESSION_MIN_SE_SECS".to_string(),
                "4".to_string(),
            ),
        ],
        ..Start::default()
    });
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let uas = SippRun::spawn(
        None,
        "timer_uas_homeline_refreshes.xml",
        &["-p", &bob.to_string(), "-mp", "23700"],
    );
    std::thread::sleep(Duration::from_millis(300));
    // The caller asks for no timer and hangs up after 5 s: two refreshes.
    let uac = SippRun::spawn(
        Some(sip),
        "uac_invite_rtp.xml",
        &[
            "-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alicepw", "-mp",
            "23800", "-d", "5000",
        ],
    );
    let (uac_code, uac_out) = uac.wait(Duration::from_secs(20));
    let (uas_code, uas_out) = uas.wait(Duration::from_secs(10));
    assert_eq!(
        (uac_code, uas_code),
        (0, 0),
        "caller: {uac_out}\ncallee: {uas_out}"
    );
    let rows = common::wait_for(Duration::from_secs(3), || {
        let r = h.call("GET", "/api/cdrs", Some(&admin), None);
        let rows = r.json()["items"].as_array().cloned().unwrap_or_default();
        (!rows.is_empty()).then_some(rows)
    })
    .expect("a call record");
    assert_eq!(rows[0]["hangup_cause"], "caller hung up", "{}", rows[0]);
}
