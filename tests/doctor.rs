//! The doctor on the real binary: `GET /api/diagnostics` and `homeline
//! doctor` against the Twilio REST stand-in (`tests/common/twilio.rs`), with
//! good and bad credentials, a number whose webhooks point elsewhere,
//! Monitor alerts explained, and a phone that is not registered.

mod common;

use std::time::Duration;

use common::household;
use common::twilio::{StandIn, SID, TOKEN};
use common::{provision_devices, Homeline, Start};
use serde_json::{json, Value};

const PW: &str = household::ADMIN_PASSWORD;
const PUBLIC: &str = "https://home.example.org";
const NUMBER: &str = "+15551230009";
const DOMAIN: &str = "myhome.sip.twilio.com";

struct Rig {
    standin: StandIn,
    h: Homeline,
    admin: String,
}

/// A household set up as Homeline needs it at Twilio: credentials, the
/// number pointing here, the SIP Domain with our credential list; two phones
/// (`kitchen` registered, `attic` not).
fn rig() -> Rig {
    let standin = StandIn::start(SID, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(
        dir.path(),
        &[
            ("kitchen", "kitchen-pw-123456"),
            ("attic", "attic-pw-1234567"),
        ],
    );
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![("HOMELINE_TWILIO_API_BASE".into(), standin.base.clone())],
        ..Start::default()
    });
    let household::Household { admin, .. } = household::set_up(
        &h,
        SID,
        TOKEN,
        NUMBER,
        json!({"system": {"public_url": PUBLIC}, "twilio": {"sip_domain": DOMAIN}}),
    );
    let creds = h
        .call("GET", "/api/twilio/sip-credentials", Some(&admin), None)
        .json();
    let user = creds["username"].as_str().expect("sip user").to_string();
    standin.add_sip_domain(
        DOMAIN,
        &format!("{PUBLIC}/api/webhooks/voice/sip-domain"),
        false,
        Some(&[user.as_str()]),
    );
    standin.point_number_at(
        &format!("{PUBLIC}/api/webhooks/voice/incoming"),
        &format!("{PUBLIC}/api/webhooks/sms/incoming"),
        &format!("{PUBLIC}/api/webhooks/voice/status"),
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    common::calls::register(h.sip(), "kitchen", "kitchen-pw-123456", port);
    Rig { standin, h, admin }
}

