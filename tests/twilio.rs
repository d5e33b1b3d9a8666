//! Twilio on the real binary, against the local REST stand-in
//! (`tests/common/twilio.rs`): signed webhooks (our signer and Twilio's own
//! `RequestValidator`), TwiML checked by Twilio's Python TwiML classes, SMS
//! and voicemail end to end, and the outbox through 500s, 429s, timeouts, an
//! outage compressed by a manual clock, a restart, and kill -9 on both sides
//! of sending.
//!
//! The Python cross-checks need `twilio==9.13.0` (`make test-deps` installs it).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::household;
use common::twilio::{
    Fault, StandIn, INVALID_NUMBER, NUMBER_SID, RECORDING_AUDIO, RECORDING_SID, SID, TOKEN,
};
use common::{wait_for, Homeline, Resp, Start};
use serde_json::{json, Value};

const PW: &str = household::ADMIN_PASSWORD;
/// The URL Twilio would use (the appliance sits behind a port-forward; the
/// Host it sees differs).
const PUBLIC: &str = "https://home.example.org";
const HOME: &str = "+15551230001";
const CALLER: &str = "+15559870000";
const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

struct Rig {
    standin: StandIn,
    h: Homeline,
    admin: String,
    did: i64,
}

fn env_for(standin: &StandIn, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![("HOMELINE_TWILIO_API_BASE".to_string(), standin.base.clone())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A household with Twilio configured against the stand-in, one number and
/// the public URL set.
fn rig(extra_env: &[(&str, &str)]) -> Rig {
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(Start {
        env: env_for(&standin, extra_env),
        ..Start::default()
    });
    let household::Household { admin, did } = household::set_up(
        &h,
        SID,
        TOKEN,
        HOME,
        json!({"system": {"public_url": PUBLIC}}),
    );
    Rig {
        standin,
        h,
        admin,
        did,
    }
}

fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                homeline::twilio::client::encode_component(k),
                homeline::twilio::client::encode_component(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Posts a webhook with the given signature header (or none).
fn post_signed(h: &Homeline, path: &str, params: &[(&str, &str)], signature: Option<&str>) -> Resp {
    let body = form(params);
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(s) = signature {
        headers.push(("X-Twilio-Signature", s));
    }
    h.request("POST", path, &headers, body.as_bytes())
}

/// Posts a webhook signed as Twilio signs it: over `PUBLIC` + path + query.
fn webhook(h: &Homeline, path: &str, params: &[(&str, &str)]) -> Resp {
    let sig =
        homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned(params));
    post_signed(h, path, params, Some(&sig))
}

fn python(mode: &str, input: &Value) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twilio/twilio_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the Python twilio package is missing: run `make test-deps` (pip install twilio==9.13.0)\n{stderr}"
    );
    (
        out.status.success(),
        format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)),
    )
}

/// Every webhook with a minimal valid payload.
fn webhook_cases(did: i64) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let q = format!("?did={did}&from=%2B15559870000");
    vec![
        (
            "/api/webhooks/voice/incoming".into(),
            vec![
                ("CallSid", CALL_SID),
                ("From", CALLER),
                ("To", HOME),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("AccountSid", SID),
            ],
        ),
        (
            "/api/webhooks/voice/status".into(),
            vec![
                ("CallSid", CALL_SID),
                ("From", CALLER),
                ("To", HOME),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
            ],
        ),
        (
            format!("/api/webhooks/voice/dial-result{q}"),
            vec![
                ("CallSid", CALL_SID),
                ("DialCallStatus", "completed"),
                ("From", CALLER),
                ("To", HOME),
            ],
        ),
        (
            "/api/webhooks/voice/sip-domain".into(),
            vec![
                ("CallSid", CALL_SID),
                ("From", "sip:+15551230001@home.sip.twilio.com"),
                ("To", "sip:+15559870000@home.sip.twilio.com"),
                ("SipUsername", "nobody"),
            ],
        ),
        (
            "/api/webhooks/sms/incoming".into(),
            vec![
                ("MessageSid", "SM00000000000000000000000000000001"),
                ("From", CALLER),
                ("To", HOME),
                ("Body", "sig test"),
                ("NumMedia", "0"),
            ],
        ),
        (
            "/api/webhooks/sms/status".into(),
            vec![
                ("MessageSid", "SM00000000000000000000000000000099"),
                ("MessageStatus", "delivered"),
            ],
        ),
        (
            format!("/api/webhooks/recording{q}"),
            vec![
                ("RecordingSid", RECORDING_SID),
                ("RecordingStatus", "absent"),
                ("CallSid", CALL_SID),
            ],
        ),
        (
            format!("/api/webhooks/transcription{q}"),
            vec![
                ("RecordingSid", RECORDING_SID),
                ("TranscriptionStatus", "failed"),
                ("CallSid", CALL_SID),
            ],
        ),
    ]
}

#[test]
fn every_webhook_rejects_missing_wrong_and_replayed_signatures() {
    let rig = rig(&[]);
    let cases = webhook_cases(rig.did);
    let routes: Vec<String> = homeline::http::routes()
        .iter()
        .filter(|r| r.access == homeline::http::router::Access::Webhook)
        .map(|r| r.path.to_string())
        .collect();
    assert_eq!(routes.len(), 8, "{routes:?}");
    for route in &routes {
        assert!(
            cases
                .iter()
                .any(|(p, _)| p.split('?').next() == Some(route.as_str())),
            "{route} has a case"
        );
    }
    for (i, (path, params)) in cases.iter().enumerate() {
        let good =
            homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned(params));
        // Replayed: a valid signature of another webhook's URL and body.
        let (other_path, other_params) = &cases[(i + 1) % cases.len()];
        let replayed = homeline::twilio::signature::compute(
            TOKEN,
            &format!("{PUBLIC}{other_path}"),
            &owned(other_params),
        );
        // Same URL, same body, signed with another token; and our URL as
        // the Host header sees it (not the public one).
        let wrong_token = homeline::twilio::signature::compute(
            "not-the-token",
            &format!("{PUBLIC}{path}"),
            &owned(params),
        );
        let host_url = homeline::twilio::signature::compute(
            TOKEN,
            &format!("http://{}{path}", rig.h.http),
            &owned(params),
        );
        let mut tampered = params.clone();
        tampered.push(("Extra", "1"));
        for (what, sig, body) in [
            ("missing", None, params.clone()),
            ("garbage", Some("bm90IGEgc2lnbmF0dXJl"), params.clone()),
            (
                "replayed to another URL",
                Some(replayed.as_str()),
                params.clone(),
            ),
            ("another token", Some(wrong_token.as_str()), params.clone()),
            (
                "signed for the Host URL",
                Some(host_url.as_str()),
                params.clone(),
            ),
            ("tampered body", Some(good.as_str()), tampered),
        ] {
            let r = post_signed(&rig.h, path, &body, sig);
            assert_eq!(
                r.status,
                403,
                "{path} with a {what} signature: {}",
                r.text()
            );
            assert_eq!(r.error_code(), "AUTHORIZATION_ERROR");
        }
        let r = post_signed(&rig.h, path, params, Some(&good));
        assert!(
            (200..300).contains(&r.status),
            "{path} with a good signature: {} {}",
            r.status,
            r.text()
        );
    }
    // Without a public URL no signature can be checked: everything is refused.
    let r = rig.h.call(
        "PUT",
        "/api/system/config",
        Some(&rig.admin),
        Some(&json!({"system": {"public_url": null}})),
    );
    assert_eq!(r.status, 200);
    let (path, params) = &cases[0];
    assert_eq!(webhook(&rig.h, path, params).status, 403);
}

