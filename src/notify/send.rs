//! What every sender answers: sent (with the server's words), or why not,
//! classified so the admin's test button can say what went wrong and the
//! outbox knows whether to retry.

use std::time::Duration;

use serde::Serialize;

use crate::outbox::Outcome;

/// Longest a single delivery may take (connect, TLS, upload, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a delivery failed, in the words of `POST /api/notifications/test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The server's name could not be resolved.
    Dns,
    /// The connection was refused or broke.
    Connect,
    /// TLS failed (certificate, handshake, no STARTTLS).
    Tls,
    /// The user name, password or token was refused.
    Auth,
    /// The server refused the sender address.
    SenderRefused,
    /// The server refused the recipient (or it is inactive).
    RecipientRefused,
    /// No answer in time.
    Timeout,
    /// The channel is not set up.
    NotConfigured,
    /// Anything else.
    Other,
}

impl Reason {
    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Dns => "dns",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Auth => "auth",
            Reason::SenderRefused => "sender_refused",
            Reason::RecipientRefused => "recipient_refused",
            Reason::Timeout => "timeout",
            Reason::NotConfigured => "not_configured",
            Reason::Other => "other",
        }
    }
}

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Its class.
    pub reason: Reason,
    /// For people (never contains a secret).
    pub message: String,
    /// Retrying cannot help (recipient refused for good, webhook gone).
    pub permanent: bool,
    /// The other side's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// A failure worth retrying.
    pub fn new(reason: Reason, message: impl Into<String>) -> SendError {
        SendError {
            reason,
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(reason: Reason, message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            ..SendError::new(reason, message)
        }
    }

    /// `reason: message`, as stored in `notifications.error`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.reason.as_str(), self.message)
    }

    /// The outbox's view of this failure.
    pub fn outcome(&self) -> Outcome {
        if self.permanent {
            Outcome::Failed(self.describe())
        } else {
            Outcome::Retry {
                error: self.describe(),
                retry_after: self.retry_after,
                unknown: false,
            }
        }
    }
}

/// The HTTP agent of the HTTP senders: bounded time, statuses read by hand,
/// no redirects (a webhook must not bounce us to another host).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(SEND_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("homeline/{}", crate::VERSION))
        .build()
        .into()
}

/// Classifies a transport failure of an HTTP request.
pub fn transport_error(e: &ureq::Error) -> SendError {
    match e {
        ureq::Error::Timeout(_) => {
            SendError::new(Reason::Timeout, "no answer within the time limit")
        }
        ureq::Error::HostNotFound => {
            SendError::new(Reason::Dns, "the host name could not be resolved")
        }
        ureq::Error::ConnectionFailed => {
            SendError::new(Reason::Connect, "the connection was refused or failed")
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            SendError::new(Reason::Connect, "the connection was refused")
        }
        ureq::Error::Rustls(e) => SendError::new(Reason::Tls, format!("TLS failed: {e}")),
        other => SendError::new(Reason::Other, format!("the request failed: {other}")),
    }
}

/// An HTTP answer: status, `Retry-After` and (at most 64 KiB of) body.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Seconds, if given.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends `req` with `body` (JSON) and reads the answer.
pub fn post_json(
    req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: &[u8],
) -> Result<Answer, SendError> {
    let mut resp = req
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .send(body)
        .map_err(|e| transport_error(&e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// An HTTP failure status as a retryable error (429 and 5xx honour `Retry-After`).
pub fn status_error(a: &Answer, what: &str) -> SendError {
    let text = String::from_utf8_lossy(&a.body);
    let snippet: String = text.chars().take(200).collect();
    let reason = match a.status {
        401 | 403 => Reason::Auth,
        _ => Reason::Other,
    };
    SendError {
        retry_after: a.retry_after,
        ..SendError::new(
            reason,
            format!("{what} answered HTTP {}: {snippet}", a.status),
        )
    }
}
