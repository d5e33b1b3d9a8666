//! A small blocking client for Twilio's REST API (2010-04-01), over ureq with
//! rustls/ring. Async callers run it with `spawn_blocking`.
//!
//! Why blocking ureq rather than an async client: Twilio calls are rare (a
//! credentials check, an SMS, a recording download), a blocking thread per
//! call costs nothing at that rate, and ureq brings no second HTTP stack or
//! runtime into the binary.
//!
//! Today it can check credentials; the Twilio issue adds messages, calls and
//! recordings on the same `get_json`-style plumbing.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::constants::{TWILIO_CONNECT_TIMEOUT, TWILIO_REQUEST_TIMEOUT};

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
    /// No answer: DNS, connection, TLS or timeout.
    #[error("Twilio could not be reached: {0}")]
    Unreachable(String),
    /// An answer that is not what Twilio sends.
    #[error("Twilio sent an answer that could not be read: {0}")]
    BadResponse(String),
    /// Not an Account SID (`AC` and 32 hex digits); nothing was sent.
    #[error("not a Twilio Account SID (AC followed by 32 hex digits)")]
    InvalidAccountSid,
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

/// Twilio's error body: `{"code":20003,"message":"Authenticate","more_info":…,"status":401}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// Whether `sid` looks like an Account SID (`AC` + 32 hex digits).
pub fn is_account_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Credentials and where to send them.
pub struct Client {
    base_url: String,
    account_sid: String,
    auth_token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    /// The auth token is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// A client for `account_sid` at `base_url` (e.g. `https://api.twilio.com`).
    pub fn new(base_url: &str, account_sid: &str, auth_token: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(TWILIO_CONNECT_TIMEOUT))
            .timeout_global(Some(TWILIO_REQUEST_TIMEOUT))
            // Error statuses carry Twilio's JSON; we read it ourselves.
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("homeline/{}", crate::VERSION))
            .build()
            .into();
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            account_sid: account_sid.to_string(),
            auth_token: auth_token.to_string(),
            agent,
        }
    }

    /// The account these credentials belong to.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Proves the credentials work: `GET /2010-04-01/Accounts/{Sid}.json`.
    pub fn check_credentials(&self) -> Result<AccountInfo, TwilioError> {
        if !is_account_sid(&self.account_sid) {
            return Err(TwilioError::InvalidAccountSid);
        }
        let path = format!("/2010-04-01/Accounts/{}.json", self.account_sid);
        let info: AccountInfo = self.get_json(&path)?;
        if info.sid != self.account_sid {
            return Err(TwilioError::BadResponse(format!(
                "asked for account {} but Twilio described {}",
                self.account_sid, info.sid
            )));
        }
        Ok(info)
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, TwilioError> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.account_sid, self.auth_token));
        let url = format!("{}{path}", self.base_url);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Basic {credentials}"))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| TwilioError::Unreachable(describe(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) | ureq::Error::Io(_) => {
                    TwilioError::Unreachable(describe(&e))
                }
                other => TwilioError::BadResponse(describe(&other)),
            })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&body)
                .map_err(|e| TwilioError::BadResponse(format!("invalid JSON: {e}")));
        }
        let err: Option<ErrorBody> = serde_json::from_str(&body).ok();
        let code = err.as_ref().and_then(|e| e.code);
        let message = err
            .and_then(|e| e.message)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status {
            401 | 403 | 404 => TwilioError::Unauthorized { code, message },
            _ => TwilioError::Http {
                status,
                code,
                message,
            },
        })
    }
}

/// A transport error in words, without anything secret (ureq's errors name
/// the host at most; the credentials travel in a header it does not print).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => {
            format!("no answer within {} s", TWILIO_REQUEST_TIMEOUT.as_secs())
        }
        ureq::Error::HostNotFound => "the host name could not be resolved".into(),
        ureq::Error::ConnectionFailed => "the connection was refused or failed".into(),
        other => other.to_string(),
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
}