#[test]
fn signatures_from_twilios_request_validator_are_accepted() {
    let rig = rig(&[]);
    let cases = webhook_cases(rig.did);
    let input: Vec<Value> = cases
        .iter()
        .map(|(path, params)| json!({"token": TOKEN, "url": format!("{PUBLIC}{path}"), "params": params}))
        .collect();
    let (ok, out) = python("sign", &json!(input));
    assert!(ok, "{out}");
    let sigs: Vec<String> =
        serde_json::from_str(out.lines().next().unwrap_or("")).expect("signatures");
    for ((path, params), sig) in cases.iter().zip(&sigs) {
        let ours =
            homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned(params));
        assert_eq!(&ours, sig, "our signer equals RequestValidator for {path}");
        let r = post_signed(&rig.h, path, params, Some(sig));
        assert!(
            (200..300).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
}

fn twiml(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/xml")),
        "{r:?}"
    );
    r.text()
}

/// The value of `attr` in the first element carrying it.
fn attr(doc: &str, attr: &str) -> String {
    let needle = format!(" {attr}=\"");
    let start = doc
        .find(&needle)
        .unwrap_or_else(|| panic!("{attr} in {doc}"))
        + needle.len();
    let end = doc[start..].find('"').expect("closing quote") + start;
    doc[start..end].replace("&amp;", "&")
}

