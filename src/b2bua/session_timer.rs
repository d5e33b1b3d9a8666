//! Session timers (RFC 4028): each leg of a call agrees on an interval
//! within which the session must be refreshed (a re-INVITE or UPDATE), and
//! on which side does it. A leg whose refresher goes silent is torn down,
//! so a peer that vanished without a BYE does not leave a call up for ever;
//! a leg where Homeline is the refresher is refreshed at half the interval,
//! so a long or held call towards Twilio (which uses timers) never drops.
//!
//! Pure negotiation: what to put in an INVITE, what a request or a 2xx
//! settles, and when to refresh or give up. The call layer keeps one
//! [`Session`] per leg and arms the timers.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::media::relay::Side;
use crate::sip::message::{build, CSeq, HeaderName, Headers, Request, Response};
use crate::store::cdrs::Disposition;

use super::call::Call;
use super::cdr::Ending;
use super::{CallId, CallTimer, Calls, Cx};

/// The interval Homeline asks for in its own INVITEs (RFC 4028 §4
/// recommends 1800 s).
pub(super) const SESSION_EXPIRES: Duration = Duration::from_secs(1800);

/// The smallest interval Homeline accepts (RFC 4028 §4: never below 90 s).
pub(super) const MIN_SE: Duration = Duration::from_secs(90);

/// The minimum in force: [`MIN_SE`]; builds with `test-hooks` take
/// `HOMELINE_TEST_SESSION_MIN_SE_SECS` instead (read once), so a real-peer
/// test sees Homeline's own refreshes within seconds.
pub(super) fn minimum() -> Duration {
    #[cfg(feature = "test-hooks")]
    {
        static HOOK: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
        let hook = HOOK.get_or_init(|| {
            std::env::var("HOMELINE_TEST_SESSION_MIN_SE_SECS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|s| *s >= 2)
                .map(Duration::from_secs)
        });
        if let Some(min) = hook {
            return *min;
        }
    }
    MIN_SE
}

/// Who refreshes a leg's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    /// Homeline sends the refreshes.
    Us,
    /// The peer does; Homeline watches for them.
    Peer,
}

/// A leg's running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Session {
    /// The agreed interval.
    pub(super) interval: Duration,
    /// Who refreshes.
    pub(super) refresher: Refresher,
    /// When the session counts as expired if no refresh came by then.
    pub(super) deadline: Timestamp,
}

impl Session {
    /// A session (re)started at `now`: as refresher we give up only at the
    /// full interval (our refresh at half of it failed); watching the peer,
    /// we end it a little before, at `interval - min(32 s, interval/3)`
    /// (§10), so our BYE beats the peer's own teardown.
    pub(super) fn start(interval: Duration, refresher: Refresher, now: Timestamp) -> Session {
        let until = match refresher {
            Refresher::Us => interval,
            Refresher::Peer => interval - (interval / 3).min(Duration::from_secs(32)),
        };
        Session {
            interval,
            refresher,
            deadline: now.plus(until),
        }
    }

    /// When Homeline sends its refresh, if it is the refresher (§7.4: half
    /// the interval).
    pub(super) fn refresh_after(&self) -> Option<Duration> {
        (self.refresher == Refresher::Us).then_some(self.interval / 2)
    }
}

/// A `Session-Expires` value: its seconds and its `refresher` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionExpires {
    pub(super) interval: Duration,
    /// `Some(true)` for `refresher=uac`, `Some(false)` for `uas`.
    pub(super) uac_refreshes: Option<bool>,
}

/// The `Session-Expires` of a message, if it has a readable one.
pub(super) fn session_expires(h: &Headers) -> Option<SessionExpires> {
    let value = h.get(&HeaderName::SessionExpires)?;
    let mut parts = value.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    let mut uac_refreshes = None;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("refresher") {
                match v.trim().to_ascii_lowercase().as_str() {
                    "uac" => uac_refreshes = Some(true),
                    "uas" => uac_refreshes = Some(false),
                    _ => {}
                }
            }
        }
    }
    Some(SessionExpires {
        interval: Duration::from_secs(secs),
        uac_refreshes,
    })
}

