//! The delivering half: the outbox executor of `send_email`, `send_push`
//! and `post_webhook` jobs ([`Notifier`]), the direct sends of the admin's
//! test button, and [`AppJobs`], the one executor the worker runs (Twilio
//! jobs to [`TwilioJobs`], notification jobs here).
//!
//! # Exactly once
//!
//! The outbox marks a job `attempting` (durably) before the send and
//! records `done` with `notifications.state = 'sent'` in one transaction
//! after it. A crash in between resumes the job and sends again: the
//! window is one duplicate per crash *during* a send, recognisable by the
//! receiver — the same `Message-ID` (e-mail), `Metadata.notification_id`
//! (Postmark), `extras["homeline::delivery"]` (Gotify), or
//! `X-Homeline-Delivery` (webhooks). A crash *between* attempts (the usual
//! case: waiting for a retry) loses and duplicates nothing.

use std::sync::Arc;

use rusqlite::Connection;

use super::email;
use super::gotify;
use super::postmark::{self, PostmarkConfig};
use super::queue::{self, Notification, Stored};
use super::send::{Reason, SendError};
use super::smtp::{self, SmtpConfig};
use super::webhook;
use crate::clock::SharedClock;
use crate::outbox::{Commit, Executor, Job, Outcome, Task};
use crate::secrets::SecretBox;
use crate::store::{config, secrets, Db, StoreError};
use crate::sysconfig::{self, ConfigError};
use crate::twilio::jobs::TwilioJobs;

/// The e-mail service in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailer {
    /// SMTP.
    Smtp(SmtpConfig),
    /// Postmark.
    Postmark(PostmarkConfig),
}

/// The e-mail settings: the service and the From address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// How it is sent.
    pub mailer: Mailer,
    /// `smtp.from` or `postmark.from`.
    pub from: String,
}

fn secret(conn: &Connection, b: &SecretBox, key: &str) -> Result<Option<String>, ConfigError> {
    Ok(sysconfig::open_secret(b, key, secrets::get(conn, key)?)?)
}

fn not_configured(what: &str) -> SendError {
    SendError::new(Reason::NotConfigured, what.to_string())
}

/// Reads the e-mail settings; `Err(not_configured)` says what is missing.
pub fn email_config(
    conn: &Connection,
    b: &SecretBox,
) -> Result<Result<EmailConfig, SendError>, ConfigError> {
    let provider = config::get(conn, sysconfig::NOTIFY_EMAIL_PROVIDER)?;
    Ok(match provider.as_deref() {
        Some("smtp") => {
            let (Some(host), Some(from)) = (
                config::get(conn, "smtp.host")?,
                config::get(conn, "smtp.from")?,
            ) else {
                return Ok(Err(not_configured("SMTP needs smtp.host and smtp.from")));
            };
            Ok(EmailConfig {
                mailer: Mailer::Smtp(SmtpConfig {
                    host,
                    port: config::get(conn, "smtp.port")?.and_then(|p| p.parse().ok()),
                    security: config::get(conn, sysconfig::SMTP_SECURITY)?
                        .unwrap_or_else(|| "starttls".into()),
                    username: config::get(conn, "smtp.username")?,
                    password: secret(conn, b, "smtp.password")?,
                    ca_file: config::get(conn, sysconfig::SMTP_CA_FILE)?,
                }),
                from,
            })
        }
        Some("postmark") => {
            let (Some(token), Some(from)) = (
                secret(conn, b, "postmark.server_token")?,
                config::get(conn, "postmark.from")?,
            ) else {
                return Ok(Err(not_configured(
                    "Postmark needs postmark.server_token and postmark.from",
                )));
            };
            Ok(EmailConfig {
                mailer: Mailer::Postmark(PostmarkConfig {
                    api_base: config::get(conn, sysconfig::POSTMARK_API_BASE)?
                        .unwrap_or_else(|| postmark::DEFAULT_API_BASE.into()),
                    token,
                }),
                from,
            })
        }
        _ => Err(not_configured(
            "no e-mail service is chosen (notify.email_provider)",
        )),
    })
}

/// The Gotify server, token and priority override for a push `target`
/// (`household`, or `user:<id>` with the user's own token, falling back to
/// the household's).
#[derive(Clone)]
pub struct PushConfig {
    /// Server URL.
    pub url: String,
    /// Application token.
    pub token: String,
    /// `gotify.priority`, if set.
    pub priority: Option<u8>,
}

/// The secret key of user `id`'s own Gotify token (written by the prefs API,
/// sealed with the key as its context, like every sysconfig secret).
pub fn user_token_key(user_id: i64) -> String {
    format!("notify.user.{user_id}.gotify_token")
}

