//! The call state machine on virtual time: every phase transition and the
//! races, driven by feeding events at chosen instants and reading the
//! actions. A fake [`Host`] stands in for sockets, registrar and relays;
//! armed call timers fire in order when the test advances the clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;
use crate::media::relay::{Control, MediaEvent, Side};
use crate::sip::auth::DeviceCredential;
use crate::sip::message::{parse_datagram, HeaderName, Message, Method, Request, Response};
use crate::sip::transaction::{TimerConfig, TxKey};
use crate::store::cdrs::Disposition;

pub(super) const OURS: [u8; 4] = [192, 0, 2, 10];
pub(super) const T1: Duration = TimerConfig::UDP.t1;

pub(super) struct FakeHost {
    pub(super) next: u64,
    pub(super) contacts: HashMap<DeviceId, Vec<Contact>>,
    pub(super) ports_left: usize,
}

impl Host for FakeHost {
    fn local_ip_for(&mut self, _peer: IpAddr) -> IpAddr {
        IpAddr::from(OURS)
    }
    fn port(&self, _protocol: Protocol) -> u16 {
        5060
    }
    fn token(&mut self, bytes: usize) -> String {
        self.next += 1;
        format!("{:0width$x}", self.next, width = bytes * 2)
    }
    fn random(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
    fn contacts(&self, device: DeviceId) -> Vec<Contact> {
        self.contacts.get(&device).cloned().unwrap_or_default()
    }
    fn open_media(&mut self, call: CallId) -> Option<[u16; 2]> {
        if self.ports_left == 0 {
            return None;
        }
        self.ports_left -= 1;
        let base = 40000 + (call.0 as u16) * 4;
        Some([base, base + 2])
    }
    fn loopback_ip(&self) -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }
}

pub(super) fn phone_at(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 5060))
}

pub(super) fn udp(dest: SocketAddr) -> Route {
    Route {
        protocol: Protocol::Udp,
        dest,
    }
}

/// Kitchen (1, at .1), Office (2, at .2 and .12: two contacts), Den (3,
/// at .3); the number +15551230001 rings Kitchen and Office; the trunk.
pub(super) fn household(trunk_edge: Option<SocketAddr>) -> (Directory, FakeHost) {
    let mut d = Directory::default();
    for (id, user) in [(1, "kitchen"), (2, "office"), (3, "den")] {
        d.phones.insert(
            id,
            Phone {
                device_id: id,
                username: user.into(),
                name: user.to_uppercase(),
                caller_id: Some("+15551230001".into()),
            },
        );
    }
    d.numbers.insert(
        "+15551230001".into(),
        Number {
            did_id: 9,
            device_ids: vec![1, 2],
        },
    );
    d.trunk = Some(Trunk {
        credential: DeviceCredential::new(0, "twilio", "secret"),
        password: "secret".into(),
        domain: "home.sip.twilio.com".into(),
        edge: trunk_edge,
    });
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
    contacts.insert(DeviceId(3), vec![contact("den", 3)]);
    (
        d,
        FakeHost {
            next: 0,
            contacts,
            ports_left: 10,
        },
    )
}

pub(super) fn sdp(addr: &str, port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

pub(super) fn parse_request(raw: &str) -> Request {
    match parse_datagram(raw.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}\n{raw}"),
    }
}

/// A request with a body.
#[allow(clippy::too_many_arguments)]
pub(super) fn request(
    method: &str,
    uri: &str,
    via_host: &str,
    branch: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> Request {
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    parse_request(&format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:peer@{via_host}>\r\n{extra}{ctype}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

pub(super) fn header(m: &Response, name: HeaderName) -> String {
    m.headers.get(&name).unwrap_or_default().to_string()
}

/// The test world: the call table, its host, the clock and armed timers.
pub(super) struct World {
    pub(super) calls: Calls,
    pub(super) host: FakeHost,
    pub(super) now: Timestamp,
    pub(super) start: Timestamp,
    pub(super) timers: HashMap<(CallId, CallTimer), Timestamp>,
}

/// What one step produced, with finders.
pub(super) struct Out(pub(super) Vec<Action>);

impl Out {
    pub(super) fn responses(&self) -> Vec<&Response> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Respond { response, .. } => Some(response),
                _ => None,
            })
            .collect()
    }
    pub(super) fn statuses(&self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status).collect()
    }
    pub(super) fn requests(&self, method: Method) -> Vec<(&Request, Route, Owner)> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Request {
                    request,
                    route,
                    owner,
                } if request.method == method => Some((request, *route, *owner)),
                _ => None,
            })
            .collect()
    }
    /// The requests of `method` handed to new client transactions.
    pub(super) fn outgoing(&self, method: Method) -> Vec<&Request> {
        self.requests(method)
            .into_iter()
            .map(|(r, _, _)| r)
            .collect()
    }
    /// Where the relay was told to send `side`'s RTP.
    pub(super) fn peers(&self, side: Side) -> Vec<SocketAddr> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Media(_, Control::Peer { side: s, rtp, .. }) if *s == side => Some(*rtp),
                _ => None,
            })
            .collect()
    }
    /// The statuses of the responses resent.
    pub(super) fn retransmitted(&self) -> Vec<u16> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Retransmit { response, .. } => Some(response.status),
                _ => None,
            })
            .collect()
    }
    pub(super) fn sent(&self, method: Method) -> Vec<(&Request, Route)> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    message: Message::Request(r),
                    route,
                } if r.method == method => Some((r, *route)),
                _ => None,
            })
            .collect()
    }
    pub(super) fn records(&self) -> Vec<&Cdr> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Record(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }
    pub(super) fn retransmits(&self) -> usize {
        self.0
            .iter()
            .filter(|a| matches!(a, Action::Retransmit { .. }))
            .count()
    }
    pub(super) fn music(&self) -> Vec<(Side, bool)> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Action::Media(_, Control::Music { side, on }) => Some((*side, *on)),
                _ => None,
            })
            .collect()
    }
    pub(super) fn closed(&self) -> bool {
        self.0.iter().any(|a| matches!(a, Action::CloseMedia(_)))
    }
    pub(super) fn extend(&mut self, other: Out) {
        self.0.extend(other.0);
    }
}

