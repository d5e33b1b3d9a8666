//! A small blocking client for Twilio's REST API (2010-04-01), over ureq with
//! rustls/ring. Async callers run it with `spawn_blocking`, never on a
//! reactor thread.
//!
//! Why blocking ureq rather than an async client: Twilio calls are rare (a
//! credentials check, an SMS, a recording download), a blocking thread per
//! call costs nothing at that rate, and ureq brings no second HTTP stack or
//! runtime into the binary.
//!
//! What it covers is what Homeline uses: Accounts (credentials check),
//! IncomingPhoneNumbers (list, point at the appliance), Messages (create with
//! `StatusCallback`, fetch, list for reconciliation), Recordings and Media
//! (download, delete), Calls (fetch, update). Twilio's error JSON becomes a
//! [`TwilioError`] that says whether trying again can help.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::constants::{TWILIO_CONNECT_TIMEOUT, TWILIO_DOWNLOAD_TIMEOUT, TWILIO_REQUEST_TIMEOUT};

/// Largest answer body read from Twilio (account and message JSON is a few KiB).
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// What can go wrong talking to Twilio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// The Account SID or auth token is wrong (HTTP 401, or 404 for an
    /// account the credentials do not reach).
    #[error("Twilio rejected the credentials: {message} (error {code})", code = .code.map_or("-".to_string(), |c| c.to_string()))]
    Unauthorized {
        /// Twilio's error code (20003 "Authenticate"), when given.
        code: Option<u32>,
        /// Twilio's message.
        message: String,
    },
    /// The resource does not exist (HTTP 404).
    #[error("Twilio has no such resource: {message}")]
    NotFound {
        /// Twilio's error code (20404), when given.
        code: Option<u32>,
        /// Twilio's message.
        message: String,
    },
    /// Too many requests (HTTP 429); try again after `retry_after` seconds.
    #[error("Twilio is rate limiting us (retry after {retry_after:?} s)")]
    RateLimited {
        /// `Retry-After`, in seconds, when sent.
        retry_after: Option<u64>,
    },
    /// Twilio answered with another error status.
    #[error("Twilio answered HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// Twilio's error code, when given.
        code: Option<u32>,
        /// Twilio's message, or the status text.
        message: String,
    },
    /// No connection: DNS, refused, TLS. The request never reached Twilio.
    #[error("Twilio could not be reached: {0}")]
    Unreachable(String),
    /// The request may have reached Twilio, but no answer came in time: its
    /// outcome is unknown.
    #[error("Twilio did not answer in time: {0}")]
    Timeout(String),
    /// An answer that is not what Twilio sends.
    #[error("Twilio sent an answer that could not be read: {0}")]
    BadResponse(String),
    /// Not an Account SID (`AC` and 32 hex digits); nothing was sent.
    #[error("not a Twilio Account SID (AC followed by 32 hex digits)")]
    InvalidAccountSid,
    /// Refused before sending: a download URL outside Twilio's API (our
    /// credentials go nowhere else), or a body over the size limit.
    #[error("{0}")]
    Refused(String),
}

impl TwilioError {
    /// Whether the same request may succeed later (outages, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            TwilioError::RateLimited { .. }
            | TwilioError::Unreachable(_)
            | TwilioError::Timeout(_)
            | TwilioError::BadResponse(_) => true,
            TwilioError::Http { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }

    /// Whether Twilio may have carried the request out despite the error.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, TwilioError::Timeout(_) | TwilioError::BadResponse(_))
    }

    /// `Retry-After`, for 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TwilioError::RateLimited {
                retry_after: Some(s),
            } => Some(Duration::from_secs(*s)),
            _ => None,
        }
    }
}

/// The account, as `GET /Accounts/{Sid}.json` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The Account SID.
    pub sid: String,
    /// The account's name in the Twilio console.
    #[serde(default)]
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    #[serde(default)]
    pub status: String,
}

