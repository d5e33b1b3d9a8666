//! Requests inside a call's dialogs: the caller's ACK, BYE, re-INVITE
//! (hold, resume, a moved peer, a session refresh), UPDATE refreshes,
//! REFER, and the rest answered 200 or 405. Also hanging up and holding
//! from the API.
//!
//! Each leg keeps a [`LegState`]: its session timer, our re-INVITE in
//! flight (the peer's then gets 491, RFC 3261 §14.2), our 2xx to the
//! peer's re-INVITE (resent until its ACK, §13.3.1.4), and whether the
//! party left during a transfer (its BYE ends its leg, not the call).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Description, Direction, SdpError};
use crate::sip::message::{build, CSeq, HeaderName, Method, Request, Response};
use crate::sip::transaction::{ServerKey, TimerConfig};
use crate::store::cdrs::Disposition;

use super::call::Phase;
use super::cdr::Ending;
use super::session_timer::{self, Session};
use super::transfer::{ReferPlan, TransferState};
use super::{CallId, CallTimer, Calls, Cx, Owner, Route};

/// One leg's in-dialog state.
#[derive(Debug, Default)]
pub(crate) struct LegState {
    /// Its session timer (RFC 4028), if one was agreed.
    pub(super) session: Option<Session>,
    /// Our re-INVITE on this leg, until its final answer.
    pub(super) ours: Option<Request>,
    /// The ACK of our last re-INVITE's 2xx, sent again if the 2xx is.
    pub(super) last_ack: Option<Request>,
    /// Our 2xx to the peer's re-INVITE, until its ACK.
    pub(super) answering: Option<Answering>,
    /// The SDP Homeline last sent on this leg (a refresh offers it again).
    pub(super) sdp: Bytes,
    /// The party hung up during a transfer: nothing more is sent to it.
    pub(super) left: bool,
}

/// Our 2xx to a re-INVITE, resent over UDP until the ACK (§13.3.1.4).
#[derive(Debug)]
pub(super) struct Answering {
    pub(super) tx: ServerKey,
    pub(super) ok: Response,
    pub(super) route: Route,
    /// The re-INVITE's CSeq (its ACK carries the same).
    pub(super) cseq: u32,
    pub(super) since: Timestamp,
    /// The next retransmission interval (T1 doubling to T2).
    pub(super) every: Duration,
}

fn cseq_of(h: &crate::sip::message::Headers) -> Option<u32> {
    h.get(&HeaderName::CSeq)
        .and_then(CSeq::parse)
        .map(|c| c.seq)
}

