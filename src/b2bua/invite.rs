//! A new call: the caller's offer is read, the call routed, its relay
//! opened, and its forks sent out.

use std::net::SocketAddr;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Codec, Direction, Origin};
use crate::sip::message::{build, HeaderName, NameAddr, Request};
use crate::sip::transaction::ServerKey;
use crate::sip::transport::Protocol;
use crate::store::cdrs::Disposition;

use super::call::{ALeg, Call, Phase, Resolving, Ringing};
use super::cdr::{self, Ending};
use super::delayed_offer;
use super::forking::Fork;
use super::prack::{self, ReliableUas};
use super::route::{self, Caller, Target};
use super::sequence::{self, Sequence};
use super::{Action, CallId, CallTimer, Calls, Cx, DeviceId, Owner, Route};

/// What a new leg is offered: the relay port facing it and the call's codecs.
#[derive(Debug, Clone)]
pub(super) struct OfferMedia {
    pub(super) port: u16,
    pub(super) codecs: Vec<Codec>,
    pub(super) telephone_event: Option<u8>,
    pub(super) ptime: Option<u32>,
    /// The leg is Twilio's: Homeline is the router's public address there.
    pub(super) towards_twilio: bool,
}

impl Calls {
    /// A new INVITE (no To tag); its 100 is sent and its caller known.
    pub(super) fn on_invite(
        &mut self,
        req: Request,
        caller: Caller,
        tx: ServerKey,
        a_route: Route,
        cx: &mut Cx<'_>,
    ) {
        let tag = cx.tag();
        let fail = |status: u16, why: &str| build::reply_with_warning(&req, status, &tag, why);
        // RFC 4028 §9: a session interval below our minimum gets 422.
        if let Some(r) = super::session_timer::refuse_too_small(&req, &tag) {
            return cx.respond(&tx, r);
        }
        // What the caller offers: an INVITE without SDP is a delayed
        // offer (ours goes in the 2xx, see `delayed_offer`).
        let offer = match delayed_offer::read_offer(&req) {
            Ok(offer) => offer,
            Err((status, why)) => return cx.respond(&tx, fail(status, &why)),
        };
        let dialed = req
            .uri()
            .and_then(|u| u.user_unescaped())
            .unwrap_or_default();
        let from_user = req
            .headers
            .get(&HeaderName::From)
            .and_then(NameAddr::parse)
            .and_then(|n| n.uri.user_unescaped())
            .unwrap_or_default();
        // Where it goes: a call from Twilio may carry the routing rules'
        // ring plan (its caller is authenticated, so the header is trusted).
        let from_twilio = caller == Caller::Twilio;
        let ring = from_twilio
            .then(|| sequence::requested_steps(&req))
            .flatten();
        let rule = from_twilio.then(|| sequence::rule_of(&req)).flatten();
        let outgoing = self.outgoing();
        let planned = route::plan(
            route::Request {
                caller: &caller,
                dialed: &dialed,
                from_user: &from_user,
                outgoing,
                now: cx.now,
                decided: rule.is_some(),
                ring,
            },
            &self.directory,
            &self.config.rules,
            &mut self.guard,
        );
        let plan = match planned {
            Ok(plan) => plan,
            Err(refused) => {
                let mut r = fail(refused.status, &refused.why);
                if let Some(reason) = refused.reason {
                    r.reason = reason.into();
                }
                if let Some(b) = refused.blocked {
                    let record =
                        cdr::refusal(&req, &b.from, &b.to, b.device.0, &refused.why, cx.now);
                    cx.out.push(Action::Record(Box::new(record)));
                }
                return cx.respond(&tx, r);
            }
        };
        // The pickup code answers a ringing call instead of making one.
        if plan.target == Target::Pickup {
            return match plan.device_id {
                Some(picker) => self.pick_up(&req, offer, tx, a_route, picker, &tag, cx),
                None => cx.respond(&tx, fail(404, "only a phone can pick up a call")),
            };
        }
        // The DND codes are answered with a confirmation, not rung.
        if let (Target::Dnd(on), Some(device)) = (&plan.target, plan.device_id) {
            return self.on_dnd_code(&req, offer, tx, a_route, device, *on, &tag, cx);
        }
        // The relay: two port pairs.
        self.next_id += 1;
        let id = CallId(self.next_id);
        let Some(ports) = cx.host.open_media(id) else {
            tracing::warn!("no free RTP ports: call refused");
            return cx.respond(&tx, fail(503, "no free media ports"));
        };
        // The offer's first G.711 codec is the call's (no transcoding).
        let (codecs, telephone_event, ptime) = match &offer {
            Some(o) => (
                o.audio.codecs.clone(),
                o.audio.telephone_event,
                o.audio.ptime,
            ),
            None => delayed_offer::our_codecs(),
        };
        let codec = codecs.first().copied().unwrap_or(Codec::Pcmu);
        if let Some(o) = &offer {
            cx.media(
                id,
                Control::Peer {
                    side: Side::A,
                    rtp: SocketAddr::new(o.audio.addr, o.audio.port),
                    direction: o.audio.direction,
                    codec,
                },
            );
        }
        let media = OfferMedia {
            port: ports[1],
            codecs,
            telephone_event,
            ptime,
            towards_twilio: matches!(plan.target, Target::Trunk { .. }),
        };
        let origin = Origin::new(cx.host.random());
        let mut call = Call {
            id,
            kind: plan.kind,
            from: plan.from.clone(),
            to: plan.to.clone(),
            did_id: plan.did_id,
            device_id: plan.device_id,
            started_at: cx.now,
            answered_at: None,
            a: ALeg {
                invite: req.clone(),
                tx: tx.clone(),
                route: a_route,
                tag: tag.clone(),
                offer,
                origin,
                dialog: None,
                reliable: prack::required(&req.headers).then(|| ReliableUas::new(cx.host.random())),
                early_answer: None,
            },
            ports,
            codec,
            telephone_event: media.telephone_event,
            phase: Phase::Ending,
            dtmf: [media.telephone_event, None],
            picked: None,
            transferred_out: false,
            legs: Default::default(),
            rule,
        };
        match &plan.target {
            Target::Ring(steps) => {
                // The first step with a registered phone rings now.
                let mut rest: std::collections::VecDeque<_> = steps.iter().cloned().collect();
                let mut forks = Vec::new();
                let mut first = None;
                while let Some(step) = rest.pop_front() {
                    forks = self.phone_forks(
                        &step.devices,
                        &media,
                        &plan.from,
                        plan.display.as_deref(),
                        cx,
                    );
                    if !forks.is_empty() {
                        first = Some(step);
                        break;
                    }
                }
                if forks.is_empty() {
                    let why = "no phone is registered for this call";
                    cx.respond(&tx, fail(480, why));
                    cx.out.push(Action::CloseMedia(id));
                    let record =
                        cdr::assemble(&call, cx.now, Ending::new(Disposition::Failed, why));
                    cx.out.push(Action::Record(Box::new(record)));
                    return;
                }
                let sequence = (!rest.is_empty()).then(|| Sequence {
                    rest,
                    media: media.clone(),
                    display: plan.display.clone(),
                });
                call.phase = Phase::Ringing(Ringing {
                    forks,
                    sent_ringing: false,
                    early_media: None,
                    sequence,
                });
                self.start(call, first, cx);
            }
            // Answered above.
            Target::Pickup | Target::Dnd(_) => {}
            Target::Trunk { number } => {
                let edge = self.directory.trunk.as_ref().and_then(|t| t.edge);
                let domain = self
                    .directory
                    .trunk
                    .as_ref()
                    .map(|t| t.domain.clone())
                    .unwrap_or_default();
                call.phase = Phase::Resolving(Resolving {
                    number: number.clone(),
                    media,
                });
                self.by_invite.insert(tx, id);
                self.calls.insert(id, call);
                match edge {
                    Some(edge) => self.on_resolved(id, Some(edge), cx),
                    None => cx.out.push(Action::Resolve(id, domain)),
                }
            }
        }
    }

