//! Notification delivery against a real SMTP server (aiosmtpd on 127.0.0.1
//! with STARTTLS and AUTH): the admin's test button, the e-mail's MIME as
//! Python's `email` package reads it, the P0 retry schedule on the test
//! clock with abandonment and its alert, and kill -9 between attempts.

mod common;

use std::time::Duration;

use common::smtp::{Smtp, PASSWORD};
use common::{setup_admin, wait_for, Homeline};
use serde_json::json;

fn configure(h: &Homeline, admin: &str, config: &serde_json::Value) {
    let r = h.call("PUT", "/api/system/config", Some(admin), Some(config));
    assert_eq!(r.status, 200, "config: {}", r.text());
}

#[test]
fn test_button_sends_over_starttls_with_auth_and_names_a_wrong_password() {
    let smtp = Smtp::start(0);
    let h = Homeline::start();
    let admin = setup_admin(&h, "admin@example.org", "correct horse battery");

    // Not configured yet.
    let r = h.call(
        "POST",
        "/api/notifications/test",
        Some(&admin),
        Some(&json!({"channel": "email", "to": "anna@example.org"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reason"], "not_configured", "{}", r.text());

    configure(&h, &admin, &smtp.config(PASSWORD));
    let r = h.call(
        "POST",
        "/api/notifications/test",
        Some(&admin),
        Some(&json!({"channel": "email", "to": "anna@example.org"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["delivered"], true, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").starts_with("250"), "{v}");
    let got = smtp.wait_for(1, Duration::from_secs(10));
    let m = &got[0];
    assert_eq!(m["tls"], true, "STARTTLS was used: {m}");
    assert_eq!(m["authenticated"], true, "AUTH was used: {m}");
    assert_eq!(m["rcpt"], json!(["anna@example.org"]));
    let types: Vec<&str> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html"
        ],
        "{m}"
    );
    assert!(
        m["text"]
            .as_str()
            .unwrap_or("")
            .contains("notifications work"),
        "{m}"
    );

    configure(&h, &admin, &json!({"smtp": {"password": "wrong"}}));
    let r = h.call(
        "POST",
        "/api/notifications/test",
        Some(&admin),
        Some(&json!({"channel": "email", "to": "anna@example.org"})),
    );
    let v = r.json();
    assert_eq!(
        (v["delivered"].clone(), v["reason"].clone()),
        (json!(false), json!("auth")),
        "{v}"
    );
    assert!(!r.text().contains("wrong"), "the password is never echoed");

    // Bad input answers the JSON error format.
    let r = h.call(
        "POST",
        "/api/notifications/test",
        Some(&admin),
        Some(&json!({"channel": "fax"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(smtp.received().len(), 1, "nothing else arrived");
}

/// Stores an e-mail notification with an MP3 attachment and its outbox job,
/// as the dispatcher does (one transaction), straight into the database.
fn enqueue_email(h: &Homeline, key: &str) -> i64 {
    enqueue(h, "email", "anna@example.org", key)
}

fn enqueue(h: &Homeline, channel: &str, target: &str, key: &str) -> i64 {
    let mp3 = h.data().join("vm.mp3");
    std::fs::write(&mp3, [0xff, 0xfb, 0x90, 0x44, 0, 0, 0, 0]).expect("mp3");
    let conn = rusqlite::Connection::open(h.data().join("homeline.db")).expect("db");
    conn.busy_timeout(Duration::from_secs(10)).expect("timeout");
    let att = json!([{"path": mp3, "filename": "voicemail.mp3", "content_type": "audio/mpeg"}])
        .to_string();
    conn.execute(
        "INSERT INTO notifications (channel, event, target, subject, body_text, body_html, attachments, dedupe_key, created_at)
         VALUES (?3, 'voicemail', ?4, 'Neue Sprachnachricht von Jürgen',
                 'Transcript: Hallo, hier ist Jürgen.', '<p>Hallo</p>', ?1, ?2, '2026-12-02T10:00:00Z')",
        rusqlite::params![att, key, channel, target],
    )
    .expect("notification");
    let id = conn.last_insert_rowid();
    let kind = if channel == "email" {
        "send_email"
    } else {
        "send_push"
    };
    conn.execute(
        "UPDATE notifications SET link = 'http://homeline.local/my/voicemail/1' WHERE id = ?1",
        [id],
    )
    .expect("link");
    conn.execute(
        "INSERT INTO outbox (kind, payload, next_attempt_ms, created_at, updated_at)
         VALUES (?2, ?1, 0, '2026-12-02T10:00:00Z', '2026-12-02T10:00:00Z')",
        rusqlite::params![
            json!({"kind": kind, "notification_id": id}).to_string(),
            kind
        ],
    )
    .expect("job");
    id
}

fn advance(h: &Homeline, secs: i64) {
    let r = h.call(
        "POST",
        "/api/test/clock",
        None,
        Some(&json!({"advance_secs": secs})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The notification's delivery state, read from the database (sessions
/// expire while the test clock jumps hours ahead).
fn row(h: &Homeline, _admin: &str, id: i64) -> serde_json::Value {
    let conn = rusqlite::Connection::open(h.data().join("homeline.db")).expect("db");
    conn.query_row(
        "SELECT n.state, n.error, coalesce(o.attempts, 0), o.state FROM notifications n
         LEFT JOIN outbox o ON json_extract(o.payload, '$.notification_id') = n.id WHERE n.id = ?1",
        [id],
        |r| {
            Ok(
                json!({"state": r.get::<_, String>(0)?, "error": r.get::<_, Option<String>>(1)?,
                      "attempts": r.get::<_, i64>(2)?, "job": r.get::<_, Option<String>>(3)?}),
            )
        },
    )
    .expect("row")
}

/// Waits until the job has made `n` attempts and is back to waiting (or finished).
fn wait_attempts(h: &Homeline, admin: &str, id: i64, n: u64) -> serde_json::Value {
    let conn = rusqlite::Connection::open(h.data().join("homeline.db")).expect("db");
    wait_for(Duration::from_secs(30), || {
        let (attempts, state): (u64, String) = conn
            .query_row(
                "SELECT attempts, state FROM outbox WHERE json_extract(payload, '$.notification_id') = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()?;
        (attempts == n && state != "attempting").then(|| row(h, admin, id))
    })
    .unwrap_or_else(|| panic!("attempt {n}: {}", row(h, admin, id)))
}

/// An appliance whose SMTP server is down, with one e-mail notification
/// (dedupe key `key`) whose first attempt has failed: the SMTP stand-in
/// (stopped), the appliance, an admin session and the notification's id.
fn first_attempt_with_smtp_down(key: &str) -> (Smtp, Homeline, String, i64) {
    let mut smtp = Smtp::start(0);
    smtp.stop();
    let h = Homeline::start();
    let admin = setup_admin(&h, "admin@example.org", "correct horse battery");
    configure(&h, &admin, &smtp.config(PASSWORD));
    let id = enqueue_email(&h, key);
    advance(&h, 0);
    wait_attempts(&h, &admin, id, 1);
    (smtp, h, admin, id)
}

#[test]
fn smtp_down_is_retried_at_5_15_40_minutes_then_abandoned_with_an_alert_across_kill_9() {
    let (_smtp, mut h, admin, id) = first_attempt_with_smtp_down("voicemail:1:email:anna");
    let r = row(&h, &admin, id);
    assert_eq!(r["state"], "pending");
    assert!(r["error"].as_str().unwrap().starts_with("connect"), "{r}");

    // Not before 5 minutes.
    advance(&h, 4 * 60);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(row(&h, &admin, id)["attempts"], 1);
    advance(&h, 60);
    wait_attempts(&h, &admin, id, 2);

    // kill -9 between attempts: the schedule goes on from the database.
    h.kill9_and_restart(vec![]);
    let admin = h
        .login("admin@example.org", "correct horse battery")
        .expect("login");
    advance(&h, 5 * 60 + 14 * 60);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(row(&h, &admin, id)["attempts"], 2, "not before +15 min");
    advance(&h, 60);
    wait_attempts(&h, &admin, id, 3);
    advance(&h, 40 * 60);
    let r = wait_for(Duration::from_secs(30), || {
        let r = row(&h, &admin, id);
        (r["state"] == "abandoned").then_some(r)
    })
    .unwrap_or_else(|| panic!("abandoned: {}", row(&h, &admin, id)));
    assert_eq!(r["attempts"], 4, "{r}");
    assert_eq!(r["job"], "failed", "{r}");
    let admin = h
        .login("admin@example.org", "correct horse battery")
        .expect("login");
    let log = h.call("GET", "/api/notifications?limit=50", Some(&admin), None);
    assert_eq!(
        log.json()["items"][0]["state"],
        "abandoned",
        "{}",
        log.text()
    );
    assert_eq!(log.json()["items"][0]["attempts"], 4, "{}", log.text());
    let alerts = h.call("GET", "/api/system/alerts", Some(&admin), None);
    assert!(
        alerts.text().contains(&format!("notify:email:{id}")),
        "alert raised: {}",
        alerts.text()
    );
    advance(&h, 24 * 3600);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        row(&h, &admin, id)["attempts"],
        4,
        "no attempt after giving up"
    );
}

#[test]
fn kill_9_between_attempts_neither_loses_nor_duplicates_the_email() {
    let (mut smtp, mut h, _admin, id) = first_attempt_with_smtp_down("voicemail:2:email:anna");
    smtp.resume();
    h.kill9_and_restart(vec![]);
    let admin = h
        .login("admin@example.org", "correct horse battery")
        .expect("login");
    advance(&h, 5 * 60);
    let got = smtp.wait_for(1, Duration::from_secs(20));
    let r = wait_for(Duration::from_secs(10), || {
        let r = row(&h, &admin, id);
        (r["state"] == "sent").then_some(r)
    })
    .expect("sent");
    assert_eq!(r["attempts"], 2);
    let admin = h
        .login("admin@example.org", "correct horse battery")
        .expect("login");
    let log = h.call("GET", "/api/notifications", Some(&admin), None);
    let item = &log.json()["items"][0];
    assert_eq!(
        (
            item["id"].as_i64(),
            item["state"].clone(),
            item["channel"].clone()
        ),
        (Some(id), json!("sent"), json!("email")),
        "{item}"
    );
    assert!(item["sent_at"].is_string(), "{item}");
    let m = &got[0];
    assert!(
        m["message_id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<notification-{id}.")),
        "{m}"
    );
    assert!(m["subject"].as_str().unwrap().contains("Jürgen"), "{m}");
    assert!(
        m["text"].as_str().unwrap().contains("hier ist Jürgen"),
        "transcript: {m}"
    );
    let mp3 = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == "audio/mpeg")
        .expect("mp3 part");
    assert_eq!(
        (
            mp3["filename"].clone(),
            mp3["size"].clone(),
            mp3["head"].clone()
        ),
        (json!("voicemail.mp3"), json!(8), json!("fffb9044"))
    );
    h.kill9_and_restart(vec![]);
    advance(&h, 3 * 3600);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.received().len(), 1, "exactly one e-mail");
}

fn wait_state(h: &Homeline, id: i64, state: &str) -> serde_json::Value {
    wait_for(Duration::from_secs(20), || {
        let r = row(h, "", id);
        (r["state"] == state).then_some(r)
    })
    .unwrap_or_else(|| panic!("{state}: {}", row(h, "", id)))
}

#[test]
fn postmark_gotify_and_webhooks_get_exactly_one_documented_request_each() {
    let pm = common::postmark::start();
    let gotify = common::gotify::start();
    let hook = common::webhook_receiver::start();
    let h = Homeline::start();
    let admin = setup_admin(&h, "admin@example.org", "correct horse battery");
    configure(
        &h,
        &admin,
        &json!({
            "notify": {"email_provider": "postmark"},
            "postmark": {"api_base": pm.base, "server_token": common::postmark::TOKEN, "from": "pi@home.example"},
            "gotify": {"url": gotify.base, "token": common::gotify::TOKEN, "priority": 8},
        }),
    );

    // Postmark: one request, the documented JSON, the MP3 in base64.
    let id = enqueue(&h, "email", "anna@example.org", "vm:pm:1");
    advance(&h, 0);
    wait_state(&h, id, "sent");
    let reqs = pm.wait_for(1, Duration::from_secs(5));
    assert_eq!(reqs.len(), 1);
    let v = reqs[0].json();
    assert_eq!(
        reqs[0].header("x-postmark-server-token"),
        Some(common::postmark::TOKEN)
    );
    assert_eq!(
        (
            v["From"].clone(),
            v["To"].clone(),
            v["MessageStream"].clone()
        ),
        (
            json!("pi@home.example"),
            json!("anna@example.org"),
            json!("outbound")
        )
    );
    assert!(
        v["TextBody"].as_str().unwrap().contains("hier ist Jürgen"),
        "{v}"
    );
    assert_eq!(v["Attachments"][0]["Name"], "voicemail.mp3");
    assert_eq!(v["Attachments"][0]["ContentType"], "audio/mpeg");
    assert_eq!(v["Attachments"][0]["Content"], "//uQRAAAAAA=");
    assert_eq!(v["Metadata"]["notification_id"], id.to_string());

    // An inactive recipient is abandoned at once, with the alert.
    let bad = enqueue(&h, "email", "inactive@example.org", "vm:pm:2");
    advance(&h, 0);
    let r = wait_state(&h, bad, "abandoned");
    assert_eq!(r["attempts"], 1, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("recipient_refused"),
        "{r}"
    );
    let alerts = h.call("GET", "/api/system/alerts", Some(&admin), None);
    assert!(
        alerts.text().contains(&format!("notify:email:{bad}")),
        "{}",
        alerts.text()
    );
    assert_eq!(pm.requests().len(), 2, "one request per notification");

    // Gotify: the test button, then an outbox push with its tap link.
    let r = h.call(
        "POST",
        "/api/notifications/test",
        Some(&admin),
        Some(&json!({"channel": "push"})),
    );
    assert_eq!(r.json()["delivered"], true, "{}", r.text());
    let push = enqueue(&h, "push", "household", "vm:push:1");
    advance(&h, 0);
    wait_state(&h, push, "sent");
    let reqs = gotify.wait_for(2, Duration::from_secs(5));
    assert_eq!(reqs.len(), 2);
    let v = reqs[1].json();
    assert_eq!(reqs[1].header("x-gotify-key"), Some(common::gotify::TOKEN));
    assert_eq!(v["priority"], 8, "gotify.priority applies: {v}");
    assert_eq!(
        v["extras"]["client::notification"]["click"]["url"],
        "http://homeline.local/my/voicemail/1"
    );
    assert_eq!(v["extras"]["homeline::delivery"]["notification_id"], push);

    // Webhooks: created with a secret shown once, a signed test event.
    let r = h.call(
        "POST",
        "/api/webhooks",
        Some(&admin),
        Some(&json!({"url": format!("{}/hook", hook.base), "events": ["test", "voicemail"]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let wid = created["id"].as_i64().unwrap();
    let list = h.call("GET", "/api/webhooks", Some(&admin), None);
    assert!(
        !list.text().contains(&secret),
        "the secret is shown only once"
    );
    let bad_url = h.call(
        "POST",
        "/api/webhooks",
        Some(&admin),
        Some(&json!({"url": "ftp://x", "events": ["nope"]})),
    );
    assert_eq!(bad_url.status, 400, "{}", bad_url.text());
    let r = h.call(
        "POST",
        &format!("/api/webhooks/{wid}/test"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let nid = r.json()["notification_id"].as_i64().unwrap();
    wait_state(&h, nid, "sent");
    let reqs = hook.wait_for(1, Duration::from_secs(5));
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(
        (
            q.path.as_str(),
            q.header("x-homeline-event"),
            q.header("x-homeline-delivery")
        ),
        ("/hook", Some("test"), Some(nid.to_string().as_str()))
    );
    assert_eq!(q.json()["event"], "test");
    assert!(common::webhook_receiver::verify(&secret, q), "Rust check");
    assert!(
        common::webhook_receiver::verify_python(&secret, q),
        "README's Python check"
    );
    assert!(!common::webhook_receiver::verify("whsec_other", q));

    // 410 Gone: abandoned at once with the alert.
    hook.answer(|_| (410, json!({})));
    let r = h.call(
        "POST",
        &format!("/api/webhooks/{wid}/test"),
        Some(&admin),
        None,
    );
    let gone = r.json()["notification_id"].as_i64().unwrap();
    wait_state(&h, gone, "abandoned");
    let alerts = h.call("GET", "/api/system/alerts", Some(&admin), None);
    assert!(
        alerts.text().contains(&format!("notify:webhook:{gone}")),
        "{}",
        alerts.text()
    );
    let r = h.call(
        "PUT",
        &format!("/api/webhooks/{wid}"),
        Some(&admin),
        Some(&json!({"enabled": false})),
    );
    assert_eq!(r.json()["enabled"], false, "{}", r.text());
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/api/webhooks/{wid}"),
            Some(&admin),
            None
        )
        .status,
        204
    );
    assert_eq!(
        h.call(
            "DELETE",
            &format!("/api/webhooks/{wid}"),
            Some(&admin),
            None
        )
        .status,
        404
    );
    assert_eq!(hook.requests().len(), 2, "one request per notification");
}
