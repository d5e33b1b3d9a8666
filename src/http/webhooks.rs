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
//! | `sms/incoming` | a message to one of our numbers | empty `<Response/>`; stored unless blocked, media downloaded, auto-reply queued (`messages::auto_reply`) |
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
use crate::cdr;
use crate::constants::{VOICEMAIL_MAX_LENGTH, VOICEMAIL_RING_TIMEOUT, VOICEMAIL_SILENCE_TIMEOUT};
use crate::messages;
use crate::store::cdrs::{self, Disposition};
use crate::store::dids;
use crate::sysconfig::{self, ConfigError};
use crate::twilio::client::{encode_component, is_sid};
use crate::twilio::routing::{self, sip_user};
use crate::twilio::twiml::{self, Dial, DialTarget, Record, Verb};
use crate::voicemail;

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

fn internal<E: std::fmt::Display>(req: &ApiRequest) -> impl Fn(E) -> ApiError + '_ {
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
                cdr::record_blocked(c, &cdr::blocked(&call_sid, &from, &to, Some(did.id), now))?;
                return Ok(CallPlan::Reject);
            }
            let sip = match sysconfig::sip_public_target(c)? {
                Some((host, port)) => {
                    let (u, p) = sysconfig::twilio_sip_credentials(c, &secrets)?;
                    Some((host, port, u, p))
                }
                None => None,
            };
            Ok::<_, ConfigError>(CallPlan::Ring {
                did_id: did.id,
                did: did.number,
                sip,
            })
        })
        .await
        .map_err(internal(&req))?;
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
    let report = cdr::TwilioStatus {
        call_sid: s.get("CallSid").to_string(),
        from: s.get("From").to_string(),
        to: s.get("To").to_string(),
        inbound: s.get("Direction") == "inbound",
        duration: s.get("CallDuration").parse().unwrap_or(0),
        status,
        disposition,
    };
    let now = state.clock.now();
    state
        .db
        .call(move |c| cdr::record_twilio_status(c, &report, now))
        .await
        .map_err(internal(&req))?;
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
            let (ours, _) = sysconfig::twilio_sip_credentials(c, &secrets)?;
            if username.is_empty() || username != ours {
                return Ok(Err("the SIP user name is not ours".to_string()));
            }
            let Some(did) = dids::find_by_number(c, &caller)?.filter(|d| d.voice_enabled) else {
                return Ok(Err(format!(
                    "caller ID {caller:?} is not one of our numbers"
                )));
            };
            Ok::<_, ConfigError>(
                routing::outgoing_call_allowed(c, &did.number, &dest, &rules)?
                    .map(|()| (did.number, dest)),
            )
        })
        .await
        .map_err(internal(&req))?;
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
    let count: usize = s.get("NumMedia").parse().unwrap_or(0);
    let incoming = messages::Incoming {
        sid: s.get("MessageSid").to_string(),
        from: s.get("From").to_string(),
        to: s.get("To").to_string(),
        body: s.get("Body").to_string(),
        media: (0..count.min(messages::MAX_MEDIA_ITEMS))
            .map(|i| messages::MediaItem {
                url: s.get(&format!("MediaUrl{i}")).to_string(),
                content_type: s.get(&format!("MediaContentType{i}")).to_string(),
            })
            .collect(),
    };
    if incoming.sid.is_empty() {
        return Err(ApiError::validation("MessageSid is missing"));
    }
    messages::receive(
        &state.outbox,
        &state.events,
        incoming,
        state.settings.messages.auto_reply_window,
        state.clock.now(),
    )
    .await
    .map_err(internal(&req))?;
    Ok(twiml_response(twiml::Response::new()))
}

async fn sms_status(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let report = messages::StatusReport {
        sid: s.get("MessageSid").to_string(),
        status: s.get("MessageStatus").to_string(),
        error: s.get("ErrorCode").parse().ok(),
        outbox_id: s.query("outbox").parse().ok(),
    };
    if report.sid.is_empty() || report.status.is_empty() {
        return Err(ApiError::validation(
            "MessageSid and MessageStatus are required",
        ));
    }
    messages::status_changed(&state.outbox, &state.events, report, state.clock.now())
        .await
        .map_err(internal(&req))?;
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
    let rec = voicemail::Recording {
        did_id,
        sid: rsid,
        url: s.get("RecordingUrl").to_string(),
        call_sid: s.get("CallSid").to_string(),
        from: s.query("from").to_string(),
        duration: s.get("RecordingDuration").parse().unwrap_or(0),
    };
    voicemail::take_recording(&state.outbox, &state.events, rec, state.clock.now())
        .await
        .map_err(|e| match e {
            voicemail::IntakeError::NoSuchMailbox => ApiError::validation("no such mailbox"),
            e => ApiError::internal(&req.request_id, &e),
        })?;
    Ok(no_content())
}

async fn transcription(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    if s.get("TranscriptionStatus") != "completed" {
        return Ok(no_content());
    }
    let transcript = voicemail::Transcript {
        did_id: s.query("did").parse().ok(),
        recording_sid: s.get("RecordingSid").to_string(),
        text: s.get("TranscriptionText").to_string(),
        recording_url: s.get("RecordingUrl").to_string(),
        call_sid: s.get("CallSid").to_string(),
        from: s.query("from").to_string(),
    };
    if !is_sid(&transcript.recording_sid, "RE") {
        return Err(ApiError::validation("RecordingSid is missing or malformed"));
    }
    voicemail::take_transcript(&state.outbox, &state.events, transcript, state.clock.now())
        .await
        .map_err(internal(&req))?;
    Ok(no_content())
}