/// A number of the account (IncomingPhoneNumber).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingNumber {
    /// `PN…`.
    pub sid: String,
    /// E.164.
    pub phone_number: String,
    /// Its name in the console.
    #[serde(default)]
    pub friendly_name: String,
    /// Where incoming calls are sent.
    #[serde(default)]
    pub voice_url: Option<String>,
    /// Where incoming messages are sent.
    #[serde(default)]
    pub sms_url: Option<String>,
    /// Call status callback.
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// A message (the fields Homeline reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// `SM…` or `MM…`.
    pub sid: String,
    /// `queued`, `sending`, `sent`, `delivered`, `undelivered`, `failed`…
    #[serde(default)]
    pub status: String,
    /// Sender.
    #[serde(default)]
    pub from: Option<String>,
    /// Recipient.
    #[serde(default)]
    pub to: Option<String>,
    /// Text.
    #[serde(default)]
    pub body: Option<String>,
    /// RFC 2822, e.g. `Sat, 21 Nov 2026 10:00:00 +0000`.
    #[serde(default)]
    pub date_created: Option<String>,
    /// Twilio's error code for failed messages.
    #[serde(default)]
    pub error_code: Option<i64>,
}

/// A call (the fields Homeline reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    /// `CA…`.
    pub sid: String,
    /// `queued`, `ringing`, `in-progress`, `completed`…
    #[serde(default)]
    pub status: String,
    /// Caller.
    #[serde(default)]
    pub from: Option<String>,
    /// Callee.
    #[serde(default)]
    pub to: Option<String>,
}

/// A message to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage<'a> {
    /// One of our numbers.
    pub from: &'a str,
    /// E.164 recipient.
    pub to: &'a str,
    /// Text.
    pub body: &'a str,
    /// Public URLs of media to attach (MMS).
    pub media_urls: &'a [String],
    /// Where Twilio posts status changes.
    pub status_callback: Option<&'a str>,
}

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `Content-Type`, without parameters.
    pub content_type: String,
}

/// Twilio's error body: `{"code":20003,"message":"Authenticate","more_info":…,"status":401}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// The Account SID's syntax is part of the configuration's validation
/// (`sysconfig`, below this client); re-exported for the client's callers.
pub use crate::sysconfig::is_account_sid;

/// Whether `sid` is a SID of the given two-letter prefix (`PN`, `SM`, `RE`…):
/// safe to put into a URL path.
pub fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34
        && sid.starts_with(prefix)
        && sid[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Percent-encodes a query or form component (everything but unreserved).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses Twilio's RFC 2822 dates (`Sat, 21 Nov 2026 10:00:00 +0000`).
pub fn parse_rfc2822(s: &str) -> Option<Timestamp> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, zone] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? + 1;
    let day: u32 = day.parse().ok()?;
    let iso = format!("{year}-{month:02}-{day:02}T{time}Z");
    let utc = Timestamp::parse_rfc3339(&iso)?;
    let sign: i64 = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hh: i64 = zone.get(1..3)?.parse().ok()?;
    let mm: i64 = zone.get(3..5)?.parse().ok()?;
    Some(Timestamp::from_unix_millis(
        utc.unix_millis() - sign * (hh * 3600 + mm * 60) * 1000,
    ))
}

/// Credentials and where to send them. Cloning shares the connection pools.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    account_sid: String,
    username: String,
    password: String,
    agent: ureq::Agent,
    download_agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    /// The secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(TWILIO_CONNECT_TIMEOUT.min(timeout)))
        .timeout_global(Some(timeout))
        // Error statuses carry Twilio's JSON; we read it ourselves.
        .http_status_as_error(false)
        // Redirects (media to its storage) are followed by hand, without
        // our credentials.
        .max_redirects(0)
        .user_agent(format!("homeline/{}", crate::VERSION))
        .build()
        .into()
}

/// A raw answer.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    location: Option<String>,
    content_type: String,
    body: Vec<u8>,
}