/// Reads the push settings for `target`.
pub fn push_config(
    conn: &Connection,
    b: &SecretBox,
    target: &str,
) -> Result<Result<PushConfig, SendError>, ConfigError> {
    let Some(url) = config::get(conn, "gotify.url")? else {
        return Ok(Err(not_configured("Gotify needs gotify.url")));
    };
    let own = match target
        .strip_prefix("user:")
        .and_then(|id| id.parse::<i64>().ok())
    {
        Some(id) => secret(conn, b, &user_token_key(id))?,
        None => None,
    };
    let token = match own {
        Some(t) => t,
        None => match secret(conn, b, "gotify.token")? {
            Some(t) => t,
            None => {
                return Ok(Err(not_configured(
                    "Gotify needs an application token (gotify.token)",
                )))
            }
        },
    };
    let priority = config::get(conn, sysconfig::GOTIFY_PRIORITY)?
        .and_then(|p| p.parse::<u8>().ok())
        .map(|p| p.min(10));
    Ok(Ok(PushConfig {
        url,
        token,
        priority,
    }))
}

/// Sends an e-mail now (the worker's job, or the test button).
pub async fn send_email(cfg: &EmailConfig, id: i64, n: &Notification) -> Result<String, SendError> {
    let list = n.attachments.clone();
    let files = tokio::task::spawn_blocking(move || email::read_attachments(&list))
        .await
        .unwrap_or_default();
    match &cfg.mailer {
        Mailer::Smtp(s) => {
            let message = email::build(id, n, &cfg.from, &files)?;
            smtp::send(s, message).await
        }
        Mailer::Postmark(p) => {
            let mid = email::message_id(id, &n.dedupe_key, &cfg.from);
            let body = postmark::body(id, n, &cfg.from, &mid, &files);
            let p = p.clone();
            tokio::task::spawn_blocking(move || postmark::send(&p, &body))
                .await
                .unwrap_or_else(|e| Err(SendError::new(Reason::Other, format!("send task: {e}"))))
        }
    }
}

/// Sends a push now.
pub async fn send_push(cfg: &PushConfig, id: i64, n: &Notification) -> Result<String, SendError> {
    let body = gotify::body(id, n, cfg.priority.unwrap_or(n.priority));
    let (url, token) = (cfg.url.clone(), cfg.token.clone());
    tokio::task::spawn_blocking(move || gotify::send(&url, &token, &body))
        .await
        .unwrap_or_else(|e| Err(SendError::new(Reason::Other, format!("send task: {e}"))))
}

/// A webhook row as delivery needs it.
struct Hook {
    url: String,
    secret: String,
    enabled: bool,
}

/// The seal context of webhook secrets (migration 011).
pub const WEBHOOK_SECRET_CONTEXT: &str = "webhook";

fn hook(conn: &Connection, b: &SecretBox, id: i64) -> Result<Option<Hook>, ConfigError> {
    use rusqlite::OptionalExtension;
    let row: Option<(String, Vec<u8>, bool)> = conn
        .query_row(
            "SELECT url, secret_sealed, enabled FROM webhooks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let Some((url, sealed, enabled)) = row else {
        return Ok(None);
    };
    let secret =
        sysconfig::open_secret(b, WEBHOOK_SECRET_CONTEXT, Some(sealed))?.unwrap_or_default();
    Ok(Some(Hook {
        url,
        secret,
        enabled,
    }))
}

/// Executes notification jobs.
#[derive(Debug, Clone)]
pub struct Notifier {
    db: Db,
    secrets: Arc<SecretBox>,
    clock: SharedClock,
}

impl Notifier {
    /// A notifier over `db`, opening secrets with `secrets`.
    pub fn new(db: Db, secrets: Arc<SecretBox>, clock: SharedClock) -> Notifier {
        Notifier { db, secrets, clock }
    }

