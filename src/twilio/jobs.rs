//! The outbox executor for everything that talks to Twilio: send and sync
//! messages, download and delete recordings, download MMS media, point
//! numbers at the appliance. Each job reads the credentials when it runs
//! (so a fixed auth token takes effect at the next retry), runs the blocking
//! client on a blocking thread, and hands its database writes back to the
//! worker to commit together with `done` (see `outbox` for the exactly-once
//! design; the message reconciliation lives here in [`reconcile`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::client::{self, Client, MessageInfo, OutgoingMessage, TwilioError};
use crate::clock::{SharedClock, Timestamp};
use crate::constants::{MAX_MMS_MEDIA_BYTES, MAX_RECORDING_BYTES};
use crate::outbox::{Executor, Job, Outbox, Outcome, Task};
use crate::secrets::SecretBox;
use crate::store::{messages, voicemails, Db, StoreError};
use crate::sysconfig;

/// MMS content types kept (others are recorded as rejected, not stored).
pub const ALLOWED_MEDIA_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "audio/mpeg",
    "audio/mp4",
    "audio/amr",
    "audio/ogg",
    "video/mp4",
    "video/3gpp",
    "text/vcard",
    "text/x-vcard",
    "text/plain",
    "application/pdf",
];

/// How far Twilio's clock may differ from ours when matching a message
/// created during a lost attempt.
const CLOCK_SKEW: Duration = Duration::from_secs(120);

/// The file extension stored for a media type.
pub fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/amr" => "amr",
        "audio/ogg" => "ogg",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "text/vcard" | "text/x-vcard" => "vcf",
        "text/plain" => "txt",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// Executes Twilio jobs.
#[derive(Debug, Clone)]
pub struct TwilioJobs {
    db: Db,
    secrets: Arc<SecretBox>,
    clock: SharedClock,
    api_base: String,
    data_dir: PathBuf,
    outbox: Outbox,
    timeout: Option<Duration>,
}

impl TwilioJobs {
    /// An executor using the API at `api_base`, storing files under `data_dir`.
    pub fn new(
        outbox: Outbox,
        secrets: Arc<SecretBox>,
        api_base: &str,
        data_dir: &Path,
    ) -> TwilioJobs {
        TwilioJobs {
            db: outbox.db().clone(),
            clock: outbox.clock().clone(),
            secrets,
            api_base: api_base.to_string(),
            data_dir: data_dir.to_path_buf(),
            outbox,
            timeout: None,
        }
    }

    /// Shortens the request timeout (tests of slow answers).
    pub fn with_timeout(mut self, timeout: Duration) -> TwilioJobs {
        self.timeout = Some(timeout);
        self
    }