impl World {
    pub(super) fn new(trunk_edge: Option<SocketAddr>) -> World {
        let (directory, host) = household(trunk_edge);
        World::with(
            directory,
            host,
            Config {
                rules: crate::dialplan::DialRules {
                    home_country: "1".into(),
                    allowed_prefixes: vec![],
                    max_concurrent: 4,
                    max_per_hour: 20,
                },
                ring_timeout: Duration::from_secs(30),
                public_ip: None,
                trunk_edge: None,
            },
        )
    }

    /// A world over another `directory`, `host` and `config`.
    pub(super) fn with(directory: Directory, host: FakeHost, config: Config) -> World {
        let start = Timestamp::from_unix_millis(1_800_000_000_000);
        World {
            calls: Calls::new(directory, config),
            host,
            now: start,
            start,
            timers: HashMap::new(),
        }
    }

    pub(super) fn track(&mut self, actions: Vec<Action>) -> Out {
        for a in &actions {
            match a {
                Action::Arm(call, timer, after) => {
                    self.timers.insert((*call, *timer), self.now.plus(*after));
                }
                Action::Disarm(call) => self.timers.retain(|(c, _), _| c != call),
                _ => {}
            }
        }
        Out(actions)
    }

    pub(super) fn feed(&mut self, event: Event) -> Out {
        let actions = self.calls.handle(event, self.now, &mut self.host);
        self.track(actions)
    }

    /// Moves the clock forward by `d`, firing due timers in order.
    pub(super) fn advance(&mut self, d: Duration) -> Out {
        let end = self.now.plus(d);
        let mut out = Out(Vec::new());
        loop {
            let next = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= end)
                .min_by_key(|(_, at)| **at)
                .map(|(k, at)| (*k, *at));
            let Some(((call, timer), at)) = next else {
                break;
            };
            self.timers.remove(&(call, timer));
            self.now = at;
            let step = self.feed(Event::Timer(call, timer));
            out.extend(step);
        }
        self.now = end;
        out
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.now.since(self.start)
    }

    pub(super) fn phase(&self, id: CallId) -> Option<&'static str> {
        self.calls.calls.get(&id).map(|c| c.phase.name())
    }
}

/// A caller's side of a call: its INVITE and the answers it got.
pub(super) struct CallerLeg {
    pub(super) invite: Request,
    pub(super) tx: ServerKey,
    /// The To (with our tag) of our final answer, once sent.
    pub(super) to: Option<String>,
    pub(super) from: String,
    pub(super) call_id: String,
    pub(super) cseq: u32,
    pub(super) at: SocketAddr,
}

impl CallerLeg {
    /// A request from the caller inside the call's dialog.
    pub(super) fn in_dialog(
        &mut self,
        method: &str,
        extra: &str,
        body: &str,
    ) -> (Request, ServerKey) {
        self.cseq += 1;
        let to = self.to.clone().expect("answered");
        let req = request(
            method,
            "sip:homeline@192.0.2.10:5060",
            &self.at.to_string(),
            &format!("a{}{method}", self.cseq),
            &self.from,
            &to,
            &self.call_id,
            self.cseq,
            extra,
            body,
        );
        let tx = (TxKey::server(&req).expect("key"), Protocol::Udp);
        (req, tx)
    }

    pub(super) fn ack(&self) -> Request {
        request(
            "ACK",
            "sip:homeline@192.0.2.10:5060",
            &self.at.to_string(),
            "ack1",
            &self.from,
            self.to.as_deref().expect("answered"),
            &self.call_id,
            1,
            "",
            "",
        )
    }
}

pub(super) fn invite_from(
    caller: SocketAddr,
    from_user: &str,
    dialed: &str,
    call_id: &str,
) -> CallerLeg {
    let from = format!("<sip:{from_user}@192.0.2.10>;tag=atag{call_id}");
    let invite = request(
        "INVITE",
        &format!("sip:{dialed}@192.0.2.10"),
        &caller.to_string(),
        &format!("inv{call_id}"),
        &from,
        &format!("<sip:{dialed}@192.0.2.10>"),
        call_id,
        1,
        "",
        &sdp(&caller.ip().to_string(), 30000, "sendrecv"),
    );
    let tx = (TxKey::server(&invite).expect("key"), Protocol::Udp);
    CallerLeg {
        invite,
        tx,
        to: None,
        from,
        call_id: call_id.into(),
        cseq: 1,
        at: caller,
    }
}

