//! Call set-up against real peers on loopback (sipp as phones and as
//! Twilio's edge): delayed offer in both directions (Twilio calling in
//! without SDP, a phone calling out without SDP) and its failure (an ACK
//! without the answer), a 183's early media reaching the caller before the
//! 200, reliable provisional responses (PRACK) on both legs at once, and
//! the 420 an INVITE requiring an unknown extension gets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::calls::{calls, register, start_household, wait_cdrs};
use common::{free_udp_port, setup_admin, sipp, Homeline, SippRun};

/// The live call once it is `state` with more than `packets` relayed each
/// way (received from and sent to both sides).
fn wait_relayed(h: &Homeline, admin: &str, state: &str, packets: u64) -> Option<serde_json::Value> {
    common::wait_for(Duration::from_secs(10), || {
        let v = calls(h, admin);
        let c = v["items"].as_array()?.first()?.clone();
        let ok = c["state"] == state
            && (0..2).all(|i| {
                c["rtp_received"][i].as_u64().unwrap_or(0) > packets
                    && c["rtp_sent"][i].as_u64().unwrap_or(0) > packets
            });
        ok.then_some(c)
    })
}

/// A phone (sipp) calling `dialed` as `user`.
fn phone_calls(sip: SocketAddr, scenario: &str, user: &str, dialed: &str, media: &str) -> SippRun {
    SippRun::spawn(
        Some(sip),
        scenario,
        &[
            "-s",
            dialed,
            "-key",
            "caller",
            user,
            "-au",
            user,
            "-ap",
            &format!("{user}pw"),
            "-mp",
            media,
            "-d",
            "2500",
        ],
    )
}

/// A phone (sipp UAS) registered as `user`, answering with `scenario`.
fn phone_answers(sip: SocketAddr, scenario: &str, user: &str, media: &str) -> SippRun {
    let port = free_udp_port();
    register(sip, user, &format!("{user}pw"), port);
    let uas = SippRun::spawn(None, scenario, &["-p", &port.to_string(), "-mp", media]);
    std::thread::sleep(Duration::from_millis(300));
    uas
}

#[test]
fn delayed_offer_twilio_calls_in_without_sdp_and_answers_in_the_ack() {
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "26000-26019",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let phone = phone_answers(sip, "uas_answer_rtp.xml", "kitchen", "27000");
    // Twilio's edge: an INVITE without SDP, with the trunk's digest.
    let twilio = SippRun::spawn(
        Some(sip),
        "delayed_uac_invite.xml",
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
            "27100",
            "-d",
            "2500",
        ],
    );
    let seen = wait_relayed(&h, &admin, "answered", 20);
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (pcode, pout) = phone.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "Twilio edge: {out}\nphone: {pout}");
    assert_eq!(pcode, 0, "phone: {pout}");
    assert!(seen.is_some(), "RTP relayed both ways\n{out}\n{pout}");
    // The phone was offered both codecs; Twilio's ACK carried the answer.
    assert!(pout.contains("RTP/AVP 0 8 101"), "Homeline's offer: {pout}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(
        (cdr["direction"].as_str(), cdr["disposition"].as_str()),
        (Some("inbound"), Some("answered")),
        "{cdr}"
    );
}

#[test]
fn delayed_offer_a_phone_calls_out_without_sdp_through_twilio() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "26100-26119",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let twilio = SippRun::spawn(
        None,
        "twilio_edge_uas.xml",
        &["-p", &edge.to_string(), "-mp", "27200"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let phone = phone_calls(
        sip,
        "delayed_uac_invite.xml",
        "kitchen",
        "4155550100",
        "27300",
    );
    let seen = wait_relayed(&h, &admin, "answered", 20);
    let (code, out) = phone.wait(Duration::from_secs(20));
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "phone: {out}\nTwilio edge: {tout}");
    assert_eq!(tcode, 0, "Twilio edge: {tout}");
    assert!(seen.is_some(), "RTP relayed both ways\n{out}\n{tout}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(
        (cdr["direction"].as_str(), cdr["disposition"].as_str()),
        (Some("outbound"), Some("answered")),
        "{cdr}"
    );
}

