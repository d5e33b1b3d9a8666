//! Who rings, on virtual time: the ring plan of a call from Twilio (chosen
//! phones, steps in sequence), phones in Do-Not-Disturb skipped, nobody
//! left to ring, a bad plan ignored, and the DND feature codes.

use std::net::SocketAddr;
use std::time::Duration;

use super::tests::*;
use super::*;
use crate::media::relay::Side;
use crate::sip::message::{HeaderName, Method};
use crate::sip::transaction::TxKey;
use crate::store::cdrs::Disposition;

fn twilio() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1], 5060))
}

/// Twilio calls the household number with `extra` headers.
fn call_from_twilio(w: &mut World, extra: &str, call_id: &str) -> (CallerLeg, Out) {
    let at = twilio();
    let from = format!("<sip:+15550001111@198.51.100.1>;tag=atag{call_id}");
    let invite = request(
        "INVITE",
        "sip:+15551230001@192.0.2.10",
        &at.to_string(),
        &format!("inv{call_id}"),
        &from,
        "<sip:+15551230001@192.0.2.10>",
        call_id,
        1,
        extra,
        &sdp(&at.ip().to_string(), 30000, "sendrecv"),
    );
    let tx = (TxKey::server(&invite).expect("key"), Protocol::Udp);
    let a = CallerLeg {
        invite,
        tx,
        to: None,
        from,
        call_id: call_id.into(),
        cseq: 1,
        at,
    };
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Twilio,
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    (a, out)
}

fn rung(f: &[ForkLeg]) -> Vec<u8> {
    let mut v: Vec<u8> = f
        .iter()
        .map(|f| match f.route.dest.ip() {
            std::net::IpAddr::V4(ip) => ip.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        })
        .collect();
    v.sort_unstable();
    v
}

fn call_id_of(f: &ForkLeg) -> CallId {
    match f.owner {
        Owner::Fork(id, _) => id,
        other => panic!("{other:?}"),
    }
}

fn in_dnd(w: &mut World, devices: &[i64]) {
    let mut d = w.calls.directory().clone();
    d.dnd.devices = devices
        .iter()
        .map(|id| {
            let on = crate::rules::dnd::Dnd {
                on: true,
                schedule: None,
            };
            (*id, on)
        })
        .collect();
    w.calls.set_directory(d);
}

#[test]
fn a_sequence_rings_each_step_for_its_time_and_the_caller_keeps_hearing_180() {
    let mut w = World::new(None);
    let (_a, out) = call_from_twilio(
        &mut w,
        "X-Homeline-Rule: 7\r\nX-Homeline-Ring: 1~15,2~20\r\n",
        "seq1",
    );
    let step1 = forks(&out);
    assert_eq!(rung(&step1), vec![1], "step 1: the kitchen only");
    let id = call_id_of(&step1[0]);
    assert_eq!(
        w.timers.get(&(id, CallTimer::NextStep)),
        Some(&w.now.plus(Duration::from_secs(15)))
    );
    assert_eq!(w.feed(step1[0].answer(180, "")).statuses(), vec![180]);
    // 15 s on: the kitchen is CANCELled and the office's two contacts ring.
    let out = w.advance(Duration::from_secs(15));
    let cancels = out.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1, step1[0].route);
    let step2 = forks(&out);
    assert_eq!(rung(&step2), vec![2, 12], "step 2: the office");
    assert_eq!(
        out.statuses(),
        vec![180],
        "the caller's INVITE stays unanswered, its 180 kept alive"
    );
    assert_eq!(w.phase(id), Some("ringing"));
    // The kitchen's 487 changes nothing; the office's 180 is not repeated.
    assert!(w.feed(step1[0].answer(487, "")).statuses().is_empty());
    assert!(w.feed(step2[0].answer(180, "")).statuses().is_empty());
    // The office answers: the caller gets the 200, the other contact a CANCEL.
    w.feed(step2[1].answer(180, ""));
    let out = w.feed(step2[0].ok());
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(out.requests(Method::Cancel).len(), 1);
    assert!(!w.timers.contains_key(&(id, CallTimer::NextStep)));
    assert_eq!(w.calls.calls[&id].device_id, Some(DeviceId(2)));
}

