//! The call features on virtual time: DTMF between INFO and RFC 4733, call
//! pickup by the feature code, and transfer to an external number with the
//! toll-fraud guard. Built on the world of `tests.rs`.

use super::*;

/// An SDP without telephone-event (a phone that only does INFO).
fn sdp_without_events(addr: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// Kitchen calls Office, whose first contact answers with `answer` and
/// the caller ACKs.
fn up_call_answered_with(w: &mut World, answer: &str) -> (CallerLeg, CallId, ForkLeg, Out) {
    let (mut a, id, f) = kitchen_calls_office(w);
    w.feed(f[0].answer(180, ""));
    w.feed(f[1].answer(180, ""));
    let out = w.feed(f[0].answer(200, answer));
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200 to the caller")
        .clone();
    a.to = Some(header(&ok, HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    assert_eq!(w.phase(id), Some("up"));
    (a, id, f[0].clone(), out)
}

fn dtmf_controls(out: &Out) -> Vec<(Side, u8, Duration)> {
    out.0
        .iter()
        .filter_map(|a| match a {
            Action::Media(
                _,
                Control::Dtmf {
                    side,
                    event,
                    duration,
                },
            ) => Some((*side, *event, *duration)),
            _ => None,
        })
        .collect()
}

fn events_controls(out: &Out) -> Vec<(Side, Option<u8>, bool)> {
    out.0
        .iter()
        .filter_map(|a| match a {
            Action::Media(_, Control::Events { side, pt, report }) => Some((*side, *pt, *report)),
            _ => None,
        })
        .collect()
}

fn info(a: &mut CallerLeg, ctype: &str, body: &str) -> (Request, ServerKey) {
    let (mut req, tx) = a.in_dialog("INFO", "", body);
    req.headers.set(HeaderName::ContentType, ctype.to_string());
    (req, tx)
}

#[test]
fn info_dtmf_becomes_rfc4733_towards_a_leg_with_telephone_event() {
    let mut w = World::new(None);
    let (mut a, id, _b, answered) =
        up_call_answered_with(&mut w, &sdp("192.0.2.2", 31000, "sendrecv"));
    assert_eq!(
        events_controls(&answered),
        vec![(Side::A, Some(101), false), (Side::B, Some(101), false)],
        "both legs negotiated telephone-event: relayed as they are"
    );
    let (req, tx) = info(
        &mut a,
        "application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
    );
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(
        dtmf_controls(&out),
        vec![(Side::B, 5, Duration::from_millis(160))]
    );
    assert!(out.requests(Method::Info).is_empty(), "no INFO goes on");
    // `application/dtmf` too, and an empty INFO is a keep-alive.
    let (req, tx) = info(&mut a, "application/dtmf", "#");
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(dtmf_controls(&out)[0].1, 11);
    let (req, tx) = a.in_dialog("INFO", "", "");
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert!(dtmf_controls(&out).is_empty());
    // An event the relay reports needs no INFO when the peer has events.
    let out = w.feed(Event::Media(
        id,
        MediaEvent::Dtmf {
            side: Side::B,
            event: 3,
            duration_ms: 100,
        },
    ));
    assert!(out.requests(Method::Info).is_empty());
}

#[test]
fn info_dtmf_goes_on_as_info_to_a_leg_without_telephone_event_and_back() {
    let mut w = World::new(None);
    let (mut a, id, b, answered) =
        up_call_answered_with(&mut w, &sdp_without_events("192.0.2.2", 31000));
    // The caller offered events and keeps them: what it sends is reported.
    let ok = answered
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .unwrap()
        .clone();
    assert!(String::from_utf8_lossy(&ok.body).contains("telephone-event"));
    assert_eq!(
        events_controls(&answered),
        vec![(Side::A, Some(101), true), (Side::B, None, false)]
    );
    let (req, tx) = info(
        &mut a,
        "application/dtmf-relay",
        "Signal=*\r\nDuration=200\r\n",
    );
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert!(dtmf_controls(&out).is_empty());
    let infos = out.requests(Method::Info);
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].1, b.route, "to the callee");
    assert_eq!(
        infos[0].0.headers.get(&HeaderName::ContentType),
        Some("application/dtmf-relay")
    );
    assert_eq!(&infos[0].0.body[..], b"Signal=*\r\nDuration=200\r\n");
    // RFC 4733 from the caller: one INFO per event to the callee.
    let out = w.feed(Event::Media(
        id,
        MediaEvent::Dtmf {
            side: Side::A,
            event: 12,
            duration_ms: 120,
        },
    ));
    let infos = out.requests(Method::Info);
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].1, b.route);
    assert_eq!(&infos[0].0.body[..], b"Signal=A\r\nDuration=120\r\n");
    // INFO from the callee goes to the caller as RFC 4733 (it has events).
    let (mut req, tx) = b.in_dialog("INFO", 1, "", "Signal=0\r\nDuration=100");
    req.headers.set(
        HeaderName::ContentType,
        "application/dtmf-relay".to_string(),
    );
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(
        dtmf_controls(&out),
        vec![(Side::A, 0, Duration::from_millis(100))]
    );
    // A re-INVITE keeps each leg's own telephone-events in its answer.
    let (reinvite, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendrecv"));
    let out = w.feed(Event::InDialog {
        request: reinvite,
        tx,
    });
    assert!(String::from_utf8_lossy(&out.responses()[0].body).contains("telephone-event"));
    let (reinvite, tx) = b.in_dialog("INVITE", 2, "", &sdp_without_events("192.0.2.2", 31000));
    let out = w.feed(Event::InDialog {
        request: reinvite,
        tx,
    });
    assert_eq!(out.statuses(), vec![200]);
    assert!(!String::from_utf8_lossy(&out.responses()[0].body).contains("telephone-event"));
}

