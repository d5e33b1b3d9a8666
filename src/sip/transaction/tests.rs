//! Transaction rules, named after the RFC sections they check. A small
//! virtual-time simulator fires armed timers in order, so intervals and
//! timeouts are exact without sleeping.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::sip::message::{parse_datagram, Message, Request, Response};

fn request(method: &str) -> Request {
    let raw = format!(
        "{method} sip:bob@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@h>;tag=a1\r\nTo: <sip:bob@h>\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nRoute: <sip:p@h;lr>\r\nContent-Length: 0\r\n\r\n"
    );
    match parse_datagram(raw.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn response(req: &Request, status: u16) -> Response {
    Response::to(
        req,
        status,
        crate::sip::message::default_reason(status),
        "b1",
    )
}

/// Virtual time: armed timers fire in order; a re-armed timer replaces the old one.
#[derive(Default)]
struct Sim {
    now: Duration,
    timers: BTreeMap<Timer, Duration>,
    sent: Vec<(Duration, Message)>,
    events: Vec<Action>,
}

impl Sim {
    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Arm(t, d) => {
                    self.timers.insert(t, self.now + d);
                }
                Action::Send(m) => self.sent.push((self.now, m)),
                Action::Transmit(b) => {
                    let m = parse_datagram(&b).expect("a transmitted message parses");
                    self.sent.push((self.now, m))
                }
                other => self.events.push(other),
            }
        }
    }

    /// Fires the next timer due at or before `until`, returning it.
    fn next(&mut self, until: Duration) -> Option<Timer> {
        let (&t, &at) = self.timers.iter().min_by_key(|(_, at)| **at)?;
        if at > until {
            return None;
        }
        self.timers.remove(&t);
        self.now = at;
        Some(t)
    }

    fn terminated(&self) -> bool {
        self.events.contains(&Action::Terminated)
    }
}

#[test]
fn rfc3261_17_1_1_2_timer_a_doubles_and_b_times_out_at_64_t1() {
    let (mut tx, first) = ClientInvite::start(request("INVITE"), TimerConfig::UDP);
    let mut sim = Sim::default();
    sim.apply(first);
    while let Some(t) = sim.next(Duration::from_secs(60)) {
        sim.apply(tx.handle(Input::Timer(t)));
        if sim.terminated() {
            break;
        }
    }
    let times: Vec<u64> = sim.sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(
        times,
        [0, 500, 1500, 3500, 7500, 15500, 31500],
        "A: 500 ms, doubling"
    );
    assert_eq!(sim.now, Duration::from_secs(32), "B = 64·T1");
    assert_eq!(sim.events, [Action::Timeout, Action::Terminated]);
}

#[test]
fn rfc3261_17_1_1_3_non_2xx_is_acked_by_the_transaction_and_retransmissions_reacked() {
    let invite = request("INVITE");
    let (mut tx, first) = ClientInvite::start(invite.clone(), TimerConfig::UDP);
    let mut sim = Sim::default();
    sim.apply(first);
    sim.apply(tx.handle(Input::Response(response(&invite, 180))));
    assert_eq!(tx.state(), State::Proceeding);
    sim.apply(tx.handle(Input::Timer(Timer::B)));
    assert_eq!(
        tx.state(),
        State::Proceeding,
        "B is ignored once a provisional arrived"
    );
    let busy = response(&invite, 486);
    sim.apply(tx.handle(Input::Response(busy.clone())));
    assert_eq!(tx.state(), State::Completed);
    let Message::Request(ack) = &sim.sent.last().expect("ack").1 else {
        panic!("ACK sent")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("7 ACK"));
    assert_eq!(
        ack.headers.get(&HeaderName::To),
        busy.headers.get(&HeaderName::To),
        "To with the response's tag"
    );
    assert_eq!(ack.headers.get(&HeaderName::Route), Some("<sip:p@h;lr>"));
    assert_eq!(
        ack.headers.values(&HeaderName::Via),
        invite.headers.values(&HeaderName::Via)[..1]
    );
    let before = sim.sent.len();
    sim.apply(tx.handle(Input::Response(busy)));
    assert_eq!(
        sim.sent.len(),
        before + 1,
        "a retransmitted 486 is ACKed again"
    );
    assert_eq!(sim.timers.get(&Timer::D), Some(&Duration::from_secs(32)));
    sim.apply(tx.handle(Input::Timer(Timer::D)));
    assert!(sim.terminated());
}

