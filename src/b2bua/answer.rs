//! The forks' answers: ringing goes back to the caller once, the first 2xx
//! wins the call (the others are stopped), a 2xx nobody wants is ACKed and
//! hung up, and when every fork failed the caller gets the best failure.
//! Also the caller's CANCEL, which races the answer.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Description, Origin};
use crate::sip::dialog::Dialog;
use crate::sip::message::{
    build, CSeq, HeaderName, Headers, Message, Method, NameAddr, Request, Response,
};
use crate::sip::transaction::{invite_key_of_cancel, ServerKey, TimerConfig};
use crate::sip::transport::Protocol;
use crate::store::cdrs::Disposition;

use super::call::{AwaitingAck, BLeg, Kind, Phase, Up};
use super::cdr::Ending;
use super::forking::{self, ForkState};
use super::hold::Hold;
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
        let a_route = call.a.route;
        let answered = call.answered();
        let Some(fork) = call.forks_mut().and_then(|f| f.get_mut(n)) else {
            return;
        };
        match resp.status {
            100 => {}
            101..=199 => {
                if let Some((cancel, route)) = fork.provisional() {
                    return cx.request(cancel, route, Owner::Nobody);
                }
                if let Phase::Ringing(r) = &mut call.phase {
                    if !r.sent_ringing {
                        r.sent_ringing = true;
                        let contact = cx.contact(a_route);
                        let mut ringing = build::reply(&call.a.invite, 180, &call.a.tag);
                        ringing
                            .headers
                            .push(HeaderName::Contact, format!("<{contact}>"));
                        cx.respond(&call.a.tx, ringing);
                    }
                }
            }
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
            401 | 407 if !fork.auth_tried && fork.device_id.is_none() => {
                // Twilio's challenge: answer it once with the trunk credentials.
                fork.auth_tried = true;
                let Some(trunk) = self.directory.trunk.clone() else {
                    return;
                };
                let (header_in, header_out) = if resp.status == 401 {
                    (HeaderName::WwwAuthenticate, HeaderName::Authorization)
                } else {
                    (
                        HeaderName::ProxyAuthenticate,
                        HeaderName::ProxyAuthorization,
                    )
                };
                let cnonce = cx.tag();
                let mut invite = fork.invite.clone();
                let answer = resp.headers.lines(&header_in).find_map(|c| {
                    crate::sip::auth::answer_challenge(
                        c,
                        "INVITE",
                        &invite.uri,
                        &trunk.credential.username,
                        &trunk.password,
                        &cnonce,
                    )
                });
                let Some(answer) = answer else {
                    fork.state = ForkState::Failed(resp.status);
                    return self.fork_failed(id, cx);
                };
                let route = fork.route;
                invite.headers.set(HeaderName::Via, cx.via(route));
                invite.headers.set(HeaderName::CSeq, "2 INVITE");
                invite.headers.push(header_out, answer);
                fork.invite = invite.clone();
                cx.request(invite, route, Owner::Fork(id, n));
            }
            status => {
                if fork.state != ForkState::Cancelled {
                    fork.state = ForkState::Failed(status);
                }
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
        let mut dialog = match Dialog::uac(&invite, &resp) {
            Ok(d) => d,
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
        cx.media(
            id,
            Control::Peer {
                side: Side::A,
                rtp: SocketAddr::new(call.a.offer.audio.addr, call.a.offer.audio.port),
                direction: call.a.offer.audio.direction,
                codec,
            },
        );
        super::dtmf::tell_relay(call, cx);
        call.answered_at = Some(cx.now);
        if device_id.is_some() && call.kind != Kind::Outbound {
            call.device_id = device_id;
        }
        // Stop the other forks.
        let cancels = forking::stop(ringing.forks.iter_mut());
        // Answer the caller; calls from Twilio with the public address.
        let a_ip = cx.host.local_ip_for(call.a.route.dest.ip());
        let sdp_ip = match public_ip {
            Some(public) if call.kind == Kind::Inbound => public,
            _ => a_ip,
        };
        let body = sdp::write(
            &mut call.a.origin,
            &sdp::Offer {
                addr: sdp_ip,
                port: call.ports[0],
                codecs: vec![codec],
                telephone_event: call.dtmf[0],
                direction: answer.audio.direction,
                ptime: call.a.offer.audio.ptime,
            },
            &call.a.offer.streams,
            call.a.offer.audio_index,
        );
        let mut ok = build::reply(&call.a.invite, 200, &call.a.tag);
        let a_contact = cx.contact_at(call.a.route, sdp_ip);
        ok.headers
            .push(HeaderName::Contact, format!("<{a_contact}>"));
        ok.headers.push(HeaderName::Allow, build::ALLOW);
        ok.headers.push(HeaderName::ContentType, "application/sdp");
        ok.body = Bytes::from(body);
        match Dialog::uas(&call.a.invite, &ok) {
            Ok(d) => {
                self.dialogs.insert(d.id.clone(), id, Side::A);
                call.a.dialog = Some(d);
            }
            Err(e) => tracing::info!(call = %id, error = %e, "caller's dialog could not be formed"),
        }
        self.dialogs.insert(dialog.id.clone(), id, Side::B);
        let reliable = call.a.route.protocol.reliable();
        call.phase = Phase::AwaitingAck(AwaitingAck {
            up: Up {
                b: BLeg {
                    dialog,
                    route,
                    origin: Origin::new(cx.host.random()),
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
        cx.respond(&call.a.tx, ok);
        // Over UDP the 2xx is resent from T1 on; over TCP it is not, but
        // the wait for the ACK ends at 64·T1 all the same.
        let first = if reliable {
            TimerConfig::UDP.timeout()
        } else {
            TimerConfig::UDP.t1
        };
        cx.arm(id, CallTimer::Retransmit, first);
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
        if call.answered() {
            return build::reply(req, 200, &tag); // too late: the call was answered
        }
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
