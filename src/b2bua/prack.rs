//! Reliable provisional responses (RFC 3262, `100rel`/PRACK), on both legs.
//!
//! Towards the callee (we are its UAC): a 1xx carrying `Require: 100rel`
//! and an `RSeq` is acknowledged with a PRACK in that fork's early dialog,
//! `RAck` naming it; a retransmission (or one out of sequence, §4) is
//! dropped without being looked at again.
//!
//! Towards the caller (we are its UAS), only when its INVITE *requires*
//! 100rel (a mere `Supported` keeps the plain provisionals every phone
//! understands): every 18x goes out with `Require: 100rel` and a fresh
//! `RSeq`, one at a time (§3: a later one waits for the PRACK of the one
//! before); it is resent at T1, doubling, until its PRACK, and at 64·T1
//! without one the caller gets 500 and the call ends. A 2xx waits for the
//! PRACK of an unacknowledged provisional that carried SDP (§3).

use std::time::Duration;

use crate::clock::Timestamp;
use crate::media::relay::Side;
use crate::sip::dialog::Dialog;
use crate::sip::message::{build, CSeq, HeaderName, Headers, Method, Request, Response};
use crate::sip::transaction::TimerConfig;
use crate::store::cdrs::Disposition;

use super::call::Phase;
use super::cdr::Ending;
use super::forking::Fork;
use super::{Action, CallId, CallTimer, Calls, Cx};

/// The option tag.
pub(super) const TAG: &str = "100rel";

/// Whether a message's `Require` names 100rel.
pub(super) fn required(headers: &Headers) -> bool {
    headers
        .values(&HeaderName::Require)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(TAG))
}

/// A provisional response from a fork, as far as reliability goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provisional {
    /// An ordinary 1xx.
    Unreliable,
    /// A new reliable 1xx with this RSeq: PRACK it, then use it.
    Fresh(u32),
    /// A retransmission, or one out of sequence: ignore it (§4).
    Discard,
}

/// What `resp` (a 101–199 to `fork`'s INVITE) is.
pub(super) fn classify(fork: &Fork, resp: &Response) -> Provisional {
    if !required(&resp.headers) {
        return Provisional::Unreliable;
    }
    let Some(rseq) = resp
        .headers
        .get(&HeaderName::RSeq)
        .and_then(|v| v.trim().parse::<u32>().ok())
    else {
        return Provisional::Unreliable; // no RSeq: nothing to acknowledge
    };
    let same_dialog = fork
        .early_dialog
        .as_ref()
        .is_none_or(|d| to_tag(resp).is_some_and(|t| t == d.id.remote_tag));
    match fork.rseq {
        Some(last) if same_dialog && rseq != last.wrapping_add(1) => Provisional::Discard,
        _ => Provisional::Fresh(rseq),
    }
}

fn to_tag(resp: &Response) -> Option<String> {
    let to = resp.headers.get(&HeaderName::To)?;
    crate::sip::message::NameAddr::parse(to)?
        .params
        .get("tag")
        .flatten()
        .map(str::to_string)
}

fn cseq_of(headers: &Headers) -> u32 {
    headers
        .get(&HeaderName::CSeq)
        .and_then(CSeq::parse)
        .map(|c| c.seq)
        .unwrap_or(1)
}

/// The PRACK for `fork`'s reliable provisional `resp` numbered `rseq`, in
/// the fork's early dialog (formed from `resp` if it is the first).
pub(super) fn prack(
    fork: &mut Fork,
    resp: &Response,
    rseq: u32,
    cx: &mut Cx<'_>,
) -> Option<Request> {
    let reuse = fork
        .early_dialog
        .as_ref()
        .is_some_and(|d| to_tag(resp).is_some_and(|t| t == d.id.remote_tag));
    if !reuse {
        let local_seq = fork.early_dialog.as_ref().map(|d| d.local_seq);
        let mut d = Dialog::uac(&fork.invite, resp).ok()?;
        if let Some(seq) = local_seq {
            d.local_seq = d.local_seq.max(seq);
        }
        fork.early_dialog = Some(d);
    }
    let via = cx.via(fork.route);
    let contact = cx.contact(fork.route);
    let dialog = fork.early_dialog.as_mut()?;
    let mut req = dialog.request(Method::Prack, &via, &contact, None);
    let invite_seq = cseq_of(&fork.invite.headers);
    req.headers
        .push(HeaderName::RAck, format!("{rseq} {invite_seq} INVITE"));
    req.headers.push(HeaderName::UserAgent, build::product());
    fork.rseq = Some(rseq);
    Some(req)
}

