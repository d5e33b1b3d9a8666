//! The outbox worker: one job at a time, oldest due first.
//!
//! [`Worker::run_due`] does everything that is due now and returns; tests
//! drive it step by step with a manual clock. [`Worker::run`] is the
//! production loop around it: after a pass it sleeps until the earliest due
//! time or until [`super::Outbox::wake`] (an enqueue), so an idle appliance
//! neither polls nor writes.

use std::future::Future;
use std::time::Duration;

use super::backoff;
use super::policy::AlertOn;
use super::store::{self, Claimed};
use super::{Executor, Job, Outbox, Outcome};
use crate::constants::TWILIO_ALERT_AFTER_FAILURES;
use crate::events::{AlertChange, Event, MessageChange};
use crate::store::{alerts, StoreError};

/// Longest sleep between passes when something is scheduled far ahead (the
/// wall clock may jump, e.g. NTP after boot on a Pi without an RTC).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs jobs with an [`Executor`].
#[derive(Debug)]
pub struct Worker<E> {
    outbox: Outbox,
    executor: E,
}

/// The alert key of job `id`.
pub fn alert_key(id: i64) -> String {
    format!("outbox:{id}")
}

impl<E: Executor> Worker<E> {
    /// A worker for `outbox`'s jobs.
    pub fn new(outbox: Outbox, executor: E) -> Worker<E> {
        Worker { outbox, executor }
    }

