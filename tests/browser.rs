//! The web UI in Debian's Chromium against the real binary: each test starts
//! the appliance (and the Twilio REST stand-in, and baresip phones when the
//! scenario asks for them), then runs a scenario `ui/tests/<name>.spec.cjs`
//! with node (playwright-core + axe-core). Screenshots of every page at
//! 390×844 and 1280×800 land in `target/browser-shots/<name>/`.
//!
//! As root the test re-runs itself in a private network namespace with only
//! loopback, so neither Chromium nor anything else can reach beyond this
//! machine. The scenario speaks line by line on stdout: `PHONE {json}` asks
//! for a phone registering with the credentials the page showed; the last
//! line is `SUMMARY {json}`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::baresip::Baresip;
use common::twilio::{StandIn, SID, TOKEN};
use common::{rerun_in_private_netns, Homeline, Start};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with a clear message when node, the npm modules or Chromium are missing.
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

/// Runs a scenario; `on_phone` gets each `PHONE` request. Panics with the
/// scenario's summary if it failed.
fn run_scenario(name: &str, env: &[(&str, String)], mut on_phone: impl FnMut(serde_json::Value)) {
    let shots = root().join("target/browser-shots").join(name);
    let _ = std::fs::remove_dir_all(&shots);
    let mut child = Command::new("timeout")
        .arg("240")
        .arg("node")
        .arg(format!("tests/{name}.spec.cjs"))
        .current_dir(root().join("ui"))
        .env("SHOTS_DIR", &shots)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut summary = None;
    for line in out.lines() {
        let line = line.expect("scenario output");
        if let Some(json) = line.strip_prefix("PHONE ") {
            on_phone(serde_json::from_str(json).expect("PHONE json"));
        } else if let Some(json) = line.strip_prefix("SUMMARY ") {
            summary = Some(json.to_string());
        } else {
            println!("{name}: {line}");
        }
    }
    let status = child.wait().expect("node exit");
    let summary = summary.unwrap_or_else(|| "(no summary)".into());
    let pretty = serde_json::from_str::<serde_json::Value>(&summary)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or(summary);
    println!("{name}: screenshots in {}", shots.display());
    assert!(status.success(), "scenario {name} failed:\n{pretty}");
    println!("{name}: passed");
}

#[test]
fn the_wizard_then_a_phone_added_in_the_ui_registers_live() {
    if rerun_in_private_netns("the_wizard_then_a_phone_added_in_the_ui_registers_live") {
        return;
    }
    require_browser();
    common::baresip::require();
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(Start {
        env: vec![("HOMELINE_TWILIO_API_BASE".to_string(), standin.base.clone())],
        ..Start::default()
    });
    let sip = h.sip();
    let mut phones: Vec<Baresip> = Vec::new();
    run_scenario(
        "wizard",
        &[
            ("BASE_URL", format!("http://{}", h.http)),
            ("TWILIO_SID", SID.to_string()),
            ("TWILIO_TOKEN", TOKEN.to_string()),
        ],
        |creds| {
            let (user, pass) = (
                creds["username"].as_str().expect("username"),
                creds["password"].as_str().expect("password"),
            );
            // The registrar is what the page showed; it must be this server.
            let registrar = format!(
                "{}:{}",
                creds["server"].as_str().expect("server"),
                creds["port"].as_str().expect("port")
            );
            assert_eq!(
                registrar,
                sip.to_string(),
                "the page shows this server's SIP address"
            );
            phones.push(Baresip::start(
                user,
                pass,
                &registrar,
                "21700-21719",
                "sine:440",
            ));
        },
    );
    assert_eq!(phones.len(), 1, "the scenario registered one phone");
}
