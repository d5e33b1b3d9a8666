//! A local stand-in for Twilio's REST API, following Twilio's documented
//! formats (paths under `/2010-04-01/Accounts/{Sid}`, HTTP Basic, form
//! bodies, JSON answers, Twilio's error JSON, RFC 2822 dates):
//!
//! * `GET  /Accounts/{Sid}.json` — the account (401 with error 20003 for bad credentials)
//! * `GET  /IncomingPhoneNumbers.json`, `POST /IncomingPhoneNumbers/{PN}.json`
//! * `POST /Messages.json` (201), `GET /Messages.json?From=&To=`, `GET /Messages/{SM}.json`
//! * `GET  /Recordings/{RE}.mp3` (audio), `DELETE /Recordings/{RE}.json` (204, then 404)
//! * `GET  /Messages/{MM}/Media/{ME}` → 307 to `/media-store/{ME}` (no auth there); `DELETE …/{ME}.json`
//! * `GET/POST /Calls/{CA}.json`
//! * `GET  /SIP/Domains.json`, `GET /SIP/Domains/{SD}/Auth/Calls/CredentialListMappings.json`,
//!   `GET /SIP/CredentialLists/{CL}/Credentials.json` (empty until [`StandIn::add_sip_domain`])
//! * Monitor: `GET /v1/Alerts?StartDate=&PageSize=` (Twilio serves it at
//!   `monitor.twilio.com`; the appliance derives that host from the API base,
//!   and a loopback base serves both), alerts added with [`StandIn::add_alert`]
//!
//! Failures are scriptable: a queue of [`Fault`]s consumed by the next
//! requests (500, 429 with `Retry-After`, a slow answer, a created message
//! whose answer is slow), and an outage switch (every request 503).
//! Point the appliance at it with `HOMELINE_TWILIO_API_BASE`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// A test Account SID.
pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Its auth token (distinctive, so tests can search logs and bodies for it).
pub const TOKEN: &str = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// A recording the stand-in holds.
pub const RECORDING_SID: &str = "RE0123456789abcdef0123456789abcdef";
/// Its audio (not real MP3; the appliance stores bytes, it does not decode).
pub const RECORDING_AUDIO: &[u8] =
    b"ID3\x04\x00fake-mp3-frames-0123456789abcdefghijklmnopqrstuvwxyz";
/// A recipient Twilio refuses (its test credentials' magic number).
pub const INVALID_NUMBER: &str = "+15005550001";
/// A number of the account.
pub const NUMBER_SID: &str = "PN0123456789abcdef0123456789abcdef";

/// A scripted answer for the next matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 500 with Twilio's error JSON.
    ServerError,
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// Handle normally, but answer only after this long.
    Slow(Duration),
}

/// A message the stand-in created.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub status_callback: Option<String>,
    pub media_urls: Vec<String>,
}

/// What the stand-in saw and holds.
#[derive(Debug, Default)]
pub struct State {
    /// Messages created, in order (a duplicate delivery shows up here).
    pub messages: Vec<Created>,
    /// Recordings and media deleted.
    pub deleted: Vec<String>,
    /// Number updates: (PN sid, form).
    pub number_updates: Vec<(String, Vec<(String, String)>)>,
    /// Scripted faults, consumed in order by requests under `/Accounts/`.
    pub faults: VecDeque<Fault>,
    /// Request lines seen (`POST /2010-04-01/…`).
    pub log: Vec<String>,
    /// Monitor alerts (the documented list representation), newest last.
    pub alerts: Vec<Value>,
    /// SIP Domains, with the user names of the one credential list mapped
    /// to each for calls (none when `None`).
    pub sip_domains: Vec<(Value, Option<Vec<String>>)>,
}

/// The credential list SID the stand-in maps to its `n`th domain.
pub fn credential_list_sid(n: usize) -> String {
    format!("CL{:032x}", n + 1)
}

