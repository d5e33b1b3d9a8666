//! Twilio's webhooks under `/api/webhooks/`. Every route is
//! `Access::Webhook`, so dispatch has checked `X-Twilio-Signature` (see
//! [`super::signed`]) before a handler here runs; handlers read the verified
//! parameters from `req.signed()`.
//!
//! | Route | Twilio calls it | Answer |
//! |---|---|---|
//! | `voice/incoming` | a call to one of our numbers | TwiML of the routing decision (`rules::engine::decide`): `<Dial><Sip>` to the phones (rule and phones in `X-Homeline-*` headers), `<Dial><Number>` for a forward, voicemail, `<Reject>` (blocked, anonymous, unknown, a rule), or `<Say>` then `<Hangup>` |
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
use crate::rules::engine::{
    decide, ring_header, CallFacts, Decision, DefaultKind, RING_HEADER, RULE_HEADER,
};
use crate::rules::model::{Action, RejectReason};
use crate::rules::store as rules_store;
use crate::store::cdrs::{self, Disposition};
use crate::store::{dids, routes};
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

/// What to do with an incoming call to one of our numbers: the engine's
/// decision, with what its TwiML needs.
struct CallPlan {
    did_id: i64,
    did: String,
    decision: Decision,
    /// Host, port, user name and password Twilio dials our SIP side with.
    sip: Option<(String, u16, String, String)>,
    /// A forward the toll-fraud guard refused, and why.
    forward_refused: Option<String>,
}

/// The `<Sip>` URI of a ring action: the number at our SIP host, with the
/// rule and the phones to ring as Twilio custom headers (`?X-…=…`), which
/// Twilio copies onto its INVITE for the call layer.
fn ring_uri(did: &str, host: &str, port: u16, decision: &Decision) -> String {
    let mut uri = format!("sip:{did}@{host}:{port};transport=tls");
    let mut headers = Vec::new();
    if let Some(rule) = &decision.rule {
        headers.push(format!("{RULE_HEADER}={}", rule.id));
    }
    if let Some(ring) = ring_header(&decision.action) {
        headers.push(format!("{RING_HEADER}={ring}"));
    }
    if !headers.is_empty() {
        uri.push('?');
        uri.push_str(&headers.join("&"));
    }
    uri
}

/// How long Twilio lets the SIP leg ring: a sequence rings for the sum of
/// its steps (Twilio's limit is 600 s), anything else the usual time.
fn ring_timeout(action: &Action) -> u32 {
    match action {
        Action::Sequence { steps } => steps
            .iter()
            .map(|s| s.secs.unwrap_or(secs(VOICEMAIL_RING_TIMEOUT)))
            .sum::<u32>()
            .clamp(5, 600),
        _ => secs(VOICEMAIL_RING_TIMEOUT),
    }
}

