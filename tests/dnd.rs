//! Do-Not-Disturb and who rings, on the real binary with real peers on
//! loopback: a baresip phone dials `*78` (answered, a tone, hung up), after
//! which a call from Twilio (sipp as Twilio's edge) no longer rings it and
//! a call meant only for it gets 480; `*79` brings it back. A ring sequence
//! from the routing rules' header rings one sipp phone, then the next. The
//! DND API for an admin and for a user's own scope, and its errors.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::baresip::{tone_check, Baresip};
use common::calls::{register, start_household, wait_cdrs};
use common::{free_udp_port, setup_admin, Homeline, SippRun};

const PW: &str = "correct horse battery";

/// Twilio's edge calling the household number with `ring` (a whole
/// header line) and the rule header; answered or refused per `scenario`.
fn twilio_calls(sip: SocketAddr, scenario: &str, ring: &str, media: &str) -> SippRun {
    SippRun::spawn(
        Some(sip),
        scenario,
        &[
            "-s",
            "+15550001111",
            "-key",
            "caller",
            "+15557654321",
            "-au",
            common::TRUNK_USER,
            "-ap",
            common::TRUNK_PASSWORD,
            "-key",
            "ringhdr",
            ring,
            "-key",
            "rulehdr",
            "X-Homeline-Rule: 7",
            "-mp",
            media,
            "-d",
            "1500",
        ],
    )
}

/// A sipp phone registered as `user`, running `scenario`.
fn sipp_phone(sip: SocketAddr, user: &str, scenario: &str, media: &str) -> SippRun {
    let port = free_udp_port();
    register(sip, user, &format!("{user}pw"), port);
    let uas = SippRun::spawn(None, scenario, &["-p", &port.to_string(), "-mp", media]);
    std::thread::sleep(Duration::from_millis(300));
    uas
}

fn dnd_items(h: &Homeline, token: &str) -> Vec<Value> {
    let r = h.call("GET", "/api/dnd", Some(token), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

fn dnd_of(h: &Homeline, token: &str, scope: &str, id: i64) -> Value {
    dnd_items(h, token)
        .into_iter()
        .find(|s| s["scope"] == scope && s["subject_id"] == id)
        .unwrap_or_else(|| panic!("no {scope} {id} in GET /api/dnd"))
}

/// Waits until the phone's setting is `on` (the feature code is stored by
/// a task behind the call layer).
fn wait_device_dnd(h: &Homeline, token: &str, device: i64, on: bool) -> Value {
    common::wait_for(Duration::from_secs(5), || {
        let s = dnd_of(h, token, "device", device);
        (s["on"] == on).then_some(s)
    })
    .unwrap_or_else(|| panic!("device {device} never had DND {on}"))
}

/// Dials a feature code from baresip: it is answered, hears a tone, and
/// Homeline hangs up. Returns how long the confirmation lasted.
fn dial_code(phone: &mut Baresip, sip: &str, code: &str) -> Duration {
    phone.events.clear();
    phone.command(&format!("dial sip:{code}@{sip}"));
    assert!(
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "{code} is answered:\n{}",
        phone.log()
    );
    let answered = Instant::now();
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(5))
            .is_some(),
        "Homeline hangs up after the confirmation:\n{}",
        phone.log()
    );
    answered.elapsed()
}

/// Whether the phone got a call (it answers automatically, so a call
/// shows as an incoming CALL_ESTABLISHED).
fn rang(phone: &mut Baresip, within: Duration) -> bool {
    let _ = phone.wait_event("CALL_ESTABLISHED", within);
    phone
        .events
        .iter()
        .any(|e| e["direction"] == "incoming" && e["type"] == "CALL_ESTABLISHED")
}

