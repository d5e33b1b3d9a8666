//! Routing rules on the real binary: rules, caller lists and the simulator
//! through the REST API, and the voice webhook's TwiML for signed Twilio
//! requests (cross-checked by Twilio's Python TwiML classes).
//!
//! The webhook decides on the real clock. To put "now" at 23:00 or 12:00
//! local time, a test sets the household's zone to the fixed-offset IANA
//! zone (`Etc/GMT-N`) whose local hour is the one wanted; the rules' night
//! window (21:00–07:00) has an hour of slack on both sides.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::household;
use common::twilio::{StandIn, SID, TOKEN};
use common::{Homeline, Resp, Start};
use serde_json::{json, Value};

const PUBLIC: &str = "https://home.example.org";
const HOME: &str = "+15551230001";
const CALLER: &str = "+15559870000";
const GRANDMA: &str = "+15550000001";

struct Rig {
    _standin: StandIn,
    h: Homeline,
    admin: String,
    did: i64,
    /// Two phones of the number's user: (id, name).
    phones: Vec<(i64, String)>,
}

fn rig(extra_env: &[(&str, &str)]) -> Rig {
    let standin = StandIn::start(SID, TOKEN);
    let mut env = vec![("HOMELINE_TWILIO_API_BASE".to_string(), standin.base.clone())];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let h = Homeline::start_with(Start {
        env,
        ..Start::default()
    });
    let household::Household { admin, did } = household::set_up(
        &h,
        SID,
        TOKEN,
        HOME,
        json!({"system": {"public_url": PUBLIC}}),
    );
    let me = h.call("GET", "/api/me", Some(&admin), None).json()["user"]["id"]
        .as_i64()
        .expect("user id");
    let r = h.call(
        "PUT",
        &format!("/api/dids/{did}/users"),
        Some(&admin),
        Some(&json!({"user_ids": [me]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut phones = Vec::new();
    for (name, user) in [("Kitchen", "kitchen"), ("Kids' room", "kids")] {
        let r = h.call(
            "POST",
            "/api/devices",
            Some(&admin),
            Some(&json!({"name": name, "username": user, "user_id": me})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        phones.push((
            r.json()["id"].as_i64().expect("device id"),
            name.to_string(),
        ));
    }
    Rig {
        _standin: standin,
        h,
        admin,
        did,
        phones,
    }
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A voice webhook signed as Twilio signs it; its TwiML.
fn incoming(h: &Homeline, params: &[(&str, &str)]) -> String {
    let path = "/api/webhooks/voice/incoming";
    let sig =
        homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned(params));
    let body = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                homeline::twilio::client::encode_component(k),
                homeline::twilio::client::encode_component(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let r: Resp = h.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &sig),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/xml")));
    r.text()
}

fn call_params<'a>(sid: &'a str, from: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CallSid", sid),
        ("From", from),
        ("To", HOME),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ]
}

/// The `<Sip>` URI of a ring document.
fn sip_uri(doc: &str) -> String {
    let start = doc
        .find("\">sip:")
        .unwrap_or_else(|| panic!("no <Sip> in {doc}"))
        + 2;
    let end = doc[start..].find("</Sip>").expect("</Sip>") + start;
    doc[start..end].replace("&amp;", "&")
}

/// The value of custom header `name` on the `<Sip>` URI, if any.
fn sip_header(doc: &str, name: &str) -> Option<String> {
    let uri = sip_uri(doc);
    let (_, query) = uri.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// Twilio's TwiML classes accept every document.
fn twilio_accepts(docs: &[String]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twilio/twilio_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("twiml")
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
        .write_all(json!(docs).to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3 ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "the Python twilio package is missing: run `make test-deps`\n{text}"
    );
    assert!(
        out.status.success(),
        "Twilio's TwiML classes disagree: {text}"
    );
    assert!(
        text.contains(&format!("\"checked\": {}", docs.len())),
        "{text}"
    );
}

/// The IANA zone in which it is now `hour` o'clock (a whole-hour offset
/// from UTC), as Etc/GMT names it (the sign is inverted there).
fn zone_where_it_is(hour: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let utc_hour = now / 3600 % 24;
    let mut offset = (hour - utc_hour).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

fn set_zone(rig: &Rig, zone: &str) {
    let r = rig.h.call(
        "PUT",
        "/api/system/config",
        Some(&rig.admin),
        Some(&json!({"system": {"timezone": zone}})),
    );
    assert_eq!(r.status, 200, "{zone}: {}", r.text());
}

fn add_rule(rig: &Rig, rule: Value) -> Value {
    let r = rig.h.call(
        "POST",
        &format!("/api/dids/{}/rules", rig.did),
        Some(&rig.admin),
        Some(&rule),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn simulate(rig: &Rig, body: Value) -> Value {
    let r = rig.h.call(
        "POST",
        &format!("/api/dids/{}/simulate", rig.did),
        Some(&rig.admin),
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn night() -> Value {
    json!({"type":"time","schedule":{"weekly":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"21:00","to":"07:00"}]}})
}

/// The rule recorded on the call record of `call_sid`, read from the
/// database the running appliance writes.
fn cdr_rule(h: &Homeline, call_sid: &str) -> Option<(Option<i64>, Option<String>, String)> {
    let conn = rusqlite::Connection::open(h.dir.path().join("homeline.db")).expect("open db");
    conn.query_row(
        "SELECT rule_id, rule_name, disposition FROM cdrs WHERE call_sid = ?1",
        [call_sid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

fn status_callback(h: &Homeline, call_sid: &str, from: &str, status: &str) {
    let path = "/api/webhooks/voice/status";
    let params = [
        ("CallSid", call_sid),
        ("From", from),
        ("To", HOME),
        ("Direction", "inbound"),
        ("CallStatus", status),
        ("CallDuration", "12"),
    ];
    let sig =
        homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned(&params));
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", homeline::twilio::client::encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    let r = h.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &sig),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn at_night_a_rule_rings_only_the_chosen_phone_and_at_noon_every_phone() {
    let rig = rig(&[]);
    let kids = rig.phones[1].0;
    let rule = add_rule(
        &rig,
        json!({"name": "Kids' bedtime", "conditions": [night()],
               "action": {"type": "ring", "devices": [kids]}}),
    );
    let rule_id = rule["id"].as_i64().expect("rule id");
    let mut docs = Vec::new();

    set_zone(&rig, &zone_where_it_is(23));
    let sid = "CA00000000000000000000000000002300";
    let doc = incoming(&rig.h, &call_params(sid, CALLER));
    assert_eq!(
        sip_header(&doc, "X-Homeline-Ring"),
        Some(kids.to_string()),
        "{doc}"
    );
    assert_eq!(
        sip_header(&doc, "X-Homeline-Rule"),
        Some(rule_id.to_string()),
        "{doc}"
    );
    assert!(
        sip_uri(&doc).starts_with("sip:+15551230001@home.example.org:5061;transport=tls?"),
        "{doc}"
    );
    docs.push(doc);
    // The call record names the rule once Twilio reports the call.
    status_callback(&rig.h, sid, CALLER, "completed");
    assert_eq!(
        cdr_rule(&rig.h, sid).map(|(id, name, _)| (id, name)),
        Some((Some(rule_id), Some("Kids' bedtime".to_string())))
    );

    set_zone(&rig, &zone_where_it_is(12));
    let sid = "CA00000000000000000000000000001200";
    let doc = incoming(&rig.h, &call_params(sid, CALLER));
    assert_eq!(
        sip_header(&doc, "X-Homeline-Ring"),
        None,
        "every phone: {doc}"
    );
    assert_eq!(sip_header(&doc, "X-Homeline-Rule"), None, "{doc}");
    assert!(
        doc.ends_with(
            ">sip:+15551230001@home.example.org:5061;transport=tls</Sip></Dial></Response>"
        ),
        "{doc}"
    );
    docs.push(doc);
    status_callback(&rig.h, sid, CALLER, "completed");
    assert_eq!(cdr_rule(&rig.h, sid).map(|(id, _, _)| id), Some(None));

    // A disabled rule is skipped even at night.
    set_zone(&rig, &zone_where_it_is(23));
    let mut input = rule.clone();
    for k in ["id", "did_id", "position"] {
        input.as_object_mut().expect("object").remove(k);
    }
    input["enabled"] = json!(false);
    let r = rig.h.call(
        "PUT",
        &format!("/api/rules/{rule_id}"),
        Some(&rig.admin),
        Some(&input),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000002301", CALLER),
    );
    assert_eq!(sip_header(&doc, "X-Homeline-Ring"), None, "{doc}");
    twilio_accepts(&docs);
}

#[test]
fn a_vip_rings_through_quiet_hours_and_a_sequence_is_written_for_the_call_layer() {
    let rig = rig(&[]);
    let (kitchen, kids) = (rig.phones[0].0, rig.phones[1].0);
    let r = rig.h.call(
        "POST",
        "/api/caller-lists",
        Some(&rig.admin),
        Some(&json!({"name": "VIP", "numbers": ["+1 (555) 000-0001"]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let vip = r.json();
    assert_eq!(vip["numbers"], json!([GRANDMA]));
    let list_id = vip["id"].as_i64().expect("list id");
    add_rule(
        &rig,
        json!({"name": "Grandma", "conditions": [{"type": "caller_list", "list_id": list_id}],
               "action": {"type": "sequence", "steps": [{"devices": [kitchen], "secs": 15}, {"devices": [kids], "secs": 20}]}}),
    );
    add_rule(
        &rig,
        json!({"name": "Quiet hours", "conditions": [night()], "action": {"type": "voicemail"}}),
    );
    set_zone(&rig, &zone_where_it_is(23));
    let vip_doc = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000001", GRANDMA),
    );
    assert_eq!(
        sip_header(&vip_doc, "X-Homeline-Ring"),
        Some(format!("{kitchen}~15,{kids}~20")),
        "{vip_doc}"
    );
    assert!(
        vip_doc.contains(r#"timeout="35""#),
        "the sequence rings 15 + 20 s: {vip_doc}"
    );
    let other = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000002", CALLER),
    );
    assert!(
        other.contains("<Record "),
        "quiet hours: voicemail: {other}"
    );
    assert!(!other.contains("<Dial"), "{other}");
    // A list in use cannot be removed.
    let r = rig.h.call(
        "DELETE",
        &format!("/api/caller-lists/{list_id}"),
        Some(&rig.admin),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("Grandma"), "{}", r.text());
    twilio_accepts(&[vip_doc, other]);
}

#[test]
fn a_vip_rings_through_the_households_dnd_and_everyone_else_gets_voicemail() {
    let rig = rig(&[]);
    let r = rig.h.call(
        "POST",
        "/api/caller-lists",
        Some(&rig.admin),
        Some(&json!({"name": "VIP", "numbers": [GRANDMA]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let list_id = r.json()["id"].as_i64().expect("list id");
    let vip_rule = add_rule(
        &rig,
        json!({"name": "Grandma rings through", "conditions": [{"type": "caller_list", "list_id": list_id}],
               "action": {"type": "ring_all"}}),
    );
    let r = rig.h.call(
        "PUT",
        "/api/dnd/system",
        Some(&rig.admin),
        Some(&json!({"on": true, "schedule": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let vip_doc = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000021", GRANDMA),
    );
    assert!(vip_doc.contains("<Dial"), "the VIP rings: {vip_doc}");
    assert_eq!(
        sip_header(&vip_doc, "X-Homeline-Rule"),
        Some(vip_rule["id"].to_string()),
        "the call layer learns a rule let it through DND: {vip_doc}"
    );
    let other = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000022", CALLER),
    );
    assert!(other.contains("<Record "), "DND: voicemail: {other}");
    assert!(!other.contains("<Dial"), "{other}");
    // The simulator says the same.
    let sim = simulate(&rig, json!({"from": CALLER}));
    assert_eq!(sim["action"]["type"], "voicemail", "{sim}");
    let sim = simulate(&rig, json!({"from": GRANDMA}));
    assert_eq!(sim["action"]["type"], "ring_all", "{sim}");
    twilio_accepts(&[vip_doc, other]);
}

#[test]
fn anonymous_callers_are_rejected_when_the_setting_is_on() {
    let rig = rig(&[("HOMELINE_CALLS_REJECT_ANONYMOUS", "true")]);
    let mut docs = Vec::new();
    for (i, from) in ["anonymous", "Restricted", "+266696687"].iter().enumerate() {
        let sid = format!("CA0000000000000000000000000000010{i}");
        let doc = incoming(&rig.h, &call_params(&sid, from));
        assert!(
            doc.ends_with("<Response><Reject/></Response>"),
            "{from}: {doc}"
        );
        let (_, _, disposition) = cdr_rule(&rig.h, &sid).expect("a record of the refused call");
        assert_eq!(disposition, "blocked");
        docs.push(doc);
    }
    let known = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000110", CALLER),
    );
    assert!(known.contains("<Dial"), "{known}");
    docs.push(known);
    let sim = simulate(&rig, json!({"from": "anonymous"}));
    assert_eq!(sim["default"], "anonymous", "{sim}");
    assert_eq!(
        sim["action"],
        json!({"type": "reject", "reason": "rejected"})
    );
    twilio_accepts(&docs);

    // Off (the default), a withheld caller rings like anyone else.
    let rig = self::rig(&[]);
    let doc = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000120", "anonymous"),
    );
    assert!(doc.contains("<Dial"), "{doc}");
}

fn addons(score: f64) -> String {
    json!({"status": "successful", "message": null, "code": null, "results": {
        "nomorobo_spamscore": {"request_sid": "XR0123456789abcdef0123456789abcdef", "status": "successful",
            "message": null, "code": null, "result": {"status": "success", "message": "success", "score": score}}}})
    .to_string()
}

fn with_addons<'a>(sid: &'a str, doc: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut p = call_params(sid, CALLER);
    p.push(("AddOns", doc));
    p
}

#[test]
fn a_spam_score_of_0_9_gets_the_rule_and_0_2_rings() {
    let rig = rig(&[]);
    add_rule(
        &rig,
        json!({"name": "Robocalls", "conditions": [{"type": "spam"}],
               "action": {"type": "reject", "reason": "busy"}}),
    );
    let (spam, clean, failed) = (
        addons(0.9),
        addons(0.2),
        json!({"status":"successful","results":{"nomorobo_spamscore":{"status":"failed","code":61001,"message":"Request timed out","result":{}}}}).to_string(),
    );
    let with = |sid, doc| with_addons(sid, doc);
    let (spam, clean, failed) = (spam.as_str(), clean.as_str(), failed.as_str());
    let sid = "CA00000000000000000000000000000201";
    let blocked = incoming(&rig.h, &with(sid, spam));
    assert!(
        blocked.ends_with(r#"<Response><Reject reason="busy"/></Response>"#),
        "{blocked}"
    );
    status_callback(&rig.h, sid, CALLER, "busy");
    let (rule_id, rule_name, _) = cdr_rule(&rig.h, sid).expect("record");
    assert!(rule_id.is_some());
    assert_eq!(rule_name.as_deref(), Some("Robocalls"));
    let rings = incoming(&rig.h, &with("CA00000000000000000000000000000202", clean));
    assert!(rings.contains("<Dial"), "{rings}");
    let unknown = incoming(&rig.h, &with("CA00000000000000000000000000000203", failed));
    assert!(
        unknown.contains("<Dial"),
        "a failed add-on is not spam: {unknown}"
    );
    twilio_accepts(&[blocked, rings, unknown]);
}

#[test]
fn the_simulator_answers_what_the_webhook_does() {
    let rig = rig(&[]);
    let kids = rig.phones[1].0;
    add_rule(
        &rig,
        json!({"name": "Kids' bedtime", "conditions": [night()],
               "action": {"type": "ring", "devices": [kids]}}),
    );
    add_rule(
        &rig,
        json!({"name": "Play", "conditions": [{"type": "caller", "match": "prefix", "value": "+1900"}],
               "action": {"type": "play", "message": "No thank you."}}),
    );
    for hour in [23, 12] {
        let zone = zone_where_it_is(hour);
        set_zone(&rig, &zone);
        for from in [CALLER, "+19005550100"] {
            // The same inputs, now: the simulator and a real call.
            let sim = simulate(&rig, json!({"from": from, "at": null}));
            assert_eq!(sim["time_zone"], zone);
            let doc = incoming(
                &rig.h,
                &call_params("CA00000000000000000000000000000301", from),
            );
            let header = if doc.contains("<Sip") {
                sip_header(&doc, "X-Homeline-Ring")
            } else {
                None
            };
            match sim["action"]["type"].as_str() {
                Some("ring") => {
                    assert_eq!(hour, 23);
                    assert_eq!(header, Some(kids.to_string()), "{sim} vs {doc}");
                    assert_eq!(
                        sim["rings"][0]["devices"],
                        json!([{"id": kids, "name": "Kids' room"}])
                    );
                    assert_eq!(sim["rule"]["name"], "Kids' bedtime");
                }
                Some("ring_all") => {
                    assert_eq!(hour, 12);
                    assert!(doc.contains("<Sip") && header.is_none(), "{sim} vs {doc}");
                    assert_eq!(sim["rings"][0]["devices"].as_array().map(Vec::len), Some(2));
                    assert_eq!(sim["default"], "no_rules");
                }
                Some("play") => {
                    assert!(
                        doc.contains("<Say>No thank you.</Say><Hangup/>"),
                        "{sim} vs {doc}"
                    );
                    assert_eq!(sim["rings"], json!([]));
                }
                other => panic!("unexpected {other:?}: {sim}"),
            }
        }
    }
    // An explicit local time is read in the household's zone.
    set_zone(&rig, "America/New_York");
    let sim = simulate(&rig, json!({"from": CALLER, "at": "2026-12-02T23:00"}));
    assert_eq!(sim["at"], "2026-12-02T23:00");
    assert_eq!(sim["rule"]["name"], "Kids' bedtime");
    let sim = simulate(
        &rig,
        json!({"from": CALLER, "at": "2026-12-02T12:00", "spam_score": 0.9}),
    );
    assert_eq!(sim["default"], "no_rules", "no spam rule: it rings");
    let r = rig.h.call(
        "POST",
        &format!("/api/dids/{}/simulate", rig.did),
        Some(&rig.admin),
        Some(&json!({"from": CALLER, "at": "tonight"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["details"][0]["field"], "at");
}

#[test]
fn rules_crud_order_validation_and_access() {
    let rig = rig(&[]);
    let (kitchen, _) = (rig.phones[0].0, rig.phones[1].0);
    let a = add_rule(&rig, json!({"name": "A", "action": {"type": "voicemail"}}));
    let b = add_rule(
        &rig,
        json!({"name": "B", "action": {"type": "ring", "devices": [kitchen]}}),
    );
    let c = add_rule(
        &rig,
        json!({"name": "C", "conditions": [{"type": "withheld"}], "action": {"type": "reject", "reason": "rejected"}}),
    );
    assert_eq!(
        (a["position"].as_i64(), c["position"].as_i64()),
        (Some(0), Some(2))
    );
    let ids = |v: &Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect()
    };
    let (a, b, c) = (
        a["id"].as_i64().expect("id"),
        b["id"].as_i64().expect("id"),
        c["id"].as_i64().expect("id"),
    );
    let path = format!("/api/dids/{}/rules", rig.did);
    let r = rig.h.call(
        "PUT",
        &format!("{path}/order"),
        Some(&rig.admin),
        Some(&json!({"ids": [c, a, b]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ids(&r.json()), [c, a, b]);
    let r = rig.h.call(
        "PUT",
        &format!("{path}/order"),
        Some(&rig.admin),
        Some(&json!({"ids": [c, a]})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["details"][0]["field"], "ids");
    assert_eq!(
        ids(&rig.h.call("GET", &path, Some(&rig.admin), None).json()),
        [c, a, b]
    );

    for (body, field) in [
        (json!({"name": "", "action": {"type": "voicemail"}}), "name"),
        (
            json!({"name": "x", "action": {"type": "ring", "devices": [999]}}),
            "action",
        ),
        (
            json!({"name": "x", "action": {"type": "forward", "number": "+442079460000"}}),
            "action.number",
        ),
        (
            json!({"name": "x", "conditions": [{"type": "caller_list", "list_id": 77}], "action": {"type": "voicemail"}}),
            "conditions[0].list_id",
        ),
        (
            json!({"name": "x", "conditions": [{"type": "time", "schedule": {"weekly": [{"days": [], "from": "09:00", "to": "10:00"}]}}], "action": {"type": "voicemail"}}),
            "conditions[0].schedule.weekly[0].days",
        ),
    ] {
        let r = rig.h.call("POST", &path, Some(&rig.admin), Some(&body));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let err = r.json();
        assert_eq!(err["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(err["error"]["details"][0]["field"], field, "{err}");
    }
    let r = rig.h.call(
        "POST",
        &path,
        Some(&rig.admin),
        Some(&json!({"name": "x", "action": {"type": "teleport"}})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = rig
        .h
        .call("DELETE", &format!("/api/rules/{b}"), Some(&rig.admin), None);
    assert_eq!(r.status, 204);
    let r = rig
        .h
        .call("DELETE", &format!("/api/rules/{b}"), Some(&rig.admin), None);
    assert_eq!(r.status, 404);
    assert_eq!(
        ids(&rig.h.call("GET", &path, Some(&rig.admin), None).json()),
        [c, a]
    );
    let r = rig
        .h
        .call("GET", "/api/dids/999/rules", Some(&rig.admin), None);
    assert_eq!(r.status, 404);
    let r = rig.h.call("GET", &path, None, None);
    assert_eq!(r.status, 401);
}

#[test]
fn a_forward_goes_out_through_twilio_within_the_toll_fraud_guard() {
    let rig = rig(&[]);
    let rule = add_rule(
        &rig,
        json!({"name": "Away", "action": {"type": "forward", "number": "+15559990000"}}),
    );
    let doc = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000401", CALLER),
    );
    assert!(
        doc.contains("<Number>+15559990000</Number></Dial>"),
        "{doc}"
    );
    assert!(
        !doc.contains("callerId"),
        "the caller's own number shows: {doc}"
    );
    assert!(
        doc.contains("/api/webhooks/voice/dial-result?did="),
        "no answer: voicemail: {doc}"
    );
    let anon = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000402", "anonymous"),
    );
    assert!(anon.contains(&format!(r#"callerId="{HOME}""#)), "{anon}");
    // A destination blocklisted after the rule was saved: voicemail instead.
    let r = rig.h.call(
        "POST",
        "/api/blocklist",
        Some(&rig.admin),
        Some(&json!({"pattern": "+15559990000", "pattern_type": "exact"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let refused = incoming(
        &rig.h,
        &call_params("CA00000000000000000000000000000403", CALLER),
    );
    assert!(
        refused.contains("<Record ") && !refused.contains("<Number>"),
        "{refused}"
    );
    let sim = simulate(&rig, json!({"from": CALLER}));
    assert_eq!(sim["rule"]["id"], rule["id"]);
    assert_eq!(
        sim["action"],
        json!({"type": "voicemail"}),
        "as the real call: {sim}"
    );
    assert!(
        sim["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("blocklist")),
        "{sim}"
    );
    twilio_accepts(&[doc, anon, refused]);
}