#[test]
fn bad_info_bodies_get_400_and_unknown_types_415() {
    let mut w = World::new(None);
    let (mut a, id, _b) = up_call(&mut w);
    for body in [
        "Signal=Z\r\n",
        "Duration=100\r\n",
        "garbage",
        "Signal=1\r\nDuration=x",
    ] {
        let (req, tx) = info(&mut a, "application/dtmf-relay", body);
        let out = w.feed(Event::InDialog { request: req, tx });
        assert_eq!(out.statuses(), vec![400], "{body:?}");
        assert!(header(out.responses()[0], HeaderName::Other("Warning".into())).contains("DTMF"));
        assert!(dtmf_controls(&out).is_empty());
    }
    let (req, tx) = info(&mut a, "application/media_control+xml", "<media_control/>");
    let out = w.feed(Event::InDialog { request: req, tx });
    assert_eq!(out.statuses(), vec![415]);
    assert!(header(out.responses()[0], HeaderName::Accept).contains("application/dtmf-relay"));
    assert_eq!(w.phase(id), Some("up"), "the call is unharmed");
}

/// Twilio calls the household number (Kitchen and Office ring).
fn twilio_calls(w: &mut World) -> (CallerLeg, CallId, Vec<ForkLeg>) {
    let twilio = SocketAddr::from(([198, 51, 100, 1], 5060));
    let a = invite_from(twilio, "+15550001111", "+15551230001", "in1");
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Twilio,
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    let f = forks(&out);
    let Owner::Fork(id, _) = f[0].owner else {
        panic!("{:?}", f[0].owner);
    };
    (a, id, f)
}

/// `device` (at `last`) dials the pickup code.
fn dial_pickup(w: &mut World, device: i64, user: &str, last: u8) -> (CallerLeg, Out) {
    let p = invite_from(phone_at(last), user, "*8", &format!("pick{device}"));
    let out = w.feed(Event::Invite {
        request: p.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(device),
            username: user.into(),
        },
        tx: p.tx.clone(),
        route: udp(p.at),
    });
    (p, out)
}

