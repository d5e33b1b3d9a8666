//! The web side's security model on the real binary: the route × principal
//! matrix generated from the router's own table, ownership, login lockout
//! (surviving a restart, not fooled by X-Forwarded-For), CSRF, the session
//! cookie, the setup wizard running once, the Twilio credentials check, and
//! secrets never leaving the appliance.
//!
//! Time-based rules (lockout release after 15 minutes, session expiry and
//! sliding) need a manual clock, so they are tested in-process in
//! `src/http/login.rs` and `src/accounts/`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::twilio::{self, StandIn, SID, TOKEN};
use common::{Homeline, Resp, Start};
use homeline::http::router::Access;
use serde_json::{json, Value};

const PW: &str = "blue kettle on the hob";

/// Completes setup with an admin `mum@x.org` and two numbers; returns the
/// admin's session token.
fn set_up(h: &Homeline) -> String {
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({
            "admin": {"email": "mum@x.org", "password": PW, "display_name": "Mum"},
            "timezone": "Europe/London",
            "phone_numbers": [{"number": "+15551230001", "name": "Kid's line"}, {"number": "+15551230002", "name": "Gran's line"}]
        })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.session_token().expect("setup logs the admin in")
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

fn did_id(h: &Homeline, admin: &str, number: &str) -> i64 {
    let r = h.call("GET", "/api/dids", Some(admin), None);
    r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["number"] == number)
        .and_then(|d| d["id"].as_i64())
        .expect("the number exists")
}