impl Client {
    /// A client for `account_sid` at `base_url` (e.g. `https://api.twilio.com`),
    /// signing in with the auth token.
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str) -> Client {
        Client::with_login(base_url, account_sid, account_sid, auth_token)
    }

    /// A client signing in as `username` (the Account SID, or an API key SID
    /// `SK…`) with `password` (the auth token, or the key's secret).
    pub fn with_login(base_url: &str, account_sid: &str, username: &str, password: &str) -> Client {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            agent: agent(TWILIO_REQUEST_TIMEOUT),
            download_agent: agent(TWILIO_DOWNLOAD_TIMEOUT),
        }
    }

    /// The client for stored credentials.
    pub fn from_credentials(base_url: &str, c: &crate::sysconfig::TwilioCredentials) -> Client {
        Client::with_login(base_url, &c.account_sid, &c.username, &c.password)
    }

    /// Shortens both timeouts (tests of slow answers).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.agent = agent(timeout);
        self.download_agent = agent(timeout);
        self
    }

    /// The account these credentials belong to.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    fn account_path(&self, rest: &str) -> String {
        format!("/2010-04-01/Accounts/{}{rest}", self.account_sid)
    }

    /// Proves the credentials work: `GET /2010-04-01/Accounts/{Sid}.json`.
    pub fn check_credentials(&self) -> Result<AccountInfo, TwilioError> {
        if !is_account_sid(&self.account_sid) {
            return Err(TwilioError::InvalidAccountSid);
        }
        let info: AccountInfo = match self.json("GET", &self.account_path(".json"), None) {
            Err(TwilioError::NotFound { code, message }) => {
                return Err(TwilioError::Unauthorized { code, message })
            }
            other => other?,
        };
        if info.sid != self.account_sid {
            return Err(TwilioError::BadResponse(format!(
                "asked for account {} but Twilio described {}",
                self.account_sid, info.sid
            )));
        }
        Ok(info)
    }

    /// The account's phone numbers.
    pub fn list_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            incoming_phone_numbers: Vec<IncomingNumber>,
        }
        let p: Page = self.json(
            "GET",
            &self.account_path("/IncomingPhoneNumbers.json?PageSize=1000"),
            None,
        )?;
        Ok(p.incoming_phone_numbers)
    }

    /// Points number `sid` at the appliance: voice and SMS webhooks (POST)
    /// and the call status callback.
    pub fn update_number(
        &self,
        sid: &str,
        voice_url: &str,
        sms_url: &str,
        status_callback: &str,
    ) -> Result<IncomingNumber, TwilioError> {
        if !is_sid(sid, "PN") {
            return Err(TwilioError::Refused(format!("not a number SID: {sid:?}")));
        }
        let form = [
            ("VoiceUrl", voice_url),
            ("VoiceMethod", "POST"),
            ("SmsUrl", sms_url),
            ("SmsMethod", "POST"),
            ("StatusCallback", status_callback),
            ("StatusCallbackMethod", "POST"),
        ];
        self.json(
            "POST",
            &self.account_path(&format!("/IncomingPhoneNumbers/{sid}.json")),
            Some(&form),
        )
    }

    /// Sends an SMS/MMS.
    pub fn create_message(&self, m: &OutgoingMessage<'_>) -> Result<MessageInfo, TwilioError> {
        let mut form: Vec<(&str, &str)> = vec![("From", m.from), ("To", m.to)];
        if !m.body.is_empty() {
            form.push(("Body", m.body));
        }
        for url in m.media_urls {
            form.push(("MediaUrl", url));
        }
        if let Some(cb) = m.status_callback {
            form.push(("StatusCallback", cb));
        }
        self.json("POST", &self.account_path("/Messages.json"), Some(&form))
    }

    /// One message by SID.
    pub fn fetch_message(&self, sid: &str) -> Result<MessageInfo, TwilioError> {
        if !is_sid(sid, "SM") && !is_sid(sid, "MM") {
            return Err(TwilioError::Refused(format!("not a message SID: {sid:?}")));
        }
        self.json(
            "GET",
            &self.account_path(&format!("/Messages/{sid}.json")),
            None,
        )
    }

    /// The newest messages from `from` to `to` (reconciliation after a
    /// crash: was our message created?).
    pub fn list_messages(&self, from: &str, to: &str) -> Result<Vec<MessageInfo>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            messages: Vec<MessageInfo>,
        }
        let p: Page = self.json(
            "GET",
            &self.account_path(&format!(
                "/Messages.json?From={}&To={}&PageSize=50",
                encode_component(from),
                encode_component(to)
            )),
            None,
        )?;
        Ok(p.messages)
    }

    /// Deletes a recording (404 is reported as `NotFound`: already gone).
    pub fn delete_recording(&self, sid: &str) -> Result<(), TwilioError> {
        if !is_sid(sid, "RE") {
            return Err(TwilioError::Refused(format!(
                "not a recording SID: {sid:?}"
            )));
        }
        self.delete(&format!(
            "{}{}",
            self.base_url,
            self.account_path(&format!("/Recordings/{sid}.json"))
        ))
    }

    /// Deletes an MMS media item given its `MediaUrl` (the Media resource
    /// under our account; 404 is reported as `NotFound`: already gone).
    pub fn delete_media(&self, url: &str) -> Result<(), TwilioError> {
        let prefix = format!(
            "{}/2010-04-01/Accounts/{}/Messages/",
            self.base_url, self.account_sid
        );
        let ok = url.strip_prefix(&prefix).is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('/').collect();
            matches!(parts.as_slice(), [mm, "Media", me] if is_sid(mm, "MM") && is_sid(me, "ME"))
        });
        if !ok {
            return Err(TwilioError::Refused(format!(
                "not a media URL of this account: {url}"
            )));
        }
        self.delete(&format!("{url}.json"))
    }

    /// `DELETE url` (a resource of our account): 2xx is done.
    fn delete(&self, url: &str) -> Result<(), TwilioError> {
        let a = self.send(&self.agent, "DELETE", url, None, true, MAX_RESPONSE_BYTES)?;
        if (200..300).contains(&a.status) {
            Ok(())
        } else {
            Err(error_of(&a))
        }
    }

    /// One call.
    pub fn fetch_call(&self, sid: &str) -> Result<CallInfo, TwilioError> {
        if !is_sid(sid, "CA") {
            return Err(TwilioError::Refused(format!("not a call SID: {sid:?}")));
        }
        self.json(
            "GET",
            &self.account_path(&format!("/Calls/{sid}.json")),
            None,
        )
    }

    /// Changes a live call: `Status=completed` hangs up, `Url=…` redirects it
    /// to new TwiML.
    pub fn update_call(&self, sid: &str, params: &[(&str, &str)]) -> Result<CallInfo, TwilioError> {
        if !is_sid(sid, "CA") {
            return Err(TwilioError::Refused(format!("not a call SID: {sid:?}")));
        }
        self.json(
            "POST",
            &self.account_path(&format!("/Calls/{sid}.json")),
            Some(params),
        )
    }

    /// Downloads a recording or media file from Twilio's API (the only host
    /// our credentials are sent to), following one redirect without them
    /// (media lives in Twilio's storage), at most `max_bytes`.
    pub fn download(&self, url: &str, max_bytes: u64) -> Result<Download, TwilioError> {
        if !url.starts_with(&format!("{}/", self.base_url)) {
            return Err(TwilioError::Refused(format!(
                "not a Twilio API URL, credentials not sent: {url}"
            )));
        }
        let mut a = self.send(&self.download_agent, "GET", url, None, true, max_bytes)?;
        if (300..400).contains(&a.status) {
            let Some(location) = a.location.clone() else {
                return Err(TwilioError::BadResponse(
                    "a redirect without Location".into(),
                ));
            };
            a = self.send(
                &self.download_agent,
                "GET",
                &location,
                None,
                false,
                max_bytes,
            )?;
        }
        if !(200..300).contains(&a.status) {
            return Err(error_of(&a));
        }
        Ok(Download {
            bytes: a.body,
            content_type: a.content_type,
        })
    }

    /// The API base these credentials are sent to (`https://api.twilio.com`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where Twilio's Monitor API (`/v1/Alerts`) lives for this API base:
    /// `https://monitor.twilio.com` beside `https://api.twilio.com` (and
    /// `monitor.<rest>` beside any `api.<rest>`), otherwise the same base (a
    /// local stand-in serves both). Credentials thus only go to Twilio's hosts.
    pub fn monitor_base(&self) -> String {
        for scheme in ["https://", "http://"] {
            if let Some(rest) = self.base_url.strip_prefix(scheme) {
                if let Some(host) = rest.strip_prefix("api.") {
                    return format!("{scheme}monitor.{host}");
                }
            }
        }
        self.base_url.clone()
    }

    /// `GET base + path` with our credentials, JSON answer; `base` is this
    /// client's API base or its [`Client::monitor_base`].
    pub(super) fn get_json_from<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
    ) -> Result<T, TwilioError> {
        if base != self.base_url && base != self.monitor_base() {
            return Err(TwilioError::Refused(format!(
                "not a Twilio API base, credentials not sent: {base}"
            )));
        }
        let url = format!("{base}{path}");
        let a = self.send(&self.agent, "GET", &url, None, true, MAX_RESPONSE_BYTES)?;
        if (200..300).contains(&a.status) {
            return serde_json::from_slice(&a.body)
                .map_err(|e| TwilioError::BadResponse(format!("invalid JSON: {e}")));
        }
        Err(error_of(&a))
    }

    /// The path of `rest` under this account (`/2010-04-01/Accounts/{Sid}{rest}`).
    pub(super) fn account_resource(&self, rest: &str) -> String {
        self.account_path(rest)
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Result<T, TwilioError> {
        let url = format!("{}{path}", self.base_url);
        let a = self.send(&self.agent, method, &url, form, true, MAX_RESPONSE_BYTES)?;
        if (200..300).contains(&a.status) {
            return serde_json::from_slice(&a.body)
                .map_err(|e| TwilioError::BadResponse(format!("invalid JSON: {e}")));
        }
        Err(error_of(&a))
    }

    fn send(
        &self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        form: Option<&[(&str, &str)]>,
        authenticate: bool,
        max_bytes: u64,
    ) -> Result<Answer, TwilioError> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        let auth = format!("Basic {credentials}");
        let result = match (method, form) {
            ("POST", Some(form)) => {
                let mut r = agent.post(url).header("Accept", "application/json");
                if authenticate {
                    r = r.header("Authorization", &auth);
                }
                r.send_form(form.iter().copied())
            }
            ("DELETE", _) => {
                let mut r = agent.delete(url).header("Accept", "application/json");
                if authenticate {
                    r = r.header("Authorization", &auth);
                }
                r.call()
            }
            _ => {
                let mut r = agent.get(url).header("Accept", "application/json");
                if authenticate {
                    r = r.header("Authorization", &auth);
                }
                r.call()
            }
        };
        let mut resp = result.map_err(|e| transport_error(&e))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = resp.status().as_u16();
        let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
        let location = header("location");
        let content_type = header("content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let body = resp
            .body_mut()
            .with_config()
            .limit(max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    TwilioError::Refused(format!("the answer is larger than {max_bytes} bytes"))
                }
                other => transport_error(&other),
            })?;
        Ok(Answer {
            status,
            retry_after,
            location,
            content_type,
            body,
        })
    }
}