/// Handles the reliability of a fork's provisional `resp`: a fresh
/// reliable one gets its PRACK. False when it is to be ignored (a
/// retransmission, or out of sequence).
pub(super) fn acknowledge(fork: &mut Fork, resp: &Response, cx: &mut Cx<'_>) -> bool {
    match classify(fork, resp) {
        Provisional::Discard => false,
        Provisional::Fresh(rseq) => {
            if let Some(p) = prack(fork, resp, rseq, cx) {
                cx.request(p, fork.route, super::Owner::Nobody);
            }
            true
        }
        Provisional::Unreliable => true,
    }
}

/// The last CSeq a fork used in its early dialog (its PRACKs), which the
/// answered dialog's requests must go past; 0 without one.
pub(super) fn early_seq(fork: &Fork) -> u32 {
    fork.early_dialog.as_ref().map_or(0, |d| d.local_seq)
}

/// The caller's side: reliable provisional responses we send it.
#[derive(Debug)]
pub(super) struct ReliableUas {
    next_rseq: u32,
    unacked: Option<Unacked>,
    /// The next provisional, waiting for the PRACK of the one before.
    queued: Option<Response>,
    /// The 2xx is built (in [`Phase::AwaitingAck`]) but waits for the
    /// PRACK of a provisional that carried SDP.
    held_ok: bool,
}

#[derive(Debug)]
struct Unacked {
    response: Response,
    rseq: u32,
    every: Duration,
    since: Timestamp,
    sdp: bool,
}

impl ReliableUas {
    /// Fresh state; `random` picks the first RSeq (1 to 2³¹−1, §3).
    pub(super) fn new(random: u64) -> ReliableUas {
        ReliableUas {
            next_rseq: 1 + (random % 0x4000_0000) as u32,
            unacked: None,
            queued: None,
            held_ok: false,
        }
    }

    /// Whether our 2xx is built but not sent (it waits for a PRACK).
    pub(super) fn holds_ok(&self) -> bool {
        self.held_ok
    }

    /// The final 2xx is ready: whether it must wait for a PRACK (an
    /// unacknowledged provisional carried SDP). Nothing provisional is
    /// sent after it either way.
    pub(super) fn hold_final(&mut self) -> bool {
        self.queued = None;
        let hold = self.unacked.as_ref().is_some_and(|u| u.sdp);
        if hold {
            self.held_ok = true;
        } else {
            self.unacked = None;
        }
        hold
    }
}

/// A `RAck` value: response number, CSeq number, method.
fn parse_rack(v: &str) -> Option<(u32, u32, &str)> {
    let mut parts = v.split_ascii_whitespace();
    let rseq = parts.next()?.parse().ok()?;
    let cseq = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    Some((rseq, cseq, method))
}

impl Calls {
    /// Sends a provisional response to the caller: as it is, or reliably
    /// when the caller required 100rel.
    pub(super) fn provisional_to_a(&mut self, id: CallId, mut resp: Response, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(rel) = call.a.reliable.as_mut() else {
            return cx.respond(&call.a.tx, resp);
        };
        if rel.unacked.is_some() {
            // §3: one at a time. The latest waits, but one with SDP is not
            // displaced by one without.
            let keep = rel.queued.as_ref().is_some_and(|q| !q.body.is_empty());
            if !keep || !resp.body.is_empty() {
                rel.queued = Some(resp);
            }
            return;
        }
        let rseq = rel.next_rseq;
        rel.next_rseq = rel.next_rseq.wrapping_add(1);
        resp.headers.push(HeaderName::Require, TAG);
        resp.headers.push(HeaderName::RSeq, rseq.to_string());
        rel.unacked = Some(Unacked {
            response: resp.clone(),
            rseq,
            every: TimerConfig::UDP.t1,
            since: cx.now,
            sdp: !resp.body.is_empty(),
        });
        // The early dialog the PRACK arrives in.
        if call.a.dialog.is_none() {
            if let Ok(d) = Dialog::uas(&call.a.invite, &resp) {
                self.dialogs.insert(d.id.clone(), id, Side::A);
                call.a.dialog = Some(d);
            }
        }
        let first = if call.a.route.protocol.reliable() {
            TimerConfig::UDP.timeout()
        } else {
            TimerConfig::UDP.t1
        };
        cx.respond(&call.a.tx, resp);
        cx.arm(id, CallTimer::Prack, first);
    }