fn assign(h: &Homeline, admin: &str, did: i64, user: i64) {
    let r = h.call(
        "PUT",
        &format!("/api/dids/{did}/users"),
        Some(admin),
        Some(&json!({ "user_ids": [user] })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A household: admin mum, users kid and gran, each user with a number.
struct Household {
    h: Homeline,
    admin: String,
    kid: String,
    gran: String,
    gran_id: i64,
    gran_did: i64,
    kid_did: i64,
    gran_device: i64,
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

fn household(h: Homeline) -> Household {
    let admin = set_up(&h);
    let kid_id = create_user(&h, &admin, "kid@x.org");
    let gran_id = create_user(&h, &admin, "gran@x.org");
    let kid_did = did_id(&h, &admin, "+15551230001");
    let gran_did = did_id(&h, &admin, "+15551230002");
    assign(&h, &admin, kid_did, kid_id);
    assign(&h, &admin, gran_did, gran_id);
    let gran_device = create_device(&h, &admin, "gran-kitchen", Some(gran_id));
    let kid = h.login("kid@x.org", PW).expect("kid logs in");
    let gran = h.login("gran@x.org", PW).expect("gran logs in");
    Household {
        gran_device,
        h,
        admin,
        kid,
        gran,
        gran_id,
        gran_did,
        kid_did,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    /// A user acting on another user's objects.
    User,
    /// The user who owns the objects the paths name.
    OtherUser,
    Admin,
}

/// What the matrix expects.
#[derive(Debug)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// Past the security layer: neither 401 nor 403 (the handler may still
    /// refuse the minimal body with 400, or answer 409).
    Admitted,
    /// No session is required: anything but 401.
    NoSession,
}

/// The objects path parameters name: always the other user's ("gran"), so
/// ownership is exercised; `None` for a parameter the matrix does not know.
fn target(path: &str, hh: &Household, method: &str) -> Option<(String, bool)> {
    if !path.contains('{') {
        return Some((path.to_string(), false));
    }
    match path {
        // Deleting gran would spoil later requests: delete a fresh account.
        "/api/users/{id}" if method == "DELETE" => {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let victim = create_user(&hh.h, &hh.admin, &format!("victim{n}@x.org"));
            Some((format!("/api/users/{victim}"), false))
        }
        "/api/users/{id}" => Some((format!("/api/users/{}", hh.gran_id), false)),
        "/api/dids/{id}" => Some((format!("/api/dids/{}", hh.gran_did), true)),
        "/api/dids/{id}/users" => Some((format!("/api/dids/{}/users", hh.gran_did), true)),
        "/api/devices/{id}" if method == "DELETE" => {
            static D: AtomicU32 = AtomicU32::new(0);
            let n = D.fetch_add(1, Ordering::SeqCst);
            let victim = create_device(&hh.h, &hh.admin, &format!("victim{n}"), None);
            Some((format!("/api/devices/{victim}"), false))
        }
        "/api/devices/{id}" => Some((format!("/api/devices/{}", hh.gran_device), true)),
        // A user may set their own DND and their phones': gran's is another's.
        "/api/users/{id}/dnd" => Some((format!("/api/users/{}/dnd", hh.gran_id), true)),
        "/api/devices/{id}/dnd" => Some((format!("/api/devices/{}/dnd", hh.gran_device), true)),
        "/api/devices/{id}/password" => {
            Some((format!("/api/devices/{}/password", hh.gran_device), false))
        }
        "/api/users/{id}/lockout" => Some((format!("/api/users/{}/lockout", hh.gran_id), false)),
        "/api/devices/{id}/credentials" => {
            Some((format!("/api/devices/{}/credentials", hh.gran_device), true))
        }
        // No call is up: hold and hang-up answer 404 for every admitted caller.
        "/api/calls/{id}" | "/api/calls/{id}/hold" | "/api/calls/{id}/transfer" => {
            Some((path.replace("{id}", "4242"), false))
        }
        // Voicemail and messages hang off gran's number; ids that name no
        // row answer 404 to everyone past the gate (like another user's).
        "/api/voicemails/{id}" | "/api/voicemails/{id}/read" | "/api/voicemails/{id}/audio" => {
            Some((path.replace("{id}", "999999"), true))
        }
        "/api/messages/{id}" => Some(("/api/messages/999999".into(), true)),
        "/api/messages/{id}/media/{index}" => Some(("/api/messages/999999/media/0".into(), true)),
        "/api/messages/conversation/{number}" | "/api/messages/conversation/{number}/read" => {
            Some((
                format!(
                    "{}?did_id={}",
                    path.replace("{number}", "%2B15559870000"),
                    hh.gran_did
                ),
                true,
            ))
        }
        "/api/system/alerts/{id}" => Some(("/api/system/alerts/999999".into(), false)),
        // Ids that name no event webhook: 404 to everyone past the gate.
        "/api/webhooks/{id}" | "/api/webhooks/{id}/test" => {
            Some((path.replace("{id}", "999999"), false))
        }
        // No issuance runs: the CA's challenge fetch answers 404 to anyone.
        "/.well-known/acme-challenge/{token}" => {
            Some(("/.well-known/acme-challenge/unknown-token".into(), false))
        }
        "/api/system/outbox/{id}/retry" => Some(("/api/system/outbox/999999/retry".into(), false)),
        "/api/blocklist/{id}" => Some(("/api/blocklist/999999".into(), false)),
        // Nothing is banned: an admin's unban answers 404.
        "/api/sip/bans/{addr}" => Some(("/api/sip/bans/203.0.113.9".into(), false)),
        "/api/dids/{id}/greeting" => Some((format!("/api/dids/{}/greeting", hh.gran_did), true)),
        "/api/greetings/{name}" => Some((
            "/api/greetings/1-0123456789abcdef0123456789abcdef.mp3".into(),
            false,
        )),
        "/api/dids/{id}/auto-replies" => {
            Some((format!("/api/dids/{}/auto-replies", hh.gran_did), true))
        }
        "/api/auto-replies/{id}" => Some(("/api/auto-replies/999999".into(), true)),
        "/api/dids/{id}/rules" | "/api/dids/{id}/rules/order" | "/api/dids/{id}/simulate" => {
            Some((path.replace("{id}", &hh.gran_did.to_string()), true))
        }
        "/api/rules/{id}" | "/api/caller-lists/{id}" => {
            Some((path.replace("{id}", "999999"), false))
        }
        "/api/twilio/numbers/{sid}/connect" => Some((
            "/api/twilio/numbers/PN0123456789abcdef0123456789abcdef/connect".into(),
            false,
        )),
        _ => None,
    }
}

fn expected(access: Access, who: Who, owned_by_other: bool) -> Expect {
    // No wildcard arms: a new Access variant must be decided here.
    match access {
        Access::Public => Expect::Admitted,
        Access::Webhook => Expect::NoSession,
        Access::User => match who {
            Who::Anonymous => Expect::Status(401),
            Who::User if owned_by_other => Expect::Status(404),
            Who::User | Who::OtherUser | Who::Admin => Expect::Admitted,
        },
        Access::Admin => match who {
            Who::Anonymous => Expect::Status(401),
            Who::User | Who::OtherUser => Expect::Status(403),
            Who::Admin => Expect::Admitted,
        },
    }
}

#[test]
fn every_route_answers_every_principal_as_its_declared_access_says() {
    let hh = household(Homeline::start());
    let routes = homeline::http::routes();
    assert!(routes.len() >= 15, "the table is walked: {routes:?}");
    let mut checked = 0;
    for route in &routes {
        let method = route.method.as_str();
        for who in [Who::Anonymous, Who::User, Who::OtherUser, Who::Admin] {
            let Some((path, owned)) = target(route.path, &hh, method) else {
                panic!(
                    "{method} {}: the matrix does not know which object this path names; add it to target()",
                    route.path
                );
            };
            let (email, token) = match who {
                Who::Anonymous => (None, None),
                Who::User => (Some("kid@x.org"), Some(hh.kid.clone())),
                Who::OtherUser => (Some("gran@x.org"), Some(hh.gran.clone())),
                Who::Admin => (Some("mum@x.org"), Some(hh.admin.clone())),
            };
            // Logging out ends the session: use a fresh one for that.
            let token = match (route.path, email) {
                ("/api/auth/logout", Some(email)) => Some(hh.h.login(email, PW).expect("login")),
                _ => token,
            };
            let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({}));
            // The event stream never ends by itself: its HEAD passes the
            // same gate and answers at once.
            let method = if route.path == "/api/events" {
                "HEAD"
            } else {
                method
            };
            let r = hh.h.call(method, &path, token.as_deref(), body.as_ref());
            let what = format!("{method} {path} as {who:?}: {} {}", r.status, r.text());
            assert!(
                !(r.status == 404 && r.text().contains("no route")) && r.status != 405,
                "the route exists: {what}"
            );
            match expected(route.access, who, owned) {
                Expect::Status(s) if method == "HEAD" => assert_eq!(r.status, s, "{what}"),
                Expect::Status(s) => {
                    assert_eq!(r.status, s, "{what}");
                    let code = r.error_code();
                    let want = match s {
                        401 => "AUTHENTICATION_ERROR",
                        403 => "AUTHORIZATION_ERROR",
                        _ => "NOT_FOUND",
                    };
                    assert_eq!(code, want, "{what}");
                }
                Expect::Admitted => assert!(![401, 403].contains(&r.status), "{what}"),
                Expect::NoSession => assert_ne!(r.status, 401, "{what}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * 4);
}

#[test]
fn users_see_only_their_own_numbers() {
    let hh = household(Homeline::start());
    let numbers = |token: &str| -> Vec<i64> {
        let r = hh.h.call("GET", "/api/dids", Some(token), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|d| d["id"].as_i64())
            .collect()
    };
    assert_eq!(numbers(&hh.kid), vec![hh.kid_did]);
    assert_eq!(numbers(&hh.gran), vec![hh.gran_did]);
    let mut all = numbers(&hh.admin);
    all.sort_unstable();
    assert_eq!(all.len(), 2);

    let foreign = hh.h.call(
        "GET",
        &format!("/api/dids/{}", hh.gran_did),
        Some(&hh.kid),
        None,
    );
    let missing = hh.h.call("GET", "/api/dids/999999", Some(&hh.kid), None);
    assert_eq!((foreign.status, missing.status), (404, 404));
    assert_eq!(
        foreign.text().replace(&hh.gran_did.to_string(), "N"),
        missing.text().replace("999999", "N"),
        "another user's number looks exactly like a missing one"
    );
    let own = hh.h.call(
        "GET",
        &format!("/api/dids/{}", hh.kid_did),
        Some(&hh.kid),
        None,
    );
    assert_eq!(own.status, 200);
    assert!(
        own.json().get("user_ids").is_none(),
        "users do not see who else has a number"
    );
    let admin_view = hh.h.call(
        "GET",
        &format!("/api/dids/{}", hh.kid_did),
        Some(&hh.admin),
        None,
    );
    assert!(admin_view.json()["user_ids"].is_array());
}

fn fail_login(h: &Homeline, email: &str, extra: &[(&str, &str)]) -> Resp {
    h.call_with(
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"email": email, "password": "not the password"})),
        extra,
    )
}

#[test]
fn a_lockout_survives_a_restart() {
    let mut h = Homeline::start();
    set_up(&h);
    for i in 1..=4 {
        assert_eq!(fail_login(&h, "mum@x.org", &[]).status, 401, "failure {i}");
    }
    let r = fail_login(&h, "mum@x.org", &[]);
    assert_eq!((r.status, r.error_code().as_str()), (429, "RATE_LIMITED"));
    assert_eq!(r.header("retry-after"), Some("900"));

    h.restart();
    let r = h.call(
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"email": "mum@x.org", "password": PW})),
    );
    assert_eq!(r.status, 429, "still locked after a restart: {}", r.text());
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((800..=900).contains(&wait), "{wait}");

    // The console reset (README: "Locked out of the web UI") lifts the
    // account's lockout; the client address stays locked.
    let mut child = common::command()
        .args([
            "admin",
            "reset-password",
            "--password-stdin",
            "--email",
            "mum@x.org",
            "--data-dir",
        ])
        .arg(h.data())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"green teapot in the hall\n",
    )
    .expect("write");
    assert!(child.wait().expect("wait").success());
    let conn = homeline::store::open_connection(&h.data().join("homeline.db")).expect("open");
    let keys: Vec<String> = conn
        .prepare("SELECT key FROM login_attempts ORDER BY key")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(keys, vec!["ip:127.0.0.1".to_string()]);
}

