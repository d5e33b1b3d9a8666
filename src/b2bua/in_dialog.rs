//! Requests inside a call's dialogs: the caller's ACK, BYE, re-INVITE
//! (hold, resume, a moved peer), REFER, and the rest answered 200 or 405.
//! Also hanging up and holding from the API.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Description, Direction, SdpError};
use crate::sip::message::{build, HeaderName, Method, Request, Response};
use crate::store::cdrs::Disposition;

use super::call::Phase;
use super::cdr::Ending;
use super::{CallId, Calls, Cx, Owner};

impl Calls {
    /// The ACK for our 2xx (no transaction of its own): the call is up.
    pub(super) fn on_ack(&mut self, req: &Request, cx: &mut Cx<'_>) {
        let id = match self.dialogs.find(req) {
            Some((id, Side::A)) => id,
            // Call pickup: the picking-up phone's ACK.
            Some((id, Side::B)) => return self.on_picked_ack(id),
            None => return,
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Phase::AwaitingAck(_) = call.phase {
            let Phase::AwaitingAck(waiting) = call.take_phase() else {
                return;
            };
            call.phase = Phase::Up(waiting.up);
            tracing::debug!(call = %id, "caller's ACK: the call is up");
            // A delayed offer: the ACK carries the caller's answer.
            self.on_ack_answer(id, req, cx);
        }
    }

    /// A request inside a call's dialog (BYE, re-INVITE, INFO…); the
    /// answer goes back through the request's own transaction.
    pub(super) fn on_in_dialog(&mut self, req: &Request, cx: &mut Cx<'_>) -> Response {
        let tag = cx.tag();
        let Some((id, side)) = self.dialogs.find(req) else {
            return build::reply(req, 481, &tag);
        };
        let Some(dialog) = self.calls.get_mut(&id).and_then(|c| c.dialog_mut(side)) else {
            return build::reply(req, 481, &tag);
        };
        if let Err(e) = dialog.on_request(req) {
            tracing::debug!(call = %id, error = %e, "in-dialog request refused");
            return build::reply(req, 500, &tag);
        }
        let answered = self.calls.get(&id).is_some_and(|c| c.answered());
        match req.method {
            // Only 100rel forms an early dialog with the caller.
            Method::Bye if side == Side::A && !answered => self.on_early_bye(req, id, &tag, cx),
            Method::Bye => {
                let who = match side {
                    Side::A => "caller hung up",
                    Side::B => "callee hung up",
                };
                self.bye_side(id, side.other(), cx);
                self.end_call(id, Ending::new(Disposition::Answered, who), cx);
                build::reply(req, 200, &tag)
            }
            Method::Invite => self.on_reinvite(req, id, side, &tag, cx),
            Method::Refer => self.on_refer(req, id, side, &tag, cx),
            Method::Prack if side == Side::A => self.on_prack(req, id, &tag, cx),
            Method::Info => self.on_info(req, id, side, &tag, cx),
            Method::Notify | Method::Options | Method::Update
                if req.body.is_empty() || req.method != Method::Update =>
            {
                build::reply(req, 200, &tag)
            }
            _ => {
                let mut r = build::reply(req, 405, &tag);
                r.headers.push(HeaderName::Allow, build::ALLOW);
                r
            }
        }
    }

    /// A re-INVITE: hold, resume or a moved peer. Answered here; the other
    /// leg hears music while it is held and is never renegotiated.
    fn on_reinvite(
        &mut self,
        req: &Request,
        id: CallId,
        side: Side,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        let public = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            return build::reply(req, 481, tag);
        };
        let Some(route) = call.route(side) else {
            return build::reply(req, 491, tag);
        };
        let local = cx.host.local_ip_for(route.dest.ip());
        // Twilio's leg sees the public address, as in the first answer.
        let ip = public
            .filter(|_| call.kind.twilio_on(side))
            .unwrap_or(local);
        let described = if req.body.is_empty() {
            None // an offerless re-INVITE: we offer what we have, sendrecv
        } else {
            match Description::parse(&req.body) {
                Ok(d) => Some(d),
                Err(SdpError::Malformed(why)) => {
                    let mut r = build::reply(req, 400, tag);
                    r.reason = format!("Bad SDP ({why})");
                    return r;
                }
                Err(_) => return build::reply(req, 488, tag),
            }
        };
        let direction = described
            .as_ref()
            .map(|d| d.audio.direction)
            .unwrap_or(Direction::SendRecv);
        if let Some(d) = &described {
            if !d.audio.codecs.contains(&call.codec) {
                return build::reply(req, 488, tag);
            }
            cx.media(
                id,
                Control::Peer {
                    side,
                    rtp: SocketAddr::new(d.audio.addr, d.audio.port),
                    direction: d.audio.direction,
                    codec: call.codec,
                },
            );
        }
        let (codec, telephone_event, port) = (
            call.codec,
            call.dtmf[side.index()],
            call.ports[side.index()],
        );
        let Some(up) = call.up_mut() else {
            return build::reply(req, 491, tag);
        };
        let holds = direction.is_hold();
        if up.hold.set_by(side, holds) {
            tracing::info!(call = %id, ?side, hold = holds, "hold changed");
        }
        let music = up.hold.music_to(side.other());
        cx.media(
            id,
            Control::Music {
                side: side.other(),
                on: music,
            },
        );
        let (streams, audio_index) = described
            .as_ref()
            .map(|d| (d.streams.clone(), d.audio_index))
            .unwrap_or_default();
        let origin = match side {
            Side::A => &mut call.a.origin,
            Side::B => match call.up_mut() {
                Some(up) => &mut up.b.origin,
                None => return build::reply(req, 491, tag),
            },
        };
        let body = sdp::write(
            origin,
            &sdp::Offer {
                addr: ip,
                port,
                codecs: vec![codec],
                telephone_event,
                direction: direction.answer(),
                ptime: None,
            },
            &streams,
            audio_index,
        );
        let mut r = build::reply(req, 200, tag);
        let contact = cx.contact_at(route, ip);
        r.headers.push(HeaderName::Contact, format!("<{contact}>"));
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = Bytes::from(body);
        r
    }

