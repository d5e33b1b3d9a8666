//! Transfers (RFC 3515 REFER, RFC 3891 Replaces). The referrer's place in
//! the call goes to the target; the other party stays on its relay leg and
//! hears music while the target rings, so it is never renegotiated.
//!
//! Blind: the target extension is rung (every registered contact); its
//! answer replaces the referrer's leg, its failure or silence (ring
//! timeout) leaves the call as it was. Attended: the referrer's two calls
//! are joined by pointing their relays at each other over loopback.

use std::net::SocketAddr;
use std::time::Duration;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{Description, Direction, Origin};
use crate::sip::dialog::{Dialog, DialogId};
use crate::sip::message::{build, HeaderName, Message, Method, NameAddr, Request, Response};
use crate::store::cdrs::Disposition;

use super::answer::{hang_up_stray, send_cancels};
use super::call::{BLeg, Call, Kind, Phase};
use super::cdr::{self, Ending};
use super::forking::{self, Fork, ForkState};
use super::invite::OfferMedia;
use super::prack;
use super::{Action, CallId, CallTimer, Calls, Cx, DeviceId, Owner, Route};

/// What a REFER asked for, carried out once its 202 is on the wire.
pub(super) enum ReferPlan {
    /// Blind: ring this extension and hand it the referrer's place.
    Blind { referrer: Side, extension: String },
    /// Attended (Replaces): join the other party of this call to the
    /// other party of `call`, where the referrer is on `side`.
    Attended {
        referrer: Side,
        call: CallId,
        side: Side,
    },
    /// External: ring this number through Twilio (see [`super::transfer_out`]).
    External(super::transfer_out::Resolving),
}

impl std::fmt::Debug for ReferPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReferPlan::Blind {
                referrer,
                extension,
            } => write!(f, "blind by {referrer:?} to {extension}"),
            ReferPlan::Attended {
                referrer,
                call,
                side,
            } => write!(f, "attended by {referrer:?} with call {call} ({side:?})"),
            ReferPlan::External(out) => {
                write!(f, "external by {:?} to {}", out.referrer, out.number)
            }
        }
    }
}

/// A blind transfer ringing its target.
pub(super) struct Transfer {
    pub(super) referrer: Side,
    pub(super) forks: Vec<Fork>,
}

/// The transfer sub-state of an answered call.
pub(super) enum TransferState {
    /// No transfer.
    Idle,
    /// A REFER was accepted; carried out when [`CallTimer::Refer`] fires.
    Accepted(ReferPlan),
    /// The target rings.
    Ringing(Transfer),
    // Transfer to an external number:
    /// Waiting for Twilio's address.
    Resolving(super::transfer_out::Resolving),
}

/// Why the API could not start a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefused {
    /// No call with that id.
    NoSuchCall,
    /// Not answered yet, or a transfer is already under way.
    NotNow,
    /// The target is not one of the household's phones.
    UnknownExtension,
}

/// The `Replaces` of a Refer-To URI, unescaped (`callid;to-tag=…;from-tag=…`).
fn replaces_of(target: &NameAddr) -> Option<String> {
    target.uri.headers.as_deref().and_then(|h| {
        h.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case("Replaces")
                .then(|| crate::sip::message::unescape(v))
        })
    })
}

/// The dialog a `Replaces` value names, seen from Homeline: its to-tag is
/// Homeline's tag in the referrer's dialog, its from-tag the referrer's.
fn replaced_dialog(replaces: &str) -> DialogId {
    let mut parts = replaces.split(';');
    let call_id = parts.next().unwrap_or("").trim().to_string();
    let mut to_tag = String::new();
    let mut from_tag = String::new();
    for p in parts {
        let p = p.trim();
        if let Some(t) = p.strip_prefix("to-tag=") {
            to_tag = t.to_string();
        } else if let Some(t) = p.strip_prefix("from-tag=") {
            from_tag = t.to_string();
        }
    }
    DialogId {
        call_id,
        local_tag: to_tag,
        remote_tag: from_tag,
    }
}

