//! The background task that keeps a valid certificate for the public name:
//! issues one when there is none (or the name changed), renews at
//! two-thirds of its lifetime, backs off after a failure, raises an admin
//! alert when an attempt fails and when the certificate has less than 14
//! days left, and installs each new certificate into the shared
//! [`CertStore`] (served on the next TLS handshake, no restart).
//!
//! All network work runs on a blocking thread; the loop itself only reads
//! the configuration (a read, no write) every [`CHECK_INTERVAL`], and
//! writes only when an attempt ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use super::client::Client;
use super::jws::AccountKey;
use super::store::{self, StoredCertificate, ACCOUNT_KEY, CERT_KEY_CONTEXT};
use super::{order, public_name, AcmeError, Challenges};
use crate::certs::{CertFacts, CertStore, Loaded};
use crate::clock::{SharedClock, Timestamp};
use crate::events::{AlertChange, Event, Events};
use crate::secrets::SecretBox;
use crate::store::{alerts, config, secrets, Db, StoreError};

/// How often the task looks at the configuration and the clock.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// An admin alert is raised when the certificate has less than this left.
pub const EXPIRY_ALERT_BEFORE: Duration = Duration::from_secs(14 * 86_400);
/// Waits after 1, 2, 3… failures in a row (the last repeats).
const BACKOFF: &[Duration] = &[
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
];
/// `config` key: whether ACME is on (sysconfig group `acme`).
pub const ENABLED: &str = "acme.enabled";
/// `config` key: the account's contact e-mail.
pub const EMAIL: &str = "acme.email";
/// Alert key of a failed attempt.
pub const ALERT_FAILED: &str = "acme:failed";
/// Alert key of a certificate about to expire.
pub const ALERT_EXPIRY: &str = "acme:expiry";

/// Where the certificate stands, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// ACME is turned off; the self-signed (or configured) certificate is served.
    Off,
    /// On, but `system.public_url` has no name a CA can issue for.
    NoPublicName,
    /// On, and a certificate will be asked for.
    Pending,
    /// An issuance is running.
    Working,
    /// A certificate from the CA is served.
    Valid,
    /// The last attempt failed; it is retried later.
    Failed,
}

/// `GET /api/certificate`.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    /// The public name (host of `system.public_url`), if any.
    pub name: Option<String>,
    /// Whether ACME is on.
    pub enabled: bool,
    /// The account's contact.
    pub email: Option<String>,
    /// Where it stands.
    pub state: State,
    /// The names of the served certificate.
    pub names: Vec<String>,
    /// Its issuer.
    pub issuer: String,
    /// Whether it is self-signed.
    pub self_signed: bool,
    /// Validity start (RFC 3339).
    pub not_before: String,
    /// Validity end (RFC 3339).
    pub not_after: String,
    /// When it will be renewed (RFC 3339), for a CA certificate.
    pub next_renewal: Option<String>,
    /// When the next attempt may run after failures (RFC 3339).
    pub retry_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the last attempt ended.
    pub last_attempt_at: Option<String>,
}

/// The ACME service's handle (cheap to clone): the shared certificate
/// store, the HTTP-01 answers, and a way to ask for an issuance now.
#[derive(Debug, Clone)]
pub struct Acme {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    certs: Arc<CertStore>,
    challenges: Challenges,
    db: Db,
    secrets: Arc<SecretBox>,
    clock: SharedClock,
    events: Events,
    directory_url: String,
    ca_bundle: Option<PathBuf>,
    wake: Notify,
    forced: AtomicBool,
    working: AtomicBool,
    /// Whether the served certificate came from the CA.
    from_ca: AtomicBool,
    /// Serialises attempts (a forced one and a scheduled one).
    attempt: tokio::sync::Mutex<()>,
    /// Last error for the facts (mirrors the table, read without I/O).
    last_error: Mutex<Option<String>>,
}

/// What the service needs.
#[derive(Debug)]
pub struct AcmeSetup {
    /// The shared store served by HTTPS (and SIP unless pinned to files).
    pub certs: Arc<CertStore>,
    /// The database.
    pub db: Db,
    /// Seals the keys.
    pub secrets: Arc<SecretBox>,
    /// The one clock.
    pub clock: SharedClock,
    /// Where `CertificateRenewed` and alerts are announced.
    pub events: Events,
    /// `acme.directory_url`.
    pub directory_url: String,
    /// `acme.ca_bundle`.
    pub ca_bundle: Option<PathBuf>,
}

