//! The in-dialog features on virtual time: session timers (RFC 4028) on
//! both legs, 2xx retransmission for answers to re-INVITEs, re-INVITE glare
//! (RFC 3261 §14), and BYE arriving on any leg during a transfer. Uses the
//! test world of `tests.rs`.

use std::time::Duration;

use super::tests::*;
use super::*;
use crate::media::relay::{MediaEvent, Side};
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::transaction::TxKey;
use crate::store::cdrs::Disposition;

const SECOND: Duration = Duration::from_secs(1);

/// Kitchen calls Office with `extra` headers in its INVITE; returns the
/// caller's leg (with the To of our answer once there is one), the call,
/// the forks and what the INVITE produced.
fn kitchen_calls_with(w: &mut World, extra: &[(HeaderName, &str)]) -> (CallerLeg, Out) {
    let mut a = invite_from(phone_at(1), "kitchen", "office", "st1");
    for (name, value) in extra {
        a.invite.headers.push(name.clone(), *value);
    }
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

/// A fork's 200 with `extra` headers (the callee's session timer answer).
fn ok_with(f: &ForkLeg, extra: &[(HeaderName, &str)]) -> Event {
    let Event::Response {
        owner,
        mut response,
    } = f.ok()
    else {
        unreachable!()
    };
    for (name, value) in extra {
        response.headers.push(name.clone(), *value);
    }
    Event::Response { owner, response }
}

/// The call answered by the first fork (with `b_extra` in its 2xx) and
/// ACKed; returns our 200 to the caller too.
fn up_with(
    w: &mut World,
    a_extra: &[(HeaderName, &str)],
    b_extra: &[(HeaderName, &str)],
) -> (CallerLeg, CallId, ForkLeg, Response) {
    let (mut a, out) = kitchen_calls_with(w, a_extra);
    let f = forks(&out);
    let id = match f[0].owner {
        Owner::Fork(id, _) => id,
        other => panic!("{other:?}"),
    };
    let out = w.feed(ok_with(&f[0], b_extra));
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200 to the caller")
        .clone();
    a.to = Some(header(&ok, HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    assert_eq!(w.phase(id), Some("up"));
    (a, id, f[0].clone(), ok)
}

/// The re-INVITEs Homeline sent in `out`, with their owners.
fn reinvites(out: &Out) -> Vec<(Request, Route, Owner)> {
    out.requests(Method::Invite)
        .into_iter()
        .filter(|(_, _, o)| matches!(o, Owner::Reinvite(..)))
        .map(|(r, route, o)| (r.clone(), route, o))
        .collect()
}

/// The peer's answer to one of our requests, with `extra` headers.
fn answer_to(req: &Request, status: u16, extra: &[(HeaderName, &str)]) -> Response {
    let mut r = Response::to(req, status, crate::sip::message::default_reason(status), "");
    for (name, value) in extra {
        r.headers.push(name.clone(), *value);
    }
    r
}

/// The caller's ACK for our 2xx to its re-INVITE with CSeq `cseq`.
fn caller_ack(a: &CallerLeg, cseq: u32) -> Request {
    request(
        "ACK",
        "sip:homeline@192.0.2.10:5060",
        &a.at.to_string(),
        &format!("ack{cseq}"),
        &a.from,
        a.to.as_deref().expect("answered"),
        &a.call_id,
        cseq,
        "",
        "",
    )
}

fn cseq_of(h: &crate::sip::message::Headers) -> String {
    h.get(&HeaderName::CSeq).unwrap_or_default().to_string()
}

#[test]
fn rfc4028_the_callers_session_is_agreed_refreshed_and_ends_with_bye_when_not_refreshed() {
    let mut w = World::new(None);
    let (mut a, id, _b, ok) = up_with(
        &mut w,
        &[
            (HeaderName::SessionExpires, "90;refresher=uac"),
            (HeaderName::Supported, "timer"),
        ],
        &[],
    );
    assert_eq!(header(&ok, HeaderName::SessionExpires), "90;refresher=uac");
    assert_eq!(
        header(&ok, HeaderName::Require),
        "timer",
        "§9: the UAC refreshes"
    );
    assert!(header(&ok, HeaderName::Supported).contains("timer"));
    // The caller refreshes at 40 s; the session runs on (and our 2xx is ACKed).
    w.advance(40 * SECOND);
    let (refresh, tx) = a.in_dialog(
        "INVITE",
        "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n",
        &sdp("192.0.2.1", 30000, "sendrecv"),
    );
    let out = w.feed(Event::InDialog {
        request: refresh,
        tx,
    });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        header(out.responses()[0], HeaderName::SessionExpires),
        "90;refresher=uac"
    );
    w.feed(Event::Ack(caller_ack(&a, a.cseq)));
    // Without the refresh the session would have ended at 60 s (90 - 30).
    assert!(w.advance(59 * SECOND).records().is_empty());
    assert_eq!(w.phase(id), Some("up"));
    // No further refresh: at 40 + 60 s both legs get BYE and a record.
    let out = w.advance(SECOND);
    assert_eq!(out.requests(Method::Bye).len(), 2, "BYE on both legs");
    let cdr = out.records()[0];
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(
        cdr.hangup_cause.as_deref(),
        Some("session timer expired: no refresh with the caller")
    );
    assert_eq!(w.elapsed(), 100 * SECOND);
    assert_eq!(w.phase(id), None);
    assert!(w.timers.is_empty());
}

#[test]
fn rfc4028_a_held_call_to_a_refreshing_callee_is_refreshed_every_half_interval_for_hours() {
    let mut w = World::new(None);
    let (mut a, out) = kitchen_calls_with(&mut w, &[]);
    let f = forks(&out);
    // Our INVITE asks for 1800 s, leaving the refresher to the callee.
    let invite = &f[0].invite;
    assert_eq!(
        invite.headers.get(&HeaderName::SessionExpires),
        Some("1800")
    );
    assert_eq!(invite.headers.get(&HeaderName::MinSe), Some("90"));
    assert!(invite
        .headers
        .get(&HeaderName::Supported)
        .is_some_and(|s| s.contains("timer")));
    let id = match f[0].owner {
        Owner::Fork(id, _) => id,
        other => panic!("{other:?}"),
    };
    let out = w.feed(ok_with(
        &f[0],
        &[
            (HeaderName::SessionExpires, "1800;refresher=uac"),
            (HeaderName::Require, "timer"),
        ],
    ));
    let ok = out.responses()[0].clone();
    assert!(
        ok.headers.get(&HeaderName::SessionExpires).is_none(),
        "the caller asked for no timer"
    );
    a.to = Some(header(&ok, HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    // The caller holds the call.
    let (hold, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    w.feed(Event::InDialog { request: hold, tx });
    w.feed(Event::Ack(caller_ack(&a, a.cseq)));
    assert!(w.calls.list()[0].on_hold);
    // Two hours: a refresh to the callee every 900 s, each answered.
    let mut cseqs = Vec::new();
    for n in 1..=8u32 {
        let out = w.advance(900 * SECOND);
        let sent = reinvites(&out);
        assert_eq!(sent.len(), 1, "refresh {n}");
        let (req, route, owner) = sent[0].clone();
        assert_eq!(route, f[0].route);
        assert_eq!(owner, Owner::Reinvite(id, Side::B));
        assert_eq!(
            req.headers.get(&HeaderName::SessionExpires),
            Some("1800;refresher=uac")
        );
        assert_eq!(req.body, f[0].invite.body, "the same offer, unchanged");
        cseqs.push(cseq_of(&req.headers));
        let ok = answer_to(
            &req,
            200,
            &[(HeaderName::SessionExpires, "1800;refresher=uac")],
        );
        let out = w.feed(Event::Response {
            owner,
            response: ok.clone(),
        });
        let acks = out.sent(Method::Ack);
        assert_eq!(acks.len(), 1);
        assert_eq!(cseq_of(&acks[0].0.headers), format!("{} ACK", n + 1));
        // A retransmitted 2xx (our ACK lost) gets the same ACK again.
        let again = w.feed(Event::Response {
            owner,
            response: ok,
        });
        assert_eq!(again.sent(Method::Ack).len(), 1);
        assert!(reinvites(&again).is_empty());
    }
    assert_eq!(cseqs[0], "2 INVITE");
    assert_eq!(cseqs[7], "9 INVITE");
    assert_eq!(w.phase(id), Some("up"), "still up after two hours on hold");
    assert!(w.calls.list()[0].on_hold);
}

#[test]
fn rfc4028_we_refresh_the_callers_leg_when_it_picks_us_and_a_481_ends_the_call() {
    let mut w = World::new(None);
    let (_a, id, _b, ok) = up_with(
        &mut w,
        &[
            (HeaderName::SessionExpires, "120;refresher=uas"),
            (HeaderName::Supported, "timer"),
        ],
        &[],
    );
    assert_eq!(header(&ok, HeaderName::SessionExpires), "120;refresher=uas");
    assert!(ok.headers.get(&HeaderName::Require).is_none());
    let out = w.advance(60 * SECOND);
    let sent = reinvites(&out);
    assert_eq!(sent.len(), 1);
    let (req, route, owner) = sent[0].clone();
    assert_eq!(route, udp(phone_at(1)));
    assert_eq!(owner, Owner::Reinvite(id, Side::A));
    assert_eq!(req.body, ok.body, "the answer it already has");
    assert_eq!(req.uri, "sip:peer@192.0.2.1:5060", "its Contact");
    let out = w.feed(Event::Response {
        owner,
        response: answer_to(&req, 481, &[]),
    });
    assert_eq!(out.requests(Method::Bye).len(), 2);
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("session refresh failed (481)")
    );
    assert_eq!(w.phase(id), None);
}

#[test]
fn rfc4028_our_refresh_refused_is_retried_and_the_call_ends_at_expiry() {
    let mut w = World::new(None);
    let (_a, id, b, _) = up_with(
        &mut w,
        &[],
        &[(HeaderName::SessionExpires, "100;refresher=uac")],
    );
    let out = w.advance(50 * SECOND);
    let (req, _, owner) = reinvites(&out).remove(0);
    // A 500: the session is not refreshed; we try again at half the time left.
    w.feed(Event::Response {
        owner,
        response: answer_to(&req, 500, &[]),
    });
    let out = w.advance(25 * SECOND);
    let (req, _, owner) = reinvites(&out).remove(0);
    assert_eq!(cseq_of(&req.headers), "3 INVITE");
    w.feed(Event::Response {
        owner,
        response: answer_to(&req, 500, &[]),
    });
    // …and again, until the session's end: BYE on both legs at 100 s.
    let out = w.advance(25 * SECOND);
    assert_eq!(w.elapsed(), 100 * SECOND);
    assert_eq!(out.requests(Method::Bye).len(), 2);
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("session timer expired: no refresh with the callee")
    );
    assert_eq!(w.phase(id), None);
    drop(b);
}

#[test]
fn rfc4028_422_below_our_minimum_and_our_invite_retried_with_the_callees_minimum() {
    let mut w = World::new(None);
    let (_a, out) = kitchen_calls_with(
        &mut w,
        &[
            (HeaderName::SessionExpires, "30"),
            (HeaderName::Supported, "timer"),
        ],
    );
    assert_eq!(out.statuses(), vec![422]);
    assert_eq!(header(out.responses()[0], HeaderName::MinSe), "90");
    assert!(w.calls.list().is_empty(), "no call, no relay");
    // The callee wants at least an hour: our INVITE again, asking for that.
    let (_a, out) = kitchen_calls_with(&mut w, &[]);
    let f = forks(&out);
    let Event::Response {
        owner,
        mut response,
    } = f[0].answer(422, "")
    else {
        unreachable!()
    };
    response.headers.push(HeaderName::MinSe, "3600");
    let out = w.feed(Event::Response { owner, response });
    let again = forks(&out);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].owner, f[0].owner);
    let inv = &again[0].invite;
    assert_eq!(inv.headers.get(&HeaderName::SessionExpires), Some("3600"));
    assert_eq!(inv.headers.get(&HeaderName::CSeq), Some("2 INVITE"));
    assert_ne!(
        inv.headers.get(&HeaderName::Via),
        f[0].invite.headers.get(&HeaderName::Via),
        "a new transaction"
    );
    // The retried INVITE is answered: the call is up.
    let out = w.feed(again[0].ok());
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(cseq_of(&out.sent(Method::Ack)[0].0.headers), "2 ACK");
    // The same 422 again cannot raise anything: that fork fails.
    let (_a, out) = kitchen_calls_with(&mut w, &[]);
    let f = forks(&out);
    w.feed(f[1].answer(480, ""));
    let Event::Response {
        owner,
        mut response,
    } = f[0].answer(422, "")
    else {
        unreachable!()
    };
    response.headers.push(HeaderName::MinSe, "60");
    let out = w.feed(Event::Response { owner, response });
    assert!(forks(&out).is_empty(), "no retry");
    assert_eq!(
        out.statuses().len(),
        1,
        "every fork failed: the caller's answer"
    );
    assert_eq!(w.calls.list().len(), 1, "only the first call is left");
}

#[test]
fn rfc4028_an_update_refreshes_the_callees_session() {
    let mut w = World::new(None);
    let (_a, id, b, _) = up_with(
        &mut w,
        &[],
        &[(HeaderName::SessionExpires, "90;refresher=uas")],
    );
    // The callee refreshes (it is the UAS and the refresher) by UPDATE.
    w.advance(45 * SECOND);
    let (update, tx) = b.in_dialog(
        "UPDATE",
        1,
        "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n",
        "",
    );
    let out = w.feed(Event::InDialog {
        request: update,
        tx,
    });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        header(out.responses()[0], HeaderName::SessionExpires),
        "90;refresher=uac"
    );
    // The first session would have ended at 60 s; this one at 45 + 60.
    assert!(w.advance(59 * SECOND).records().is_empty());
    assert_eq!(w.advance(SECOND).records().len(), 1);
    assert_eq!(w.phase(id), None);
}

