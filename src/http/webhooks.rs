//! Twilio's webhooks under `/api/webhooks/`. Every route is
//! `Access::Webhook`, so dispatch has checked `X-Twilio-Signature` (see
//! [`super::signed`]) before a handler here runs; handlers read the verified
//! parameters from `req.signed()`.
//!
//! | Route | Twilio calls it | Answer |
//! |---|---|---|
//! | `voice/incoming` | a call to one of our numbers | TwiML: `<Reject/>` (blocked, unknown) or `<Dial><Sip>` to the phones |
//! | `voice/dial-result` | the `<Dial action>`; also the `<Record action>` | empty (answered), voicemail TwiML, or `<Hangup/>` after recording |
//! | `voice/status` | call status callback | 204; a call record when the call ends |
//! | `voice/sip-domain` | a phone's outgoing call through our SIP Domain | `<Dial callerId><Number>` or `<Reject/>` |
//! | `sms/incoming` | a message to one of our numbers | empty `<Response/>`; stored unless blocked, media downloaded |
//! | `sms/status` | status callback of a message we sent | 204 |
//! | `recording` | `recordingStatusCallback` of the voicemail `<Record>` | 204; the voicemail, its audio downloaded |
//! | `transcription` | `transcribeCallback` | 204; the transcript |

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response};

use super::error::{ApiError, ApiResult};
use super::request::{no_content, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::clock::Timestamp;
use crate::constants::{
    VOICEMAIL_MAX_LENGTH, VOICEMAIL_MIN_LENGTH, VOICEMAIL_RING_TIMEOUT, VOICEMAIL_SILENCE_TIMEOUT,
};
use crate::events::{Event, MessageChange, VoicemailChange};
use crate::outbox::{Outbox, Task};
use crate::store::cdrs::{self, Cdr, Disposition};
use crate::store::messages::{self, Direction, NewMessage};
use crate::store::voicemails::{self, NewVoicemail};
use crate::store::{dids, StoreError};
use crate::sysconfig;
use crate::twilio::client::{encode_component, is_sid};
use crate::twilio::jobs::ALLOWED_MEDIA_TYPES;
use crate::twilio::routing::{self, sip_user};
use crate::twilio::twiml::{self, Dial, DialTarget, Record, Verb};

/// Most MMS media items read from one message.
const MAX_MEDIA_ITEMS: usize = 10;
/// What callers hear before the beep when no greeting is configured.
const DEFAULT_GREETING: &str = "Nobody can take your call. Please leave a message after the tone.";

/// The webhook routes (all `Access::Webhook`: no session, no CSRF; the
/// signature is the authentication).
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::POST,
            "/api/webhooks/voice/incoming",
            Access::Webhook,
            voice_incoming,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/voice/status",
            Access::Webhook,
            voice_status,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/voice/dial-result",
            Access::Webhook,
            dial_result,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/voice/sip-domain",
            Access::Webhook,
            sip_domain,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/sms/incoming",
            Access::Webhook,
            sms_incoming,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/sms/status",
            Access::Webhook,
            sms_status,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/recording",
            Access::Webhook,
            recording,
        ),
        Route::new(
            Method::POST,
            "/api/webhooks/transcription",
            Access::Webhook,
            transcription,
        ),
    ]
}

fn twiml_response(doc: twiml::Response) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(doc.to_xml())));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn store_err(req: &ApiRequest) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| ApiError::internal(&req.request_id, &e)
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The voicemail document: greeting, then `<Record>` with its callbacks
/// naming the mailbox and caller (the recording callbacks carry neither).
fn voicemail_twiml(public: &str, did_id: i64, from: &str, greeting: Greeting) -> twiml::Response {
    let q = format!("did={did_id}&from={}", encode_component(from));
    let greeting = match greeting {
        Greeting::Recorded(name) => Verb::Play(format!("{public}/api/greetings/{name}")),
        Greeting::Spoken(text) => Verb::Say(text.unwrap_or_else(|| DEFAULT_GREETING.to_string())),
    };
    twiml::Response::new()
        .push(greeting)
        .push(Verb::Record(Record {
            action: format!("{public}/api/webhooks/voice/dial-result?{q}&step=recorded"),
            max_length: secs(VOICEMAIL_MAX_LENGTH),
            timeout: secs(VOICEMAIL_SILENCE_TIMEOUT),
            play_beep: true,
            transcribe: true,
            transcribe_callback: format!("{public}/api/webhooks/transcription?{q}"),
            recording_status_callback: format!("{public}/api/webhooks/recording?{q}"),
        }))
        .push(Verb::Hangup)
}