/// A fork's INVITE as sent, with what answers it.
#[derive(Clone)]
pub(super) struct ForkLeg {
    pub(super) invite: Request,
    pub(super) route: Route,
    pub(super) owner: Owner,
}

impl ForkLeg {
    pub(super) fn answer(&self, status: u16, body: &str) -> Event {
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
        if !body.is_empty() {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = bytes::Bytes::from(body.to_string());
        }
        Event::Response {
            owner: self.owner,
            response: r,
        }
    }

    pub(super) fn ok(&self) -> Event {
        self.answer(
            200,
            &sdp(&self.route.dest.ip().to_string(), 31000, "sendrecv"),
        )
    }

    /// A request from the callee inside its dialog (after its 2xx).
    pub(super) fn in_dialog(
        &self,
        method: &str,
        cseq: u32,
        extra: &str,
        body: &str,
    ) -> (Request, ServerKey) {
        let ours = self
            .invite
            .headers
            .get(&HeaderName::From)
            .unwrap_or_default();
        let theirs = format!(
            "{};tag=btag{}",
            self.invite.headers.get(&HeaderName::To).unwrap_or_default(),
            self.route.dest.ip()
        );
        let req = request(
            method,
            "sip:homeline@192.0.2.10:5060",
            &self.route.dest.to_string(),
            &format!("b{cseq}{method}"),
            &theirs,
            ours,
            self.invite
                .headers
                .get(&HeaderName::CallId)
                .unwrap_or_default(),
            cseq,
            extra,
            body,
        );
        let tx = (TxKey::server(&req).expect("key"), Protocol::Udp);
        (req, tx)
    }
}

pub(super) fn forks(out: &Out) -> Vec<ForkLeg> {
    out.requests(Method::Invite)
        .into_iter()
        .map(|(invite, route, owner)| ForkLeg {
            invite: invite.clone(),
            route,
            owner,
        })
        .collect()
}

/// Kitchen calls Office: two forks ring.
pub(super) fn kitchen_calls_office(w: &mut World) -> (CallerLeg, CallId, Vec<ForkLeg>) {
    kitchen_calls(w, "office", "c1")
}

/// Kitchen calls `callee` with Call-ID `call_id`.
pub(super) fn kitchen_calls(
    w: &mut World,
    callee: &str,
    call_id: &str,
) -> (CallerLeg, CallId, Vec<ForkLeg>) {
    let a = invite_from(phone_at(1), "kitchen", callee, call_id);
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    let f = forks(&out);
    assert!(!f.is_empty(), "one INVITE per registered contact");
    let id = match f[0].owner {
        Owner::Fork(id, 0) => id,
        other => panic!("{other:?}"),
    };
    (a, id, f)
}

/// ... and the first contact answers; returns the fork that won.
pub(super) fn answered_call(w: &mut World) -> (CallerLeg, CallId, ForkLeg, Out) {
    let (mut a, id, f) = kitchen_calls_office(w);
    w.feed(f[0].answer(180, ""));
    w.feed(f[1].answer(180, ""));
    let out = w.feed(f[0].ok());
    let ok = out
        .responses()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("200 to the caller")
        .clone();
    a.to = Some(header(&ok, HeaderName::To));
    (a, id, f[0].clone(), out)
}

/// ... and the caller ACKs.
pub(super) fn up_call(w: &mut World) -> (CallerLeg, CallId, ForkLeg) {
    let (a, id, b, _) = answered_call(w);
    w.feed(Event::Ack(a.ack()));
    assert_eq!(w.phase(id), Some("up"));
    (a, id, b)
}

#[test]
fn every_phase_from_ringing_to_the_callers_bye() {
    let mut w = World::new(None);
    let (mut a, id, f) = kitchen_calls_office(&mut w);
    assert_eq!(f.len(), 2, "office has two contacts");
    assert_eq!(w.phase(id), Some("ringing"));
    assert!(w.timers.contains_key(&(id, CallTimer::Ring)));
    // The first provisional rings the caller, once.
    let out = w.feed(f[0].answer(180, ""));
    assert_eq!(out.statuses(), vec![180]);
    assert!(w.feed(f[1].answer(180, "")).statuses().is_empty());
    assert_eq!(w.calls.list()[0].state, "ringing");
    // The 2xx: ACKed, the caller answered, the other fork CANCELled.
    let out = w.feed(f[0].ok());
    assert_eq!(out.sent(Method::Ack).len(), 1, "the 2xx is ACKed");
    assert_eq!(out.sent(Method::Ack)[0].1, f[0].route);
    assert_eq!(out.statuses(), vec![200]);
    let cancels = out.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1, f[1].route, "the loser is cancelled");
    assert_eq!(w.phase(id), Some("awaiting-ack"));
    assert_eq!(w.calls.list()[0].state, "answered");
    let ok = out.responses()[0].clone();
    assert_eq!(header(&ok, HeaderName::ContentType), "application/sdp");
    a.to = Some(header(&ok, HeaderName::To));
    // The ACK confirms it; the retransmission timer then does nothing.
    assert!(w.feed(Event::Ack(a.ack())).0.is_empty());
    assert_eq!(w.phase(id), Some("up"));
    assert_eq!(w.advance(Duration::from_secs(5)).retransmits(), 0);
    // The caller hangs up: BYE to the callee, 200 to the caller, a record.
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1, f[0].route);
    assert_eq!(out.statuses(), vec![200]);
    let cdr = out.records()[0].clone();
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("caller hung up"));
    assert_eq!(cdr.device_id, Some(2), "the answering phone");
    assert_eq!(cdr.duration_secs, 5);
    assert!(out.closed(), "the relay stops");
    assert_eq!(w.phase(id), None);
    assert!(w.timers.is_empty(), "no timer outlives the call");
}

