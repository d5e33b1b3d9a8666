//! Homeline's own re-INVITEs (the session refreshes of [`super::session_timer`])
//! and their glare (RFC 3261 §14.1): one INVITE at a time per dialog; the
//! peer's re-INVITE arriving while ours is pending gets 491
//! ([`super::in_dialog`]), and our re-INVITE that gets 491 is sent again
//! after a random wait, longer for the side that owns the Call-ID so the
//! two sides do not collide again.
//!
//! A refresh offers the SDP Homeline last sent on that leg, unchanged
//! (same origin version, RFC 3264 §8): the session goes on as it was.

use std::time::Duration;

use bytes::Bytes;

use crate::media::relay::Side;
use std::net::{IpAddr, SocketAddr};

use crate::sip::message::{
    build, CSeq, HeaderName, Headers, Message, Method, NameAddr, Request, Response,
};
use crate::sip::transport::Protocol;
use crate::store::cdrs::Disposition;

use super::call::Phase;
use super::cdr::Ending;
use super::session_timer::{self, Refresher};
use super::{CallId, CallTimer, Calls, Cx, Owner, Route};

/// How long to wait before we may start a re-INVITE while another INVITE
/// transaction of the dialog is still open (the caller's ACK, our answer
/// to the peer's re-INVITE awaiting its ACK).
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// §14.1: the wait before resending a re-INVITE that got 491: 2.1–4 s if
/// we chose the dialog's Call-ID, else 0–2 s, in steps of 10 ms.
pub(super) fn retry_after(owns_call_id: bool, random: u64) -> Duration {
    let ms = if owns_call_id {
        2100 + (random % 191) * 10
    } else {
        (random % 201) * 10
    };
    Duration::from_millis(ms)
}

/// Whether Homeline chose this Call-ID (it names its own legs
/// `…@homeline`, see `b_invite`): then it is the dialog's owner in §14.1.
pub(super) fn owns_call_id(call_id: &str) -> bool {
    call_id.ends_with("@homeline")
}

fn cseq_of(h: &crate::sip::message::Headers) -> Option<u32> {
    h.get(&HeaderName::CSeq)
        .and_then(CSeq::parse)
        .map(|c| c.seq)
}

/// ACKs a 2xx to a re-INVITE whose call is gone, from the response alone
/// (its Contact is the target, its From and To the dialog's).
fn ack_stray(resp: &Response, cx: &mut Cx<'_>) {
    let (Some(seq), Some(target)) = (
        cseq_of(&resp.headers),
        resp.headers
            .get(&HeaderName::Contact)
            .and_then(NameAddr::parse),
    ) else {
        return;
    };
    let Some(dest) = target
        .uri
        .host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, target.uri.port.unwrap_or(5060)))
    else {
        return;
    };
    let route = Route {
        protocol: Protocol::Udp,
        dest,
    };
    let mut h = Headers::default();
    h.push(HeaderName::Via, cx.via(route));
    h.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = resp.headers.get(&name) {
            h.push(name, v.to_string());
        }
    }
    h.push(HeaderName::CSeq, format!("{seq} ACK"));
    let ack = Request {
        method: Method::Ack,
        uri: target.uri.to_string(),
        headers: h,
        body: Bytes::new(),
    };
    cx.send(route, Message::Request(ack));
}

impl Calls {
    /// Sends our session refresh on one leg: a re-INVITE offering the SDP
    /// the leg already has, asking to stay the refresher.
    pub(super) fn send_refresh(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        self.send_reinvite(id, side, None, cx);
    }

