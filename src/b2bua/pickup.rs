//! Call pickup: a household phone dials the pickup code
//! ([`crate::dialplan::PICKUP_CODE`], `*8`) and answers a call ringing
//! elsewhere in the house. The ringing forks are cancelled and the caller's
//! leg goes on, joined to the picking-up phone on the call's relay: the
//! picker becomes the call's B leg (we are its UAS, so our 2xx to it is
//! resent until its ACK, as the caller's is), and the record names it as
//! the phone that answered.
//!
//! A picker's INVITE without SDP (a delayed offer) is answered as the
//! caller's is: our 2xx carries Homeline's offer of the call's codec and
//! the picker's ACK the answer (see [`super::delayed_offer`]).
//!
//! Which calls a phone may pick up (the one rule, kept simple and sound):
//! a call from Twilio on a household number only if that number is
//! assigned to the picking phone (its user may see that number's calls);
//! a phone-to-phone call from any household phone (internal calls show
//! only an extension, which every phone may call anyway). Never the
//! picker's own call, nor an outgoing call (nothing rings in the house).
//! With several candidates the one ringing longest is picked; with none
//! the phone gets 480 with a `Warning` saying so.

use std::net::SocketAddr;
use std::time::Duration;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Description, Direction, Origin};
use crate::sip::dialog::Dialog;
use crate::sip::message::{build, Request, Response};
use crate::sip::transaction::{ServerKey, TimerConfig};
use crate::store::cdrs::Disposition;

use super::call::{AwaitingAck, BLeg, Call, Kind, Phase, Up};
use super::cdr::Ending;
use super::directory::Directory;
use super::hold::Hold;
use super::transfer::TransferState;
use super::{forking, Action, CallId, CallTimer, Calls, Cx, DeviceId, Route};

/// The picking-up phone's 2xx, resent until its ACK (RFC 3261 §13.3.1.4).
pub(super) struct Unconfirmed {
    tx: ServerKey,
    ok: Response,
    route: Route,
    every: Duration,
    sent_at: crate::clock::Timestamp,
    /// The 2xx carried our offer (the picker's INVITE had none): its ACK
    /// carries the answer.
    offered: bool,
}

/// Whether `picker` may pick up `call` (see the module's rule).
fn may_pick(call: &Call, picker: DeviceId, directory: &Directory) -> bool {
    let Phase::Ringing(ringing) = &call.phase else {
        return false;
    };
    let rings_a_phone = ringing
        .forks
        .iter()
        .any(|f| f.live() && f.device_id.is_some_and(|d| d != picker));
    if !rings_a_phone || call.device_id == Some(picker) {
        return false;
    }
    match call.kind {
        Kind::Internal => true,
        Kind::Inbound => directory
            .numbers
            .values()
            .any(|n| Some(n.did_id) == call.did_id && n.device_ids.contains(&picker.0)),
        Kind::Outbound => false,
    }
}

impl Calls {
    /// The ringing call `picker` would pick up: the one ringing longest.
    fn pickable(&self, picker: DeviceId) -> Option<CallId> {
        self.calls
            .values()
            .filter(|c| may_pick(c, picker, &self.directory))
            .min_by_key(|c| (c.started_at, c.id))
            .map(|c| c.id)
    }