#[test]
fn a_spoofed_x_forwarded_for_is_ignored() {
    let h = Homeline::start();
    set_up(&h);
    for i in 0..5 {
        let ip = format!("203.0.113.{i}");
        fail_login(
            &h,
            &format!("nobody{i}@x.org"),
            &[("X-Forwarded-For", &ip), ("X-Real-IP", &ip)],
        );
    }
    let r = h.call_with(
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"email": "mum@x.org", "password": PW})),
        &[("X-Forwarded-For", "198.51.100.77")],
    );
    assert_eq!(
        r.status,
        429,
        "the client address is the socket's peer, whatever the header says: {}",
        r.text()
    );
}

#[test]
fn csrf_and_cookie_attributes() {
    let h = Homeline::start();
    set_up(&h);
    let body = json!({"email": "mum@x.org", "password": PW}).to_string();
    let r = h.request(
        "POST",
        "/api/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "AUTHORIZATION_ERROR"),
        "no X-Requested-With"
    );
    for (k, v) in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = h.call_with(
            "POST",
            "/api/auth/login",
            None,
            Some(&json!({"email": "mum@x.org", "password": PW})),
            &[(k, v)],
        );
        assert_eq!(r.status, 403, "{k}: {v}");
    }
    let origin = format!("http://{}", h.http);
    let r = h.call_with(
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"email": "mum@x.org", "password": PW})),
        &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r.header("set-cookie").expect("cookie").to_string();
    let attrs: Vec<&str> = cookie.split("; ").collect();
    assert!(
        attrs[0].starts_with("homeline_session=") && attrs[0].len() == 17 + 64,
        "{cookie}"
    );
    for a in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(attrs.contains(&a), "{a} in {cookie}");
    }
    assert!(
        !attrs.contains(&"Secure"),
        "served over plain HTTP: {cookie}"
    );
    let token = r.session_token().expect("token");

    // A session-authenticated write without the header is refused too.
    let cookie = format!("homeline_session={token}");
    let r = h.request(
        "PUT",
        "/api/system/config",
        &[("Content-Type", "application/json"), ("Cookie", &cookie)],
        b"{}",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (403, "AUTHORIZATION_ERROR")
    );
    assert_eq!(
        h.call("PUT", "/api/system/config", Some(&token), Some(&json!({})))
            .status,
        200
    );
}

