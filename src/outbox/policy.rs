//! How long each kind of job is retried, and who hears when it is given up.
//!
//! Twilio jobs are retried forever on the [`super::backoff`] schedule (a
//! message or a recording must not be lost because Twilio was down for a
//! day) with an admin alert after a few failures. Notifications are
//! different: a voicemail e-mail that arrives a day late is worse than an
//! alert saying it was not sent, so each channel has the seeds' P0 limits:
//!
//! | Job | Retries | Given up | Alert |
//! |---|---|---|---|
//! | e-mail | +5 min, +15 min, +40 min (4 attempts within an hour) | after the 4th failure, or at once on a permanent error | `notify:email:<notification id>` |
//! | push | +1 min, +5 min | after the 3rd failure | none (silent) |
//! | webhook | the usual backoff | 24 h after the job was created, or at once on 410 | `notify:webhook:<notification id>` |

use std::time::Duration;

use super::Task;

/// When a job stops being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never: the backoff schedule forever.
    Never,
    /// After these delays are used up: the n-th failure waits `delays[n-1]`;
    /// the failure after the last one gives up.
    Schedule(&'static [Duration]),
    /// Backoff, until this long after the job was created.
    Within(Duration),
}

/// Which alert a job raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOn {
    /// `outbox:<job id>` after a few consecutive failures and on a
    /// permanent failure, cleared on success (Twilio jobs).
    Failures,
    /// Only when given up, with this key (cleared by nothing: the admin reads it).
    GiveUp(String),
    /// Never.
    Silent,
}

/// A job kind's retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// When retrying stops.
    pub limit: Limit,
    /// Who hears of failures.
    pub alert: AlertOn,
}

/// E-mail: three retries within one hour.
pub const EMAIL_RETRIES: &[Duration] = &[
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(40 * 60),
];

/// Push: two retries, so three attempts in all.
pub const PUSH_RETRIES: &[Duration] = &[Duration::from_secs(60), Duration::from_secs(5 * 60)];

/// Webhooks give up this long after the event.
pub const WEBHOOK_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The alert key of an abandoned e-mail notification.
pub fn email_alert_key(notification_id: i64) -> String {
    format!("notify:email:{notification_id}")
}

/// The alert key of an abandoned webhook delivery.
pub fn webhook_alert_key(notification_id: i64) -> String {
    format!("notify:webhook:{notification_id}")
}

impl Task {
    /// This job's retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            Task::SendEmail { notification_id } => RetryPolicy {
                limit: Limit::Schedule(EMAIL_RETRIES),
                alert: AlertOn::GiveUp(email_alert_key(*notification_id)),
            },
            Task::SendPush { .. } => RetryPolicy {
                limit: Limit::Schedule(PUSH_RETRIES),
                alert: AlertOn::Silent,
            },
            Task::PostWebhook { notification_id } => RetryPolicy {
                limit: Limit::Within(WEBHOOK_GIVE_UP_AFTER),
                alert: AlertOn::GiveUp(webhook_alert_key(*notification_id)),
            },
            _ => RetryPolicy {
                limit: Limit::Never,
                alert: AlertOn::Failures,
            },
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `failures` consecutive
    /// failures (this one included) of a job created `age` ago, or `None`
    /// to give up. `backoff` is the usual schedule's delay.
    pub fn next(&self, failures: u32, age: Duration, backoff: Duration) -> Option<Duration> {
        match self.limit {
            Limit::Never => Some(backoff),
            Limit::Schedule(delays) => {
                let i = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
                delays.get(i).copied()
            }
            Limit::Within(window) => (age.saturating_add(backoff) < window).then_some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn email_retries_three_times_within_the_hour_then_gives_up() {
        let p = Task::SendEmail { notification_id: 7 }.retry_policy();
        let delays: Vec<Option<Duration>> =
            (1..=4).map(|n| p.next(n, Duration::ZERO, MIN)).collect();
        assert_eq!(
            delays,
            vec![Some(5 * MIN), Some(15 * MIN), Some(40 * MIN), None]
        );
        assert_eq!(
            EMAIL_RETRIES.iter().sum::<Duration>(),
            60 * MIN,
            "within one hour"
        );
        assert_eq!(p.alert, AlertOn::GiveUp("notify:email:7".into()));
    }

    #[test]
    fn push_is_silent_after_three_attempts() {
        let p = Task::SendPush { notification_id: 1 }.retry_policy();
        assert!(p.next(2, Duration::ZERO, MIN).is_some());
        assert_eq!(p.next(3, Duration::ZERO, MIN), None);
        assert_eq!(p.alert, AlertOn::Silent);
    }

    #[test]
    fn webhooks_back_off_for_a_day_and_twilio_forever() {
        let p = Task::PostWebhook { notification_id: 3 }.retry_policy();
        assert_eq!(p.next(50, Duration::from_secs(3600), MIN), Some(MIN));
        assert_eq!(p.next(50, WEBHOOK_GIVE_UP_AFTER - MIN / 2, MIN), None);
        let t = Task::DeleteRecording {
            recording_sid: "RE1".into(),
        }
        .retry_policy();
        assert_eq!(t.next(1000, Duration::from_secs(864_000), MIN), Some(MIN));
        assert_eq!(t.alert, AlertOn::Failures);
    }
}