    /// The executor (tests inspect theirs).
    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// Runs every job due now; returns how many attempts were made.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        loop {
            let now = self.outbox.clock.now();
            let claimed = self.outbox.db.call(move |c| store::claim(c, now)).await?;
            match claimed {
                None => return Ok(n),
                Some(Claimed::Unreadable { id, error }) => {
                    tracing::error!(job = id, %error, "outbox job cannot be read by this version; marked failed");
                    self.raise(alert_key(id), format!("job {id} cannot be read: {error}"))
                        .await?;
                }
                Some(Claimed::Job(job)) => {
                    n += 1;
                    let outcome = self.executor.execute(&job).await;
                    self.record(&job, outcome).await?;
                }
            }
        }
    }

    /// Raises (or keeps open) the alert `key` and announces it when new;
    /// answers the new alert's id, `None` if it was already open.
    async fn raise(&self, key: String, message: String) -> Result<Option<i64>, StoreError> {
        let now = self.outbox.clock.now();
        let raised = self
            .outbox
            .db
            .call(move |c| alerts::raise_id(c, &key, &message, now))
            .await?;
        self.announce(raised, AlertChange::Raised);
        Ok(raised)
    }

    fn announce(&self, alert: Option<i64>, change: AlertChange) {
        if let Some(alert_id) = alert {
            self.outbox
                .events
                .publish(Event::Alert { alert_id, change });
        }
    }

    async fn record(&self, job: &Job, outcome: Outcome) -> Result<(), StoreError> {
        let now = self.outbox.clock.now();
        let (id, kind) = (job.id, job.task.kind());
        match outcome {
            Outcome::Done(commit) => {
                let cleared = self
                    .outbox
                    .db
                    .call(move |c| {
                        let tx = c.transaction()?;
                        if let Some(commit) = commit {
                            commit(&tx)?;
                        }
                        store::complete(&tx, id, now)?;
                        let cleared = alerts::clear_id(&tx, &alert_key(id), now)?;
                        tx.commit()?;
                        Ok::<_, crate::store::StoreError>(cleared)
                    })
                    .await?;
                self.announce(cleared, AlertChange::Dismissed);
                if cleared.is_some() {
                    tracing::info!(job = id, kind, "outbox job succeeded; alert cleared");
                } else {
                    tracing::debug!(job = id, kind, "outbox job done");
                }
            }
            Outcome::Retry {
                error,
                retry_after,
                unknown,
            } => {
                let (failures_before, created_at) = self
                    .outbox
                    .db
                    .call(move |c| {
                        Ok::<_, crate::store::StoreError>(c.query_row(
                            "SELECT failures, created_at FROM outbox WHERE id = ?1",
                            [id],
                            |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)),
                        )?)
                    })
                    .await?;
                let policy = job.task.retry_policy();
                let age = crate::clock::Timestamp::parse_rfc3339(&created_at)
                    .map(|t| {
                        Duration::from_millis(
                            u64::try_from(now.unix_millis() - t.unix_millis()).unwrap_or(0),
                        )
                    })
                    .unwrap_or(Duration::ZERO);
                let backoff = backoff::next_delay(failures_before + 1, retry_after);
                let Some(mut delay) = policy.next(failures_before + 1, age, backoff) else {
                    tracing::warn!(job = id, kind, failures = failures_before + 1, %error, "outbox job given up: its retries are used up");
                    let why = format!(
                        "given up after {} failed attempts; last error: {error}",
                        failures_before + 1
                    );
                    return self.give_up(job, why).await;
                };
                if unknown {
                    // Let a request that may still be in flight end before
                    // the job reconciles.
                    delay = delay.max(job.task.reconcile_after());
                }
                let err = error.clone();
                let failures = self
                    .outbox
                    .db
                    .call(move |c| store::fail(c, id, &err, delay, unknown, now))
                    .await?;
                tracing::warn!(job = id, kind, failures, retry_in_ms = delay.as_millis() as u64, %error, "outbox job failed; will retry");
                if failures >= TWILIO_ALERT_AFTER_FAILURES && policy.alert == AlertOn::Failures {
                    let message = format!(
                        "{kind} job {id} failed {failures} times in a row; retrying. Last error: {error}"
                    );
                    let new = self.raise(alert_key(id), message.clone()).await?;
                    if new.is_some() {
                        tracing::error!(job = id, kind, failures, %error, "ALERT: {message}");
                    }
                }
            }
            Outcome::Failed(error) => {
                tracing::error!(job = id, kind, %error, "outbox job failed permanently");
                self.give_up(job, error).await?;
            }
        }
        if let super::Task::SendMessage { message_id } = job.task {
            self.announce_message(message_id).await;
        }
        Ok(())
    }

    /// Marks `job` failed for good (with the executor's abandon commit in
    /// the same transaction) and raises the alert its policy names.
    async fn give_up(&self, job: &Job, error: String) -> Result<(), StoreError> {
        let now = self.outbox.clock.now();
        let (id, kind) = (job.id, job.task.kind());
        let commit = self.executor.abandon(job, &error);
        let err = error.clone();
        self.outbox
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                if let Some(commit) = commit {
                    commit(&tx)?;
                }
                store::fail_permanently(&tx, id, &err, now)?;
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .await?;
        match job.task.retry_policy().alert {
            AlertOn::Failures => {
                tracing::error!(job = id, kind, %error, "ALERT: outbox job failed permanently");
                self.raise(
                    alert_key(id),
                    format!("{kind} job {id} failed and will not be retried: {error}"),
                )
                .await?;
            }
            AlertOn::GiveUp(key) => {
                let message = match &job.task {
                    super::Task::SendEmail { notification_id } => {
                        format!(
                            "An e-mail notification ({notification_id}) could not be sent: {error}"
                        )
                    }
                    super::Task::PostWebhook { notification_id } => {
                        format!(
                            "A webhook event ({notification_id}) could not be delivered: {error}"
                        )
                    }
                    _ => format!("{kind} job {id} was given up: {error}"),
                };
                tracing::error!(job = id, kind, %error, "ALERT: {message}");
                self.raise(key, message).await?;
            }
            AlertOn::Silent => {}
        }
        Ok(())
    }

    /// A send attempt may have changed a message's status (queued, failed):
    /// the live updates say so.
    async fn announce_message(&self, message_id: i64) {
        let found = self
            .outbox
            .db
            .read(move |c| crate::store::messages::get(c, message_id).map(|m| (m.did_id, m.status)))
            .await;
        if let Ok((did_id, status)) = found {
            self.outbox.events.publish(Event::Message {
                message_id,
                did_id,
                change: MessageChange::Status,
                status: Some(status),
            });
        }
    }

    /// Runs until `stopped` resolves. A job in progress at shutdown is
    /// abandoned: it stays `attempting` and is resumed at the next start.
    pub async fn run(self, stopped: impl Future<Output = ()>) {
        tokio::pin!(stopped);
        let wake = self.outbox.notified();
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                r = self.run_due() => if let Err(e) = r {
                    tracing::error!(error = %e, "outbox pass failed");
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                },
            }
            let next = match self.outbox.db.call(store::next_due_ref).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: cannot read the next due time");
                    Some(self.outbox.clock.now().plus(MAX_SLEEP).unix_millis())
                }
            };
            let now = self.outbox.clock.now().unix_millis();
            tokio::select! {
                _ = &mut stopped => return,
                _ = wake.notified() => {}
                _ = async {
                    match next {
                        Some(due) => {
                            let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                            tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLEEP)).await
                        }
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::clock::{ManualClock, SharedClock, Timestamp};
    use crate::outbox::Task;
    use crate::store::{self, Db};

    /// Fails the first `fail` attempts, then succeeds.
    struct Flaky {
        fail: u32,
        calls: AtomicU32,
    }

    impl Executor for Flaky {
        async fn execute(&self, _job: &Job) -> Outcome {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Outcome::Retry {
                    error: "HTTP 500".into(),
                    retry_after: None,
                    unknown: false,
                }
            } else {
                Outcome::Done(None)
            }
        }
    }

    fn setup(fail: u32) -> (Worker<Flaky>, Arc<ManualClock>, Db) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_795_255_200_000,
        )));
        let shared: SharedClock = clock.clone();
        let (db, thread) = Db::start(store::open_in_memory().expect("db"));
        std::mem::forget(thread);
        let outbox = Outbox::new(db.clone(), shared);
        let worker = Worker::new(
            outbox,
            Flaky {
                fail,
                calls: AtomicU32::new(0),
            },
        );
        (worker, clock, db)
    }

    async fn open_alerts(db: &Db) -> usize {
        db.call(|c| alerts::open(c)).await.expect("alerts").len()
    }

    #[tokio::test]
    async fn backoff_alert_after_three_failures_and_clear_on_success() {
        let (worker, clock, db) = setup(4);
        worker
            .outbox
            .enqueue(Task::DeleteRecording {
                recording_sid: "RE1".into(),
            })
            .await
            .expect("enqueue");
        let mut attempts_at = Vec::new();
        for second in 0..120 {
            if worker.run_due().await.expect("pass") > 0 {
                attempts_at.push(second);
                let failed = attempts_at.len().min(4);
                assert_eq!(
                    open_alerts(&db).await,
                    usize::from((3..5).contains(&failed) && attempts_at.len() < 5),
                    "alert open after 3 consecutive failures until the success: {attempts_at:?}"
                );
            }
            clock.advance(Duration::from_secs(1));
        }
        // 1 s, 2 s, 4 s, 8 s apart (±20 %), then success.
        assert_eq!(attempts_at.len(), 5, "{attempts_at:?}");
        let gaps: Vec<i64> = attempts_at.windows(2).map(|w| w[1] - w[0]).collect();
        for (gap, want) in gaps.iter().zip([1, 2, 4, 8]) {
            assert!(
                (*gap as f64) >= (want as f64) * 0.8 - 0.001
                    && (*gap as f64) <= (want as f64) * 1.2 + 1.0,
                "{gaps:?}"
            );
        }
        assert_eq!(worker.executor().calls.load(Ordering::SeqCst), 5);
        assert_eq!(open_alerts(&db).await, 0, "cleared by the success");
        let raised: i64 = db
            .call(|c| {
                Ok::<_, crate::store::StoreError>(c.query_row(
                    "SELECT count(*) FROM alerts",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .expect("count");
        assert_eq!(raised, 1, "raised once, after the third failure");
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_sleeps_without_polling_and_wakes_on_enqueue() {
        let (worker, _clock, db) = setup(0);
        let outbox = worker.outbox.clone();
        let calls = Arc::new(AtomicU32::new(0));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async move {
            let _ = stop_rx.await;
        }));
        // Idle for an hour of (paused) time: no pass, nothing written.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        outbox
            .enqueue(Task::DeleteRecording {
                recording_sid: "RE9".into(),
            })
            .await
            .expect("enqueue");
        for _ in 0..100 {
            let done: i64 = db
                .call(|c| {
                    Ok::<_, crate::store::StoreError>(c.query_row(
                        "SELECT count(*) FROM outbox WHERE state = 'done'",
                        [],
                        |r| r.get(0),
                    )?)
                })
                .await
                .expect("count");
            if done == 1 {
                calls.store(1, Ordering::SeqCst);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the enqueue woke the worker"
        );
        let _ = stop_tx.send(());
        task.await.expect("worker ends");
    }
}