#[test]
fn setup_completes_once_and_only_once() {
    let h = Homeline::start();
    let status = || h.call("GET", "/api/setup/status", None, None).json();
    assert_eq!(status()["setup_completed"], false);

    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({"admin": {"email": "bad", "password": "short"}, "timezone": "Mars/Base", "phone_numbers": [{"number": "555"}]})),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR")
    );
    let fields: Vec<String> = r.json()["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str().map(str::to_owned))
        .collect();
    for f in [
        "admin.email",
        "admin.password",
        "timezone",
        "phone_numbers[0].number",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    assert_eq!(
        status()["setup_completed"],
        false,
        "a failed attempt changes nothing"
    );

    // Two wizards racing: exactly one wins.
    let attempt = |email: &'static str| {
        let addr = h.http;
        std::thread::spawn(move || {
            let body =
                json!({"admin": {"email": email, "password": PW}, "timezone": "UTC"}).to_string();
            common::request(
                addr,
                "POST",
                "/api/setup/complete",
                &[
                    ("Content-Type", "application/json"),
                    ("X-Requested-With", "homeline"),
                ],
                body.as_bytes(),
            )
        })
    };
    let (a, b) = (attempt("mum@x.org"), attempt("intruder@x.org"));
    let mut statuses = vec![a.join().expect("a").status, b.join().expect("b").status];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409]);
    assert_eq!(status()["setup_completed"], true);

    let winner = ["mum@x.org", "intruder@x.org"]
        .into_iter()
        .find(|e| h.login(e, PW).is_ok())
        .expect("the winner can log in");
    let loser = if winner == "mum@x.org" {
        "intruder@x.org"
    } else {
        "mum@x.org"
    };
    assert!(
        h.login(loser, PW).is_err(),
        "the second admin was not created"
    );

    let again = json!({"admin": {"email": "third@x.org", "password": PW}, "timezone": "UTC"});
    let r = h.call("POST", "/api/setup/complete", None, Some(&again));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "VALIDATION_ERROR")
    );
    let token = h.login(winner, PW).expect("login");
    let r = h.call("POST", "/api/setup/complete", Some(&token), Some(&again));
    assert_eq!(r.status, 409, "not even for an admin");
    let me = h.call("GET", "/api/me", Some(&token), None).json();
    assert_eq!(me["user"]["role"], "admin");
}

