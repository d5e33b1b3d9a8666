//! Fault injection through the `test-hooks` feature (never in release builds):
//! a stalled core loop must stop the watchdog pings, a panicking handler must
//! answer 500 in the error format, bad JSON must answer 400.

mod common;

use std::time::Duration;

use common::{Homeline, NotifySocket, Start};

fn with_watchdog(notify: &NotifySocket) -> Homeline {
    Homeline::start_with(Start {
        env: vec![
            ("NOTIFY_SOCKET".into(), notify.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        ..Start::default()
    })
}

fn pings(msgs: &[(Duration, String)]) -> usize {
    msgs.iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .count()
}

fn stall_stops_pings(which: &str) {
    let notify = NotifySocket::new();
    let h = with_watchdog(&notify);
    assert!(notify.wait_for("READY=1", Duration::from_secs(5)));
    assert!(
        pings(&notify.collect(Duration::from_millis(1600))) >= 2,
        "healthy: pings flow"
    );

    let body = format!(r#"{{"loop":"{which}","seconds":7}}"#);
    let r = h.request(
        "POST",
        "/api/test/stall",
        &[
            ("Content-Type", "application/json"),
            ("X-Requested-With", "homeline"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    // The stall starts at the loop's next tick (≤ 0.5 s); pings go on until
    // the last beat is 1.5 s old (plus one 0.5 s tick), then stop for as long
    // as the stall lasts. The margins leave room for a loaded machine.
    let during = notify.collect(Duration::from_millis(6500));
    let late: Vec<_> = during
        .iter()
        .filter(|(t, m)| *t > Duration::from_millis(3000) && m.contains("WATCHDOG=1"))
        .collect();
    assert!(
        late.is_empty(),
        "no pings while the {which} loop is stalled: {during:?}"
    );
    assert!(
        during
            .iter()
            .any(|(_, m)| m.contains("STATUS=stalled") && m.contains(which)),
        "{during:?}"
    );
    // And they resume once it recovers (the window allows for a loaded
    // machine: the stall has about a second left when it opens).
    let after = notify.collect(Duration::from_millis(8000));
    assert!(
        pings(&after) >= 1,
        "pings resume after the stall: {after:?}"
    );
    assert_eq!(h.get("/health").status, 200);
}

#[test]
fn watchdog_pings_stop_while_the_database_loop_is_stalled() {
    stall_stops_pings("db");
}

#[test]
fn watchdog_pings_stop_while_the_http_loop_is_stalled() {
    stall_stops_pings("http");
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_lives_on() {
    let h = Homeline::start();
    let r = h.get("/api/test/panic");
    assert_eq!((r.status, r.error_code().as_str()), (500, "INTERNAL_ERROR"));
    let id = r.header("x-request-id").expect("request id").to_string();
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&id)),
        "the message names the request id"
    );
    assert_eq!(h.get("/health").status, 200);
}

#[test]
fn bad_json_and_wrong_content_type_are_validation_errors() {
    let h = Homeline::start();
    // Public POSTs are CSRF-checked too: send the header the web UI sends.
    let json = [
        ("Content-Type", "application/json"),
        ("X-Requested-With", "homeline"),
    ];
    let r = h.request("POST", "/api/test/stall", &json, b"{\"loop\": ");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR")
    );
    assert!(r.json()["error"]["details"]["line"].is_number());
    let r = h.request(
        "POST",
        "/api/test/stall",
        &json,
        br#"{"loop": "sip", "seconds": 1}"#,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR")
    );
    let r = h.request(
        "POST",
        "/api/test/stall",
        &[
            ("Content-Type", "text/plain"),
            ("X-Requested-With", "homeline"),
        ],
        b"{}",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (415, "VALIDATION_ERROR")
    );
}
