//! Sending e-mail over SMTP with lettre: STARTTLS (default, port 587),
//! implicit TLS (465) or none (a LAN relay, port 25), AUTH when a user name
//! is set, and the server's refusals classified for the test button.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::send::{Reason, SendError, SEND_TIMEOUT};

/// The SMTP settings (`smtp.*`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Server host.
    pub host: String,
    /// Port (default by security: 587, 465, 25).
    pub port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    pub security: String,
    /// AUTH user name, if any.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Option<String>,
    /// Extra CA certificates (PEM file path).
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, SendError> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            SendError::new(
                Reason::Tls,
                format!("the CA file {path} cannot be read: {e}"),
            )
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            SendError::new(Reason::Tls, format!("the CA file {path} is not PEM: {e}"))
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| SendError::new(Reason::Tls, format!("TLS settings: {e}")))
}

/// Sends `message`; `Ok` carries the server's answer (`250 2.0.0 queued`).
pub async fn send(cfg: &SmtpConfig, message: Message) -> Result<String, SendError> {
    let (tls, default_port) = match cfg.security.as_str() {
        "none" => (Tls::None, 25),
        "tls" => (Tls::Wrapper(tls_parameters(cfg)?), 465),
        _ => (Tls::Required(tls_parameters(cfg)?), 587),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
        .port(cfg.port.unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(user) = cfg.username.as_ref().filter(|u| !u.is_empty()) {
        b = b.credentials(Credentials::new(
            user.clone(),
            cfg.password.clone().unwrap_or_default(),
        ));
    }
    let transport = b.build();
    let sent = tokio::time::timeout(
        SEND_TIMEOUT + Duration::from_secs(1),
        transport.send(message),
    )
    .await;
    match sent {
        Err(_) => Err(SendError::new(
            Reason::Timeout,
            "the SMTP server did not answer in time",
        )),
        Ok(Ok(r)) => {
            let words: Vec<&str> = r.message().collect();
            Ok(format!("{} {}", r.code(), words.join(" "))
                .trim()
                .to_string())
        }
        Ok(Err(e)) => Err(classify(&e)),
    }
}

/// What a lettre error means for the admin and for retrying.
pub fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_timeout() {
        return SendError::new(Reason::Timeout, "the SMTP server did not answer in time");
    }
    if e.is_tls() {
        return SendError::new(
            Reason::Tls,
            format!("TLS with the SMTP server failed: {text}"),
        );
    }
    if let Some(code) = e.status() {
        let code = code.to_string();
        return classify_reply(&code, &text, e.is_permanent());
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("resolve") || lower.contains("lookup") || lower.contains("name or service") {
        SendError::new(Reason::Dns, "the SMTP server's name could not be resolved")
    } else if lower.contains("starttls") || lower.contains("certificate") || lower.contains("tls") {
        SendError::new(
            Reason::Tls,
            format!("TLS with the SMTP server failed: {text}"),
        )
    } else if lower.contains("connection") || lower.contains("refused") || lower.contains("network")
    {
        SendError::new(
            Reason::Connect,
            format!("cannot connect to the SMTP server: {text}"),
        )
    } else {
        SendError::new(Reason::Other, text)
    }
}

/// Classifies a reply by its code and enhanced status (RFC 3463).
pub fn classify_reply(code: &str, text: &str, permanent: bool) -> SendError {
    let auth = matches!(code, "535" | "534" | "530" | "454") || text.contains("5.7.8");
    if auth {
        return SendError::new(
            Reason::Auth,
            "the SMTP server refused the user name or password",
        );
    }
    let sender = text.contains("5.1.7")
        || text.contains("5.1.8")
        || text.to_ascii_lowercase().contains("sender");
    if sender {
        return SendError::new(
            Reason::SenderRefused,
            format!("the SMTP server refused the sender: {code} {text}"),
        );
    }
    if permanent {
        // A 5xx to RCPT or DATA: this recipient will not take it.
        return SendError::permanent(
            Reason::RecipientRefused,
            format!("the SMTP server refused the recipient: {text}"),
        );
    }
    SendError::new(Reason::Other, format!("the SMTP server answered {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified() {
        assert_eq!(
            classify_reply("535", "535 5.7.8 bad credentials", true).reason,
            Reason::Auth
        );
        let r = classify_reply("550", "550 5.1.1 no such user", true);
        assert_eq!((r.reason, r.permanent), (Reason::RecipientRefused, true));
        assert_eq!(
            classify_reply("553", "553 5.1.8 sender domain", true).reason,
            Reason::SenderRefused
        );
        let t = classify_reply("451", "451 4.3.0 try later", false);
        assert_eq!((t.reason, t.permanent), (Reason::Other, false));
    }
}