fn with_twilio(base: &str, extra: Vec<(String, String)>) -> Start {
    let mut env = vec![("HOMELINE_TWILIO_API_BASE".to_string(), base.to_string())];
    env.extend(extra);
    Start {
        env,
        ..Start::default()
    }
}

fn setup_with_twilio(h: &Homeline, token: &str) -> Resp {
    h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({
            "admin": {"email": "mum@x.org", "password": PW},
            "timezone": "America/New_York",
            "twilio": {"account_sid": SID, "auth_token": token},
        })),
    )
}

#[test]
fn twilio_credentials_are_checked_with_twilio_before_they_are_stored() {
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(with_twilio(&standin.base, vec![]));

    // Invalid: 400 naming the twilio field; nothing stored, setup still open.
    let r = setup_with_twilio(&h, "tok-wrong");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "VALIDATION_ERROR"),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["error"]["details"][0]["field"], "twilio");
    assert!(
        r.text().contains("Authenticate"),
        "Twilio's reason is passed on: {}",
        r.text()
    );
    let s = h.call("GET", "/api/setup/status", None, None).json();
    assert_eq!(
        (s["setup_completed"].clone(), s["twilio_configured"].clone()),
        (json!(false), json!(false))
    );

    // Valid: stored, and the account's name is shown.
    let r = setup_with_twilio(&h, TOKEN);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["twilio"]["friendly_name"], "Stand-in household");
    let admin = r.session_token().expect("token");
    let cfg = h
        .call("GET", "/api/system/config", Some(&admin), None)
        .json();
    assert_eq!(
        (
            &cfg["twilio"]["account_sid"],
            &cfg["twilio"]["auth_token_set"]
        ),
        (&json!(SID), &json!(true))
    );
    assert_eq!(cfg["system"]["timezone"], "America/New_York");
    assert!(
        standin.requests.load(Ordering::SeqCst) >= 2,
        "Twilio was asked"
    );

    // Changing the token in the settings is checked as well.
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"twilio": {"auth_token": "tok-wrong"}})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"twilio": {"auth_token": TOKEN}, "smtp": {"port": 587}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["smtp"]["port"], 587);
}

#[test]
fn an_unreachable_twilio_is_a_502_and_setup_can_skip_twilio() {
    let h = Homeline::start_with(with_twilio(&twilio::unreachable_base(), vec![]));
    let r = setup_with_twilio(&h, TOKEN);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "INTERNAL_ERROR"),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["error"]["details"]["upstream"], "twilio");
    assert!(!r.text().contains(TOKEN));
    let s = h.call("GET", "/api/setup/status", None, None).json();
    assert_eq!(s["setup_completed"], false, "nothing stored");

    // Twilio is optional at setup: do it later in the settings.
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({"admin": {"email": "mum@x.org", "password": PW}, "timezone": "UTC"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("token");
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({"twilio": {"account_sid": SID, "auth_token": TOKEN}})),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let cfg = h
        .call("GET", "/api/system/config", Some(&admin), None)
        .json();
    assert_eq!(
        (
            &cfg["twilio"]["account_sid"],
            &cfg["twilio"]["auth_token_set"]
        ),
        (&json!(null), &json!(false))
    );
}