    /// The pickup code was dialled: `req` (with its parsed `offer`, `None`
    /// for a delayed offer) from `picker` answers the call ringing longest
    /// that it may pick up.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pick_up(
        &mut self,
        req: &Request,
        offer: Option<Description>,
        tx: ServerKey,
        route: Route,
        picker: DeviceId,
        tag: &str,
        cx: &mut Cx<'_>,
    ) {
        let Some(id) = self.pickable(picker) else {
            let why = "no call is ringing that this phone may pick up";
            return cx.respond(&tx, build::reply_with_warning(req, 480, tag, why));
        };
        let public_ip = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if offer
            .as_ref()
            .is_some_and(|o| !o.audio.codecs.contains(&call.codec))
        {
            let why = "the ringing call's codec is not offered";
            return cx.respond(&tx, build::reply_with_warning(req, 488, tag, why));
        }
        let Phase::Ringing(mut ringing) = call.take_phase() else {
            return;
        };
        let cancels = forking::stop(ringing.forks.iter_mut());
        let codec = call.codec;
        // The picker's telephone-events: from its offer, or its answer.
        call.dtmf[1] = offer.as_ref().and_then(|o| o.audio.telephone_event);
        // The picker's leg: our answer to its INVITE (or, for a delayed
        // offer, our offer of the call's codec), on the B-side port.
        let local = cx.host.local_ip_for(route.dest.ip());
        let mut origin = Origin::new(cx.host.random());
        let ours = match &offer {
            Some(o) => sdp::Offer {
                addr: local,
                port: call.ports[Side::B.index()],
                codecs: vec![codec],
                telephone_event: o.audio.telephone_event,
                direction: o.audio.direction.answer(),
                ptime: o.audio.ptime,
            },
            None => sdp::Offer {
                addr: local,
                port: call.ports[Side::B.index()],
                codecs: vec![codec],
                telephone_event: super::delayed_offer::our_codecs().1,
                direction: Direction::SendRecv,
                ptime: None,
            },
        };
        let (streams, audio_index) = offer
            .as_ref()
            .map_or((&[][..], 0), |o| (&o.streams[..], o.audio_index));
        let body = sdp::write(&mut origin, &ours, streams, audio_index);
        let contact = cx.contact_at(route, local);
        let picked_ok = super::answer::ok_with_sdp(req, tag, &contact, body);
        let dialog = match Dialog::uas(req, &picked_ok) {
            Ok(d) => d,
            Err(e) => {
                call.phase = Phase::Ringing(ringing);
                let why = format!("no dialog can be formed: {e}");
                return cx.respond(&tx, build::reply_with_warning(req, 400, tag, &why));
            }
        };
        if let Some(offer) = &offer {
            cx.media(
                id,
                Control::Peer {
                    side: Side::B,
                    rtp: SocketAddr::new(offer.audio.addr, offer.audio.port),
                    direction: offer.audio.direction,
                    codec,
                },
            );
        }
        if let Some(a_offer) = &call.a.offer {
            cx.media(
                id,
                Control::Peer {
                    side: Side::A,
                    rtp: SocketAddr::new(a_offer.audio.addr, a_offer.audio.port),
                    direction: a_offer.audio.direction,
                    codec,
                },
            );
        }
        super::dtmf::tell_relay(call, cx);
        // The caller's answer (or, for a delayed offer, our offer), as
        // when a fork answers.
        call.a.early_answer = None;
        let picker_direction = offer
            .as_ref()
            .map_or(Direction::SendRecv, |o| o.audio.direction);
        let (a_body, sdp_ip) =
            super::answer::answer_sdp(call, public_ip, codec, picker_direction, cx);
        let a_contact = cx.contact_at(call.a.route, sdp_ip);
        let ok = super::answer::ok_with_sdp(&call.a.invite, &call.a.tag, &a_contact, a_body);
        super::answer::form_caller_dialog(&mut self.dialogs, id, call, &ok);
        self.dialogs.insert(dialog.id.clone(), id, Side::B);
        call.answered_at = Some(cx.now);
        call.device_id = Some(picker);
        call.phase = Phase::AwaitingAck(AwaitingAck {
            up: Up {
                b: BLeg {
                    dialog,
                    route,
                    origin,
                    ack: req.clone(),
                    device_id: Some(picker),
                },
                forks: ringing.forks,
                hold: Hold::default(),
                transfer: TransferState::Idle,
                notifies: false,
            },
            ok: ok.clone(),
            every: TimerConfig::UDP.t1,
        });
        call.picked = Some(Unconfirmed {
            tx: tx.clone(),
            ok: picked_ok.clone(),
            route,
            every: TimerConfig::UDP.t1,
            sent_at: cx.now,
            offered: offer.is_none(),
        });
        tracing::info!(call = %id, picker = picker.0, "call picked up");
        let (a_tx, a_route) = (call.a.tx.clone(), call.a.route);
        // RFC 3262 §3: not before the PRACK of a provisional with SDP.
        let held = call.a.reliable.as_mut().is_some_and(|r| r.hold_final());
        let b_first = if route.protocol.reliable() {
            TimerConfig::UDP.timeout()
        } else {
            TimerConfig::UDP.t1
        };
        cx.respond(&tx, picked_ok);
        cx.arm(id, CallTimer::PickupRetransmit, b_first);
        if !held {
            super::answer::send_ok(id, &a_tx, a_route, ok, cx);
        }
        super::answer::send_cancels(cancels, cx);
    }

    /// The picking-up phone's ACK: its 2xx is no longer resent.
    /// After a delayed offer its answer points the relay at the picker.
    pub(super) fn on_picked_ack(&mut self, id: CallId, ack: &Request, cx: &mut Cx<'_>) {
        let Some(picked) = self.calls.get_mut(&id).and_then(|c| c.picked.take()) else {
            return; // a repeated ACK
        };
        if picked.offered {
            self.on_delayed_answer(id, Side::B, ack, cx);
        }
    }

    /// [`CallTimer::PickupRetransmit`]: our 2xx to the picker once more, or
    /// (at 64·T1 without its ACK, or at once over TCP) the call ends.
    pub(super) fn on_pickup_retransmit(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(p) = self.calls.get_mut(&id).and_then(|c| c.picked.as_mut()) else {
            return; // ACKed
        };
        let waited = cx.now.since(p.sent_at);
        let timeout = TimerConfig::UDP.timeout();
        if p.route.protocol.reliable() || waited >= timeout {
            tracing::info!(call = %id, "the picking-up phone never ACKed: hanging up");
            return self.hang_up_both(
                id,
                Ending::new(Disposition::Failed, "no ACK from the picking-up phone"),
                cx,
            );
        }
        p.every = (p.every * 2).min(TimerConfig::UDP.t2);
        let every = p.every.min(timeout - waited);
        cx.out.push(Action::Retransmit {
            tx: p.tx.clone(),
            response: p.ok.clone(),
            route: p.route,
        });
        cx.arm(id, CallTimer::PickupRetransmit, every);
    }
}
