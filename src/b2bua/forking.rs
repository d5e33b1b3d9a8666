//! Forking: one INVITE per registered contact, rung in parallel. The first
//! 2xx wins; the others are CANCELled (a fork that has not answered at all
//! gets its CANCEL with its first provisional, RFC 3261 §9.1); when every
//! fork fails, the caller gets the most telling failure.

use crate::media::sdp::Description;
use crate::sip::dialog::Dialog;
use crate::sip::message::{build, Request};
use crate::store::cdrs::Disposition;

use super::{DeviceId, Route};

/// Where one fork stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ForkState {
    /// Sent; nothing heard.
    Calling,
    /// A provisional response arrived.
    Ringing,
    /// Failed with this final status.
    Failed(u16),
    /// This fork won.
    Answered,
    /// CANCEL wanted; sent once a provisional response shows the INVITE arrived.
    CancelPending,
    /// CANCEL sent.
    Cancelled,
}

/// One outgoing INVITE.
pub(super) struct Fork {
    pub(super) invite: Request,
    pub(super) route: Route,
    /// The phone rung (none for Twilio).
    pub(super) device_id: Option<DeviceId>,
    pub(super) state: ForkState,
    /// The digest challenge was answered once already.
    pub(super) auth_tried: bool,
    /// Early media: the SDP of its last provisional response that had one.
    pub(super) early: Option<Description>,
    /// Its early dialog, once a reliable provisional response (RFC 3262)
    /// needed a PRACK; the PRACKs' CSeqs carry on into the answered dialog.
    pub(super) early_dialog: Option<Dialog>,
    /// The RSeq of the last reliable provisional response PRACKed.
    pub(super) rseq: Option<u32>,
}

impl Fork {
    pub(super) fn new(invite: Request, route: Route, device_id: Option<DeviceId>) -> Fork {
        Fork {
            invite,
            route,
            device_id,
            state: ForkState::Calling,
            auth_tried: false,
            early: None,
            early_dialog: None,
            rseq: None,
        }
    }

    /// Whether it may still answer.
    pub(super) fn live(&self) -> bool {
        matches!(
            self.state,
            ForkState::Calling | ForkState::Ringing | ForkState::CancelPending
        )
    }

    /// A provisional response arrived: `Some(CANCEL)` if one was waiting for it.
    pub(super) fn provisional(&mut self) -> Option<(Request, Route)> {
        match self.state {
            ForkState::CancelPending => {
                self.state = ForkState::Cancelled;
                Some((build::cancel_for(&self.invite), self.route))
            }
            ForkState::Calling => {
                self.state = ForkState::Ringing;
                None
            }
            _ => None,
        }
    }
}

/// Stops the forks still trying: a ringing one is CANCELled now; one that
/// has not answered at all gets its CANCEL with its first provisional
/// response (§9.1: a CANCEL may only follow one).
pub(super) fn stop<'a>(forks: impl IntoIterator<Item = &'a mut Fork>) -> Vec<(Request, Route)> {
    let mut cancels = Vec::new();
    for f in forks {
        match f.state {
            ForkState::Ringing => {
                f.state = ForkState::Cancelled;
                cancels.push((build::cancel_for(&f.invite), f.route));
            }
            ForkState::Calling => f.state = ForkState::CancelPending,
            _ => {}
        }
    }
    cancels
}

/// The answer the caller gets when every fork failed, and how the record
/// files it: busy beats a rejection, which beats any other 4xx–6xx that is
/// not a timeout, a CANCEL or an unreachable phone; else 480.
pub(super) fn best_failure(states: impl IntoIterator<Item = ForkState>) -> (u16, Disposition) {
    let statuses: Vec<u16> = states
        .into_iter()
        .filter_map(|s| match s {
            ForkState::Failed(s) => Some(s),
            _ => None,
        })
        .collect();
    let status = if statuses.iter().any(|s| matches!(s, 486 | 600)) {
        486
    } else if statuses.contains(&603) {
        603
    } else if let Some(s) = statuses
        .iter()
        .find(|s| (400..700).contains(*s) && !matches!(s, 408 | 487 | 503))
    {
        *s
    } else {
        480
    };
    let disposition = match status {
        486 => Disposition::Busy,
        603 => Disposition::Rejected,
        480 | 408 => Disposition::NoAnswer,
        _ => Disposition::Failed,
    };
    (status, disposition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForkState::*;

    #[test]
    fn busy_beats_every_other_failure() {
        assert_eq!(
            best_failure([Failed(404), Failed(600), Failed(603)]),
            (486, Disposition::Busy)
        );
        assert_eq!(
            best_failure([Failed(486), Cancelled]),
            (486, Disposition::Busy)
        );
    }

    #[test]
    fn a_rejection_beats_a_plain_failure() {
        assert_eq!(
            best_failure([Failed(404), Failed(603)]),
            (603, Disposition::Rejected)
        );
    }

    #[test]
    fn timeouts_cancels_and_unreachable_phones_read_as_no_answer() {
        assert_eq!(
            best_failure([Failed(408), Failed(487), Failed(503)]),
            (480, Disposition::NoAnswer)
        );
        assert_eq!(best_failure([]), (480, Disposition::NoAnswer));
        assert_eq!(
            best_failure([Failed(503), Failed(488)]),
            (488, Disposition::Failed)
        );
    }
}
