//! The Do-Not-Disturb feature codes: a phone dials
//! [`crate::dialplan::DND_ON_CODE`] (`*78`) or
//! [`crate::dialplan::DND_OFF_CODE`] (`*79`) and goes into DND or out of it.
//!
//! The call layer writes nothing itself: it asks the application for the
//! change ([`super::Action::SetDnd`]; the application stores it, announces
//! it and refreshes the directory), and confirms it to the phone at once:
//! its INVITE is answered with 200 on a relay that plays the hold tune to
//! it, and after [`CONFIRMATION`] Homeline hangs up with a BYE. Our 2xx is
//! resent until the phone's ACK (RFC 3261 §13.3.1.4), and the BYE waits for
//! that ACK (§15: not before the dialog is confirmed); a phone that hangs up
//! first gets its 200. Not a call: no record, not in the calls list.

use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::media::relay::{Control, Side};
use crate::media::sdp::{self, Codec, Description, Direction, Origin};
use crate::sip::dialog::Dialog;
use crate::sip::message::{build, Method, Request, Response};
use crate::sip::transaction::{ServerKey, TimerConfig};

use super::{Action, CallId, CallTimer, Calls, Cx, DeviceId, Owner, Route};

/// How long the phone hears the confirmation before Homeline hangs up.
pub const CONFIRMATION: Duration = Duration::from_millis(1500);

/// A feature code being confirmed.
pub(super) struct FeatureCall {
    tx: ServerKey,
    ok: Response,
    route: Route,
    dialog: Dialog,
    answered_at: Timestamp,
    every: Duration,
    acked: bool,
    /// Our 2xx carried the offer (the phone's INVITE had none): the ACK
    /// carries the answer, and only then does the relay know where to play.
    offered: Option<Codec>,
}