fn error_of(a: &Answer) -> TwilioError {
    let err: Option<ErrorBody> = serde_json::from_slice(&a.body).ok();
    let code = err.as_ref().and_then(|e| e.code);
    let message = err
        .and_then(|e| e.message)
        .unwrap_or_else(|| format!("HTTP {}", a.status));
    match a.status {
        401 | 403 => TwilioError::Unauthorized { code, message },
        404 => TwilioError::NotFound { code, message },
        429 => TwilioError::RateLimited {
            retry_after: a.retry_after,
        },
        status => TwilioError::Http {
            status,
            code,
            message,
        },
    }
}

/// A transport error in words, without anything secret (ureq's errors name
/// the host at most; the credentials travel in a header it does not print).
/// Connection failures mean the request never left; anything later leaves
/// its outcome unknown.
fn transport_error(e: &ureq::Error) -> TwilioError {
    match e {
        ureq::Error::Timeout(_) => TwilioError::Timeout("no answer within the time limit".into()),
        ureq::Error::HostNotFound => {
            TwilioError::Unreachable("the host name could not be resolved".into())
        }
        ureq::Error::ConnectionFailed => {
            TwilioError::Unreachable("the connection was refused or failed".into())
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            TwilioError::Unreachable(io.to_string())
        }
        other => TwilioError::Timeout(format!("the exchange broke off: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    /// Serves one request with `status` and `body`; returns the base URL and
    /// a handle yielding the request's head.
    fn one_shot(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).map(|n| n == 1).unwrap_or(false) {
                head.push(b[0]);
            }
            // Read the body before answering: closing with unread bytes in
            // the socket makes the kernel reset the connection, and the
            // client may see the reset before the answer.
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut rest = vec![0u8; length];
            let _ = s.read_exact(&mut rest);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            String::from_utf8_lossy(&head).into_owned()
        });
        (base, handle)
    }

    #[test]
    fn valid_credentials_describe_the_account() {
        let (base, req) = one_shot(
            200,
            r#"{"sid":"AC0123456789abcdef0123456789abcdef","friendly_name":"Home","status":"active","type":"Full"}"#,
        );
        let info = Client::new(&base, SID, "tok3n")
            .check_credentials()
            .expect("valid");
        assert_eq!(
            (info.friendly_name.as_str(), info.status.as_str()),
            ("Home", "active")
        );
        let head = req.join().expect("server");
        assert!(
            head.starts_with(&format!("GET /2010-04-01/Accounts/{SID}.json HTTP/1.1")),
            "{head}"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:tok3n"));
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "authorization: basic {}",
                basic.to_ascii_lowercase()
            )),
            "{head}"
        );
    }

    #[test]
    fn twilio_errors_are_typed() {
        let (base, _) = one_shot(
            401,
            r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#,
        );
        assert_eq!(
            Client::new(&base, SID, "wrong").check_credentials(),
            Err(TwilioError::Unauthorized {
                code: Some(20003),
                message: "Authenticate".into()
            })
        );
        let (base, _) = one_shot(503, "upstream trouble");
        assert_eq!(
            Client::new(&base, SID, "t").check_credentials(),
            Err(TwilioError::Http {
                status: 503,
                code: None,
                message: "HTTP 503".into()
            })
        );
        let (base, _) = one_shot(200, "<html>captive portal</html>");
        assert!(matches!(
            Client::new(&base, SID, "t").check_credentials(),
            Err(TwilioError::BadResponse(_))
        ));
        assert_eq!(
            Client::new("http://127.0.0.1:9", "AC/../x", "t").check_credentials(),
            Err(TwilioError::InvalidAccountSid)
        );
    }

    #[test]
    fn an_unreachable_api_is_reported_and_the_token_never_printed() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let client = Client::new(&format!("http://127.0.0.1:{port}"), SID, "s3cret-token");
        let err = client.check_credentials().unwrap_err();
        assert!(matches!(err, TwilioError::Unreachable(_)), "{err:?}");
        assert!(!format!("{err} {err:?} {client:?}").contains("s3cret-token"));
    }

    #[test]
    fn account_sid_shape() {
        assert!(is_account_sid(SID));
        assert!(!is_account_sid("AC123"));
        assert!(!is_account_sid("SK0123456789abcdef0123456789abcdef"));
        assert!(!is_account_sid("AC0123456789abcdef0123456789abcdeg"));
    }

    #[test]
    fn rate_limits_timeouts_and_error_classes() {
        let (base, _) = one_shot(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
        );
        // one_shot sends no Retry-After; the class is still right.
        let err = Client::new(&base, SID, "t")
            .fetch_message("SM0123456789abcdef0123456789abcdef")
            .unwrap_err();
        assert_eq!(err, TwilioError::RateLimited { retry_after: None });
        assert!(err.is_transient() && !err.outcome_unknown());

        // A server that accepts and never answers: the outcome is unknown.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(std::time::Duration::from_millis(800));
            drop(conn);
        });
        let started = std::time::Instant::now();
        let err = Client::new(&base, SID, "t")
            .with_timeout(std::time::Duration::from_millis(300))
            .create_message(&OutgoingMessage {
                from: "+15551230001",
                to: "+15559870000",
                body: "hi",
                media_urls: &[],
                status_callback: None,
            })
            .unwrap_err();
        assert!(matches!(err, TwilioError::Timeout(_)), "{err:?}");
        assert!(err.outcome_unknown() && err.is_transient());
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        let _ = hold.join();

        let (base, _) = one_shot(
            400,
            r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#,
        );
        let err = Client::new(&base, SID, "t")
            .create_message(&OutgoingMessage {
                from: "+15551230001",
                to: "+1",
                body: "hi",
                media_urls: &[],
                status_callback: None,
            })
            .unwrap_err();
        assert_eq!(
            err,
            TwilioError::Http {
                status: 400,
                code: Some(21211),
                message: "Invalid 'To' Phone Number".into()
            }
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn credentials_go_only_to_the_api_and_sids_are_checked() {
        let client = Client::new("http://127.0.0.1:9", SID, "t");
        assert!(matches!(
            client.download("http://evil.example/x", 10),
            Err(TwilioError::Refused(_))
        ));
        assert!(matches!(
            client.download("http://127.0.0.1:9.evil.example/x", 10),
            Err(TwilioError::Refused(_))
        ));
        assert!(matches!(
            client.delete_recording("../../x"),
            Err(TwilioError::Refused(_))
        ));
        assert!(matches!(
            client.fetch_call("CA/../x"),
            Err(TwilioError::Refused(_))
        ));
        assert!(matches!(
            client.delete_media(
                "http://127.0.0.1:9/2010-04-01/Accounts/ACother/Messages/MM1/Media/ME1"
            ),
            Err(TwilioError::Refused(_))
        ));
        assert!(matches!(
            client.delete_media(&format!("http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages/MM0123456789abcdef0123456789abcdef/Media/../../x")),
            Err(TwilioError::Refused(_))
        ));
        assert!(is_sid("RE0123456789abcdef0123456789abcdef", "RE"));
    }

    #[test]
    fn rfc2822_dates_and_form_encoding() {
        assert_eq!(
            parse_rfc2822("Sat, 21 Nov 2026 10:00:00 +0000").map(|t| t.to_string()),
            Some("2026-11-21T10:00:00Z".into())
        );
        assert_eq!(
            parse_rfc2822("Sat, 21 Nov 2026 12:30:00 +0230").map(|t| t.to_string()),
            Some("2026-11-21T10:00:00Z".into())
        );
        assert_eq!(parse_rfc2822("yesterday"), None);
        assert_eq!(encode_component("+1 555&x=y"), "%2B1%20555%26x%3Dy");
    }

    #[test]
    fn numbers_and_calls_use_twilios_paths() {
        let (base, req) = one_shot(
            200,
            r#"{"incoming_phone_numbers":[{"sid":"PN0123456789abcdef0123456789abcdef","phone_number":"+15551230009","friendly_name":"Home","voice_url":null,"sms_url":"","capabilities":{"voice":true}}],"page":0}"#,
        );
        let numbers = Client::new(&base, SID, "t").list_numbers().expect("list");
        assert_eq!(numbers[0].phone_number, "+15551230009");
        let head = req.join().expect("server");
        assert!(
            head.starts_with(&format!(
                "GET /2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json?PageSize=1000 "
            )),
            "{head}"
        );

        let (base, req) = one_shot(
            200,
            r#"{"sid":"PN0123456789abcdef0123456789abcdef","phone_number":"+15551230009"}"#,
        );
        Client::new(&base, SID, "t")
            .update_number(
                "PN0123456789abcdef0123456789abcdef",
                "https://h/v",
                "https://h/s",
                "https://h/c",
            )
            .expect("update");
        let head = req.join().expect("server");
        assert!(head.starts_with(&format!("POST /2010-04-01/Accounts/{SID}/IncomingPhoneNumbers/PN0123456789abcdef0123456789abcdef.json ")), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/x-www-form-urlencoded"),
            "{head}"
        );

        let (base, req) = one_shot(
            200,
            r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"completed"}"#,
        );
        let call = Client::new(&base, SID, "t")
            .update_call(
                "CA0123456789abcdef0123456789abcdef",
                &[("Status", "completed")],
            )
            .expect("update call");
        assert_eq!(call.status, "completed");
        assert!(req.join().expect("server").starts_with(&format!(
            "POST /2010-04-01/Accounts/{SID}/Calls/CA0123456789abcdef0123456789abcdef.json "
        )));
        let (base, req) = one_shot(
            200,
            r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"in-progress"}"#,
        );
        let call = Client::new(&base, SID, "t")
            .fetch_call("CA0123456789abcdef0123456789abcdef")
            .expect("fetch call");
        assert_eq!(call.status, "in-progress");
        assert!(req.join().expect("server").starts_with("GET "));

        let (base, _) = one_shot(
            404,
            r#"{"code":20404,"message":"The requested resource was not found","status":404}"#,
        );
        assert!(matches!(
            Client::new(&base, SID, "t").delete_recording("RE0123456789abcdef0123456789abcdef"),
            Err(TwilioError::NotFound {
                code: Some(20404),
                ..
            })
        ));
    }
}