#[test]
fn rfc3261_13_3_1_4_the_2xx_is_resent_until_the_ack_and_the_call_ends_at_64_t1() {
    let mut w = World::new(None);
    let (_a, id, _b, _) = answered_call(&mut w);
    let answered = w.elapsed();
    let mut resent_at = Vec::new();
    let end = loop {
        let out = w.advance(Duration::from_millis(100));
        for _ in 0..out.retransmits() {
            resent_at.push(w.elapsed() - answered);
        }
        if !out.records().is_empty() {
            break out;
        }
        assert!(w.elapsed() - answered <= 64 * T1, "torn down by 64·T1");
    };
    // T1, then doubling to T2: 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s.
    let ms: Vec<u128> = resent_at.iter().map(|d| d.as_millis()).collect();
    assert_eq!(
        &ms[..5],
        &[500, 1500, 3500, 7500, 11500],
        "intervals T1, 2·T1, 4·T1, T2, T2"
    );
    assert_eq!(*ms.last().expect("resent"), 31500);
    assert_eq!((w.elapsed() - answered).as_millis(), 64 * T1.as_millis());
    assert_eq!(end.requests(Method::Bye).len(), 2, "BYE on both legs");
    let cdr = end.records()[0];
    assert_eq!(cdr.disposition, Disposition::Failed);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("no ACK from the caller"));
    assert_eq!(w.phase(id), None);
}

#[test]
fn cancel_before_the_200_ends_the_call_and_the_late_200_is_hung_up() {
    let mut w = World::new(None);
    let (a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    let cancel = request(
        "CANCEL",
        &a.invite.uri,
        &a.at.to_string(),
        "invc1",
        &a.from,
        "<sip:office@192.0.2.10>",
        "c1",
        1,
        "",
        "",
    );
    let tx = (TxKey::server(&cancel).expect("key"), Protocol::Udp);
    let out = w.feed(Event::Cancel {
        request: cancel,
        tx,
        invite_exists: true,
    });
    assert_eq!(
        out.statuses(),
        vec![487, 200],
        "487 to the INVITE, 200 to the CANCEL"
    );
    // The ringing fork is CANCELled now; the silent one after its first 1xx.
    assert_eq!(out.requests(Method::Cancel).len(), 1);
    assert_eq!(out.records()[0].disposition, Disposition::Canceled);
    assert_eq!(w.phase(id), None);
    let late = w.feed(f[1].answer(180, ""));
    assert!(late.requests(Method::Cancel).is_empty(), "the call is gone");
    // The 200 that crossed the CANCEL: ACKed and hung up, nothing to A.
    let out = w.feed(f[0].ok());
    assert_eq!(out.sent(Method::Ack).len(), 1);
    assert_eq!(out.requests(Method::Bye).len(), 1);
    assert!(out.responses().is_empty());
}

#[test]
fn cancel_after_the_200_is_answered_200_and_leaves_the_call_up() {
    let mut w = World::new(None);
    let (a, id, _b, _) = answered_call(&mut w);
    let cancel = request(
        "CANCEL",
        &a.invite.uri,
        &a.at.to_string(),
        "invc1",
        &a.from,
        "<sip:office@192.0.2.10>",
        "c1",
        1,
        "",
        "",
    );
    let tx = (TxKey::server(&cancel).expect("key"), Protocol::Udp);
    let out = w.feed(Event::Cancel {
        request: cancel,
        tx,
        invite_exists: true,
    });
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.records().is_empty());
    assert_eq!(w.phase(id), Some("awaiting-ack"));
}

#[test]
fn a_second_fork_answering_after_the_first_is_acked_and_hung_up() {
    let mut w = World::new(None);
    let (a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].ok());
    let out = w.feed(f[1].ok());
    assert_eq!(out.sent(Method::Ack).len(), 1);
    assert_eq!(out.requests(Method::Bye)[0].1, f[1].route);
    assert!(out.responses().is_empty(), "the caller has its answer");
    // The winner's 2xx again: our ACK was lost, so it is sent again.
    let again = w.feed(f[0].ok());
    assert_eq!(again.sent(Method::Ack).len(), 1);
    assert!(again.requests(Method::Bye).is_empty());
    assert!(w.phase(id).is_some());
    drop(a);
}

