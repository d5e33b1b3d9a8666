//! Call set-up on virtual time: delayed offer (offer in our 2xx, answer in
//! the ACK, and what happens without one), early media (a 183's SDP
//! relayed, which fork is heard, the switch to the fork that answers) and
//! reliable provisional responses (RFC 3262) on both legs. On the test world
//! of `tests.rs`, over a household of two phones and no trunk.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::tests::{parse_request, phone_at, FakeHost, Out, World, T1};
use super::*;
use crate::media::relay::Side;
use crate::media::sdp::{Codec, Description};
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::transaction::TxKey;
use crate::store::cdrs::Disposition;

/// Kitchen (1, at .1) and Office (2, two contacts: .2 and .12).
fn world() -> World {
    let mut d = Directory::default();
    for (id, user) in [(1, "kitchen"), (2, "office")] {
        d.phones.insert(
            id,
            Phone {
                device_id: id,
                username: user.into(),
                name: user.into(),
                caller_id: None,
            },
        );
    }
    let contact = |user: &str, last: u8| Contact {
        uri: format!("sip:{user}@192.0.2.{last}:5060"),
        protocol: Protocol::Udp,
        source: phone_at(last),
    };
    let mut contacts = HashMap::new();
    contacts.insert(DeviceId(1), vec![contact("kitchen", 1)]);
    contacts.insert(
        DeviceId(2),
        vec![contact("office", 2), contact("office", 12)],
    );
    let config = Config {
        rules: crate::dialplan::DialRules {
            home_country: "1".into(),
            allowed_prefixes: vec![],
            max_concurrent: 4,
            max_per_hour: 20,
        },
        // Past 64·T1, so the PRACK wait ends before the ringing does.
        ring_timeout: Duration::from_secs(60),
        public_ip: None,
        trunk_edge: None,
    };
    let host = FakeHost {
        next: 0,
        contacts,
        ports_left: usize::MAX,
    };
    World::with(d, host, config)
}

fn sdp(addr: &str, port: u16, codecs: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {codecs} 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// Our INVITEs to callees in what a step produced.
trait ForksOf {
    fn forks(&self) -> Vec<Fork>;
}

impl ForksOf for Out {
    fn forks(&self) -> Vec<Fork> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Request {
                    request,
                    route,
                    owner,
                } if request.method == Method::Invite => Some(Fork {
                    invite: request.clone(),
                    route: *route,
                    owner: *owner,
                }),
                _ => None,
            })
            .collect()
    }
}

/// Kitchen's side of a call to Office.
struct Caller {
    invite: Request,
    tx: ServerKey,
    to: String,
    cseq: u32,
}

