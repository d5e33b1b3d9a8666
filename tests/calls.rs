//! Calls through the real binary with real peers on loopback: sipp as
//! phones (and as Twilio's SIP edge), the relay carrying RTP both ways,
//! hold music, CANCEL races, vanished phones, CDRs and the calls API.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::calls::{calls, kitchen_dials_out, register, start, start_household, wait_cdrs};
use common::{free_udp_port, provision_devices, setup_admin, sipp, Homeline, SippRun, Start};

/// Twilio's edge (a sipp scenario) calling the household's number
/// +15550001111 from +15557654321, answering the digest challenge with the
/// SIP credentials, its RTP on `media_port`.
fn twilio_calls_in(sip: SocketAddr, scenario: &str, media_port: &str, extra: &[&str]) -> SippRun {
    let mut args = vec![
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
        media_port,
    ];
    args.extend_from_slice(extra);
    SippRun::spawn(Some(sip), scenario, &args)
}

#[test]
fn phone_calls_phone_with_rtp_relayed_both_ways() {
    let h = start(
        &[("alice", "alicepw"), ("bob", "bobpw")],
        "21000-21019",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let uas = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &bob.to_string(), "-mp", "22100"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let uac = SippRun::spawn(
        Some(sip),
        "uac_invite_rtp.xml",
        &[
            "-s", "bob", "-key", "caller", "alice", "-au", "alice", "-ap", "alicepw", "-mp",
            "22000", "-d", "3000",
        ],
    );
    // While the call is up, the relay counts packets from and to both sides.
    let seen = common::wait_for(Duration::from_secs(10), || {
        let v = calls(&h, &admin);
        let c = v["items"].as_array()?.first()?.clone();
        let ok = c["state"] == "answered"
            && c["rtp_received"][0].as_u64()? > 20
            && c["rtp_received"][1].as_u64()? > 20
            && c["rtp_sent"][0].as_u64()? > 20
            && c["rtp_sent"][1].as_u64()? > 20;
        ok.then_some(c)
    });
    let (uac_code, uac_out) = uac.wait(Duration::from_secs(20));
    let (uas_code, uas_out) = uas.wait(Duration::from_secs(10));
    assert!(
        seen.is_some(),
        "RTP relayed both ways\nUAC: {uac_out}\nUAS: {uas_out}"
    );
    let c = seen.unwrap();
    assert_eq!(
        (
            c["direction"].as_str(),
            c["from"].as_str(),
            c["to"].as_str()
        ),
        (Some("internal"), Some("alice"), Some("bob"))
    );
    assert_eq!(uac_code, 0, "caller: {uac_out}");
    assert_eq!(uas_code, 0, "callee: {uas_out}");
    // The call is gone and one CDR tells its story.
    assert_eq!(calls(&h, &admin)["total"], 0);
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let cdr = &rows[0];
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["direction"], "internal");
    assert_eq!(cdr["hangup_cause"], "caller hung up");
    assert!(cdr["duration_secs"].as_i64().unwrap() >= 2, "{cdr}");
}

#[test]
fn twilio_calls_in_through_the_sip_domain_path_and_the_phone_answers() {
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21100-21119",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let kitchen = free_udp_port();
    register(sip, "kitchen", "kitchenpw", kitchen);
    let phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &kitchen.to_string(), "-mp", "22300"],
    );
    std::thread::sleep(Duration::from_millis(300));
    // Twilio's <Dial><Sip username password> INVITE: digest with the trunk credentials.
    let twilio = twilio_calls_in(sip, "uac_invite_rtp.xml", "22200", &["-d", "2000"]);
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (pcode, pout) = phone.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "Twilio edge: {out}\nphone: {pout}");
    assert_eq!(pcode, 0, "phone: {pout}");
    assert!(
        pout.contains("From: <sip:+15557654321@"),
        "the phone sees the caller's number: {pout}"
    );
    let rows = wait_cdrs(&h, &admin, 1);
    let cdr = &rows[0];
    assert_eq!(cdr["direction"], "inbound", "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(
        (cdr["from_number"].as_str(), cdr["to_number"].as_str()),
        (Some("+15557654321"), Some("+15550001111"))
    );
    assert!(
        cdr["did_id"].as_i64().is_some() && cdr["device_id"].as_i64().is_some(),
        "{cdr}"
    );
}