#[test]
fn the_best_failure_reaches_the_caller_when_every_fork_fails() {
    let mut w = World::new(None);
    let (_a, id, f) = kitchen_calls_office(&mut w);
    assert!(
        w.feed(f[0].answer(408, "")).responses().is_empty(),
        "one fork left"
    );
    let out = w.feed(f[1].answer(486, ""));
    assert_eq!(out.statuses(), vec![486]);
    assert_eq!(out.records()[0].disposition, Disposition::Busy);
    assert_eq!(w.phase(id), None);
}

#[test]
fn nobody_answering_ends_the_call_at_the_ring_timeout() {
    let mut w = World::new(None);
    let (_a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    assert!(w.advance(Duration::from_secs(29)).0.is_empty());
    let out = w.advance(Duration::from_secs(1));
    assert_eq!(out.statuses(), vec![480]);
    assert_eq!(out.requests(Method::Cancel).len(), 1, "the ringing fork");
    assert_eq!(out.records()[0].disposition, Disposition::NoAnswer);
    assert_eq!(w.phase(id), None);
    // The silent fork's first provisional brings its CANCEL (§9.1)...
    // but the call is gone, so only the answer's hang-up is left to do.
    let late = w.feed(f[1].ok());
    assert_eq!(late.requests(Method::Bye).len(), 1);
}

#[test]
fn rfc3261_9_1_a_fork_is_cancelled_only_after_its_first_provisional() {
    let mut w = World::new(None);
    let (_a, _id, f) = kitchen_calls_office(&mut w);
    // Fork 0 answers before fork 1 said anything.
    let out = w.feed(f[0].ok());
    assert!(out.requests(Method::Cancel).is_empty());
    let out = w.feed(f[1].answer(180, ""));
    let cancels = out.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1, f[1].route);
    assert!(out.responses().is_empty(), "no second 180 to the caller");
}