#[test]
fn rfc6026_client_invite_accepts_2xx_retransmissions_until_m() {
    let invite = request("INVITE");
    let (mut tx, _) = ClientInvite::start(invite.clone(), TimerConfig::RELIABLE);
    let ok = response(&invite, 200);
    assert_eq!(
        tx.handle(Input::Response(ok.clone())),
        [
            Action::Deliver(ok.clone()),
            Action::Arm(Timer::M, Duration::from_secs(32))
        ]
    );
    assert_eq!(tx.state(), State::Accepted);
    assert_eq!(
        tx.handle(Input::Response(ok.clone())),
        [Action::Deliver(ok)],
        "2xx retransmissions reach the TU"
    );
    assert_eq!(tx.handle(Input::Timer(Timer::M)), [Action::Terminated]);
}

#[test]
fn rfc3261_17_1_2_2_timer_e_caps_at_t2_and_f_times_out() {
    let (mut tx, first) = ClientNonInvite::start(request("OPTIONS"), TimerConfig::UDP);
    let mut sim = Sim::default();
    sim.apply(first);
    while let Some(t) = sim.next(Duration::from_secs(60)) {
        sim.apply(tx.handle(Input::Timer(t)));
        if sim.terminated() {
            break;
        }
    }
    let times: Vec<u64> = sim.sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(
        &times[..6],
        [0, 500, 1500, 3500, 7500, 11500],
        "E doubles up to T2 = 4 s"
    );
    assert_eq!(sim.now, Duration::from_secs(32));
    assert_eq!(sim.events, [Action::Timeout, Action::Terminated]);
}

#[test]
fn rfc3261_17_1_2_2_proceeding_retransmits_every_t2_and_k_absorbs() {
    let req = request("REGISTER");
    let (mut tx, _) = ClientNonInvite::start(req.clone(), TimerConfig::UDP);
    tx.handle(Input::Response(response(&req, 100)));
    assert_eq!(
        tx.handle(Input::Timer(Timer::E))[1],
        Action::Arm(Timer::E, Duration::from_secs(4))
    );
    let ok = response(&req, 200);
    assert_eq!(
        tx.handle(Input::Response(ok.clone())),
        [
            Action::Deliver(ok.clone()),
            Action::Arm(Timer::K, Duration::from_secs(5))
        ]
    );
    assert!(
        tx.handle(Input::Response(ok)).is_empty(),
        "retransmitted final absorbed"
    );
    assert_eq!(tx.handle(Input::Timer(Timer::K)), [Action::Terminated]);
    let (mut tcp, first) = ClientNonInvite::start(req.clone(), TimerConfig::RELIABLE);
    assert!(
        !first.iter().any(|a| matches!(a, Action::Arm(Timer::E, _))),
        "no retransmissions over TCP"
    );
    assert_eq!(
        tcp.handle(Input::Response(response(&req, 200)))[1],
        Action::Arm(Timer::K, Duration::ZERO)
    );
}

#[test]
fn rfc3261_17_2_2_server_non_invite_absorbs_retransmissions() {
    let req = request("REGISTER");
    let mut tx = ServerNonInvite::new(TimerConfig::UDP);
    assert!(
        tx.handle(Input::Request(req.clone())).is_empty(),
        "nothing to resend while Trying"
    );
    let ok = response(&req, 200);
    let a = tx.handle(Input::Respond(ok.clone()));
    assert_eq!(
        a,
        [
            Action::Transmit(ok.to_bytes().into()),
            Action::Arm(Timer::J, Duration::from_secs(32))
        ]
    );
    assert_eq!(
        tx.handle(Input::Request(req.clone())),
        [Action::Transmit(ok.to_bytes().into())],
        "same answer, not re-processed"
    );
    assert_eq!(tx.handle(Input::Timer(Timer::J)), [Action::Terminated]);
    let mut tcp = ServerNonInvite::new(TimerConfig::RELIABLE);
    assert_eq!(
        tcp.handle(Input::Respond(response(&req, 200)))[1],
        Action::Arm(Timer::J, Duration::ZERO)
    );
}

