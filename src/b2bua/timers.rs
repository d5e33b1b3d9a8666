//! The call timers and the relays' reports: ring timeout, the 2xx
//! retransmission and the missing ACK, carrying out a REFER, a transfer
//! target that does not answer, and media that stopped.

use crate::media::relay::{MediaEvent, Side};
use crate::sip::message::build;
use crate::sip::transaction::TimerConfig;
use crate::store::cdrs::Disposition;

use super::call::{Kind, Phase};
use super::cdr::Ending;
use super::transfer::TransferState;
use super::{Action, CallId, CallTimer, Calls, Cx};

impl Calls {
    /// A call timer fired.
    pub(super) fn on_timer(&mut self, id: CallId, timer: CallTimer, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match timer {
            CallTimer::Ring => {
                if !matches!(call.phase, Phase::Ringing(_)) {
                    return;
                }
                let r = build::reply(&call.a.invite, 480, &call.a.tag);
                tracing::info!(call = %id, "nobody answered in time");
                cx.respond(&call.a.tx, r);
                self.cancel_forks(id, cx);
                self.end_call(id, Ending::new(Disposition::NoAnswer, "ring timeout"), cx);
            }
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