#[test]
fn phone_calls_out_through_twilio_answering_its_challenge_with_the_households_number() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21200-21219",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let tout = kitchen_dials_out(&h, edge, 22400, 22500, 2000);
    assert!(
        tout.contains("INVITE sip:+14155550100@home.sip.twilio.com"),
        "E.164 to the SIP Domain: {tout}"
    );
    assert!(
        tout.contains("From: <sip:+15550001111@home.sip.twilio.com>"),
        "caller ID is the DID: {tout}"
    );
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(rows[0]["direction"], "outbound");
    assert_eq!(rows[0]["disposition"], "answered");
    assert_eq!(rows[0]["to_number"], "+14155550100");
}

#[test]
fn the_toll_fraud_guard_refuses_foreign_numbers_and_says_so() {
    let edge = free_udp_port();
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21300-21319",
        &[("HOMELINE_TWILIO_SIP_EDGE", &format!("127.0.0.1:{edge}"))],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    for dialled in ["+442079460000", "1-876-555-0100"] {
        let (code, out) = sipp(
            h.sip(),
            "uac_invite_refused.xml",
            &[
                "-s",
                dialled,
                "-key",
                "caller",
                "kitchen",
                "-au",
                "kitchen",
                "-ap",
                "kitchenpw",
            ],
        );
        assert_eq!(code, 0, "{dialled} refused with 403: {out}");
    }
    let rows = wait_cdrs(&h, &admin, 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(r["disposition"], "blocked", "{r}");
        assert!(
            r["hangup_cause"]
                .as_str()
                .unwrap()
                .contains("toll-fraud guard"),
            "{r}"
        );
    }
    let log = std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    assert!(log.contains("refused by the toll-fraud guard"), "logged");
}