/// The phone's recording of its first call (dumps are named by the time
/// the call started).
fn first_recording(phone: &Baresip) -> Option<std::path::PathBuf> {
    let mut dumps: Vec<_> = std::fs::read_dir(phone.dir.path().join("rec"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .collect();
    dumps.sort();
    dumps.into_iter().next()
}

#[test]
fn star_78_from_baresip_stops_it_ringing_and_star_79_brings_it_back() {
    let h = start_household(
        "+15550001111",
        &[("kitchen", "kitchenpw"), ("office", "officepw")],
        &[],
        "26400-26419",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", PW);
    let sip = h.sip();
    let sip_s = sip.to_string();
    let mut kitchen = Baresip::start("kitchen", "kitchenpw", &sip_s, "20700-20719", "sine:440");
    let registered = common::wait_for(Duration::from_secs(10), || {
        let r = kitchen.command("reginfo");
        r["data"]
            .as_str()
            .is_some_and(|d| d.contains("OK"))
            .then_some(())
    });
    assert!(registered.is_some(), "registered:\n{}", kitchen.log());

    // *78: the confirmation plays for about 1.5 s, then the BYE.
    let lasted = dial_code(&mut kitchen, &sip_s, "*78");
    assert!(lasted < Duration::from_secs(4), "hung up after {lasted:?}");
    let s = wait_device_dnd(&h, &admin, 1, true);
    assert_eq!(
        (s["active"].as_bool(), &s["schedule"]),
        (Some(true), &Value::Null)
    );

    // A call from Twilio rings every phone of the number: only the office.
    kitchen.events.clear();
    let office = sipp_phone(sip, "office", "uas_answer_now.xml", "26500");
    let twilio = twilio_calls(
        sip,
        "dnd_twilio_answered.xml",
        "X-Homeline-Note: ring all",
        "26510",
    );
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (ocode, oout) = office.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "Twilio's call is answered: {out}\noffice: {oout}");
    assert_eq!(ocode, 0, "the office answered: {oout}");
    assert!(
        !rang(&mut kitchen, Duration::from_millis(500)),
        "the kitchen is in DND and must not ring: {:?}",
        kitchen.events
    );
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(cdr["device_id"], 2, "answered by the office: {cdr}");

    // A call for the kitchen alone: nobody may ring, 480 (voicemail).
    let twilio = twilio_calls(sip, "dnd_twilio_refused.xml", "X-Homeline-Ring: 1", "26520");
    let (code, out) = twilio.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "480 for a call whose phones are all in DND: {out}");
    assert!(
        out.contains("Do-Not-Disturb"),
        "the Warning says why: {out}"
    );
    assert!(!rang(&mut kitchen, Duration::from_millis(300)));

    // *79: out of DND; the same call rings (and baresip answers) it.
    dial_code(&mut kitchen, &sip_s, "*79");
    let s = wait_device_dnd(&h, &admin, 1, false);
    assert_eq!(s["active"], false);
    kitchen.events.clear();
    let twilio = twilio_calls(
        sip,
        "dnd_twilio_answered.xml",
        "X-Homeline-Ring: 1",
        "26530",
    );
    let (code, out) = twilio.wait(Duration::from_secs(20));
    assert_eq!(
        code,
        0,
        "the kitchen answers again: {out}\n{}",
        kitchen.log()
    );
    assert!(
        rang(&mut kitchen, Duration::from_secs(1)),
        "the kitchen rang: {:?}",
        kitchen.events
    );
    kitchen.stop();
    // What the kitchen heard first was the confirmation: the hold tune's
    // first note (C5).
    let heard = first_recording(&kitchen).expect("the kitchen's recording");
    let (ok, report) = tone_check(&heard, 523.25, 0.5);
    assert!(ok, "the confirmation tone reached the phone: {report}");
    let log = std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    assert!(log.contains("DND set from the phone"), "logged");
}

#[test]
fn a_ring_sequence_rings_one_phone_then_the_next() {
    let h = start_household(
        "+15550001111",
        &[("hall", "hallpw"), ("den", "denpw")],
        &[],
        "26600-26619",
        &[],
    );
    let admin = setup_admin(&h, "admin@home.test", PW);
    let sip = h.sip();
    // The hall rings until its CANCEL; the den answers at once.
    let hall = sipp_phone(sip, "hall", "pickup_ringing_uas.xml", "26700");
    let den = sipp_phone(sip, "den", "uas_answer_now.xml", "26710");
    let started = Instant::now();
    let twilio = twilio_calls(
        sip,
        "dnd_twilio_answered.xml",
        "X-Homeline-Ring: 1~2,2~20",
        "26720",
    );
    let (hcode, hout) = hall.wait(Duration::from_secs(20));
    let cancelled_after = started.elapsed();
    let (code, out) = twilio.wait(Duration::from_secs(20));
    let (dcode, dout) = den.wait(Duration::from_secs(10));
    assert_eq!(hcode, 0, "the hall rang and was CANCELled: {hout}");
    assert_eq!(code, 0, "Twilio's call was answered: {out}");
    assert_eq!(dcode, 0, "the den answered: {dout}");
    assert!(
        cancelled_after >= Duration::from_secs(2),
        "step 1 rang its 2 s: {cancelled_after:?}"
    );
    // Twilio heard ringing (again as step 2 began), never a final failure.
    assert!(!out.contains("SIP/2.0 480"), "{out}");
    let cdr = &wait_cdrs(&h, &admin, 1)[0];
    assert_eq!(
        (cdr["disposition"].as_str(), cdr["device_id"].as_i64()),
        (Some("answered"), Some(2)),
        "{cdr}"
    );
    assert!(
        cdr["hangup_cause"]
            .as_str()
            .unwrap_or("")
            .contains("rule 7"),
        "the record names the rule: {cdr}"
    );
}

fn create_user(h: &Homeline, admin: &str, email: &str) -> i64 {
    let r = h.call(
        "POST",
        "/api/users",
        Some(admin),
        Some(&json!({"email": email, "password": PW})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().expect("id")
}

fn create_device(h: &Homeline, admin: &str, username: &str, owner: Option<i64>) -> i64 {
    let r = h.call(
        "POST",
        "/api/devices",
        Some(admin),
        Some(&json!({"name": username, "username": username, "user_id": owner})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().expect("id")
}

#[test]
fn the_dnd_api_for_admins_and_for_a_users_own_scope() {
    let h = Homeline::start();
    let admin = setup_admin(&h, "mum@home.test", PW);
    let kid = create_user(&h, &admin, "kid@home.test");
    let gran = create_user(&h, &admin, "gran@home.test");
    let kid_phone = create_device(&h, &admin, "kid-phone", Some(kid));
    let gran_phone = create_device(&h, &admin, "gran-phone", Some(gran));
    let kid_token = h.login("kid@home.test", PW).expect("kid logs in");

    // Everything is off to begin with; the admin sees every subject.
    let all = dnd_items(&h, &admin);
    assert_eq!(all[0]["scope"], "system");
    assert!(all.iter().all(|s| s["on"] == false && s["active"] == false));
    assert!(all
        .iter()
        .any(|s| s["scope"] == "device" && s["subject_id"] == gran_phone));
    // The kid sees the household's, their own and their phone's only.
    let mine = dnd_items(&h, &kid_token);
    let subjects: Vec<(String, i64)> = mine
        .iter()
        .map(|s| {
            (
                s["scope"].as_str().unwrap().to_string(),
                s["subject_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        subjects,
        vec![
            ("system".to_string(), 0),
            ("user".to_string(), kid),
            ("device".to_string(), kid_phone)
        ]
    );

    // A bedtime schedule on the kid's account, by the kid.
    let bedtime = json!({"weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "from": "00:00", "to": "00:00"}]});
    let r = h.call(
        "PUT",
        &format!("/api/users/{kid}/dnd"),
        Some(&kid_token),
        Some(&json!({"on": false, "schedule": bedtime})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["on"].as_bool(), v["active"].as_bool()),
        (Some(false), Some(true)),
        "{v}"
    );
    assert_eq!(v["schedule"]["weekly"][0]["from"], "00:00");
    // Their own phone: fine; gran's phone or gran's account: not found.
    let r = h.call(
        "PUT",
        &format!("/api/devices/{kid_phone}/dnd"),
        Some(&kid_token),
        Some(&json!({"on": true, "schedule": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for path in [
        format!("/api/devices/{gran_phone}/dnd"),
        format!("/api/users/{gran}/dnd"),
        "/api/devices/999/dnd".to_string(),
    ] {
        let r = h.call("PUT", &path, Some(&kid_token), Some(&json!({"on": true})));
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.error_code(), "NOT_FOUND");
    }
    // The household's setting is the admin's.
    let r = h.call(
        "PUT",
        "/api/dnd/system",
        Some(&kid_token),
        Some(&json!({"on": true})),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = h.call(
        "PUT",
        "/api/dnd/system",
        Some(&admin),
        Some(&json!({"on": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["active"], true);
    assert_eq!(dnd_of(&h, &kid_token, "system", 0)["on"], true);
    // The admin may set gran's phone.
    let r = h.call(
        "PUT",
        &format!("/api/devices/{gran_phone}/dnd"),
        Some(&admin),
        Some(&json!({"on": true, "schedule": null})),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Bad input: the JSON error format, naming the field.
    let cases = [
        (json!({"schedule": null}), "on"),
        (json!({"on": "yes"}), ""),
        (
            json!({"on": true, "schedule": {"weekly": [{"days": ["someday"], "from": "21:00", "to": "07:00"}]}}),
            "schedule",
        ),
        (
            json!({"on": true, "schedule": {"weekly": [{"days": ["mon"], "from": "25:00", "to": "07:00"}]}}),
            "schedule",
        ),
        (json!({"on": true, "extra": 1}), ""),
    ];
    for (body, field) in cases {
        let r = h.call(
            "PUT",
            &format!("/api/users/{kid}/dnd"),
            Some(&admin),
            Some(&body),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.error_code(), "VALIDATION_ERROR", "{body}");
        if !field.is_empty() {
            let details = r.json()["error"]["details"].clone();
            assert!(
                details
                    .as_array()
                    .is_some_and(|d| d.iter().any(|e| e["field"] == field)),
                "{body}: {details}"
            );
        }
    }
    let r = h.call("GET", "/api/dnd", None, None);
    assert_eq!(r.status, 401);
    // Deleting the phone removes its setting.
    let r = h.call(
        "DELETE",
        &format!("/api/devices/{kid_phone}"),
        Some(&admin),
        None,
    );
    assert!(r.status == 204 || r.status == 200, "{}", r.text());
    assert!(!dnd_items(&h, &admin)
        .iter()
        .any(|s| s["scope"] == "device" && s["subject_id"] == kid_phone));
}