    /// Sends BYE on one side of an answered call.
    pub(super) fn bye_side(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        self.request_in_dialog(id, side, Method::Bye, |_| {}, cx);
    }

    /// Sends a request in the dialog of one leg (nobody waits for its
    /// answer); `fill` adds its headers and body.
    pub(super) fn request_in_dialog(
        &mut self,
        id: CallId,
        side: Side,
        method: Method,
        fill: impl FnOnce(&mut Request),
        cx: &mut Cx<'_>,
    ) {
        let Some(route) = self.calls.get(&id).and_then(|c| c.route(side)) else {
            return;
        };
        let via = cx.via(route);
        let contact = cx.contact(route);
        let Some(dialog) = self.calls.get_mut(&id).and_then(|c| c.dialog_mut(side)) else {
            return;
        };
        let mut req = dialog.request(method, &via, &contact, None);
        fill(&mut req);
        cx.request(req, route, Owner::Nobody);
    }

    /// Ends an answered call from Homeline's side: BYE on both legs, then
    /// the record.
    pub(super) fn hang_up_both(&mut self, id: CallId, ending: Ending, cx: &mut Cx<'_>) {
        self.bye_side(id, Side::A, cx);
        self.bye_side(id, Side::B, cx);
        self.end_call(id, ending, cx);
    }

    /// Hangs a call up from the API.
    pub(super) fn api_hang_up(&mut self, id: CallId, cx: &mut Cx<'_>) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        if call.answered() {
            self.hang_up_both(
                id,
                Ending::new(Disposition::Answered, "hung up from the web UI"),
                cx,
            );
        } else {
            let r = build::reply(&call.a.invite, 487, &call.a.tag);
            cx.respond(&call.a.tx, r);
            self.cancel_forks(id, cx);
            self.end_call(
                id,
                Ending::new(Disposition::Canceled, "hung up from the web UI"),
                cx,
            );
        }
        true
    }

    /// Puts both parties on hold (each hears music) or takes them off.
    pub(super) fn api_hold(&mut self, id: CallId, on: bool, cx: &mut Cx<'_>) -> bool {
        let Some(up) = self.calls.get_mut(&id).and_then(|c| c.up_mut()) else {
            return false;
        };
        up.hold.set_api(on);
        let music: Vec<(Side, bool)> = [Side::A, Side::B]
            .into_iter()
            .map(|s| (s, up.hold.music_to(s)))
            .collect();
        for (side, on) in music {
            cx.media(id, Control::Music { side, on });
        }
        true
    }
}