#[test]
fn baresip_calls_baresip_the_tone_arrives_and_hold_plays_music() {
    let h = start(
        &[("alice", "alicepw"), ("bob", "bobpw")],
        "21400-21419",
        &[],
    );
    let sip = h.sip().to_string();
    let mut bob = common::baresip::Baresip::start("bob", "bobpw", &sip, "20500-20519", "sine:1000");
    let mut alice =
        common::baresip::Baresip::start("alice", "alicepw", &sip, "20600-20619", "sine:440");
    for phone in [&mut alice, &mut bob] {
        let registered = common::wait_for(Duration::from_secs(10), || {
            let r = phone.command("reginfo");
            r["data"]
                .as_str()
                .is_some_and(|d| d.contains("OK"))
                .then_some(())
        });
        assert!(registered.is_some(), "registered:\n{}", phone.log());
    }
    alice.command(&format!("dial sip:bob@{sip}"));
    assert!(
        alice
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "alice's call is up:\n{}\n{}",
        alice.log(),
        bob.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    // Alice holds: bob hears Homeline's music instead of her tone.
    alice.command("hold");
    std::thread::sleep(Duration::from_secs(4));
    alice.command("resume");
    std::thread::sleep(Duration::from_secs(2));
    alice.command("hangup");
    assert!(
        bob.wait_event("CALL_CLOSED", Duration::from_secs(5))
            .is_some(),
        "bob saw the BYE:\n{}",
        bob.log()
    );
    bob.stop();
    alice.stop();
    let bob_heard = bob.received_wav().expect("bob's recording");
    let alice_heard = alice.received_wav().expect("alice's recording");
    let (ok, report) = common::baresip::tone_check(&bob_heard, 440.0, 3.0);
    assert!(ok, "bob heard alice's 440 Hz through the relay: {report}");
    let (ok, report) = common::baresip::tone_check(&alice_heard, 1000.0, 2.0);
    assert!(ok, "alice heard bob's 1000 Hz: {report}");
    // The hold tune's second note (E5, 659 Hz) plays 1-2 s into the music.
    let (ok, report) = common::baresip::tone_check(&bob_heard, 659.25, 0.5);
    assert!(ok, "bob heard the hold music while held: {report}");
}

#[test]
fn a_phone_that_vanishes_mid_call_is_hung_up_by_the_media_timeout() {
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21500-21519",
        &[("HOMELINE_MEDIA_TIMEOUT_SECS", "2")],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let kitchen = free_udp_port();
    register(sip, "kitchen", "kitchenpw", kitchen);
    let phone = SippRun::spawn(
        None,
        "uas_answer_silent.xml",
        &["-p", &kitchen.to_string(), "-mp", "22700"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let twilio = twilio_calls_in(sip, "uac_until_bye.xml", "22600", &[]);
    // The phone re-registering mid-call does not drop the call.
    std::thread::sleep(Duration::from_millis(800));
    let again = free_udp_port();
    register(sip, "kitchen", "kitchenpw", again);
    assert_eq!(
        calls(&h, &admin)["total"],
        1,
        "the call survives a re-registration"
    );
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (pcode, pout) = phone.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "Twilio's leg got a BYE: {out}");
    assert_eq!(pcode, 0, "phone: {pout}");
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(rows[0]["disposition"], "answered");
    assert_eq!(
        rows[0]["hangup_cause"], "media timeout: no RTP from the phone",
        "{}",
        rows[0]
    );
}

/// A caller written by hand, to time a CANCEL against the callee's 200.
struct RawCaller {
    sock: std::net::UdpSocket,
    to: SocketAddr,
    port: u16,
    call_id: String,
}

impl RawCaller {
    fn new(to: SocketAddr, call_id: &str) -> RawCaller {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        RawCaller {
            sock,
            to,
            port,
            call_id: call_id.to_string(),
        }
    }

    fn send(&self, text: &str) {
        self.sock.send_to(text.as_bytes(), self.to).expect("send");
    }

    fn request(
        &self,
        method: &str,
        branch: &str,
        cseq: u32,
        to_tag: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        };
        format!(
            "{method} sip:bob@{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@{to}>;tag=race\r\nTo: <sip:bob@{to}>{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:alice@127.0.0.1:{port}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            to = self.to,
            port = self.port,
            cid = self.call_id,
            len = body.len()
        )
    }

    /// Waits for a response matching `pred` (status line and CSeq method).
    fn expect(&self, within: Duration, pred: impl Fn(u16, &str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        let mut buf = [0u8; 65535];
        while std::time::Instant::now() < deadline {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
                let method = text
                    .lines()
                    .find_map(|l| l.strip_prefix("CSeq: "))
                    .and_then(|c| c.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string();
                if pred(status, &method) {
                    return Some(text);
                }
            }
        }
        None
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn cancel_racing_the_answer_leaves_no_call_behind() {
    let h = start(
        &[("alice", "alicepw"), ("bob", "bobpw")],
        "21600-21619",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let bob = free_udp_port();
    register(sip, "bob", "bobpw", bob);
    let sdp = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 22800 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let mut outcomes = Vec::new();
    for (i, delay_ms) in [0u64, 3, 15].into_iter().enumerate() {
        let phone = SippRun::spawn(
            None,
            "uas_answer_now.xml",
            &["-p", &bob.to_string(), "-mp", "22900"],
        );
        std::thread::sleep(Duration::from_millis(300));
        let c = RawCaller::new(sip, &format!("race-{i}@test"));
        let ct = "Content-Type: application/sdp\r\n";
        c.send(&c.request("INVITE", &format!("r{i}a"), 1, "", ct, sdp));
        let challenge = c
            .expect(Duration::from_secs(3), |s, _| s == 407)
            .expect("407");
        let to_tag = header(&challenge, "To")
            .and_then(|t| t.split("tag=").nth(1))
            .unwrap_or("")
            .to_string();
        c.send(&c.request("ACK", &format!("r{i}a"), 1, &to_tag, "", ""));
        let auth = homeline::sip::auth::answer_challenge(
            header(&challenge, "Proxy-Authenticate").expect("challenge"),
            "INVITE",
            &format!("sip:bob@{sip}"),
            "alice",
            "alicepw",
            "0a4f113b",
        )
        .expect("answerable");
        let extra = format!("{ct}Proxy-Authorization: {auth}\r\n");
        c.send(&c.request("INVITE", &format!("r{i}b"), 2, "", &extra, sdp));
        std::thread::sleep(Duration::from_millis(delay_ms));
        c.send(&c.request("CANCEL", &format!("r{i}b"), 2, "", "", ""));
        let cancel_ok = c.expect(Duration::from_secs(3), |s, m| m == "CANCEL" && s >= 200);
        assert!(
            cancel_ok
                .as_deref()
                .is_some_and(|r| r.starts_with("SIP/2.0 200")),
            "CANCEL answered 200: {cancel_ok:?}"
        );
        let fin = c
            .expect(Duration::from_secs(3), |s, m| m == "INVITE" && s >= 200)
            .expect("a final answer");
        let status: u16 = fin[8..11].parse().expect("status");
        let tag = header(&fin, "To")
            .and_then(|t| t.split("tag=").nth(1))
            .unwrap_or("")
            .to_string();
        if status == 200 {
            // The answer won: ACK it and hang up like a phone would.
            c.send(&c.request("ACK", &format!("r{i}c"), 2, &tag, "", ""));
            c.send(&c.request("BYE", &format!("r{i}d"), 3, &tag, "", ""));
            assert!(
                c.expect(Duration::from_secs(3), |s, m| m == "BYE" && s == 200)
                    .is_some(),
                "BYE answered"
            );
        } else {
            assert_eq!(status, 487, "{fin}");
            c.send(&c.request("ACK", &format!("r{i}b"), 2, &tag, "", ""));
        }
        outcomes.push(status);
        let (code, out) = phone.wait(Duration::from_secs(15));
        assert_eq!(
            code, 0,
            "the phone got its ACK and BYE either way (delay {delay_ms} ms): {out}"
        );
    }
    eprintln!("CANCEL race outcomes (INVITE final statuses): {outcomes:?}");
    assert_eq!(
        calls(&h, &admin)["total"],
        0,
        "no call left behind ({outcomes:?})"
    );
    let rows = wait_cdrs(&h, &admin, 3);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in rows {
        assert!(
            r["disposition"] == "answered" || r["disposition"] == "canceled",
            "{r}"
        );
    }
}

/// A household for transfers: its number rings bob; carol is a phone of
/// nobody's (the transfer target). Both are registered from these ports.
struct Transferable {
    h: Homeline,
    admin: String,
    sip: SocketAddr,
    bob: u16,
    carol: u16,
}

fn transferable(rtp: &str) -> Transferable {
    let dir = tempfile::tempdir().expect("tempdir");
    common::provision_household(dir.path(), "+15550001111", &[("bob", "bobpw")]);
    provision_devices(dir.path(), &[("carol", "carolpw")]);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![("HOMELINE_MEDIA_RTP_PORTS".into(), rtp.into())],
        ..Start::default()
    });
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let (bob, carol) = (free_udp_port(), free_udp_port());
    register(sip, "bob", "bobpw", bob);
    register(sip, "carol", "carolpw", carol);
    Transferable {
        h,
        admin,
        sip,
        bob,
        carol,
    }
}

#[test]
fn a_twilio_call_is_blind_transferred_to_another_phone() {
    let Transferable {
        h,
        admin,
        sip,
        bob,
        carol,
    } = transferable("21700-21719");
    let carol_phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &carol.to_string(), "-mp", "23300"],
    );
    let bob_phone = SippRun::spawn(
        None,
        "uas_answer_then_refer.xml",
        &[
            "-p",
            &bob.to_string(),
            "-mp",
            "23200",
            "-key",
            "target",
            "carol",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let twilio = twilio_calls_in(sip, "uac_until_bye.xml", "23100", &[]);
    let (bcode, bout) = bob_phone.wait(Duration::from_secs(20));
    let log = std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    assert_eq!(bcode, 0, "bob transferred and was released: {bout}\n{log}");
    // Twilio's caller now talks to carol through the same call.
    let talking = common::wait_for(Duration::from_secs(5), || {
        let c = calls(&h, &admin)["items"].as_array()?.first()?.clone();
        let before = c["rtp_sent"][1].as_u64()?;
        std::thread::sleep(Duration::from_millis(300));
        let after = calls(&h, &admin)["items"][0]["rtp_sent"][1].as_u64()?;
        (after > before).then_some(c)
    })
    .expect("media flows to carol after the transfer");
    let id = talking["id"].as_u64().expect("id");
    let r = h.call("DELETE", &format!("/api/calls/{id}"), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    let (ccode, cout) = carol_phone.wait(Duration::from_secs(10));
    assert_eq!(tcode, 0, "Twilio's leg got the BYE: {tout}");
    assert_eq!(ccode, 0, "carol got the BYE: {cout}");
    assert!(
        cout.contains("From: <sip:+15557654321@"),
        "carol sees the original caller: {cout}"
    );
    let rows = wait_cdrs(&h, &admin, 1);
    assert_eq!(
        rows[0]["hangup_cause"], "hung up from the web UI",
        "{}",
        rows[0]
    );
}

/// A phone written by hand (bob), for the attended transfer: it answers
/// one call, places another and REFERs with Replaces.
struct RawPhone {
    sock: std::net::UdpSocket,
    port: u16,
    homeline: SocketAddr,
}

impl RawPhone {
    fn recv(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        let mut buf = [0u8; 65535];
        while std::time::Instant::now() < deadline {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if pred(&text) {
                    return Some(text);
                }
            }
        }
        None
    }

    fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.homeline)
            .expect("send");
    }

    /// Answers a request 200 with `extra` headers and `body`, adding `tag` to To if missing.
    fn answer(&self, req: &str, tag: &str, extra: &str, body: &str) {
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            for line in req.lines().filter(|l| l.starts_with(&format!("{name}: "))) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        let to = header(req, "To").unwrap_or("");
        if to.contains("tag=") {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={tag}\r\n"));
        }
        out.push_str(&format!(
            "Contact: <sip:bob@127.0.0.1:{}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        ));
        self.send(&out);
    }
}

fn tag_of(value: &str) -> String {
    value
        .split("tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
        .unwrap_or_default()
}

fn uri_of(value: &str) -> String {
    value
        .split('<')
        .nth(1)
        .and_then(|v| v.split('>').next())
        .unwrap_or("")
        .to_string()
}

#[test]
fn an_attended_transfer_joins_the_caller_to_the_consulted_phone() {
    let Transferable {
        h,
        admin,
        sip,
        bob: bob_port,
        carol,
    } = transferable("21800-21829");
    let bob = RawPhone {
        sock: std::net::UdpSocket::bind(("127.0.0.1", bob_port)).expect("bob's port"),
        port: bob_port,
        homeline: sip,
    };
    bob.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let carol_phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &carol.to_string(), "-mp", "23600"],
    );
    let twilio = twilio_calls_in(sip, "uac_until_bye.xml", "23400", &[]);
    let sdp = |port: u16| {
        format!("v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    };
    let ct = "Content-Type: application/sdp\r\n";
    // Call 1: Twilio's caller rings bob, who answers.
    let invite1 = bob
        .recv(Duration::from_secs(5), |m| m.starts_with("INVITE "))
        .expect("bob rings");
    bob.answer(&invite1, "bob1", ct, &sdp(23500));
    bob.recv(Duration::from_secs(3), |m| m.starts_with("ACK "))
        .expect("ACK for call 1");
    let d1_call_id = header(&invite1, "Call-ID").unwrap().to_string();
    let d1_homeline = header(&invite1, "From").unwrap().to_string();
    let d1_contact = uri_of(header(&invite1, "Contact").unwrap());
    // Call 2: bob consults carol.
    let c2 = "consult-1@bob";
    let invite2 = |cseq: u32, branch: &str, auth: &str| {
        format!(
            "INVITE sip:carol@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{bob_port};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:bob@{sip}>;tag=bob2\r\nTo: <sip:carol@{sip}>\r\nCall-ID: {c2}\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:bob@127.0.0.1:{bob_port}>\r\n{ct}{auth}Content-Length: {}\r\n\r\n{}",
            sdp(23510).len(),
            sdp(23510)
        )
    };
    bob.send(&invite2(1, "c2a", ""));
    let challenge = bob
        .recv(Duration::from_secs(3), |m| m.starts_with("SIP/2.0 407"))
        .expect("407");
    bob.send(&format!(
        "ACK sip:carol@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{bob_port};branch=z9hG4bKc2a\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{sip}>;tag=bob2\r\nTo: {}\r\nCall-ID: {c2}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&challenge, "To").unwrap()
    ));
    let auth = homeline::sip::auth::answer_challenge(
        header(&challenge, "Proxy-Authenticate").unwrap(),
        "INVITE",
        &format!("sip:carol@{sip}"),
        "bob",
        "bobpw",
        "0b0b",
    )
    .expect("answerable");
    bob.send(&invite2(
        2,
        "c2b",
        &format!("Proxy-Authorization: {auth}\r\n"),
    ));
    let ok2 = bob
        .recv(Duration::from_secs(5), |m| {
            m.starts_with("SIP/2.0 200") && m.contains("CSeq: 2 INVITE")
        })
        .expect("carol answers the consultation");
    let h2_tag = tag_of(header(&ok2, "To").unwrap());
    let d2_contact = uri_of(header(&ok2, "Contact").unwrap());
    bob.send(&format!(
        "ACK {d2_contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{bob_port};branch=z9hG4bKc2c\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{sip}>;tag=bob2\r\nTo: {}\r\nCall-ID: {c2}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&ok2, "To").unwrap()
    ));
    assert_eq!(
        calls(&h, &admin)["total"],
        2,
        "two calls up before the transfer"
    );
    // REFER with Replaces in call 1: join the caller to carol.
    let replaces = format!("{c2}%3Bto-tag%3D{h2_tag}%3Bfrom-tag%3Dbob2");
    bob.send(&format!(
        "REFER {d1_contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{bob_port};branch=z9hG4bKr1\r\nMax-Forwards: 70\r\n\
         From: {};tag=bob1\r\nTo: {d1_homeline}\r\nCall-ID: {d1_call_id}\r\nCSeq: 1 REFER\r\n\
         Contact: <sip:bob@127.0.0.1:{bob_port}>\r\nRefer-To: <sip:carol@{sip}?Replaces={replaces}>\r\nContent-Length: 0\r\n\r\n",
        header(&invite1, "To").unwrap()
    ));
    bob.recv(Duration::from_secs(3), |m| m.starts_with("SIP/2.0 202"))
        .expect("202 Accepted");
    // Homeline reports success and releases bob from both calls.
    let mut byes = 0;
    let mut notified = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (byes < 2 || !notified) && std::time::Instant::now() < deadline {
        if let Some(m) = bob.recv(Duration::from_millis(500), |m| {
            m.starts_with("NOTIFY ") || m.starts_with("BYE ")
        }) {
            if m.starts_with("NOTIFY ") {
                notified |= m.contains("SIP/2.0 200 OK");
            } else {
                byes += 1;
            }
            bob.answer(&m, "x", "", "");
        }
    }
    assert!(
        notified && byes == 2,
        "NOTIFY 200 and a BYE for each of bob's calls (got {byes})"
    );
    let joined = common::wait_for(Duration::from_secs(5), || {
        let v = calls(&h, &admin);
        let c = v["items"].as_array()?.first()?.clone();
        let before = c["rtp_sent"][1].as_u64()?;
        std::thread::sleep(Duration::from_millis(300));
        let after = calls(&h, &admin)["items"][0]["rtp_sent"][1].as_u64()?;
        (v["total"] == 1 && after > before).then_some(c)
    })
    .expect("one call left, media flowing from the caller towards carol");
    let id = joined["id"].as_u64().expect("id");
    assert_eq!(
        h.call("DELETE", &format!("/api/calls/{id}"), Some(&admin), None)
            .status,
        200
    );
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    let (ccode, cout) = carol_phone.wait(Duration::from_secs(10));
    assert_eq!(tcode, 0, "the caller got its BYE: {tout}");
    assert_eq!(ccode, 0, "carol got her BYE: {cout}");
}

#[test]
fn trunking_origination_is_trusted_by_address_and_twilio_credentials_only_from_twilio() {
    // Elastic SIP Trunking: Twilio's INVITE carries no credentials.
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21900-21919",
        &[
            ("HOMELINE_TWILIO_SIP_MODE", "trunk"),
            ("HOMELINE_TWILIO_SIP_SOURCES", "127.0.0.1"),
        ],
    );
    let sip = h.sip();
    let kitchen = free_udp_port();
    register(sip, "kitchen", "kitchenpw", kitchen);
    let phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &kitchen.to_string(), "-mp", "23800"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let twilio = SippRun::spawn(
        Some(sip),
        "uac_invite_rtp.xml",
        &[
            "-s",
            "+15550001111",
            "-key",
            "caller",
            "+15557654321",
            "-mp",
            "23700",
            "-d",
            "1000",
        ],
    );
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (pcode, pout) = phone.wait(Duration::from_secs(10));
    assert_eq!(
        code, 0,
        "origination without digest from Twilio's address: {out}"
    );
    assert_eq!(pcode, 0, "phone: {pout}");
    assert!(
        !out.contains("SIP/2.0 407"),
        "no challenge in trunking mode: {out}"
    );
    // SIP Domain mode with Twilio's addresses configured: the right
    // credentials from another address are refused.
    let h2 = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw")],
        &[],
        "21920-21939",
        &[("HOMELINE_TWILIO_SIP_SOURCES", "54.172.60.0/30")],
    );
    let (code, out) = sipp(
        h2.sip(),
        "uac_invite_refused.xml",
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
        ],
    );
    assert_eq!(
        code, 0,
        "403 for Twilio's credentials from a non-Twilio address: {out}"
    );
}

#[test]
fn the_web_ui_transfers_a_twilio_call_to_another_phone() {
    let Transferable {
        h,
        admin,
        sip,
        bob,
        carol,
    } = transferable("21940-21959");
    let bob_phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &bob.to_string(), "-mp", "24000"],
    );
    let carol_phone = SippRun::spawn(
        None,
        "uas_answer_rtp.xml",
        &["-p", &carol.to_string(), "-mp", "24100"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let twilio = twilio_calls_in(sip, "uac_until_bye.xml", "23900", &[]);
    let call = common::wait_for(Duration::from_secs(5), || {
        let c = calls(&h, &admin)["items"].as_array()?.first()?.clone();
        (c["state"] == "answered").then_some(c)
    })
    .expect("bob answered");
    let id = call["id"].as_u64().unwrap();
    let body = serde_json::json!({ "to": "nobody" });
    assert_eq!(
        h.call(
            "POST",
            &format!("/api/calls/{id}/transfer"),
            Some(&admin),
            Some(&body)
        )
        .status,
        400
    );
    let body = serde_json::json!({ "to": "carol" });
    assert_eq!(
        h.call("POST", "/api/calls/999/transfer", Some(&admin), Some(&body))
            .status,
        404
    );
    let r = h.call(
        "POST",
        &format!("/api/calls/{id}/transfer"),
        Some(&admin),
        Some(&body),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let (bcode, bout) = bob_phone.wait(Duration::from_secs(10));
    assert_eq!(bcode, 0, "bob was released with a BYE: {bout}");
    let moved = common::wait_for(Duration::from_secs(5), || {
        let c = calls(&h, &admin)["items"].as_array()?.first()?.clone();
        (c["device_id"] != call["device_id"]).then_some(c)
    });
    assert!(moved.is_some(), "the call is now carol's");
    assert_eq!(
        h.call("DELETE", &format!("/api/calls/{id}"), Some(&admin), None)
            .status,
        200
    );
    let (tcode, tout) = twilio.wait(Duration::from_secs(10));
    let (ccode, cout) = carol_phone.wait(Duration::from_secs(10));
    assert_eq!(tcode, 0, "{tout}");
    assert_eq!(ccode, 0, "{cout}");
}

#[test]
fn hold_music_uploads_are_validated_converted_and_kept() {
    let mut h = start(&[], "21960-21969", &[]);
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let upload = |h: &Homeline, ct: &str, body: &[u8]| {
        let cookie = format!("homeline_session={admin}");
        h.request(
            "PUT",
            "/api/system/hold-music",
            &[
                ("Cookie", &cookie),
                ("X-Requested-With", "homeline"),
                ("Content-Type", ct),
            ],
            body,
        )
    };
    let shown = h
        .call("GET", "/api/system/hold-music", Some(&admin), None)
        .json();
    assert_eq!(
        (shown["source"].as_str(), shown["seconds"].as_f64()),
        (Some("default"), Some(8.0))
    );
    assert_eq!(upload(&h, "text/plain", b"la la la").status, 415);
    let r = upload(&h, "audio/wav", b"RIFF....WAVEnot really");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR"),
        "{}",
        r.text()
    );
    let wav = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/media/tone1000_5s_8k.wav"),
    )
    .unwrap();
    let r = upload(&h, "audio/wav", &wav);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["source"].as_str(), r.json()["seconds"].as_f64()),
        (Some("uploaded"), Some(5.0))
    );
    assert!(h.data().join("hold-music.wav").exists());
    h.restart();
    let admin2 = h
        .login("admin@home.test", "correct horse battery")
        .expect("login");
    let shown = h
        .call("GET", "/api/system/hold-music", Some(&admin2), None)
        .json();
    assert_eq!(shown["source"], "uploaded", "kept across a restart");
    let shown = h
        .call("DELETE", "/api/system/hold-music", Some(&admin2), None)
        .json();
    assert_eq!(shown["source"], "default");
    assert!(!h.data().join("hold-music.wav").exists());
}
