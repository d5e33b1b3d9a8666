//! The forks' answers: ringing goes back to the caller once, the first 2xx
//! wins the call (the others are stopped), a 2xx nobody wants is ACKed and
//! hung up, and when every fork failed the caller gets the best failure.
//! Also the caller's CANCEL, which races the answer.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Codec, Description, Direction, Origin};
use crate::sip::dialog::Dialog;
use crate::sip::message::{
    build, CSeq, HeaderName, Headers, Message, Method, NameAddr, Request, Response,
};
use crate::sip::transaction::{invite_key_of_cancel, ServerKey, TimerConfig};
use crate::sip::transport::Protocol;
use crate::store::cdrs::Disposition;

use super::call::{AwaitingAck, BLeg, Call, Kind, Phase, Up};
use super::cdr::Ending;
use super::forking::{self, ForkState};
use super::hold::Hold;
use super::prack;
use super::transfer::TransferState;
use super::{CallId, CallTimer, Calls, Cx, Owner, Route};

impl Calls {
    /// A response to fork `n` of call `id`.
    pub(super) fn on_fork_response(
        &mut self,
        id: CallId,
        n: usize,
        resp: Response,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            // The call is over: a late 2xx still needs its ACK and a BYE.
            if (200..300).contains(&resp.status) {
                hang_up_stray(&resp, cx);
            }
            return;
        };
        let answered = call.answered();
        let Some(fork) = call.forks_mut().and_then(|f| f.get_mut(n)) else {
            return;
        };
        match resp.status {
            100 => {}
            101..=199 => self.on_fork_provisional(id, n, resp, cx),
            200..=299 => {
                if fork.state == ForkState::Answered {
                    // The winner's 2xx again: our ACK was lost, send it again.
                    if let Some(up) = call.up() {
                        cx.send(up.b.route, Message::Request(up.b.ack.clone()));
                    }
                    return;
                }
                if answered || matches!(fork.state, ForkState::Cancelled | ForkState::Failed(_)) {
                    return hang_up_stray(&resp, cx);
                }
                self.on_answer(id, n, resp, cx);
            }
            422 if matches!(fork.state, ForkState::Calling | ForkState::Ringing) => {
                // RFC 4028 §7.3: our interval is below the callee's minimum.
                let Some(mut again) = super::session_timer::retry_for_422(&fork.invite, &resp)
                else {
                    fork.state = ForkState::Failed(422);
                    return self.fork_failed(id, cx);
                };
                let route = fork.route;
                again.headers.set(HeaderName::Via, cx.via(route));
                fork.invite = again.clone();
                cx.request(again, route, Owner::Fork(id, n));
            }
            401 | 407 if !fork.auth_tried && fork.device_id.is_none() => {
                // Twilio's challenge: answer it once with the trunk credentials.
                fork.auth_tried = true;
                let Some(trunk) = self.directory.trunk.clone() else {
                    return;
                };
                let cnonce = cx.tag();
                let route = fork.route;
                let via = cx.via(route);
                let Some(invite) = super::challenge::retry_fork(fork, &resp, &trunk, &cnonce, via)
                else {
                    fork.state = ForkState::Failed(resp.status);
                    return self.fork_failed(id, cx);
                };
                cx.request(invite, route, Owner::Fork(id, n));
            }
            status => {
                if fork.state != ForkState::Cancelled {
                    fork.state = ForkState::Failed(status);
                }
                self.early_fork_ended(id, n, cx);
                self.fork_failed(id, cx);
            }
        }
    }

    /// A fork failed: when none is left, the caller gets the best answer.
    pub(super) fn fork_failed(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Phase::Ringing(ringing) = &call.phase else {
            return;
        };
        if ringing.forks.iter().any(|f| f.live()) {
            return;
        }
        // Ringing in steps: a step that failed as a whole moves on now.
        if ringing.sequence.is_some() && self.next_step(id, cx) {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Phase::Ringing(ringing) = &call.phase else {
            return;
        };
        let (status, disposition) = forking::best_failure(ringing.forks.iter().map(|f| f.state));
        let r = build::reply(&call.a.invite, status, &call.a.tag);
        cx.respond(&call.a.tx, r);
        self.end_call(
            id,
            Ending::new(disposition, format!("callee answered {status}")),
            cx,
        );
    }

    /// Fork `n` answered first: ACK it, point the relay at it, answer the
    /// caller and stop the other forks.
    fn on_answer(&mut self, id: CallId, n: usize, resp: Response, cx: &mut Cx<'_>) {
        let public_ip = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Phase::Ringing(mut ringing) = call.take_phase() else {
            return;
        };
        let fork = &mut ringing.forks[n];
        fork.state = ForkState::Answered;
        let (invite, route, device_id) = (fork.invite.clone(), fork.route, fork.device_id);
        // PRACKs sent in the early dialog used CSeqs past the INVITE's.
        let early_seq = prack::early_seq(fork);
        let mut dialog = match Dialog::uac(&invite, &resp) {
            Ok(mut d) => {
                d.local_seq = d.local_seq.max(early_seq);
                d
            }
            Err(e) => {
                tracing::info!(call = %id, error = %e, "unusable 2xx from the callee");
                call.phase = Phase::Ringing(ringing);
                return hang_up_stray(&resp, cx);
            }
        };
        // ACK the 2xx (it is ours to send, RFC 6026) before anything else.
        let cseq = invite
            .headers
            .get(&HeaderName::CSeq)
            .and_then(CSeq::parse)
            .map(|c| c.seq)
            .unwrap_or(1);
        let via = cx.via(route);
        let contact = cx.contact(route);
        let ack = dialog.request(Method::Ack, &via, &contact, Some(cseq));
        cx.send(route, Message::Request(ack.clone()));
        let answer = match Description::parse(&resp.body) {
            Ok(a) if a.audio.port != 0 && !a.audio.codecs.is_empty() => a,
            other => {
                tracing::info!(call = %id, error = ?other.err(), "callee answered without usable audio");
                let via = cx.via(route);
                let bye = dialog.request(Method::Bye, &via, &contact, None);
                cx.request(bye, route, Owner::Nobody);
                ringing.forks[n].state = ForkState::Failed(488);
                call.phase = Phase::Ringing(ringing);
                return self.fork_failed(id, cx);
            }
        };
        let codec = answer.audio.codecs[0];
        call.codec = codec;
        if answer.audio.telephone_event.is_none() {
            call.telephone_event = None;
        }
        call.dtmf[1] = answer.audio.telephone_event;
        cx.media(
            id,
            Control::Peer {
                side: Side::B,
                rtp: SocketAddr::new(answer.audio.addr, answer.audio.port),
                direction: answer.audio.direction,
                codec,
            },
        );
        if let Some(offer) = &call.a.offer {
            cx.media(
                id,
                Control::Peer {
                    side: Side::A,
                    rtp: SocketAddr::new(offer.audio.addr, offer.audio.port),
                    direction: offer.audio.direction,
                    codec,
                },
            );
        }
        super::dtmf::tell_relay(call, cx);
        call.answered_at = Some(cx.now);
        if device_id.is_some() && call.kind != Kind::Outbound {
            call.device_id = device_id;
        }
        // Stop the other forks.
        let cancels = forking::stop(ringing.forks.iter_mut());
        // Answer the caller (an offer, if its INVITE had none): the answer
        // it already had in a 183 again, else a new one.
        let early = call
            .a
            .early_answer
            .take()
            .filter(|b| early_codec(b) == Some(codec));
        let (body, sdp_ip) = match early {
            Some(body) => (body.to_vec(), a_sdp_ip(call, public_ip, cx)),
            None => answer_sdp(call, public_ip, codec, answer.audio.direction, cx),
        };
        let a_contact = cx.contact_at(call.a.route, sdp_ip);
        let mut ok = ok_with_sdp(&call.a.invite, &call.a.tag, &a_contact, body);
        // RFC 4028: both legs settle their session timers.
        super::session_timer::answered(call, &invite, &resp, &mut ok, cx.now);
        form_caller_dialog(&mut self.dialogs, id, call, &ok);
        self.dialogs.insert(dialog.id.clone(), id, Side::B);
        call.phase = Phase::AwaitingAck(AwaitingAck {
            up: Up {
                b: BLeg {
                    dialog,
                    route,
                    origin: Origin::of_sent(&invite.body)
                        .unwrap_or_else(|| Origin::new(cx.host.random())),
                    ack,
                    device_id,
                },
                forks: ringing.forks,
                hold: Hold::default(),
                transfer: TransferState::Idle,
                notifies: false,
            },
            ok: ok.clone(),
            every: TimerConfig::UDP.t1,
        });
        tracing::info!(call = %id, "call answered");
        // RFC 3262 §3: not before the PRACK of a provisional with SDP.
        let held = call.a.reliable.as_mut().is_some_and(|r| r.hold_final());
        if !held {
            let (tx, a_route) = (call.a.tx.clone(), call.a.route);
            send_ok(id, &tx, a_route, ok, cx);
        }
        self.arm_sessions(id, cx);
        send_cancels(cancels, cx);
    }

    /// CANCEL from the caller (its server transaction already exists).
    pub(super) fn on_cancel(
        &mut self,
        req: &Request,
        cancel_tx: &ServerKey,
        invite_exists: bool,
        cx: &mut Cx<'_>,
    ) -> Response {
        let tag = cx.tag();
        let invite_tx = invite_key_of_cancel(cancel_tx);
        let Some(&id) = self.by_invite.get(&invite_tx) else {
            // §9.2: the INVITE's transaction still exists but was answered
            // (a 407, a refusal, an ended call): the CANCEL matched it, gets
            // 200 and changes nothing.
            let status = if invite_exists { 200 } else { 481 };
            return build::reply(req, status, &tag);
        };
        let Some(call) = self.calls.get(&id) else {
            return build::reply(req, 481, &tag);
        };
        let ok_held = call.a.reliable.as_ref().is_some_and(|r| r.holds_ok());
        if call.answered() && !ok_held {
            return build::reply(req, 200, &tag); // too late: the call was answered
        }
        if ok_held {
            // Answered, but our 2xx still waited for a PRACK: the caller
            // never heard it, so the CANCEL wins and the callee gets a BYE.
            self.bye_side(id, Side::B, cx);
        }
        let Some(call) = self.calls.get(&id) else {
            return build::reply(req, 481, &tag);
        };
        let r = build::reply(&call.a.invite, 487, &call.a.tag);
        cx.respond(&call.a.tx, r);
        let disposition = if call.kind == Kind::Inbound {
            Disposition::Missed
        } else {
            Disposition::Canceled
        };
        self.cancel_forks(id, cx);
        self.end_call(
            id,
            Ending::new(disposition, "caller hung up before an answer"),
            cx,
        );
        build::reply(req, 200, &tag)
    }

    /// Stops a call's forks.
    pub(super) fn cancel_forks(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(forks) = self.calls.get_mut(&id).and_then(|c| c.forks_mut()) else {
            return;
        };
        let cancels = forking::stop(forks.iter_mut());
        send_cancels(cancels, cx);
    }
}

