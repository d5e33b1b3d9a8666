//! The notification pages in Debian's Chromium against the real binary: the
//! script `ui/tests/notify.spec.cjs` (playwright-core + axe-core) sets up
//! e-mail and push in Settings → Notifications, tests them, and adds,
//! pauses, tests and removes a webhook; this test provides what the page
//! talk to (a closed SMTP port, a Gotify stand-in, a webhook receiver, all
//! on loopback) and checks afterwards what reached them and what the API
//! kept. Screenshots land in `target/browser-shots/notify/`. Needs the UI
//! built into the binary (`ui-dist/`), node with `ui/node_modules` and
//! chromium (`make test-deps`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{rerun_in_private_netns, wait_for, Homeline, Start};
use serde_json::{json, Value};

const EMAIL: &str = "mum@x.org";
const PW: &str = "blue kettle on the hob";
const GOTIFY_TOKEN: &str = "AppTokenGotify1";

/// One request a receiver got: the request line, the headers (lower-case
/// names) and the body.
#[derive(Debug, Clone)]
struct Got {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP receiver standing in for Gotify (`POST /message`) and a
/// webhook endpoint (`POST /hook`): answers 200 with JSON and keeps every
/// request.
fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let keep = keep.clone();
            std::thread::spawn(move || serve(stream, &keep));
        }
    });
    (base, got)
}

fn serve(stream: TcpStream, keep: &Mutex<Vec<Got>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let got = Got {
        line: line.trim().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let answer = if got.line.starts_with("POST /message") {
        r#"{"id":1,"appid":1,"message":"ok","title":"ok","priority":5,"date":"2026-12-02T10:00:00Z"}"#
    } else {
        r#"{"ok":true}"#
    };
    keep.lock().expect("lock").push(got);
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

#[test]
fn the_notification_settings_page_sets_up_e_mail_push_and_webhooks_and_tests_them() {
    if rerun_in_private_netns(
        "the_notification_settings_page_sets_up_e_mail_push_and_webhooks_and_tests_them",
    ) {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for m in ["playwright-core", "axe-core"] {
        assert!(
            root.join("ui/node_modules").join(m).is_dir(),
            "ui/node_modules/{m} is missing: run `cd ui && npm ci` (make test-deps does)"
        );
    }
    let h = Homeline::start_with(Start::default());
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

    // A port nothing listens on: the SMTP test must say it could not connect.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (base, got) = receiver();
    let hook_url = format!("{base}/hook");

    let shots = root.join("target/browser-shots/notify");
    let _ = std::fs::remove_dir_all(&shots);
    let out = std::process::Command::new("timeout")
        .args(["230", "node", "tests/notify.spec.cjs"])
        .current_dir(root.join("ui"))
        .env("BASE_URL", format!("http://{}", h.http))
        .env("SHOTS_DIR", &shots)
        .env("ADMIN_EMAIL", EMAIL)
        .env("ADMIN_PASSWORD", PW)
        .env("SMTP_CLOSED_PORT", closed.to_string())
        .env("GOTIFY_URL", &base)
        .env("GOTIFY_TOKEN", GOTIFY_TOKEN)
        .env("HOOK_URL", &hook_url)
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or("(no summary)");
    println!("notify: screenshots in {}", shots.display());
    assert!(
        out.status.success(),
        "the notification scenario failed:\n{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The test push reached Gotify once, with the saved token and priority.
    let pushes: Vec<Got> = got
        .lock()
        .expect("lock")
        .iter()
        .filter(|g| g.line.starts_with("POST /message"))
        .cloned()
        .collect();
    assert_eq!(pushes.len(), 1, "one test push: {pushes:?}");
    let token_sent = pushes[0].header("x-gotify-key") == Some(GOTIFY_TOKEN)
        || pushes[0].line.contains(&format!("token={GOTIFY_TOKEN}"));
    assert!(token_sent, "the push carried the token: {:?}", pushes[0]);
    let push: Value = serde_json::from_str(&pushes[0].body).expect("JSON push");
    assert_eq!(push["priority"], 7, "the priority set in the page: {push}");

    // The webhook's test event arrived (through the outbox), signed.
    let hook = wait_for(Duration::from_secs(20), || {
        got.lock()
            .expect("lock")
            .iter()
            .find(|g| g.line.starts_with("POST /hook"))
            .cloned()
    })
    .expect("the test event reached the webhook");
    assert_eq!(hook.header("x-homeline-event"), Some("test"), "{hook:?}");
    assert!(
        hook.header("x-homeline-signature")
            .is_some_and(|s| s.starts_with("t=") && s.contains(",v1=")),
        "signed: {hook:?}"
    );

    // What the pages saved, as the API sees it.
    let config = h
        .call("GET", "/api/system/config", Some(&admin), None)
        .json();
    assert_eq!(config["notify"]["email_provider"], "smtp", "{config}");
    assert_eq!(config["notify"]["transcript_wait_secs"], 90, "{config}");
    assert_eq!(config["smtp"]["security"], "none", "{config}");
    assert_eq!(config["gotify"]["token_set"], true, "{config}");
    let hooks = h.call("GET", "/api/webhooks", Some(&admin), None).json();
    assert_eq!(hooks["items"], json!([]), "deleted in the page: {hooks}");
}
