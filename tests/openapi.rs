//! The OpenAPI document (`GET /api/openapi.json`) against what the running
//! appliance answers: the JSON GET routes are called as an administrator on
//! a household with a row of every kind, and each answer is checked against
//! the schema the document gives for its status. Shapes no GET can show
//! without a live call or registration (calls, contacts, bans, Twilio's
//! numbers) are checked by serialising the server's own types.
//!
//! The checker knows the subset of JSON Schema the document uses and
//! refuses any other keyword, so the document cannot grow a construct that
//! this test silently ignores.

mod common;

use std::path::Path;

use serde_json::{json, Value};

use common::twilio::{StandIn, NUMBER_SID, SID, TOKEN};
use common::{setup_admin, Homeline, Start};
use homeline::twilio::client::encode_component;

const PW: &str = "blue kettle on the hob";
const FILE: &str = "src/http/openapi.json";

/// Annotations: they constrain nothing.
const ANNOTATIONS: &[&str] = &["description", "format", "examples", "title", "default"];

/// Checks `v` against `schema` (resolving `$ref`s in `doc`); problems are
/// pushed with the JSON path `at`.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        panic!("{FILE}: a schema at {at} is not an object: {schema}");
    };
    for key in s.keys() {
        let known = [
            "$ref",
            "type",
            "enum",
            "const",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "minItems",
            "maxItems",
            "minimum",
            "maximum",
            "allOf",
            "anyOf",
        ];
        assert!(
            known.contains(&key.as_str()) || ANNOTATIONS.contains(&key.as_str()),
            "{FILE}: the schema checker of tests/openapi.rs does not know `{key}` (at {at}); teach it or use what it knows"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| doc.pointer(p))
            .unwrap_or_else(|| panic!("{FILE}: unresolved $ref {r}"));
        check(doc, target, v, at, errs);
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(doc, sub, v, at, errs);
        }
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let attempts: Vec<Vec<String>> = any
            .iter()
            .map(|sub| {
                let mut e = Vec::new();
                check(doc, sub, v, at, &mut e);
                e
            })
            .collect();
        if attempts.iter().all(|e| !e.is_empty()) {
            errs.push(format!(
                "{at}: matches none of anyOf: {}",
                attempts.concat().join("; ")
            ));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("{FILE}: type at {at} must be a string or a list"),
        };
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            other => panic!("{FILE}: unknown type {other:?} at {at}"),
        });
        if !ok {
            errs.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            errs.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errs.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if s.get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{at}: {v} is below the minimum"));
        }
        if s.get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: {v} is above the maximum"));
        }
    }
    if let Some(o) = v.as_object() {
        for name in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(name) {
                errs.push(format!("{at}: the required property `{name}` is missing"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => check(doc, sub, x, &here, errs),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!(
                        "{here}: the server sends `{k}` but the schema does not document it"
                    )),
                    Some(sub @ Value::Object(_)) => check(doc, sub, x, &here, errs),
                    _ => {}
                },
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                check(doc, items, x, &format!("{at}[{i}]"), errs);
            }
        }
        let len = a.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errs.push(format!("{at}: fewer than minItems items"));
        }
        if s.get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errs.push(format!("{at}: more than maxItems items"));
        }
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Checks `v` against `components/schemas/<name>`.
fn conforms(doc: &Value, name: &str, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(doc, &schema_ref(name), v, name, &mut errs);
    errs
}