    /// A PRACK from the caller: 200 if it acknowledges the provisional we
    /// wait on (then the next one, or the held 2xx, goes out), else 481
    /// (§3).
    pub(super) fn on_prack(
        &mut self,
        req: &Request,
        id: CallId,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        let Some(call) = self.calls.get_mut(&id) else {
            return crate::sip::dialog::no_such_dialog(req, tag);
        };
        let invite_seq = cseq_of(&call.a.invite.headers);
        let rack = req.headers.get(&HeaderName::RAck).and_then(parse_rack);
        let Some(rel) = call.a.reliable.as_mut() else {
            return build::reply_with_warning(req, 481, tag, "no reliable provisional was sent");
        };
        let matches = match (&rel.unacked, rack) {
            (Some(u), Some((rseq, cseq, method))) => {
                u.rseq == rseq && cseq == invite_seq && method.eq_ignore_ascii_case("INVITE")
            }
            _ => false,
        };
        if !matches {
            return build::reply_with_warning(
                req,
                481,
                tag,
                "the RAck matches no unacknowledged provisional response",
            );
        }
        rel.unacked = None;
        let next = rel.queued.take();
        let release = std::mem::take(&mut rel.held_ok);
        if let Some(next) = next {
            self.provisional_to_a(id, next, cx);
        } else if release {
            if let Phase::AwaitingAck(w) = &call.phase {
                let ok = w.ok.clone();
                let route = call.a.route;
                let tx = call.a.tx.clone();
                super::answer::send_ok(id, &tx, route, ok, cx);
            }
        }
        let mut ok = build::reply(req, 200, tag);
        ok.headers.push(HeaderName::UserAgent, build::product());
        ok
    }

    /// A BYE from the caller in its early dialog (RFC 3261 §15: a caller
    /// may end an early dialog so): like a CANCEL, the INVITE gets 487 and
    /// the forks stop; the BYE gets 200.
    pub(super) fn on_early_bye(
        &mut self,
        req: &Request,
        id: CallId,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        if let Some(call) = self.calls.get(&id) {
            let r = build::reply(&call.a.invite, 487, &call.a.tag);
            cx.respond(&call.a.tx, r);
            self.cancel_forks(id, cx);
            self.end_call(
                id,
                Ending::new(Disposition::Canceled, "caller hung up before an answer"),
                cx,
            );
        }
        build::reply(req, 200, tag)
    }

    /// [`CallTimer::Prack`]: resend the provisional, or give up at 64·T1.
    pub(super) fn on_prack_timer(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let reliable_transport = call.a.route.protocol.reliable();
        let Some(u) = call.a.reliable.as_mut().and_then(|r| r.unacked.as_mut()) else {
            return; // acknowledged
        };
        let waited = cx.now.since(u.since);
        let timeout = TimerConfig::UDP.timeout();
        if reliable_transport || waited >= timeout {
            let why = "no PRACK for a reliable provisional response";
            tracing::info!(call = %id, "caller never PRACKed: the call is refused");
            let r = build::reply_with_warning(&call.a.invite, 500, &call.a.tag, why);
            let tx = call.a.tx.clone();
            let answered = call.answered();
            cx.respond(&tx, r);
            if answered {
                self.bye_side(id, Side::B, cx);
            } else {
                self.cancel_forks(id, cx);
            }
            return self.end_call(id, Ending::new(Disposition::Failed, why), cx);
        }
        // RFC 3262 §3: the interval doubles (no T2 cap), the last wait
        // ends exactly at 64·T1.
        u.every *= 2;
        let every = u.every.min(timeout - waited);
        cx.out.push(Action::Retransmit {
            tx: call.a.tx.clone(),
            response: u.response.clone(),
            route: call.a.route,
        });
        cx.arm(id, CallTimer::Prack, every);
    }
}