    /// One fork per registered contact of each phone.
    pub(super) fn phone_forks(
        &mut self,
        devices: &[DeviceId],
        media: &OfferMedia,
        from: &str,
        display: Option<&str>,
        cx: &mut Cx<'_>,
    ) -> Vec<Fork> {
        let mut forks = Vec::new();
        for &device in devices {
            let username = self
                .directory
                .phones
                .get(&device.0)
                .map(|p| p.username.clone())
                .unwrap_or_default();
            for b in cx.host.contacts(device) {
                let route = Route {
                    protocol: b.protocol,
                    dest: b.source,
                };
                let to_uri = format!("sip:{username}@{}", cx.host_for(route.dest.ip()));
                let invite = self.b_invite(media, &b.uri, &to_uri, from, display, route, cx);
                forks.push(Fork::new(invite, route, Some(device)));
            }
        }
        forks
    }

    /// The trunk's address is known (or is not): the outgoing call's INVITE
    /// goes out, or the caller hears 503.
    pub(super) fn on_resolved(&mut self, id: CallId, dest: Option<SocketAddr>, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !matches!(call.phase, Phase::Resolving(_)) {
            // An answered call resolving for a transfer to an external number.
            return self.on_transfer_resolved(id, dest, cx);
        }
        let Phase::Resolving(resolving) = call.take_phase() else {
            return;
        };
        let trunk = self.directory.trunk.clone();
        let (Some(dest), Some(trunk)) = (dest, trunk) else {
            let why = if dest.is_some() {
                "Twilio is not set up"
            } else {
                "Twilio's SIP edge could not be resolved"
            };
            let r = build::reply_with_warning(&call.a.invite, 503, &call.a.tag, why);
            let tx = call.a.tx.clone();
            cx.respond(&tx, r);
            return self.end_call(id, Ending::new(Disposition::Failed, why), cx);
        };
        let route = Route {
            protocol: Protocol::Udp,
            dest,
        };
        let from = call.from.clone();
        let uri = format!("sip:{}@{}", resolving.number, trunk.domain);
        let from_uri = format!("sip:{from}@{}", trunk.domain);
        let mut invite = self.b_invite(&resolving.media, &uri, &uri, &from, None, route, cx);
        invite
            .headers
            .set(HeaderName::From, format!("<{from_uri}>;tag={}", cx.tag()));
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.by_invite.remove(&call.a.tx);
        let mut call = call;
        call.phase = Phase::Ringing(Ringing {
            forks: vec![Fork::new(invite, route, None)],
            sent_ringing: false,
            early_media: None,
            sequence: None,
        });
        self.start(call, None, cx);
    }