/// Sends our 2xx to the caller and starts waiting for its ACK: over UDP
/// the 2xx is resent from T1 on; over TCP it is not, but the wait for the
/// ACK ends at 64·T1 all the same.
/// Our 2xx to an INVITE, carrying SDP: our Contact, what we allow and
/// support, and the `body`.
pub(super) fn ok_with_sdp(invite: &Request, tag: &str, contact: &str, body: Vec<u8>) -> Response {
    let mut ok = build::reply(invite, 200, tag);
    ok.headers.push(HeaderName::Contact, format!("<{contact}>"));
    ok.headers.push(HeaderName::Allow, build::ALLOW);
    ok.headers.push(HeaderName::Supported, build::supported());
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = Bytes::from(body);
    ok
}

/// The caller's confirmed dialog, formed from our 2xx to its INVITE and
/// registered; an early dialog's CSeq (moved on by a PRACK) carries over.
pub(super) fn form_caller_dialog(
    dialogs: &mut super::dialogs::Registry,
    id: CallId,
    call: &mut Call,
    ok: &Response,
) {
    match Dialog::uas(&call.a.invite, ok) {
        Ok(mut d) => {
            // A PRACK in the early dialog already moved A's CSeq on.
            let early_seq = call.a.dialog.as_ref().and_then(|e| e.remote_seq);
            d.remote_seq = d.remote_seq.max(early_seq);
            dialogs.insert(d.id.clone(), id, Side::A);
            call.a.dialog = Some(d);
        }
        Err(e) => tracing::info!(call = %id, error = %e, "caller's dialog could not be formed"),
    }
}