#[test]
fn after_the_last_step_the_caller_gets_480_and_the_record_names_the_rule() {
    let mut w = World::new(None);
    let (_a, out) = call_from_twilio(
        &mut w,
        "X-Homeline-Rule: 7\r\nX-Homeline-Ring: 1~15,3~20\r\n",
        "seq2",
    );
    let step1 = forks(&out);
    let id = call_id_of(&step1[0]);
    w.feed(step1[0].answer(180, ""));
    let out = w.advance(Duration::from_secs(15));
    let step2 = forks(&out);
    assert_eq!(rung(&step2), vec![3], "den");
    w.feed(step2[0].answer(180, ""));
    assert!(w.timers.contains_key(&(id, CallTimer::Ring)));
    let out = w.advance(Duration::from_secs(20));
    assert_eq!(out.statuses(), vec![480]);
    assert_eq!(out.requests(Method::Cancel).len(), 1, "den stops ringing");
    let record = out.records()[0];
    assert_eq!(record.disposition, Disposition::NoAnswer);
    assert_eq!(record.hangup_cause.as_deref(), Some("ring timeout; rule 7"));
    assert_eq!(w.elapsed(), Duration::from_secs(35));
}

#[test]
fn a_step_that_fails_as_a_whole_moves_on_at_once() {
    let mut w = World::new(None);
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 1~15,3~20\r\n", "seq3");
    let step1 = forks(&out);
    let out = w.feed(step1[0].answer(486, ""));
    assert!(out.statuses().is_empty(), "busy in step 1 is not the end");
    assert_eq!(rung(&forks(&out)), vec![3]);
    // The den declines too: nothing is left, the caller hears the best failure.
    let den = forks(&out);
    let out = w.feed(den[0].answer(603, ""));
    assert_eq!(out.statuses(), vec![486]);
}

#[test]
fn a_step_without_registered_phones_is_skipped() {
    let mut w = World::new(None);
    w.host.contacts.remove(&DeviceId(1));
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 1~15,3\r\n", "seq4");
    let f = forks(&out);
    assert_eq!(rung(&f), vec![3]);
    let id = call_id_of(&f[0]);
    assert_eq!(
        w.timers.get(&(id, CallTimer::Ring)),
        Some(&w.now.plus(Duration::from_secs(30))),
        "the last step rings for the ring timeout"
    );
}

#[test]
fn chosen_phones_ring_at_once() {
    let mut w = World::new(None);
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 3.1\r\n", "ch1");
    assert_eq!(rung(&forks(&out)), vec![1, 3]);
}

#[test]
fn phones_in_dnd_are_skipped_and_with_everyone_in_dnd_the_caller_gets_480() {
    let mut w = World::new(None);
    in_dnd(&mut w, &[1]);
    let (_a, out) = call_from_twilio(&mut w, "", "dnd1");
    assert_eq!(rung(&forks(&out)), vec![2, 12], "only the office rings");
    // A sequence loses its DND step; the office rings first.
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 1~15,2~20\r\n", "dnd2");
    let f = forks(&out);
    assert_eq!(rung(&f), vec![2, 12]);
    assert!(!w
        .timers
        .contains_key(&(call_id_of(&f[0]), CallTimer::NextStep)));
    // Everyone in DND: 480, so Twilio's <Dial action> takes the caller to
    // voicemail; nothing rings and no relay stays open.
    in_dnd(&mut w, &[1, 2]);
    let (_a, out) = call_from_twilio(&mut w, "", "dnd3");
    assert!(forks(&out).is_empty());
    assert_eq!(out.statuses(), vec![480]);
    let r = out.responses()[0];
    assert_eq!(r.reason, "Temporarily Unavailable");
    assert!(
        header(r, HeaderName::Other("Warning".into())).contains("Do-Not-Disturb")
            || r.headers
                .iter()
                .any(|(n, v)| n.as_str().eq_ignore_ascii_case("warning")
                    && v.contains("Do-Not-Disturb"))
    );
    let calls_left = w.calls.list().len();
    assert_eq!(calls_left, 2, "only the two earlier calls");
}

#[test]
fn a_phone_in_dnd_called_by_extension_gets_480() {
    let mut w = World::new(None);
    in_dnd(&mut w, &[2]);
    let a = invite_from(phone_at(1), "kitchen", "office", "ext1");
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    assert_eq!(out.statuses(), vec![480]);
    assert!(forks(&out).is_empty());
}

#[test]
fn a_bad_ring_plan_is_ignored_and_every_phone_rings() {
    let mut w = World::new(None);
    for (n, bad) in ["1~x", "one,two", "", "1..2"].into_iter().enumerate() {
        let (_a, out) = call_from_twilio(
            &mut w,
            &format!("X-Homeline-Ring: {bad}\r\n"),
            &format!("bad{n}"),
        );
        assert_eq!(rung(&forks(&out)), vec![1, 2, 12], "{bad:?}");
    }
    // Unknown phones are dropped from the plan.
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 99.3\r\n", "unknown");
    assert_eq!(rung(&forks(&out)), vec![3]);
}