impl Calls {
    /// `*78`/`*79` from `device`: asks for the change and answers with the
    /// confirmation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_dnd_code(
        &mut self,
        req: &Request,
        offer: Option<Description>,
        tx: ServerKey,
        route: Route,
        device: DeviceId,
        on: bool,
        tag: &str,
        cx: &mut Cx<'_>,
    ) {
        self.next_id += 1;
        let id = CallId(self.next_id);
        let Some(ports) = cx.host.open_media(id) else {
            tracing::warn!("no free RTP ports: feature code refused");
            let why = "no free media ports";
            return cx.respond(&tx, build::reply_with_warning(req, 503, tag, why));
        };
        let local = cx.host.local_ip_for(route.dest.ip());
        let (ours, codec) = match &offer {
            Some(o) => {
                let codec = o.audio.codecs.first().copied().unwrap_or(Codec::Pcmu);
                cx.media(
                    id,
                    Control::Peer {
                        side: Side::A,
                        rtp: SocketAddr::new(o.audio.addr, o.audio.port),
                        direction: o.audio.direction,
                        codec,
                    },
                );
                let answer = sdp::Offer {
                    addr: local,
                    port: ports[Side::A.index()],
                    codecs: vec![codec],
                    telephone_event: None,
                    direction: o.audio.direction.answer(),
                    ptime: o.audio.ptime,
                };
                (answer, codec)
            }
            None => {
                let ours = sdp::Offer {
                    addr: local,
                    port: ports[Side::A.index()],
                    codecs: vec![Codec::Pcmu, Codec::Pcma],
                    telephone_event: None,
                    direction: Direction::SendRecv,
                    ptime: None,
                };
                (ours, Codec::Pcmu)
            }
        };
        let (streams, audio_index) = offer
            .as_ref()
            .map_or((&[][..], 0), |o| (&o.streams[..], o.audio_index));
        let body = sdp::write(
            &mut Origin::new(cx.host.random()),
            &ours,
            streams,
            audio_index,
        );
        let contact = cx.contact_at(route, local);
        let ok = super::answer::ok_with_sdp(req, tag, &contact, body);
        let dialog = match Dialog::uas(req, &ok) {
            Ok(d) => d,
            Err(e) => {
                cx.out.push(Action::CloseMedia(id));
                let why = format!("no dialog can be formed: {e}");
                return cx.respond(&tx, build::reply_with_warning(req, 400, tag, &why));
            }
        };
        tracing::info!(device = device.0, on, "Do-Not-Disturb feature code");
        cx.out.push(Action::SetDnd { device, on });
        if offer.is_some() {
            cx.media(
                id,
                Control::Music {
                    side: Side::A,
                    on: true,
                },
            );
        }
        self.dialogs.insert(dialog.id.clone(), id, Side::A);
        let first = if route.protocol.reliable() {
            TimerConfig::UDP.timeout()
        } else {
            TimerConfig::UDP.t1
        };
        self.features.insert(
            id,
            FeatureCall {
                tx: tx.clone(),
                ok: ok.clone(),
                route,
                dialog,
                answered_at: cx.now,
                every: TimerConfig::UDP.t1,
                acked: false,
                offered: offer.is_none().then_some(codec),
            },
        );
        cx.respond(&tx, ok);
        cx.arm(id, CallTimer::FeatureRetransmit, first);
        cx.arm(id, CallTimer::FeatureHangUp, CONFIRMATION);
    }

    /// Whether `id` is a feature code being confirmed.
    pub(super) fn is_feature(&self, id: CallId) -> bool {
        self.features.contains_key(&id)
    }

    /// The phone's ACK: our 2xx is not resent; after a delayed offer the
    /// ACK's answer tells the relay where the phone listens.
    pub(super) fn on_feature_ack(&mut self, id: CallId, ack: &Request, cx: &mut Cx<'_>) {
        let Some(f) = self.features.get_mut(&id) else {
            return;
        };
        f.acked = true;
        if let Some(codec) = f.offered.take() {
            match Description::parse(&ack.body) {
                Ok(d) if d.audio.port != 0 => {
                    let codec = d.audio.codecs.first().copied().unwrap_or(codec);
                    cx.media(
                        id,
                        Control::Peer {
                            side: Side::A,
                            rtp: SocketAddr::new(d.audio.addr, d.audio.port),
                            direction: d.audio.direction,
                            codec,
                        },
                    );
                    cx.media(
                        id,
                        Control::Music {
                            side: Side::A,
                            on: true,
                        },
                    );
                }
                // The confirmation is silent; the change stands.
                _ => tracing::debug!(call = %id, "feature code ACK without a usable answer"),
            }
        }
    }

    /// A request in a feature code's dialog: a BYE ends it; anything else
    /// is answered and changes nothing.
    pub(super) fn on_feature_request(
        &mut self,
        id: CallId,
        req: &Request,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        let Some(f) = self.features.get_mut(&id) else {
            return crate::sip::dialog::no_such_dialog(req, tag);
        };
        if let Err(e) = f.dialog.on_request(req) {
            tracing::debug!(call = %id, error = %e, "in-dialog request refused");
            return build::reply(req, 500, tag);
        }
        match req.method {
            Method::Bye => {
                self.end_feature(id, cx);
                build::reply(req, 200, tag)
            }
            Method::Invite => build::reply(req, 488, tag),
            _ => build::reply(req, 200, tag),
        }
    }

    /// A feature code's timer fired.
    pub(super) fn on_feature_timer(&mut self, id: CallId, timer: CallTimer, cx: &mut Cx<'_>) {
        let Some(f) = self.features.get_mut(&id) else {
            return;
        };
        let waited = cx.now.since(f.answered_at);
        let timeout = TimerConfig::UDP.timeout();
        match timer {
            CallTimer::FeatureRetransmit if !f.acked => {
                if f.route.protocol.reliable() || waited >= timeout {
                    tracing::info!(call = %id, "the phone never ACKed the feature code's answer");
                    return self.end_feature(id, cx);
                }
                f.every = (f.every * 2).min(TimerConfig::UDP.t2);
                let every = f.every.min(timeout - waited);
                cx.out.push(Action::Retransmit {
                    tx: f.tx.clone(),
                    response: f.ok.clone(),
                    route: f.route,
                });
                cx.arm(id, CallTimer::FeatureRetransmit, every);
            }
            CallTimer::FeatureHangUp if f.acked => {
                let route = f.route;
                let via = cx.via(route);
                let contact = cx.contact(route);
                let Some(f) = self.features.get_mut(&id) else {
                    return;
                };
                let bye = f.dialog.request(Method::Bye, &via, &contact, None);
                cx.request(bye, route, Owner::Nobody);
                self.end_feature(id, cx);
            }
            // Not ACKed yet: the BYE waits for it (the retransmission
            // timer gives up at 64·T1).
            CallTimer::FeatureHangUp => {
                cx.arm(id, CallTimer::FeatureHangUp, TimerConfig::UDP.t1);
            }
            _ => {}
        }
    }

    fn end_feature(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(f) = self.features.remove(&id) else {
            return;
        };
        self.dialogs.remove(&f.dialog.id);
        cx.out.push(Action::Disarm(id));
        cx.out.push(Action::CloseMedia(id));
    }
}
