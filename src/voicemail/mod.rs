//! Voicemail intake: what Twilio's recording and transcription callbacks
//! report becomes a voicemail (with its download job) in one transaction.
//! The webhooks in `http::webhooks` only parse the callbacks and call here;
//! the SQL is in `store::voicemails`.

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::constants::VOICEMAIL_MIN_LENGTH;
use crate::events::{Event, Events, VoicemailChange};
use crate::outbox::{Outbox, Task};
use crate::store::voicemails::{self, NewVoicemail};
use crate::store::{cdrs, StoreError};
use crate::sysconfig;

/// What a completed recording callback reports.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The mailbox (the number called), from our callback URL.
    pub did_id: i64,
    /// `RE…`.
    pub sid: String,
    /// Where Twilio keeps the audio.
    pub url: String,
    /// The call it was recorded on (may be empty).
    pub call_sid: String,
    /// The caller, from our callback URL.
    pub from: String,
    /// Seconds.
    pub duration: i64,
}

/// What a completed transcription callback reports.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The mailbox from our callback URL, if it names one.
    pub did_id: Option<i64>,
    /// The recording transcribed, `RE…`.
    pub recording_sid: String,
    /// The text.
    pub text: String,
    /// Where Twilio keeps the audio (may be empty).
    pub recording_url: String,
    /// The call (may be empty).
    pub call_sid: String,
    /// The caller, from our callback URL.
    pub from: String,
}

/// A recording's intake failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The mailbox the callback names does not exist.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a completed recording as a voicemail and queues its download;
/// announces it. Returns the new voicemail's id, `None` when it was under
/// the minimum length (discarded) or already stored.
pub async fn take_recording(
    outbox: &Outbox,
    events: &Events,
    recording: Recording,
    now: Timestamp,
) -> Result<Option<i64>, IntakeError> {
    let did_id = recording.did_id;
    let created = outbox
        .db()
        .call(move |c| store_recording(c, &recording, now))
        .await
        .map_err(|e| match e {
            // The mailbox's foreign key: the callback URL names no number.
            StoreError::Conflict(_) => IntakeError::NoSuchMailbox,
            e => IntakeError::Store(e),
        })?;
    if let Some(voicemail_id) = created {
        tracing::info!(voicemail = voicemail_id, did_id, "voicemail received");
        outbox.wake();
        events.publish(Event::Voicemail {
            voicemail_id: Some(voicemail_id),
            did_id,
            change: VoicemailChange::Created,
        });
    }
    Ok(created)
}

/// Keeps a transcript on its voicemail (creating the voicemail when the
/// transcript arrives before the recording callback); announces it. `None`
/// when neither the voicemail nor its mailbox is known.
pub async fn take_transcript(
    outbox: &Outbox,
    events: &Events,
    transcript: Transcript,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let transcribed = outbox
        .db()
        .call(move |c| store_transcript(c, &transcript, now))
        .await?;
    let Some((voicemail_id, did_id)) = transcribed else {
        return Ok(None);
    };
    events.publish(Event::Voicemail {
        voicemail_id: Some(voicemail_id),
        did_id,
        change: VoicemailChange::Transcribed,
    });
    Ok(Some(voicemail_id))
}

/// Stores a completed recording as a voicemail with its download job (one
/// transaction); discards one under the minimum length. Returns the new
/// voicemail's id, `None` if discarded or already stored.
pub fn store_recording(
    c: &mut Connection,
    r: &Recording,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let tx = c.transaction()?;
    if r.duration < VOICEMAIL_MIN_LENGTH.as_secs() as i64 {
        if let Some(v) = voicemails::find_by_recording(&tx, &r.sid)? {
            voicemails::delete(&tx, v.id)?;
        }
        if sysconfig::flag(&tx, sysconfig::TWILIO_DELETE_AFTER_DOWNLOAD)? {
            let task = Task::DeleteRecording {
                recording_sid: r.sid.clone(),
            };
            Outbox::enqueue_in(&tx, &task, now)?;
        }
        tx.commit()?;
        tracing::info!(recording = %r.sid, duration = r.duration, "recording under the minimum length discarded");
        return Ok(None);
    }
    // Complete unless only an early transcription created it.
    if voicemails::find_by_recording(&tx, &r.sid)?.is_some_and(|v| v.duration_secs > 0) {
        return Ok(None);
    }
    let call_sid = Some(r.call_sid.as_str()).filter(|s| !s.is_empty());
    let (id, _) = voicemails::insert_once(
        &tx,
        &NewVoicemail {
            did_id: r.did_id,
            recording_sid: &r.sid,
            call_sid,
            from_number: &r.from,
            twilio_recording_url: Some(&r.url),
            duration_secs: r.duration,
        },
        now,
    )?;
    voicemails::set_duration(&tx, id, r.duration)?;
    if let Some(call_sid) = call_sid {
        // A call record written before the recording arrived is a voicemail.
        cdrs::mark_voicemail(&tx, call_sid)?;
    }
    let task = Task::DownloadRecording {
        voicemail_id: id,
        recording_sid: r.sid.clone(),
        url: r.url.clone(),
    };
    Outbox::enqueue_in(&tx, &task, now)?;
    tx.commit()?;
    Ok(Some(id))
}

/// Sets the transcript of the voicemail of `t.recording_sid`; returns the
/// voicemail and its mailbox.
fn store_transcript(
    c: &mut Connection,
    t: &Transcript,
    now: Timestamp,
) -> Result<Option<(i64, i64)>, StoreError> {
    let (id, did_id) = match voicemails::find_by_recording(c, &t.recording_sid)? {
        Some(v) => (v.id, v.did_id),
        // Before the recording callback: keep the transcript on a
        // voicemail that the recording callback completes.
        None => match t.did_id {
            Some(did_id) => (
                voicemails::insert_once(
                    c,
                    &NewVoicemail {
                        did_id,
                        recording_sid: &t.recording_sid,
                        call_sid: Some(t.call_sid.as_str()).filter(|s| !s.is_empty()),
                        from_number: &t.from,
                        twilio_recording_url: Some(t.recording_url.as_str())
                            .filter(|s| !s.is_empty()),
                        duration_secs: 0,
                    },
                    now,
                )?
                .0,
                did_id,
            ),
            None => return Ok(None),
        },
    };
    voicemails::set_transcript(c, id, &t.text)?;
    Ok(Some((id, did_id)))
}