/// A household with one row of every kind, written before the appliance
/// starts (as `common::provision_household` does): `(did id, device id,
/// voicemail id, message id)`.
fn provision(dir: &Path) -> (i64, i64, i64, i64) {
    use homeline::outbox::{store as outbox, Task};
    use homeline::store::cdrs::{self, Cdr, Direction, Disposition};
    use homeline::store::messages::{self, NewMessage};
    use homeline::store::voicemails::{self, NewVoicemail};
    use homeline::store::{alerts, devices, dids, users};
    let clock: homeline::clock::SharedClock = std::sync::Arc::new(homeline::clock::SystemClock);
    let mut conn = homeline::app::open_database(dir, &clock).expect("open database");
    let secrets = homeline::secrets::SecretBox::load_or_create(dir).expect("secret key");
    let now = clock.now();
    let gran = users::insert(
        &conn,
        &users::NewUser {
            email: "gran@home.test",
            display_name: "Gran",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            role: users::Role::User,
        },
        now,
    )
    .expect("user");
    let did = dids::insert(&conn, "+15551230000", "Home", None, now).expect("did");
    dids::assign(&conn, did, gran).expect("assign");
    let sealed = secrets
        .seal(devices::SIP_PASSWORD_CONTEXT, b"kitchen-secret-1")
        .expect("seal");
    let device = devices::insert(
        &conn,
        &devices::DeviceFields {
            user_id: Some(gran),
            name: "Kitchen",
            username: "kitchen",
            device_type: devices::DeviceType::Yealink,
            recording_enabled: false,
        },
        &sealed,
        now,
    )
    .expect("device")
    .0;
    cdrs::insert(
        &conn,
        &Cdr {
            id: 0,
            call_sid: Some("CA0123456789abcdef0123456789abcdef".into()),
            sip_call_id: Some("abc@127.0.0.1".into()),
            direction: Direction::Inbound,
            from_number: "+15559870000".into(),
            to_number: "+15551230000".into(),
            did_id: Some(did),
            device_id: Some(device),
            started_at: now.to_string(),
            answered_at: Some(now.to_string()),
            ended_at: Some(now.to_string()),
            duration_secs: 42,
            disposition: Disposition::Answered,
            twilio_status: Some("completed".into()),
            hangup_cause: Some("bye".into()),
            recording_path: None,
            spam_score: Some(0.25),
        },
    )
    .expect("cdr");
    let (voicemail, _) = voicemails::insert_once(
        &conn,
        &NewVoicemail {
            did_id: did,
            recording_sid: "RE0123456789abcdef0123456789abcdef",
            call_sid: Some("CA0123456789abcdef0123456789abcdef"),
            from_number: "+15559870000",
            twilio_recording_url: None,
            duration_secs: 7,
        },
        now,
    )
    .expect("voicemail");
    voicemails::set_transcript(&conn, voicemail, "Call me back").expect("transcript");
    let media = json!([
        {"index": 0, "content_type": "image/jpeg", "path": null, "size": null},
        {"index": 1, "content_type": "text/x-evil", "path": null, "size": null, "rejected": "media type not accepted"},
    ]);
    let (message, _) = messages::insert_once(
        &conn,
        &NewMessage {
            message_sid: Some("MM0123456789abcdef0123456789abcdef"),
            direction: messages::Direction::Inbound,
            did_id: did,
            from_number: "+15559870000",
            to_number: "+15551230000",
            body: "a picture",
            media: &media,
            status: "received",
        },
        now,
    )
    .expect("message");
    // A phone in DND with a schedule, so GET /api/dnd shows every field.
    let bedtime = r#"{"weekly":[{"days":["mon","fri"],"from":"21:00","to":"07:00"}],"dates":[{"from":"2026-12-24","to":"2026-12-26","label":"Christmas"}]}"#;
    homeline::store::dnd::put(
        &conn,
        homeline::store::dnd::Scope::Device,
        device,
        false,
        Some(bedtime),
        now,
    )
    .expect("dnd");
    messages::set_media_item(&conn, message, 0, "mms/1/0.jpg", 1234, "image/jpeg").expect("media");
    let pending = json!([{ "url": "https://example.org/a.png" }]);
    messages::insert_once(
        &conn,
        &NewMessage {
            message_sid: None,
            direction: messages::Direction::Outbound,
            did_id: did,
            from_number: "+15551230000",
            to_number: "+15559870000",
            body: "thanks",
            media: &pending,
            status: "pending",
        },
        now,
    )
    .expect("outbound message");
    messages::insert_auto_reply(
        &conn,
        &NewMessage {
            message_sid: None,
            direction: messages::Direction::Outbound,
            did_id: did,
            from_number: "+15551230000",
            to_number: "+15559870000",
            body: "We're asleep; we'll answer in the morning.",
            media: &json!([]),
            status: "pending",
        },
        now,
    )
    .expect("auto-reply message");
    for trigger in [
        json!({"type": "dnd"}),
        json!({"type": "keyword", "keywords": ["hours"], "match": "contains"}),
        json!({"type": "after_hours", "schedule": {
            "weekly": [{"days": ["fri"], "from": "21:00", "to": "07:00"}],
            "dates": [{"from": "2026-12-24", "to": "2026-12-26", "label": "Christmas"}]}}),
    ] {
        homeline::store::auto_replies::insert(
            &conn,
            &homeline::store::auto_replies::AutoReply {
                id: 0,
                did_id: did,
                trigger,
                reply_text: "Back soon".into(),
                enabled: true,
            },
        )
        .expect("auto-reply");
    }
    alerts::raise(&conn, "outbox:1", "a job failed 3 times", now).expect("alert");
    outbox::enqueue(
        &conn,
        &Task::DeleteRecording {
            recording_sid: "RE0123456789abcdef0123456789abcdef".into(),
        },
        now,
    )
    .expect("job");
    // A caller list and a rule with every kind of condition.
    let vip = homeline::rules::store::create_list(
        &mut conn,
        &homeline::rules::model::CallerListInput {
            name: "VIP".into(),
            numbers: vec!["+15559870000".into()],
        },
        now,
    )
    .expect("caller list");
    let rule: homeline::rules::model::RuleInput = serde_json::from_value(json!({
        "name": "Everything",
        "conditions": [
            {"type": "time", "outside": true, "schedule": {
                "weekly": [{"days": ["mon", "fri"], "from": "21:00", "to": "07:00"}],
                "dates": [{"from": "2026-12-24", "to": "2026-12-26", "label": "Christmas"}]}},
            {"type": "caller", "match": "prefix", "value": "+1555"},
            {"type": "caller_list", "list_id": vip.id},
            {"type": "withheld"}, {"type": "spam"}, {"type": "dnd"},
            {"type": "verification", "verstat": ["TN-Validation-Failed-A", "none"]}
        ],
        "action": {"type": "sequence", "steps": [{"devices": [device], "secs": 15}]}
    }))
    .expect("rule");
    homeline::rules::store::create_rule(&conn, did, &rule, now).expect("rule");
    (did, device, voicemail, message)
}