/// A running stand-in.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`, for `HOMELINE_TWILIO_API_BASE`.
    pub base: String,
    /// How many requests it has answered.
    pub requests: Arc<AtomicUsize>,
    /// Shared state.
    pub state: Arc<Mutex<State>>,
    /// While set, every request answers 503.
    pub outage: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Serves the account `sid` for `token` until dropped.
    pub fn start(sid: &'static str, token: &'static str) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Mutex::new(State::default()));
        let outage = Arc::new(AtomicBool::new(false));
        let (st, rq, sh, out, b) = (
            stop.clone(),
            requests.clone(),
            state.clone(),
            outage.clone(),
            base.clone(),
        );
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    rq.fetch_add(1, Ordering::SeqCst);
                    let (sh, out, b) = (sh.clone(), out.clone(), b.clone());
                    std::thread::spawn(move || answer(s, sid, token, &sh, &out, &b));
                }
            }
        });
        StandIn {
            base,
            requests,
            state,
            outage,
            stop,
            thread: Some(thread),
        }
    }

    /// Queues faults for the next requests.
    pub fn script(&self, faults: &[Fault]) {
        self.state
            .lock()
            .expect("state")
            .faults
            .extend(faults.iter().cloned());
    }

    /// Messages created so far.
    pub fn created(&self) -> Vec<Created> {
        self.state.lock().expect("state").messages.clone()
    }

    /// Recordings deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.state.lock().expect("state").deleted.clone()
    }

    /// Number updates so far.
    pub fn number_updates(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.state.lock().expect("state").number_updates.clone()
    }

    /// Adds a Monitor alert with Twilio's `error_code` (a string, as Twilio
    /// sends it), `log_level`, the failing request's URL, created `age` ago.
    pub fn add_alert(&self, code: u32, level: &str, request_url: &str, age: Duration) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            - age.as_secs() as i64;
        let at = homeline::clock::Timestamp::from_unix_millis(secs * 1000).to_string();
        let at = format!("{}Z", &at[..19]);
        let mut st = self.state.lock().expect("state");
        let sid = format!("NO{:032x}", st.alerts.len() + 1);
        st.alerts.push(json!({
            "account_sid": SID, "alert_text": format!("Msg=&sourceComponent=14100&url={}", homeline::twilio::client::encode_component(request_url)),
            "api_version": "2010-04-01", "date_created": at, "date_generated": at, "date_updated": at,
            "error_code": code.to_string(), "log_level": level,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "request_method": "POST", "request_url": request_url,
            "resource_sid": "CA0123456789abcdef0123456789abcdef", "service_sid": null, "sid": sid,
            "url": format!("https://monitor.twilio.com/v1/Alerts/{sid}"),
        }));
    }

    /// Adds a SIP Domain `name` whose *A call comes in* is `voice_url`, with
    /// `secure` media, authenticating calls with a credential list holding
    /// `usernames` (no list mapped when `None`).
    pub fn add_sip_domain(
        &self,
        name: &str,
        voice_url: &str,
        secure: bool,
        usernames: Option<&[&str]>,
    ) {
        let mut st = self.state.lock().expect("state");
        let sid = format!("SD{:032x}", st.sip_domains.len() + 1);
        st.sip_domains.push((
            json!({"sid": sid, "account_sid": SID, "domain_name": name, "friendly_name": name,
                   "voice_url": voice_url, "voice_method": "POST", "secure": secure,
                   "sip_registration": false, "auth_type": if usernames.is_some() { "CREDENTIAL_LIST" } else { "" }}),
            usernames.map(|u| u.iter().map(|s| s.to_string()).collect()),
        ));
    }

    /// Points the account's number somewhere else, as if changed in the console.
    pub fn point_number_at(&self, voice_url: &str, sms_url: &str, status_callback: &str) {
        self.state.lock().expect("state").number_updates.push((
            NUMBER_SID.to_string(),
            vec![
                ("VoiceUrl".into(), voice_url.into()),
                ("SmsUrl".into(), sms_url.into()),
                ("StatusCallback".into(), status_callback.into()),
            ],
        ));
    }

    /// The recording's URL as Twilio puts it in callbacks (no extension).
    pub fn recording_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{SID}/Recordings/{RECORDING_SID}",
            self.base
        )
    }

    /// A media URL as Twilio puts it in `MediaUrl0`.
    pub fn media_url(&self, media_sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{SID}/Messages/MM0123456789abcdef0123456789abcdef/Media/{media_sid}",
            self.base
        )
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Form and query decoding (`+` as space, `%XX`).
fn form(s: &str) -> Vec<(String, String)> {
    homeline::http::request::parse_query(s)
}

