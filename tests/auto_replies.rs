//! SMS auto-replies on the real binary: signed SMS webhooks in, replies out
//! through the outbox to the Twilio REST stand-in (which records every
//! Messages POST), the wall clock moved with the `test-hooks` clock route.
//! DND comes from the DND API, schedules are evaluated in the household's
//! zone (Europe/London here).

mod common;

use std::time::Duration;

use common::household;
use common::twilio::{Created, StandIn, SID, TOKEN};
use common::{wait_for, Homeline, Resp, Start};
use serde_json::{json, Value};

const PW: &str = household::ADMIN_PASSWORD;
const PUBLIC: &str = "https://home.example.org";
const HOME: &str = "+15551230001";
const FRIEND: &str = "+15559870000";

struct Rig {
    standin: StandIn,
    h: Homeline,
    admin: String,
    did: i64,
}

fn rig() -> Rig {
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(Start {
        env: vec![("HOMELINE_TWILIO_API_BASE".to_string(), standin.base.clone())],
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

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// An incoming SMS, signed as Twilio signs it; returns its MessageSid.
fn sms(h: &Homeline, from: &str, body: &str) -> String {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // Incoming SIDs start with `f`, the stand-in numbers the messages
    // Homeline sends `SM000…1`, `SM000…2`: the two never meet.
    let sid = format!("SMf{n:031x}");
    let params = [
        ("MessageSid", sid.as_str()),
        ("AccountSid", SID),
        ("From", from),
        ("To", HOME),
        ("Body", body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ];
    let path = "/api/webhooks/sms/incoming";
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = homeline::twilio::signature::compute(TOKEN, &format!("{PUBLIC}{path}"), &owned);
    let r = h.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &sig),
        ],
        form(&params).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    sid
}

fn add_rule(rig: &Rig, trigger: Value, text: &str) -> Value {
    let r = rig.h.call(
        "POST",
        &format!("/api/dids/{}/auto-replies", rig.did),
        Some(&rig.admin),
        Some(&json!({"trigger": trigger, "reply_text": text})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn set_clock(h: &Homeline, at: &str) {
    let r = h.call("POST", "/api/test/clock", None, Some(&json!({ "at": at })));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The replies Twilio was asked to send: waits for at least `want` of them,
/// then a little longer so a surplus would show (a reply is queued before
/// the webhook answers, and the outbox sends it at once).
fn replies(rig: &Rig, want: usize) -> Vec<Created> {
    wait_for(Duration::from_secs(10), || {
        (rig.standin.created().len() >= want).then_some(())
    });
    std::thread::sleep(Duration::from_millis(700));
    rig.standin.created()
}

fn thread(rig: &Rig, with: &str) -> Vec<Value> {
    let r = rig.h.call(
        "GET",
        &format!(
            "/api/messages/conversation/{}?did_id={}&per_page=100",
            homeline::twilio::client::encode_component(with),
            rig.did
        ),
        Some(&rig.admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

fn set_system_dnd(rig: &Rig, on: bool) {
    let r = rig.h.call(
        "PUT",
        "/api/dnd/system",
        Some(&rig.admin),
        Some(&json!({"on": on, "schedule": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn an_sms_during_dnd_gets_exactly_one_auto_reply_even_when_the_sender_texts_three_times() {
    let rig = rig();
    add_rule(
        &rig,
        json!({"type": "dnd"}),
        "We're not taking messages right now; we'll text back later.",
    );
    // Not in DND: no answer.
    sms(&rig.h, FRIEND, "Are you up?");
    assert!(replies(&rig, 0).is_empty(), "no DND, no reply");

    set_system_dnd(&rig, true);
    for text in ["Are you up?", "Hello??", "Call me when you can"] {
        sms(&rig.h, FRIEND, text);
    }
    let sent = replies(&rig, 1);
    assert_eq!(sent.len(), 1, "exactly one auto-reply: {sent:?}");
    assert_eq!(
        (
            sent[0].from.as_str(),
            sent[0].to.as_str(),
            sent[0].body.as_str()
        ),
        (
            HOME,
            FRIEND,
            "We're not taking messages right now; we'll text back later."
        )
    );

    // The conversation shows the reply as an auto-reply, after the first
    // message that got it, and the sender's texts as ordinary messages.
    let msgs = thread(&rig, FRIEND);
    let shape: Vec<(&str, bool)> = msgs
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or(""),
                m["auto_reply"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("inbound", false),
            ("inbound", false),
            ("outbound", true),
            ("inbound", false),
            ("inbound", false),
        ],
        "{msgs:?}"
    );
    // Its delivery status follows Twilio's answer like any sent message.
    let reply = &msgs[2];
    assert!(reply["message_sid"].as_str().is_some(), "{reply}");

    // Another sender gets their own one reply; DND off, nobody does.
    sms(&rig.h, "+15559870001", "Hi");
    assert_eq!(replies(&rig, 2).len(), 2);
    set_system_dnd(&rig, false);
    sms(&rig.h, "+15559870002", "Hi");
    assert_eq!(replies(&rig, 2).len(), 2);
}

#[test]
fn keyword_replies_skip_short_codes_automated_texts_and_twilio_keywords() {
    let rig = rig();
    add_rule(
        &rig,
        json!({"type": "keyword", "keywords": ["hours", "opening times"], "match": "contains"}),
        "We're open 9 to 5, Monday to Friday.",
    );
    add_rule(
        &rig,
        json!({"type": "keyword", "keywords": ["wifi"], "match": "exact"}),
        "The guest wifi password is on the fridge.",
    );
    sms(&rig.h, FRIEND, "What are your HOURS on Saturday?");
    sms(&rig.h, "+15559870001", "Wifi?");
    let sent = replies(&rig, 2);
    let got: Vec<(&str, &str)> = sent
        .iter()
        .map(|c| (c.to.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (FRIEND, "We're open 9 to 5, Monday to Friday."),
            ("+15559870001", "The guest wifi password is on the fridge.")
        ]
    );
    // Never answered: a short code, an alphanumeric sender, a text that
    // looks automated, Twilio's own keywords, a keyword inside a word, an
    // "exact" keyword inside a sentence.
    for (from, body) in [
        ("55555", "hours"),
        ("AMAZON", "opening times"),
        (
            "+15559870003",
            "Your verification code is 482913. Reply with hours",
        ),
        ("+15559870004", "Auto-reply: I'm driving. hours"),
        ("+15559870005", "STOP"),
        ("+15559870006", "help"),
        ("+15559870007", "the hoursfoo"),
        ("+15559870008", "what is the wifi"),
    ] {
        sms(&rig.h, from, body);
    }
    assert_eq!(replies(&rig, 2).len(), 2, "{:?}", rig.standin.created());
    // Every message was still stored.
    let convs = rig
        .h
        .call("GET", "/api/messages/conversations", Some(&rig.admin), None)
        .json();
    assert_eq!(convs["total"], 10, "{convs}");
}

#[test]
fn after_hours_replies_follow_the_schedule_and_the_protection_window_on_the_clock() {
    let rig = rig();
    add_rule(
        &rig,
        json!({"type": "after_hours", "schedule": {
            "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "21:00", "to": "07:00"}],
            "dates": []}}),
        "It's late here; we'll answer in the morning.",
    );
    // Wednesday 12:00 in London: open.
    set_clock(&rig.h, "2026-12-02T12:00:00Z");
    sms(&rig.h, FRIEND, "lunch?");
    assert!(replies(&rig, 0).is_empty());
    // 23:00: after hours.
    set_clock(&rig.h, "2026-12-02T23:00:00Z");
    sms(&rig.h, FRIEND, "still up?");
    assert_eq!(replies(&rig, 1).len(), 1);
    // 02:00, still after hours, inside the 12-hour window: silent.
    set_clock(&rig.h, "2026-12-03T02:00:00Z");
    sms(&rig.h, FRIEND, "hello?");
    assert_eq!(replies(&rig, 1).len(), 1);
    // The next night, past the window: answered again.
    set_clock(&rig.h, "2026-12-03T22:30:00Z");
    sms(&rig.h, FRIEND, "tonight?");
    let sent = replies(&rig, 2);
    assert_eq!(sent.len(), 2);
    assert!(sent
        .iter()
        .all(|c| c.body == "It's late here; we'll answer in the morning."));
    // In summer time the window is still local: 21:30 BST is 20:30 UTC.
    set_clock(&rig.h, "2027-07-01T20:30:00Z");
    sms(&rig.h, FRIEND, "summer evening");
    assert_eq!(replies(&rig, 3).len(), 3);
}

fn errors(r: &Resp) -> Vec<String> {
    let body = r.json();
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    body["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_api_adds_lists_changes_and_removes_auto_replies_with_clear_errors() {
    let rig = rig();
    let (h, admin, did) = (&rig.h, rig.admin.as_str(), rig.did);
    let list = format!("/api/dids/{did}/auto-replies");
    assert_eq!(
        h.call("GET", &list, Some(admin), None).json(),
        json!({"items": []})
    );
    let dnd = add_rule(&rig, json!({"type": "dnd"}), "Busy");
    assert_eq!(
        dnd,
        json!({"id": dnd["id"], "did_id": did, "trigger": {"type": "dnd"}, "reply_text": "Busy", "enabled": true})
    );
    let kw = add_rule(
        &rig,
        json!({"type": "keyword", "keywords": [" Hours "], "match": "exact"}),
        "9-5",
    );
    assert_eq!(
        kw["trigger"],
        json!({"type": "keyword", "keywords": ["Hours"], "match": "exact"})
    );
    let items = h.call("GET", &list, Some(admin), None).json()["items"].clone();
    assert_eq!(items, json!([dnd, kw]));

    // Changes: absent fields are kept.
    let one = format!("/api/auto-replies/{}", dnd["id"]);
    let r = h.call("PUT", &one, Some(admin), Some(&json!({"enabled": false})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(r.json()["reply_text"], "Busy");
    let r = h.call(
        "PUT",
        &one,
        Some(admin),
        Some(&json!({"reply_text": "Away", "trigger": {"type": "after_hours", "schedule": {"weekly": [{"days": ["sat", "sun"], "from": "00:00", "to": "00:00"}], "dates": []}}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["reply_text"].clone(),
            r.json()["trigger"]["type"].clone()
        ),
        (json!("Away"), json!("after_hours"))
    );

    // Validation errors name their fields.
    let r = h.call("POST", &list, Some(admin), Some(&json!({})));
    assert_eq!(r.status, 400);
    assert_eq!(errors(&r), ["trigger", "reply_text"]);
    let r = h.call(
        "POST",
        &list,
        Some(admin),
        Some(&json!({"trigger": {"type": "keyword", "keywords": ["STOP"], "match": "maybe"}, "reply_text": "x"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(errors(&r), ["trigger.keywords", "trigger.match"]);
    let r = h.call(
        "POST",
        &list,
        Some(admin),
        Some(&json!({"trigger": {"type": "after_hours", "schedule": {"weekly": [{"days": ["someday"], "from": "21:00", "to": "07:00"}], "dates": []}}, "reply_text": "x"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(errors(&r), ["trigger.schedule"]);
    let r = h.call(
        "POST",
        &list,
        Some(admin),
        Some(&json!({"trigger": {"type": "sometimes"}, "reply_text": "", "enabled": 1})),
    );
    assert_eq!(errors(&r), ["trigger.type", "reply_text", "enabled"]);
    let r = h.call("PUT", &one, Some(admin), Some(&json!({"colour": "red"})));
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.text());
    let r = h.call(
        "PUT",
        &one,
        Some(admin),
        Some(&json!({"reply_text": "x".repeat(1601)})),
    );
    assert_eq!(errors(&r), ["reply_text"]);

    // Unknown numbers and rules.
    let r = h.call(
        "POST",
        "/api/dids/999/auto-replies",
        Some(admin),
        Some(&json!({"trigger": {"type": "dnd"}, "reply_text": "x"})),
    );
    assert_eq!((r.status, r.error_code()), (404, "NOT_FOUND".to_string()));
    assert_eq!(
        h.call("GET", "/api/dids/999/auto-replies", Some(admin), None)
            .status,
        404
    );
    assert_eq!(
        h.call(
            "PUT",
            "/api/auto-replies/999",
            Some(admin),
            Some(&json!({"enabled": true}))
        )
        .status,
        404
    );

    // A user who owns the number may read, not write; others see nothing.
    for email in ["kid@x.org", "guest@x.org"] {
        let r = h.call(
            "POST",
            "/api/users",
            Some(admin),
            Some(&json!({"email": email, "display_name": email, "role": "user", "password": PW})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let kid_id = h.call("GET", "/api/users", Some(admin), None).json()["items"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["email"] == "kid@x.org"))
        .map(|u| u["id"].clone())
        .expect("kid");
    let r = h.call(
        "PUT",
        &format!("/api/dids/{did}/users"),
        Some(admin),
        Some(&json!({"user_ids": [kid_id]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let login = |email: &str| {
        h.login(email, PW)
            .unwrap_or_else(|r| panic!("{email} logs in: {} {}", r.status, r.text()))
    };
    let (kid, guest) = (login("kid@x.org"), login("guest@x.org"));
    let r = h.call("GET", &list, Some(&kid), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(h.call("GET", &list, Some(&guest), None).status, 404);
    let r = h.call(
        "POST",
        &list,
        Some(&kid),
        Some(&json!({"trigger": {"type": "dnd"}, "reply_text": "x"})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(h.call("DELETE", &one, Some(&kid), None).status, 403);
    assert_eq!(h.call("GET", &list, None, None).status, 401);

    // Removal.
    assert_eq!(h.call("DELETE", &one, Some(admin), None).status, 204);
    assert_eq!(h.call("DELETE", &one, Some(admin), None).status, 404);
    assert_eq!(
        h.call("GET", &list, Some(admin), None).json()["items"],
        json!([kw])
    );
}
