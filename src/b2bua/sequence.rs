//! Which phones ring for a call, and in what order: every phone at once
//! (a call between phones, a call from Twilio without a ring plan), the
//! phones a routing rule chose, or steps rung one after another (A for
//! 15 s, then B for 20 s).
//!
//! A call from Twilio carries its ring plan in `X-Homeline-Ring` (written
//! by the voice webhook from the routing rules' decision, read with
//! [`crate::rules::engine::parse_ring_header`]); phones in Do-Not-Disturb
//! are taken out of every step before the call starts, and a step left
//! empty is dropped. The caller's INVITE stays unanswered throughout (its
//! 180 is sent again as each step starts; a 183 with early media holds as
//! sent): when a step's time is up its forks are
//! CANCELled and the next step's INVITEs go out; a 2xx from any fork ends
//! the sequence as it ends any ringing; a step whose every fork failed
//! (busy, declined, unreachable) moves on at once. After the last step the
//! call ends as any unanswered call does: 480, which Twilio's `<Dial
//! action>` turns into voicemail.

use std::collections::VecDeque;
use std::time::Duration;

use crate::sip::message::{build, Request};
use crate::store::cdrs::Disposition;

use super::call::Phase;
use super::cdr::Ending;
use super::forking;
use super::invite::OfferMedia;
use super::{CallId, CallTimer, Calls, Cx, DeviceId, Owner};

pub use crate::rules::engine::{RING_HEADER, RULE_HEADER};

/// One step of ringing: these phones at once, for `secs` (`None`: the
/// configured ring timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    pub(super) devices: Vec<DeviceId>,
    pub(super) secs: Option<u32>,
}

impl Step {
    /// Every one of `devices` at once, for the ring timeout.
    pub(super) fn all(devices: Vec<DeviceId>) -> Step {
        Step {
            devices,
            secs: None,
        }
    }

    /// How long the step rings.
    pub(super) fn duration(&self, ring_timeout: Duration) -> Duration {
        self.secs
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(ring_timeout)
    }
}

/// The steps still to come of a ringing call, and what their INVITEs need.
pub(super) struct Sequence {
    pub(super) rest: VecDeque<Step>,
    pub(super) media: OfferMedia,
    pub(super) display: Option<String>,
}

/// A header's value, its name compared without regard to case (custom
/// headers keep the spelling the sender used).
pub(super) fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str().trim())
}

/// The ring plan a call from Twilio asks for, or `None` (ring every phone
/// of the number) when it has none or it cannot be read; a bad one is
/// logged, never fatal.
pub(super) fn requested_steps(req: &Request) -> Option<Vec<Step>> {
    let value = header(req, RING_HEADER)?;
    match crate::rules::engine::parse_ring_header(value) {
        Ok(steps) if !steps.is_empty() => Some(
            steps
                .into_iter()
                .map(|s| Step {
                    devices: s.devices,
                    secs: s.secs,
                })
                .collect(),
        ),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(header = %value, error = %e, "unreadable X-Homeline-Ring: ringing every phone");
            None
        }
    }
}

/// The routing rule a call from Twilio names (for its record).
pub(super) fn rule_of(req: &Request) -> Option<String> {
    let value = header(req, RULE_HEADER)?;
    let ok = !value.is_empty()
        && value.len() <= 20
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| value.to_string())
}

/// Takes the phones `skip` says no to out of every step and drops the
/// steps left empty (and repeats of a phone within a step).
pub(super) fn without(steps: Vec<Step>, mut skip: impl FnMut(DeviceId) -> bool) -> Vec<Step> {
    steps
        .into_iter()
        .filter_map(|mut s| {
            let mut seen = std::collections::BTreeSet::new();
            s.devices.retain(|d| !skip(*d) && seen.insert(*d));
            (!s.devices.is_empty()).then_some(s)
        })
        .collect()
}

impl Calls {
    /// Arms the timer that ends `step`: the next step's turn, or (the last
    /// step) the ring timeout.
    pub(super) fn arm_step(&self, id: CallId, step: &Step, more: bool, cx: &mut Cx<'_>) {
        let after = step.duration(self.config.ring_timeout);
        let timer = if more {
            CallTimer::NextStep
        } else {
            CallTimer::Ring
        };
        cx.arm(id, timer, after);
    }