#[test]
fn rfc3261_13_3_1_4_a_reinvites_2xx_is_resent_until_its_ack() {
    let mut w = World::new(None);
    let (mut a, id, _b) = up_call(&mut w);
    let (hold, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    let out = w.feed(Event::InDialog { request: hold, tx });
    assert_eq!(out.statuses(), vec![200]);
    let mut resent = Vec::new();
    let start = w.elapsed();
    for _ in 0..40 {
        let out = w.advance(Duration::from_millis(100));
        for _ in 0..out.retransmits() {
            resent.push((w.elapsed() - start).as_millis());
        }
    }
    assert_eq!(resent, vec![500, 1500, 3500], "T1, 2·T1, 4·T1");
    w.feed(Event::Ack(caller_ack(&a, a.cseq)));
    assert_eq!(w.advance(60 * SECOND).retransmits(), 0, "ACKed");
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn a_reinvites_2xx_never_acked_ends_the_call_at_64_t1_on_either_leg() {
    for side in [Side::A, Side::B] {
        let mut w = World::new(None);
        let (mut a, id, b) = up_call(&mut w);
        let body = sdp("192.0.2.9", 30000, "sendrecv");
        let (req, tx) = match side {
            Side::A => a.in_dialog("INVITE", "", &body),
            Side::B => b.in_dialog("INVITE", 1, "", &body),
        };
        assert_eq!(
            w.feed(Event::InDialog { request: req, tx }).statuses(),
            vec![200]
        );
        let start = w.elapsed();
        let mut out = w.advance(Duration::from_millis(31_999));
        assert!(out.records().is_empty());
        out.extend(w.advance(Duration::from_millis(1)));
        assert_eq!(w.elapsed() - start, 64 * T1);
        assert_eq!(out.requests(Method::Bye).len(), 2, "BYE on both legs");
        assert_eq!(
            out.records()[0].hangup_cause.as_deref(),
            Some("no ACK for the answer to a re-INVITE")
        );
        assert_eq!(w.phase(id), None);
        assert!(w.timers.is_empty());
    }
}

#[test]
fn a_bye_after_a_reinvites_2xx_before_its_ack_ends_the_call_and_the_resending() {
    let mut w = World::new(None);
    let (mut a, id, _b) = up_call(&mut w);
    let (hold, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "inactive"));
    w.feed(Event::InDialog { request: hold, tx });
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("caller hung up")
    );
    assert_eq!(w.phase(id), None);
    assert_eq!(w.advance(40 * SECOND).retransmits(), 0);
    // The late ACK belongs to nothing.
    assert!(!w.calls.owns(&caller_ack(&a, a.cseq)));
}

