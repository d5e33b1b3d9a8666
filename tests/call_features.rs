//! The call features through the real binary with real peers on loopback:
//! DTMF pressed by SIP INFO arriving as RFC 4733 at the other phone (and,
//! for a phone without telephone-event, as INFO, with RFC 4733 events
//! coming back to it as INFO), call
//! pickup by `*8` from a third phone while another rings, and transfers to
//! an external number (through the Twilio stand-in, and one the toll-fraud
//! guard refuses).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::calls::{register, start_household, wait_cdrs};
use common::{free_udp_port, setup_admin, sipp, Homeline, SippRun};

/// The device id of the phone with SIP user `username`.
fn device_id(h: &Homeline, admin: &str, username: &str) -> i64 {
    let r = h.call("GET", "/api/devices", Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let items = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| v.as_array().cloned().unwrap_or_default());
    items
        .iter()
        .find(|d| d["username"] == username)
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("device {username} in {v}"))
}

fn log_of(h: &Homeline) -> String {
    std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default()
}

/// One RFC 4733 packet as received: payload type, marker, sequence,
/// timestamp, SSRC, event, end bit, duration.
#[derive(Debug, Clone, Copy)]
struct Event {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    event: u8,
    end: bool,
    duration: u16,
}

fn read_event(p: &[u8]) -> Option<Event> {
    if p.len() < 16 || p[0] >> 6 != 2 {
        return None;
    }
    Some(Event {
        pt: p[1] & 0x7f,
        marker: p[1] & 0x80 != 0,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        event: p[12],
        end: p[13] & 0x80 != 0,
        duration: u16::from_be_bytes([p[14], p[15]]),
    })
}

#[test]
fn info_dtmf_from_a_phone_arrives_as_rfc4733_at_the_other_phone() {
    let h = start_household(
        "+15550001111",
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &[],
        "24000-24019",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    // Bob's RTP is this socket: the test reads what the relay sends him.
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    rtp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    let uas = SippRun::spawn(
        None,
        "info_dtmf_uas.xml",
        &[
            "-p",
            &bob.to_string(),
            "-key",
            "rtp_port",
            &rtp_port,
            "-key",
            "te_pt",
            "96",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let uac = SippRun::spawn(
        Some(sip),
        "info_dtmf_uac.xml",
        &[
            "-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alicepw", "-mp",
            "24100",
        ],
    );
    let mut events = Vec::new();
    let until = Instant::now() + Duration::from_secs(8);
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        match rtp.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(e) = read_event(&buf[..n]).filter(|e| e.pt == 96) {
                    events.push(e);
                }
            }
            Err(_) if events.iter().filter(|e| e.event == 11 && e.end).count() >= 3 => break,
            Err(_) => {}
        }
    }
    let (ucode, uout) = uac.wait(Duration::from_secs(20));
    let (scode, sout) = uas.wait(Duration::from_secs(10));
    assert_eq!(
        ucode,
        0,
        "the INFOs were answered 200, 200, 400, 415: {uout}\n{}",
        log_of(&h)
    );
    assert_eq!(scode, 0, "bob got no INFO, only the BYE: {sout}");
    // The two key presses, 5 (160 ms) then #, in bob's payload type 96.
    let five: Vec<&Event> = events.iter().filter(|e| e.event == 5).collect();
    let hash: Vec<&Event> = events.iter().filter(|e| e.event == 11).collect();
    assert!(!five.is_empty() && !hash.is_empty(), "{events:?}");
    assert!(
        events.iter().all(|e| e.event == 5 || e.event == 11),
        "{events:?}"
    );
    assert!(five[0].marker, "the event starts with the marker bit");
    assert!(
        five.iter().all(|e| e.ts == five[0].ts),
        "one timestamp per event"
    );
    assert_ne!(five[0].ts, hash[0].ts, "each press is its own event");
    assert_eq!(
        five.iter().filter(|e| e.end).count(),
        3,
        "end sent three times"
    );
    assert_eq!(hash.iter().filter(|e| e.end).count(), 3);
    let last = five.iter().rev().find(|e| e.end).unwrap();
    assert_eq!(last.duration, 160 * 8, "160 ms at 8 kHz");
    // One stream: one SSRC, sequence numbers without a gap.
    assert!(events.iter().all(|e| e.ssrc == events[0].ssrc));
    for w in events.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{events:?}");
    }
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(rows[0]["disposition"], "answered", "{}", rows[0]);
}

