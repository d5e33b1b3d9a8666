//! The admin routes behind the settings pages, on the real binary: the
//! blocklist and its "would this number be blocked?" check (answered by the
//! matcher the webhooks use), lifting a SIP ban provoked by a real client
//! with a wrong password, startup settings saved for the next start, the
//! hold-music preview and a number's greeting URL.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{provision_devices, setup_admin, sipp, Homeline, Start};
use serde_json::{json, Value};

const PW: &str = "blue kettle on the hob";

fn admin_of(h: &Homeline) -> String {
    setup_admin(h, "mum@x.org", PW)
}

fn check(h: &Homeline, admin: &str, number: &str) -> Value {
    let path = format!("/api/blocklist/check?number={}", number.replace('+', "%2B"));
    let r = h.call("GET", &path, Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn blocklist_entries_are_added_checked_and_removed() {
    let h = Homeline::start();
    let admin = admin_of(&h);
    let add = |body: Value| h.call("POST", "/api/blocklist", Some(&admin), Some(&body));
    let r = add(json!({"pattern": "+1900", "pattern_type": "prefix", "reason": "premium"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let prefix = r.json();
    let r = add(json!({"pattern": r"\+4470\d{8}", "pattern_type": "regex"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let regex_id = r.json()["id"].as_i64().expect("id");
    assert_eq!(
        add(json!({"pattern": "+1900", "pattern_type": "prefix"})).status,
        409,
        "the same pattern twice"
    );
    for (body, field) in [
        (
            json!({"pattern": "(unclosed", "pattern_type": "regex"}),
            "pattern",
        ),
        (json!({"pattern": "+", "pattern_type": "exact"}), "pattern"),
        (json!({"pattern": "", "pattern_type": "exact"}), "pattern"),
        (json!({"pattern": "+1555"}), "pattern_type"),
    ] {
        let r = add(body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let fields: Vec<String> = r.json()["error"]["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|d| d["field"].as_str().map(String::from))
            .collect();
        assert!(fields.contains(&field.to_string()), "{body}: {fields:?}");
    }
    let list = h.call("GET", "/api/blocklist", Some(&admin), None).json();
    assert_eq!(list["total"], 2, "{list}");

    let hit = check(&h, &admin, "+19005551234");
    assert_eq!(hit["blocked"], true, "{hit}");
    assert_eq!(hit["entry"]["id"], prefix["id"]);
    assert_eq!(hit["entry"]["reason"], "premium");
    assert_eq!(check(&h, &admin, "+447012345678")["entry"]["id"], regex_id);
    let free = check(&h, &admin, "+15551230001");
    assert_eq!(
        (free["blocked"].as_bool(), &free["entry"]),
        (Some(false), &Value::Null)
    );
    let r = h.call("GET", "/api/blocklist/check?number=", Some(&admin), None);
    assert_eq!(r.status, 400);

    let r = h.call(
        "DELETE",
        &format!("/api/blocklist/{}", prefix["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(check(&h, &admin, "+19005551234")["blocked"], false);
    let again = h.call(
        "DELETE",
        &format!("/api/blocklist/{}", prefix["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(again.status, 404);
}

/// Whether the appliance answers an OPTIONS from `sock` (a banned source
/// gets no answer at all).
fn answers_options(h: &Homeline, sock: &UdpSocket) -> bool {
    let port = sock.local_addr().expect("addr").port();
    let msg = format!(
        "OPTIONS sip:homeline SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKban{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@homeline>;tag=p1\r\nTo: <sip:homeline>\r\n\
         Call-ID: ban-{port}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), h.sip()).expect("send");
    let mut buf = [0u8; 4096];
    sock.recv_from(&mut buf).is_ok()
}

#[test]
fn a_ban_from_wrong_passwords_is_listed_and_lifted() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw")]);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![("HOMELINE_SIP_GUARD_MAX_AUTH_FAILURES".into(), "1".into())],
        ..Start::default()
    });
    let admin = admin_of(&h);
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    probe
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    assert!(answers_options(&h, &probe));
    // Two wrong passwords from sipp: the second failure passes the limit.
    for _ in 0..2 {
        sipp(
            h.sip(),
            "register_badauth.xml",
            &["-t", "u1", "-s", "alice", "-au", "alice", "-ap", "WRONG"],
        );
    }
    let bans = h.call("GET", "/api/sip/bans", Some(&admin), None).json();
    let items = bans["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{bans}");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["reason"], "authentication failures");
    assert!(!answers_options(&h, &probe), "a banned source is ignored");

    assert_eq!(
        h.call("DELETE", "/api/sip/bans/not-an-ip", Some(&admin), None)
            .status,
        400
    );
    let r = h.call("DELETE", "/api/sip/bans/127.0.0.1", Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["unbanned"], "127.0.0.1");
    assert_eq!(
        h.call("GET", "/api/sip/bans", Some(&admin), None).json()["items"],
        json!([])
    );
    assert!(answers_options(&h, &probe), "answered again at once");
    let r = h.call("DELETE", "/api/sip/bans/127.0.0.1", Some(&admin), None);
    assert_eq!(r.status, 404, "not banned any more: {}", r.text());
}

fn item<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["items"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["key"] == key))
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn startup_settings_are_saved_for_the_next_start_and_apply_after_it() {
    let mut h = Homeline::start_with(Start {
        env: vec![("HOMELINE_SIP_GUARD_BAN_SECS".into(), "60".into())],
        ..Start::default()
    });
    let admin = admin_of(&h);
    let path = "/api/system/startup-settings";
    let v = h.call("GET", path, Some(&admin), None).json();
    let garbage = item(&v, "sip.guard.max_garbage");
    assert_eq!(
        (
            garbage["running"].as_str(),
            garbage["restart_required"].as_bool()
        ),
        (Some("30"), Some(false)),
        "{v}"
    );
    assert_eq!(
        item(&v, "sip.guard.ban_secs")["pinned"],
        "HOMELINE_SIP_GUARD_BAN_SECS"
    );

    let r = h.call(
        "PUT",
        path,
        Some(&admin),
        Some(&json!({"sip.guard.max_garbage": 5, "twilio.sip_mode": "nonsense"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["details"][0]["field"], "twilio.sip_mode");
    let r = h.call(
        "PUT",
        path,
        Some(&admin),
        Some(&json!({"sip.guard.ban_secs": 5})),
    );
    assert_eq!(r.status, 400, "a pinned value is refused: {}", r.text());
    let r = h.call(
        "PUT",
        path,
        Some(&admin),
        Some(&json!({"sip.guard.max_garbage": 5, "sip.digest_sha256": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let garbage = item(&v, "sip.guard.max_garbage");
    assert_eq!(
        (
            garbage["running"].as_str(),
            garbage["next"].as_str(),
            garbage["restart_required"].as_bool()
        ),
        (Some("30"), Some("5"), Some(true)),
        "{v}"
    );

    h.restart();
    let admin = h.login("mum@x.org", PW).expect("login");
    let v = h.call("GET", path, Some(&admin), None).json();
    let garbage = item(&v, "sip.guard.max_garbage");
    assert_eq!(
        (
            garbage["running"].as_str(),
            garbage["source"].as_str(),
            garbage["restart_required"].as_bool()
        ),
        (Some("5"), Some("config"), Some(false)),
        "{v}"
    );
    // Back to the default: saved nothing, a restart needed again.
    let r = h.call(
        "PUT",
        path,
        Some(&admin),
        Some(&json!({"sip.guard.max_garbage": null})),
    );
    let garbage = item(&r.json(), "sip.guard.max_garbage").clone();
    assert_eq!(
        (&garbage["saved"], garbage["next"].as_str()),
        (&Value::Null, Some("30"))
    );
    assert_eq!(garbage["restart_required"], true);
}

#[test]
fn hold_music_can_be_previewed_and_a_greeting_is_found_for_playback() {
    let h = Homeline::start();
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({
            "admin": {"email": "mum@x.org", "password": PW},
            "timezone": "UTC",
            "phone_numbers": [{"number": "+15551230001", "name": "Home"}],
        })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("session");
    let music = h.call("GET", "/api/system/hold-music/audio", Some(&admin), None);
    assert_eq!(music.status, 200);
    assert_eq!(music.header("content-type"), Some("audio/wav"));
    assert!(music.body.starts_with(b"RIFF"), "a WAV file");

    let did = h.call("GET", "/api/dids", Some(&admin), None).json()["items"][0]["id"]
        .as_i64()
        .expect("did");
    let path = format!("/api/dids/{did}/greeting");
    let none = h.call("GET", &path, Some(&admin), None).json();
    assert_eq!(none, json!({"did_id": did, "greeting": null}));
    let mp3 = b"ID3\x04\x00fake-mp3-frames";
    let cookie = format!("homeline_session={admin}");
    let r = h.request(
        "PUT",
        &path,
        &[
            ("X-Requested-With", "homeline"),
            ("Content-Type", "audio/mpeg"),
            ("Cookie", &cookie),
        ],
        mp3,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = h.call("GET", &path, Some(&admin), None).json();
    let url = shown["greeting"]
        .as_str()
        .expect("a greeting url")
        .to_string();
    assert_eq!(url, r.json()["greeting"].as_str().expect("url"));
    let audio = h.get(&url);
    assert_eq!((audio.status, audio.body.as_slice()), (200, &mp3[..]));
}