/// `Sat, 21 Nov 2026 10:00:00 +0000` for now.
pub fn rfc2822_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let iso = homeline::clock::Timestamp::from_unix_millis(secs * 1000).to_string();
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = DAYS[(secs.div_euclid(86_400).rem_euclid(7)) as usize];
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{weekday}, {} {} {} {} +0000",
        &iso[8..10],
        MONTHS[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

fn message_json(sid: &str, m: &Created, status: &str, date: &str) -> Value {
    json!({
        "sid": sid, "account_sid": SID, "from": m.from, "to": m.to, "body": m.body,
        "status": status, "num_media": m.media_urls.len().to_string(), "direction": "outbound-api",
        "date_created": date, "date_updated": date, "date_sent": null, "error_code": null,
        "error_message": null, "api_version": "2010-04-01", "price": null,
        "uri": format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json"),
    })
}

fn answer(
    mut s: TcpStream,
    sid: &str,
    token: &str,
    state: &Mutex<State>,
    outage: &AtomicBool,
    base: &str,
) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if length > 0 && s.read_exact(&mut body).is_err() {
        return;
    }
    let mut words = head.split(' ');
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (path, query) = (path.to_string(), form(query));
    let body = form(&String::from_utf8_lossy(&body));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
    let authorized = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim() == format!("Basic {basic}")
        });
    let account = format!("/2010-04-01/Accounts/{sid}");

    let respond = |s: &mut TcpStream, status: &str, ctype: &str, extra: &str, body: &[u8]| {
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(body);
    };
    let error = |s: &mut TcpStream, status: u16, code: u32, message: &str, extra: &str| {
        let text = match status {
            401 => "401 Unauthorized",
            404 => "404 Not Found",
            429 => "429 Too Many Requests",
            500 => "500 Internal Server Error",
            503 => "503 Service Unavailable",
            _ => "400 Bad Request",
        };
        let body = json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status});
        respond(
            s,
            text,
            "application/json",
            extra,
            body.to_string().as_bytes(),
        );
    };
    // The two answers most routes give.
    let ok_json = |s: &mut TcpStream, body: &Value| {
        respond(
            s,
            "200 OK",
            "application/json",
            "",
            body.to_string().as_bytes(),
        )
    };
    let not_found =
        |s: &mut TcpStream| error(s, 404, 20404, "The requested resource was not found", "");

    if path.starts_with("/media-store/") {
        respond(
            &mut s,
            "200 OK",
            "image/jpeg",
            "",
            b"\xff\xd8\xff\xe0fake-jpeg",
        );
        return;
    }
    state
        .lock()
        .expect("state")
        .log
        .push(format!("{method} {target}"));
    if outage.load(Ordering::SeqCst) {
        error(&mut s, 503, 20503, "Service Unavailable", "");
        return;
    }
    if path == "/v1/Alerts" && authorized {
        let start = query
            .iter()
            .find(|(k, _)| k == "StartDate")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let st = state.lock().expect("state");
        let list: Vec<Value> = st
            .alerts
            .iter()
            .rev()
            .filter(|a| {
                a["date_created"]
                    .as_str()
                    .is_some_and(|d| d >= start.as_str())
            })
            .cloned()
            .collect();
        drop(st);
        let b = json!({"alerts": list, "meta": {"page": 0, "page_size": 200, "first_page_url": format!("{base}/v1/Alerts?PageSize=200&Page=0"), "previous_page_url": null, "next_page_url": null, "url": format!("{base}/v1/Alerts?PageSize=200&Page=0"), "key": "alerts"}});
        ok_json(&mut s, &b);
        return;
    }
    if !path.starts_with(&account) || !authorized {
        error(&mut s, 401, 20003, "Authenticate", "");
        return;
    }
    let fault = state.lock().expect("state").faults.pop_front();
    match fault {
        Some(Fault::ServerError) => {
            error(&mut s, 500, 20500, "Internal Server Error", "");
            return;
        }
        Some(Fault::RateLimited(secs)) => {
            error(
                &mut s,
                429,
                20429,
                "Too Many Requests",
                &format!("Retry-After: {secs}\r\n"),
            );
            return;
        }
        Some(Fault::Slow(d)) => std::thread::sleep(d),
        None => {}
    }
    let rest = &path[account.len()..];
    let get = |k: &str| {
        body.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match (method.as_str(), rest) {
        ("GET", ".json") => {
            let b = json!({"sid": sid, "friendly_name": "Stand-in household", "status": "active", "type": "Full", "uri": format!("{account}.json")});
            ok_json(&mut s, &b);
        }
        ("GET", "/IncomingPhoneNumbers.json") => {
            // The number keeps the URLs of its last update, as at Twilio.
            let last = |field: &str| -> String {
                let st = state.lock().expect("state");
                st.number_updates
                    .iter()
                    .rev()
                    .find(|(pn, _)| pn == NUMBER_SID)
                    .and_then(|(_, form)| form.iter().find(|(k, _)| k == field))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let b = json!({"incoming_phone_numbers": [{
                "sid": NUMBER_SID, "account_sid": sid, "phone_number": "+15551230009",
                "friendly_name": "(555) 123-0009", "voice_url": last("VoiceUrl"),
                "sms_url": last("SmsUrl"), "status_callback": last("StatusCallback"),
                "capabilities": {"voice": true, "sms": true, "mms": true}
            }], "page": 0, "page_size": 1000});
            ok_json(&mut s, &b);
        }
        ("POST", r) if r.starts_with("/IncomingPhoneNumbers/PN") => {
            let pn = r
                .trim_start_matches("/IncomingPhoneNumbers/")
                .trim_end_matches(".json")
                .to_string();
            state
                .lock()
                .expect("state")
                .number_updates
                .push((pn.clone(), body.clone()));
            let b = json!({"sid": pn, "phone_number": "+15551230009", "friendly_name": "(555) 123-0009",
                "voice_url": get("VoiceUrl"), "sms_url": get("SmsUrl"), "status_callback": get("StatusCallback")});
            ok_json(&mut s, &b);
        }
        ("POST", "/Messages.json") => {
            let mut st = state.lock().expect("state");
            let msid = format!("SM{:032x}", st.messages.len() + 1);
            let m = Created {
                sid: msid.clone(),
                from: get("From"),
                to: get("To"),
                body: get("Body"),
                status_callback: Some(get("StatusCallback")).filter(|v| !v.is_empty()),
                media_urls: body
                    .iter()
                    .filter(|(k, _)| k == "MediaUrl")
                    .map(|(_, v)| v.clone())
                    .collect(),
            };
            // Twilio's magic test number for an invalid recipient.
            if m.to.is_empty() || !m.to.starts_with('+') || m.to == INVALID_NUMBER {
                drop(st);
                error(&mut s, 400, 21211, "Invalid 'To' Phone Number", "");
                return;
            }
            st.messages.push(m.clone());
            drop(st);
            let b = message_json(&msid, &m, "queued", &rfc2822_now());
            respond(
                &mut s,
                "201 Created",
                "application/json",
                "",
                b.to_string().as_bytes(),
            );
        }
        ("GET", "/Messages.json") => {
            let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let (from, to) = (q("From"), q("To"));
            let st = state.lock().expect("state");
            let date = rfc2822_now();
            let list: Vec<Value> = st
                .messages
                .iter()
                .rev()
                .filter(|m| {
                    from.as_ref().is_none_or(|f| *f == m.from)
                        && to.as_ref().is_none_or(|t| *t == m.to)
                })
                .map(|m| message_json(&m.sid, m, "sent", &date))
                .collect();
            let b = json!({"messages": list, "page": 0, "page_size": 50});
            drop(st);
            ok_json(&mut s, &b);
        }
        ("DELETE", r) if r.starts_with("/Messages/MM") && r.contains("/Media/ME") => {
            let me = r
                .rsplit('/')
                .next()
                .unwrap_or("")
                .trim_end_matches(".json")
                .to_string();
            state.lock().expect("state").deleted.push(me);
            respond(&mut s, "204 No Content", "application/json", "", b"");
        }
        ("GET", r) if r.starts_with("/Messages/") && r.contains("/Media/") => {
            let me = r.rsplit('/').next().unwrap_or("");
            respond(
                &mut s,
                "307 Temporary Redirect",
                "text/plain",
                &format!("Location: {base}/media-store/{me}\r\n"),
                b"",
            );
        }
        ("GET", r) if r.starts_with("/Messages/") => {
            let msid = r.trim_start_matches("/Messages/").trim_end_matches(".json");
            let st = state.lock().expect("state");
            match st.messages.iter().find(|m| m.sid == msid).cloned() {
                Some(m) => {
                    drop(st);
                    let b = message_json(&m.sid, &m, "delivered", &rfc2822_now());
                    ok_json(&mut s, &b);
                }
                None => {
                    drop(st);
                    not_found(&mut s);
                }
            }
        }
        ("GET", r) if r == format!("/Recordings/{RECORDING_SID}.mp3") => {
            if state
                .lock()
                .expect("state")
                .deleted
                .iter()
                .any(|d| d == RECORDING_SID)
            {
                not_found(&mut s);
            } else {
                respond(&mut s, "200 OK", "audio/mpeg", "", RECORDING_AUDIO);
            }
        }
        ("DELETE", r) if r.starts_with("/Recordings/RE") => {
            let re = r
                .trim_start_matches("/Recordings/")
                .trim_end_matches(".json")
                .to_string();
            let mut st = state.lock().expect("state");
            if st.deleted.contains(&re) {
                drop(st);
                not_found(&mut s);
            } else {
                st.deleted.push(re);
                drop(st);
                respond(&mut s, "204 No Content", "application/json", "", b"");
            }
        }
        ("GET", "/SIP/Domains.json") => {
            let st = state.lock().expect("state");
            let list: Vec<Value> = st.sip_domains.iter().map(|(d, _)| d.clone()).collect();
            drop(st);
            let b = json!({"domains": list, "page": 0, "page_size": 1000});
            ok_json(&mut s, &b);
        }
        ("GET", r)
            if r.starts_with("/SIP/Domains/SD")
                && r.ends_with("/Auth/Calls/CredentialListMappings.json") =>
        {
            let sd = r
                .trim_start_matches("/SIP/Domains/")
                .split('/')
                .next()
                .unwrap_or("");
            let st = state.lock().expect("state");
            let found = st.sip_domains.iter().position(|(d, _)| d["sid"] == sd);
            let contents: Vec<Value> = match found {
                Some(n) if st.sip_domains[n].1.is_some() => vec![
                    json!({"sid": credential_list_sid(n), "account_sid": SID, "friendly_name": "Homeline"}),
                ],
                _ => vec![],
            };
            drop(st);
            if found.is_none() {
                not_found(&mut s);
                return;
            }
            let b = json!({"contents": contents, "page": 0, "page_size": 50});
            ok_json(&mut s, &b);
        }
        ("GET", r)
            if r.starts_with("/SIP/CredentialLists/CL") && r.ends_with("/Credentials.json") =>
        {
            let cl = r
                .trim_start_matches("/SIP/CredentialLists/")
                .split('/')
                .next()
                .unwrap_or("");
            let st = state.lock().expect("state");
            let users = (0..st.sip_domains.len())
                .find(|n| credential_list_sid(*n) == cl)
                .and_then(|n| st.sip_domains[n].1.clone());
            drop(st);
            match users {
                Some(users) => {
                    let list: Vec<Value> = users
                        .iter()
                        .enumerate()
                        .map(|(i, u)| json!({"sid": format!("CR{:032x}", i + 1), "username": u}))
                        .collect();
                    let b = json!({"credentials": list, "page": 0, "page_size": 50});
                    ok_json(&mut s, &b);
                }
                None => error(
                    &mut s,
                    404,
                    20404,
                    "The requested resource was not found",
                    "",
                ),
            }
        }
        (m, r) if r.starts_with("/Calls/CA") && (m == "GET" || m == "POST") => {
            let ca = r.trim_start_matches("/Calls/").trim_end_matches(".json");
            let status = if get("Status").is_empty() {
                "in-progress".to_string()
            } else {
                get("Status")
            };
            let b =
                json!({"sid": ca, "status": status, "from": "+15559870000", "to": "+15551230001"});
            ok_json(&mut s, &b);
        }
        _ => error(
            &mut s,
            404,
            20404,
            "The requested resource was not found",
            "",
        ),
    }
}

/// A base URL where nothing listens (a port bound, then released).
pub fn unreachable_base() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