#[test]
fn secrets_never_appear_in_responses_logs_or_the_database_file() {
    let standin = StandIn::start(SID, TOKEN);
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("server.log");
    let mut start = with_twilio(
        &standin.base,
        vec![("HOMELINE_LOG_LEVEL".into(), "trace".into())],
    );
    start.stderr = Some(log.clone());
    let mut h = Homeline::start_with(start);
    const SMTP: &str = "smtp-pw-5b2e1c7a";
    const POSTMARK: &str = "postmark-key-0d4f9a31";
    const GOTIFY: &str = "gotify-token-77c1e3b9";
    let secrets = [TOKEN, SMTP, POSTMARK, GOTIFY, PW];

    let r = setup_with_twilio(&h, TOKEN);
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("token");
    let mut bodies: Vec<String> = vec![r.text()];
    let r = h.call(
        "PUT",
        "/api/system/config",
        Some(&admin),
        Some(&json!({
            "smtp": {"host": "smtp.example.org", "port": 587, "username": "mum", "password": SMTP, "from": "home@example.org"},
            "postmark": {"server_token": POSTMARK},
            "gotify": {"url": "http://gotify.lan", "token": GOTIFY},
        })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["smtp"]["password_set"].clone(),
            r.json()["gotify"]["token_set"].clone()
        ),
        (json!(true), json!(true))
    );
    bodies.push(r.text());
    let _ = create_user(&h, &admin, "kid@x.org");
    let kid = h.login("kid@x.org", PW).expect("login");

    // Every route, as everyone, with and without a body.
    for route in homeline::http::routes() {
        let path = route.path.replace("{id}", "1");
        for token in [None, Some(kid.as_str()), Some(admin.as_str())] {
            if route.path == "/api/auth/logout" {
                continue;
            }
            for body in [None, Some(json!({}))] {
                let method = match route.path {
                    // The event stream never ends by itself (HEAD: its headers).
                    "/api/events" => "HEAD",
                    _ => route.method.as_str(),
                };
                let r = h.call(method, &path, token, body.as_ref());
                bodies.push(format!("{:?} {}", r.headers, r.text()));
            }
        }
    }
    for body in &bodies {
        for s in secrets {
            assert!(!body.contains(s), "a response contains a secret: {body}");
        }
    }

    assert!(h.terminate(Duration::from_secs(15)).success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("setup completed") && text.contains("system configuration changed"),
        "the log was captured at trace level: {} bytes",
        text.len()
    );
    for s in secrets {
        assert!(!text.contains(s), "the log contains a secret ({s})");
    }
    // Sealed at rest: not in the database file either (the WAL was folded in on exit).
    let db = std::fs::read(h.data().join("homeline.db")).expect("db");
    let db = String::from_utf8_lossy(&db);
    for s in [TOKEN, SMTP, POSTMARK, GOTIFY] {
        assert!(!db.contains(s), "the database holds {s} in plain text");
    }
    assert!(
        db.contains("smtp.example.org"),
        "non-secret settings are plain"
    );
}

#[test]
fn session_cookie_is_secure_behind_a_trusted_https_proxy_only() {
    let h = Homeline::start_with(Start {
        env: vec![("HOMELINE_HTTP_TRUSTED_PROXY".into(), "127.0.0.1".into())],
        ..Start::default()
    });
    set_up(&h);
    let login = |extra: &[(&str, &str)]| -> Value {
        let r = h.call_with(
            "POST",
            "/api/auth/login",
            None,
            Some(&json!({"email": "mum@x.org", "password": PW})),
            extra,
        );
        json!(r.header("set-cookie"))
    };
    assert!(login(&[("X-Forwarded-Proto", "https")])
        .as_str()
        .is_some_and(|c| c.ends_with("; Secure")));
    assert!(login(&[]).as_str().is_some_and(|c| !c.contains("Secure")));
}