fn diagnostics(rig: &Rig) -> Value {
    let r = rig
        .h
        .call("GET", "/api/diagnostics", Some(&rig.admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

#[test]
fn a_household_set_up_right_passes_and_the_unregistered_phone_is_named() {
    let rig = rig();
    let started = std::time::Instant::now();
    let report = diagnostics(&rig);
    assert!(
        started.elapsed() < Duration::from_secs(13),
        "bounded: {:?}",
        started.elapsed()
    );
    assert!(
        report["ran_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{report:#}"
    );
    for id in [
        "storage",
        "ports",
        "twilio_credentials",
        "numbers",
        "sip_domain",
        "twilio_alerts",
    ] {
        assert_eq!(check(&report, id)["status"], "ok", "{id}: {report:#}");
        assert!(check(&report, id)["fix"].is_null());
    }
    assert!(check(&report, "ports")["detail"]
        .as_str()
        .unwrap_or("")
        .contains("SIP over UDP"));
    let phones = check(&report, "phones");
    assert_eq!(phones["status"], "warning", "{phones}");
    let detail = phones["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("1 of 2 phone(s) not registered (live): attic (attic)"),
        "{detail}"
    );
    assert!(phones["fix"].as_str().unwrap_or("").contains("realm"));
    // The clock check runs everywhere; off a systemd machine it is "unknown".
    assert!(["ok", "warning", "error"]
        .contains(&check(&report, "clock")["status"].as_str().unwrap_or("")));
    assert_ne!(
        report["status"], "ok",
        "the attic phone makes it a warning at least"
    );

    // Readiness reports the clock but does not depend on it.
    let ready = rig.h.get("/api/health/ready");
    assert_eq!(ready.status, 200);
    assert!(ready.json()["clock"]["synchronised"].is_boolean());

    // Only admins may run it.
    let anon = rig.h.call("GET", "/api/diagnostics", None, None);
    assert_eq!(anon.status, 401);
}

#[test]
fn rejected_credentials_are_named_and_the_checks_that_need_them_skipped() {
    let mut rig = rig();
    // The token changed at Twilio: the same account now wants another one.
    let rotated = StandIn::start(SID, "tok-rotated-0000000000000000000000");
    rig.h.kill9_and_restart(vec![(
        "HOMELINE_TWILIO_API_BASE".into(),
        rotated.base.clone(),
    )]);
    let admin = rig.h.login("mum@x.org", PW).expect("login");
    let r = rig.h.call("GET", "/api/diagnostics", Some(&admin), None);
    let report = r.json();
    assert_eq!(report["status"], "error");
    let creds = check(&report, "twilio_credentials");
    assert_eq!(creds["status"], "error");
    assert_eq!(
        creds["detail"],
        "the Auth Token was rejected by Twilio (error 20003)"
    );
    assert!(creds["fix"]
        .as_str()
        .unwrap_or("")
        .contains("Settings → Twilio"));
    for id in ["numbers", "sip_domain", "twilio_alerts"] {
        let c = check(&report, id);
        assert_eq!(c["status"], "warning", "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with("not checked"),
            "{c}"
        );
    }
    drop(rig.standin);
}

#[test]
fn a_number_pointing_elsewhere_and_twilios_alerts_are_explained_by_page_and_command() {
    let rig = rig();
    rig.standin.point_number_at(
        "https://old.example.net/voice",
        &format!("{PUBLIC}/api/webhooks/sms/incoming"),
        &format!("{PUBLIC}/api/webhooks/voice/status"),
    );
    let hook = format!("{PUBLIC}/api/webhooks/voice/incoming");
    rig.standin
        .add_alert(11200, "error", &hook, Duration::from_secs(3600));
    rig.standin
        .add_alert(11200, "error", &hook, Duration::from_secs(600));
    rig.standin
        .add_alert(32209, "error", "", Duration::from_secs(300));
    // Older than the window: not asked for.
    rig.standin
        .add_alert(30007, "error", "", Duration::from_secs(3 * 86_400));

    let report = diagnostics(&rig);
    assert_eq!(report["status"], "error");
    let numbers = check(&report, "numbers");
    assert_eq!(numbers["status"], "error");
    assert!(numbers["detail"].as_str().unwrap_or("").contains(&format!(
        "{NUMBER}: calls go to https://old.example.net/voice instead of {PUBLIC}/api/webhooks/voice/incoming"
    )), "{numbers}");
    assert!(numbers["fix"]
        .as_str()
        .unwrap_or("")
        .contains("press Connect"));
    let a = check(&report, "twilio_alert_11200");
    assert_eq!(a["status"], "error");
    assert_eq!(a["title"], "Twilio error 11200: HTTP retrieval failure");
    let detail = a["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with("2 times in the last 24 hours"),
        "{detail}"
    );
    assert!(detail.contains(&hook), "{detail}");
    assert!(a["fix"].as_str().unwrap_or("").contains("forwards TCP 443"));
    let b = check(&report, "twilio_alert_32209");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Secure media is on"),
        "{b}"
    );
    assert!(b["fix"]
        .as_str()
        .unwrap_or("")
        .contains("Turn off Secure media"));
    assert!(report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["id"] != "twilio_alert_30007"));
    let monitor_asked = rig
        .standin
        .state
        .lock()
        .expect("state")
        .log
        .iter()
        .any(|l| l.starts_with("GET /v1/Alerts?StartDate="));
    assert!(monitor_asked);

    // The command, from the data directory beside the running appliance.
    let out = common::command()
        .args(["doctor", "--data-dir"])
        .arg(rig.h.data())
        .env("HOMELINE_TWILIO_API_BASE", &rig.standin.base)
        .env("HOMELINE_CONFIG_FILE", "")
        .output()
        .expect("run homeline doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("✓ Twilio credentials: accepted by Twilio"),
        "{text}"
    );
    assert!(text.contains("✗ Numbers point at this appliance: +15551230009: calls go to https://old.example.net/voice"), "{text}");
    assert!(
        text.contains("    fix: On the Numbers page press Connect"),
        "{text}"
    );
    assert!(
        text.contains("✗ Twilio error 32209: SIP: secure transport required"),
        "{text}"
    );
    assert!(
        text.contains(
            "! Phones registered: 1 of 2 phone(s) not registered (as last recorded): attic"
        ),
        "{text}"
    );
    assert!(text.contains("something is broken"), "{text}");

    let out = common::command()
        .args(["doctor", "--json", "--data-dir"])
        .arg(rig.h.data())
        .env("HOMELINE_TWILIO_API_BASE", &rig.standin.base)
        .env("HOMELINE_CONFIG_FILE", "")
        .output()
        .expect("run homeline doctor --json");
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(json["status"], "error");
    assert_eq!(check(&json, "twilio_alert_11200")["status"], "error");
}

/// Settings → Diagnostics in Debian's Chromium (`ui/tests/diagnostics.spec.cjs`,
/// playwright-core + axe-core); screenshots at 390×844 and 1280×800 land in
/// `target/browser-shots/diagnostics/`. Needs the UI built into the binary,
/// `ui/node_modules` and chromium (`make test-deps`).
#[test]
fn the_diagnostics_page_shows_each_check_with_its_fix() {
    if common::rerun_in_private_netns("the_diagnostics_page_shows_each_check_with_its_fix") {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for m in ["playwright-core", "axe-core"] {
        assert!(
            root.join("ui/node_modules").join(m).is_dir(),
            "ui/node_modules/{m} is missing: run `cd ui && npm ci` (make test-deps does)"
        );
    }
    let rig = rig();
    rig.standin.point_number_at(
        "https://old.example.net/voice",
        &format!("{PUBLIC}/api/webhooks/sms/incoming"),
        &format!("{PUBLIC}/api/webhooks/voice/status"),
    );
    rig.standin.add_alert(
        11200,
        "error",
        &format!("{PUBLIC}/api/webhooks/voice/incoming"),
        Duration::from_secs(600),
    );
    let shots = root.join("target/browser-shots/diagnostics");
    let _ = std::fs::remove_dir_all(&shots);
    let out = std::process::Command::new("timeout")
        .args(["150", "node", "tests/diagnostics.spec.cjs"])
        .current_dir(root.join("ui"))
        .env("BASE_URL", format!("http://{}", rig.h.http))
        .env("SHOTS_DIR", &shots)
        .env("ADMIN_EMAIL", "mum@x.org")
        .env("ADMIN_PASSWORD", PW)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or("(no summary)");
    println!("diagnostics: screenshots in {}", shots.display());
    assert!(
        out.status.success(),
        "the diagnostics scenario failed:\n{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