pub(super) fn send_ok(id: CallId, tx: &ServerKey, a_route: Route, ok: Response, cx: &mut Cx<'_>) {
    cx.respond(tx, ok);
    let first = if a_route.protocol.reliable() {
        TimerConfig::UDP.timeout()
    } else {
        TimerConfig::UDP.t1
    };
    cx.arm(id, CallTimer::Retransmit, first);
}

/// The address our SDP names towards the caller: calls from Twilio get
/// the public one.
pub(super) fn a_sdp_ip(call: &Call, public_ip: Option<IpAddr>, cx: &mut Cx<'_>) -> IpAddr {
    let a_ip = cx.host.local_ip_for(call.a.route.dest.ip());
    match public_ip {
        Some(public) if call.kind == Kind::Inbound => public,
        _ => a_ip,
    }
}

/// Our description towards the caller, relaying `codec` in `direction`:
/// the answer to its offer, or (a delayed offer) our offer. With the
/// address it names.
pub(super) fn answer_sdp(
    call: &mut Call,
    public_ip: Option<IpAddr>,
    codec: Codec,
    direction: Direction,
    cx: &mut Cx<'_>,
) -> (Vec<u8>, IpAddr) {
    let sdp_ip = a_sdp_ip(call, public_ip, cx);
    let (streams, audio_index, ptime) = match &call.a.offer {
        Some(o) => (o.streams.clone(), o.audio_index, o.audio.ptime),
        None => (Vec::new(), 0, None),
    };
    let body = sdp::write(
        &mut call.a.origin,
        &sdp::Offer {
            addr: sdp_ip,
            port: call.ports[0],
            codecs: vec![codec],
            telephone_event: call.dtmf[0],
            direction,
            ptime,
        },
        &streams,
        audio_index,
    );
    (body, sdp_ip)
}