/// The field names of a 400's `details[]`.
fn error_fields(r: &Resp) -> Vec<String> {
    r.json()["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|x| x["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_wizard_goes_step_by_step_and_resumes_from_the_server() {
    let standin = StandIn::start(SID, TOKEN);
    let h = Homeline::start_with(with_twilio(&standin.base, vec![]));
    let status = || h.call("GET", "/api/setup/status", None, None).json();
    let s = status();
    assert_eq!(
        (s["step"].clone(), s["admin_exists"].clone()),
        (json!("welcome"), json!(false))
    );

    // The steps come in order: no administrator before the household.
    let r = h.call(
        "POST",
        "/api/setup/admin",
        None,
        Some(&json!({"email": "mum@x.org", "password": PW})),
    );
    assert_eq!(r.status, 409, "{}", r.text());

    // 1. Household: checked at the field, then stored.
    let r = h.call(
        "PUT",
        "/api/setup/household",
        None,
        Some(&json!({"household_name": "", "timezone": "Mars/Base"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_fields(&r), vec!["household_name", "timezone"]);
    let r = h.call(
        "PUT",
        "/api/setup/household",
        None,
        Some(&json!({"household_name": "The Smiths", "timezone": "Europe/London"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["step"].clone(), r.json()["household_name"].clone()),
        (json!("admin"), json!("The Smiths"))
    );

    // 2. The administrator: policy errors at the field; created and logged in; only once.
    let r = h.call(
        "POST",
        "/api/setup/admin",
        None,
        Some(&json!({"email": "nope", "password": "short"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_fields(&r), vec!["email", "password"]);
    let r = h.call(
        "POST",
        "/api/setup/admin",
        None,
        Some(&json!({"email": "mum@x.org", "password": PW, "display_name": "Mum"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("the new admin is logged in");
    assert_eq!(r.json()["user"]["role"], "admin");
    assert_eq!(status()["step"], "twilio");
    for (method, path, body) in [
        (
            "POST",
            "/api/setup/admin",
            json!({"email": "intruder@x.org", "password": PW}),
        ),
        (
            "POST",
            "/api/setup/complete",
            json!({"admin": {"email": "intruder@x.org", "password": PW}, "timezone": "UTC"}),
        ),
        (
            "PUT",
            "/api/setup/household",
            json!({"household_name": "Taken", "timezone": "UTC"}),
        ),
    ] {
        let r = h.call(method, path, None, Some(&body));
        assert_eq!(r.status, 409, "{method} {path}: {}", r.text());
    }
    assert!(h.login("intruder@x.org", PW).is_err(), "no second admin");

    // 3. Twilio: a wrong token is refused at the field; skip is recorded; then configured.
    let r = h.call(
        "PUT",
        "/api/setup/twilio",
        Some(&admin),
        Some(&json!({"account_sid": SID, "auth_token": "tok-wrong"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_fields(&r), vec!["auth_token"]);
    let r = h.call(
        "PUT",
        "/api/setup/twilio",
        Some(&admin),
        Some(&json!({"skip": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["step"].clone(), r.json()["twilio_skipped"].clone()),
        (json!("internet"), json!(true))
    );
    let r = h.call(
        "PUT",
        "/api/setup/twilio",
        Some(&admin),
        Some(&json!({"account_sid": SID, "auth_token": TOKEN})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(
        (s["twilio_configured"].clone(), s["twilio_skipped"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(s["twilio_account"]["friendly_name"], "Stand-in household");

    // 4. The port-forward plan and the public URL.
    let r = h.call("GET", "/api/setup/network", Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = r.json();
    let rules = plan["rules"].as_array().expect("rules");
    assert!(
        rules
            .iter()
            .any(|x| x["protocol"] == "UDP" && x["ports"] == "10000-10199"),
        "{plan}"
    );
    assert!(
        rules
            .iter()
            .any(|x| x["protocol"] == "TCP" && x["ports"] == "443"),
        "{plan}"
    );
    assert_eq!(plan["web_port"], json!(h.http.port()));
    assert!(plan["lan_addresses"].is_array());
    let r = h.call(
        "PUT",
        "/api/setup/network",
        Some(&admin),
        Some(&json!({"public_url": "not a url"})),
    );
    assert_eq!(
        (r.status, error_fields(&r)),
        (400, vec!["public_url".to_string()]),
        "{}",
        r.text()
    );
    let r = h.call(
        "PUT",
        "/api/setup/network",
        Some(&admin),
        Some(&json!({"public_url": "https://home.example.org/"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["step"], "numbers");

    // 5, 6. Numbers and the phone are done through their own routes, then marked.
    let r = h.call(
        "PUT",
        "/api/setup/step",
        Some(&admin),
        Some(&json!({"step": "welcome"})),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    for step in ["numbers", "phone"] {
        let r = h.call(
            "PUT",
            "/api/setup/step",
            Some(&admin),
            Some(&json!({"step": step})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(status()["step"], "finish");
    assert_eq!(
        status()["setup_completed"],
        false,
        "only finish completes it"
    );

    let r = h.call("POST", "/api/setup/finish", Some(&admin), Some(&json!({})));
    assert_eq!(r.status, 200, "{}", r.text());
    let s = status();
    assert_eq!(
        (s["setup_completed"].clone(), s["step"].clone()),
        (json!(true), json!("done"))
    );
    let cfg = h
        .call("GET", "/api/system/config", Some(&admin), None)
        .json();
    assert_eq!(cfg["system"]["public_url"], "https://home.example.org");
    assert_eq!(cfg["system"]["timezone"], "Europe/London");
    for (method, path) in [
        ("POST", "/api/setup/finish"),
        ("PUT", "/api/setup/twilio"),
        ("PUT", "/api/setup/step"),
    ] {
        let r = h.call(
            method,
            path,
            Some(&admin),
            Some(&json!({"skip": true, "step": "phone"})),
        );
        assert_eq!(r.status, 409, "{method} {path} after setup: {}", r.text());
    }
}

#[test]
fn an_admin_sees_a_locked_out_account_and_lifts_the_lockout() {
    let h = Homeline::start();
    let admin = set_up(&h);
    let kid = create_user(&h, &admin, "kid@x.org");
    let locked_until = || {
        let r = h.call("GET", "/api/users", Some(&admin), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|u| u["id"] == json!(kid))
            .expect("kid listed")["locked_until"]
            .clone()
    };
    assert_eq!(locked_until(), Value::Null);
    for _ in 0..5 {
        assert!(h.login("kid@x.org", "wrong password here").is_err());
    }
    assert!(locked_until().is_string(), "locked: {}", locked_until());
    let single = h.call("GET", &format!("/api/users/{kid}"), Some(&admin), None);
    assert!(single.json()["locked_until"].is_string());

    let r = h.call(
        "DELETE",
        &format!("/api/users/{kid}/lockout"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["locked_until"], Value::Null);
    assert_eq!(locked_until(), Value::Null);
    // The account lock is gone; the test client's address was locked too
    // (both keys count), and stays so: unlocking is about the account.
    let r = h.call("DELETE", "/api/users/999999/lockout", Some(&admin), None);
    assert_eq!(r.status, 404);
}

#[test]
fn regenerating_a_phone_password_replaces_it() {
    let h = Homeline::start();
    let admin = set_up(&h);
    let phone = create_device(&h, &admin, "hall", None);
    let creds = |t: &str| {
        h.call(
            "GET",
            &format!("/api/devices/{phone}/credentials"),
            Some(t),
            None,
        )
        .json()
    };
    let before = creds(&admin)["password"]
        .as_str()
        .expect("password")
        .to_string();
    let r = h.call(
        "POST",
        &format!("/api/devices/{phone}/password"),
        Some(&admin),
        Some(&json!({})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = r.json()["password"]
        .as_str()
        .expect("new password")
        .to_string();
    assert_ne!(before, fresh);
    assert_eq!(r.json()["username"], "hall");
    assert_eq!(creds(&admin)["password"], json!(fresh));
    let r = h.call(
        "POST",
        "/api/devices/999999/password",
        Some(&admin),
        Some(&json!({})),
    );
    assert_eq!(r.status, 404);
}

/// Once HTTPS is served, the port-80 forward carries nothing secret from
/// the internet: the UI and the API answer a 308 to HTTPS; the LAN, the
/// ACME challenge and Twilio's (signed) webhooks are served as before.
#[test]
fn plain_http_from_the_internet_is_sent_to_https_once_https_is_served() {
    let h = Homeline::start_with(Start {
        env: vec![
            ("HOMELINE_HTTP_TRUSTED_PROXY".into(), "127.0.0.1".into()),
            ("HOMELINE_HTTP_TLS_LISTEN".into(), "127.0.0.1:0".into()),
        ],
        ..Start::default()
    });
    let internet = [("X-Forwarded-For", "203.0.113.9")];
    let r = h.call_with("GET", "/api/me", None, None, &internet);
    assert_eq!(r.status, 308, "{}", r.text());
    let location = r.header("location").expect("a Location");
    assert!(
        location.starts_with("https://") && location.ends_with("/api/me"),
        "{location}"
    );
    assert_eq!(r.json()["error"]["code"], "https_required");
    let r = h.call_with("GET", "/login?next=%2Fcalls", None, None, &internet);
    assert_eq!(r.status, 308);
    assert!(r
        .header("location")
        .is_some_and(|l| l.ends_with("/login?next=%2Fcalls")));

    // Already HTTPS at the proxy, or from the LAN: served as before.
    let r = h.call_with(
        "GET",
        "/api/me",
        None,
        None,
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = h.call_with(
        "GET",
        "/api/me",
        None,
        None,
        &[("X-Forwarded-For", "192.168.1.20")],
    );
    assert_eq!(r.status, 401, "{}", r.text());

    // The CA's challenge and Twilio's webhooks still reach their routes.
    let r = h.call_with(
        "GET",
        "/.well-known/acme-challenge/nothing-here",
        None,
        None,
        &internet,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = h.call_with("POST", "/api/webhooks/sms/incoming", None, None, &internet);
    assert_ne!(r.status, 308, "{}", r.text());
}

#[test]
fn without_https_the_internet_is_served_over_http_as_before() {
    let h = Homeline::start_with(Start {
        env: vec![("HOMELINE_HTTP_TRUSTED_PROXY".into(), "127.0.0.1".into())],
        ..Start::default()
    });
    let r = h.call_with(
        "GET",
        "/api/me",
        None,
        None,
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(r.status, 401, "{}", r.text());
}