    async fn client(&self) -> Result<Client, Outcome> {
        let secrets = self.secrets.clone();
        let creds = self
            .db
            .call(move |c| sysconfig::twilio_credentials(c, &secrets))
            .await
            .map_err(|e| retry(format!("cannot read the Twilio settings: {e}")))?;
        let Some(creds) = creds else {
            return Err(retry(
                "Twilio is not configured (account SID and auth token)".into(),
            ));
        };
        let client = Client::from_credentials(&self.api_base, &creds);
        Ok(match self.timeout {
            Some(t) => client.with_timeout(t),
            None => client,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        client: Client,
        f: impl FnOnce(&Client) -> Result<T, TwilioError> + Send + 'static,
    ) -> Result<T, TwilioError> {
        tokio::task::spawn_blocking(move || f(&client))
            .await
            .unwrap_or_else(|e| Err(TwilioError::BadResponse(format!("task failed: {e}"))))
    }

    #[cfg(feature = "test-hooks")]
    async fn pause_point(&self, point: &str) {
        if std::env::var("HOMELINE_TEST_OUTBOX_PAUSE").ok().as_deref() == Some(point) {
            let marker = self
                .data_dir
                .join("run")
                .join(format!("outbox-paused-{point}"));
            let _ = std::fs::write(&marker, b"paused");
            tracing::warn!(point, "test hook: outbox paused for a kill");
            std::future::pending::<()>().await;
        }
    }

    #[cfg(not(feature = "test-hooks"))]
    async fn pause_point(&self, _point: &str) {}

    async fn send_message(&self, job: &Job, message_id: i64) -> Outcome {
        let msg = match self.db.call(move |c| messages::get(c, message_id)).await {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => return Outcome::Done(None),
            Err(e) => return retry(e.to_string()),
        };
        if msg.message_sid.is_some() {
            // A status callback recorded the SID after a lost attempt.
            return Outcome::Done(None);
        }
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let job_id = job.id;
        let public = self
            .db
            .call(|c| sysconfig::public_url(c))
            .await
            .ok()
            .flatten();
        if job.resumed {
            let since = job.previous_attempt.unwrap_or(job.started).unix_millis()
                - CLOCK_SKEW.as_millis() as i64;
            let (from, to) = (msg.from_number.clone(), msg.to_number.clone());
            let listed = self
                .blocking(client.clone(), move |c| c.list_messages(&from, &to))
                .await;
            let listed = match listed {
                Ok(l) => l,
                // Still unknown: the next attempt must reconcile too (and
                // never gives up: a message is not dropped on a list error).
                Err(e) => {
                    return Outcome::Retry {
                        retry_after: e.retry_after(),
                        error: format!("checking whether the lost attempt sent it: {e}"),
                        unknown: true,
                    }
                }
            };
            let db = self.db.clone();
            let body = msg.body.clone();
            let found = db.call(move |c| reconcile(c, &listed, &body, since)).await;
            match found {
                Ok(Some(info)) => {
                    tracing::info!(job = job_id, sid = %info.sid, "outbox: the lost attempt had sent the message; recorded, not resent");
                    return done_with_sid(message_id, info, self.clock.now());
                }
                Ok(None) => {
                    tracing::info!(
                        job = job_id,
                        "outbox: the lost attempt had not sent the message; sending"
                    );
                }
                Err(e) => {
                    return Outcome::Retry {
                        error: e.to_string(),
                        retry_after: None,
                        unknown: true,
                    }
                }
            }
        }
        let media_urls: Vec<String> = msg
            .media
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["url"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let callback = public.map(|p| format!("{p}/api/webhooks/sms/status?outbox={job_id}"));
        self.pause_point("before_send").await;
        let (from, to, body) = (msg.from_number, msg.to_number, msg.body);
        let sent = self
            .blocking(client, move |c| {
                c.create_message(&OutgoingMessage {
                    from: &from,
                    to: &to,
                    body: &body,
                    media_urls: &media_urls,
                    status_callback: callback.as_deref(),
                })
            })
            .await;
        match sent {
            Ok(info) => {
                self.pause_point("after_send").await;
                done_with_sid(message_id, info, self.clock.now())
            }
            Err(e @ (TwilioError::Http { .. } | TwilioError::Refused(_))) if !e.is_transient() => {
                let code = match &e {
                    TwilioError::Http { code, .. } => code.map(i64::from),
                    _ => None,
                };
                let now = self.clock.now();
                let _ = self
                    .db
                    .call(move |c| messages::set_status(c, message_id, "failed", code, now))
                    .await;
                Outcome::Failed(e.to_string())
            }
            Err(e) => from_error(e),
        }
    }

    async fn fetch_message(&self, message_id: i64) -> Outcome {
        let msg = match self.db.call(move |c| messages::get(c, message_id)).await {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => return Outcome::Done(None),
            Err(e) => return retry(e.to_string()),
        };
        let Some(sid) = msg.message_sid else {
            return Outcome::Done(None);
        };
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        match self.blocking(client, move |c| c.fetch_message(&sid)).await {
            Ok(info) => {
                let now = self.clock.now();
                Outcome::Done(Some(Box::new(move |c| {
                    messages::set_status(c, message_id, &info.status, info.error_code, now)
                })))
            }
            Err(TwilioError::NotFound { .. }) => Outcome::Done(None),
            Err(e) => from_error(e),
        }
    }

    async fn download_recording(&self, voicemail_id: i64, sid: &str, url: &str) -> Outcome {
        match self
            .db
            .call(move |c| voicemails::get(c, voicemail_id))
            .await
        {
            Ok(v) if v.audio_path.is_some() => return Outcome::Done(None),
            Ok(_) => {}
            // Deleted before its audio arrived: nothing to store.
            Err(StoreError::NotFound { .. }) => return Outcome::Done(None),
            Err(e) => return retry(e.to_string()),
        }
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let file_url = if url.ends_with(".mp3") || url.ends_with(".wav") {
            url.to_string()
        } else {
            format!("{url}.mp3")
        };
        let ext = if file_url.ends_with(".wav") {
            "wav"
        } else {
            "mp3"
        };
        let rel = format!("voicemail/{sid}.{ext}");
        let target = self.data_dir.join(&rel);
        let fetched = self
            .blocking(client, move |c| c.download(&file_url, MAX_RECORDING_BYTES))
            .await;
        let fetched = match fetched {
            Ok(d) => {
                let size = d.bytes.len();
                store_file(target, d.bytes).await.map(|()| size)
            }
            Err(e) => Err(download_error(e)),
        };
        match fetched {
            Ok(size) => {
                let (now, sid) = (self.clock.now(), sid.to_string());
                tracing::info!(voicemail = voicemail_id, size, "voicemail audio stored");
                let outbox = self.outbox.clone();
                let file = self.data_dir.join(&rel);
                Outcome::Done(Some(Box::new(move |c| {
                    if let Err(StoreError::NotFound { .. }) =
                        voicemails::set_audio_path(c, voicemail_id, &rel)
                    {
                        // Deleted while its audio was downloading.
                        let _ = std::fs::remove_file(&file);
                        return Ok(());
                    }
                    if sysconfig::flag(c, sysconfig::TWILIO_DELETE_AFTER_DOWNLOAD)? {
                        Outbox::enqueue_in(c, &Task::DeleteRecording { recording_sid: sid }, now)?;
                        outbox.wake();
                    }
                    Ok(())
                })))
            }
            Err(outcome) => outcome,
        }
    }

    async fn delete_recording(&self, sid: &str) -> Outcome {
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let sid = sid.to_string();
        match self
            .blocking(client, move |c| c.delete_recording(&sid))
            .await
        {
            Ok(()) | Err(TwilioError::NotFound { .. }) => Outcome::Done(None),
            Err(e) => from_error(e),
        }
    }

    async fn delete_media(&self, url: &str) -> Outcome {
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let url = url.to_string();
        match self.blocking(client, move |c| c.delete_media(&url)).await {
            Ok(()) | Err(TwilioError::NotFound { .. }) => Outcome::Done(None),
            Err(e) => from_error(e),
        }
    }

    async fn download_media(&self, message_id: i64, index: usize, url: &str) -> Outcome {
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        let (url, media_url) = (url.to_string(), url.to_string());
        let dir = self.data_dir.clone();
        let fetched = match self
            .blocking(client, move |c| c.download(&url, MAX_MMS_MEDIA_BYTES))
            .await
        {
            Ok(d) if !ALLOWED_MEDIA_TYPES.contains(&d.content_type.as_str()) => {
                return Outcome::Failed(format!("media type {} is not accepted", d.content_type))
            }
            Ok(d) => {
                let rel = format!("mms/{message_id}/{index}.{}", extension_of(&d.content_type));
                let size = d.bytes.len() as u64;
                store_file(dir.join(&rel), d.bytes)
                    .await
                    .map(|()| (rel, size, d.content_type))
            }
            Err(e) => Err(download_error(e)),
        };
        match fetched {
            Ok((rel, size, ct)) => {
                let (now, outbox) = (self.clock.now(), self.outbox.clone());
                Outcome::Done(Some(Box::new(move |c| {
                    match messages::set_media_item(c, message_id, index, &rel, size, &ct) {
                        Err(StoreError::NotFound { .. }) => {}
                        other => other?,
                    }
                    if sysconfig::flag(c, sysconfig::TWILIO_DELETE_AFTER_DOWNLOAD)? {
                        Outbox::enqueue_in(c, &Task::DeleteMedia { url: media_url }, now)?;
                        outbox.wake();
                    }
                    Ok(())
                })))
            }
            Err(outcome) => outcome,
        }
    }

    async fn update_number(&self, task: &Task) -> Outcome {
        let Task::UpdateNumber {
            number_sid,
            voice_url,
            sms_url,
            status_callback,
        } = task.clone()
        else {
            return Outcome::Failed("not a number update".into());
        };
        let client = match self.client().await {
            Ok(c) => c,
            Err(o) => return o,
        };
        match self
            .blocking(client, move |c| {
                c.update_number(&number_sid, &voice_url, &sms_url, &status_callback)
            })
            .await
        {
            Ok(n) => {
                tracing::info!(number = %n.phone_number, "Twilio number now points at this appliance");
                Outcome::Done(None)
            }
            Err(e) => from_error(e),
        }
    }
}

impl Executor for TwilioJobs {
    async fn execute(&self, job: &Job) -> Outcome {
        match &job.task {
            Task::SendMessage { message_id } => self.send_message(job, *message_id).await,
            Task::FetchMessage { message_id } => self.fetch_message(*message_id).await,
            Task::DownloadRecording {
                voicemail_id,
                recording_sid,
                url,
            } => {
                self.download_recording(*voicemail_id, recording_sid, url)
                    .await
            }
            Task::DeleteRecording { recording_sid } => self.delete_recording(recording_sid).await,
            Task::DownloadMedia {
                message_id,
                index,
                url,
            } => self.download_media(*message_id, *index, url).await,
            Task::DeleteMedia { url } => self.delete_media(url).await,
            Task::UpdateNumber { .. } => self.update_number(&job.task).await,
            Task::SendEmail { .. } | Task::SendPush { .. } | Task::PostWebhook { .. } => {
                Outcome::Failed(format!("{} is not a Twilio job", job.task.kind()))
            }
        }
    }
}

/// Finds, among messages Twilio lists from our number to the recipient, the
/// one a lost attempt created: same body, created after the attempt started
/// (less clock skew), and not already recorded for another message.
pub fn reconcile(
    conn: &rusqlite::Connection,
    listed: &[MessageInfo],
    body: &str,
    since_ms: i64,
) -> Result<Option<MessageInfo>, StoreError> {
    for m in listed {
        let created = m
            .date_created
            .as_deref()
            .and_then(client::parse_rfc2822)
            .map(Timestamp::unix_millis);
        if m.body.as_deref() != Some(body) || created.is_none_or(|t| t < since_ms) {
            continue;
        }
        if messages::find_by_sid(conn, &m.sid)?.is_none() {
            return Ok(Some(m.clone()));
        }
    }
    Ok(None)
}

fn done_with_sid(message_id: i64, info: MessageInfo, now: Timestamp) -> Outcome {
    Outcome::Done(Some(Box::new(move |c| {
        messages::set_sid(c, message_id, &info.sid, &info.status, now)
    })))
}

fn retry(error: String) -> Outcome {
    Outcome::Retry {
        error,
        retry_after: None,
        unknown: false,
    }
}

/// Transient errors retry; rejected credentials retry too (an admin fixes
/// them and the alert tells them to); the rest cannot succeed.
fn from_error(e: TwilioError) -> Outcome {
    if e.is_transient() || matches!(e, TwilioError::Unauthorized { .. }) {
        Outcome::Retry {
            retry_after: e.retry_after(),
            unknown: e.outcome_unknown(),
            error: e.to_string(),
        }
    } else {
        Outcome::Failed(e.to_string())
    }
}

/// A failed download: gone at Twilio (404) or refused by us (foreign URL,
/// too large) will not change; the rest is decided by [`from_error`].
fn download_error(e: TwilioError) -> Outcome {
    match e {
        TwilioError::NotFound { .. } => Outcome::Failed(format!("Twilio no longer has it: {e}")),
        TwilioError::Refused(_) => Outcome::Failed(e.to_string()),
        e => from_error(e),
    }
}

/// Stores a download on a blocking thread. A full or failing disk is worth
/// retrying (space may be freed), unlike what Twilio refuses.
async fn store_file(path: PathBuf, bytes: Vec<u8>) -> Result<(), Outcome> {
    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        .map_err(|e| retry(format!("cannot store the file: {e}")))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// crash leaves either nothing or the whole file (downloads are redone).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
