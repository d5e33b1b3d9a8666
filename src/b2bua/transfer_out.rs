//! Transfer to an external number: a REFER whose Refer-To names a number
//! (E.164, or as a phone would dial it) rather than a household phone. The
//! target is routed exactly like an outgoing call from the referring phone
//! ([`super::route::plan`]): the dial plan reads it, the referrer needs a
//! number to call out with, and the toll-fraud guard (allowed prefixes,
//! concurrent and hourly caps) must admit it; a refusal is the REFER's 403
//! (with a `Warning`, and a `blocked` record when the guard refused), as
//! for an unknown extension. Only a household phone may transfer out:
//! Twilio's own leg never can. Once accepted, the target is rung through
//! Twilio (its address resolved off the loop when no edge is set, its
//! digest challenge answered once) and its answer replaces the referrer's
//! leg like a blind transfer's.

use crate::media::relay::{Control, Side};
use crate::sip::message::{build, HeaderName, Request, Response};
use crate::sip::transport::Protocol;

use super::call::{Call, Kind};
use super::cdr;
use super::forking::Fork;
use super::invite::OfferMedia;
use super::route::{self, Caller, Target};
use super::transfer::{ReferPlan, Transfer, TransferState};
use super::{Action, CallId, CallTimer, Calls, Cx, DeviceId, Owner, Route};

/// An external transfer waiting for Twilio's address.
pub(super) struct Resolving {
    pub(super) referrer: Side,
    /// The E.164 number rung.
    pub(super) number: String,
    /// The number it calls out as.
    pub(super) caller_id: String,
}

impl Calls {
    /// The household phone on `side` of a call, with its user name.
    fn phone_on(&self, call: &Call, side: Side) -> Option<(DeviceId, String)> {
        if call.kind.twilio_on(side) {
            return None;
        }
        let device = match side {
            Side::B => call.up().and_then(|u| u.b.device_id),
            Side::A => match call.kind {
                Kind::Internal => self
                    .directory
                    .phone_by_username(&call.from)
                    .map(|p| DeviceId(p.device_id)),
                _ => call.device_id,
            },
        }?;
        let phone = self.directory.phones.get(&device.0)?;
        Some((device, phone.username.clone()))
    }

    /// A REFER to `dialed`, which is no household phone: the plan for an
    /// external transfer, or the REFER's refusal.
    pub(super) fn external_refer(
        &mut self,
        req: &Request,
        id: CallId,
        side: Side,
        dialed: &str,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Result<ReferPlan, Response> {
        let not_local = || {
            let mut r = build::reply(req, 403, tag);
            r.reason = "Transfer Target Is Not a Local Phone".into();
            r
        };
        let Some(call) = self.calls.get(&id) else {
            return Err(crate::sip::dialog::no_such_dialog(req, tag));
        };
        let Some((device, username)) = self.phone_on(call, side) else {
            let mut r = build::reply_with_warning(
                req,
                403,
                tag,
                "only a household phone may transfer a call out",
            );
            r.reason = "Transfer Target Is Not a Local Phone".into();
            return Err(r);
        };
        let caller = Caller::Phone { device, username };
        let outgoing = self.outgoing();
        let planned = route::plan(
            route::Request {
                caller: &caller,
                dialed,
                from_user: "",
                outgoing,
                now: cx.now,
                ring: None,
                decided: false,
            },
            &self.directory,
            &self.config.rules,
            &mut self.guard,
        );
        match planned {
            Ok(plan) => match plan.target {
                Target::Trunk { number } => {
                    tracing::info!(call = %id, ?side, %number, "transfer to an external number accepted");
                    Ok(ReferPlan::External(Resolving {
                        referrer: side,
                        number,
                        caller_id: plan.from,
                    }))
                }
                Target::Ring(_) | Target::Pickup | Target::Dnd(_) => Err(not_local()),
            },
            // Not a number at all: the answer an unknown extension gets.
            Err(refused) if refused.status == 404 => Err(not_local()),
            Err(refused) => {
                tracing::warn!(call = %id, %dialed, why = %refused.why, "transfer to an external number refused");
                let mut r = build::reply_with_warning(req, 403, tag, &refused.why);
                if let Some(reason) = refused.reason {
                    r.reason = reason.into();
                }
                if let Some(b) = refused.blocked {
                    let record =
                        cdr::refusal(req, &b.from, &b.to, b.device.0, &refused.why, cx.now);
                    cx.out.push(Action::Record(Box::new(record)));
                }
                Err(r)
            }
        }
    }

    /// Carries out an accepted external transfer: the transferee hears
    /// music while Twilio's address is found and the number rings.
    pub(super) fn start_external_transfer(&mut self, id: CallId, out: Resolving, cx: &mut Cx<'_>) {
        let referrer = out.referrer;
        self.notify_referrer(id, referrer, 100, false, cx);
        let Some(trunk) = self.directory.trunk.clone() else {
            return self.transfer_failed_with(id, referrer, 503, cx);
        };
        cx.media(
            id,
            Control::Music {
                side: referrer.other(),
                on: true,
            },
        );
        let edge = trunk.edge;
        if let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) {
            up.transfer = TransferState::Resolving(out);
        }
        match edge {
            Some(edge) => self.on_transfer_resolved(id, Some(edge), cx),
            None => cx.out.push(Action::Resolve(id, trunk.domain)),
        }
    }