/// The documented answer of `method pattern` with `status` (or `default`).
fn response<'a>(doc: &'a Value, method: &str, pattern: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][pattern][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {pattern} is not in {FILE}");
    let responses = &op["responses"];
    let mut resp = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{method} {pattern}: status {status} is not documented"));
    while let Some(r) = resp.get("$ref").and_then(Value::as_str) {
        resp = doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved {r}"));
    }
    resp
}

/// The documented schema of `method pattern`'s answer with `status` as JSON.
fn documented<'a>(doc: &'a Value, method: &str, pattern: &str, status: u16) -> &'a Value {
    let schema = &response(doc, method, pattern, status)["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {pattern}: status {status} has no application/json schema in {FILE}"
    );
    schema
}

#[test]
fn the_servers_answers_match_the_documented_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (did, device, voicemail, message) = provision(dir.path());
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        ..Start::default()
    });
    let admin = setup_admin(&h, "mum@home.test", PW);

    // The document as served is the checked-in one.
    let r = h.get("/api/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    let checked_in: Value = serde_json::from_str(homeline::http::openapi::DOCUMENT).expect("JSON");
    assert_eq!(doc, checked_in);
    let etag = r.header("etag").expect("etag").to_string();
    let r = h.request("GET", "/api/openapi.json", &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 304);

    let me = h.call("GET", "/api/me", Some(&admin), None).json();
    let admin_id = me["user"]["id"].as_i64().expect("id");
    let conversation = format!("/api/messages/conversation/%2B15559870000?did_id={did}");
    // (pattern, concrete path, session?)
    let calls: Vec<(&str, String, bool)> = vec![
        ("/health", "/health".into(), false),
        ("/api/health/ready", "/api/health/ready".into(), false),
        ("/api/setup/status", "/api/setup/status".into(), false),
        ("/api/setup/network", "/api/setup/network".into(), true),
        ("/api/me", "/api/me".into(), true),
        ("/api/users", "/api/users".into(), true),
        ("/api/users/{id}", format!("/api/users/{admin_id}"), true),
        ("/api/devices", "/api/devices".into(), true),
        ("/api/devices/{id}", format!("/api/devices/{device}"), true),
        ("/api/dnd", "/api/dnd".into(), true),
        (
            "/api/devices/{id}/credentials",
            format!("/api/devices/{device}/credentials"),
            true,
        ),
        (
            "/api/devices/registrations",
            "/api/devices/registrations".into(),
            true,
        ),
        ("/api/sip/bans", "/api/sip/bans".into(), true),
        ("/api/network", "/api/network".into(), true),
        ("/api/dids", "/api/dids".into(), true),
        ("/api/dids/{id}", format!("/api/dids/{did}"), true),
        (
            "/api/dids/{id}/rules",
            format!("/api/dids/{did}/rules"),
            true,
        ),
        ("/api/caller-lists", "/api/caller-lists".into(), true),
        ("/api/calls", "/api/calls".into(), true),
        ("/api/cdrs", "/api/cdrs".into(), true),
        ("/api/system/config", "/api/system/config".into(), true),
        (
            "/api/system/hold-music",
            "/api/system/hold-music".into(),
            true,
        ),
        ("/api/system/outbox", "/api/system/outbox".into(), true),
        ("/api/notifications", "/api/notifications".into(), true),
        ("/api/webhooks", "/api/webhooks".into(), true),
        ("/api/system/alerts", "/api/system/alerts".into(), true),
        ("/api/certificate", "/api/certificate".into(), true),
        ("/api/voicemails", "/api/voicemails".into(), true),
        (
            "/api/voicemails/unread",
            "/api/voicemails/unread".into(),
            true,
        ),
        (
            "/api/voicemails/{id}",
            format!("/api/voicemails/{voicemail}"),
            true,
        ),
        (
            "/api/messages/conversations",
            "/api/messages/conversations".into(),
            true,
        ),
        ("/api/messages/conversation/{number}", conversation, true),
        (
            "/api/messages/{id}",
            format!("/api/messages/{message}"),
            true,
        ),
        (
            "/api/messages/unread/count",
            "/api/messages/unread/count".into(),
            true,
        ),
        (
            "/api/twilio/sip-credentials",
            "/api/twilio/sip-credentials".into(),
            true,
        ),
        ("/api/blocklist", "/api/blocklist".into(), true),
        (
            "/api/blocklist/check",
            "/api/blocklist/check?number=%2B19005551234".into(),
            true,
        ),
        (
            "/api/twilio/connections",
            "/api/twilio/connections".into(),
            true,
        ),
        ("/api/diagnostics", "/api/diagnostics".into(), true),
        (
            "/api/system/startup-settings",
            "/api/system/startup-settings".into(),
            true,
        ),
        (
            "/api/dids/{id}/greeting",
            format!("/api/dids/{did}/greeting"),
            true,
        ),
        (
            "/api/dids/{id}/auto-replies",
            format!("/api/dids/{did}/auto-replies"),
            true,
        ),
    ];
    // JSON GETs left out, and why; every other documented JSON GET must be
    // called above, so a new one cannot go unchecked.
    let not_called: &[(&str, &str)] = &[
        (
            "/api/openapi.json",
            "compared with the checked-in file above",
        ),
        (
            "/api/twilio/numbers",
            "needs Twilio: called with the stand-in in writes_take_and_answer_the_documented_shapes",
        ),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (pattern, item) in paths {
        let Some(get) = item.get("get") else { continue };
        let json_ok = get["responses"]["200"]["content"]
            .get("application/json")
            .is_some();
        let covered = calls.iter().any(|(p, _, _)| p == pattern)
            || not_called.iter().any(|(p, _)| p == pattern);
        assert!(
            !json_ok || covered,
            "GET {pattern} answers JSON but tests/openapi.rs does not call it: add it to `calls` (or to `not_called`, saying why)"
        );
    }

    let mut problems = Vec::new();
    let mut non_empty = 0;
    for (pattern, path, session) in &calls {
        let token = session.then_some(admin.as_str());
        let r = h.call("GET", path, token, None);
        assert!(
            r.status < 300 || r.status == 503,
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "GET {path}"
        );
        let body = r.json();
        if body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            non_empty += 1;
        }
        let schema = documented(&doc, "GET", pattern, r.status);
        let mut errs = Vec::new();
        check(&doc, schema, &body, &format!("GET {path}"), &mut errs);
        problems.extend(errs);
    }
    assert!(
        non_empty >= 9,
        "the household fills the lists, so items are checked too ({non_empty})"
    );

    // Error answers are the documented Error, with their documented status.
    let errors: Vec<(&str, String, Option<&str>, u16)> = vec![
        ("/api/me", "/api/me".into(), None, 401),
        (
            "/api/devices/{id}",
            "/api/devices/999999".into(),
            Some(&admin),
            404,
        ),
        (
            "/api/users",
            "/api/users?page=0&per_page=101".into(),
            Some(&admin),
            400,
        ),
        (
            "/api/cdrs",
            "/api/cdrs?direction=sideways".into(),
            Some(&admin),
            400,
        ),
    ];
    for (pattern, path, token, status) in &errors {
        let r = h.call("GET", path, *token, None);
        assert_eq!(r.status, *status, "GET {path}: {}", r.text());
        let schema = documented(&doc, "GET", pattern, r.status);
        assert_eq!(schema, &schema_ref("Error"), "GET {pattern} {status}");
        let mut errs = Vec::new();
        check(&doc, schema, &r.json(), &format!("GET {path}"), &mut errs);
        problems.extend(errs);
    }
    assert!(
        problems.is_empty(),
        "the server's answers differ from {FILE}:\n{}",
        problems.join("\n")
    );
}