impl Acme {
    /// The handle; [`Acme::run`] is the task.
    pub fn new(setup: AcmeSetup) -> Acme {
        Acme {
            inner: Arc::new(Inner {
                certs: setup.certs,
                challenges: Challenges::default(),
                db: setup.db,
                secrets: setup.secrets,
                clock: setup.clock,
                events: setup.events,
                directory_url: setup.directory_url,
                ca_bundle: setup.ca_bundle,
                wake: Notify::new(),
                forced: AtomicBool::new(false),
                working: AtomicBool::new(false),
                from_ca: AtomicBool::new(false),
                attempt: tokio::sync::Mutex::new(()),
                last_error: Mutex::new(None),
            }),
        }
    }

    /// The shared certificate store.
    pub fn certs(&self) -> &Arc<CertStore> {
        &self.inner.certs
    }

    /// The HTTP-01 answers being validated.
    pub fn challenges(&self) -> &Challenges {
        &self.inner.challenges
    }

    /// What the doctor's certificate check reads: the served certificate
    /// and the last attempt's error.
    pub fn facts(&self) -> CertFacts {
        let mut facts = self.inner.certs.facts();
        facts.last_error = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        facts
    }

    /// Asks for an issuance now (the admin's "Get certificate now"),
    /// regardless of the schedule and the backoff.
    pub fn renew_now(&self) {
        self.inner.forced.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Loads the stored certificate into the store (at startup), if there
    /// is one that opens and parses.
    pub async fn load_stored(&self) -> Result<(), StoreError> {
        let (stored, attempts) = self
            .inner
            .db
            .read(|c| Ok::<_, StoreError>((store::certificate(c)?, store::attempt_state(c)?)))
            .await?;
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = attempts.last_error;
        let Some(stored) = stored else { return Ok(()) };
        match self.open_stored(&stored) {
            Ok(loaded) => {
                self.inner.certs.install(loaded);
                self.inner.from_ca.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, "the stored ACME certificate cannot be used; a new one will be asked for")
            }
        }
        Ok(())
    }

    fn open_stored(&self, stored: &StoredCertificate) -> Result<Loaded, String> {
        let key = self
            .inner
            .secrets
            .open(CERT_KEY_CONTEXT, &stored.key_sealed)
            .map_err(|e| e.to_string())?;
        Loaded::from_pem(stored.chain_pem.as_bytes(), &key).map_err(|e| e.to_string())
    }

    /// The API's view.
    pub async fn view(&self) -> Result<CertificateView, StoreError> {
        let (cfg, attempts) = self
            .inner
            .db
            .read(|c| Ok::<_, StoreError>((read_config(c)?, store::attempt_state(c)?)))
            .await?;
        let facts = self.inner.certs.facts();
        let from_ca = self.inner.from_ca.load(Ordering::Acquire);
        let state = if !cfg.enabled {
            State::Off
        } else if cfg.name.is_none() {
            State::NoPublicName
        } else if self.inner.working.load(Ordering::Acquire) {
            State::Working
        } else if attempts.last_error.is_some() {
            State::Failed
        } else if from_ca && cfg.name.as_ref().is_some_and(|n| facts.names.contains(n)) {
            State::Valid
        } else {
            State::Pending
        };
        Ok(CertificateView {
            name: cfg.name,
            enabled: cfg.enabled,
            email: cfg.email,
            state,
            next_renewal: from_ca.then(|| facts.renew_at().to_string()),
            names: facts.names,
            issuer: facts.issuer,
            self_signed: facts.self_signed,
            not_before: facts.not_before.to_string(),
            not_after: facts.not_after.to_string(),
            retry_at: attempts.retry_at.map(|t| t.to_string()),
            last_error: attempts.last_error,
            last_attempt_at: attempts.last_attempt_at.map(|t| t.to_string()),
        })
    }

