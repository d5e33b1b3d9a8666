//! The call timers and the relays' reports: ring timeout, the 2xx
//! retransmission and the missing ACK (for the first answer and for
//! answers to re-INVITEs), carrying out a REFER, a transfer target that
//! does not answer, session refreshes and expiry, the retry after a
//! re-INVITE glare, and media that stopped.

use crate::media::relay::{MediaEvent, Side};
use crate::sip::transaction::TimerConfig;
use crate::store::cdrs::Disposition;

use super::call::{Kind, Phase};
use super::cdr::Ending;
use super::transfer::TransferState;
use super::{Action, CallId, CallTimer, Calls, Cx};

impl Calls {
    /// A call timer fired.
    pub(super) fn on_timer(&mut self, id: CallId, timer: CallTimer, cx: &mut Cx<'_>) {
        if self.is_feature(id) {
            return self.on_feature_timer(id, timer, cx);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match timer {
            CallTimer::Ring => {
                if matches!(call.phase, Phase::Ringing(_)) {
                    self.nobody_answered(id, cx);
                }
            }
            CallTimer::NextStep => self.on_step_timeout(id, cx),
            CallTimer::FeatureRetransmit | CallTimer::FeatureHangUp => {}
            CallTimer::Refer => {
                let Some(up) = call.up_mut() else {
                    return;
                };
                if let TransferState::Accepted(plan) =
                    std::mem::replace(&mut up.transfer, TransferState::Idle)
                {
                    self.carry_out_refer(id, plan, cx);
                }
            }
            CallTimer::TransferRing => {
                let Some(TransferState::Ringing(_)) = call.up().map(|u| &u.transfer) else {
                    return;
                };
                self.transfer_failed(id, 408, cx);
            }
            CallTimer::PickupRetransmit => self.on_pickup_retransmit(id, cx),
            CallTimer::Prack => self.on_prack_timer(id, cx),
            CallTimer::SessionRefresh(side) => self.on_refresh_due(id, side, cx),
            CallTimer::SessionExpiry(side) => self.on_session_expiry(id, side, cx),
            CallTimer::GlareRetry(side) => self.on_glare_retry(id, side, cx),
            CallTimer::ReinviteRetransmit(side) => self.resend_reinvite_answer(id, side, cx),
            CallTimer::Retransmit => {
                let Phase::AwaitingAck(waiting) = &mut call.phase else {
                    return; // ACKed
                };
                let reliable = call.a.route.protocol.reliable();
                let waited = call
                    .answered_at
                    .map(|t| cx.now.since(t))
                    .unwrap_or_default();
                let timeout = TimerConfig::UDP.timeout();
                if reliable || waited >= timeout {
                    tracing::info!(call = %id, "caller never ACKed the answer: hanging up");
                    return self.hang_up_both(
                        id,
                        Ending::new(Disposition::Failed, "no ACK from the caller"),
                        cx,
                    );
                }
                waiting.every = (waiting.every * 2).min(TimerConfig::UDP.t2);
                // The last wait ends exactly at 64·T1.
                let every = waiting.every.min(timeout - waited);
                cx.out.push(Action::Retransmit {
                    tx: call.a.tx.clone(),
                    response: waiting.ok.clone(),
                    route: call.a.route,
                });
                cx.arm(id, CallTimer::Retransmit, every);
            }
        }
    }

    /// Our 2xx to a re-INVITE once more (T1 doubling to T2), until its
    /// ACK; at 64·T1 without one the dialog is over, and so the call.
    fn resend_reinvite_answer(&mut self, id: CallId, side: Side, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(answering) = call.legs[side.index()].answering.as_mut() else {
            return; // ACKed
        };
        let waited = cx.now.since(answering.since);
        let timeout = TimerConfig::UDP.timeout();
        if answering.route.protocol.reliable() || waited >= timeout {
            tracing::info!(call = %id, ?side, "no ACK for our answer to a re-INVITE: hanging up");
            return self.hang_up_both(
                id,
                Ending::new(
                    Disposition::Answered,
                    "no ACK for the answer to a re-INVITE",
                ),
                cx,
            );
        }
        cx.out.push(Action::Retransmit {
            tx: answering.tx.clone(),
            response: answering.ok.clone(),
            route: answering.route,
        });
        answering.every = (answering.every * 2).min(TimerConfig::UDP.t2);
        let every = answering.every.min(timeout - waited);
        cx.arm(id, CallTimer::ReinviteRetransmit(side), every);
    }

    /// A relay reported something.
    pub(super) fn on_media_event(&mut self, id: CallId, event: MediaEvent, cx: &mut Cx<'_>) {
        let side = match event {
            MediaEvent::Timeout(side) => side,
            // DTMF: an RFC 4733 event for a party that takes INFO.
            MediaEvent::Dtmf {
                side,
                event,
                duration_ms,
            } => return self.on_dtmf_event(id, side, event, duration_ms, cx),
        };
        let Some(call) = self.calls.get(&id) else {
            // A relay joined into another call by an attended transfer
            // reports under its old id: the transferred party went silent.
            if let Some(&into) = self.joined.get(&id) {
                if self.calls.contains_key(&into) {
                    tracing::warn!(call = %into, "no media from a transferred party: hanging up");
                    self.hang_up_both(
                        into,
                        Ending::new(
                            Disposition::Answered,
                            "media timeout: no RTP from the transferred party",
                        ),
                        cx,
                    );
                }
            }
            return;
        };
        if !call.answered() {
            return;
        }
        if call.legs[side.index()].left {
            // The referrer hung up during a transfer: its silence is expected.
            return;
        }
        let who = match (side, call.kind) {
            (Side::A, Kind::Inbound) | (Side::B, Kind::Outbound) => "Twilio",
            _ => "the phone",
        };
        tracing::warn!(call = %id, ?side, "no media from {who}: hanging up");
        self.hang_up_both(
            id,
            Ending::new(
                Disposition::Answered,
                format!("media timeout: no RTP from {who}"),
            ),
            cx,
        );
    }
}

impl CallTimer {
    /// The timers a call arms once (for disarming them all).
    pub fn per_call() -> impl Iterator<Item = CallTimer> {
        [
            CallTimer::Ring,
            CallTimer::Retransmit,
            CallTimer::Refer,
            CallTimer::TransferRing,
            CallTimer::PickupRetransmit,
            CallTimer::Prack,
            CallTimer::NextStep,
            CallTimer::FeatureRetransmit,
            CallTimer::FeatureHangUp,
        ]
        .into_iter()
    }

    /// The timers a call arms per leg (for disarming them all).
    pub fn per_leg() -> impl Iterator<Item = CallTimer> {
        [Side::A, Side::B].into_iter().flat_map(|side| {
            [
                CallTimer::SessionRefresh(side),
                CallTimer::SessionExpiry(side),
                CallTimer::ReinviteRetransmit(side),
                CallTimer::GlareRetry(side),
            ]
        })
    }
}