/// The documented request schema of `method pattern` (JSON bodies).
fn request_schema<'a>(doc: &'a Value, method: &str, pattern: &str) -> &'a Value {
    let schema = &doc["paths"][pattern][method.to_ascii_lowercase()]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {pattern}: no application/json request body in {FILE}"
    );
    schema
}

#[test]
fn writes_take_and_answer_the_documented_shapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (did, device, voicemail, _) = provision(dir.path());
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![("HOMELINE_TWILIO_API_BASE".into(), standin.base.clone())],
        ..Start::default()
    });
    let doc: Value = serde_json::from_str(homeline::http::openapi::DOCUMENT).expect("JSON");

    let setup = json!({
        "admin": { "email": "mum@home.test", "password": PW, "display_name": "Mum" },
        "timezone": "Europe/London",
        "twilio": { "account_sid": SID, "auth_token": TOKEN },
        "phone_numbers": [{ "number": "+15551239999", "name": "Office" }],
    });
    let r = h.call("POST", "/api/setup/complete", None, Some(&setup));
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("session");
    assert!(
        r.json()["twilio"]["friendly_name"].is_string(),
        "{}",
        r.text()
    );
    let mut problems = conforms(&doc, "SetupResult", &r.json());
    problems.extend(check_body(&doc, "POST", "/api/setup/complete", &setup));

    let fresh = json!({ "email": "kid@home.test", "display_name": "Kid", "password": PW });
    let r = h.call("POST", "/api/users", Some(&admin), Some(&fresh));
    let kid = r.json()["id"].as_i64().unwrap_or(0);
    let steps: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        (
            "POST",
            "/api/auth/login",
            "/api/auth/login".into(),
            Some(json!({ "email": "mum@home.test", "password": PW })),
            200,
        ),
        (
            "PUT",
            "/api/users/{id}",
            format!("/api/users/{kid}"),
            Some(json!({ "display_name": "Big kid", "role": "user", "password": null })),
            200,
        ),
        (
            "POST",
            "/api/users",
            "/api/users".into(),
            Some(json!({ "email": "not an address", "password": "short" })),
            400,
        ),
        (
            "POST",
            "/api/users",
            "/api/users".into(),
            Some(fresh.clone()),
            409,
        ),
        (
            "PUT",
            "/api/dids/{id}/users",
            format!("/api/dids/{did}/users"),
            Some(json!({ "user_ids": [kid] })),
            200,
        ),
        (
            "POST",
            "/api/devices",
            "/api/devices".into(),
            Some(
                json!({ "name": "Hall", "username": "hall", "device_type": "grandstream", "user_id": kid }),
            ),
            201,
        ),
        (
            "PUT",
            "/api/devices/{id}",
            format!("/api/devices/{device}"),
            Some(json!({ "name": "Kitchen", "username": "kitchen", "recording_enabled": true })),
            200,
        ),
        (
            "PUT",
            "/api/voicemails/{id}/read",
            format!("/api/voicemails/{voicemail}/read"),
            Some(json!({ "is_read": true })),
            200,
        ),
        (
            "PUT",
            "/api/messages/conversation/{number}/read",
            format!("/api/messages/conversation/%2B15559870000/read?did_id={did}"),
            None,
            200,
        ),
        (
            "POST",
            "/api/messages",
            "/api/messages".into(),
            Some(json!({ "did_id": did, "to": "+15559870000", "body": "on my way" })),
            202,
        ),
        (
            "POST",
            "/api/messages/sync",
            "/api/messages/sync".into(),
            None,
            202,
        ),
        (
            "PUT",
            "/api/system/config",
            "/api/system/config".into(),
            Some(
                json!({ "system": { "public_url": "https://home.example.org" }, "smtp": { "port": 587 } }),
            ),
            200,
        ),
        (
            "PUT",
            "/api/system/config",
            "/api/system/config".into(),
            Some(json!({ "smtp": { "colour": "blue" } })),
            400,
        ),
        (
            "GET",
            "/api/twilio/numbers",
            "/api/twilio/numbers".into(),
            None,
            200,
        ),
        (
            "POST",
            "/api/twilio/numbers/{sid}/connect",
            format!("/api/twilio/numbers/{NUMBER_SID}/connect"),
            None,
            202,
        ),
        (
            "DELETE",
            "/api/system/hold-music",
            "/api/system/hold-music".into(),
            None,
            200,
        ),
        (
            "POST",
            "/api/calls/{id}/hold",
            "/api/calls/4242/hold".into(),
            Some(json!({ "on": true })),
            404,
        ),
        (
            "POST",
            "/api/calls/{id}/transfer",
            "/api/calls/4242/transfer".into(),
            Some(json!({ "to": "hall" })),
            404,
        ),
        (
            "DELETE",
            "/api/calls/{id}",
            "/api/calls/4242".into(),
            None,
            404,
        ),
        (
            "DELETE",
            "/api/users/{id}",
            format!("/api/users/{kid}"),
            None,
            200,
        ),
        (
            "POST",
            "/api/auth/logout",
            "/api/auth/logout".into(),
            None,
            200,
        ),
    ];
    for (method, pattern, path, body, status) in &steps {
        let r = h.call(method, path, Some(&admin), body.as_ref());
        let what = format!("{method} {path}");
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        if let Some(b) = body.as_ref().filter(|_| *status < 300) {
            problems.extend(check_body(&doc, method, pattern, b));
        }
        let schema = documented(&doc, method, pattern, r.status);
        let mut errs = Vec::new();
        check(&doc, schema, &r.json(), &what, &mut errs);
        problems.extend(errs);
    }

    // Twilio's webhooks: a signed form in; TwiML, nothing, or the error
    // format out, each as documented.
    let call = "CA0123456789abcdef0123456789abcdef";
    let hooks: Vec<WebhookCase> = vec![
        (
            "/api/webhooks/voice/incoming",
            vec![
                ("CallSid", call),
                ("From", "+15559870000"),
                ("To", "+15551230000"),
            ],
            200,
        ),
        (
            "/api/webhooks/sms/incoming",
            vec![
                ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
                ("From", "+15559870000"),
                ("To", "+15551230000"),
                ("Body", "hello"),
                ("NumMedia", "0"),
            ],
            200,
        ),
        (
            "/api/webhooks/voice/status",
            vec![("CallSid", call), ("CallStatus", "ringing")],
            204,
        ),
        ("/api/webhooks/sms/status", vec![("MessageSid", "")], 400),
    ];
    for (path, params, status) in hooks {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let form: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        let url = format!("https://home.example.org{path}");
        let signature = homeline::twilio::signature::compute(TOKEN, &url, &params);
        let r = h.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            form.join("&").as_bytes(),
        );
        assert_eq!(r.status, status, "POST {path}: {}", r.text());
        assert!(
            doc["paths"][path]["post"]["requestBody"]["content"]
                .get("application/x-www-form-urlencoded")
                .is_some(),
            "POST {path}: a form body in {FILE}"
        );
        let documented_types: Vec<&String> = response(&doc, "POST", path, status)["content"]
            .as_object()
            .map(|c| c.keys().collect())
            .unwrap_or_default();
        let sent = r
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_string());
        match sent {
            None => assert!(
                r.body.is_empty() && documented_types.is_empty(),
                "POST {path}: {status} without a body, documented {documented_types:?}"
            ),
            Some(t) => assert!(
                documented_types.iter().any(|d| **d == t),
                "POST {path}: {status} is {t}, documented {documented_types:?}"
            ),
        }
        if r.header("content-type") == Some("application/json") {
            let mut errs = Vec::new();
            let schema = documented(&doc, "POST", path, status);
            check(&doc, schema, &r.json(), &format!("POST {path}"), &mut errs);
            problems.extend(errs);
        }
    }
    assert!(
        problems.is_empty(),
        "the server's answers differ from {FILE}:\n{}",
        problems.join("\n")
    );
}