    /// The current step is over (its time is up, or every fork of it
    /// failed): its forks are stopped and the next step that has a
    /// registered phone rings. False when no step is left.
    pub(super) fn next_step(&mut self, id: CallId, cx: &mut Cx<'_>) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Phase::Ringing(ringing) = &mut call.phase else {
            return false;
        };
        let Some(mut sequence) = ringing.sequence.take() else {
            return false;
        };
        let cancels = forking::stop(ringing.forks.iter_mut());
        super::answer::send_cancels(cancels, cx);
        let from = call.from.clone();
        while let Some(step) = sequence.rest.pop_front() {
            let forks = self.phone_forks(
                &step.devices,
                &sequence.media,
                &from,
                sequence.display.as_deref(),
                cx,
            );
            if forks.is_empty() {
                tracing::info!(call = %id, devices = ?step.devices, "no phone of this step is registered: skipped");
                continue;
            }
            let more = !sequence.rest.is_empty();
            let Some(call) = self.calls.get_mut(&id) else {
                return false;
            };
            let Phase::Ringing(ringing) = &mut call.phase else {
                return false;
            };
            tracing::info!(call = %id, devices = ?step.devices, forks = forks.len(), "ringing the next step");
            let first = ringing.forks.len();
            for (k, fork) in forks.into_iter().enumerate() {
                cx.request(fork.invite.clone(), fork.route, Owner::Fork(id, first + k));
                ringing.forks.push(fork);
            }
            if more {
                ringing.sequence = Some(sequence);
            }
            let keep_alive =
                ringing.sent_ringing && call.a.early_answer.is_none() && call.a.reliable.is_none();
            self.arm_step(id, &step, more, cx);
            if keep_alive {
                self.ring_again(id, cx);
            }
            return true;
        }
        false
    }

    /// The caller's 180 once more as a step starts, so its side (and any
    /// proxy's timer C, RFC 3261 §16.8) sees the call still progressing
    /// through a long sequence. Only for a plain 180 (a 183's early media
    /// or a reliable provisional stands as sent).
    fn ring_again(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let contact = cx.contact(call.a.route);
        let mut r = build::reply(&call.a.invite, 180, &call.a.tag);
        r.headers.push(
            crate::sip::message::HeaderName::Contact,
            format!("<{contact}>"),
        );
        cx.respond(&call.a.tx, r);
    }

    /// [`CallTimer::NextStep`]: the step rang long enough.
    pub(super) fn on_step_timeout(&mut self, id: CallId, cx: &mut Cx<'_>) {
        if !self
            .calls
            .get(&id)
            .is_some_and(|c| matches!(c.phase, Phase::Ringing(_)))
        {
            return;
        }
        if !self.next_step(id, cx) {
            self.nobody_answered(id, cx);
        }
    }

    /// The ringing is over without an answer: the caller hears 480.
    pub(super) fn nobody_answered(&mut self, id: CallId, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let r = build::reply(&call.a.invite, 480, &call.a.tag);
        tracing::info!(call = %id, "nobody answered in time");
        cx.respond(&call.a.tx, r);
        self.cancel_forks(id, cx);
        self.end_call(id, Ending::new(Disposition::NoAnswer, "ring timeout"), cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i64]) -> Vec<DeviceId> {
        v.iter().map(|d| DeviceId(*d)).collect()
    }

    #[test]
    fn phones_in_dnd_leave_their_steps_and_empty_steps_go() {
        let steps = vec![
            Step {
                devices: ids(&[1, 2, 1]),
                secs: Some(15),
            },
            Step {
                devices: ids(&[3]),
                secs: Some(20),
            },
            Step::all(ids(&[2, 4])),
        ];
        let left = without(steps, |d| d == DeviceId(3) || d == DeviceId(2));
        assert_eq!(
            left,
            vec![
                Step {
                    devices: ids(&[1]),
                    secs: Some(15)
                },
                Step::all(ids(&[4]))
            ]
        );
        assert!(without(vec![Step::all(ids(&[5]))], |_| true).is_empty());
    }

    #[test]
    fn a_step_without_secs_rings_for_the_ring_timeout() {
        let t = Duration::from_secs(30);
        assert_eq!(Step::all(vec![]).duration(t), t);
        let s = Step {
            devices: vec![],
            secs: Some(15),
        };
        assert_eq!(s.duration(t), Duration::from_secs(15));
    }
}