impl Caller {
    /// Kitchen dials office with `body` (empty: a delayed offer).
    fn new(extra: &str, body: &str) -> Caller {
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let invite = parse_request(&format!(
            "INVITE sip:office@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:kitchen@192.0.2.10>;tag=atag\r\nTo: <sip:office@192.0.2.10>\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:kitchen@192.0.2.1>\r\n{extra}{ctype}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        let tx = (TxKey::server(&invite).expect("key"), Protocol::Udp);
        Caller {
            invite,
            tx,
            to: String::new(),
            cseq: 1,
        }
    }

    fn event(&self) -> Event {
        Event::Invite {
            request: self.invite.clone(),
            caller: super::Caller::Phone {
                device: DeviceId(1),
                username: "kitchen".into(),
            },
            tx: self.tx.clone(),
            route: Route {
                protocol: Protocol::Udp,
                dest: phone_at(1),
            },
        }
    }

    /// Learns our To tag from a response we sent.
    fn heard(&mut self, r: &Response) {
        self.to = r.headers.get(&HeaderName::To).unwrap_or_default().into();
    }

    /// A request in the (early or confirmed) dialog.
    fn request(&mut self, method: &str, cseq: Option<u32>, extra: &str, body: &str) -> Request {
        let cseq = cseq.unwrap_or_else(|| {
            self.cseq += 1;
            self.cseq
        });
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        parse_request(&format!(
            "{method} sip:homeline@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{method}{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:kitchen@192.0.2.10>;tag=atag\r\nTo: {}\r\nCall-ID: c1\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:kitchen@192.0.2.1>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.to,
            body.len()
        ))
    }

    fn ack(&mut self, body: &str) -> Event {
        Event::Ack(self.request("ACK", Some(1), "", body))
    }

    fn in_dialog(&mut self, method: &str, extra: &str) -> Event {
        let request = self.request(method, None, extra, "");
        let tx = (TxKey::server(&request).expect("key"), Protocol::Udp);
        Event::InDialog { request, tx }
    }
}

/// One of our INVITEs to a callee.
#[derive(Clone)]
struct Fork {
    invite: Request,
    route: Route,
    owner: Owner,
}

impl Fork {
    fn respond(&self, status: u16, extra: &[(HeaderName, &str)], body: &str) -> Event {
        let mut r = Response::to(
            &self.invite,
            status,
            crate::sip::message::default_reason(status),
            &format!("btag{}", self.route.dest.ip()),
        );
        r.headers.push(
            HeaderName::Contact,
            format!("<sip:callee@{}>", self.route.dest),
        );
        for (name, value) in extra {
            r.headers.push(name.clone(), *value);
        }
        if !body.is_empty() {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = bytes::Bytes::from(body.to_string());
        }
        Event::Response {
            owner: self.owner,
            response: r,
        }
    }

    fn media(&self, port: u16) -> String {
        sdp(&self.route.dest.ip().to_string(), port, "0")
    }
}

fn start(w: &mut World, a: &Caller) -> (CallId, Vec<Fork>) {
    let f = w.feed(a.event()).forks();
    assert_eq!(f.len(), 2, "office rings on both contacts");
    let Owner::Fork(id, 0) = f[0].owner else {
        panic!("{:?}", f[0].owner);
    };
    (id, f)
}

fn ok_of(out: &Out) -> &Response {
    out.responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("a 200 to the caller")
}

// ---- delayed offer ----

#[test]
fn delayed_offer_our_2xx_offers_what_the_callee_chose_and_the_ack_answers() {
    let mut w = world();
    let mut a = Caller::new("", "");
    let out = w.feed(a.event());
    assert!(out.statuses().is_empty(), "no 488 any more");
    assert!(out.peers(Side::A).is_empty(), "nothing known of A's media");
    let f = out.forks();
    let Owner::Fork(id, _) = f[0].owner else {
        panic!()
    };
    // The callee gets Homeline's offer: both G.711 codecs and events.
    let offer = Description::parse(&f[0].invite.body).expect("an offer to B");
    assert_eq!(offer.audio.codecs, vec![Codec::Pcmu, Codec::Pcma]);
    assert_eq!(offer.audio.telephone_event, Some(101));
    // B answers PCMA: A's 2xx offers PCMA alone, on the relay's A port.
    let out = w.feed(f[0].respond(200, &[], &sdp("192.0.2.2", 31000, "8")));
    let ok = ok_of(&out).clone();
    a.heard(&ok);
    let ours = Description::parse(&ok.body).expect("our offer to A");
    assert_eq!(ours.audio.codecs, vec![Codec::Pcma]);
    assert_eq!(ours.audio.port, 40004);
    assert!(
        out.peers(Side::A).is_empty(),
        "A's address comes with the ACK"
    );
    assert_eq!(
        out.peers(Side::B),
        vec![SocketAddr::new(phone_at(2).ip(), 31000)]
    );
    // The ACK's answer points the relay at the caller; the call is up.
    let out = w.feed(a.ack(&sdp("192.0.2.1", 30000, "8")));
    assert_eq!(
        out.peers(Side::A),
        vec![SocketAddr::from(([192, 0, 2, 1], 30000))]
    );
    assert!(out.outgoing(Method::Bye).is_empty());
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn delayed_offer_an_ack_without_an_answer_ends_the_call_with_a_reason_and_a_record() {
    for (body, cause) in [
        ("", "no SDP answer"),
        (
            sdp("192.0.2.1", 30000, "0").as_str(),
            "does not accept the offered codec",
        ),
        ("hello", "malformed SDP"),
    ] {
        let mut w = world();
        let mut a = Caller::new("", "");
        let (id, f) = start(&mut w, &a);
        let out = w.feed(f[1].respond(200, &[], &sdp("192.0.2.12", 31000, "8")));
        a.heard(ok_of(&out));
        let out = w.feed(a.ack(body));
        let byes = out.outgoing(Method::Bye);
        assert_eq!(byes.len(), 2, "BYE on both legs ({cause})");
        for bye in byes {
            let reason = bye
                .headers
                .get(&HeaderName::Other("Reason".into()))
                .unwrap_or_default();
            assert!(reason.starts_with("SIP;cause=488;text=\""), "{reason}");
            assert!(reason.contains(cause), "{reason}");
        }
        let cdr = out.records()[0];
        assert_eq!(cdr.disposition, Disposition::Failed);
        assert!(cdr
            .hangup_cause
            .as_deref()
            .unwrap_or_default()
            .contains(cause));
        assert_eq!(w.phase(id), None);
    }
}

#[test]
fn an_invite_with_sdp_is_answered_in_the_2xx_and_its_ack_needs_no_body() {
    let mut w = world();
    let mut a = Caller::new("", &sdp("192.0.2.1", 30000, "0 8"));
    let (id, f) = start(&mut w, &a);
    let offer = Description::parse(&f[0].invite.body).expect("offer");
    assert_eq!(
        offer.audio.codecs,
        vec![Codec::Pcmu, Codec::Pcma],
        "A's codecs"
    );
    let out = w.feed(f[0].respond(200, &[], &f[0].media(31000)));
    let ok = ok_of(&out).clone();
    assert!(ok
        .headers
        .get(&HeaderName::Supported)
        .unwrap_or_default()
        .contains("100rel"));
    assert_eq!(
        out.peers(Side::A),
        vec![SocketAddr::from(([192, 0, 2, 1], 30000))]
    );
    a.heard(&ok);
    let out = w.feed(a.ack(""));
    assert!(out.0.is_empty(), "{:?}", out.0);
    assert_eq!(w.phase(id), Some("up"));
}

// ---- early media ----

#[test]
fn a_183_with_sdp_is_relayed_before_the_200_and_the_200_repeats_its_answer() {
    let mut w = world();
    let a = Caller::new("", &sdp("192.0.2.1", 30000, "0"));
    let (id, f) = start(&mut w, &a);
    let out = w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    assert_eq!(out.statuses(), vec![183]);
    let early = out.responses()[0].clone();
    let ours = Description::parse(&early.body).expect("our SDP in the 183");
    assert_eq!(
        (ours.audio.port, ours.audio.addr),
        (40004, IpAddr::from([192, 0, 2, 10]))
    );
    assert_eq!(
        out.peers(Side::B),
        vec![SocketAddr::new(phone_at(2).ip(), 31000)],
        "B's early RTP is relayed"
    );
    assert_eq!(w.phase(id), Some("ringing"));
    // A 180 afterwards tells the caller nothing new.
    assert!(w.feed(f[0].respond(180, &[], "")).statuses().is_empty());
    let out = w.feed(f[0].respond(200, &[], &f[0].media(31000)));
    assert_eq!(ok_of(&out).body, early.body, "the same answer again");
}

#[test]
fn the_first_fork_with_early_media_is_heard_until_it_fails_and_the_answering_fork_wins() {
    let mut w = world();
    let a = Caller::new("", &sdp("192.0.2.1", 30000, "0"));
    let (_id, f) = start(&mut w, &a);
    let first = w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    assert_eq!(
        first.peers(Side::B),
        vec![SocketAddr::new(phone_at(2).ip(), 31000)]
    );
    // A second fork's 183 does not take the early media over.
    let second = w.feed(f[1].respond(183, &[], &f[1].media(32000)));
    assert!(second.peers(Side::B).is_empty());
    assert!(second.statuses().is_empty(), "one 183 to the caller");
    // The first fails: the other fork's early media is heard now.
    let failed = w.feed(f[0].respond(486, &[], ""));
    assert_eq!(
        failed.peers(Side::B),
        vec![SocketAddr::new(phone_at(12).ip(), 32000)]
    );
    assert!(failed.statuses().is_empty(), "a fork is still ringing");
    // It answers from another port: the relay follows the 2xx.
    let out = w.feed(f[1].respond(200, &[], &f[1].media(32010)));
    assert_eq!(
        out.peers(Side::B),
        vec![SocketAddr::new(phone_at(12).ip(), 32010)]
    );
}

#[test]
fn a_200_from_another_fork_than_the_early_media_switches_the_relay() {
    let mut w = world();
    let a = Caller::new("", &sdp("192.0.2.1", 30000, "0"));
    let (_id, f) = start(&mut w, &a);
    w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    let out = w.feed(f[1].respond(200, &[], &f[1].media(32000)));
    assert_eq!(
        out.peers(Side::B),
        vec![SocketAddr::new(phone_at(12).ip(), 32000)]
    );
    assert_eq!(
        out.outgoing(Method::Cancel).len(),
        1,
        "the early fork is cancelled"
    );
    assert_eq!(ok_of(&out).status, 200);
}

#[test]
fn a_delayed_offer_caller_hears_ringing_not_early_sdp() {
    let mut w = world();
    let a = Caller::new("", "");
    let (_id, f) = start(&mut w, &a);
    let out = w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    assert_eq!(out.statuses(), vec![180]);
    assert!(out.responses()[0].body.is_empty());
}

// ---- 100rel towards the callee (we are its UAC) ----

#[test]
fn rfc3262_4_a_reliable_provisional_from_the_callee_is_pracked_once_in_order() {
    let mut w = world();
    let a = Caller::new("", &sdp("192.0.2.1", 30000, "0"));
    let (_id, f) = start(&mut w, &a);
    assert!(f[0]
        .invite
        .headers
        .get(&HeaderName::Supported)
        .unwrap_or_default()
        .contains("100rel"));
    let rel = |rseq: &'static str| [(HeaderName::Require, "100rel"), (HeaderName::RSeq, rseq)];
    let out = w.feed(f[0].respond(180, &rel("7"), ""));
    assert_eq!(out.statuses(), vec![180], "the caller hears ringing");
    let pracks = out.outgoing(Method::Prack);
    assert_eq!(pracks.len(), 1);
    let p = pracks[0];
    assert_eq!(p.headers.get(&HeaderName::RAck), Some("7 1 INVITE"));
    assert_eq!(p.headers.get(&HeaderName::CSeq), Some("2 PRACK"));
    assert!(p
        .headers
        .get(&HeaderName::To)
        .unwrap_or_default()
        .contains("tag=btag192.0.2.2"));
    assert_eq!(p.uri, format!("sip:callee@{}", phone_at(2)));
    // Its retransmission, and one skipping a number, are not PRACKed.
    assert!(w
        .feed(f[0].respond(180, &rel("7"), ""))
        .outgoing(Method::Prack)
        .is_empty());
    assert!(w
        .feed(f[0].respond(183, &rel("9"), ""))
        .outgoing(Method::Prack)
        .is_empty());
    let next = w.feed(f[0].respond(183, &rel("8"), &f[0].media(31000)));
    let p = next.outgoing(Method::Prack)[0];
    assert_eq!(p.headers.get(&HeaderName::RAck), Some("8 1 INVITE"));
    assert_eq!(p.headers.get(&HeaderName::CSeq), Some("3 PRACK"));
    // The answered dialog's CSeq carries on past the PRACKs.
    w.feed(f[0].respond(200, &[], &f[0].media(31000)));
    let call = w.calls.calls.values().next().expect("call");
    assert_eq!(call.up().expect("answered").b.dialog.local_seq, 3);
}

// ---- 100rel towards the caller (we are its UAS) ----

fn reliable_call(w: &mut World) -> (Caller, CallId, Vec<Fork>, Response) {
    let mut a = Caller::new("Require: 100rel\r\n", &sdp("192.0.2.1", 30000, "0"));
    let (id, f) = start(w, &a);
    let out = w.feed(f[0].respond(180, &[], ""));
    assert_eq!(out.statuses(), vec![180]);
    let ringing = out.responses()[0].clone();
    assert_eq!(ringing.headers.get(&HeaderName::Require), Some("100rel"));
    a.heard(&ringing);
    (a, id, f, ringing)
}

fn rseq(r: &Response) -> u32 {
    r.headers
        .get(&HeaderName::RSeq)
        .and_then(|v| v.parse().ok())
        .expect("RSeq")
}

#[test]
fn rfc3262_3_the_caller_gets_reliable_provisionals_one_at_a_time() {
    let mut w = world();
    let (mut a, id, f, ringing) = reliable_call(&mut w);
    let first = rseq(&ringing);
    assert!(
        w.calls.owns(&a.request("PRACK", Some(2), "", "")),
        "the early dialog is known"
    );
    // A 183 with SDP waits for the 180's PRACK.
    let out = w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    assert!(out.statuses().is_empty(), "not before the PRACK");
    // A PRACK naming another response: 481.
    let wrong = a.in_dialog("PRACK", &format!("RAck: {} 1 INVITE\r\n", first + 5));
    assert_eq!(w.feed(wrong).statuses(), vec![481]);
    // The right one: 200, and the 183 goes out reliably, numbered on.
    let out = w.feed(a.in_dialog("PRACK", &format!("RAck: {first} 1 INVITE\r\n")));
    assert_eq!(out.statuses(), vec![183, 200]);
    let early = out.responses()[0];
    assert_eq!(rseq(early), first + 1);
    assert!(!early.body.is_empty());
    // B answers while the 183 with SDP is unacknowledged: the 2xx waits.
    let out = w.feed(f[0].respond(200, &[], &f[0].media(31000)));
    assert!(out.statuses().is_empty(), "§3: no 2xx before that PRACK");
    assert_eq!(w.phase(id), Some("awaiting-ack"));
    let out = w.feed(a.in_dialog("PRACK", &format!("RAck: {} 1 INVITE\r\n", first + 1)));
    assert_eq!(
        out.statuses(),
        vec![200, 200],
        "the INVITE's 2xx, then the PRACK's"
    );
    assert!(w.timers.contains_key(&(id, CallTimer::Retransmit)));
    let ok = out.responses()[0].clone();
    a.heard(&ok);
    // A BYE after the PRACKs is in order (CSeq past them).
    let out = w.feed(a.in_dialog("BYE", ""));
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(w.phase(id), None);
}

#[test]
fn rfc3262_3_an_unacknowledged_provisional_is_resent_doubling_and_at_64_t1_the_caller_gets_500() {
    let mut w = world();
    let start = w.now;
    let (_a, id, _f, _) = reliable_call(&mut w);
    let mut resent = Vec::new();
    let end = loop {
        let out = w.advance(Duration::from_millis(100));
        for s in out.retransmitted() {
            assert_eq!(s, 180);
            resent.push(w.now.since(start).as_millis());
        }
        if !out.records().is_empty() {
            break out;
        }
        assert!(w.now.since(start) <= 64 * T1);
    };
    assert_eq!(
        resent,
        vec![500, 1500, 3500, 7500, 15500, 31500],
        "T1 doubling, the last wait cut at 64·T1"
    );
    assert_eq!(w.now.since(start), 64 * T1);
    assert_eq!(end.statuses(), vec![500]);
    assert_eq!(
        end.outgoing(Method::Cancel).len(),
        1,
        "the ringing fork stops"
    );
    let cdr = end.records()[0];
    assert_eq!(cdr.disposition, Disposition::Failed);
    assert!(cdr
        .hangup_cause
        .as_deref()
        .unwrap_or_default()
        .contains("PRACK"));
    assert_eq!(w.phase(id), None);
    assert!(w.timers.is_empty());
}

#[test]
fn a_caller_that_only_supports_100rel_gets_plain_provisionals() {
    let mut w = world();
    let a = Caller::new("Supported: 100rel\r\n", &sdp("192.0.2.1", 30000, "0"));
    let (_id, f) = start(&mut w, &a);
    let out = w.feed(f[0].respond(180, &[], ""));
    assert_eq!(out.statuses(), vec![180]);
    assert!(out.responses()[0].headers.get(&HeaderName::RSeq).is_none());
    assert!(w.timers.keys().all(|(_, t)| *t != CallTimer::Prack));
}

#[test]
fn a_bye_in_the_callers_early_dialog_ends_the_call_like_a_cancel() {
    let mut w = world();
    let (mut a, id, _f, _) = reliable_call(&mut w);
    let out = w.feed(a.in_dialog("BYE", ""));
    assert_eq!(
        out.statuses(),
        vec![487, 200],
        "the INVITE's 487, the BYE's 200"
    );
    assert_eq!(
        out.outgoing(Method::Cancel).len(),
        1,
        "the ringing fork stops"
    );
    assert_eq!(out.records()[0].disposition, Disposition::Canceled);
    assert_eq!(w.phase(id), None);
}

#[test]
fn a_transfer_target_sending_a_reliable_provisional_gets_its_prack() {
    let mut w = world();
    let mut a = Caller::new("", &sdp("192.0.2.1", 30000, "0"));
    let (id, f) = start(&mut w, &a);
    let out = w.feed(f[0].respond(200, &[], &f[0].media(31000)));
    a.heard(ok_of(&out));
    w.feed(a.ack(""));
    // The API sends the call's office side to kitchen: a blind transfer.
    let (outcome, actions) = w
        .calls
        .transfer(id, "kitchen", Some(Party::B), w.now, &mut w.host);
    assert!(outcome.is_ok(), "{outcome:?}");
    let out = Out(actions);
    let (invite, route, owner) = out
        .0
        .iter()
        .find_map(|a| match a {
            Action::Request {
                request,
                route,
                owner,
            } if request.method == Method::Invite => Some((request.clone(), *route, *owner)),
            _ => None,
        })
        .expect("the target's INVITE");
    let target = Fork {
        invite,
        route,
        owner,
    };
    let rel = [(HeaderName::Require, "100rel"), (HeaderName::RSeq, "1")];
    let out = w.feed(target.respond(180, &rel, ""));
    let p = out.outgoing(Method::Prack);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].headers.get(&HeaderName::RAck), Some("1 1 INVITE"));
}

#[test]
fn a_cancel_while_our_2xx_waits_for_a_prack_wins_and_the_callee_gets_a_bye() {
    let mut w = world();
    let (mut a, id, f, ringing) = reliable_call(&mut w);
    w.feed(a.in_dialog("PRACK", &format!("RAck: {} 1 INVITE\r\n", rseq(&ringing))));
    let out = w.feed(f[0].respond(183, &[], &f[0].media(31000)));
    assert_eq!(out.statuses(), vec![183]);
    assert!(w
        .feed(f[0].respond(200, &[], &f[0].media(31000)))
        .statuses()
        .is_empty());
    let cancel = parse_request(
        "CANCEL sip:office@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:kitchen@192.0.2.10>;tag=atag\r\nTo: <sip:office@192.0.2.10>\r\n\
         Call-ID: c1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    );
    let tx = (TxKey::server(&cancel).expect("key"), Protocol::Udp);
    let out = w.feed(Event::Cancel {
        request: cancel,
        tx,
        invite_exists: true,
    });
    assert_eq!(out.statuses(), vec![487, 200]);
    assert_eq!(
        out.outgoing(Method::Bye).len(),
        1,
        "the callee that answered"
    );
    assert_eq!(out.records()[0].disposition, Disposition::Canceled);
    assert_eq!(w.phase(id), None);
}