impl Calls {
    /// The ACK for our 2xx (no transaction of its own): the call is up.
    pub(super) fn on_ack(&mut self, req: &Request, cx: &mut Cx<'_>) {
        let Some((id, side)) = self.dialogs.find(req) else {
            return;
        };
        if self.is_feature(id) {
            return self.on_feature_ack(id, req, cx);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // The ACK of our 2xx to a re-INVITE ends its retransmission.
        let leg = &mut call.legs[side.index()];
        if leg
            .answering
            .as_ref()
            .is_some_and(|a| Some(a.cseq) == cseq_of(&req.headers))
        {
            leg.answering = None;
            tracing::debug!(call = %id, ?side, "re-INVITE answer ACKed");
            return;
        }
        if side != Side::A {
            // Call pickup: the picking-up phone's ACK.
            return self.on_picked_ack(id, req, cx);
        }
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
            return crate::sip::dialog::no_such_dialog(req, &tag);
        };
        if self.is_feature(id) {
            return self.on_feature_request(id, req, &tag, cx);
        }
        let Some(dialog) = self.calls.get_mut(&id).and_then(|c| c.dialog_mut(side)) else {
            return crate::sip::dialog::no_such_dialog(req, &tag);
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
                if self.referrer_leaves(id, side) {
                    return build::reply(req, 200, &tag);
                }
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
            Method::Update if req.body.is_empty() => self.on_update(req, id, side, &tag, cx),
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
        // §14.2: our own re-INVITE is out on this leg: glare.
        if self.reinvite_pending(id, side) {
            return build::reply(req, 491, tag);
        }
        // RFC 4028 §9: a refresh asking for less than our minimum.
        if let Some(r) = session_timer::refuse_too_small(req, tag) {
            return r;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return crate::sip::dialog::no_such_dialog(req, tag);
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
        // The re-INVITE refreshes the leg's session (RFC 4028 §9).
        let leg = &mut call.legs[side.index()];
        leg.sdp = r.body.clone();
        let session = session_timer::answer_refresh(req, &mut r, leg.session, cx.now);
        self.set_session(id, side, session, cx);
        r
    }

    /// An UPDATE without a body: a session refresh (RFC 4028 §9) if it
    /// asks for one or the leg has one, else just 200.
    fn on_update(
        &mut self,
        req: &Request,
        id: CallId,
        side: Side,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        if let Some(r) = session_timer::refuse_too_small(req, tag) {
            return r;
        }
        let running = self
            .calls
            .get(&id)
            .and_then(|c| c.legs[side.index()].session);
        let mut r = build::reply(req, 200, tag);
        let session = session_timer::answer_refresh(req, &mut r, running, cx.now);
        if session.is_some() || running.is_some() {
            self.set_session(id, side, session, cx);
        }
        r
    }

    /// After answering an in-dialog request: a 2xx to a re-INVITE is
    /// resent until its ACK (over UDP from T1 on; over TCP only the wait),
    /// and the call ends if none comes by 64·T1.
    pub(super) fn answered_in_dialog(
        &mut self,
        req: &Request,
        tx: &ServerKey,
        r: &Response,
        cx: &mut Cx<'_>,
    ) {
        if req.method != Method::Invite || !(200..300).contains(&r.status) {
            return;
        }
        let Some((id, side)) = self.dialogs.find(req) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(route) = call.route(side) else {
            return;
        };
        let Some(cseq) = cseq_of(&req.headers) else {
            return;
        };
        call.legs[side.index()].answering = Some(Answering {
            tx: tx.clone(),
            ok: r.clone(),
            route,
            cseq,
            since: cx.now,
            every: TimerConfig::UDP.t1,
        });
        let first = if route.protocol.reliable() {
            TimerConfig::UDP.timeout()
        } else {
            TimerConfig::UDP.t1
        };
        cx.arm(id, CallTimer::ReinviteRetransmit(side), first);
    }

    /// A BYE from the party that asked for a transfer, while its target is
    /// sought or rings (the usual blind transfer: REFER, 202, hang up): its
    /// leg is over, the call waits for the target.
    fn referrer_leaves(&mut self, id: CallId, side: Side) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let referrer = match call.up().map(|u| &u.transfer) {
            Some(TransferState::Accepted(
                ReferPlan::Blind { referrer, .. } | ReferPlan::Attended { referrer, .. },
            )) => *referrer,
            Some(TransferState::Ringing(t)) => t.referrer,
            _ => return false,
        };
        if referrer != side {
            return false;
        }
        call.legs[side.index()].left = true;
        if let Some(up) = call.up_mut() {
            up.notifies = false;
        }
        if let Some(d) = call.dialog_mut(side).map(|d| d.id.clone()) {
            self.dialogs.remove(&d);
        }
        tracing::info!(call = %id, ?side, "the referrer hung up; the transfer goes on");
        true
    }

    /// A transfer failed: if its referrer already hung up, nobody is left
    /// for the transferee, who is hung up too.
    pub(super) fn after_failed_transfer(&mut self, id: CallId, referrer: Side, cx: &mut Cx<'_>) {
        let left = self
            .calls
            .get(&id)
            .is_some_and(|c| c.legs[referrer.index()].left);
        if left {
            self.hang_up_both(
                id,
                Ending::new(
                    Disposition::Answered,
                    "the transfer failed after the referrer hung up",
                ),
                cx,
            );
        }
    }

    /// A transfer put a new party on `side` (its 2xx `ok` to our `invite`):
    /// the leg starts afresh with the session that 2xx settles.
    pub(super) fn leg_replaced(
        &mut self,
        id: CallId,
        side: Side,
        invite: &Request,
        ok: &Response,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs[side.index()] = LegState {
            session: session_timer::settled_by(ok, cx.now),
            sdp: invite.body.clone(),
            ..LegState::default()
        };
        self.arm_session(id, side, cx);
    }

    /// An attended transfer moved a leg, with its state, from another call
    /// onto `side` of this one.
    pub(super) fn leg_moved(&mut self, id: CallId, side: Side, leg: LegState, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs[side.index()] = LegState {
            answering: None,
            ours: None,
            ..leg
        };
        self.arm_session(id, side, cx);
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
        let Some(route) = self
            .calls
            .get(&id)
            .filter(|c| !c.legs[side.index()].left)
            .and_then(|c| c.route(side))
        else {
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