/// The `Min-SE` of a message, in seconds.
pub(super) fn min_se(h: &Headers) -> Option<Duration> {
    let v = h.get(&HeaderName::MinSe)?;
    let secs: u64 = v.split(';').next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Whether a message lists `tag` in `Supported` (or `Require`).
fn lists(h: &Headers, name: &HeaderName, tag: &str) -> bool {
    h.values(name).iter().any(|t| t.eq_ignore_ascii_case(tag))
}

/// Whether the peer said it implements session timers.
pub(super) fn supports_timer(h: &Headers) -> bool {
    lists(h, &HeaderName::Supported, "timer") || lists(h, &HeaderName::Require, "timer")
}

/// Adds `Supported` with Homeline's option tags, unless already there.
pub(super) fn add_supported(h: &mut Headers) {
    if h.get(&HeaderName::Supported).is_none() {
        h.push(HeaderName::Supported, build::SUPPORTED.join(", "));
    }
}

/// Asks for a session timer in one of our requests (a new INVITE, or a
/// refresh): `Session-Expires` (with `refresher=uac` when we mean to
/// refresh it ourselves), `Min-SE`, `Supported: timer`.
pub(super) fn ask(req: &mut Request, interval: Duration, we_refresh: bool) {
    let secs = interval.as_secs();
    let value = if we_refresh {
        format!("{secs};refresher=uac")
    } else {
        secs.to_string()
    };
    req.headers.set(HeaderName::SessionExpires, value);
    req.headers
        .set(HeaderName::MinSe, minimum().as_secs().to_string());
    add_supported(&mut req.headers);
}

/// §9: a request whose interval is below our minimum, from a peer that
/// implements timers, gets 422 naming our minimum. (Without `Supported:
/// timer` it cannot understand a 422: [`answer`] raises the interval.)
pub(super) fn refuse_too_small(req: &Request, tag: &str) -> Option<Response> {
    let asked = session_expires(&req.headers)?;
    if asked.interval >= minimum() || !supports_timer(&req.headers) {
        return None;
    }
    let mut r = build::reply(req, 422, tag);
    r.headers
        .push(HeaderName::MinSe, minimum().as_secs().to_string());
    Some(r)
}

/// §9, as the UAS of `req` (an INVITE, re-INVITE or UPDATE): the session
/// its 2xx `ok` settles, with the headers saying so added to `ok`. A
/// request without `Session-Expires` leaves the leg without a timer (the
/// UAS "MAY" add one; Homeline leaves refreshing to peers that ask).
pub(super) fn answer(req: &Request, ok: &mut Response, now: Timestamp) -> Option<Session> {
    add_supported(&mut ok.headers);
    let asked = session_expires(&req.headers)?;
    let floor = min_se(&req.headers).unwrap_or(minimum()).max(minimum());
    let interval = asked.interval.max(floor);
    let supports = supports_timer(&req.headers);
    // The peer (the request's UAC) refreshes if it said so, or if it can
    // and left the choice to us; otherwise we do.
    let uac_refreshes = match asked.uac_refreshes {
        Some(uac) => uac && supports,
        None => supports,
    };
    let param = if uac_refreshes { "uac" } else { "uas" };
    ok.headers.set(
        HeaderName::SessionExpires,
        format!("{};refresher={param}", interval.as_secs()),
    );
    if uac_refreshes {
        ok.headers.push(HeaderName::Require, "timer");
    }
    let refresher = if uac_refreshes {
        Refresher::Peer
    } else {
        Refresher::Us
    };
    Some(Session::start(interval, refresher, now))
}

/// §7.2, as the UAC: the session a 2xx to our INVITE settles (none when it
/// has no `Session-Expires`: the UAS does not do timers).
pub(super) fn settled_by(resp: &Response, now: Timestamp) -> Option<Session> {
    let got = session_expires(&resp.headers)?;
    let interval = got.interval.max(minimum());
    // The UAS must name the refresher; if it did not, refreshing
    // ourselves keeps the session alive whatever it meant.
    let refresher = match got.uac_refreshes {
        Some(false) => Refresher::Peer,
        _ => Refresher::Us,
    };
    Some(Session::start(interval, refresher, now))
}

/// §7.3: the interval to ask for again after a 422 to a request that asked
/// for `asked`; `None` if the 422 gives no larger usable minimum (no
/// retry, so two peers cannot loop).
pub(super) fn after_422(resp: &Response, asked: Duration) -> Option<Duration> {
    let wanted = min_se(&resp.headers)?;
    (wanted > asked && wanted <= Duration::from_secs(86_400)).then_some(wanted)
}

/// §7.3: our INVITE `sent` again after its 422, asking for the peer's
/// minimum, with the next CSeq (the caller gives it a fresh Via); `None`
/// when the 422 allows no retry.
pub(super) fn retry_for_422(sent: &Request, resp: &Response) -> Option<Request> {
    let bigger = after_422(resp, asked_in(sent))?;
    let mut again = sent.clone();
    ask(&mut again, bigger, asks_to_refresh(sent));
    let cseq = again.headers.get(&HeaderName::CSeq).and_then(CSeq::parse)?;
    again.headers.set(
        HeaderName::CSeq,
        format!("{} {}", cseq.seq + 1, again.method),
    );
    Some(again)
}

/// Whether a request of ours said we refresh (`refresher=uac`).
fn asks_to_refresh(req: &Request) -> bool {
    session_expires(&req.headers).and_then(|s| s.uac_refreshes) == Some(true)
}

/// The interval a request of ours asked for.
pub(super) fn asked_in(req: &Request) -> Duration {
    session_expires(&req.headers)
        .map(|s| s.interval)
        .unwrap_or(SESSION_EXPIRES)
}

/// §9 for a refresh (re-INVITE or UPDATE) from the peer: like [`answer`];
/// a refresh without `Session-Expires` keeps the leg's running session
/// (answered as if it had asked for it again, so a phone's hold re-INVITE
/// does not switch off the timers Twilio relies on). Returns the session
/// from now on.
pub(super) fn answer_refresh(
    req: &Request,
    ok: &mut Response,
    running: Option<Session>,
    now: Timestamp,
) -> Option<Session> {
    if session_expires(&req.headers).is_some() {
        return answer(req, ok, now);
    }
    add_supported(&mut ok.headers);
    let running = running?;
    // The peer keeps refreshing only if it can (it says it does timers).
    let peer = running.refresher == Refresher::Peer && supports_timer(&req.headers);
    let param = if peer { "uac" } else { "uas" };
    ok.headers.set(
        HeaderName::SessionExpires,
        format!("{};refresher={param}", running.interval.as_secs()),
    );
    if peer {
        ok.headers.push(HeaderName::Require, "timer");
    }
    let refresher = if peer { Refresher::Peer } else { Refresher::Us };
    Some(Session::start(running.interval, refresher, now))
}

/// The call was answered: the caller's leg (Homeline its UAS) settles its
/// session from the caller's INVITE, saying so in `ok`; the callee's leg
/// (Homeline its UAC) from the callee's 2xx. Each leg also remembers the
/// SDP Homeline sent it, which a refresh offers again unchanged.
pub(super) fn answered(
    call: &mut Call,
    b_invite: &Request,
    b_ok: &Response,
    ok: &mut Response,
    now: Timestamp,
) {
    let a = &mut call.legs[Side::A.index()];
    a.session = answer(&call.a.invite, ok, now);
    a.sdp = ok.body.clone();
    let b = &mut call.legs[Side::B.index()];
    b.session = settled_by(b_ok, now);
    b.sdp = b_invite.body.clone();
}

impl Calls {
    /// Arms the session timers of both legs of a call.
    pub(super) fn arm_sessions(&mut self, id: CallId, cx: &mut Cx<'_>) {
        for side in [Side::A, Side::B] {
            self.arm_session(id, side, cx);
        }
    }

    /// Arms one leg's refresh (when we refresh) and expiry, as its
    /// session stands (a timer left from an earlier session is re-armed,
    /// or finds nothing to do when it fires).
    pub(super) fn arm_session(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        let Some(session) = self
            .calls
            .get(&id)
            .and_then(|c| c.legs[side.index()].session)
        else {
            return;
        };
        cx.arm(
            id,
            CallTimer::SessionExpiry(side),
            session.deadline.since(cx.now),
        );
        if let Some(after) = session.refresh_after() {
            cx.arm(id, CallTimer::SessionRefresh(side), after);
        }
        tracing::debug!(call = %id, ?side, interval = session.interval.as_secs(), refresher = ?session.refresher, "session timer set");
    }

    /// A leg's session (re)starts (or stops, with `None`).
    pub(super) fn set_session(
        &mut self,
        id: CallId,
        side: Side,
        session: Option<Session>,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.legs[side.index()].session = session;
        self.arm_session(id, side, cx);
    }

    /// [`CallTimer::SessionRefresh`]: our refresh is due.
    pub(super) fn on_refresh_due(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        let due = self
            .calls
            .get(&id)
            .and_then(|c| c.legs[side.index()].session)
            .is_some_and(|s| s.refresher == Refresher::Us);
        if due {
            self.send_refresh(id, side, cx);
        }
    }

    /// [`CallTimer::SessionExpiry`]: unless refreshed since, the leg's
    /// session is over: BYE on both legs and the record (§10).
    pub(super) fn on_session_expiry(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(session) = call.legs[side.index()].session else {
            return;
        };
        if cx.now < session.deadline {
            return; // refreshed since: its own expiry is armed
        }
        let who = match (side, call.kind.twilio_on(side)) {
            (_, true) => "Twilio",
            (Side::A, false) => "the caller",
            (Side::B, false) => "the callee",
        };
        tracing::info!(call = %id, ?side, "session expired without a refresh: hanging up");
        self.hang_up_both(
            id,
            Ending::new(
                Disposition::Answered,
                format!("session timer expired: no refresh with {who}"),
            ),
            cx,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Method;

    fn req(extra: &[(HeaderName, &str)]) -> Request {
        let mut h = Headers::default();
        h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx");
        h.push(HeaderName::From, "<sip:a@x>;tag=1");
        h.push(HeaderName::To, "<sip:b@x>");
        h.push(HeaderName::CallId, "c");
        h.push(HeaderName::CSeq, "1 INVITE");
        for (n, v) in extra {
            h.push(n.clone(), *v);
        }
        Request {
            method: Method::Invite,
            uri: "sip:b@x".into(),
            headers: h,
            body: bytes::Bytes::new(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000)
    }

    #[test]
    fn rfc4028_9_a_small_interval_from_a_timer_peer_gets_422_with_our_minimum() {
        let r = req(&[
            (HeaderName::SessionExpires, "30"),
            (HeaderName::Supported, "timer"),
        ]);
        let refused = refuse_too_small(&r, "t").expect("422");
        assert_eq!(refused.status, 422);
        assert_eq!(refused.headers.get(&HeaderName::MinSe), Some("90"));
        // A peer without timer support cannot read a 422: raised instead.
        let r = req(&[(HeaderName::SessionExpires, "30")]);
        assert!(refuse_too_small(&r, "t").is_none());
        let mut ok = Response::to(&r, 200, "OK", "t");
        let s = answer(&r, &mut ok, now()).expect("session");
        assert_eq!(s.interval, MIN_SE);
        assert_eq!(s.refresher, Refresher::Us, "it cannot refresh");
        assert_eq!(
            ok.headers.get(&HeaderName::SessionExpires),
            Some("90;refresher=uas")
        );
        assert!(ok.headers.get(&HeaderName::Require).is_none());
    }

    #[test]
    fn rfc4028_9_the_uac_refreshes_when_it_asks_or_leaves_the_choice() {
        let r = req(&[
            (HeaderName::SessionExpires, "1800"),
            (HeaderName::Supported, "timer, 100rel"),
            (HeaderName::MinSe, "120"),
        ]);
        let mut ok = Response::to(&r, 200, "OK", "t");
        let s = answer(&r, &mut ok, now()).expect("session");
        assert_eq!(s.refresher, Refresher::Peer);
        assert_eq!(s.refresh_after(), None);
        assert_eq!(
            ok.headers.get(&HeaderName::SessionExpires),
            Some("1800;refresher=uac")
        );
        assert_eq!(ok.headers.get(&HeaderName::Require), Some("timer"));
        // Watching: BYE at 1800 - 32 s.
        assert_eq!(s.deadline, now().plus(Duration::from_secs(1768)));
        // refresher=uas: we refresh at half the interval.
        let r = req(&[
            (HeaderName::SessionExpires, "x;bad"),
            (HeaderName::Supported, "timer"),
        ]);
        let mut ok = Response::to(&r, 200, "OK", "t");
        assert!(answer(&r, &mut ok, now()).is_none(), "unreadable: no timer");
        let r = req(&[
            (HeaderName::SessionExpires, "600;refresher=uas"),
            (HeaderName::Supported, "timer"),
        ]);
        let mut ok = Response::to(&r, 200, "OK", "t");
        let s = answer(&r, &mut ok, now()).expect("session");
        assert_eq!(s.refresh_after(), Some(Duration::from_secs(300)));
        assert_eq!(s.deadline, now().plus(Duration::from_secs(600)));
    }

    #[test]
    fn rfc4028_7_2_the_2xx_names_who_refreshes_and_422_raises_the_interval() {
        let r = req(&[]);
        let mut ok = Response::to(&r, 200, "OK", "t");
        assert!(settled_by(&ok, now()).is_none(), "no timer in the 2xx");
        ok.headers
            .push(HeaderName::SessionExpires, "900;refresher=uas");
        let s = settled_by(&ok, now()).expect("session");
        assert_eq!((s.interval.as_secs(), s.refresher), (900, Refresher::Peer));
        ok.headers.set(HeaderName::SessionExpires, "900");
        assert_eq!(
            settled_by(&ok, now()).map(|s| s.refresher),
            Some(Refresher::Us)
        );
        let mut too_small = Response::to(&r, 422, "Session Interval Too Small", "t");
        too_small.headers.push(HeaderName::MinSe, "3600");
        assert_eq!(
            after_422(&too_small, SESSION_EXPIRES),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(after_422(&too_small, Duration::from_secs(3600)), None);
        let mut ours = req(&[]);
        ask(&mut ours, SESSION_EXPIRES, true);
        assert_eq!(
            ours.headers.get(&HeaderName::SessionExpires),
            Some("1800;refresher=uac")
        );
        assert_eq!(ours.headers.get(&HeaderName::MinSe), Some("90"));
        assert!(supports_timer(&ours.headers));
        assert_eq!(asked_in(&ours), SESSION_EXPIRES);
    }
}