    /// Twilio's address for an external transfer (or none: it fails 503).
    pub(super) fn on_transfer_resolved(
        &mut self,
        id: CallId,
        dest: Option<std::net::SocketAddr>,
        cx: &mut Cx<'_>,
    ) {
        let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) else {
            return;
        };
        let TransferState::Resolving(out) =
            std::mem::replace(&mut up.transfer, TransferState::Idle)
        else {
            return;
        };
        let trunk = self.directory.trunk.clone();
        let (Some(dest), Some(trunk)) = (dest, trunk) else {
            tracing::info!(call = %id, "transfer target unreachable: Twilio's address is unknown");
            return self.transfer_failed_with(id, out.referrer, 503, cx);
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let media = OfferMedia {
            port: call.ports[out.referrer.index()],
            codecs: vec![call.codec],
            telephone_event: call.telephone_event,
            ptime: None,
            towards_twilio: true,
        };
        let route = Route {
            protocol: Protocol::Udp,
            dest,
        };
        let uri = format!("sip:{}@{}", out.number, trunk.domain);
        let from_uri = format!("sip:{}@{}", out.caller_id, trunk.domain);
        let mut invite = self.b_invite(&media, &uri, &uri, &out.caller_id, None, route, cx);
        invite
            .headers
            .set(HeaderName::From, format!("<{from_uri}>;tag={}", cx.tag()));
        cx.request(invite.clone(), route, Owner::TransferFork(id, 0));
        if let Some(up) = self.calls.get_mut(&id).and_then(Call::up_mut) {
            up.transfer = TransferState::Ringing(Transfer {
                referrer: out.referrer,
                forks: vec![Fork::new(invite, route, None)],
            });
        }
        cx.arm(id, CallTimer::TransferRing, self.config.ring_timeout);
    }

    /// Twilio challenged a transfer's INVITE: answered once with the trunk
    /// credentials; false if it cannot be (the fork then fails).
    pub(super) fn answer_transfer_challenge(
        &mut self,
        id: CallId,
        n: usize,
        resp: &Response,
        cx: &mut Cx<'_>,
    ) -> bool {
        let Some(trunk) = self.directory.trunk.clone() else {
            return false;
        };
        let cnonce = cx.tag();
        let Some(fork) = super::transfer::transfer_fork(&mut self.calls, id, n) else {
            return false;
        };
        let route = fork.route;
        let via = cx.via(route);
        let Some(invite) = super::challenge::retry_fork(fork, resp, &trunk, &cnonce, via) else {
            return false;
        };
        cx.request(invite, route, Owner::TransferFork(id, n));
        true
    }
}