    /// [`Self::send_refresh`], with a digest answer (`header`, value) when
    /// the refresh is sent again after a challenge.
    fn send_reinvite(
        &mut self,
        id: CallId,
        side: Side,
        credentials: Option<(HeaderName, String)>,
        cx: &mut Cx<'_>,
    ) {
        let public = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &call.legs[side.index()];
        let (Some(session), false, None) = (leg.session, leg.left, &leg.ours) else {
            return; // no timer, the party left, or a re-INVITE of ours is out
        };
        let busy = !matches!(call.phase, Phase::Up(_)) || leg.answering.is_some();
        if busy || leg.sdp.is_empty() {
            // §14.1: not while another INVITE transaction is open.
            return cx.arm(id, CallTimer::SessionRefresh(side), BUSY_RETRY);
        }
        let body: Bytes = leg.sdp.clone();
        let twilio = call.kind.twilio_on(side);
        let Some(route) = call.route(side) else {
            return;
        };
        let via = cx.via(route);
        // Contact is a target refresh: towards Twilio it must stay the
        // public address, as in the first answer.
        let local = cx.host.local_ip_for(route.dest.ip());
        let ip = public.filter(|_| twilio).unwrap_or(local);
        let contact = cx.contact_at(route, ip);
        let Some(dialog) = call.dialog_mut(side) else {
            return;
        };
        let mut req = dialog.request(Method::Invite, &via, &contact, None);
        req.headers.push(HeaderName::Allow, build::ALLOW);
        req.headers.push(HeaderName::UserAgent, build::product());
        session_timer::ask(&mut req, session.interval, true);
        if let Some((header, value)) = credentials {
            req.headers.push(header, value);
        }
        req.headers.push(HeaderName::ContentType, "application/sdp");
        req.body = body;
        call.legs[side.index()].ours = Some(req.clone());
        tracing::debug!(call = %id, ?side, "session refresh sent");
        cx.request(req, route, Owner::Reinvite(id, side));
    }

    /// A response to our re-INVITE on one leg.
    pub(super) fn on_reinvite_response(
        &mut self,
        id: CallId,
        side: Side,
        resp: Response,
        cx: &mut Cx<'_>,
    ) {
        let public = self.config.public_ip;
        let Some(call) = self.calls.get_mut(&id) else {
            // The call ended meanwhile (its BYEs are out) or its leg moved
            // into another call: the 2xx needs its ACK, and nothing more.
            if (200..300).contains(&resp.status) {
                ack_stray(&resp, cx);
            }
            return;
        };
        let seq = cseq_of(&resp.headers);
        let leg = &mut call.legs[side.index()];
        let ours = leg
            .ours
            .as_ref()
            .filter(|r| cseq_of(&r.headers) == seq)
            .cloned();
        let Some(ours) = ours else {
            // Our ACK was lost and the 2xx came again: the same ACK again.
            if (200..300).contains(&resp.status) {
                let ack = leg.last_ack.clone().filter(|a| cseq_of(&a.headers) == seq);
                if let (Some(ack), Some(route)) = (ack, call.route(side)) {
                    cx.send(route, Message::Request(ack));
                }
            }
            return;
        };
        if resp.status < 200 {
            return;
        }
        leg.ours = None;
        match resp.status {
            200..=299 => {
                let twilio = call.kind.twilio_on(side);
                let Some(route) = call.route(side) else {
                    return;
                };
                let via = cx.via(route);
                let local = cx.host.local_ip_for(route.dest.ip());
                let contact = cx.contact_at(route, public.filter(|_| twilio).unwrap_or(local));
                let Some(dialog) = call.dialog_mut(side) else {
                    return;
                };
                dialog.on_response(&Method::Invite, &resp);
                let ack = dialog.request(Method::Ack, &via, &contact, seq);
                cx.send(route, Message::Request(ack.clone()));
                call.legs[side.index()].last_ack = Some(ack);
                // The media is as it was (we offered it unchanged), so the
                // relay is not touched; the session starts again.
                let session = session_timer::settled_by(&resp, cx.now);
                tracing::debug!(call = %id, ?side, "session refreshed");
                self.set_session(id, side, session, cx);
            }
            491 => {
                let owner = call
                    .dialog_mut(side)
                    .is_some_and(|d| owns_call_id(&d.id.call_id));
                let wait = retry_after(owner, cx.host.random());
                tracing::debug!(call = %id, ?side, ?wait, "re-INVITE glare: trying again");
                cx.arm(id, CallTimer::GlareRetry(side), wait);
            }
            422 => {
                let bigger = session_timer::after_422(&resp, session_timer::asked_in(&ours));
                let session = call.legs[side.index()].session.as_mut();
                match (bigger, session) {
                    (Some(bigger), Some(s)) => {
                        s.interval = bigger;
                        self.send_refresh(id, side, cx);
                    }
                    _ => {
                        tracing::info!(call = %id, ?side, "422 to our refresh without a usable Min-SE")
                    }
                }
            }
            401 | 407 if call.kind.twilio_on(side) => {
                // Twilio may challenge in-dialog requests: answered once
                // with the trunk's credentials, as its INVITE was.
                let answered = [HeaderName::Authorization, HeaderName::ProxyAuthorization]
                    .iter()
                    .any(|h| ours.headers.get(h).is_some());
                let Some(trunk) = self.directory.trunk.clone().filter(|_| !answered) else {
                    tracing::info!(call = %id, ?side, "Twilio refused our session refresh's credentials");
                    return self.refresh_later(id, side, cx);
                };
                let cnonce = cx.tag();
                // The next request has the same Request-URI (the target).
                if let Some((header, value)) =
                    super::challenge::answer(&resp, &ours.uri, &trunk, &cnonce)
                {
                    self.send_reinvite(id, side, Some((header, value)), cx);
                }
            }
            408 | 481 => {
                // RFC 4028 §10: the refresh timed out or the dialog is gone.
                tracing::info!(call = %id, ?side, status = resp.status, "session refresh failed: hanging up");
                self.hang_up_both(
                    id,
                    Ending::new(
                        Disposition::Answered,
                        format!("session refresh failed ({})", resp.status),
                    ),
                    cx,
                );
            }
            status => {
                tracing::info!(call = %id, ?side, status, "session refresh refused");
                self.refresh_later(id, side, cx);
            }
        }
    }