#[test]
fn twiml_is_well_formed_and_only_uses_documented_twilio_verbs() {
    let rig = rig(&[]);
    let h = &rig.h;
    let mut docs = Vec::new();
    let call = [
        ("CallSid", CALL_SID),
        ("From", CALLER),
        ("To", HOME),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ];

    // Incoming call: ring the number's phones through our SIP endpoint.
    let ring = twiml(&webhook(h, "/api/webhooks/voice/incoming", &call));
    assert!(
        ring.contains(r#"answerOnBridge="true""#) && ring.contains(r#"timeout="30""#),
        "{ring}"
    );
    assert!(
        ring.contains(">sip:+15551230001@home.example.org:5061;transport=tls</Sip>"),
        "{ring}"
    );
    assert!(attr(&ring, "action").starts_with(&format!(
        "{PUBLIC}/api/webhooks/voice/dial-result?did={}",
        rig.did
    )));
    assert!(!attr(&ring, "username").is_empty() && attr(&ring, "password").len() >= 12);
    assert_eq!(ring.matches("<Response").count(), 1);
    docs.push(ring.clone());

    // Not answered: voicemail. Answered: nothing more. Recorded: hang up.
    let dial_path = attr(&ring, "action").trim_start_matches(PUBLIC).to_string();
    let vm = twiml(&webhook(
        h,
        &dial_path,
        &[
            ("CallSid", CALL_SID),
            ("DialCallStatus", "no-answer"),
            ("From", CALLER),
            ("To", HOME),
        ],
    ));
    for a in [
        r#"maxLength="180""#,
        r#"playBeep="true""#,
        r#"transcribe="true""#,
    ] {
        assert!(vm.contains(a), "{a} in {vm}");
    }
    assert!(attr(&vm, "recordingStatusCallback")
        .starts_with(&format!("{PUBLIC}/api/webhooks/recording?")));
    assert!(attr(&vm, "transcribeCallback")
        .starts_with(&format!("{PUBLIC}/api/webhooks/transcription?")));
    assert!(vm.contains("<Say>"), "{vm}");
    docs.push(vm.clone());
    for status in ["busy", "failed", "canceled"] {
        let d = twiml(&webhook(
            h,
            &dial_path,
            &[("CallSid", CALL_SID), ("DialCallStatus", status)],
        ));
        assert!(d.contains("<Record "), "{status}: {d}");
    }
    let answered = twiml(&webhook(
        h,
        &dial_path,
        &[("CallSid", CALL_SID), ("DialCallStatus", "completed")],
    ));
    assert!(answered.ends_with("<Response/>"), "{answered}");
    docs.push(answered);
    let record_action = attr(&vm, "action").trim_start_matches(PUBLIC).to_string();
    let bye = twiml(&webhook(
        h,
        &record_action,
        &[
            ("CallSid", CALL_SID),
            ("RecordingSid", RECORDING_SID),
            ("RecordingUrl", "x"),
            ("Digits", "hangup"),
        ],
    ));
    assert!(bye.contains("<Hangup/>"), "{bye}");
    docs.push(bye);

    // The admin reads the same login for the SIP Domain's credential list.
    let sip = h
        .call("GET", "/api/twilio/sip-credentials", Some(&rig.admin), None)
        .json();
    assert_eq!(
        (sip["username"].as_str(), sip["password"].as_str()),
        (
            Some(attr(&ring, "username").as_str()),
            Some(attr(&ring, "password").as_str())
        )
    );
    assert_eq!(
        (sip["public_host"].as_str(), sip["public_port"].as_u64()),
        (Some("home.example.org"), Some(5061))
    );

    // Outgoing call from a phone through the SIP Domain.
    let creds = attr(&ring, "username");
    let out = [
        ("CallSid", CALL_SID),
        ("From", "sip:+15551230001@home.sip.twilio.com"),
        ("To", "sip:+15559870000@home.sip.twilio.com;user=phone"),
        ("SipUsername", creds.as_str()),
    ];
    let dial = twiml(&webhook(h, "/api/webhooks/voice/sip-domain", &out));
    assert!(
        dial.contains(r#"<Dial callerId="+15551230001"><Number>+15559870000</Number></Dial>"#),
        "{dial}"
    );
    docs.push(dial);
    let mut wrong_user = out;
    wrong_user[3] = ("SipUsername", "intruder");
    let mut not_ours = out;
    not_ours[1] = ("From", "sip:+15550000000@home.sip.twilio.com");
    let mut not_e164 = out;
    not_e164[2] = ("To", "sip:0900123@home.sip.twilio.com");
    for (what, params) in [
        ("wrong user", wrong_user),
        ("caller ID not ours", not_ours),
        ("not E.164", not_e164),
    ] {
        let d = twiml(&webhook(h, "/api/webhooks/voice/sip-domain", &params));
        assert!(d.contains("<Reject/>"), "{what}: {d}");
        docs.push(d);
    }

    // A call to a number that is not ours.
    let mut stranger = call;
    stranger[2] = ("To", "+15550000000");
    docs.push(twiml(&webhook(
        h,
        "/api/webhooks/voice/incoming",
        &stranger,
    )));
    // An incoming SMS gets an empty messaging response.
    let sms = twiml(&webhook(
        h,
        "/api/webhooks/sms/incoming",
        &[
            ("MessageSid", "SM00000000000000000000000000000002"),
            ("From", CALLER),
            ("To", HOME),
            ("Body", "<&>"),
            ("NumMedia", "0"),
        ],
    ));
    docs.push(sms);

    let (ok, out) = python("twiml", &json!(docs));
    assert!(ok, "Twilio's TwiML classes disagree: {out}");
    assert!(
        out.contains(&format!("\"checked\": {}", docs.len())),
        "{out}"
    );
}

#[test]
fn incoming_sms_appears_in_its_conversation_and_a_reply_is_sent() {
    let rig = rig(&[]);
    let (h, admin, did) = (&rig.h, rig.admin.as_str(), rig.did);
    let media_url = rig.standin.media_url("ME0123456789abcdef0123456789abcdef");
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(admin),
        Some(&json!({"twilio": {"delete_after_download": true}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = webhook(
        h,
        "/api/webhooks/sms/incoming",
        &[
            ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
            ("AccountSid", SID),
            ("From", CALLER),
            ("To", HOME),
            ("Body", "Hi, it's Grandma"),
            ("NumMedia", "1"),
            ("MediaUrl0", &media_url),
            ("MediaContentType0", "image/jpeg"),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Twilio redelivers: nothing doubles.
    let _ = webhook(
        h,
        "/api/webhooks/sms/incoming",
        &[
            ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
            ("AccountSid", SID),
            ("From", CALLER),
            ("To", HOME),
            ("Body", "Hi, it's Grandma"),
            ("NumMedia", "1"),
            ("MediaUrl0", &media_url),
            ("MediaContentType0", "image/jpeg"),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ],
    );

    let convs = h
        .call("GET", "/api/messages/conversations", Some(admin), None)
        .json();
    assert_eq!(convs["total"], 1, "{convs}");
    assert_eq!(
        (
            convs["items"][0]["remote_number"].as_str(),
            convs["items"][0]["unread"].as_u64()
        ),
        (Some(CALLER), Some(1))
    );
    assert_eq!(
        h.call("GET", "/api/messages/unread/count", Some(admin), None)
            .json()["count"],
        1
    );
    let thread_path = format!("/api/messages/conversation/%2B15559870000?did_id={did}");
    let thread = h.call("GET", &thread_path, Some(admin), None).json();
    assert_eq!(thread["items"][0]["body"], "Hi, it's Grandma");
    let id = thread["items"][0]["id"].as_i64().expect("id");

    // The MMS picture is fetched through the outbox (307 to Twilio's storage, no credentials there).
    let media = wait_for(Duration::from_secs(15), || {
        let r = h.call(
            "GET",
            &format!("/api/messages/{id}/media/0"),
            Some(admin),
            None,
        );
        (r.status == 200).then_some(r)
    })
    .expect("the media was downloaded");
    assert_eq!(media.header("content-type"), Some("image/jpeg"));
    assert!(media.body.starts_with(b"\xff\xd8\xff"));
    assert!(
        wait_for(Duration::from_secs(15), || rig
            .standin
            .deleted()
            .contains(&"ME0123456789abcdef0123456789abcdef".to_string())
            .then_some(()))
        .is_some(),
        "the media is deleted at Twilio once stored (privacy setting)"
    );

    let r = h.call(
        "PUT",
        &format!("/api/messages/conversation/%2B15559870000/read?did_id={did}"),
        Some(admin),
        None,
    );
    assert_eq!(r.json()["marked_read"], 1);
    assert_eq!(
        h.call("GET", "/api/messages/unread/count", Some(admin), None)
            .json()["count"],
        0
    );

    // The reply goes out through the outbox with a status callback naming its job.
    let r = h.call(
        "POST",
        "/api/messages",
        Some(admin),
        Some(&json!({"did_id": did, "to": CALLER, "body": "On my way & bringing cake"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "pending");
    let reply_id = r.json()["id"].as_i64().expect("id");
    let sid = wait_for(Duration::from_secs(15), || {
        let m = h
            .call(
                "GET",
                &format!("/api/messages/{reply_id}"),
                Some(admin),
                None,
            )
            .json();
        m["message_sid"].as_str().map(str::to_string)
    })
    .expect("sent");
    let created = rig.standin.created();
    assert_eq!(created.len(), 1);
    assert_eq!(
        (
            created[0].from.as_str(),
            created[0].to.as_str(),
            created[0].body.as_str()
        ),
        (HOME, CALLER, "On my way & bringing cake")
    );
    assert_eq!(created[0].sid, sid);
    let callback = created[0].status_callback.clone().expect("StatusCallback");
    assert!(
        callback.starts_with(&format!("{PUBLIC}/api/webhooks/sms/status?outbox=")),
        "{callback}"
    );
    let r = webhook(
        h,
        callback.trim_start_matches(PUBLIC),
        &[
            ("MessageSid", &sid),
            ("MessageStatus", "delivered"),
            ("AccountSid", SID),
            ("From", HOME),
            ("To", CALLER),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let thread = h.call("GET", &thread_path, Some(admin), None).json();
    assert_eq!(thread["total"], 2);
    assert_eq!(thread["items"][1]["status"], "delivered");

    // Nothing is left to sync; bad input is a field error.
    assert_eq!(
        h.call("POST", "/api/messages/sync", Some(admin), None)
            .json()["queued"],
        0
    );
    let r = h.call(
        "POST",
        "/api/messages",
        Some(admin),
        Some(&json!({"did_id": did, "to": "5551234", "body": ""})),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR")
    );
    let r = h.call(
        "GET",
        "/api/messages/conversation/%2B15559870000",
        Some(admin),
        None,
    );
    assert_eq!(r.status, 400, "did_id is required");

    // A blocked sender's messages are not stored.
    let conn = homeline::store::open_connection(&h.data().join("homeline.db")).expect("open db");
    homeline::store::blocklist::insert(
        &conn,
        "+1555666",
        homeline::store::blocklist::PatternType::Prefix,
        "spam",
        homeline::clock::Timestamp::from_unix_millis(0),
    )
    .expect("block");
    drop(conn);
    let r = webhook(
        h,
        "/api/webhooks/sms/incoming",
        &[
            ("MessageSid", "SM0123456789abcdef0123456789abcde0"),
            ("From", "+15556660000"),
            ("To", HOME),
            ("Body", "WIN A PRIZE"),
            ("NumMedia", "0"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        h.call("GET", "/api/messages/conversations", Some(admin), None)
            .json()["total"],
        1
    );
}

#[test]
fn a_missed_call_ends_as_a_voicemail_with_local_audio_and_a_transcript() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let r = h.call("PUT", "/api/system/config", Some(admin), Some(&json!({"twilio": {"delete_after_download": true, "voicemail_greeting": "You reached the Smiths."}})));
    assert_eq!(r.status, 200, "{}", r.text());
    let call = [
        ("CallSid", CALL_SID),
        ("From", CALLER),
        ("To", HOME),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ];
    let ring = twiml(&webhook(h, "/api/webhooks/voice/incoming", &call));
    let dial_path = attr(&ring, "action").trim_start_matches(PUBLIC).to_string();
    let vm = twiml(&webhook(
        h,
        &dial_path,
        &[
            ("CallSid", CALL_SID),
            ("DialCallStatus", "no-answer"),
            ("From", CALLER),
            ("To", HOME),
        ],
    ));
    assert!(vm.contains("<Say>You reached the Smiths.</Say>"), "{vm}");
    let recording_cb = attr(&vm, "recordingStatusCallback")
        .trim_start_matches(PUBLIC)
        .to_string();
    let transcription_cb = attr(&vm, "transcribeCallback")
        .trim_start_matches(PUBLIC)
        .to_string();

    // A 2-second recording is discarded.
    let short = "RE0123456789abcdef0123456789abcde2";
    let r = webhook(
        h,
        &recording_cb,
        &[
            ("RecordingSid", short),
            ("RecordingUrl", "https://api.twilio.com/x"),
            ("RecordingStatus", "completed"),
            ("RecordingDuration", "2"),
            ("CallSid", CALL_SID),
            ("AccountSid", SID),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        h.call("GET", "/api/voicemails", Some(admin), None).json()["total"],
        0
    );

    let recording_url = rig.standin.recording_url();
    let params = [
        ("RecordingSid", RECORDING_SID),
        ("RecordingUrl", recording_url.as_str()),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "14"),
        ("RecordingChannels", "1"),
        ("RecordingSource", "RecordVerb"),
        ("CallSid", CALL_SID),
        ("AccountSid", SID),
    ];
    assert_eq!(webhook(h, &recording_cb, &params).status, 204);
    assert_eq!(
        webhook(h, &recording_cb, &params).status,
        204,
        "redelivered"
    );
    let list = h.call("GET", "/api/voicemails", Some(admin), None).json();
    assert_eq!(list["total"], 1, "{list}");
    let v = &list["items"][0];
    assert_eq!(
        (
            v["from_number"].as_str(),
            v["duration_secs"].as_i64(),
            v["is_read"].as_bool()
        ),
        (Some(CALLER), Some(14), Some(false))
    );
    let id = v["id"].as_i64().expect("id");
    assert_eq!(
        h.call("GET", "/api/voicemails/unread", Some(admin), None)
            .json()["count"],
        1
    );

    // The audio is downloaded to the Pi, then deleted at Twilio (privacy setting).
    let audio_url = wait_for(Duration::from_secs(15), || {
        h.call("GET", &format!("/api/voicemails/{id}"), Some(admin), None)
            .json()["audio_url"]
            .as_str()
            .map(str::to_string)
    })
    .expect("audio stored");
    let audio = h.call("GET", &audio_url, Some(admin), None);
    assert_eq!(
        (audio.status, audio.header("content-type")),
        (200, Some("audio/mpeg"))
    );
    assert_eq!(audio.body, RECORDING_AUDIO);
    assert!(h
        .data()
        .join(format!("voicemail/{RECORDING_SID}.mp3"))
        .exists());
    let part = h.call_with(
        "GET",
        &audio_url,
        Some(admin),
        None,
        &[("Range", "bytes=0-3")],
    );
    assert_eq!((part.status, part.body.as_slice()), (206, &b"ID3\x04"[..]));
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-3/{}", RECORDING_AUDIO.len()).as_str())
    );
    let bad = h.call_with(
        "GET",
        &audio_url,
        Some(admin),
        None,
        &[("Range", "bytes=9999-")],
    );
    assert_eq!(bad.status, 416);
    assert!(
        wait_for(Duration::from_secs(15), || rig
            .standin
            .deleted()
            .contains(&RECORDING_SID.to_string())
            .then_some(()))
        .is_some(),
        "deleted at Twilio"
    );

    // The transcript arrives later.
    let r = webhook(
        h,
        &transcription_cb,
        &[
            ("TranscriptionSid", "TR0123456789abcdef0123456789abcdef"),
            ("TranscriptionText", "Hi, it's Grandma, call me back"),
            ("TranscriptionStatus", "completed"),
            ("RecordingSid", RECORDING_SID),
            ("RecordingUrl", recording_url.as_str()),
            ("CallSid", CALL_SID),
            ("From", CALLER),
            ("To", HOME),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let v = h
        .call("GET", &format!("/api/voicemails/{id}"), Some(admin), None)
        .json();
    assert_eq!(v["transcript"], "Hi, it's Grandma, call me back");
    assert!(
        v.get("twilio_recording_url").is_none(),
        "no Twilio URL in the API"
    );

    // The call ends: its record says voicemail.
    let r = webhook(
        h,
        "/api/webhooks/voice/status",
        &[
            ("CallSid", CALL_SID),
            ("CallStatus", "completed"),
            ("CallDuration", "40"),
            ("From", CALLER),
            ("To", HOME),
            ("Direction", "inbound"),
        ],
    );
    assert_eq!(r.status, 204);
    let conn = homeline::store::open_connection(&h.data().join("homeline.db")).expect("open db");
    let disposition: String = conn
        .query_row(
            "SELECT disposition FROM cdrs WHERE call_sid = ?1",
            [CALL_SID],
            |r| r.get(0),
        )
        .expect("cdr");
    assert_eq!(disposition, "voicemail");
    drop(conn);

    let r = h.call(
        "PUT",
        &format!("/api/voicemails/{id}/read"),
        Some(admin),
        Some(&json!({"is_read": true})),
    );
    assert_eq!((r.status, r.json()["is_read"].as_bool()), (200, Some(true)));
    assert_eq!(
        h.call("GET", "/api/voicemails/unread", Some(admin), None)
            .json()["count"],
        0
    );
    let r = h.call(
        "DELETE",
        &format!("/api/voicemails/{id}"),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 204);
    assert!(!h
        .data()
        .join(format!("voicemail/{RECORDING_SID}.mp3"))
        .exists());
    assert_eq!(
        h.call("GET", &format!("/api/voicemails/{id}"), Some(admin), None)
            .status,
        404
    );
}

fn send(rig: &Rig, body: &str) -> i64 {
    let r = rig.h.call(
        "POST",
        "/api/messages",
        Some(&rig.admin),
        Some(&json!({"did_id": rig.did, "to": CALLER, "body": body})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()["id"].as_i64().expect("id")
}

fn sent_sid(rig: &Rig, id: i64, within: Duration) -> Option<String> {
    wait_for(within, || {
        let m = rig
            .h
            .call(
                "GET",
                &format!("/api/messages/{id}"),
                Some(&rig.admin),
                None,
            )
            .json();
        m["message_sid"].as_str().map(str::to_string)
    })
}

fn creates(standin: &StandIn) -> usize {
    standin
        .state
        .lock()
        .expect("state")
        .log
        .iter()
        .filter(|l| l.starts_with("POST ") && l.ends_with("/Messages.json"))
        .count()
}

#[test]
fn outbox_rides_out_500s_and_429_with_retry_after_then_delivers_once() {
    let rig = rig(&[]);
    rig.standin
        .script(&[Fault::ServerError, Fault::RateLimited(1)]);
    let id = send(&rig, "third time lucky");
    let sid = sent_sid(&rig, id, Duration::from_secs(20)).expect("delivered");
    assert_eq!(creates(&rig.standin), 3, "500, 429, then 201");
    let created = rig.standin.created();
    assert_eq!(created.len(), 1, "delivered exactly once");
    assert_eq!(created[0].sid, sid);
    let jobs = rig
        .h
        .call("GET", "/api/system/outbox", Some(&rig.admin), None)
        .json();
    let job = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|j| j["kind"] == "send_message")
        .expect("job")
        .clone();
    assert_eq!(
        (job["state"].as_str(), job["attempts"].as_u64()),
        (Some("done"), Some(3)),
        "{job}"
    );
}

#[test]
fn a_message_twilio_refuses_fails_alerts_and_does_not_hold_back_the_next() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let r = h.call(
        "POST",
        "/api/messages",
        Some(admin),
        Some(&json!({"did_id": rig.did, "to": INVALID_NUMBER, "body": "to nowhere"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let bad = r.json()["id"].as_i64().expect("id");
    let good = send(&rig, "to someone");
    assert!(
        sent_sid(&rig, good, Duration::from_secs(15)).is_some(),
        "the next message went out"
    );
    let m = h
        .call("GET", &format!("/api/messages/{bad}"), Some(admin), None)
        .json();
    assert_eq!(
        (m["status"].as_str(), m["error_code"].as_i64()),
        (Some("failed"), Some(21211)),
        "{m}"
    );
    let alerts = h
        .call("GET", "/api/system/alerts", Some(admin), None)
        .json();
    let alert = alerts["items"][0].clone();
    assert!(
        alert["message"]
            .as_str()
            .unwrap_or("")
            .contains("will not be retried"),
        "{alerts}"
    );
    let r = h.call(
        "DELETE",
        &format!("/api/system/alerts/{}", alert["id"]),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        h.call("GET", "/api/system/alerts", Some(admin), None)
            .json()["items"],
        json!([])
    );
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/api/system/alerts/{}", alert["id"]),
            Some(admin),
            None
        )
        .status,
        404
    );
    assert_eq!(
        rig.standin.created().len(),
        1,
        "the refused one was not retried"
    );
}

#[test]
fn outbox_alerts_after_three_failures_and_resumes_after_a_restart() {
    let mut rig = rig(&[]);
    rig.standin
        .outage
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let id = send(&rig, "sent through an outage");
    // 3 consecutive failures (about 0 + 1 + 2 s): an alert in the API and the log.
    let alert = wait_for(Duration::from_secs(20), || {
        let a = rig
            .h
            .call("GET", "/api/system/alerts", Some(&rig.admin), None)
            .json();
        a["items"].as_array().and_then(|i| i.first().cloned())
    })
    .expect("an alert");
    assert!(
        alert["message"]
            .as_str()
            .unwrap_or("")
            .contains("failed 3 times"),
        "{alert}"
    );
    let log = std::fs::read_to_string(rig.h.data().join("server.log")).unwrap_or_default();
    assert!(log.contains("ALERT"), "the alert is logged");
    assert_eq!(rig.standin.created().len(), 0);
    // Restart in the middle of the outage; Twilio comes back.
    rig.h.restart();
    rig.standin
        .outage
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let sid = sent_sid(&rig, id, Duration::from_secs(40)).expect("delivered after the restart");
    let created = rig.standin.created();
    assert_eq!((created.len(), created[0].sid.as_str()), (1, sid.as_str()));
    let a = rig
        .h
        .call("GET", "/api/system/alerts", Some(&rig.admin), None)
        .json();
    assert_eq!(
        a["items"].as_array().map(Vec::len),
        Some(0),
        "cleared by the success: {a}"
    );
}

fn kill9_test(point: &str, created_before_kill: usize) {
    let mut rig = rig(&[("HOMELINE_TEST_OUTBOX_PAUSE", point)]);
    let id = send(&rig, "exactly once, please");
    let marker = rig.h.data().join(format!("run/outbox-paused-{point}"));
    assert!(
        wait_for(Duration::from_secs(15), || marker.exists().then_some(())).is_some(),
        "paused at {point}"
    );
    assert_eq!(rig.standin.created().len(), created_before_kill);
    let env = env_for(&rig.standin, &[]);
    rig.h.kill9_and_restart(env);
    // The job is resumed once a lost request can no longer be in flight
    // (15 s after the attempt started), reconciled against Twilio's list.
    let sid = sent_sid(&rig, id, Duration::from_secs(45)).expect("delivered after kill -9");
    let created = rig.standin.created();
    assert_eq!(created.len(), 1, "exactly once: {created:?}");
    assert_eq!(created[0].sid, sid);
    let log = std::fs::read_to_string(rig.h.data().join("server.log")).unwrap_or_default();
    let expected = if created_before_kill == 1 {
        "had sent the message"
    } else {
        "had not sent the message"
    };
    assert!(log.contains(expected), "reconciled: {expected}");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test-hooks feature")]
fn kill_9_between_send_and_acknowledgement_delivers_exactly_once() {
    kill9_test("after_send", 1);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test-hooks feature")]
fn kill_9_after_the_attempt_is_recorded_but_before_sending_delivers_exactly_once() {
    kill9_test("before_send", 0);
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the test-hooks feature")]
fn after_a_kill_9_twilios_status_callback_records_the_lost_sid() {
    let mut rig = rig(&[("HOMELINE_TEST_OUTBOX_PAUSE", "after_send")]);
    let id = send(&rig, "the callback knows");
    let marker = rig.h.data().join("run/outbox-paused-after_send");
    assert!(wait_for(Duration::from_secs(15), || marker.exists().then_some(())).is_some());
    let env = env_for(&rig.standin, &[]);
    rig.h.kill9_and_restart(env);
    let created = rig.standin.created();
    assert_eq!(created.len(), 1);
    let callback = created[0].status_callback.clone().expect("StatusCallback");
    let r = webhook(
        &rig.h,
        callback.trim_start_matches(PUBLIC),
        &[
            ("MessageSid", &created[0].sid),
            ("MessageStatus", "sent"),
            ("From", HOME),
            ("To", CALLER),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let m = rig
        .h
        .call(
            "GET",
            &format!("/api/messages/{id}"),
            Some(&rig.admin),
            None,
        )
        .json();
    assert_eq!(
        (m["message_sid"].as_str(), m["status"].as_str()),
        (Some(created[0].sid.as_str()), Some("sent"))
    );
    // The resumed job finds the SID and finishes without asking Twilio again.
    let done = wait_for(Duration::from_secs(45), || {
        let jobs = rig
            .h
            .call("GET", "/api/system/outbox", Some(&rig.admin), None)
            .json();
        jobs["items"]
            .as_array()?
            .iter()
            .find(|j| j["kind"] == "send_message" && j["state"] == "done")
            .cloned()
    });
    assert!(done.is_some(), "the job completed");
    assert_eq!(rig.standin.created().len(), 1, "exactly once");
    let log = rig.standin.state.lock().expect("state").log.clone();
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("/Messages.json?")),
        "no reconciliation needed: {log:?}"
    );
}

#[test]
fn a_twilio_number_is_pointed_at_the_appliance_in_one_click() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let numbers = h
        .call("GET", "/api/twilio/numbers", Some(admin), None)
        .json();
    assert_eq!(numbers["items"][0]["sid"], NUMBER_SID);
    let r = h.call(
        "POST",
        &format!("/api/twilio/numbers/{NUMBER_SID}/connect"),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let update = wait_for(Duration::from_secs(15), || {
        rig.standin.number_updates().first().cloned()
    })
    .expect("updated at Twilio");
    assert_eq!(update.0, NUMBER_SID);
    let get = |k: &str| {
        update
            .1
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("VoiceUrl").as_deref(),
        Some("https://home.example.org/api/webhooks/voice/incoming")
    );
    assert_eq!(
        get("SmsUrl").as_deref(),
        Some("https://home.example.org/api/webhooks/sms/incoming")
    );
    assert_eq!(
        get("StatusCallback").as_deref(),
        Some("https://home.example.org/api/webhooks/voice/status")
    );
    let dids = h.call("GET", "/api/dids", Some(admin), None).json();
    assert!(
        dids["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|d| d["number"] == "+15551230009" && d["twilio_sid"] == NUMBER_SID),
        "{dids}"
    );
    assert_eq!(
        h.call(
            "POST",
            "/api/twilio/numbers/PNnope/connect",
            Some(admin),
            None
        )
        .status,
        404
    );
}

/// The failed job of an outbox listing, once there is one.
fn failed_job(rig: &Rig) -> Option<Value> {
    let jobs = rig
        .h
        .call(
            "GET",
            "/api/system/outbox?unfinished=true",
            Some(&rig.admin),
            None,
        )
        .json();
    jobs["items"]
        .as_array()?
        .iter()
        .find(|j| j["state"] == "failed")
        .cloned()
}

#[test]
fn a_failed_job_is_retried_on_request() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let r = h.call(
        "POST",
        "/api/messages",
        Some(admin),
        Some(&json!({"did_id": rig.did, "to": INVALID_NUMBER, "body": "to nowhere"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let job = wait_for(Duration::from_secs(15), || failed_job(&rig)).expect("the job fails");
    assert_eq!(creates(&rig.standin), 1);
    let path = format!("/api/system/outbox/{}/retry", job["id"]);
    let r = h.call("POST", &path, Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["state"].as_str(), r.json()["failures"].as_i64()),
        (Some("pending"), Some(0))
    );
    assert!(
        wait_for(Duration::from_secs(15), || (creates(&rig.standin) == 2)
            .then_some(()))
        .is_some(),
        "attempted again at once"
    );
    let again = wait_for(Duration::from_secs(15), || failed_job(&rig)).expect("fails again");
    assert_eq!(again["attempts"], 2, "{again}");
    assert_eq!(
        h.call("POST", "/api/system/outbox/999999/retry", Some(admin), None)
            .status,
        404
    );
}

#[test]
fn each_numbers_twilio_connection_state_is_shown() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let state_of = |number: &str| -> Value {
        let v = h
            .call("GET", "/api/twilio/connections", Some(admin), None)
            .json();
        assert_eq!(v["twilio"], "ok", "{v}");
        v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["number"] == number).cloned())
            .unwrap_or_else(|| panic!("{number} in {v}"))
    };
    // HOME was added by the wizard but is not in the Twilio account.
    assert_eq!(state_of(HOME)["state"], "missing");
    let r = h.call(
        "POST",
        &format!("/api/twilio/numbers/{NUMBER_SID}/connect"),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let connected = wait_for(Duration::from_secs(15), || {
        let s = state_of("+15551230009");
        (s["state"] == "connected").then_some(s)
    })
    .expect("connected once the update went through");
    assert_eq!(connected["number_sid"], NUMBER_SID);
    assert_eq!(connected["job_id"], r.json()["job_id"]);
    // Pointed elsewhere in the Twilio console.
    rig.standin
        .state
        .lock()
        .expect("state")
        .number_updates
        .push((
            NUMBER_SID.into(),
            vec![("VoiceUrl".into(), "https://elsewhere.example/voice".into())],
        ));
    let moved = state_of("+15551230009");
    assert_eq!(
        (moved["state"].as_str(), moved["detail"].as_str()),
        (Some("elsewhere"), Some("https://elsewhere.example/voice"))
    );
}

// ---- The outbox in-process: the real worker and Twilio executor against the
// stand-in, with a manual clock standing in for minutes of outage.

mod in_process {
    use super::*;
    use homeline::clock::{Clock, ManualClock, SharedClock};
    use homeline::outbox::worker::Worker;
    use homeline::outbox::{Outbox, Task};
    use homeline::secrets::SecretBox;
    use homeline::store::messages::{self, Direction, NewMessage};
    use homeline::store::{alerts, dids, Db};
    use homeline::twilio::jobs::TwilioJobs;

    struct Bench {
        standin: StandIn,
        worker: Worker<TwilioJobs>,
        clock: Arc<ManualClock>,
        db: Db,
        message_id: i64,
        _dir: tempfile::TempDir,
    }

    async fn bench() -> Bench {
        let standin = StandIn::start(SID, TOKEN);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn =
            homeline::store::open_connection(&dir.path().join("homeline.db")).expect("db");
        homeline::store::migrate::apply(&mut conn, &homeline::clock::SystemClock).expect("migrate");
        let (db, thread) = Db::start(conn);
        std::mem::forget(thread);
        // Twilio's dates are real time: start the manual clock there.
        let clock = Arc::new(ManualClock::new(homeline::clock::SystemClock.now()));
        let shared: SharedClock = clock.clone();
        let secrets = Arc::new(SecretBox::from_key(&[7; 32]).expect("key"));
        let sb = secrets.clone();
        let now = clock.now();
        let message_id = db
            .call(move |c| {
                let ch = homeline::sysconfig::parse_update(&json!({
                    "twilio": {"account_sid": SID, "auth_token": TOKEN},
                    "system": {"public_url": PUBLIC}
                }))
                .expect("valid");
                homeline::sysconfig::apply(
                    c,
                    &homeline::sysconfig::seal(&ch, &sb).expect("seal"),
                    now,
                )?;
                let did = dids::insert(c, HOME, "Home", None, now)?;
                let none = json!([]);
                let (id, _) = messages::insert_once(
                    c,
                    &NewMessage {
                        message_sid: None,
                        direction: Direction::Outbound,
                        did_id: did,
                        from_number: HOME,
                        to_number: CALLER,
                        body: "through the storm",
                        media: &none,
                        status: "pending",
                    },
                    now,
                )?;
                Outbox::enqueue_in(c, &Task::SendMessage { message_id: id }, now)?;
                Ok::<_, homeline::store::StoreError>(id)
            })
            .await
            .expect("seed");
        let outbox = Outbox::new(db.clone(), shared);
        let jobs = TwilioJobs::new(outbox.clone(), secrets, &standin.base, dir.path())
            .with_timeout(Duration::from_millis(400));
        Bench {
            standin,
            worker: Worker::new(outbox, jobs),
            clock,
            db,
            message_id,
            _dir: dir,
        }
    }

    async fn sid_of(b: &Bench) -> Option<String> {
        let id = b.message_id;
        b.db.call(move |c| messages::get(c, id))
            .await
            .expect("get")
            .message_sid
    }

    async fn open_alerts(b: &Bench) -> usize {
        b.db.call(|c| alerts::open(c)).await.expect("alerts").len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ten_minute_outage_compressed_by_the_clock_delivers_once_and_alerts() {
        let b = bench().await;
        b.standin
            .outage
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut attempts = Vec::new();
        let mut alert_at = None;
        for second in 0..600u64 {
            if b.worker.run_due().await.expect("pass") > 0 {
                attempts.push(second);
                if alert_at.is_none() && open_alerts(&b).await > 0 {
                    alert_at = Some(attempts.len());
                }
            }
            b.clock.advance(Duration::from_secs(1));
        }
        assert_eq!(
            alert_at,
            Some(3),
            "the alert comes with the third consecutive failure: {attempts:?}"
        );
        // 1 s doubling to 30 s (10 attempts in about 3.5 min), then every 5 min.
        assert!((11..=14).contains(&attempts.len()), "{attempts:?}");
        let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g <= 361),
            "never slower than 5 min + jitter: {gaps:?}"
        );
        assert!(
            gaps.last().is_some_and(|g| *g >= 239),
            "slow schedule by the end: {gaps:?}"
        );
        assert!(b.standin.created().is_empty());
        assert_eq!(sid_of(&b).await, None);

        b.standin
            .outage
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..400 {
            b.worker.run_due().await.expect("pass");
            if sid_of(&b).await.is_some() {
                break;
            }
            b.clock.advance(Duration::from_secs(1));
        }
        let created = b.standin.created();
        assert_eq!(created.len(), 1, "delivered exactly once after the outage");
        assert_eq!(sid_of(&b).await, Some(created[0].sid.clone()));
        assert_eq!(open_alerts(&b).await, 0, "the success clears the alert");
        // Nothing more happens, however long we wait.
        for _ in 0..10 {
            b.clock.advance(Duration::from_secs(600));
            assert_eq!(b.worker.run_due().await.expect("pass"), 0);
        }
        assert_eq!(b.standin.created().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outage_during_reconciliation_neither_loses_nor_duplicates() {
        let b = bench().await;
        b.standin.script(&[Fault::Slow(Duration::from_millis(900))]);
        assert_eq!(
            b.worker.run_due().await.expect("pass"),
            1,
            "sent, answer lost"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(b.standin.created().len(), 1);
        // Twilio goes away before we can ask what happened, for 10 minutes.
        b.standin
            .outage
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut tries = 0;
        for _ in 0..600 {
            b.clock.advance(Duration::from_secs(1));
            tries += b.worker.run_due().await.expect("pass");
        }
        assert!(tries >= 5, "it kept trying: {tries}");
        assert_eq!(b.standin.created().len(), 1, "never sent blindly");
        b.standin
            .outage
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..400 {
            b.clock.advance(Duration::from_secs(1));
            b.worker.run_due().await.expect("pass");
            if sid_of(&b).await.is_some() {
                break;
            }
        }
        let created = b.standin.created();
        assert_eq!(
            created.len(),
            1,
            "the first attempt's message is found, not resent"
        );
        assert_eq!(sid_of(&b).await, Some(created[0].sid.clone()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_that_cannot_take_the_recording_is_retried_not_given_up() {
        let b = bench().await;
        let url = b.standin.recording_url();
        let now = b.clock.now();
        let vm =
            b.db.call(move |c| {
                let did = dids::find_by_number(c, HOME)?.expect("did").id;
                let (id, _) = homeline::store::voicemails::insert_once(
                    c,
                    &homeline::store::voicemails::NewVoicemail {
                        did_id: did,
                        recording_sid: RECORDING_SID,
                        call_sid: None,
                        from_number: CALLER,
                        twilio_recording_url: Some(&url),
                        duration_secs: 9,
                    },
                    now,
                )?;
                Outbox::enqueue_in(
                    c,
                    &Task::DownloadRecording {
                        voicemail_id: id,
                        recording_sid: RECORDING_SID.into(),
                        url: url.clone(),
                    },
                    now,
                )?;
                Ok::<_, homeline::store::StoreError>(id)
            })
            .await
            .expect("seed");
        // A file where the voicemail directory should be: every write fails.
        let blocker = b._dir.path().join("voicemail");
        std::fs::write(&blocker, b"in the way").expect("blocker");
        b.worker.run_due().await.expect("pass");
        let jobs =
            b.db.call(|c| homeline::outbox::store::list(c, true, homeline::store::Page::ALL))
                .await
                .expect("jobs");
        let job = jobs
            .items
            .iter()
            .find(|j| j.kind == "download_recording")
            .expect("job");
        assert_eq!(
            (job.state.as_str(), job.failures),
            ("pending", 1),
            "{job:?}"
        );
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or("")
                .contains("cannot store the file"),
            "{job:?}"
        );
        std::fs::remove_file(&blocker).expect("unblock");
        b.clock.advance(Duration::from_secs(2));
        b.worker.run_due().await.expect("pass");
        let v =
            b.db.call(move |c| homeline::store::voicemails::get(c, vm))
                .await
                .expect("voicemail");
        assert_eq!(
            v.audio_path.as_deref(),
            Some(format!("voicemail/{RECORDING_SID}.mp3").as_str())
        );
        assert_eq!(
            std::fs::read(b._dir.path().join(v.audio_path.expect("path"))).expect("file"),
            RECORDING_AUDIO
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_after_of_a_429_is_honoured() {
        let b = bench().await;
        b.standin.script(&[Fault::RateLimited(120)]);
        assert_eq!(b.worker.run_due().await.expect("pass"), 1);
        assert!(b.standin.created().is_empty());
        b.clock.advance(Duration::from_secs(119));
        assert_eq!(
            b.worker.run_due().await.expect("pass"),
            0,
            "not before Retry-After"
        );
        b.clock.advance(Duration::from_secs(1));
        assert_eq!(b.worker.run_due().await.expect("pass"), 1);
        assert_eq!(b.standin.created().len(), 1);
        assert!(sid_of(&b).await.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_send_is_reconciled_not_resent() {
        let b = bench().await;
        // Twilio creates the message but answers after our timeout.
        b.standin.script(&[Fault::Slow(Duration::from_millis(900))]);
        assert_eq!(b.worker.run_due().await.expect("pass"), 1);
        assert_eq!(sid_of(&b).await, None, "no answer, no SID");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(b.standin.created().len(), 1, "but Twilio did create it");
        // Not retried before a lost request could still be in flight.
        b.clock.advance(Duration::from_secs(5));
        assert_eq!(b.worker.run_due().await.expect("pass"), 0);
        b.clock.advance(Duration::from_secs(11));
        assert_eq!(b.worker.run_due().await.expect("pass"), 1);
        let created = b.standin.created();
        assert_eq!(created.len(), 1, "reconciled, not resent");
        assert_eq!(sid_of(&b).await, Some(created[0].sid.clone()));
        let log = b.standin.state.lock().expect("state").log.clone();
        assert!(
            log.iter().any(|l| l.starts_with("GET ")
                && l.contains("/Messages.json?From=%2B15551230001&To=%2B15559870000")),
            "{log:?}"
        );
    }
}

#[test]
fn users_see_only_the_voicemail_and_messages_of_their_numbers() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let mut users = Vec::new();
    for email in ["kid@x.org", "gran@x.org"] {
        let r = h.call(
            "POST",
            "/api/users",
            Some(admin),
            Some(&json!({"email": email, "password": PW})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        users.push(r.json()["id"].as_i64().expect("id"));
    }
    // The household number belongs to gran only.
    let r = h.call(
        "PUT",
        &format!("/api/dids/{}/users", rig.did),
        Some(admin),
        Some(&json!({"user_ids": [users[1]]})),
    );
    assert_eq!(r.status, 200);
    let kid = h.login("kid@x.org", PW).expect("kid");
    let gran = h.login("gran@x.org", PW).expect("gran");

    let vm = twiml(&webhook(
        h,
        &format!(
            "/api/webhooks/voice/dial-result?did={}&from=%2B15559870000",
            rig.did
        ),
        &[("CallSid", CALL_SID), ("DialCallStatus", "no-answer")],
    ));
    let cb = attr(&vm, "recordingStatusCallback")
        .trim_start_matches(PUBLIC)
        .to_string();
    let rec = rig.standin.recording_url();
    // Here the call's final status arrives before its recording.
    let r = webhook(
        h,
        "/api/webhooks/voice/status",
        &[
            ("CallSid", CALL_SID),
            ("CallStatus", "completed"),
            ("CallDuration", "20"),
            ("From", CALLER),
            ("To", HOME),
            ("Direction", "inbound"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        webhook(
            h,
            &cb,
            &[
                ("RecordingSid", RECORDING_SID),
                ("RecordingUrl", rec.as_str()),
                ("RecordingStatus", "completed"),
                ("RecordingDuration", "9"),
                ("CallSid", CALL_SID)
            ]
        )
        .status,
        204
    );
    assert_eq!(
        webhook(
            h,
            "/api/webhooks/sms/incoming",
            &[
                ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
                ("From", CALLER),
                ("To", HOME),
                ("Body", "for gran"),
                ("NumMedia", "0")
            ]
        )
        .status,
        200
    );
    let vm_id = h.call("GET", "/api/voicemails", Some(&gran), None).json()["items"][0]["id"]
        .as_i64()
        .expect("gran sees it");
    let msg_id = h
        .call("GET", "/api/messages/conversations", Some(&gran), None)
        .json()["total"]
        .as_u64();
    assert_eq!(msg_id, Some(1));
    let thread = format!(
        "/api/messages/conversation/%2B15559870000?did_id={}",
        rig.did
    );
    let msg_id = h.call("GET", &thread, Some(&gran), None).json()["items"][0]["id"]
        .as_i64()
        .expect("gran reads it");

    assert_eq!(
        h.call("GET", "/api/voicemails", Some(&kid), None).json()["total"],
        0
    );
    assert_eq!(
        h.call("GET", "/api/voicemails/unread", Some(&kid), None)
            .json()["count"],
        0
    );
    assert_eq!(
        h.call("GET", "/api/messages/conversations", Some(&kid), None)
            .json()["total"],
        0
    );
    assert_eq!(
        h.call("GET", "/api/messages/unread/count", Some(&kid), None)
            .json()["count"],
        0
    );
    for (method, path, body) in [
        ("GET", format!("/api/voicemails/{vm_id}"), None),
        ("GET", format!("/api/voicemails/{vm_id}/audio"), None),
        (
            "PUT",
            format!("/api/voicemails/{vm_id}/read"),
            Some(json!({"is_read": true})),
        ),
        ("DELETE", format!("/api/voicemails/{vm_id}"), None),
        ("GET", format!("/api/messages/{msg_id}"), None),
        ("GET", thread.clone(), None),
        (
            "PUT",
            format!(
                "/api/messages/conversation/%2B15559870000/read?did_id={}",
                rig.did
            ),
            None,
        ),
        (
            "POST",
            "/api/messages".to_string(),
            Some(json!({"did_id": rig.did, "to": CALLER, "body": "not mine"})),
        ),
    ] {
        let r = h.call(method, &path, Some(&kid), body.as_ref());
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "NOT_FOUND"),
            "{method} {path} as kid: {}",
            r.text()
        );
    }
    assert!(
        rig.standin.created().is_empty(),
        "kid could not send from gran's number"
    );
    let conn = homeline::store::open_connection(&h.data().join("homeline.db")).expect("open db");
    let disposition: String = conn
        .query_row(
            "SELECT disposition FROM cdrs WHERE call_sid = ?1",
            [CALL_SID],
            |r| r.get(0),
        )
        .expect("cdr");
    assert_eq!(
        disposition, "voicemail",
        "corrected when the recording arrived"
    );
    assert_eq!(
        h.call(
            "GET",
            &format!("/api/voicemails/{vm_id}"),
            Some(&gran),
            None
        )
        .status,
        200
    );
    for path in [
        "/api/system/alerts",
        "/api/system/outbox",
        "/api/twilio/numbers",
    ] {
        assert_eq!(h.call("GET", path, Some(&gran), None).status, 403, "{path}");
    }
}

#[test]
fn an_uploaded_greeting_is_played_instead_of_the_spoken_one() {
    let rig = rig(&[]);
    let (h, admin) = (&rig.h, rig.admin.as_str());
    let cookie = format!("homeline_session={admin}");
    let upload = |ct: &str, body: &[u8]| {
        h.request(
            "PUT",
            &format!("/api/dids/{}/greeting", rig.did),
            &[
                ("Cookie", &cookie),
                ("X-Requested-With", "homeline"),
                ("Content-Type", ct),
            ],
            body,
        )
    };
    assert_eq!(upload("text/plain", b"hello").status, 415);
    assert_eq!(upload("audio/mpeg", b"<html>not audio</html>").status, 400);
    let audio = b"ID3\x04\x00greeting-frames";
    let r = upload("audio/mpeg", audio);
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["greeting"].as_str().expect("url").to_string();

    let dial = format!(
        "/api/webhooks/voice/dial-result?did={}&from=%2B15559870000",
        rig.did
    );
    let vm = twiml(&webhook(
        h,
        &dial,
        &[("CallSid", CALL_SID), ("DialCallStatus", "no-answer")],
    ));
    assert!(vm.contains(&format!("<Play>{PUBLIC}{url}</Play>")), "{vm}");
    assert!(!vm.contains("<Say>"), "{vm}");
    // Twilio fetches it without a session.
    let r = h.get(&url);
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_slice()),
        (200, Some("audio/mpeg"), &audio[..])
    );
    assert_eq!(
        h.get("/api/greetings/1-00000000000000000000000000000000.mp3")
            .status,
        404
    );
    let (ok, out) = python("twiml", &json!([vm]));
    assert!(ok, "{out}");

    // A new upload replaces the old file; deleting returns to <Say>.
    let r = upload("audio/mpeg", audio);
    let url2 = r.json()["greeting"].as_str().expect("url").to_string();
    assert_ne!(url, url2);
    assert_eq!(h.get(&url).status, 404);
    let r = h.call(
        "DELETE",
        &format!("/api/dids/{}/greeting", rig.did),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 204);
    let vm = twiml(&webhook(
        h,
        &dial,
        &[("CallSid", CALL_SID), ("DialCallStatus", "no-answer")],
    ));
    assert!(vm.contains("<Say>") && !vm.contains("<Play>"), "{vm}");
}