fn response_on<'a>(out: &'a Out, tx: &ServerKey) -> Vec<&'a Response> {
    out.0
        .iter()
        .filter_map(|a| match a {
            Action::Respond { tx: t, response } if t == tx => Some(response),
            _ => None,
        })
        .collect()
}

#[test]
fn pickup_answers_an_inbound_call_ringing_elsewhere_and_records_the_picker() {
    let mut w = World::new(None);
    let (mut a, id, f) = twilio_calls(&mut w);
    for fork in &f {
        w.feed(fork.answer(180, ""));
    }
    // Kitchen (assigned the number) dials *8.
    let (mut p, out) = dial_pickup(&mut w, 1, "kitchen", 21);
    let to_picker = response_on(&out, &p.tx);
    assert_eq!(to_picker.len(), 1);
    assert_eq!(to_picker[0].status, 200);
    let picked_sdp = String::from_utf8_lossy(&to_picker[0].body).to_string();
    assert!(
        picked_sdp.contains("m=audio 40006 "),
        "the call's B-side port: {picked_sdp}"
    );
    let to_caller = response_on(&out, &a.tx);
    assert_eq!(
        to_caller[0].status, 200,
        "the caller's leg goes on, answered"
    );
    assert_eq!(
        out.requests(Method::Cancel).len(),
        3,
        "every ringing fork stops"
    );
    assert!(out.0.iter().any(|x| matches!(
        x,
        Action::Media(_, Control::Peer { side: Side::B, rtp, .. }) if rtp.ip() == phone_at(21).ip()
    )));
    assert!(!out.0.iter().any(|x| matches!(x, Action::CloseMedia(_))));
    assert_eq!(w.phase(id), Some("awaiting-ack"));
    a.to = Some(header(to_caller[0], HeaderName::To));
    p.to = Some(header(to_picker[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    w.feed(Event::Ack(p.ack()));
    assert_eq!(w.phase(id), Some("up"));
    // No more 2xx retransmissions to either once both ACKed.
    assert_eq!(w.advance(Duration::from_secs(40)).retransmits(), 0);
    // The picker hangs up: BYE to Twilio, a record naming the picker.
    let (bye, tx) = p.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1.dest, a.at);
    let rec = out.records()[0];
    assert_eq!(rec.device_id, Some(1));
    assert_eq!(rec.disposition, Disposition::Answered);
    assert_eq!(rec.did_id, Some(9));
}

#[test]
fn pickup_of_a_phone_to_phone_call_from_any_household_phone() {
    let mut w = World::new(None);
    let (mut a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    // Den is no user of the number, but internal calls are household-wide.
    let (mut p, out) = dial_pickup(&mut w, 3, "den", 3);
    assert_eq!(response_on(&out, &p.tx)[0].status, 200);
    let ok = response_on(&out, &a.tx)[0].clone();
    assert_eq!(ok.status, 200);
    // The fork that rang is CANCELled; the silent one once it rings.
    assert_eq!(out.requests(Method::Cancel).len(), 1);
    let later = w.feed(f[1].answer(180, ""));
    assert_eq!(later.requests(Method::Cancel).len(), 1);
    a.to = Some(header(&ok, HeaderName::To));
    p.to = Some(header(response_on(&out, &p.tx)[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    w.feed(Event::Ack(p.ack()));
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1.dest, phone_at(3));
    assert_eq!(out.records()[0].device_id, Some(3), "den answered");
    assert_eq!(w.phase(id), None);
}

#[test]
fn pickup_with_nothing_it_may_pick_up_is_480_with_a_warning() {
    let mut w = World::new(None);
    let (p, out) = dial_pickup(&mut w, 3, "den", 3);
    let r = response_on(&out, &p.tx);
    assert_eq!(r[0].status, 480);
    assert!(header(r[0], HeaderName::Other("Warning".into())).contains("no call is ringing"));
    assert!(w.calls.is_empty());
    // An inbound call on a number Den is not assigned: not Den's to take.
    let (_a, id, _f) = twilio_calls(&mut w);
    let (p, out) = dial_pickup(&mut w, 3, "den", 3);
    assert_eq!(response_on(&out, &p.tx)[0].status, 480);
    assert_eq!(w.phase(id), Some("ringing"), "the call rings on");
    // Nor may a phone pick up its own call.
    let mut w = World::new(None);
    let (_a, id, _f) = kitchen_calls_office(&mut w);
    let (p, out) = dial_pickup(&mut w, 1, "kitchen", 21);
    assert_eq!(response_on(&out, &p.tx)[0].status, 480);
    assert_eq!(w.phase(id), Some("ringing"));
}

#[test]
fn a_picker_that_never_acks_gets_its_2xx_again_and_the_call_ends_at_64_t1() {
    let mut w = World::new(None);
    let (mut a, id, f) = twilio_calls(&mut w);
    w.feed(f[0].answer(180, ""));
    let (_p, out) = dial_pickup(&mut w, 2, "office", 22);
    a.to = Some(header(response_on(&out, &a.tx)[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let out = w.advance(TimerConfig::UDP.timeout());
    assert!(out.retransmits() >= 6, "T1, 2·T1, 4 s… until 64·T1");
    assert_eq!(out.requests(Method::Bye).len(), 2, "both legs hung up");
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("no ACK from the picking-up phone")
    );
    assert_eq!(w.phase(id), None);
}

/// Office (answered, on B) REFERs the call to `target`.
fn office_refers(w: &mut World, b: &ForkLeg, target: &str) -> Out {
    let (refer, tx) = b.in_dialog(
        "REFER",
        1,
        &format!("Refer-To: <sip:{target}@192.0.2.10>\r\n"),
        "",
    );
    w.feed(Event::InDialog { request: refer, tx })
}

fn notify_bodies(out: &Out) -> Vec<String> {
    out.requests(Method::Notify)
        .iter()
        .map(|(r, _, _)| String::from_utf8_lossy(&r.body).to_string())
        .collect()
}

#[test]
fn a_transfer_to_an_external_number_rings_twilio_and_replaces_the_referrer() {
    let edge = SocketAddr::from(([198, 51, 100, 7], 5060));
    let mut w = World::new(Some(edge));
    let (_a, id, b) = up_call(&mut w);
    let out = office_refers(&mut w, &b, "+15557654321");
    assert_eq!(out.statuses(), vec![202]);
    let out = w.advance(Duration::ZERO);
    assert!(notify_bodies(&out)[0].contains("100"));
    assert!(
        out.music().contains(&(Side::A, true)),
        "the caller hears music"
    );
    let target = forks(&out).remove(0);
    assert_eq!(target.route.dest, edge);
    assert_eq!(target.invite.uri, "sip:+15557654321@home.sip.twilio.com");
    assert!(target
        .invite
        .headers
        .get(&HeaderName::From)
        .is_some_and(|v| v.starts_with("<sip:+15551230001@home.sip.twilio.com>")));
    // Twilio's challenge is answered once.
    let mut challenge = match target.answer(401, "") {
        Event::Response { response, .. } => response,
        _ => unreachable!(),
    };
    challenge.headers.push(
        HeaderName::WwwAuthenticate,
        "Digest realm=\"sip.twilio.com\", nonce=\"n1\", algorithm=MD5",
    );
    let out = w.feed(Event::Response {
        owner: target.owner,
        response: challenge,
    });
    let retry = forks(&out).remove(0);
    assert!(retry
        .invite
        .headers
        .get(&HeaderName::Authorization)
        .is_some());
    let out = w.feed(retry.answer(200, &sdp("198.51.100.7", 32000, "sendrecv")));
    assert_eq!(out.sent(Method::Ack).len(), 1);
    assert!(notify_bodies(&out)[0].contains("200"));
    assert_eq!(
        out.requests(Method::Bye)[0].1,
        b.route,
        "the referrer leaves"
    );
    assert!(out.0.iter().any(|x| matches!(
        x,
        Action::Media(_, Control::Peer { side: Side::B, rtp, .. }) if rtp.port() == 32000
    )));
    assert_eq!(w.phase(id), Some("up"));
    assert_eq!(
        events_controls(&out),
        vec![(Side::A, Some(101), false), (Side::B, Some(101), false)],
        "Twilio's telephone-events"
    );
    assert_eq!(w.calls.outgoing(), 1, "the guard counts it as outgoing");
    // Twilio's leg is the call's B leg now.
    let (bye, tx) = retry.in_dialog("BYE", 1, "", "");
    assert!(w.calls.owns(&bye));
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.records().len(), 1);
}

#[test]
fn the_toll_guard_refuses_an_external_transfer_with_403_and_a_blocked_record() {
    let mut w = World::new(Some(SocketAddr::from(([198, 51, 100, 7], 5060))));
    let (_a, id, b) = up_call(&mut w);
    let out = office_refers(&mut w, &b, "+4420794601234");
    assert_eq!(out.statuses(), vec![403]);
    let r = out.responses()[0];
    assert_eq!(r.reason, "Forbidden (toll-fraud guard)");
    assert!(header(r, HeaderName::Other("Warning".into())).contains("not in an allowed"));
    assert_eq!(out.records()[0].disposition, Disposition::Blocked);
    assert!(w
        .advance(Duration::ZERO)
        .requests(Method::Invite)
        .is_empty());
    // Not a number at all: as an unknown extension.
    let (refer, tx) = b.in_dialog("REFER", 2, "Refer-To: <sip:nobody@192.0.2.10>\r\n", "");
    let out = w.feed(Event::InDialog { request: refer, tx });
    assert_eq!(out.statuses(), vec![403]);
    assert_eq!(
        out.responses()[0].reason,
        "Transfer Target Is Not a Local Phone"
    );
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn twilio_may_not_transfer_a_call_out() {
    let mut w = World::new(Some(SocketAddr::from(([198, 51, 100, 7], 5060))));
    let (mut a, id, f) = twilio_calls(&mut w);
    let out = w.feed(f[0].ok());
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .unwrap()
        .clone();
    a.to = Some(header(&ok, HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let (refer, tx) = a.in_dialog("REFER", "Refer-To: <sip:+15557654321@192.0.2.10>\r\n", "");
    let out = w.feed(Event::InDialog { request: refer, tx });
    assert_eq!(out.statuses(), vec![403]);
    assert!(out.records().is_empty());
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn an_external_transfer_whose_twilio_address_does_not_resolve_leaves_the_call() {
    let mut w = World::new(None);
    let (_a, id, b) = up_call(&mut w);
    office_refers(&mut w, &b, "5557654321");
    let out = w.advance(Duration::ZERO);
    let Some(Action::Resolve(rid, domain)) =
        out.0.iter().find(|x| matches!(x, Action::Resolve(..)))
    else {
        panic!("no lookup");
    };
    assert_eq!((*rid, domain.as_str()), (id, "home.sip.twilio.com"));
    let out = w.feed(Event::Resolved(id, None));
    let bodies = notify_bodies(&out);
    assert!(bodies[0].contains("503"), "{bodies:?}");
    assert!(
        out.music().contains(&(Side::A, false)),
        "the caller is back"
    );
    assert_eq!(w.phase(id), Some("up"), "the call stays with the referrer");
}

/// Den dials the pickup code with an INVITE without SDP (a delayed offer).
fn dial_pickup_without_offer(w: &mut World) -> (CallerLeg, Out) {
    let mut p = invite_from(phone_at(3), "den", "*8", "pick-no-sdp");
    p.invite.body = bytes::Bytes::new();
    p.invite.headers.remove(&HeaderName::ContentType);
    p.invite
        .headers
        .set(HeaderName::ContentLength, "0".to_string());
    let out = w.feed(Event::Invite {
        request: p.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(3),
            username: "den".into(),
        },
        tx: p.tx.clone(),
        route: udp(p.at),
    });
    (p, out)
}

/// The picker's ACK, carrying `body`.
fn ack_with(p: &CallerLeg, body: &str) -> Request {
    request(
        "ACK",
        "sip:homeline@192.0.2.10:5060",
        &p.at.to_string(),
        "ack1",
        &p.from,
        p.to.as_deref().expect("answered"),
        &p.call_id,
        1,
        "",
        body,
    )
}

#[test]
fn pickup_with_a_delayed_offer_gets_our_offer_and_its_ack_brings_the_answer() {
    let mut w = World::new(None);
    let (mut a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    let (mut p, out) = dial_pickup_without_offer(&mut w);
    let to_picker = response_on(&out, &p.tx);
    assert_eq!(to_picker[0].status, 200, "picked up, not 488");
    assert_eq!(
        header(to_picker[0], HeaderName::ContentType),
        "application/sdp"
    );
    let offer = crate::media::sdp::Description::parse(&to_picker[0].body).expect("our offer");
    assert_eq!(
        offer.audio.codecs,
        vec![crate::media::sdp::Codec::Pcmu],
        "the call's codec"
    );
    assert!(offer.audio.telephone_event.is_some(), "DTMF offered");
    assert_eq!(
        offer.audio.direction,
        crate::media::sdp::Direction::SendRecv
    );
    assert!(
        !out.0
            .iter()
            .any(|x| matches!(x, Action::Media(_, Control::Peer { side: Side::B, .. }))),
        "the picker's address comes with its answer"
    );
    assert_eq!(
        out.requests(Method::Cancel).len(),
        1,
        "the ringing fork stops"
    );
    let ok = response_on(&out, &a.tx)[0].clone();
    a.to = Some(header(&ok, HeaderName::To));
    p.to = Some(header(to_picker[0], HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let out = w.feed(Event::Ack(ack_with(
        &p,
        &sdp("192.0.2.3", 31000, "sendrecv"),
    )));
    assert!(out.0.iter().any(|x| matches!(
        x,
        Action::Media(_, Control::Peer { side: Side::B, rtp, .. })
            if *rtp == SocketAddr::from(([192, 0, 2, 3], 31000))
    )));
    assert_eq!(w.phase(id), Some("up"));
    assert_eq!(w.advance(Duration::from_secs(40)).retransmits(), 0);
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1.dest, phone_at(3));
    assert_eq!(out.records()[0].device_id, Some(3), "den answered");
}

#[test]
fn pickup_with_a_delayed_offer_and_no_answer_in_the_ack_ends_the_call() {
    let mut w = World::new(None);
    let (mut a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    let (mut p, out) = dial_pickup_without_offer(&mut w);
    let to_picker = response_on(&out, &p.tx)[0].clone();
    let ok = response_on(&out, &a.tx)[0].clone();
    a.to = Some(header(&ok, HeaderName::To));
    p.to = Some(header(&to_picker, HeaderName::To));
    w.feed(Event::Ack(a.ack()));
    let out = w.feed(Event::Ack(ack_with(&p, "")));
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 2, "both legs hear why");
    assert!(byes.iter().all(|(b, _, _)| b
        .headers
        .get(&HeaderName::Other("Reason".into()))
        .is_some_and(|r| r.contains("no SDP answer"))));
    let rec = out.records()[0];
    assert_eq!(rec.disposition, Disposition::Failed);
    assert_eq!(w.phase(id), None);
}