    async fn load(&self, id: i64) -> Result<Stored, Outcome> {
        match self.db.read(move |c| queue::get(c, id)).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(Outcome::Failed(format!("notification {id} does not exist"))),
            Err(e) => Err(Outcome::Retry {
                error: format!("database: {e}"),
                retry_after: None,
                unknown: false,
            }),
        }
    }

    async fn attempt(&self, job: &Job, id: i64) -> Result<String, Outcome> {
        let stored = self.load(id).await?;
        if stored.state != "pending" {
            // Already recorded (a resumed job whose commit made it).
            return Ok(format!("already {}", stored.state));
        }
        let n = stored.notification;
        let b = self.secrets.clone();
        let failed = |e: ConfigError| Outcome::Retry {
            error: format!("settings: {e}"),
            retry_after: None,
            unknown: false,
        };
        let result = match &job.task {
            Task::SendEmail { .. } => {
                let cfg = self
                    .db
                    .read(move |c| Ok::<_, StoreError>(email_config(c, &b)))
                    .await;
                match cfg {
                    Ok(Ok(Ok(cfg))) => send_email(&cfg, id, &n).await,
                    Ok(Ok(Err(e))) => Err(e),
                    Ok(Err(e)) => return Err(failed(e)),
                    Err(e) => return Err(failed(e.into())),
                }
            }
            Task::SendPush { .. } => {
                let target = n.target.clone();
                let cfg = self
                    .db
                    .read(move |c| Ok::<_, StoreError>(push_config(c, &b, &target)))
                    .await;
                match cfg {
                    Ok(Ok(Ok(cfg))) => send_push(&cfg, id, &n).await,
                    Ok(Ok(Err(e))) => Err(e),
                    Ok(Err(e)) => return Err(failed(e)),
                    Err(e) => return Err(failed(e.into())),
                }
            }
            Task::PostWebhook { .. } => {
                let Ok(hook_id) = n.target.parse::<i64>() else {
                    return Err(Outcome::Failed(format!(
                        "notification {id}: target is not a webhook id"
                    )));
                };
                let found = self
                    .db
                    .read(move |c| Ok::<_, StoreError>(hook(c, &b, hook_id)))
                    .await;
                match found {
                    Ok(Ok(Some(h))) if h.enabled => {
                        let body = n
                            .payload
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "{}".into());
                        let event = n.topic.as_str().to_string();
                        let t = self.clock.now().unix_millis() / 1000;
                        tokio::task::spawn_blocking(move || {
                            webhook::send(&webhook::Delivery {
                                url: &h.url,
                                secret: &h.secret,
                                event: &event,
                                id,
                                body: body.as_bytes(),
                                t,
                            })
                        })
                        .await
                        .unwrap_or_else(|e| {
                            Err(SendError::new(Reason::Other, format!("send task: {e}")))
                        })
                    }
                    Ok(Ok(Some(_))) => Err(SendError::permanent(
                        Reason::NotConfigured,
                        "the webhook is disabled",
                    )),
                    Ok(Ok(None)) => Err(SendError::permanent(
                        Reason::NotConfigured,
                        "the webhook was deleted",
                    )),
                    Ok(Err(e)) => return Err(failed(e)),
                    Err(e) => return Err(failed(e.into())),
                }
            }
            other => {
                return Err(Outcome::Failed(format!(
                    "{} is not a notification job",
                    other.kind()
                )))
            }
        };
        match result {
            Ok(detail) => Ok(detail),
            Err(e) => {
                tracing::warn!(notification = id, channel = n.channel.as_str(), reason = e.reason.as_str(), error = %e.message, "notification not delivered");
                let text = e.describe();
                let _ = self.db.call(move |c| queue::note_error(c, id, &text)).await;
                Err(e.outcome())
            }
        }
    }
}

fn notification_id(task: &Task) -> Option<i64> {
    match task {
        Task::SendEmail { notification_id }
        | Task::SendPush { notification_id }
        | Task::PostWebhook { notification_id } => Some(*notification_id),
        _ => None,
    }
}

impl Executor for Notifier {
    async fn execute(&self, job: &Job) -> Outcome {
        let Some(id) = notification_id(&job.task) else {
            return Outcome::Failed(format!("{} is not a notification job", job.task.kind()));
        };
        match self.attempt(job, id).await {
            Ok(detail) => {
                tracing::info!(notification = id, kind = job.task.kind(), %detail, "notification delivered");
                let now = self.clock.now();
                let commit: Commit = Box::new(move |c: &Connection| {
                    c.execute(
                        "UPDATE notifications SET state = 'sent', error = NULL, sent_at = ?2 WHERE id = ?1 AND state = 'pending'",
                        rusqlite::params![id, now.to_string()],
                    )?;
                    Ok(())
                });
                Outcome::Done(Some(commit))
            }
            Err(outcome) => outcome,
        }
    }

    fn abandon(&self, job: &Job, error: &str) -> Option<Commit> {
        let id = notification_id(&job.task)?;
        let now = self.clock.now();
        let error = error.to_string();
        Some(Box::new(move |c: &Connection| {
            queue::finish(c, id, false, Some(&error), now)
        }))
    }
}

/// The worker's executor: Twilio jobs to [`TwilioJobs`], notifications to
/// the [`Notifier`].
#[derive(Debug, Clone)]
pub struct AppJobs {
    /// Twilio's side effects.
    pub twilio: TwilioJobs,
    /// Notification delivery.
    pub notifier: Notifier,
}

impl Executor for AppJobs {
    async fn execute(&self, job: &Job) -> Outcome {
        if notification_id(&job.task).is_some() {
            self.notifier.execute(job).await
        } else {
            self.twilio.execute(job).await
        }
    }

    fn abandon(&self, job: &Job, error: &str) -> Option<Commit> {
        if notification_id(&job.task).is_some() {
            self.notifier.abandon(job, error)
        } else {
            self.twilio.abandon(job, error)
        }
    }
}