#[test]
fn a_bye_while_our_refresh_is_out_ends_the_call_and_the_late_2xx_is_acked() {
    let mut w = World::new(None);
    let (_a, id, b, _) = up_with(
        &mut w,
        &[],
        &[(HeaderName::SessionExpires, "90;refresher=uac")],
    );
    let out = w.advance(45 * SECOND);
    let (req, _, owner) = reinvites(&out).remove(0);
    let (bye, tx) = b.in_dialog("BYE", 1, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(w.phase(id), None);
    let mut ok = answer_to(&req, 200, &[]);
    ok.headers
        .push(HeaderName::Contact, "<sip:callee@192.0.2.2:5060>");
    let late = w.feed(Event::Response {
        owner,
        response: ok,
    });
    let acks = late.sent(Method::Ack);
    assert_eq!(acks.len(), 1, "the 2xx gets its ACK");
    assert_eq!(acks[0].1, udp(phone_at(2)));
    assert_eq!(cseq_of(&acks[0].0.headers), "2 ACK");
    assert!(
        late.requests(Method::Bye).is_empty(),
        "its BYE is out already"
    );
    assert!(late.records().is_empty());
}

#[test]
fn rfc3261_14_glare_the_peers_reinvite_gets_491_and_ours_is_retried_after_2_1_to_4_s() {
    let mut w = World::new(None);
    let (_a, id, b, _) = up_with(
        &mut w,
        &[],
        &[(HeaderName::SessionExpires, "1800;refresher=uac")],
    );
    let out = w.advance(900 * SECOND);
    let (ours, _, owner) = reinvites(&out).remove(0);
    // The callee's re-INVITE crosses ours: 491 (and nothing changes).
    let (theirs, tx) = b.in_dialog("INVITE", 1, "", &sdp("192.0.2.2", 31000, "sendonly"));
    let out = w.feed(Event::InDialog {
        request: theirs,
        tx,
    });
    assert_eq!(out.statuses(), vec![491]);
    assert_eq!(out.responses()[0].reason, "Request Pending");
    assert!(out.music().is_empty());
    assert!(!w.calls.list()[0].on_hold);
    // Ours gets 491 too: tried again after 2.1–4 s (we chose B's Call-ID).
    assert!(w.calls.pending_reinvite(id, Side::B).is_some());
    w.feed(Event::Response {
        owner,
        response: answer_to(&ours, 491, &[]),
    });
    let at = w.timers[&(id, CallTimer::GlareRetry(Side::B))];
    let wait = at.since(w.now);
    assert!(
        wait >= Duration::from_millis(2100) && wait <= 4 * SECOND,
        "{wait:?}"
    );
    let out = w.advance(wait);
    let (again, _, _) = reinvites(&out).remove(0);
    assert_eq!(cseq_of(&again.headers), "3 INVITE");
    assert_eq!(again.body, ours.body);
}

#[test]
fn rfc3261_14_1_glare_on_the_callers_leg_retries_within_2_s() {
    let mut w = World::new(None);
    let (mut a, id, _b, _) = up_with(
        &mut w,
        &[
            (HeaderName::SessionExpires, "90;refresher=uas"),
            (HeaderName::Supported, "timer"),
        ],
        &[],
    );
    let out = w.advance(45 * SECOND);
    let (ours, _, owner) = reinvites(&out).remove(0);
    let (theirs, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    assert_eq!(
        w.feed(Event::InDialog {
            request: theirs,
            tx
        })
        .statuses(),
        vec![491]
    );
    w.feed(Event::Response {
        owner,
        response: answer_to(&ours, 491, &[]),
    });
    let wait = w.timers[&(id, CallTimer::GlareRetry(Side::A))].since(w.now);
    assert!(wait <= 2 * SECOND, "{wait:?}: the caller owns the Call-ID");
    // The caller's re-INVITE, sent again after its own wait, now goes through.
    let (theirs, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    let out = w.feed(Event::InDialog {
        request: theirs,
        tx,
    });
    assert_eq!(out.statuses(), vec![200]);
    assert!(w.calls.list()[0].on_hold);
}

/// An up call where the callee (B) asked for a blind transfer to Den and
/// Den's phone rings; returns the caller, the call, the referrer and Den.
fn transfer_ringing(w: &mut World) -> (CallerLeg, CallId, ForkLeg, ForkLeg) {
    let (a, id, b) = up_call(w);
    let (refer, tx) = b.in_dialog("REFER", 1, "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    assert_eq!(
        w.feed(Event::InDialog { request: refer, tx }).statuses(),
        vec![202]
    );
    let target = forks(&w.advance(Duration::ZERO)).remove(0);
    w.feed(target.answer(180, ""));
    (a, id, b, target)
}

#[test]
fn the_referrer_hanging_up_while_the_target_rings_leaves_the_transfer_going() {
    let mut w = World::new(None);
    let (mut a, id, b, target) = transfer_ringing(&mut w);
    let (bye, tx) = b.in_dialog("BYE", 3, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.requests(Method::Bye).is_empty(), "the caller stays");
    assert!(
        out.requests(Method::Cancel).is_empty(),
        "the target rings on"
    );
    assert!(out.records().is_empty());
    assert_eq!(w.phase(id), Some("up"));
    // Its silence is expected now.
    assert!(w
        .feed(Event::Media(id, MediaEvent::Timeout(Side::B)))
        .records()
        .is_empty());
    // The target answers: no NOTIFY, no BYE to the referrer who left.
    let out = w.feed(target.ok());
    assert_eq!(out.sent(Method::Ack).len(), 1);
    assert!(out.requests(Method::Bye).is_empty());
    assert!(out.requests(Method::Notify).is_empty());
    assert_eq!(
        out.music(),
        vec![(Side::A, false)],
        "the caller's music stops"
    );
    // The caller and Den talk; the caller's BYE reaches Den.
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1, target.route);
    assert_eq!(out.records()[0].device_id, Some(3));
    assert_eq!(w.phase(id), None);
}

#[test]
fn the_referrer_gone_and_the_target_not_answering_hangs_up_the_transferee() {
    let mut w = World::new(None);
    let (_a, id, b, _target) = transfer_ringing(&mut w);
    let (bye, tx) = b.in_dialog("BYE", 3, "", "");
    w.feed(Event::InDialog { request: bye, tx });
    let out = w.advance(30 * SECOND);
    assert_eq!(out.requests(Method::Cancel).len(), 1, "the target stops");
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 1, "only the caller: the referrer left");
    assert_eq!(byes[0].1, udp(phone_at(1)));
    assert!(out.requests(Method::Notify).is_empty());
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("the transfer failed after the referrer hung up")
    );
    assert_eq!(w.phase(id), None);
    assert!(w.timers.is_empty());
}