    /// Our refresh was refused: the session is not refreshed. As its
    /// refresher we try again at half the time left; its expiry still
    /// ends the call if nothing succeeds.
    fn refresh_later(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        let Some(s) = self
            .calls
            .get(&id)
            .and_then(|c| c.legs[side.index()].session)
        else {
            return;
        };
        let left = s.deadline.since(cx.now);
        if s.refresher == Refresher::Us && left > Duration::from_secs(2) {
            cx.arm(id, CallTimer::SessionRefresh(side), left / 2);
        }
    }

    /// [`CallTimer::GlareRetry`]: our re-INVITE, once more.
    pub(super) fn on_glare_retry(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        self.on_refresh_due(id, side, cx);
    }

    /// Whether our own re-INVITE is out on `side` (the peer's gets 491).
    pub(super) fn reinvite_pending(&self, id: CallId, side: Side) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| c.legs[side.index()].ours.is_some())
    }

    /// Our re-INVITE out on `side`, if any (the tests read what went out).
    #[cfg(test)]
    pub(super) fn pending_reinvite(&self, id: CallId, side: Side) -> Option<&Request> {
        self.calls.get(&id)?.legs[side.index()].ours.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_14_1_the_owner_of_the_call_id_waits_2_1_to_4_s_the_other_0_to_2_s() {
        for r in [0, 1, 190, 191, 5000, u64::MAX] {
            let owner = retry_after(true, r);
            assert!(owner >= Duration::from_millis(2100) && owner <= Duration::from_secs(4));
            assert_eq!(owner.as_millis() % 10, 0, "units of 10 ms");
            let other = retry_after(false, r);
            assert!(other <= Duration::from_secs(2));
            assert_eq!(other.as_millis() % 10, 0);
        }
        assert_eq!(retry_after(true, 190), Duration::from_secs(4));
        assert_eq!(retry_after(false, 200), Duration::from_secs(2));
        assert!(owns_call_id("0a1b@homeline"));
        assert!(!owns_call_id("abc@192.0.2.1"));
    }
}
