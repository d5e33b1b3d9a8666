//! Provisional responses from the forks, and early media: a 183 (or 180)
//! with SDP from a callee (Twilio's ringback and announcements, a phone's
//! own ringback) is relayed before the answer, so the caller hears it.
//!
//! The caller gets Homeline's SDP in a 183 (its answer, naming the relay),
//! the relay points B's side at the callee that sent the early SDP, and
//! RTP flows before the 200; the 2xx later repeats the same answer.
//!
//! **Which fork is heard:** the *first* fork to send early SDP keeps the
//! early media while it lives (a later fork's 183 does not take it over, so
//! two callees' ringbacks never alternate); a new description from that
//! same fork moves the relay with it. When that fork fails, the latest
//! other live fork that had sent early SDP takes over. The fork that
//! answers is relayed from its 2xx on, whichever fork gave early media:
//! the relay switches to it ([`super::answer`] points it at the 2xx's SDP).
//!
//! A caller whose INVITE had no SDP (delayed offer) cannot be sent early
//! SDP in a plain 183 (it would be an offer, RFC 3261 §13.2.1): it hears
//! ringing only.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::media::relay::{Control, Side};
use crate::media::sdp::Description;
use crate::sip::message::{build, HeaderName, Response};

use super::answer::answer_sdp;
use super::call::Phase;
use super::prack;
use super::{CallId, Calls, Cx, Owner};

impl Calls {
    /// A provisional response (101–199) to fork `n` of call `id`.
    pub(super) fn on_fork_provisional(
        &mut self,
        id: CallId,
        n: usize,
        resp: Response,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks_mut().and_then(|f| f.get_mut(n)) else {
            return;
        };
        if let Some((cancel, route)) = fork.provisional() {
            return cx.request(cancel, route, Owner::Nobody);
        }
        if !prack::acknowledge(fork, &resp, cx) {
            return;
        }
        let early = (!resp.body.is_empty())
            .then(|| Description::parse(&resp.body).ok())
            .flatten()
            .filter(|d| d.audio.port != 0 && !d.audio.codecs.is_empty());
        let has_early = early.is_some();
        if early.is_some() {
            fork.early = early;
        }
        let Phase::Ringing(ringing) = &mut call.phase else {
            return; // answered: a losing fork's progress is nobody's business
        };
        let heard = has_early && ringing.early_media.is_none_or(|m| m == n);
        if heard {
            ringing.early_media = Some(n);
            self.relay_early_media(id, n, cx);
        }
        self.ring_caller(id, cx);
    }

    /// Tells the caller the call progresses: a 183 with our SDP once early
    /// media is relayed (once), else a 180 (once).
    fn ring_caller(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let public_ip = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Phase::Ringing(ringing) = &call.phase else {
            return;
        };
        let early = ringing
            .early_media
            .and_then(|m| ringing.forks.get(m))
            .and_then(|f| f.early.as_ref())
            .map(|d| (d.audio.codecs[0], d.audio.direction));
        let sent_ringing = ringing.sent_ringing;
        let early = early.filter(|(codec, _)| {
            call.a.early_answer.is_none()
                && call
                    .a
                    .offer
                    .as_ref()
                    .is_some_and(|o| o.audio.codecs.contains(codec))
        });
        let response = match early {
            Some((codec, direction)) => {
                let (body, sdp_ip) = answer_sdp(call, public_ip, codec, direction, cx);
                let body = Bytes::from(body);
                call.a.early_answer = Some(body.clone());
                let mut r = build::reply(&call.a.invite, 183, &call.a.tag);
                let contact = cx.contact_at(call.a.route, sdp_ip);
                r.headers.push(HeaderName::Contact, format!("<{contact}>"));
                r.headers.push(HeaderName::ContentType, "application/sdp");
                r.body = body;
                r
            }
            None if !sent_ringing => {
                let contact = cx.contact(call.a.route);
                let mut r = build::reply(&call.a.invite, 180, &call.a.tag);
                r.headers.push(HeaderName::Contact, format!("<{contact}>"));
                r
            }
            None => return,
        };
        if let Phase::Ringing(ringing) = &mut call.phase {
            ringing.sent_ringing = true;
        }
        self.provisional_to_a(id, response, cx);
    }

    /// Points the relay's B side at fork `n`'s early media.
    fn relay_early_media(&mut self, id: CallId, n: usize, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Phase::Ringing(ringing) = &call.phase else {
            return;
        };
        let Some(d) = ringing.forks.get(n).and_then(|f| f.early.as_ref()) else {
            return;
        };
        tracing::debug!(call = %id, fork = n, "early media relayed");
        cx.media(
            id,
            Control::Peer {
                side: Side::B,
                rtp: SocketAddr::new(d.audio.addr, d.audio.port),
                direction: d.audio.direction,
                codec: d.audio.codecs[0],
            },
        );
    }

    /// Fork `n` failed: if the caller heard its early media, the latest
    /// other live fork with early SDP is heard instead.
    pub(super) fn early_fork_ended(&mut self, id: CallId, n: usize, cx: &mut Cx<'_>) {
        let Some(Phase::Ringing(ringing)) = self.calls.get_mut(&id).map(|c| &mut c.phase) else {
            return;
        };
        if ringing.early_media != Some(n) {
            return;
        }
        let next = ringing
            .forks
            .iter()
            .enumerate()
            .rev()
            .find(|(_, f)| f.live() && f.early.is_some())
            .map(|(i, _)| i);
        ringing.early_media = next;
        if let Some(next) = next {
            self.relay_early_media(id, next, cx);
        }
    }
}