#[test]
fn a_ring_plan_from_a_phone_is_not_obeyed() {
    let mut w = World::new(None);
    let mut a = invite_from(phone_at(1), "kitchen", "office", "fromphone");
    a.invite
        .headers
        .push(HeaderName::Other("X-Homeline-Ring".into()), "3");
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    assert_eq!(rung(&forks(&out)), vec![2, 12]);
}

fn dial_code(w: &mut World, code: &str, call_id: &str) -> (CallerLeg, Out) {
    let a = invite_from(phone_at(1), "kitchen", code, call_id);
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    (a, out)
}

fn dnd_requests(out: &Out) -> Vec<(i64, bool)> {
    out.0
        .iter()
        .filter_map(|a| match a {
            Action::SetDnd { device, on } => Some((device.0, *on)),
            _ => None,
        })
        .collect()
}

#[test]
fn star_78_asks_for_dnd_confirms_with_a_tone_and_hangs_up() {
    let mut w = World::new(None);
    let (mut a, out) = dial_code(&mut w, "*78", "code1");
    assert_eq!(dnd_requests(&out), vec![(1, true)]);
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.responses()[0].body.starts_with(b"v=0"));
    assert_eq!(out.music(), vec![(Side::A, true)], "the confirmation plays");
    assert_eq!(
        out.peers(Side::A),
        vec![SocketAddr::from(([192, 0, 2, 1], 30000))]
    );
    assert!(forks(&out).is_empty(), "nothing rings");
    assert!(w.calls.list().is_empty(), "not a call");
    a.to = Some(header(out.responses()[0], HeaderName::To));
    // Unacknowledged, the 2xx is resent.
    assert_eq!(w.advance(T1).retransmitted(), vec![200]);
    w.feed(Event::Ack(a.ack()));
    let out = w.advance(feature_code::CONFIRMATION - T1 - Duration::from_millis(1));
    assert_eq!(out.retransmits(), 0);
    assert!(
        out.requests(Method::Bye).is_empty(),
        "the confirmation is still playing"
    );
    let out = w.advance(Duration::from_millis(1));
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1, udp(phone_at(1)));
    assert!(out.closed());
    assert!(w.calls.features.is_empty());
    assert!(w.timers.is_empty());
    // *79 takes it back out.
    let (_b, out) = dial_code(&mut w, "*79", "code2");
    assert_eq!(dnd_requests(&out), vec![(1, false)]);
}

#[test]
fn a_phone_hanging_up_during_the_confirmation_gets_200_and_no_bye() {
    let mut w = World::new(None);
    let (mut a, out) = dial_code(&mut w, "*78", "code3");
    a.to = Some(header(out.responses()[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.closed());
    assert!(w
        .advance(Duration::from_secs(5))
        .requests(Method::Bye)
        .is_empty());
}

#[test]
fn the_bye_waits_for_the_ack_and_a_phone_that_never_acks_is_let_go() {
    let mut w = World::new(None);
    let (_a, _out) = dial_code(&mut w, "*78", "code4");
    let out = w.advance(Duration::from_secs(40));
    assert!(
        out.requests(Method::Bye).is_empty(),
        "no BYE on an unconfirmed dialog"
    );
    assert!(out.closed());
    assert!(w.calls.features.is_empty());
}

#[test]
fn a_persons_dnd_silences_their_phones_unless_the_rules_rang_through_it() {
    let mut w = World::new(None);
    // Gran (user 10) owns the kitchen and is the number's only person.
    let mut d = w.calls.directory().clone();
    d.dnd.owners.insert(1, 10);
    d.dnd.did_users.insert(9, vec![10]);
    d.dnd.users.insert(
        10,
        crate::rules::dnd::Dnd {
            on: true,
            schedule: None,
        },
    );
    w.calls.set_directory(d.clone());
    // No decision of the rules: the kitchen stays silent.
    let (_a, out) = call_from_twilio(&mut w, "", "p1");
    assert_eq!(rung(&forks(&out)), vec![2, 12]);
    // The rules saw the number in DND and still chose the kitchen (a VIP).
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Rule: 3\r\nX-Homeline-Ring: 1\r\n", "p2");
    assert_eq!(rung(&forks(&out)), vec![1]);
    // A rule's ring_all carries no plan, only the rule: every phone rings.
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Rule: 3\r\n", "p2b");
    assert_eq!(rung(&forks(&out)), vec![1, 2, 12]);
    // A phone's own DND is absolute.
    d.dnd.devices.insert(
        1,
        crate::rules::dnd::Dnd {
            on: true,
            schedule: None,
        },
    );
    w.calls.set_directory(d);
    let (_a, out) = call_from_twilio(&mut w, "X-Homeline-Ring: 1\r\n", "p3");
    assert_eq!(out.statuses(), vec![480]);
}