#[test]
fn delayed_offer_an_ack_without_the_answer_is_hung_up_with_a_reason_and_a_record() {
    let h = start_household(
        "+15550001111",
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &[],
        "26200-26219",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = phone_answers(sip, "uas_answer_rtp.xml", "bob", "27400");
    let alice = phone_calls(sip, "delayed_uac_no_answer.xml", "alice", "bob", "27500");
    let (code, out) = alice.wait(Duration::from_secs(20));
    let (bcode, bout) = bob.wait(Duration::from_secs(10));
    assert_eq!(
        code, 0,
        "the caller gets a BYE with a Reason: {out}\ncallee: {bout}"
    );
    assert_eq!(bcode, 0, "the callee gets a BYE: {bout}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(cdr["disposition"], "failed", "{cdr}");
    assert!(
        cdr["hangup_cause"]
            .as_str()
            .is_some_and(|c| c.contains("no SDP answer")),
        "{cdr}"
    );
    assert_eq!(calls(&h, &admin)["total"], 0);
}

#[test]
fn early_media_a_183_brings_the_callees_rtp_to_the_caller_before_the_200() {
    let h = start_household(
        "+15550001111",
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &[],
        "26300-26319",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = phone_answers(sip, "early_uas_183_rtp.xml", "bob", "27600");
    let alice = phone_calls(sip, "uac_invite_rtp.xml", "alice", "bob", "27700");
    // Before any answer, the callee's ringback reaches the caller.
    let early = common::wait_for(Duration::from_secs(10), || {
        let v = calls(&h, &admin);
        let c = v["items"].as_array()?.first()?.clone();
        let ok = c["state"] == "ringing"
            && c["rtp_received"][1].as_u64()? > 20
            && c["rtp_sent"][0].as_u64()? > 20;
        ok.then_some(c)
    });
    let answered = wait_relayed(&h, &admin, "answered", 20);
    let (code, out) = alice.wait(Duration::from_secs(20));
    let (bcode, bout) = bob.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "caller: {out}\ncallee: {bout}");
    assert_eq!(bcode, 0, "callee: {bout}");
    assert!(
        early.is_some(),
        "RTP to the caller before the 200\n{out}\n{bout}"
    );
    assert!(answered.is_some(), "then both ways once answered");
    assert!(
        out.contains("SIP/2.0 183 Session Progress") && out.contains("m=audio"),
        "the caller got a 183 with Homeline's SDP: {out}"
    );
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
}

#[test]
fn early_media_twilio_ringback_reaches_a_phone_calling_out_before_the_answer() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "26500-26519",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let twilio = SippRun::spawn(
        None,
        "early_twilio_edge_183.xml",
        &["-p", &edge.to_string(), "-mp", "38000"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let phone = phone_calls(sip, "uac_invite_rtp.xml", "kitchen", "4155550100", "38100");
    let early = common::wait_for(Duration::from_secs(10), || {
        let v = calls(&h, &admin);
        let c = v["items"].as_array()?.first()?.clone();
        let ok = c["state"] == "ringing" && c["rtp_sent"][0].as_u64()? > 20;
        ok.then_some(c)
    });
    let (code, out) = phone.wait(Duration::from_secs(20));
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "phone: {out}\nTwilio edge: {tout}");
    assert_eq!(tcode, 0, "Twilio edge: {tout}");
    assert!(
        early.is_some(),
        "Twilio's ringback before the 200\n{out}\n{tout}"
    );
    assert!(out.contains("SIP/2.0 183 Session Progress"), "{out}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(cdr["direction"], "outbound", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
}

#[test]
fn prack_a_reliable_183_is_pracked_and_relayed_reliably_to_a_caller_requiring_100rel() {
    let h = start_household(
        "+15550001111",
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &[],
        "26400-26419",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    // Bob sends a reliable 183 with SDP and waits for Homeline's PRACK;
    // Alice requires 100rel and PRACKs what Homeline sends her.
    let bob = phone_answers(sip, "prack_uas_reliable_183.xml", "bob", "27800");
    let alice = phone_calls(sip, "prack_uac_require.xml", "alice", "bob", "27900");
    let (code, out) = alice.wait(Duration::from_secs(20));
    let (bcode, bout) = bob.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "caller: {out}\ncallee: {bout}");
    assert_eq!(bcode, 0, "callee (PRACK checked there): {bout}");
    assert!(out.contains("RSeq:"), "{out}");
    assert!(bout.contains("RAck: 1 1 INVITE"), "{bout}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
}

#[test]
fn an_invite_requiring_an_unknown_extension_gets_420() {
    let h = Homeline::start();
    let (code, out) = sipp(h.sip(), "prack_require_unknown.xml", &["-s", "bob"]);
    assert_eq!(code, 0, "{out}");
}