/// A call record for a call Homeline refused.
fn blocked_cdr(call_sid: &str, from: &str, to: &str, did_id: Option<i64>, now: Timestamp) -> Cdr {
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

/// What to do with an incoming call.
enum CallPlan {
    Reject,
    Ring {
        did_id: i64,
        did: String,
        sip: Option<(String, u16, String, String)>,
    },
}

async fn voice_incoming(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let (to, from, call_sid) = (
        s.get("To").to_string(),
        s.get("From").to_string(),
        s.get("CallSid").to_string(),
    );
    let secrets = state.secrets.clone();
    let now = state.clock.now();
    let plan = state
        .db
        .call(move |c| {
            let did = dids::find_by_number(c, &to)?.filter(|d| d.voice_enabled);
            let Some(did) = did else {
                return Ok(CallPlan::Reject);
            };
            if routing::is_blocked(c, &from)? {
                match cdrs::insert(c, &blocked_cdr(&call_sid, &from, &to, Some(did.id), now)) {
                    // A redelivered webhook: recorded already.
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                return Ok(CallPlan::Reject);
            }
            let sip = match sysconfig::sip_public_target(c)? {
                Some((host, port)) => {
                    let (u, p) = sysconfig::twilio_sip_credentials(c, &secrets)
                        .map_err(|e| StoreError::Conflict(e.to_string()))?;
                    Some((host, port, u, p))
                }
                None => None,
            };
            Ok(CallPlan::Ring {
                did_id: did.id,
                did: did.number,
                sip,
            })
        })
        .await
        .map_err(store_err(&req))?;
    let doc = match plan {
        CallPlan::Reject => {
            tracing::info!(
                from = s.get("From"),
                to = s.get("To"),
                "incoming call rejected (blocked or not our number)"
            );
            twiml::Response::new().push(Verb::Reject)
        }
        CallPlan::Ring {
            did_id,
            did,
            sip: Some((host, port, username, password)),
        } => twiml::Response::new().push(Verb::Dial(Dial {
            answer_on_bridge: true,
            timeout: Some(secs(VOICEMAIL_RING_TIMEOUT)),
            action: Some(s.url(&format!(
                "/api/webhooks/voice/dial-result?did={did_id}&from={}",
                encode_component(s.get("From"))
            ))),
            caller_id: None,
            target: DialTarget::Sip {
                uri: format!("sip:{did}@{host}:{port};transport=tls"),
                username,
                password,
            },
        })),
        CallPlan::Ring { did_id, .. } => {
            tracing::warn!(
                "no public SIP host configured: incoming call goes straight to voicemail"
            );
            let greeting = greeting(&state, did_id).await;
            voicemail_twiml(s.public(), did_id, s.get("From"), greeting)
        }
    };
    Ok(twiml_response(doc))
}

/// What a caller hears before the beep.
enum Greeting {
    /// The number's uploaded recording (its file name).
    Recorded(String),
    /// The configured text, or the default.
    Spoken(Option<String>),
}

async fn greeting(state: &ServerState, did_id: i64) -> Greeting {
    if let Some(name) = super::greetings::current(&state.settings.data_dir, did_id).await {
        return Greeting::Recorded(name);
    }
    Greeting::Spoken(
        state
            .db
            .call(|c| crate::store::config::get(c, sysconfig::TWILIO_VOICEMAIL_GREETING))
            .await
            .ok()
            .flatten(),
    )
}

async fn dial_result(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    if s.query("step") == "recorded" || !s.get("RecordingSid").is_empty() {
        // The <Record action>: the message is recorded; say goodbye.
        return Ok(twiml_response(twiml::Response::new().push(Verb::Hangup)));
    }
    let status = s.get("DialCallStatus");
    // The SIP leg Twilio dialled is one of Homeline's calls: its CDR
    // (written by the call layer, keyed by the SIP Call-ID) takes Twilio's
    // CallSid, so the status callback completes it instead of adding a
    // second record for the same call.
    let (sip_call_id, call_sid) = (
        s.get("DialSipCallId").to_string(),
        s.get("CallSid").to_string(),
    );
    if !sip_call_id.is_empty() && is_sid(&call_sid, "CA") {
        let linked = state
            .db
            .call(move |c| cdrs::link_call_sid(c, &sip_call_id, &call_sid))
            .await;
        if let Err(e) = linked {
            tracing::warn!(error = %e, "could not link the call record to its CallSid");
        }
    }
    if matches!(status, "completed" | "answered") {
        return Ok(twiml_response(twiml::Response::new()));
    }
    // no-answer, busy, failed, canceled: voicemail.
    let Ok(did_id) = s.query("did").parse::<i64>() else {
        return Ok(twiml_response(twiml::Response::new().push(Verb::Hangup)));
    };
    let from = if s.query("from").is_empty() {
        s.get("From")
    } else {
        s.query("from")
    }
    .to_string();
    let greeting = greeting(&state, did_id).await;
    Ok(twiml_response(voicemail_twiml(
        s.public(),
        did_id,
        &from,
        greeting,
    )))
}

async fn voice_status(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let status = s.get("CallStatus").to_string();
    let Some(disposition) = Disposition::from_twilio_status(&status) else {
        return Ok(no_content());
    };
    let (sid, from, to) = (
        s.get("CallSid").to_string(),
        s.get("From").to_string(),
        s.get("To").to_string(),
    );
    let inbound = s.get("Direction") == "inbound";
    let duration: i64 = s.get("CallDuration").parse().unwrap_or(0);
    let now = state.clock.now();
    state
        .db
        .call(move |c| {
            let ours = if inbound {
                to.clone()
            } else {
                sip_user(&from).to_string()
            };
            let did_id = dids::find_by_number(c, &ours)?.map(|d| d.id);
            let has_voicemail: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM voicemails WHERE call_sid = ?1)",
                [&sid],
                |r| r.get(0),
            )?;
            let cdr = Cdr {
                id: 0,
                call_sid: Some(sid.clone()).filter(|s| !s.is_empty()),
                sip_call_id: None,
                direction: if inbound {
                    cdrs::Direction::Inbound
                } else {
                    cdrs::Direction::Outbound
                },
                from_number: from.clone(),
                to_number: to.clone(),
                did_id,
                device_id: None,
                started_at: Timestamp::from_unix_millis(now.unix_millis() - duration.max(0) * 1000)
                    .to_string(),
                answered_at: None,
                ended_at: Some(now.to_string()),
                duration_secs: duration.max(0),
                disposition: if has_voicemail {
                    Disposition::Voicemail
                } else {
                    disposition
                },
                twilio_status: Some(status.clone()),
                hangup_cause: None,
                recording_path: None,
                spam_score: None,
            };
            match cdrs::insert(c, &cdr) {
                Ok(_) => Ok(()),
                // The call layer's record of this call (linked by the dial
                // result), or a redelivered callback: complete it.
                Err(StoreError::Conflict(_)) => {
                    cdrs::merge_twilio_status(c, &sid, &status, has_voicemail).map(|_| ())
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(store_err(&req))?;
    Ok(no_content())
}

async fn sip_domain(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let (username, dest, caller) = (
        s.get("SipUsername").to_string(),
        sip_user(s.get("To")).to_string(),
        sip_user(s.get("From")).to_string(),
    );
    let secrets = state.secrets.clone();
    let rules = state.settings.calls.rules.clone();
    let verdict = state
        .db
        .call(move |c| {
            let (ours, _) = sysconfig::twilio_sip_credentials(c, &secrets)
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            if username.is_empty() || username != ours {
                return Ok(Err("the SIP user name is not ours".to_string()));
            }
            let Some(did) = dids::find_by_number(c, &caller)?.filter(|d| d.voice_enabled) else {
                return Ok(Err(format!(
                    "caller ID {caller:?} is not one of our numbers"
                )));
            };
            Ok(
                routing::outgoing_call_allowed(c, &did.number, &dest, &rules)?
                    .map(|()| (did.number, dest)),
            )
        })
        .await
        .map_err(store_err(&req))?;
    let doc = match verdict {
        Ok((did, dest)) => twiml::Response::new().push(Verb::Dial(Dial {
            answer_on_bridge: false,
            timeout: None,
            action: None,
            caller_id: Some(did),
            target: DialTarget::Number(dest),
        })),
        Err(why) => {
            tracing::warn!(reason = %why, from = s.get("From"), to = s.get("To"), "outgoing call refused");
            twiml::Response::new().push(Verb::Reject)
        }
    };
    Ok(twiml_response(doc))
}

async fn sms_incoming(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let (sid, from, to, body) = (
        s.get("MessageSid").to_string(),
        s.get("From").to_string(),
        s.get("To").to_string(),
        s.get("Body").to_string(),
    );
    if sid.is_empty() {
        return Err(ApiError::validation("MessageSid is missing"));
    }
    let count: usize = s.get("NumMedia").parse().unwrap_or(0);
    let mut media = Vec::new();
    let mut downloads = Vec::new();
    for i in 0..count.min(MAX_MEDIA_ITEMS) {
        let url = s.get(&format!("MediaUrl{i}")).to_string();
        let ct = s.get(&format!("MediaContentType{i}")).to_ascii_lowercase();
        if ALLOWED_MEDIA_TYPES.contains(&ct.as_str()) && !url.is_empty() {
            media.push(
                serde_json::json!({"index": i, "content_type": ct, "path": null, "size": null}),
            );
            downloads.push((media.len() - 1, url));
        } else {
            media.push(serde_json::json!({"index": i, "content_type": ct, "path": null, "size": null, "rejected": "media type not accepted"}));
        }
    }
    let media = serde_json::Value::Array(media);
    let now = state.clock.now();
    let stored = state
        .db
        .call(move |c| {
            let Some(did) = dids::find_by_number(c, &to)? else {
                tracing::warn!(%to, "message for a number that is not ours; dropped");
                return Ok(None);
            };
            if routing::is_blocked(c, &from)? {
                tracing::info!(%from, "message from a blocked number; dropped");
                return Ok(None);
            }
            let tx = c.unchecked_transaction()?;
            let (id, new) = messages::insert_once(
                &tx,
                &NewMessage {
                    message_sid: Some(&sid),
                    direction: Direction::Inbound,
                    did_id: did.id,
                    from_number: &from,
                    to_number: &to,
                    body: &body,
                    media: &media,
                    status: "received",
                },
                now,
            )?;
            if new {
                for (index, url) in downloads {
                    Outbox::enqueue_in(
                        &tx,
                        &Task::DownloadMedia {
                            message_id: id,
                            index,
                            url,
                        },
                        now,
                    )?;
                }
            }
            tx.commit()?;
            Ok(new.then_some((id, did.id)))
        })
        .await
        .map_err(store_err(&req))?;
    if let Some((message_id, did_id)) = stored {
        state.outbox.wake();
        state.events.publish(Event::Message {
            message_id,
            did_id,
            change: MessageChange::Received,
            status: None,
        });
    }
    Ok(twiml_response(twiml::Response::new()))
}

async fn sms_status(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let sid = s.get("MessageSid").to_string();
    let status = s.get("MessageStatus").to_string();
    let error: Option<i64> = s.get("ErrorCode").parse().ok();
    let outbox_id: Option<i64> = s.query("outbox").parse().ok();
    if sid.is_empty() || status.is_empty() {
        return Err(ApiError::validation(
            "MessageSid and MessageStatus are required",
        ));
    }
    let now = state.clock.now();
    let shown_status = status.clone();
    let changed = state
        .db
        .call(move |c| {
            if messages::update_status(c, &sid, &status, error, now)? {
                return Ok(messages::find_by_sid(c, &sid)?.map(|m| (m.id, m.did_id)));
            }
            // The send's answer was lost (crash): this callback names the
            // job, whose message gets the SID now.
            if let Some((Task::SendMessage { message_id }, _)) = match outbox_id {
                Some(id) => crate::outbox::store::task(c, id)?,
                None => None,
            } {
                let m = messages::get(c, message_id)?;
                if m.message_sid.is_none() {
                    messages::set_sid(c, message_id, &sid, &status, now)?;
                    messages::set_status(c, message_id, &status, error, now)?;
                    tracing::info!(message = message_id, %sid, "message SID recorded from its status callback");
                    return Ok(Some((message_id, m.did_id)));
                }
            }
            Ok(None)
        })
        .await
        .map_err(store_err(&req))?;
    if let Some((message_id, did_id)) = changed {
        state.events.publish(Event::Message {
            message_id,
            did_id,
            change: MessageChange::Status,
            status: Some(shown_status),
        });
    }
    Ok(no_content())
}

async fn recording(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    if s.get("RecordingStatus") != "completed" {
        return Ok(no_content());
    }
    let (Ok(did_id), rsid) = (
        s.query("did").parse::<i64>(),
        s.get("RecordingSid").to_string(),
    ) else {
        return Err(ApiError::validation("the callback URL names no mailbox"));
    };
    if !is_sid(&rsid, "RE") {
        return Err(ApiError::validation("RecordingSid is missing or malformed"));
    }
    let duration: i64 = s.get("RecordingDuration").parse().unwrap_or(0);
    let (url, call_sid, from) = (
        s.get("RecordingUrl").to_string(),
        s.get("CallSid").to_string(),
        s.query("from").to_string(),
    );
    let now = state.clock.now();
    let rec = Recording {
        did_id,
        sid: rsid,
        url,
        call_sid,
        from,
        duration,
    };
    let created = state
        .db
        .call(move |c| store_recording(c, &rec, now))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::validation("no such mailbox"),
            e => ApiError::internal(&req.request_id, &e),
        })?;
    if let Some(voicemail_id) = created {
        tracing::info!(voicemail = voicemail_id, did_id, "voicemail received");
        state.outbox.wake();
        state.events.publish(Event::Voicemail {
            voicemail_id: Some(voicemail_id),
            did_id,
            change: VoicemailChange::Created,
        });
    }
    Ok(no_content())
}

/// What a recording callback reports.
struct Recording {
    did_id: i64,
    sid: String,
    url: String,
    call_sid: String,
    from: String,
    duration: i64,
}

/// Stores a completed recording as a voicemail with its download job (one
/// transaction); discards one under the minimum length. Returns the new
/// voicemail's id, `None` if discarded or already stored.
fn store_recording(
    c: &mut rusqlite::Connection,
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

async fn transcription(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    if s.get("TranscriptionStatus") != "completed" {
        return Ok(no_content());
    }
    let (rsid, text, url) = (
        s.get("RecordingSid").to_string(),
        s.get("TranscriptionText").to_string(),
        s.get("RecordingUrl").to_string(),
    );
    let did_id: Option<i64> = s.query("did").parse().ok();
    let (from, call_sid) = (s.query("from").to_string(), s.get("CallSid").to_string());
    if !is_sid(&rsid, "RE") {
        return Err(ApiError::validation("RecordingSid is missing or malformed"));
    }
    let now = state.clock.now();
    let transcribed = state
        .db
        .call(move |c| {
            let (id, did_id) = match voicemails::find_by_recording(c, &rsid)? {
                Some(v) => (v.id, v.did_id),
                // Before the recording callback: keep the transcript on a
                // voicemail that the recording callback completes.
                None => match did_id {
                    Some(did_id) => (
                        voicemails::insert_once(
                            c,
                            &NewVoicemail {
                                did_id,
                                recording_sid: &rsid,
                                call_sid: Some(call_sid.as_str()).filter(|s| !s.is_empty()),
                                from_number: &from,
                                twilio_recording_url: Some(url.as_str()).filter(|s| !s.is_empty()),
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
            voicemails::set_transcript(c, id, &text)?;
            Ok(Some((id, did_id)))
        })
        .await
        .map_err(store_err(&req))?;
    if let Some((voicemail_id, did_id)) = transcribed {
        state.events.publish(Event::Voicemail {
            voicemail_id: Some(voicemail_id),
            did_id,
            change: VoicemailChange::Transcribed,
        });
    }
    Ok(no_content())
}
