//! Numbers → Rules in Debian's Chromium against the real binary: the
//! scenario `ui/tests/rules.spec.cjs` (playwright-core + axe-core) makes a
//! caller list, adds rules (hours painted in the week grid, a save refused
//! by the server's validation first), reorders them by drag and drop and
//! with the keyboard buttons, asks the "what happens if…" simulator, switches
//! Do-Not-Disturb from the header and the DND page and adds SMS
//! auto-replies; a family member switches their own DND from the header
//! and sees only their phones. This test sets the household up (a number, two accounts,
//! three phones) and afterwards checks through the API what the pages saved.
//!
//! Screenshots at 390×844 and 1280×800 land in `target/browser-shots/rules/`.
//! Needs the UI built into the binary (`ui-dist/`), node with
//! `ui/node_modules`, and chromium (`make test-deps`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{rerun_in_private_netns, Homeline};
use serde_json::{json, Value};

const EMAIL: &str = "mum@x.org";
const PW: &str = "blue kettle on the hob";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with a clear message when the npm modules or Chromium are missing.
fn require_browser() {
    let ui = root().join("ui");
    for m in ["playwright-core", "axe-core"] {
        assert!(
            ui.join("node_modules").join(m).is_dir(),
            "ui/node_modules/{m} is missing: run `cd ui && npm ci` (make test-deps does)"
        );
    }
    assert!(
        Path::new("/usr/bin/chromium").exists() || Path::new("/usr/lib/chromium/chromium").exists(),
        "Chromium is missing: apt-get install chromium (make test-deps does)"
    );
}

/// Runs the scenario; panics with its summary if it failed.
fn run_scenario(h: &Homeline) {
    let shots = root().join("target/browser-shots/rules");
    let _ = std::fs::remove_dir_all(&shots);
    let mut child = Command::new("timeout")
        .args(["260", "node", "tests/rules.spec.cjs"])
        .current_dir(root().join("ui"))
        .env("BASE_URL", format!("http://{}", h.http))
        .env("SHOTS_DIR", &shots)
        .env("ADMIN_EMAIL", EMAIL)
        .env("ADMIN_PASSWORD", PW)
        .env("FAMILY_EMAIL", "gran@x.org")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut summary = None;
    for line in out.lines() {
        let line = line.expect("scenario output");
        match line.strip_prefix("SUMMARY ") {
            Some(json) => summary = Some(json.to_string()),
            None => println!("rules: {line}"),
        }
    }
    let status = child.wait().expect("node exit");
    let summary = summary.unwrap_or_else(|| "(no summary)".into());
    let pretty = serde_json::from_str::<Value>(&summary)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or(summary);
    println!("rules: screenshots in {}", shots.display());
    assert!(status.success(), "the rules scenario failed:\n{pretty}");
}

#[test]
fn rules_are_made_reordered_and_simulated_dnd_and_auto_replies_set_in_the_ui() {
    // Chromium and the appliance see only loopback (as root).
    if rerun_in_private_netns(
        "rules_are_made_reordered_and_simulated_dnd_and_auto_replies_set_in_the_ui",
    ) {
        return;
    }
    require_browser();
    let h = Homeline::start();
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({
            "admin": {"email": EMAIL, "password": PW},
            "timezone": "Europe/London",
            "phone_numbers": [{"number": "+15551230001", "name": "Home line"}],
        })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("session");
    let mut people = Vec::new();
    for (email, name) in [("gran@x.org", "Gran"), ("sam@x.org", "Sam")] {
        let r = h.call(
            "POST",
            "/api/users",
            Some(&admin),
            Some(&json!({"email": email, "display_name": name, "role": "user", "password": PW})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        people.push(r.json()["id"].as_i64().expect("user id"));
    }
    for (name, username, owner) in [
        ("Kitchen", "kitchen", people[0]),
        ("Bedroom", "bedroom", people[0]),
        ("Sam's phone", "sam", people[1]),
    ] {
        let r = h.call(
            "POST",
            "/api/devices",
            Some(&admin),
            Some(&json!({"name": name, "username": username, "user_id": owner})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let did = h.call("GET", "/api/dids", Some(&admin), None).json()["items"][0]["id"]
        .as_i64()
        .expect("did id");
    let r = h.call(
        "PUT",
        &format!("/api/dids/{did}/users"),
        Some(&admin),
        Some(&json!({ "user_ids": people })),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    run_scenario(&h);

    // What the pages saved, as the server has it. A build without the
    // rules API (its branch not merged yet) answers 404: the scenario then
    // reported its rule steps as not exercised, and so does this test.
    let rules = h.call("GET", &format!("/api/dids/{did}/rules"), Some(&admin), None);
    if rules.status == 404 {
        println!(
            "rules: NOT EXERCISED: this build has no rules API (GET /api/dids/{{id}}/rules is 404)"
        );
    } else {
        check_rules(&h, &admin, &rules.json());
    }
    let replies = h
        .call(
            "GET",
            &format!("/api/dids/{did}/auto-replies"),
            Some(&admin),
            None,
        )
        .json();
    assert_eq!(
        replies["items"].as_array().map(Vec::len),
        Some(2),
        "{replies}"
    );
    let dnd = h.call("GET", "/api/dnd", Some(&admin), None).json();
    let items = dnd["items"].as_array().expect("dnd items");
    assert!(
        items
            .iter()
            .any(|s| s["scope"] == "device" && s["on"] == true),
        "the kitchen was quieted in the UI: {dnd}"
    );
    assert!(
        items
            .iter()
            .any(|s| s["scope"] == "system" && s["schedule"]["weekly"][0]["days"] == json!(["sat"])),
        "the house's quiet hours were painted in the UI: {dnd}"
    );
    assert!(
        items
            .iter()
            .any(|s| s["scope"] == "user" && s["subject_id"] == people[0] && s["on"] == true),
        "Gran switched her own DND on from the header: {dnd}"
    );
}

/// The rules and caller list the scenario made, as the server has them.
fn check_rules(h: &Homeline, admin: &str, rules: &Value) {
    let names: Vec<&str> = rules["items"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["Grandma rings through", "Kids' bedtime"],
        "ordered and one deleted in the UI: {rules}"
    );
    let bedtime = &rules["items"][1];
    assert_eq!(bedtime["action"]["type"], "ring", "{bedtime}");
    assert_eq!(
        bedtime["conditions"][0]["schedule"]["weekly"],
        json!([
            {"days": ["mon"], "from": "21:00", "to": "02:00"},
            {"days": ["sun"], "from": "00:00", "to": "00:00"},
        ]),
        "painted in the week grid: {bedtime}"
    );
    assert_eq!(
        bedtime["conditions"][0]["schedule"]["dates"],
        json!([{"from": "2026-12-24", "to": "2026-12-26", "label": "Christmas"}]),
        "a holiday added in the UI: {bedtime}"
    );
    let lists = h.call("GET", "/api/caller-lists", Some(admin), None).json();
    assert_eq!(lists["items"][0]["name"], "VIP", "{lists}");
}