#[test]
fn a_bye_racing_a_reinvite_ends_the_call_and_the_reinvite_gets_481() {
    let mut w = World::new(None);
    let (mut a, id, b) = up_call(&mut w);
    // The callee's BYE is processed first...
    let (bye, tx) = b.in_dialog("BYE", 1, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(out.requests(Method::Bye).len(), 1, "BYE to the caller");
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("callee hung up")
    );
    // ...then the caller's re-INVITE, for a dialog that is gone.
    let (reinvite, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    assert!(!w.calls.owns(&reinvite));
    let out = w.feed(Event::InDialog {
        request: reinvite,
        tx,
    });
    assert_eq!(out.statuses(), vec![481]);
    assert_eq!(w.phase(id), None);
}

#[test]
fn a_reinvite_answered_before_a_bye_holds_then_the_bye_ends_it() {
    let mut w = World::new(None);
    let (mut a, id, b) = up_call(&mut w);
    let (reinvite, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "sendonly"));
    let out = w.feed(Event::InDialog {
        request: reinvite,
        tx,
    });
    assert_eq!(out.statuses(), vec![200]);
    let answer = String::from_utf8_lossy(&out.responses()[0].body).to_string();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert_eq!(
        out.music(),
        vec![(Side::B, true)],
        "the held party hears music"
    );
    assert!(w.calls.list()[0].on_hold);
    let (bye, tx) = b.in_dialog("BYE", 1, "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.statuses(), vec![200]);
    assert_eq!(w.phase(id), None);
}

#[test]
fn rfc3261_12_2_2_an_old_cseq_in_the_dialog_gets_500() {
    let mut w = World::new(None);
    let (mut a, _id, _b) = up_call(&mut w);
    let (info, tx) = a.in_dialog("INFO", "", "");
    assert_eq!(
        w.feed(Event::InDialog { request: info, tx }).statuses(),
        vec![200]
    );
    a.cseq -= 1;
    let (again, tx) = a.in_dialog("INFO", "", "");
    assert_eq!(
        w.feed(Event::InDialog { request: again, tx }).statuses(),
        vec![500]
    );
}

#[test]
fn glare_a_refer_while_a_transfer_is_under_way_gets_491() {
    let mut w = World::new(None);
    let (_a, id, b) = up_call(&mut w);
    let refer_to = "Refer-To: <sip:den@192.0.2.10>\r\n";
    let (refer, tx) = b.in_dialog("REFER", 1, refer_to, "");
    let out = w.feed(Event::InDialog { request: refer, tx });
    assert_eq!(out.statuses(), vec![202]);
    let (again, tx) = b.in_dialog("REFER", 2, refer_to, "");
    assert_eq!(
        w.feed(Event::InDialog { request: again, tx }).statuses(),
        vec![491],
        "request pending"
    );
    // The REFER is carried out once its 202 is out: NOTIFY 100, the target rings.
    let out = w.advance(Duration::ZERO);
    let notifies = out.requests(Method::Notify);
    assert_eq!(notifies.len(), 1);
    assert!(String::from_utf8_lossy(&notifies[0].0.body).contains("100 Trying"));
    assert_eq!(forks(&out).len(), 1, "den rings");
    assert_eq!(
        out.music(),
        vec![(Side::A, true)],
        "the transferee hears music"
    );
    assert!(w.phase(id).is_some());
}

#[test]
fn a_transfer_target_that_never_answers_leaves_the_call_with_the_referrer() {
    let mut w = World::new(None);
    let (_a, id, b) = up_call(&mut w);
    let (refer, tx) = b.in_dialog("REFER", 1, "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    w.feed(Event::InDialog { request: refer, tx });
    let out = w.advance(Duration::ZERO);
    let target = forks(&out).remove(0);
    assert!(matches!(target.owner, Owner::TransferFork(_, 0)));
    w.feed(target.answer(180, ""));
    let out = w.advance(Duration::from_secs(30));
    assert_eq!(
        out.requests(Method::Cancel).len(),
        1,
        "the target stops ringing"
    );
    assert_eq!(out.music(), vec![(Side::A, false)], "the music stops");
    let notify = &out.requests(Method::Notify)[0].0;
    assert!(String::from_utf8_lossy(&notify.body).contains("408"));
    assert_eq!(
        notify
            .headers
            .get(&HeaderName::Other("Subscription-State".into())),
        Some("terminated;reason=noresource")
    );
    assert!(out.records().is_empty(), "the call goes on");
    assert_eq!(w.phase(id), Some("up"));
    // A late answer from the target is hung up; the call is untouched.
    let late = w.feed(target.ok());
    assert_eq!(late.requests(Method::Bye).len(), 1);
    assert_eq!(late.requests(Method::Bye)[0].1, target.route);
    assert_eq!(w.phase(id), Some("up"));
}

#[test]
fn a_blind_transfer_answered_replaces_the_referrers_leg() {
    let mut w = World::new(None);
    let (_a, id, b) = up_call(&mut w);
    let (refer, tx) = b.in_dialog("REFER", 1, "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    w.feed(Event::InDialog { request: refer, tx });
    let target = forks(&w.advance(Duration::ZERO)).remove(0);
    let out = w.feed(target.ok());
    assert_eq!(out.sent(Method::Ack).len(), 1);
    let byes = out.requests(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].1, b.route, "the referrer leaves");
    assert!(String::from_utf8_lossy(&out.requests(Method::Notify)[0].0.body).contains("200"));
    // The old leg's dialog is gone, the target's is the call's B leg now.
    let (bye, _) = b.in_dialog("BYE", 3, "", "");
    assert!(!w.calls.owns(&bye));
    let (bye, tx) = target.in_dialog("BYE", 1, "", "");
    assert!(w.calls.owns(&bye));
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.records()[0].device_id, Some(3), "den answered last");
    assert_eq!(w.phase(id), None);
}

#[test]
fn the_caller_hanging_up_during_a_transfer_stops_the_target_ringing() {
    let mut w = World::new(None);
    let (mut a, id, b) = up_call(&mut w);
    let (refer, tx) = b.in_dialog("REFER", 1, "Refer-To: <sip:den@192.0.2.10>\r\n", "");
    w.feed(Event::InDialog { request: refer, tx });
    let target = forks(&w.advance(Duration::ZERO)).remove(0);
    w.feed(target.answer(180, ""));
    let (bye, tx) = a.in_dialog("BYE", "", "");
    let out = w.feed(Event::InDialog { request: bye, tx });
    let cancels = out.requests(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].1, target.route);
    assert_eq!(w.phase(id), None);
    assert!(w.timers.is_empty());
}

#[test]
fn media_timeout_while_on_hold_hangs_up_both_legs() {
    let mut w = World::new(None);
    let (mut a, id, _b) = up_call(&mut w);
    let (reinvite, tx) = a.in_dialog("INVITE", "", &sdp("192.0.2.1", 30000, "inactive"));
    w.feed(Event::InDialog {
        request: reinvite,
        tx,
    });
    assert!(w.calls.list()[0].on_hold);
    let out = w.feed(Event::Media(id, MediaEvent::Timeout(Side::B)));
    assert_eq!(out.requests(Method::Bye).len(), 2);
    let cdr = out.records()[0];
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(
        cdr.hangup_cause.as_deref(),
        Some("media timeout: no RTP from the phone")
    );
    assert_eq!(w.phase(id), None);
}

#[test]
fn media_reports_before_the_answer_are_ignored() {
    let mut w = World::new(None);
    let (_a, id, _f) = kitchen_calls_office(&mut w);
    assert!(w
        .feed(Event::Media(id, MediaEvent::Timeout(Side::A)))
        .0
        .is_empty());
    assert_eq!(w.phase(id), Some("ringing"));
}

