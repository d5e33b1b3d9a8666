//! The ACME protocol over HTTPS (RFC 8555 §7): directory, nonces, signed
//! POSTs (with one retry on `badNonce`), problem documents. Blocking (ureq),
//! so it runs on a blocking thread, never on the SIP loop or the reactor.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::jws::AccountKey;
use super::AcmeError;

/// Longest an exchange with the CA may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a request is re-signed after `badNonce`.
const MAX_NONCE_RETRIES: u32 = 3;
/// Largest answer read (a certificate chain is a few KiB).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// What the CA answered.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Location` (account and order URLs).
    pub location: Option<String>,
    /// `Retry-After` in seconds, if given as seconds.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self, step: &'static str) -> Result<Value, AcmeError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AcmeError::protocol(step, format!("the CA's answer is not JSON: {e}")))
    }
}

/// The URLs of the CA's directory.
#[derive(Debug, Clone)]
pub struct Directory {
    /// `newNonce`.
    pub new_nonce: String,
    /// `newAccount`.
    pub new_account: String,
    /// `newOrder`.
    pub new_order: String,
}

/// A session with one CA.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    /// The directory read at connect.
    pub directory: Directory,
    nonce: Option<String>,
    key: AccountKey,
    /// The account URL, once known (`kid`).
    pub kid: Option<String>,
}

fn agent(ca_bundle: Option<&Path>) -> Result<ureq::Agent, AcmeError> {
    let roots = match ca_bundle {
        None => ureq::tls::RootCerts::WebPki,
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                AcmeError::protocol("reading acme.ca_bundle", format!("{}: {e}", path.display()))
            })?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(AcmeError::protocol(
                    "reading acme.ca_bundle",
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
            ureq::tls::RootCerts::new_with_certs(&certs)
        }
    };
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(roots)
        .build();
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("homeline/{}", crate::VERSION))
        .tls_config(tls)
        .build()
        .into())
}

impl Client {
    /// Reads the directory at `url`.
    pub fn connect(
        url: &str,
        ca_bundle: Option<&Path>,
        key: AccountKey,
    ) -> Result<Client, AcmeError> {
        let agent = agent(ca_bundle)?;
        let step = "reading the CA's directory";
        let answer = read(&agent, agent.get(url).call(), step, url)?;
        if answer.status != 200 {
            return Err(problem(step, &answer));
        }
        let dir = answer.json(step)?;
        let field = |name: &str| {
            dir[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| AcmeError::protocol(step, format!("the directory has no {name}")))
        };
        Ok(Client {
            directory: Directory {
                new_nonce: field("newNonce")?,
                new_account: field("newAccount")?,
                new_order: field("newOrder")?,
            },
            agent,
            nonce: None,
            key,
            kid: None,
        })
    }

    /// The account key.
    pub fn key(&self) -> &AccountKey {
        &self.key
    }

    fn fresh_nonce(&mut self, step: &'static str) -> Result<String, AcmeError> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = self.directory.new_nonce.clone();
        let resp = self.agent.head(&url).call();
        let resp = resp.map_err(|e| AcmeError::network(step, &url, &e))?;
        nonce_of(&resp).ok_or_else(|| AcmeError::protocol(step, "the CA sent no Replay-Nonce"))
    }

    /// A signed POST of `payload` (`None`: POST-as-GET) to `url`; a 4xx/5xx
    /// answer becomes [`AcmeError::Problem`].
    pub fn post(
        &mut self,
        step: &'static str,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Answer, AcmeError> {
        self.post_accepting(step, url, payload, "application/json")
    }

    /// Like [`Client::post`] with another `Accept` (the certificate chain).
    pub fn post_accepting(
        &mut self,
        step: &'static str,
        url: &str,
        payload: Option<&Value>,
        accept: &str,
    ) -> Result<Answer, AcmeError> {
        let mut retries = 0;
        loop {
            let nonce = self.fresh_nonce(step)?;
            let body = self
                .key
                .sign(url, &nonce, self.kid.as_deref(), payload)
                .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
            let sent = self
                .agent
                .post(url)
                .header("Content-Type", "application/jose+json")
                .header("Accept", accept)
                .send(body.to_string());
            if let Ok(resp) = &sent {
                self.nonce = nonce_of(resp);
            }
            let answer = read(&self.agent, sent, step, url)?;
            if answer.status < 400 {
                return Ok(answer);
            }
            let err = problem(step, &answer);
            // A nonce can go stale (the CA restarted, or it expired): the
            // RFC says to retry with the fresh one it sent (§6.5).
            if retries < MAX_NONCE_RETRIES
                && matches!(&err, AcmeError::Problem { kind, .. } if kind.ends_with(":badNonce"))
            {
                retries += 1;
                continue;
            }
            return Err(err);
        }
    }
}

fn nonce_of(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers()
        .get("replay-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn read(
    _agent: &ureq::Agent,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    step: &'static str,
    url: &str,
) -> Result<Answer, AcmeError> {
    let mut resp = sent.map_err(|e| AcmeError::network(step, url, &e))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status().as_u16();
    let location = header("location");
    let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| AcmeError::network(step, url, &e))?;
    Ok(Answer {
        status,
        location,
        retry_after,
        body,
    })
}

/// The problem document of an error answer (RFC 7807), or the status.
pub fn problem(step: &'static str, answer: &Answer) -> AcmeError {
    let doc: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    problem_of(step, &doc, answer.status)
}

/// An [`AcmeError::Problem`] from a problem document (also found inside a
/// failed challenge's `error`).
pub fn problem_of(step: &'static str, doc: &Value, status: u16) -> AcmeError {
    let kind = doc["type"].as_str().unwrap_or("about:blank").to_string();
    let mut detail = doc["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(subs) = doc["subproblems"].as_array() {
        for s in subs {
            if let Some(d) = s["detail"].as_str() {
                detail.push_str("; ");
                detail.push_str(d);
            }
        }
    }
    AcmeError::Problem { step, kind, detail }
}