/// A webhook's path, form parameters and expected status.
type WebhookCase = (&'static str, Vec<(&'static str, &'static str)>, u16);

/// A body the server accepts must fit the documented request schema.
fn check_body(doc: &Value, method: &str, pattern: &str, body: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let at = format!("request body of {method} {pattern}");
    check(
        doc,
        request_schema(doc, method, pattern),
        body,
        &at,
        &mut errs,
    );
    errs
}

/// Shapes that need a live call, a registered phone, a banned source or
/// Twilio to appear in an answer: serialised from the server's own types.
#[test]
fn the_server_types_behind_live_answers_match_the_documented_schemas() {
    let doc: Value = serde_json::from_str(homeline::http::openapi::DOCUMENT).expect("JSON");
    let call = homeline::endpoint::CallInfo {
        id: 3,
        direction: "inbound",
        from: "+15559870000".into(),
        to: "kitchen".into(),
        state: "answered",
        started_at: "2026-11-21T10:00:00Z".into(),
        answered_at: Some("2026-11-21T10:00:05Z".into()),
        on_hold: false,
        device_id: Some(1),
        rtp_received: [10, 12],
        rtp_sent: [12, 10],
    };
    let registrations = homeline::endpoint::DeviceRegistrations {
        device_id: 1,
        contacts: vec![homeline::endpoint::ContactInfo {
            contact: "sip:kitchen@192.168.1.20:5060".into(),
            expires_at: "2026-11-21T11:00:00Z".into(),
            source: "192.168.1.20:5060".into(),
            transport: "udp",
            user_agent: Some("Yealink T46U".into()),
        }],
    };
    let ban = homeline::sip::guard::Ban {
        ip: "203.0.113.9".parse().expect("ip"),
        until: "2026-11-21T10:10:00Z".into(),
        reason: "authentication failures",
    };
    let number = homeline::twilio::client::IncomingNumber {
        sid: "PN0123456789abcdef0123456789abcdef".into(),
        phone_number: "+15551230000".into(),
        friendly_name: "Home".into(),
        voice_url: None,
        sms_url: Some("https://home.example.org/api/webhooks/sms/incoming".into()),
        status_callback: None,
    };
    let samples = [
        ("CallList", json!({ "items": [call], "total": 1 })),
        ("RegistrationList", json!({ "items": [registrations] })),
        ("BanList", json!({ "items": [ban] })),
        ("TwilioNumberList", json!({ "items": [number] })),
    ];
    let mut problems = Vec::new();
    for (name, value) in &samples {
        problems.extend(conforms(&doc, name, value));
    }
    assert!(problems.is_empty(), "{FILE}:\n{}", problems.join("\n"));

    // The checker itself: it catches what it is there to catch.
    let mut wrong = json!({ "items": [call], "total": 1 });
    wrong["items"][0]["state"] = json!("parked");
    wrong["items"][0]["extra"] = json!(1);
    wrong["items"][0]
        .as_object_mut()
        .expect("object")
        .remove("to");
    wrong["items"][0]["rtp_sent"] = json!([1]);
    let errs = conforms(&doc, "CallList", &wrong);
    for needle in [
        "\"parked\" is not one of",
        "`extra` but the schema does not document it",
        "required property `to`",
        "fewer than minItems",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{needle}: {errs:?}"
        );
    }
    assert!(!conforms(
        &doc,
        "Error",
        &json!({"error": {"code": "NOPE", "message": "x", "details": null}})
    )
    .is_empty());
    assert!(conforms(
        &doc,
        "Error",
        &json!({"error": {"code": "NOT_FOUND", "message": "x", "details": [{"field": "a", "message": "b"}]}})
    )
    .is_empty());
}
