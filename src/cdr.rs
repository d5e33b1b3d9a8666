//! Call records from Twilio's side: the record of a call Homeline refused
//! at the webhook, and what Twilio's status callback says about a call
//! (merged into the call layer's own record of it when there is one). The
//! webhooks in `http::webhooks` only parse the callbacks and call here; the
//! SQL is in `store::cdrs`.

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::store::cdrs::{self, Cdr, Disposition};
use crate::store::{dids, voicemails, StoreError};
use crate::twilio::routing::sip_user;

/// A call record for a call Homeline refused (a blocked caller).
pub fn blocked(call_sid: &str, from: &str, to: &str, did_id: Option<i64>, now: Timestamp) -> Cdr {
    Cdr {
        id: 0,
        call_sid: Some(call_sid.to_string()).filter(|s| !s.is_empty()),
        sip_call_id: None,
        direction: cdrs::Direction::Inbound,
        from_number: from.to_string(),
        to_number: to.to_string(),
        did_id,
        device_id: None,
        started_at: now.to_string(),
        answered_at: None,
        ended_at: Some(now.to_string()),
        duration_secs: 0,
        disposition: Disposition::Blocked,
        twilio_status: None,
        hangup_cause: Some("blocklist".into()),
        recording_path: None,
        spam_score: None,
    }
}

/// Records a refused call once (a redelivered webhook is recorded already).
pub fn record_blocked(conn: &Connection, cdr: &Cdr) -> Result<(), StoreError> {
    match cdrs::insert(conn, cdr) {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What Twilio's call status callback reports about a finished call.
#[derive(Debug, Clone)]
pub struct TwilioStatus {
    /// `CA…`.
    pub call_sid: String,
    /// The caller (a `sip:` URI for calls from our phones).
    pub from: String,
    /// The callee.
    pub to: String,
    /// Whether Twilio received the call (one of our numbers was called).
    pub inbound: bool,
    /// Seconds.
    pub duration: i64,
    /// Twilio's `CallStatus`.
    pub status: String,
    /// What that status means for the record.
    pub disposition: Disposition,
}

/// The record of a call as Twilio's status callback describes it, `now`
/// being its end.
fn assemble(s: &TwilioStatus, did_id: Option<i64>, has_voicemail: bool, now: Timestamp) -> Cdr {
    let duration = s.duration.max(0);
    Cdr {
        id: 0,
        call_sid: Some(s.call_sid.clone()).filter(|s| !s.is_empty()),
        sip_call_id: None,
        direction: if s.inbound {
            cdrs::Direction::Inbound
        } else {
            cdrs::Direction::Outbound
        },
        from_number: s.from.clone(),
        to_number: s.to.clone(),
        did_id,
        device_id: None,
        started_at: Timestamp::from_unix_millis(now.unix_millis() - duration * 1000).to_string(),
        answered_at: None,
        ended_at: Some(now.to_string()),
        duration_secs: duration,
        disposition: if has_voicemail {
            Disposition::Voicemail
        } else {
            s.disposition
        },
        twilio_status: Some(s.status.clone()),
        hangup_cause: None,
        recording_path: None,
        spam_score: None,
    }
}

/// Stores the record of a call Twilio reports finished, or completes the
/// call layer's record of it (linked by the dial result) or the one of an
/// earlier delivery of the same callback.
pub fn record_twilio_status(
    conn: &Connection,
    s: &TwilioStatus,
    now: Timestamp,
) -> Result<(), StoreError> {
    let ours = if s.inbound {
        s.to.as_str()
    } else {
        sip_user(&s.from)
    };
    let did_id = dids::find_by_number(conn, ours)?.map(|d| d.id);
    let has_voicemail = voicemails::exists_for_call(conn, &s.call_sid)?;
    match cdrs::insert(conn, &assemble(s, did_id, has_voicemail, now)) {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => {
            cdrs::merge_twilio_status(conn, &s.call_sid, &s.status, has_voicemail).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(inbound: bool, duration: i64) -> TwilioStatus {
        TwilioStatus {
            call_sid: "CA0123".into(),
            from: "+15550001".into(),
            to: "+15550002".into(),
            inbound,
            duration,
            status: "completed".into(),
            disposition: Disposition::Answered,
        }
    }

    #[test]
    fn a_status_record_starts_its_duration_before_now() {
        let now = Timestamp::from_unix_millis(1_795_255_200_000);
        let cdr = assemble(&status(true, 42), Some(3), false, now);
        assert_eq!(cdr.direction, cdrs::Direction::Inbound);
        assert_eq!(cdr.duration_secs, 42);
        assert_eq!(
            cdr.started_at,
            Timestamp::from_unix_millis(1_795_255_200_000 - 42_000).to_string()
        );
        assert_eq!(cdr.ended_at, Some(now.to_string()));
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!(cdr.twilio_status.as_deref(), Some("completed"));
        assert_eq!(cdr.did_id, Some(3));
    }

    #[test]
    fn a_negative_duration_counts_as_none_and_a_voicemail_wins() {
        let now = Timestamp::from_unix_millis(1_795_255_200_000);
        let cdr = assemble(&status(false, -5), None, true, now);
        assert_eq!(cdr.direction, cdrs::Direction::Outbound);
        assert_eq!((cdr.duration_secs, cdr.started_at), (0, now.to_string()));
        assert_eq!(cdr.disposition, Disposition::Voicemail);
    }
}