/// The codec an SDP we wrote names.
fn early_codec(body: &[u8]) -> Option<Codec> {
    Description::parse(body)
        .ok()
        .and_then(|d| d.audio.codecs.first().copied())
}

/// Sends CANCELs (their answers only end their transactions).
pub(super) fn send_cancels(cancels: Vec<(Request, Route)>, cx: &mut Cx<'_>) {
    for (cancel, route) in cancels {
        cx.request(cancel, route, Owner::Nobody);
    }
}

/// A 2xx nobody wants (a losing fork, a call already over): ACK it and
/// hang it up, or the phone keeps ringing into a dead call.
pub(super) fn hang_up_stray(resp: &Response, cx: &mut Cx<'_>) {
    let Some(cseq) = resp.headers.get(&HeaderName::CSeq).and_then(CSeq::parse) else {
        return;
    };
    let Some(contact) = resp
        .headers
        .get(&HeaderName::Contact)
        .and_then(NameAddr::parse)
    else {
        return;
    };
    // Rebuild just enough of our INVITE to form the dialog.
    let mut h = Headers::default();
    for name in [HeaderName::From, HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = resp.headers.get(&name) {
            h.push(name, v.to_string());
        }
    }
    h.push(HeaderName::Contact, format!("<{}>", contact.uri));
    let invite = Request {
        method: Method::Invite,
        uri: contact.uri.to_string(),
        headers: h,
        body: Bytes::new(),
    };
    let Ok(mut d) = Dialog::uac(&invite, resp) else {
        return;
    };
    let dest = contact
        .uri
        .host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, contact.uri.port.unwrap_or(5060)));
    let Some(dest) = dest else { return };
    let route = Route {
        protocol: Protocol::Udp,
        dest,
    };
    let via = cx.via(route);
    let c = cx.contact(route);
    let ack = d.request(Method::Ack, &via, &c, Some(cseq.seq));
    cx.send(route, Message::Request(ack));
    let via = cx.via(route);
    let bye = d.request(Method::Bye, &via, &c, None);
    cx.request(bye, route, Owner::Nobody);
}