impl Calls {
    /// A REFER in a call's dialog: checked and answered 202 here, carried
    /// out by [`CallTimer::Refer`] once the 202 is on the wire (so the
    /// referrer never sees a NOTIFY before it).
    pub(super) fn on_refer(
        &mut self,
        req: &Request,
        id: CallId,
        side: Side,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        match self.calls.get(&id).and_then(Call::up) {
            Some(up) if matches!(up.transfer, TransferState::Idle) => {}
            _ => return build::reply(req, 491, tag),
        }
        let Some(target) = req
            .headers
            .get(&HeaderName::ReferTo)
            .and_then(NameAddr::parse)
        else {
            let mut r = build::reply(req, 400, tag);
            r.reason = "Missing or Bad Refer-To".into();
            return r;
        };
        let plan = if let Some(replaces) = replaces_of(&target) {
            match self.dialogs.get(&replaced_dialog(&replaces)) {
                Some((other, other_side)) if other != id => ReferPlan::Attended {
                    referrer: side,
                    call: other,
                    side: other_side,
                },
                _ => {
                    let mut r = build::reply(req, 481, tag);
                    r.reason = "Replaced Dialog Does Not Exist".into();
                    return r;
                }
            }
        } else {
            let extension = target.uri.user_unescaped().unwrap_or_default();
            if self.directory.phone_by_username(&extension).is_none() {
                match self.external_refer(req, id, side, &extension, tag, cx) {
                    Ok(plan) => plan,
                    Err(refusal) => return refusal,
                }
            } else {
                ReferPlan::Blind {
                    referrer: side,
                    extension,
                }
            }
        };
        tracing::info!(call = %id, ?side, ?plan, "transfer requested");
        if let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) {
            up.transfer = TransferState::Accepted(plan);
            up.notifies = true;
        }
        cx.arm(id, CallTimer::Refer, Duration::ZERO);
        build::reply(req, 202, tag)
    }

    pub(super) fn carry_out_refer(&mut self, id: CallId, plan: ReferPlan, cx: &mut Cx<'_>) {
        match plan {
            ReferPlan::Blind {
                referrer,
                extension,
            } => self.start_blind_transfer(id, referrer, &extension, cx),
            ReferPlan::Attended {
                referrer,
                call,
                side,
            } => self.join_calls(id, referrer, call, side, cx),
            ReferPlan::External(out) => self.start_external_transfer(id, out, cx),
        }
    }

    /// Tells the referrer how its transfer goes (NOTIFY with a sipfrag).
    pub(super) fn notify_referrer(
        &mut self,
        id: CallId,
        side: Side,
        status: u16,
        done: bool,
        cx: &mut Cx<'_>,
    ) {
        match self.calls.get_mut(&id).and_then(Call::up_mut) {
            Some(up) if up.notifies => up.notifies = !done,
            _ => return,
        }
        self.request_in_dialog(
            id,
            side,
            Method::Notify,
            |notify| {
                notify.headers.push(HeaderName::Event, "refer");
                notify.headers.push(
                    HeaderName::Other("Subscription-State".into()),
                    if done {
                        "terminated;reason=noresource"
                    } else {
                        "active;expires=60"
                    },
                );
                notify
                    .headers
                    .push(HeaderName::ContentType, "message/sipfrag;version=2.0");
                notify.body = build::sipfrag(status);
            },
            cx,
        );
    }

    /// Transfers a call from the API: the party on `side` (by default the
    /// household's phone) is replaced by `extension`, ringing while the
    /// other party hears music.
    pub(super) fn api_transfer(
        &mut self,
        id: CallId,
        extension: &str,
        side: Option<Side>,
        cx: &mut Cx<'_>,
    ) -> Result<(), TransferRefused> {
        let Some(call) = self.calls.get(&id) else {
            return Err(TransferRefused::NoSuchCall);
        };
        match call.up() {
            Some(up) if matches!(up.transfer, TransferState::Idle) => {}
            _ => return Err(TransferRefused::NotNow),
        }
        if self.directory.phone_by_username(extension).is_none() {
            return Err(TransferRefused::UnknownExtension);
        }
        let side = side.unwrap_or(match call.kind {
            Kind::Outbound => Side::A,
            Kind::Inbound | Kind::Internal => Side::B,
        });
        tracing::info!(call = %id, ?side, %extension, "transfer requested from the API");
        self.start_blind_transfer(id, side, extension, cx);
        Ok(())
    }

    fn start_blind_transfer(
        &mut self,
        id: CallId,
        referrer: Side,
        extension: &str,
        cx: &mut Cx<'_>,
    ) {
        self.notify_referrer(id, referrer, 100, false, cx);
        let Some(phone) = self.directory.phone_by_username(extension).cloned() else {
            return self.notify_referrer(id, referrer, 404, true, cx);
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let media = OfferMedia {
            port: call.ports[referrer.index()],
            codecs: vec![call.codec],
            telephone_event: call.telephone_event,
            ptime: None,
            towards_twilio: false,
        };
        let from = match referrer.other() {
            Side::A => call.from.clone(),
            Side::B => call.to.clone(),
        };
        // The transferee hears music while the target rings.
        cx.media(
            id,
            Control::Music {
                side: referrer.other(),
                on: true,
            },
        );
        let device = DeviceId(phone.device_id);
        let mut forks = Vec::new();
        for b in cx.host.contacts(device) {
            let route = Route {
                protocol: b.protocol,
                dest: b.source,
            };
            let to_uri = format!("sip:{}@{}", phone.username, cx.host_for(route.dest.ip()));
            let invite = self.b_invite(&media, &b.uri, &to_uri, &from, None, route, cx);
            let mut fork = Fork::new(invite, route, Some(device));
            fork.auth_tried = true;
            forks.push(fork);
        }
        if forks.is_empty() {
            return self.transfer_failed_with(id, referrer, 480, cx);
        }
        for (n, f) in forks.iter().enumerate() {
            cx.request(f.invite.clone(), f.route, Owner::TransferFork(id, n));
        }
        if let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) {
            up.transfer = TransferState::Ringing(Transfer { referrer, forks });
        }
        cx.arm(id, CallTimer::TransferRing, self.config.ring_timeout);
    }

    pub(super) fn on_transfer_response(
        &mut self,
        id: CallId,
        n: usize,
        resp: Response,
        cx: &mut Cx<'_>,
    ) {
        let fork = transfer_fork(&mut self.calls, id, n);
        let Some(fork) = fork else {
            if (200..300).contains(&resp.status) {
                hang_up_stray(&resp, cx);
            }
            return;
        };
        // Twilio's challenge to an external transfer's INVITE.
        if matches!(resp.status, 401 | 407)
            && !fork.auth_tried
            && fork.device_id.is_none()
            && self.answer_transfer_challenge(id, n, &resp, cx)
        {
            return;
        }
        let Some(fork) = transfer_fork(&mut self.calls, id, n) else {
            return;
        };
        match resp.status {
            100..=199 => {
                if let Some((cancel, route)) = fork.provisional() {
                    cx.request(cancel, route, Owner::Nobody);
                } else {
                    // A reliable provisional (RFC 3262) gets its PRACK.
                    prack::acknowledge(fork, &resp, cx);
                }
            }
            200..=299 if matches!(fork.state, ForkState::Calling | ForkState::Ringing) => {
                fork.state = ForkState::Answered;
                let (invite, route, device) = (fork.invite.clone(), fork.route, fork.device_id);
                let early_seq = prack::early_seq(fork);
                self.complete_blind_transfer(id, invite, route, device, resp, early_seq, cx);
            }
            200..=299 => hang_up_stray(&resp, cx),
            status => {
                fork.state = ForkState::Failed(status);
                let all_failed = self
                    .calls
                    .get(&id)
                    .and_then(Call::up)
                    .is_some_and(|up| match &up.transfer {
                        TransferState::Ringing(t) => t.forks.iter().all(|f| {
                            matches!(f.state, ForkState::Failed(_) | ForkState::Cancelled)
                        }),
                        _ => false,
                    });
                if all_failed {
                    self.transfer_failed(id, status, cx);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn complete_blind_transfer(
        &mut self,
        id: CallId,
        invite: Request,
        route: Route,
        device: Option<DeviceId>,
        resp: Response,
        early_seq: u32,
        cx: &mut Cx<'_>,
    ) {
        let Ok(mut dialog) = Dialog::uac(&invite, &resp) else {
            return hang_up_stray(&resp, cx);
        };
        dialog.local_seq = dialog.local_seq.max(early_seq); // past its PRACKs
        let via = cx.via(route);
        let contact = cx.contact(route);
        let ack = dialog.request(Method::Ack, &via, &contact, Some(1));
        cx.send(route, Message::Request(ack.clone()));
        let answer = Description::parse(&resp.body)
            .ok()
            .filter(|a| a.audio.port != 0);
        let Some(referrer) = self.referrer(id) else {
            return;
        };
        let Some(answer) = answer else {
            let via = cx.via(route);
            let bye = dialog.request(Method::Bye, &via, &contact, None);
            cx.request(bye, route, Owner::Nobody);
            return self.transfer_failed(id, 488, cx);
        };
        // Tell the referrer, then let it go.
        self.notify_referrer(id, referrer, 200, true, cx);
        self.bye_side(id, referrer, cx);
        let origin = Origin::new(cx.host.random());
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codec = call.codec;
        let Some(up) = call.up_mut() else {
            return;
        };
        let cancels = match std::mem::replace(&mut up.transfer, TransferState::Idle) {
            TransferState::Ringing(mut t) => forking::stop(t.forks.iter_mut()),
            _ => Vec::new(),
        };
        up.hold.clear_parties();
        let music = up.hold.music_to(referrer.other());
        cx.media(
            id,
            Control::Peer {
                side: referrer,
                rtp: SocketAddr::new(answer.audio.addr, answer.audio.port),
                direction: answer.audio.direction,
                codec,
            },
        );
        cx.media(
            id,
            Control::Music {
                side: referrer.other(),
                on: music,
            },
        );
        let new_id = dialog.id.clone();
        let old = replace_leg(call, referrer, dialog, route, origin, ack, device);
        // The new party's telephone-events; a party without a phone is a
        // number rung through Twilio (it counts as an outgoing call).
        call.dtmf[referrer.index()] = answer.audio.telephone_event;
        call.transferred_out |= device.is_none();
        super::dtmf::tell_relay(call, cx);
        if let Some(k) = old {
            self.dialogs.remove(&k);
        }
        self.dialogs.insert(new_id, id, referrer);
        self.leg_replaced(id, referrer, &invite, &resp, cx);
        tracing::info!(call = %id, "blind transfer completed");
        send_cancels(cancels, cx);
    }

    fn referrer(&self, id: CallId) -> Option<Side> {
        match &self.calls.get(&id)?.up()?.transfer {
            TransferState::Ringing(t) => Some(t.referrer),
            _ => None,
        }
    }

    pub(super) fn transfer_failed(&mut self, id: CallId, status: u16, cx: &mut Cx<'_>) {
        let Some(referrer) = self.referrer(id) else {
            return;
        };
        self.transfer_failed_with(id, referrer, status, cx);
    }

    /// The target did not answer: the referrer keeps the call.
    pub(super) fn transfer_failed_with(
        &mut self,
        id: CallId,
        referrer: Side,
        status: u16,
        cx: &mut Cx<'_>,
    ) {
        let mut cancels = Vec::new();
        if let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) {
            if let TransferState::Ringing(mut t) =
                std::mem::replace(&mut up.transfer, TransferState::Idle)
            {
                cancels = forking::stop(t.forks.iter_mut());
            }
            let held = up.hold.music_to(referrer.other());
            cx.media(
                id,
                Control::Music {
                    side: referrer.other(),
                    on: held,
                },
            );
        }
        tracing::info!(call = %id, status, "transfer failed; the referrer keeps the call");
        send_cancels(cancels, cx);
        self.notify_referrer(id, referrer, status.max(300), true, cx);
        self.after_failed_transfer(id, referrer, cx);
    }

    /// Attended transfer: the referrer talks to X in call `id` (on side
    /// `referrer`) and to Y in call `other` (on side `other_side`). X and Y
    /// are joined by pointing the two relays at each other over loopback,
    /// so neither is renegotiated; the referrer leaves both calls.
    fn join_calls(
        &mut self,
        id: CallId,
        referrer: Side,
        other: CallId,
        other_side: Side,
        cx: &mut Cx<'_>,
    ) {
        let ok = match (self.calls.get(&id), self.calls.get(&other)) {
            (Some(a), Some(b)) => a.answered() && b.answered() && a.codec == b.codec,
            _ => false,
        };
        if !ok {
            return self.notify_referrer(id, referrer, 488, true, cx);
        }
        self.notify_referrer(id, referrer, 200, true, cx);
        self.bye_side(id, referrer, cx);
        self.bye_side(other, other_side, cx);
        let Some(mut joined) = self.calls.remove(&other) else {
            return;
        };
        let y_side = other_side.other();
        let Some((y_dialog, y_route, y_origin, y_ack, y_device)) = take_leg(&mut joined, y_side)
        else {
            return;
        };
        let y_leg = std::mem::take(&mut joined.legs[y_side.index()]);
        // Forget the referrer's dialogs in both calls.
        for k in joined.dialog_ids() {
            self.dialogs.remove(&k);
        }
        self.dialogs.remove(&y_dialog.id);
        self.by_invite.remove(&joined.a.tx);
        cx.out.push(Action::Disarm(other));
        let mut record = cdr::assemble(
            &joined,
            cx.now,
            Ending::new(
                Disposition::Answered,
                format!("attended transfer: joined into call {id}"),
            ),
        );
        if y_side == Side::B {
            // The answering phone went on into the other call: this record
            // names the phone that stays, as the call's own device.
            record.device_id = joined.device_id.map(|d| d.0);
        }
        cx.out.push(Action::Record(Box::new(record)));
        let loopback = cx.host.loopback_ip();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codec = call.codec;
        cx.media(
            id,
            Control::Peer {
                side: referrer,
                rtp: SocketAddr::new(loopback, joined.ports[other_side.index()]),
                direction: Direction::SendRecv,
                codec,
            },
        );
        cx.media(
            other,
            Control::Peer {
                side: other_side,
                rtp: SocketAddr::new(loopback, call.ports[referrer.index()]),
                direction: Direction::SendRecv,
                codec,
            },
        );
        cx.media(
            id,
            Control::Music {
                side: referrer.other(),
                on: false,
            },
        );
        cx.media(
            other,
            Control::Music {
                side: y_side,
                on: false,
            },
        );
        cx.out.push(Action::MergeMedia {
            from: other,
            into: id,
        });
        if let Some(up) = call.up_mut() {
            up.hold.clear_parties();
        }
        let y_id = y_dialog.id.clone();
        let old = replace_leg(call, referrer, y_dialog, y_route, y_origin, y_ack, y_device);
        if let Some(k) = old {
            self.dialogs.remove(&k);
        }
        self.dialogs.insert(y_id, id, referrer);
        self.leg_moved(id, referrer, y_leg, cx);
        self.joined.insert(other, id);
        tracing::info!(call = %id, joined = %other, "attended transfer completed");
    }
}

/// Puts a new party on `side` of a call (after a transfer); returns the
/// old leg's dialog id to forget.
fn replace_leg(
    call: &mut Call,
    side: Side,
    dialog: Dialog,
    route: Route,
    origin: Origin,
    ack: Request,
    device: Option<DeviceId>,
) -> Option<DialogId> {
    match side {
        Side::A => {
            let old = call.a.dialog.replace(dialog).map(|d| d.id);
            call.a.route = route;
            call.a.origin = origin;
            // The new party's dialog is confirmed: no ACK is awaited from it.
            if let Phase::AwaitingAck(_) = call.phase {
                if let Phase::AwaitingAck(w) = call.take_phase() {
                    call.phase = Phase::Up(w.up);
                }
            }
            if call.kind == Kind::Internal {
                call.device_id = device.or(call.device_id);
            }
            old
        }
        Side::B => {
            let kind = call.kind;
            let up = call.up_mut()?;
            let old = std::mem::replace(
                &mut up.b,
                BLeg {
                    dialog,
                    route,
                    origin,
                    ack,
                    device_id: device,
                },
            );
            if kind != Kind::Outbound {
                call.device_id = device.or(call.device_id);
            }
            Some(old.dialog.id)
        }
    }
}

/// Takes one leg out of a call that is being dissolved.
fn take_leg(
    call: &mut Call,
    side: Side,
) -> Option<(Dialog, Route, Origin, Request, Option<DeviceId>)> {
    match side {
        Side::A => {
            let dialog = call.a.dialog.take()?;
            let ack = call.a.invite.clone();
            Some((dialog, call.a.route, call.a.origin.clone(), ack, None))
        }
        Side::B => {
            let up = call.up()?;
            let b = &up.b;
            Some((
                b.dialog.clone(),
                b.route,
                b.origin.clone(),
                b.ack.clone(),
                b.device_id,
            ))
        }
    }
}

/// Fork `n` of the transfer ringing on call `id`, if it is still ringing.
pub(super) fn transfer_fork(
    calls: &mut std::collections::HashMap<CallId, Call>,
    id: CallId,
    n: usize,
) -> Option<&mut Fork> {
    calls
        .get_mut(&id)
        .and_then(Call::up_mut)
        .and_then(|up| match &mut up.transfer {
            TransferState::Ringing(t) => t.forks.get_mut(n),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3891_replaces_names_homelines_dialog_by_its_to_tag() {
        let d = replaced_dialog("abc@h;to-tag=ours;from-tag=theirs");
        assert_eq!(
            d,
            DialogId {
                call_id: "abc@h".into(),
                local_tag: "ours".into(),
                remote_tag: "theirs".into()
            }
        );
    }
}