    /// Runs until `stopped` resolves.
    pub async fn run(self, stopped: impl std::future::Future<Output = ()>) {
        tokio::pin!(stopped);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "certificate check failed");
            }
            tokio::select! {
                _ = &mut stopped => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(CHECK_INTERVAL) => {}
            }
        }
    }

    /// One look: alerts for expiry, and an issuance when due.
    async fn tick(&self) -> Result<(), StoreError> {
        let (cfg, attempts) = self
            .inner
            .db
            .read(|c| Ok::<_, StoreError>((read_config(c)?, store::attempt_state(c)?)))
            .await?;
        let now = self.inner.clock.now();
        let facts = self.inner.certs.facts();
        let from_ca = self.inner.from_ca.load(Ordering::Acquire);
        if from_ca {
            self.expiry_alert(&facts, now).await?;
        }
        let forced = self.inner.forced.swap(false, Ordering::AcqRel);
        let Some(name) = cfg.name.filter(|_| cfg.enabled) else {
            if forced {
                tracing::info!(
                    "a certificate was asked for, but ACME is off or there is no public name"
                );
            }
            return Ok(());
        };
        let due = !from_ca || !facts.names.contains(&name) || now >= facts.renew_at();
        let backing_off = attempts.retry_at.is_some_and(|t| now < t);
        if forced || (due && !backing_off) {
            self.attempt(name, cfg.email, attempts.failures).await?;
        }
        Ok(())
    }

    async fn expiry_alert(&self, facts: &CertFacts, now: Timestamp) -> Result<(), StoreError> {
        let left = facts.not_after.since(now);
        if left < EXPIRY_ALERT_BEFORE {
            let days = left.as_secs() / 86_400;
            let message = if left.is_zero() {
                format!("The HTTPS certificate for {} has expired ({}); Twilio cannot reach the webhooks. See Settings → HTTPS certificate.", facts.names.join(", "), facts.not_after)
            } else {
                format!("The HTTPS certificate for {} expires in {days} days ({}) and could not be renewed yet. See Settings → HTTPS certificate.", facts.names.join(", "), facts.not_after)
            };
            self.raise(ALERT_EXPIRY, message, now).await
        } else {
            self.clear(ALERT_EXPIRY, now).await
        }
    }

    async fn raise(
        &self,
        key: &'static str,
        message: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let raised = self
            .inner
            .db
            .call(move |c| alerts::raise_id(c, key, &message, now))
            .await?;
        if let Some(alert_id) = raised {
            self.inner.events.publish(Event::Alert {
                alert_id,
                change: AlertChange::Raised,
            });
        }
        Ok(())
    }

    async fn clear(&self, key: &'static str, now: Timestamp) -> Result<(), StoreError> {
        let open = self
            .inner
            .db
            .read(move |c| Ok::<_, StoreError>(alerts::open(c)?.iter().any(|a| a.key == key)))
            .await?;
        if !open {
            return Ok(());
        }
        let cleared = self
            .inner
            .db
            .call(move |c| alerts::clear_id(c, key, now))
            .await?;
        if let Some(alert_id) = cleared {
            self.inner.events.publish(Event::Alert {
                alert_id,
                change: AlertChange::Dismissed,
            });
        }
        Ok(())
    }

    async fn attempt(
        &self,
        name: String,
        email: Option<String>,
        failures: u32,
    ) -> Result<(), StoreError> {
        let _one = self.inner.attempt.lock().await;
        self.inner.working.store(true, Ordering::Release);
        tracing::info!(%name, directory = %self.inner.directory_url, "asking the CA for a certificate");
        let result = self.issue(&name, email).await;
        self.inner.working.store(false, Ordering::Release);
        let now = self.inner.clock.now();
        match result {
            Ok(loaded) => {
                let not_after = loaded.facts.not_after;
                self.inner.certs.install(loaded);
                self.inner.from_ca.store(true, Ordering::Release);
                *self
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                self.clear(ALERT_FAILED, now).await?;
                self.expiry_alert(&self.inner.certs.facts(), now).await?;
                self.inner.events.publish(Event::CertificateRenewed {
                    name,
                    not_after: not_after.to_string(),
                });
                Ok(())
            }
            Err(e) => {
                let failures = failures.saturating_add(1);
                let wait = BACKOFF[(failures as usize - 1).min(BACKOFF.len() - 1)];
                let retry_at = now.plus(wait);
                let text = e.to_string();
                tracing::warn!(%name, error = %text, retry_at = %retry_at, "could not obtain a certificate");
                *self
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
                let saved = text.clone();
                self.inner
                    .db
                    .call(move |c| store::save_failure(c, &saved, failures, retry_at, now))
                    .await?;
                self.raise(
                    ALERT_FAILED,
                    format!("Getting the HTTPS certificate for {name} failed: {text}. Retrying at {retry_at}."),
                    now,
                )
                .await
            }
        }
    }

    /// Runs one issuance and stores its result; returns it ready to serve.
    async fn issue(&self, name: &str, email: Option<String>) -> Result<Loaded, AcmeError> {
        let pkcs8 = self.account_key().await?;
        let (dir, bundle, challenges) = (
            self.inner.directory_url.clone(),
            self.inner.ca_bundle.clone(),
            self.inner.challenges.clone(),
        );
        let owned_name = name.to_string();
        let issued = tokio::task::spawn_blocking(move || {
            let key = AccountKey::from_pkcs8(&pkcs8)
                .map_err(|e| AcmeError::protocol("opening the account key", e.to_string()))?;
            let mut client = Client::connect(&dir, bundle.as_deref(), key)?;
            order::obtain(&mut client, &owned_name, email.as_deref(), &challenges)
        })
        .await
        .map_err(|e| AcmeError::protocol("running the issuance", e.to_string()))??;
        let step = "installing the certificate";
        let loaded = Loaded::from_pem(issued.chain_pem.as_bytes(), issued.key_pem.as_bytes())
            .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
        if !loaded.facts.names.iter().any(|n| n == name) {
            return Err(AcmeError::protocol(
                step,
                format!(
                    "the CA issued a certificate for {:?}, not for {name}",
                    loaded.facts.names
                ),
            ));
        }
        let key_sealed = self
            .inner
            .secrets
            .seal(CERT_KEY_CONTEXT, issued.key_pem.as_bytes())
            .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
        let now = self.inner.clock.now();
        let cert = StoredCertificate {
            name: name.to_string(),
            chain_pem: issued.chain_pem,
            key_sealed,
            obtained_at: now.to_string(),
        };
        let facts = loaded.facts.clone();
        let directory = self.inner.directory_url.clone();
        self.inner
            .db
            .call::<_, StoreError, _>(move |c| {
                store::save_certificate(
                    c,
                    &cert,
                    facts.not_before,
                    facts.not_after,
                    &facts.issuer,
                    &directory,
                    &issued.account_url,
                    now,
                )
            })
            .await?;
        Ok(loaded)
    }

    /// The account key's PKCS#8, generated and sealed on first use.
    async fn account_key(&self) -> Result<Vec<u8>, AcmeError> {
        let secrets = self.inner.secrets.clone();
        let now = self.inner.clock.now();
        self.inner
            .db
            .call(move |c| {
                if let Some(sealed) = secrets::get(c, ACCOUNT_KEY)? {
                    if let Ok(key) = secrets.open(ACCOUNT_KEY, &sealed) {
                        return Ok(key);
                    }
                    tracing::error!("the ACME account key cannot be opened; making a new account");
                }
                let step = "making the account key";
                let pkcs8 = AccountKey::generate_pkcs8()
                    .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
                let sealed = secrets
                    .seal(ACCOUNT_KEY, &pkcs8)
                    .map_err(|e| AcmeError::protocol(step, e.to_string()))?;
                secrets::set(c, ACCOUNT_KEY, &sealed, now)?;
                Ok(pkcs8)
            })
            .await
    }
}

struct AcmeConfig {
    enabled: bool,
    email: Option<String>,
    name: Option<String>,
}

fn read_config(c: &rusqlite::Connection) -> Result<AcmeConfig, StoreError> {
    Ok(AcmeConfig {
        enabled: config::get(c, ENABLED)?.as_deref() == Some("true"),
        email: config::get(c, EMAIL)?.filter(|e| !e.is_empty()),
        name: config::get(c, crate::sysconfig::SYSTEM_PUBLIC_URL)?
            .as_deref()
            .and_then(public_name),
    })
}