#[test]
fn the_api_holds_both_parties_and_hangs_up_with_bye_or_cancel() {
    let mut w = World::new(None);
    let (_a, id, _b) = up_call(&mut w);
    let (done, actions) = w.calls.hold(id, true, w.now, &mut w.host);
    assert!(done);
    assert_eq!(Out(actions).music(), vec![(Side::A, true), (Side::B, true)]);
    let (done, actions) = w.calls.hang_up(id, w.now, &mut w.host);
    assert!(done);
    let out = w.track(actions);
    assert_eq!(out.requests(Method::Bye).len(), 2);
    assert_eq!(
        out.records()[0].hangup_cause.as_deref(),
        Some("hung up from the web UI")
    );
    // Ringing: 487 and CANCELs.
    let (_a, id, f) = kitchen_calls_office(&mut w);
    w.feed(f[0].answer(180, ""));
    let (done, actions) = w.calls.hang_up(id, w.now, &mut w.host);
    assert!(done);
    let out = w.track(actions);
    assert_eq!(out.statuses(), vec![487]);
    assert_eq!(out.records()[0].disposition, Disposition::Canceled);
    let (done, _) = w.calls.hold(CallId(99), true, w.now, &mut w.host);
    assert!(!done);
}

#[test]
fn an_in_dialog_request_for_an_unknown_dialog_gets_481() {
    let mut w = World::new(None);
    let req = request(
        "BYE",
        "sip:homeline@192.0.2.10",
        "192.0.2.1:5060",
        "zz",
        "<sip:a@x>;tag=1",
        "<sip:b@x>;tag=2",
        "nope",
        5,
        "",
        "",
    );
    let tx = (TxKey::server(&req).expect("key"), Protocol::Udp);
    assert!(!w.calls.owns(&req));
    assert_eq!(
        w.feed(Event::InDialog { request: req, tx }).statuses(),
        vec![481]
    );
}

