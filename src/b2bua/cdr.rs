//! Call detail records: one per call, assembled from the call when it ends
//! (or from a refusal that never became a call).

use crate::clock::Timestamp;
use crate::sip::message::{HeaderName, Request};
use crate::store::cdrs::{Cdr, Direction, Disposition};

use super::call::{Call, Kind};

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ending {
    pub(super) disposition: Disposition,
    pub(super) cause: String,
}

impl Ending {
    pub(super) fn new(disposition: Disposition, cause: impl Into<String>) -> Ending {
        Ending {
            disposition,
            cause: cause.into(),
        }
    }
}

/// The record of a call that ends now.
pub(super) fn assemble(call: &Call, now: Timestamp, ending: Ending) -> Cdr {
    // The answering phone, for calls to the household; the calling one for
    // outgoing calls.
    let device_id = call
        .up()
        .and_then(|u| u.b.device_id)
        .filter(|_| call.kind != Kind::Outbound)
        .or(call.device_id);
    Cdr {
        id: 0,
        call_sid: None,
        sip_call_id: call
            .a
            .invite
            .headers
            .get(&HeaderName::CallId)
            .map(str::to_string),
        direction: match call.kind {
            Kind::Inbound => Direction::Inbound,
            Kind::Outbound => Direction::Outbound,
            Kind::Internal => Direction::Internal,
        },
        from_number: call.from.clone(),
        to_number: call.to.clone(),
        did_id: call.did_id,
        device_id: device_id.map(|d| d.0),
        started_at: call.started_at.to_string(),
        answered_at: call.answered_at.map(|t| t.to_string()),
        ended_at: Some(now.to_string()),
        duration_secs: call
            .answered_at
            .map(|t| now.since(t).as_secs() as i64)
            .unwrap_or(0),
        disposition: ending.disposition,
        twilio_status: None,
        // The rule that decided the call rides in the cause, which the
        // call history shows (`ring timeout; rule 7`).
        hangup_cause: Some(match &call.rule {
            Some(rule) => format!("{}; rule {rule}", ending.cause),
            None => ending.cause,
        }),
        recording_path: None,
        spam_score: None,
    }
}

/// A refused outgoing call still leaves a record (`blocked`), so the
/// refusal is visible in the call history, not only in the log.
pub(super) fn refusal(
    req: &Request,
    from: &str,
    to: &str,
    device_id: i64,
    why: &str,
    now: Timestamp,
) -> Cdr {
    Cdr {
        id: 0,
        call_sid: None,
        sip_call_id: req.headers.get(&HeaderName::CallId).map(str::to_string),
        direction: Direction::Outbound,
        from_number: from.to_string(),
        to_number: to.to_string(),
        did_id: None,
        device_id: Some(device_id),
        started_at: now.to_string(),
        answered_at: None,
        ended_at: Some(now.to_string()),
        duration_secs: 0,
        disposition: Disposition::Blocked,
        twilio_status: None,
        hangup_cause: Some(format!("toll-fraud guard: {why}")),
        recording_path: None,
        spam_score: None,
    }
}
