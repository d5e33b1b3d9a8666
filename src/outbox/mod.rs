//! The durable outbox: every side effect towards the outside world (send an
//! SMS, download or delete a recording or MMS media, point a number at the
//! appliance) is a row in SQLite before it is attempted, and a worker
//! attempts it until it succeeds, with backoff, surviving outages and
//! restarts. GoSIP kept its retry queue in memory and lost it on restart.
//!
//! # Pieces
//!
//! * [`Task`]: what to do, one enum variant per kind of job (add a variant
//!   for a new kind; the payload is its JSON).
//! * [`store`]: the `outbox` table.
//! * [`Executor`]: how a job is carried out; the worker is generic over it
//!   (the Twilio executor is `twilio::jobs`; tests plug in their own).
//! * [`worker::Worker`]: claims due jobs one at a time, records each attempt
//!   before making it, applies the [`backoff`] schedule (1 s doubling to
//!   30 s, then every 5 minutes, with jitter; `Retry-After` honoured), raises
//!   an admin alert after [`crate::constants::TWILIO_ALERT_AFTER_FAILURES`] consecutive
//!   failures and clears it on success. It sleeps until the next due time or
//!   an enqueue ([`Outbox::wake`]): no polling, no writes at idle.
//!
//! # Exactly once across kill -9
//!
//! A job moves `pending → attempting → done` (or back to `pending` with a
//! later due time after a failure; `failed` for permanent errors).
//!
//! 1. The fact and its job are written in one transaction (a reply and its
//!    `send_message` job; a voicemail and its `download_recording` job). A
//!    crash before that commit loses nothing that was acknowledged: the
//!    webhook or API call had not been answered yet.
//! 2. Before each attempt the worker commits `state = 'attempting'` and
//!    `attempt_started_ms`, with `synchronous=FULL` for that one commit (so
//!    not even a power cut forgets that a request may have left).
//! 3. The executor's success is committed in one transaction with
//!    `state = 'done'` (the MessageSid on the message row and the job done).
//!
//! The window that remains is between the request leaving (2) and its answer
//! being recorded (3): Twilio may have acted while we crashed. A job found
//! `attempting` is therefore *resumed*, not retried blindly: [`Job::resumed`]
//! tells the executor the previous attempt's outcome is unknown, and the job
//! becomes due only [`OUTBOX_RECONCILE_AFTER`] after that attempt started
//! (longer than a request can take, so the lost request is no longer in
//! flight). For idempotent jobs (downloads to a temporary file then rename,
//! deletes where 404 means done, number updates that set the same URLs)
//! resuming is simply doing it again. Sending a message is not idempotent
//! and Twilio's Messages API has no idempotency key, so the executor first
//! reconciles: it lists the messages from our number to the recipient and
//! takes one created after the attempt started, with the same body, whose
//! SID we have not recorded for another message, as the one we sent; only if
//! there is none does it send. Independently, every message is sent with a
//! `StatusCallback` URL naming its outbox job, so Twilio's first status
//! callback also records a SID that the crash lost. A timeout on the send
//! itself is treated like a crash (outcome unknown → reconcile first);
//! a refused connection or an error status means Twilio did not create it.
//!
//! What is left: Twilio accepted the request but its message is not yet
//! listed [`OUTBOX_RECONCILE_AFTER`] later (Twilio creates the resource
//! before answering, so this needs Twilio itself to misbehave), or two jobs
//! with the same text to the same number both in their unknown window at
//! once (the worker runs one job at a time, so only one can be).

pub mod backoff;
pub mod policy;
pub mod store;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::{SharedClock, Timestamp};
use crate::constants::OUTBOX_RECONCILE_AFTER;
use crate::store::{Db, StoreError};

/// One kind of job and its parameters. Stored as JSON tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Send the outbound message row `message_id` through Twilio.
    SendMessage {
        /// The `messages` row (its from, to, body and media).
        message_id: i64,
    },
    /// Fetch the status of an outbound message from Twilio (status sync).
    FetchMessage {
        /// The `messages` row; it has a MessageSid.
        message_id: i64,
    },
    /// Download a voicemail's audio into the data dir.
    DownloadRecording {
        /// The `voicemails` row.
        voicemail_id: i64,
        /// Twilio's RecordingSid.
        recording_sid: String,
        /// Twilio's `RecordingUrl` (without extension).
        url: String,
    },
    /// Delete a recording at Twilio (privacy setting, or a discarded one).
    DeleteRecording {
        /// Twilio's RecordingSid.
        recording_sid: String,
    },
    /// Download one MMS media item into the data dir.
    DownloadMedia {
        /// The `messages` row.
        message_id: i64,
        /// Its position in the message's `media` array.
        index: usize,
        /// Twilio's `MediaUrl{N}`.
        url: String,
    },
    /// Delete one MMS media item at Twilio (privacy setting).
    DeleteMedia {
        /// Twilio's `MediaUrl{N}` (the Media resource).
        url: String,
    },
    /// Point a Twilio number's voice, SMS and status URLs at the appliance.
    UpdateNumber {
        /// The IncomingPhoneNumber SID (`PN…`).
        number_sid: String,
        /// Its new `VoiceUrl`.
        voice_url: String,
        /// Its new `SmsUrl`.
        sms_url: String,
        /// Its new `StatusCallback`.
        status_callback: String,
    },
    /// Deliver notification `notification_id` by e-mail ([`crate::notify`]).
    SendEmail {
        /// The `notifications` row.
        notification_id: i64,
    },
    /// Deliver notification `notification_id` as a Gotify push.
    SendPush {
        /// The `notifications` row.
        notification_id: i64,
    },
    /// Deliver notification `notification_id` to its event webhook.
    PostWebhook {
        /// The `notifications` row.
        notification_id: i64,
    },
}