pub(super) fn call_out(w: &mut World, dialed: &str) -> (CallerLeg, Out) {
    let a = invite_from(phone_at(1), "kitchen", dialed, "out1");
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

#[test]
fn an_outgoing_call_waits_for_dns_and_fails_cleanly_without_an_answer() {
    let mut w = World::new(None);
    let (_a, out) = call_out(&mut w, "5551239876");
    let id = match out.0.last() {
        Some(Action::Resolve(id, host)) => {
            assert_eq!(host, "home.sip.twilio.com");
            *id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(w.phase(id), Some("resolving"));
    assert_eq!(w.calls.list()[0].state, "ringing");
    let out = w.feed(Event::Resolved(id, None));
    assert_eq!(out.statuses(), vec![503]);
    assert_eq!(out.records()[0].disposition, Disposition::Failed);
    assert!(out.closed());
    assert_eq!(w.phase(id), None);
}

#[test]
fn an_outgoing_call_resolved_goes_to_twilio_and_answers_its_challenge_once() {
    let mut w = World::new(None);
    let (_a, out) = call_out(&mut w, "5551239876");
    let Some(Action::Resolve(id, _)) = out.0.last() else {
        panic!("no lookup");
    };
    let id = *id;
    let edge = SocketAddr::from(([198, 51, 100, 7], 5060));
    let out = w.feed(Event::Resolved(id, Some(edge)));
    let f = forks(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].route.dest, edge);
    assert_eq!(f[0].invite.uri, "sip:+15551239876@home.sip.twilio.com");
    assert!(f[0]
        .invite
        .headers
        .get(&HeaderName::From)
        .is_some_and(|v| v.starts_with("<sip:+15551230001@home.sip.twilio.com>")));
    assert!(
        !w.timers.contains_key(&(id, CallTimer::Ring)),
        "Twilio's own timeout"
    );
    // 407: the INVITE again with credentials and CSeq 2, once only.
    let mut challenge = match f[0].answer(407, "") {
        Event::Response { response, .. } => response,
        _ => unreachable!(),
    };
    challenge.headers.push(
        HeaderName::ProxyAuthenticate,
        "Digest realm=\"sip.twilio.com\", nonce=\"n1\", algorithm=MD5",
    );
    let out = w.feed(Event::Response {
        owner: f[0].owner,
        response: challenge.clone(),
    });
    let retry = forks(&out).remove(0);
    assert_eq!(
        retry.invite.headers.get(&HeaderName::CSeq),
        Some("2 INVITE")
    );
    assert!(retry
        .invite
        .headers
        .get(&HeaderName::ProxyAuthorization)
        .is_some_and(|v| v.contains("username=\"twilio\"")));
    let out = w.feed(Event::Response {
        owner: f[0].owner,
        response: challenge,
    });
    assert_eq!(out.statuses(), vec![407], "a second challenge is a failure");
}

#[test]
fn cancel_while_waiting_for_dns_ends_the_call_and_the_late_answer_is_ignored() {
    let mut w = World::new(None);
    let (a, out) = call_out(&mut w, "5551239876");
    let Some(Action::Resolve(id, _)) = out.0.last() else {
        panic!("no lookup");
    };
    let id = *id;
    let cancel = request(
        "CANCEL",
        &a.invite.uri,
        &a.at.to_string(),
        "invout1",
        &a.from,
        "<sip:5551239876@192.0.2.10>",
        "out1",
        1,
        "",
        "",
    );
    let tx = (TxKey::server(&cancel).expect("key"), Protocol::Udp);
    let out = w.feed(Event::Cancel {
        request: cancel,
        tx,
        invite_exists: true,
    });
    assert_eq!(out.statuses(), vec![487, 200]);
    assert_eq!(w.phase(id), None);
    let late = w.feed(Event::Resolved(id, Some(phone_at(99))));
    assert!(late.0.is_empty(), "no INVITE for a cancelled call");
}

#[test]
fn a_refused_call_gets_its_answer_and_no_call_is_left() {
    let mut w = World::new(Some(phone_at(99)));
    // The toll-fraud guard: a foreign number, with a blocked record.
    let (_a, out) = call_out(&mut w, "+4420794601234");
    assert_eq!(out.statuses(), vec![403]);
    assert_eq!(out.responses()[0].reason, "Forbidden (toll-fraud guard)");
    assert_eq!(out.records()[0].disposition, Disposition::Blocked);
    // An offer with its audio disabled is refused with a Warning saying so.
    // (A delayed offer, no SDP at all, is a call now: tests_early.rs.)
    let mut a = invite_from(phone_at(1), "kitchen", "office", "c9");
    a.invite.body = bytes::Bytes::from(sdp("192.0.2.1", 0, "sendrecv"));
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    assert_eq!(out.statuses(), vec![488]);
    assert!(header(out.responses()[0], HeaderName::Other("Warning".into())).contains("disabled"));
    assert!(w.calls.list().is_empty());
}

#[test]
fn no_free_media_ports_is_503_and_no_registered_phone_is_480_with_a_record() {
    let mut w = World::new(None);
    w.host.ports_left = 0;
    let a = invite_from(phone_at(1), "kitchen", "office", "c2");
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    assert_eq!(out.statuses(), vec![503]);
    w.host.ports_left = 1;
    w.host.contacts.clear();
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
    assert_eq!(out.records()[0].disposition, Disposition::Failed);
    assert!(out.closed());
    assert!(w.calls.list().is_empty());
}

#[test]
fn twilio_calling_a_number_rings_every_phone_of_it() {
    let mut w = World::new(None);
    let twilio = SocketAddr::from(([198, 51, 100, 1], 5060));
    let a = invite_from(twilio, "+15550001111", "+15551230001", "in1");
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Twilio,
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    let f = forks(&out);
    assert_eq!(f.len(), 3, "kitchen's contact and office's two");
    // Nobody answers; the caller hangs up: a missed call.
    let cancel = request(
        "CANCEL",
        &a.invite.uri,
        &a.at.to_string(),
        "invin1",
        &a.from,
        "<sip:+15551230001@192.0.2.10>",
        "in1",
        1,
        "",
        "",
    );
    let tx = (TxKey::server(&cancel).expect("key"), Protocol::Udp);
    let out = w.feed(Event::Cancel {
        request: cancel,
        tx,
        invite_exists: true,
    });
    assert_eq!(out.records()[0].disposition, Disposition::Missed);
    assert_eq!(out.records()[0].did_id, Some(9));
}

#[test]
fn rfc3891_an_attended_transfer_joins_the_two_other_parties() {
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
    // Kitchen refers Office to Den, replacing its dialog of call 2.
    let ours = tag_of(k2.to.as_deref().unwrap_or_default());
    let refer_to = format!(
        "Refer-To: <sip:den@192.0.2.10?Replaces=c2%3Bto-tag%3D{ours}%3Bfrom-tag%3Datagc2>\r\n"
    );
    let (refer, tx) = k1.in_dialog("REFER", &refer_to, "");
    assert_eq!(
        w.feed(Event::InDialog { request: refer, tx }).statuses(),
        vec![202]
    );
    let out = w.advance(Duration::ZERO);
    let notify = &out.requests(Method::Notify)[0].0;
    assert!(String::from_utf8_lossy(&notify.body).contains("200 OK"));
    let byes: Vec<Route> = out.requests(Method::Bye).iter().map(|b| b.1).collect();
    assert_eq!(
        byes,
        vec![udp(phone_at(1)), udp(phone_at(1))],
        "kitchen leaves both calls"
    );
    assert!(out.0.iter().any(
        |a| matches!(a, Action::MergeMedia { from, into } if *from == call2 && *into == call1)
    ));
    let record = out.records()[0];
    assert!(record
        .hangup_cause
        .as_deref()
        .unwrap_or_default()
        .contains("joined into call"));
    assert_eq!(w.phase(call2), None);
    // Den now is call 1's A side: its BYE ends call 1 with a BYE to Office.
    let (bye, tx) = den.in_dialog("BYE", 1, "", "");
    assert!(w.calls.owns(&bye));
    let out = w.feed(Event::InDialog { request: bye, tx });
    assert_eq!(out.requests(Method::Bye)[0].1, office.route);
    assert_eq!(w.phase(call1), None);
}

/// The tag parameter of a name-addr value.
pub(super) fn tag_of(value: &str) -> String {
    crate::sip::message::NameAddr::parse(value)
        .and_then(|n| n.params.get("tag").flatten().map(str::to_string))
        .unwrap_or_default()
}

/// The call features (DTMF, pickup, external transfer) on this world.
#[path = "tests_features.rs"]
mod features;
