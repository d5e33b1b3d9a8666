//! The admin pages in Debian's Chromium against the real binary: the script
//! `ui/tests/admin.spec.cjs` (playwright-core + axe-core) tours Calls, Call
//! history, Numbers and every Settings page at phone and laptop size, while
//! this test makes what the pages must show happen for real: a call between
//! two baresip phones, a SIP ban from wrong passwords (sipp), and checks
//! what the UI did (the ban lifted, the call recorded).
//!
//! The two talk over the script's stdin/stdout, one line per step.
//! Screenshots land in `target/browser-shots/admin/`. Needs the UI built into the
//! binary (`ui-dist/`), node with `ui/node_modules`, chromium, baresip, sipp
//! (`make test-deps`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::baresip::Baresip;
use common::{provision_devices, rerun_in_private_netns, sipp, wait_for, Homeline, Start};
use serde_json::json;

const EMAIL: &str = "mum@x.org";
const PW: &str = "blue kettle on the hob";

/// The spec script as a child, its stdout read line by line on a thread.
struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Script {
    fn start(h: &Homeline, shots: &std::path::Path) -> Script {
        let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
        assert!(
            ui.join("node_modules/playwright-core").is_dir(),
            "ui/node_modules is missing: run `make test-deps`"
        );
        let mut child = Command::new("timeout")
            .args(["200", "node", "tests/admin.spec.cjs"])
            .current_dir(&ui)
            .env("HOMELINE_URL", format!("http://{}", h.http))
            .env("ADMIN_EMAIL", EMAIL)
            .env("ADMIN_PASSWORD", PW)
            .env("SHOTS", shots)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Script {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the script to say `want`; fails with everything it said.
    fn expect(&mut self, want: &str, within: Duration) {
        loop {
            match self.lines.recv_timeout(within) {
                Ok(line) if line == want => return,
                Ok(line) => {
                    let summary = line.starts_with('{');
                    self.seen.push(line);
                    assert!(!summary, "the script ended before {want}: {:?}", self.seen);
                }
                Err(_) => panic!("the script never said {want}: {:?}", self.seen),
            }
        }
    }

    fn tell(&mut self, what: &str) {
        writeln!(self.stdin, "{what}").expect("tell the script");
        self.stdin.flush().expect("flush");
    }

    /// The script's JSON summary and whether it passed.
    fn finish(mut self) -> (bool, serde_json::Value) {
        let summary = loop {
            match self.lines.recv_timeout(Duration::from_secs(90)) {
                Ok(line) if line.starts_with('{') => {
                    break serde_json::from_str(&line).unwrap_or(json!({ "unreadable": line }))
                }
                Ok(line) => self.seen.push(line),
                Err(_) => break json!({ "no summary": self.seen }),
            }
        };
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, summary)
    }
}

fn registered(phone: &mut Baresip) {
    let ok = wait_for(Duration::from_secs(10), || {
        let r = phone.command("reginfo");
        r["data"]
            .as_str()
            .is_some_and(|d| d.contains("OK"))
            .then_some(())
    });
    assert!(ok.is_some(), "registered:\n{}", phone.log());
}

#[test]
fn the_admin_pages_show_a_live_call_lift_a_ban_and_answer_the_blocklist() {
    // Chromium and the appliance see only loopback (as root).
    if rerun_in_private_netns(
        "the_admin_pages_show_a_live_call_lift_a_ban_and_answer_the_blocklist",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(
        dir.path(),
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![
            ("HOMELINE_MEDIA_RTP_PORTS".into(), "21700-21719".into()),
            ("HOMELINE_SIP_GUARD_MAX_AUTH_FAILURES".into(), "1".into()),
        ],
        ..Start::default()
    });
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
    let r = h.call(
        "POST",
        "/api/users",
        Some(&admin),
        Some(
            &json!({"email": "gran@x.org", "display_name": "Gran", "role": "user", "password": PW}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-shots/admin");
    std::fs::create_dir_all(&shots).expect("shots dir");
    let mut script = Script::start(&h, &shots);

    script.expect("numbers-done", Duration::from_secs(90));
    let did = h.call("GET", "/api/dids", Some(&admin), None).json()["items"][0]["id"].clone();
    let did = h
        .call("GET", &format!("/api/dids/{did}"), Some(&admin), None)
        .json();
    assert_eq!(
        did["user_ids"].as_array().map(Vec::len),
        Some(1),
        "Gran was assigned in the UI: {did}"
    );
    let greeting = h
        .call(
            "GET",
            &format!("/api/dids/{}/greeting", did["id"]),
            Some(&admin),
            None,
        )
        .json();
    assert!(
        greeting["greeting"].is_string(),
        "a greeting was uploaded in the UI: {greeting}"
    );
    script.expect("calls-open", Duration::from_secs(60));
    let sip = h.sip().to_string();
    let mut bob = Baresip::start("bob", "bobpw", &sip, "20700-20719", "sine:1000");
    let mut alice = Baresip::start("alice", "alicepw", &sip, "20800-20819", "sine:440");
    registered(&mut alice);
    registered(&mut bob);
    alice.command(&format!("dial sip:bob@{sip}"));
    assert!(
        alice
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "the call is up:\n{}",
        alice.log()
    );
    script.tell("call-up");
    script.expect("held-and-resumed", Duration::from_secs(60));
    alice.command("hangup");
    assert!(
        bob.wait_event("CALL_CLOSED", Duration::from_secs(5))
            .is_some(),
        "bob saw the BYE:\n{}",
        bob.log()
    );
    bob.stop();
    alice.stop();
    script.tell("call-ended");

    script.expect("history-ok", Duration::from_secs(60));
    for _ in 0..2 {
        sipp(
            h.sip(),
            "register_badauth.xml",
            &["-t", "u1", "-s", "alice", "-au", "alice", "-ap", "WRONG"],
        );
    }
    let bans = h.call("GET", "/api/sip/bans", Some(&admin), None).json();
    assert_eq!(bans["items"][0]["ip"], "127.0.0.1", "{bans}");
    script.tell("banned");
    script.expect("unbanned", Duration::from_secs(60));
    let bans = h.call("GET", "/api/sip/bans", Some(&admin), None).json();
    assert_eq!(bans["items"], json!([]), "the UI lifted the ban");
    let (code, out) = sipp(
        h.sip(),
        "register_auth.xml",
        &["-t", "u1", "-s", "alice", "-au", "alice", "-ap", "alicepw"],
    );
    assert_eq!(code, 0, "alice can register again: {out}");
    script.tell("unban-checked");

    let (ok, summary) = script.finish();
    assert!(
        ok,
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    let list = h.call("GET", "/api/blocklist", Some(&admin), None).json();
    assert_eq!(
        list["items"][0]["pattern"], "+1900",
        "added in the UI: {list}"
    );
}