#[test]
fn pickup_by_star_8_answers_the_call_ringing_another_phone() {
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw"), ("office", "officepw")],
        &[],
        "24200-24219",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let kitchen = free_udp_port();
    register(sip, "kitchen", "kitchenpw", kitchen);
    let ringing = SippRun::spawn(
        None,
        "pickup_ringing_uas.xml",
        &["-p", &kitchen.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    // Twilio's edge calls the household number: the kitchen rings.
    let twilio = SippRun::spawn(
        Some(sip),
        "uac_until_bye.xml",
        &[
            "-s",
            "+15550001111",
            "-key",
            "caller",
            "+15557654321",
            "-au",
            common::TRUNK_USER,
            "-ap",
            common::TRUNK_PASSWORD,
            "-mp",
            "24300",
        ],
    );
    let rang = common::wait_for(Duration::from_secs(5), || {
        let r = h.call("GET", "/api/calls", Some(&admin), None);
        (r.json()["items"][0]["state"] == "ringing").then_some(())
    });
    assert!(rang.is_some(), "the call rings: {}", log_of(&h));
    // The office phone (not registered, not ringing) dials *8.
    let office = SippRun::spawn(
        Some(sip),
        "uac_invite_rtp.xml",
        &[
            "-s", "*8", "-key", "caller", "office", "-au", "office", "-ap", "officepw", "-mp",
            "24400", "-d", "2500",
        ],
    );
    // While picked up, RTP flows both ways through the call's relay.
    let flowing = common::wait_for(Duration::from_secs(8), || {
        let r = h.call("GET", "/api/calls", Some(&admin), None);
        let c = r.json()["items"][0].clone();
        let ok = c["state"] == "answered"
            && c["rtp_sent"][0].as_u64()? > 10
            && c["rtp_sent"][1].as_u64()? > 10;
        ok.then_some(c)
    });
    let (ocode, oout) = office.wait(Duration::from_secs(20));
    let (rcode, rout) = ringing.wait(Duration::from_secs(10));
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    assert_eq!(
        ocode,
        0,
        "office picked up and hung up: {oout}\n{}",
        log_of(&h)
    );
    assert_eq!(rcode, 0, "the kitchen stopped ringing (CANCEL): {rout}");
    assert_eq!(
        tcode, 0,
        "Twilio's caller was joined, then got the BYE: {tout}"
    );
    let c = flowing.expect("media both ways after the pickup");
    assert_eq!(c["direction"], "inbound", "{c}");
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(rows.len(), 1, "one call, one record: {rows:?}");
    assert_eq!(rows[0]["disposition"], "answered", "{}", rows[0]);
    assert_eq!(
        rows[0]["device_id"].as_i64(),
        Some(device_id(&h, &admin, "office")),
        "the record names who picked up: {}",
        rows[0]
    );
}

#[test]
fn pickup_with_nothing_ringing_is_refused_with_a_reason() {
    let h = start_household(
        "+15550001111",
        &[("office", "officepw")],
        &[],
        "24500-24509",
        &[],
    );
    let (code, out) = sipp(
        h.sip(),
        "pickup_refused_uac.xml",
        &[
            "-s", "*8", "-key", "caller", "office", "-au", "office", "-ap", "officepw",
        ],
    );
    assert_eq!(code, 0, "480 with a Warning: {out}\n{}", log_of(&h));
}

#[test]
fn a_transfer_to_an_external_number_goes_out_through_twilio() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw"), ("bob", "bobpw")],
        &[],
        "24600-24619",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let twilio = SippRun::spawn(
        None,
        "twilio_edge_uas.xml",
        &["-p", &edge.to_string(), "-mp", "24700"],
    );
    let bob_phone = SippRun::spawn(
        None,
        "uas_answer_then_refer.xml",
        &[
            "-p",
            &bob.to_string(),
            "-mp",
            "24800",
            "-key",
            "target",
            "+14155550100",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let kitchen = SippRun::spawn(
        Some(sip),
        "uac_until_bye.xml",
        &[
            "-s",
            "bob",
            "-key",
            "caller",
            "kitchen",
            "-au",
            "kitchen",
            "-ap",
            "kitchenpw",
            "-mp",
            "24900",
        ],
    );
    let (bcode, bout) = bob_phone.wait(Duration::from_secs(20));
    assert_eq!(
        bcode,
        0,
        "bob transferred out and was released: {bout}\n{}",
        log_of(&h)
    );
    // The kitchen now talks to the number through Twilio: hang up there.
    let id = common::wait_for(Duration::from_secs(5), || {
        let r = h.call("GET", "/api/calls", Some(&admin), None);
        r.json()["items"][0]["id"].as_u64()
    })
    .expect("the call goes on");
    let r = h.call("DELETE", &format!("/api/calls/{id}"), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    let (kcode, kout) = kitchen.wait(Duration::from_secs(10));
    assert_eq!(tcode, 0, "Twilio's edge answered and got the BYE: {tout}");
    assert_eq!(kcode, 0, "the kitchen got the BYE: {kout}");
    assert!(
        tout.contains("INVITE sip:+14155550100@home.sip.twilio.com"),
        "E.164 to the SIP Domain: {tout}"
    );
    assert!(
        tout.contains("From: <sip:+15550001111@home.sip.twilio.com>"),
        "out as the referrer's number: {tout}"
    );
}

#[test]
fn the_toll_guard_refuses_a_transfer_to_a_foreign_number() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw"), ("bob", "bobpw")],
        &[],
        "25000-25019",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    // Nothing may reach Twilio's edge: it is a plain socket that listens.
    let edge_socket = UdpSocket::bind(("127.0.0.1", edge)).expect("edge");
    edge_socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let bob_phone = SippRun::spawn(
        None,
        "transfer_refused_uas.xml",
        &[
            "-p",
            &bob.to_string(),
            "-mp",
            "25100",
            "-key",
            "target",
            "+442079460000",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let kitchen = SippRun::spawn(
        Some(sip),
        "uac_invite_rtp.xml",
        &[
            "-s",
            "bob",
            "-key",
            "caller",
            "kitchen",
            "-au",
            "kitchen",
            "-ap",
            "kitchenpw",
            "-mp",
            "25200",
            "-d",
            "3000",
        ],
    );
    let (kcode, kout) = kitchen.wait(Duration::from_secs(20));
    let (bcode, bout) = bob_phone.wait(Duration::from_secs(10));
    assert_eq!(bcode, 0, "bob's REFER got 403 and the call went on: {bout}");
    assert_eq!(kcode, 0, "the kitchen's call went on to its BYE: {kout}");
    let mut buf = [0u8; 2048];
    assert!(
        edge_socket.recv_from(&mut buf).is_err(),
        "no INVITE went to Twilio"
    );
    let rows = wait_cdrs(&h, &admin, 2);
    let blocked: Vec<_> = rows
        .iter()
        .filter(|r| r["disposition"] == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{rows:?}");
    assert_eq!(blocked[0]["to_number"], "+442079460000");
    assert!(log_of(&h).contains("transfer to an external number refused"));
}

#[test]
fn info_dtmf_reaches_a_phone_without_telephone_event_as_info_and_rfc4733_comes_back_as_info() {
    // The relay's first port pair faces the caller: 25300.
    let h = start_household(
        "+15550001111",
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &[],
        "25300-25319",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let bob_rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp socket");
    let uas = SippRun::spawn(
        None,
        "info_dtmf_info_uas.xml",
        &[
            "-p",
            &bob.to_string(),
            "-key",
            "rtp_port",
            &bob_rtp.local_addr().unwrap().port().to_string(),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    // Alice offers telephone-event and sends no audio of her own: the
    // test sends her RFC 4733 event from its own socket.
    let uac = SippRun::spawn(
        Some(sip),
        "info_dtmf_uac.xml",
        &[
            "-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alicepw", "-mp",
            "25400",
        ],
    );
    let answered = common::wait_for(Duration::from_secs(8), || {
        let r = h.call("GET", "/api/calls", Some(&admin), None);
        (r.json()["items"][0]["state"] == "answered").then_some(())
    });
    if answered.is_none() {
        let (_, uout) = uac.wait(Duration::from_secs(1));
        let (_, sout) = uas.wait(Duration::from_secs(1));
        panic!(
            "the call is answered: alice: {uout}\nbob: {sout}\n{}",
            log_of(&h)
        );
    }
    // After her two INFOs went on as INFO: the key 7 as RFC 4733.
    std::thread::sleep(Duration::from_millis(1700));
    let alice_rtp = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let relay: SocketAddr = "127.0.0.1:25300".parse().unwrap();
    let packet = |seq: u16, end: bool, duration: u16| {
        let mut p = vec![0x80, 101, 0, 0, 0, 0, 0x1f, 0x40, 0, 0, 0x0a, 0x11];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend([7, if end { 0x8a } else { 0x0a }]);
        p.extend(duration.to_be_bytes());
        p
    };
    alice_rtp.send_to(&packet(1, false, 160), relay).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    alice_rtp.send_to(&packet(2, false, 320), relay).unwrap();
    for seq in 3..6 {
        std::thread::sleep(Duration::from_millis(20));
        alice_rtp.send_to(&packet(seq, true, 800), relay).unwrap();
    }
    let (ucode, uout) = uac.wait(Duration::from_secs(20));
    let (scode, sout) = uas.wait(Duration::from_secs(10));
    assert_eq!(ucode, 0, "alice's INFOs answered: {uout}\n{}", log_of(&h));
    assert_eq!(
        scode,
        0,
        "bob got 5 and # as INFO, then 7 from RFC 4733: {sout}\n{}",
        log_of(&h)
    );
    assert!(sout.contains("Duration=100"), "7 held 100 ms: {sout}");
    // The events were not relayed to bob as RTP.
    bob_rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = bob_rtp.recv_from(&mut buf) {
        assert_ne!(
            buf[1] & 0x7f,
            101,
            "no telephone-event to bob: {:?}",
            &buf[..n]
        );
    }
}