#[test]
fn the_referrer_hanging_up_before_the_refer_is_carried_out_still_transfers() {
    let mut w = World::new(None);
    let (_a, id, b) = up_call(&mut w);
    let (refer, tx) = b.in_dialog("REFER", 1, "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    w.feed(Event::InDialog { request: refer, tx });
    let (bye, tx) = b.in_dialog("BYE", 2, "", "");
    assert_eq!(
        w.feed(Event::InDialog { request: bye, tx }).statuses(),
        vec![200]
    );
    let out = w.advance(Duration::ZERO);
    assert!(out.requests(Method::Notify).is_empty(), "nobody to notify");
    let target = forks(&out).remove(0);
    let out = w.feed(target.ok());
    assert!(out.requests(Method::Bye).is_empty());
    assert_eq!(w.phase(id), Some("up"));
    let (bye, tx) = target.in_dialog("BYE", 1, "", "");
    assert!(w.calls.owns(&bye));
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1, udp(phone_at(1)));
}

#[test]
fn the_transferee_hanging_up_during_a_transfer_asked_by_the_caller_ends_it_all() {
    let mut w = World::new(None);
    let (mut a, id, b) = up_call(&mut w);
    // The caller (A) refers the callee to Den.
    let (refer, tx) = a.in_dialog("REFER", "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    assert_eq!(
        w.feed(Event::InDialog { request: refer, tx }).statuses(),
        vec![202]
    );
    let target = forks(&w.advance(Duration::ZERO)).remove(0);
    w.feed(target.answer(180, ""));
    // The callee, hearing music, hangs up.
    let (bye, tx) = b.in_dialog("BYE", 1, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    let cancels = out.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1, target.route);
    assert_eq!(out.requests(Method::Bye).len(), 1, "BYE to the referrer");
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("callee hung up")
    );
    assert_eq!(w.phase(id), None);
    // The target's late answer is hung up.
    let late = w.feed(target.ok());
    assert_eq!(late.requests(Method::Bye).len(), 1);
    // The referrer's own BYE, crossing ours, finds no dialog left.
    let (bye, tx) = a.in_dialog("BYE", "", "");
    assert_eq!(
        w.feed(Event::InDialog { request: bye, tx }).statuses(),
        vec![481]
    );
}