    /// Puts a ringing call in the table and sends its forks; a call to the
    /// household's phones rings for its first `step`'s time.
    fn start(&mut self, call: Call, step: Option<sequence::Step>, cx: &mut Cx<'_>) {
        let id = call.id;
        let Phase::Ringing(ringing) = &call.phase else {
            return;
        };
        let more = ringing.sequence.is_some();
        tracing::info!(call = %id, kind = call.kind.name(), from = %call.from, to = %call.to, forks = ringing.forks.len(), "call started");
        for (n, f) in ringing.forks.iter().enumerate() {
            cx.request(f.invite.clone(), f.route, Owner::Fork(id, n));
        }
        if call.kind != super::call::Kind::Outbound {
            match &step {
                Some(step) => self.arm_step(id, step, more, cx),
                None => cx.arm(id, CallTimer::Ring, self.config.ring_timeout),
            }
        }
        self.by_invite.insert(call.a.tx.clone(), id);
        self.calls.insert(id, call);
    }

    /// Builds one fork's INVITE.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn b_invite(
        &self,
        media: &OfferMedia,
        ruri: &str,
        to_uri: &str,
        from_user: &str,
        display: Option<&str>,
        route: Route,
        cx: &mut Cx<'_>,
    ) -> Request {
        // Towards Twilio, Homeline is the router's public address (when
        // known): in the SDP, so media comes back through the forwarded
        // RTP ports, and in Contact, so Twilio's BYE finds the way back.
        let local = cx.host.local_ip_for(route.dest.ip());
        let sdp_ip = match self.config.public_ip {
            Some(public) if media.towards_twilio => public,
            _ => local,
        };
        let mut origin = Origin::new(cx.host.random());
        let body = sdp::write(
            &mut origin,
            &sdp::Offer {
                addr: sdp_ip,
                port: media.port,
                codecs: media.codecs.clone(),
                telephone_event: media.telephone_event,
                direction: Direction::SendRecv,
                ptime: media.ptime,
            },
            &[],
            0,
        );
        let host = cx.host_for(route.dest.ip());
        let from_tag = cx.tag();
        let mut invite = build::invite(build::NewInvite {
            uri: ruri,
            to_uri,
            from: build::from_value(display, from_user, &host, &from_tag),
            via: cx.via(route),
            call_id: format!("{}@homeline", cx.host.token(12)),
            contact: cx.contact_at(route, sdp_ip),
            sdp: body,
        });
        // RFC 4028: ask for a session timer; the callee picks the refresher.
        super::session_timer::ask(&mut invite, super::session_timer::SESSION_EXPIRES, false);
        invite
    }
}