impl Task {
    /// The `kind` tag, as stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::SendMessage { .. } => "send_message",
            Task::FetchMessage { .. } => "fetch_message",
            Task::DownloadRecording { .. } => "download_recording",
            Task::DeleteRecording { .. } => "delete_recording",
            Task::DownloadMedia { .. } => "download_media",
            Task::DeleteMedia { .. } => "delete_media",
            Task::UpdateNumber { .. } => "update_number",
            Task::SendEmail { .. } => "send_email",
            Task::SendPush { .. } => "send_push",
            Task::PostWebhook { .. } => "post_webhook",
        }
    }

    /// How long after an attempt started a resumed job waits before
    /// reconciling: only non-idempotent jobs need to let a lost request
    /// finish first.
    pub fn reconcile_after(&self) -> Duration {
        match self {
            Task::SendMessage { .. } => OUTBOX_RECONCILE_AFTER,
            _ => Duration::ZERO,
        }
    }
}

/// A claimed job, as the executor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Row id (also named in message status callbacks).
    pub id: i64,
    /// What to do.
    pub task: Task,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The previous attempt's outcome is unknown (the process died, or the
    /// request timed out, after it may have reached the other side): a
    /// non-idempotent job must reconcile before acting again.
    pub resumed: bool,
    /// When the previous, unknown attempt started (if `resumed`).
    pub previous_attempt: Option<Timestamp>,
    /// When this attempt started.
    pub started: Timestamp,
}

/// Work to commit in the same transaction that marks a job done.
pub type Commit = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// How an attempt ended.
pub enum Outcome {
    /// Done; the commit (if any) runs in the transaction that records it.
    Done(Option<Commit>),
    /// Failed for now; try again later (at `retry_after` if the other side
    /// said so, otherwise on the backoff schedule). `unknown` marks a
    /// failure after which the request may still have been acted upon (a
    /// timeout): the next attempt is a resumed one.
    Retry {
        /// What went wrong (for the log, the API and alerts).
        error: String,
        /// The other side's `Retry-After`.
        retry_after: Option<Duration>,
        /// Whether the request may have been carried out anyway.
        unknown: bool,
    },
    /// Will never succeed (bad input, a 4xx other than 429): stop, alert.
    Failed(String),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Done(c) => write!(f, "Done(commit: {})", c.is_some()),
            Outcome::Retry {
                error,
                retry_after,
                unknown,
            } => write!(f, "Retry({error}, {retry_after:?}, unknown: {unknown})"),
            Outcome::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

/// Carries out jobs; the worker is generic over it.
pub trait Executor: Send + Sync + 'static {
    /// Attempts `job` once. Must not block the reactor (blocking I/O goes to
    /// `spawn_blocking`), and must not panic on bad data (answer `Failed`).
    fn execute(&self, job: &Job) -> impl Future<Output = Outcome> + Send;

    /// Work to commit with the job's `failed` mark when it is given up
    /// (its retry policy ran out, or it failed permanently): a notification
    /// records `abandoned`. Nothing by default.
    fn abandon(&self, _job: &Job, _error: &str) -> Option<Commit> {
        None
    }
}

/// A cheap handle to the outbox: enqueue jobs and wake the worker.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    clock: SharedClock,
    wake: Arc<Notify>,
    /// Where the worker's alerts are announced.
    events: crate::events::Events,
}

impl Outbox {
    /// A handle over `db`; the worker built from it shares its wake-up.
    pub fn new(db: Db, clock: SharedClock) -> Outbox {
        Outbox {
            db,
            clock,
            wake: Arc::new(Notify::new()),
            events: crate::events::Events::new(),
        }
    }

    /// Announces the worker's alerts on `events` (the application's channel).
    pub fn with_events(mut self, events: crate::events::Events) -> Outbox {
        self.events = events;
        self
    }

    /// Adds a job inside the caller's transaction (so the fact and its job
    /// commit together); call [`Outbox::wake`] after the commit.
    pub fn enqueue_in(conn: &Connection, task: &Task, now: Timestamp) -> Result<i64, StoreError> {
        store::enqueue(conn, task, now)
    }

    /// Adds a job on its own and wakes the worker.
    pub async fn enqueue(&self, task: Task) -> Result<i64, StoreError> {
        let now = self.clock.now();
        let id = self.db.call(move |c| store::enqueue(c, &task, now)).await?;
        self.wake();
        Ok(id)
    }

    /// Tells the worker to look for due jobs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn notified(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