#[test]
fn media_timeout_while_held_by_the_callee_with_a_session_timer_hangs_up_once() {
    let mut w = World::new(None);
    let (_a, id, b, _) = up_with(
        &mut w,
        &[],
        &[(HeaderName::SessionExpires, "1800;refresher=uac")],
    );
    let (hold, tx) = b.in_dialog("INVITE", 1, "", &sdp("192.0.2.2", 31000, "inactive"));
    w.feed(Event::InDialog { request: hold, tx });
    assert!(w.calls.list()[0].on_hold);
    let out = w.feed(Event::Media(id, MediaEvent::Timeout(Side::A)));
    assert_eq!(out.requests(Method::Bye).len(), 2);
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("media timeout: no RTP from the phone")
    );
    // No refresh, retransmission or expiry outlives the call.
    assert!(w.timers.is_empty());
    assert!(w.advance(3600 * SECOND).0.is_empty());
}

#[test]
fn only_the_ack_with_the_reinvites_cseq_stops_the_resending() {
    let mut w = World::new(None);
    let (mut a, _id, _b) = up_call(&mut w);
    let (hold, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    w.feed(Event::InDialog { request: hold, tx });
    let stale = caller_ack(&a, a.cseq - 1);
    assert!(TxKey::server(&stale).is_some());
    w.feed(Event::Ack(stale));
    assert_eq!(w.advance(600 * Duration::from_millis(1)).retransmits(), 1);
}

#[test]
fn rfc4028_our_refresh_towards_twilio_answers_its_challenge_once() {
    let mut w = World::new(None);
    let (mut a, out) = call_out(&mut w, "5551239876");
    let Some(Action::Resolve(id, _)) = out.0.last() else {
        panic!("no lookup");
    };
    let id = *id;
    let edge = std::net::SocketAddr::from(([198, 51, 100, 7], 5060));
    let twilio = forks(&w.feed(Event::Resolved(id, Some(edge)))).remove(0);
    let out = w.feed(ok_with(
        &twilio,
        &[(HeaderName::SessionExpires, "600;refresher=uac")],
    ));
    a.to = Some(header(out.responses()[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let out = w.advance(300 * SECOND);
    let (first, route, owner) = reinvites(&out).remove(0);
    assert_eq!(route.dest, edge);
    assert_eq!(owner, Owner::Reinvite(id, Side::B));
    let challenge = || {
        answer_to(
            &first,
            407,
            &[(
                HeaderName::ProxyAuthenticate,
                "Digest realm=\"sip.twilio.com\", nonce=\"n2\", algorithm=MD5",
            )],
        )
    };
    let out = w.feed(Event::Response {
        owner,
        response: challenge(),
    });
    let (again, _, _) = reinvites(&out).remove(0);
    assert_eq!(cseq_of(&again.headers), "3 INVITE");
    assert!(again
        .headers
        .get(&HeaderName::ProxyAuthorization)
        .is_some_and(|v| v.contains("username=\"twilio\"")));
    // A second challenge is not answered: tried again later, unchallenged.
    let mut second = answer_to(&again, 407, &[]);
    second.headers.push(
        HeaderName::ProxyAuthenticate,
        "Digest realm=\"sip.twilio.com\", nonce=\"n3\", algorithm=MD5",
    );
    let out = w.feed(Event::Response {
        owner,
        response: second,
    });
    assert!(reinvites(&out).is_empty());
    let out = w.advance(150 * SECOND);
    let (later, _, _) = reinvites(&out).remove(0);
    assert!(later.headers.get(&HeaderName::ProxyAuthorization).is_none());
    let out = w.feed(Event::Response {
        owner,
        response: answer_to(
            &later,
            200,
            &[(HeaderName::SessionExpires, "600;refresher=uac")],
        ),
    });
    assert_eq!(cseq_of(&out.sent(Method::Ack)[0].0.headers), "4 ACK");
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn the_referrer_hanging_up_before_an_attended_transfer_is_carried_out_still_joins() {
    let mut w = World::new(None);
    // Kitchen talks to Office (call 1) and to Den (call 2).
    let (mut k1, call1, office) = up_call(&mut w);
    let (mut k2, call2, f) = kitchen_calls(&mut w, "den", "c2");
    let den = f[0].clone();
    let out = w.feed(den.ok());
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .cloned()
        .expect("200");
    k2.to = Some(header(&ok, HeaderName::To));
    w.feed(Event::Ack(k2.ack()));
    let ours = tag_of(k2.to.as_deref().unwrap_or_default());
    let refer_to = format!(
        "Refer-To: <sip:den@192.0.2.10?Replaces=c2%3Bto-tag%3D{ours}%3Bfrom-tag%3Datagc2>\r\n"
    );
    let (refer, tx) = k1.in_dialog("REFER", &refer_to, "");
    assert_eq!(
        w.feed(Event::InDialog { request: refer, tx }).statuses(),
        vec![202]
    );
    // Kitchen hangs up call 1 at once, before the REFER is carried out.
    let (bye, tx) = k1.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.requests(Method::Bye).is_empty(), "Office stays");
    let out = w.advance(Duration::ZERO);
    assert!(out.requests(Method::Notify).is_empty(), "nobody to notify");
    let byes: Vec<Route> = out.requests(Method::Bye).iter().map(|b| b.1).collect();
    assert_eq!(byes, vec![udp(phone_at(1))], "kitchen leaves call 2 only");
    assert_eq!(w.phase(call2), None);
    assert_eq!(w.phase(call1), Some("up"));
    // Den is call 1's A side now: its BYE reaches Office.
    let (bye, tx) = den.in_dialog("BYE", 1, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1, office.route);
    assert_eq!(w.phase(call1), None);
}

/// RFC 3264 §8: Homeline's answer to the callee's re-INVITE is the same
/// session as the offer in its INVITE (same `o=` session id, the next
/// version); a new session id there looks like a new session to a phone.
#[test]
fn rfc3264_8_the_callees_reinvite_is_answered_in_the_session_of_our_invite() {
    fn origin(body: &[u8]) -> (String, u64) {
        let text = String::from_utf8_lossy(body);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("o=homeline "))
            .expect("our o= line")
            .to_string();
        let mut f = line.split(' ');
        let id = f.next().unwrap_or_default().to_string();
        let version = f.next().and_then(|v| v.parse().ok()).expect("version");
        (id, version)
    }
    let mut w = World::new(None);
    let (_a, _id, b) = up_call(&mut w);
    let offered = origin(&b.invite.body);
    let (hold, tx) = b.in_dialog("INVITE", 2, "", &sdp("192.0.2.2", 40000, "sendonly"));
    let out = w.feed(Event::InDialog { request: hold, tx });
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200 to the re-INVITE")
        .clone();
    let answered = origin(&ok.body);
    assert_eq!(answered.0, offered.0, "same session id");
    assert_eq!(answered.1, offered.1 + 1, "the next version");
}