async fn voice_incoming(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let s = req.signed()?;
    let facts = CallFacts::from_twilio(|k| s.get(k));
    let call_sid = s.get("CallSid").to_string();
    let secrets = state.secrets.clone();
    let now = state.clock.now();
    let reject_anonymous = state.settings.calls.reject_anonymous;
    let dial_rules = state.settings.calls.rules.clone();
    let plan = {
        let facts = facts.clone();
        state
            .db
            .call(move |c| {
                let did = dids::find_by_number(c, &facts.to)?.filter(|d| d.voice_enabled);
                let Some(did) = did else {
                    return Ok(None);
                };
                let ctx = rules_store::load_context(
                    c,
                    did.id,
                    rules_store::instant(now),
                    reject_anonymous,
                )?;
                let decision = decide(&facts, &ctx);
                routes::record_decision(
                    c,
                    &routes::CallDecision {
                        call_sid: call_sid.clone(),
                        did_id: Some(did.id),
                        rule_id: decision.rule.as_ref().map(|r| r.id.0),
                        rule_name: decision.rule.as_ref().map(|r| r.name.clone()),
                        default_kind: decision
                            .default
                            .and_then(|d| serde_json::to_value(d).ok())
                            .and_then(|v| v.as_str().map(str::to_string)),
                        action: serde_json::to_string(&decision.action).unwrap_or_default(),
                        spam_score: facts.spam_score,
                    },
                    now,
                )?;
                if let Some(cause) = match decision.default {
                    Some(DefaultKind::Blocklist) => Some("blocklist"),
                    Some(DefaultKind::Anonymous) => Some("anonymous"),
                    _ => None,
                } {
                    let mut cdr =
                        cdr::blocked(&call_sid, &facts.from, &facts.to, Some(did.id), now);
                    cdr.hangup_cause = Some(cause.into());
                    cdr::record_blocked(c, &cdr)?;
                }
                let forward_refused = match &decision.action {
                    Action::Forward { number } => {
                        routing::outgoing_call_allowed(c, &did.number, number, &dial_rules)?.err()
                    }
                    _ => None,
                };
                let sip = match sysconfig::sip_public_target(c)? {
                    Some((host, port)) => {
                        let (u, p) = sysconfig::twilio_sip_credentials(c, &secrets)?;
                        Some((host, port, u, p))
                    }
                    None => None,
                };
                Ok::<_, ConfigError>(Some(CallPlan {
                    did_id: did.id,
                    did: did.number,
                    decision,
                    sip,
                    forward_refused,
                }))
            })
            .await
            .map_err(internal(&req))?
    };
    let Some(CallPlan {
        did_id,
        did,
        decision,
        sip,
        mut forward_refused,
    }) = plan
    else {
        tracing::info!(from = %facts.from, to = %facts.to, "incoming call rejected: not one of our numbers");
        return Ok(twiml_response(twiml::Response::new().push(Verb::Reject)));
    };
    tracing::info!(
        call_sid = s.get("CallSid"),
        from = %facts.from,
        to = %facts.to,
        rule = decision.rule.as_ref().map(|r| r.id.0),
        rule_name = decision.rule.as_ref().map(|r| r.name.as_str()),
        default = ?decision.default,
        spam_score = facts.spam_score,
        "incoming call: {}",
        decision.explanation
    );
    if let (Action::Forward { number }, None) = (&decision.action, &forward_refused) {
        let admitted = state
            .forwards
            .lock()
            .map_err(|_| ApiError::internal(&req.request_id, &"forward guard poisoned"))?
            .admit(&state.settings.calls.rules, number, 0, now);
        forward_refused = admitted.err().map(|r| r.to_string());
    }
    let dial_result = s.url(&format!(
        "/api/webhooks/voice/dial-result?did={did_id}&from={}",
        encode_component(&facts.from)
    ));
    let doc = match (&decision.action, sip) {
        (
            Action::Reject {
                reason: RejectReason::Busy,
            },
            _,
        ) => twiml::Response::new().push(Verb::RejectBusy),
        (Action::Reject { .. }, _) => twiml::Response::new().push(Verb::Reject),
        (Action::Play { message }, _) => twiml::Response::new()
            .push(Verb::Say(message.clone()))
            .push(Verb::Hangup),
        (Action::Forward { number }, _) if forward_refused.is_none() => {
            twiml::Response::new().push(Verb::Dial(Dial {
                answer_on_bridge: true,
                timeout: Some(secs(VOICEMAIL_RING_TIMEOUT)),
                action: Some(dial_result),
                // The caller's own number is shown to whoever answers the
                // forward; a withheld caller shows the household's number
                // (Twilio needs a valid caller ID to place the leg).
                caller_id: facts.withheld.then(|| did.clone()),
                target: DialTarget::Number(number.clone()),
            }))
        }
        (
            Action::RingAll | Action::Ring { .. } | Action::Sequence { .. },
            Some((host, port, username, password)),
        ) => twiml::Response::new().push(Verb::Dial(Dial {
            answer_on_bridge: true,
            timeout: Some(ring_timeout(&decision.action)),
            action: Some(dial_result),
            caller_id: None,
            target: DialTarget::Sip {
                uri: ring_uri(&did, &host, port, &decision),
                username,
                password,
            },
        })),
        (action, _) => {
            match (action, &forward_refused) {
                (Action::Forward { number }, Some(why)) => tracing::warn!(
                    reason = %why, number = %number,
                    "the rule's forward was refused by the toll-fraud guard: voicemail instead"
                ),
                (Action::Voicemail, _) => {}
                _ => tracing::warn!(
                    "no public SIP host configured: incoming call goes straight to voicemail"
                ),
            }
            let greeting = greeting(&state, did_id).await;
            voicemail_twiml(s.public(), did_id, &facts.from, greeting)
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
