//! One issuance (RFC 8555 §7.3–7.4): account, order, HTTP-01 authorisation,
//! finalisation with a CSR, polling with `Retry-After`, and the chain's
//! download. Blocking; run it on a blocking thread.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{problem_of, Client};
use super::jws::b64;
use super::{AcmeError, Challenges};

/// How long an authorisation or the order may stay pending before we give
/// up (the CA validates within seconds; minutes mean it never will).
const POLL_LIMIT: Duration = Duration::from_secs(120);
/// Poll interval when the CA sends no `Retry-After`.
const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured between polls.
const MAX_POLL: Duration = Duration::from_secs(10);

/// What the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The PEM chain, leaf first.
    pub chain_pem: String,
    /// The certificate's private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The account URL.
    pub account_url: String,
}

/// Obtains a certificate for `name`: `email` is the account's contact,
/// `challenges` is where the HTTP-01 answers are published for the plain
/// HTTP listener while the CA validates.
pub fn obtain(
    client: &mut Client,
    name: &str,
    email: Option<&str>,
    challenges: &Challenges,
) -> Result<Issued, AcmeError> {
    let account_url = account(client, email)?;
    let step = "placing the order";
    let new_order = client.directory.new_order.clone();
    let placed = client.post(
        step,
        &new_order,
        Some(&json!({ "identifiers": [{ "type": "dns", "value": name }] })),
    )?;
    let order_url = placed
        .location
        .clone()
        .ok_or_else(|| AcmeError::protocol(step, "the order has no Location"))?;
    let order = placed.json(step)?;
    let authorizations: Vec<String> = order["authorizations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for authz in &authorizations {
        authorize(client, authz, name, challenges)?;
    }
    let finalize = order["finalize"]
        .as_str()
        .ok_or_else(|| AcmeError::protocol(step, "the order has no finalize URL"))?
        .to_string();
    let (csr, key_pem) = csr(name)?;
    let step = "finalizing the order";
    client.post(step, &finalize, Some(&json!({ "csr": b64(&csr) })))?;
    let order = poll(client, step, &order_url, |o| match o["status"].as_str() {
        Some("valid") => Ok(true),
        Some("processing" | "ready" | "pending") => Ok(false),
        other => Err(AcmeError::protocol(
            "finalizing the order",
            format!(
                "the order became {}{}",
                other.unwrap_or("unknown"),
                o["error"]["detail"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        )),
    })?;
    let cert_url = order["certificate"]
        .as_str()
        .ok_or_else(|| AcmeError::protocol(step, "the valid order has no certificate URL"))?
        .to_string();
    let step = "downloading the certificate";
    let chain =
        client.post_accepting(step, &cert_url, None, "application/pem-certificate-chain")?;
    let chain_pem = String::from_utf8(chain.body)
        .map_err(|_| AcmeError::protocol(step, "the chain is not PEM text"))?;
    Ok(Issued {
        chain_pem,
        key_pem,
        account_url,
    })
}

/// Creates the account or finds the existing one for this key (§7.3: a
/// second newAccount with the same key returns it), agreeing to the terms.
fn account(client: &mut Client, email: Option<&str>) -> Result<String, AcmeError> {
    let step = "registering the account";
    let mut payload = json!({ "termsOfServiceAgreed": true });
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        payload["contact"] = json!([format!("mailto:{e}")]);
    }
    let url = client.directory.new_account.clone();
    client.kid = None;
    let answer = client.post(step, &url, Some(&payload))?;
    let kid = answer
        .location
        .ok_or_else(|| AcmeError::protocol(step, "the account has no Location"))?;
    client.kid = Some(kid.clone());
    Ok(kid)
}

/// Answers the HTTP-01 challenge of one authorisation and waits until the
/// CA has validated it.
fn authorize(
    client: &mut Client,
    authz_url: &str,
    name: &str,
    challenges: &Challenges,
) -> Result<(), AcmeError> {
    let step = "reading the authorization";
    let authz = client.post(step, authz_url, None)?.json(step)?;
    if authz["status"] == "valid" {
        return Ok(());
    }
    let challenge = authz["challenges"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "http-01"))
        .ok_or_else(|| AcmeError::protocol(step, "the CA offers no http-01 challenge"))?;
    let (Some(token), Some(url)) = (challenge["token"].as_str(), challenge["url"].as_str()) else {
        return Err(AcmeError::protocol(
            step,
            "the challenge has no token or URL",
        ));
    };
    let key_auth = client.key().key_authorization(token);
    let _published = challenges.publish(token, &key_auth);
    let step = "answering the http-01 challenge";
    client.post(step, url, Some(&json!({})))?;
    let challenge_url = format!("http://{name}/.well-known/acme-challenge/{token}");
    poll(client, step, authz_url, |a| match a["status"].as_str() {
        Some("valid") => Ok(true),
        Some("pending" | "processing") => Ok(false),
        _ => {
            let failed = a["challenges"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "http-01"))
                .map(|c| c["error"].clone())
                .unwrap_or(Value::Null);
            Err(match problem_of(step, &failed, 403) {
                AcmeError::Problem { kind, detail, .. } => AcmeError::Challenge {
                    url: challenge_url.clone(),
                    kind,
                    detail,
                },
                other => other,
            })
        }
    })?;
    Ok(())
}

/// POST-as-GETs `url` until `done` says so, honouring `Retry-After`.
fn poll(
    client: &mut Client,
    step: &'static str,
    url: &str,
    done: impl Fn(&Value) -> Result<bool, AcmeError>,
) -> Result<Value, AcmeError> {
    let started = Instant::now();
    loop {
        let answer = client.post(step, url, None)?;
        let doc = answer.json(step)?;
        if done(&doc)? {
            return Ok(doc);
        }
        if started.elapsed() > POLL_LIMIT {
            return Err(AcmeError::protocol(
                step,
                format!("the CA did not decide within {} s", POLL_LIMIT.as_secs()),
            ));
        }
        let wait = answer
            .retry_after
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_POLL)
            .min(MAX_POLL);
        std::thread::sleep(wait);
    }
}

/// A fresh P-256 key and the CSR (DER) for `name`.
fn csr(name: &str) -> Result<(Vec<u8>, String), AcmeError> {
    let step = "making the certificate request";
    let key = rcgen::KeyPair::generate().map_err(|e| AcmeError::protocol(step, e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
    Ok((csr.der().to_vec(), key.serialize_pem()))
}