#[test]
fn rfc3261_17_2_1_server_invite_retransmits_final_until_ack() {
    let invite = request("INVITE");
    let mut tx = ServerInvite::new(TimerConfig::UDP);
    let mut sim = Sim::default();
    sim.apply(tx.handle(Input::Respond(response(&invite, 100))));
    sim.apply(tx.handle(Input::Request(invite.clone())));
    assert_eq!(
        sim.sent.len(),
        2,
        "INVITE retransmission gets the last provisional again"
    );
    sim.apply(tx.handle(Input::Respond(response(&invite, 405))));
    // G fires at 0.5, 1.5, 3.5, 7.5, 11.5… (capped at T2) until ACK.
    for _ in 0..4 {
        let t = sim.next(Duration::from_secs(40)).expect("G");
        assert_eq!(t, Timer::G);
        sim.apply(tx.handle(Input::Timer(t)));
    }
    let times: Vec<u64> = sim
        .sent
        .iter()
        .skip(2)
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500]);
    let mut ack = invite.clone();
    ack.method = Method::Ack;
    assert_eq!(
        tx.handle(Input::Request(ack.clone())),
        [Action::Arm(Timer::I, Duration::from_secs(5))]
    );
    assert_eq!(tx.state(), State::Confirmed);
    assert!(
        tx.handle(Input::Request(ack)).is_empty(),
        "ACK retransmissions absorbed"
    );
    assert!(
        tx.handle(Input::Timer(Timer::G)).is_empty(),
        "stale G ignored"
    );
    assert_eq!(tx.handle(Input::Timer(Timer::I)), [Action::Terminated]);
}

#[test]
fn rfc3261_17_2_1_timer_h_gives_up_on_a_lost_ack() {
    let invite = request("INVITE");
    let mut tx = ServerInvite::new(TimerConfig::RELIABLE);
    let a = tx.handle(Input::Respond(response(&invite, 486)));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Arm(Timer::G, _))),
        "no G over TCP"
    );
    assert!(a.contains(&Action::Arm(Timer::H, Duration::from_secs(32))));
    assert_eq!(
        tx.handle(Input::Timer(Timer::H)),
        [Action::Timeout, Action::Terminated]
    );
}

#[test]
fn rfc6026_server_invite_passes_2xx_acks_to_the_tu() {
    let invite = request("INVITE");
    let mut tx = ServerInvite::new(TimerConfig::UDP);
    let ok = response(&invite, 200);
    assert_eq!(
        tx.handle(Input::Respond(ok.clone()))[1],
        Action::Arm(Timer::L, Duration::from_secs(32))
    );
    assert!(
        tx.handle(Input::Request(invite.clone())).is_empty(),
        "INVITE retransmissions absorbed in Accepted"
    );
    assert_eq!(
        tx.handle(Input::Respond(ok.clone())),
        [Action::Transmit(ok.to_bytes().into())],
        "the TU retransmits its 2xx"
    );
    let mut ack = invite;
    ack.method = Method::Ack;
    assert_eq!(
        tx.handle(Input::Request(ack.clone())),
        [Action::DeliverAck(ack)]
    );
    assert_eq!(tx.handle(Input::Timer(Timer::L)), [Action::Terminated]);
}

#[test]
fn rfc3261_17_2_3_keys_match_ack_to_invite_and_fall_back_for_rfc2543() {
    let invite = request("INVITE");
    let mut ack = invite.clone();
    ack.method = Method::Ack;
    assert_eq!(TxKey::server(&invite), TxKey::server(&ack));
    assert_ne!(TxKey::server(&invite), TxKey::server(&request("OPTIONS")));
    let old = {
        let mut r = invite;
        r.headers.set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1");
        r
    };
    assert!(matches!(TxKey::server(&old), Some(TxKey::Rfc2543 { .. })));
    let mut reused = request("OPTIONS");
    reused.headers.set(HeaderName::CallId, "another-call");
    assert_ne!(
        TxKey::server(&reused),
        TxKey::server(&request("OPTIONS")),
        "a reused branch on a new call is a new transaction"
    );
}
