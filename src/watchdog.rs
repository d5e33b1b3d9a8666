//! Heartbeats from the core loops, turned into systemd watchdog pings.
//!
//! systemd restarts the service when `WATCHDOG=1` stops arriving. A bare timer
//! would keep pinging while the SIP or HTTP loop is wedged, so instead each
//! core loop owns a [`Heartbeat`] it beats while it is making progress, and
//! the supervisor pings only while every heartbeat is fresh. A stalled loop
//! therefore stops the pings, and systemd restarts the appliance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A message to the service manager (`sd_notify(3)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1`: listeners are bound and the database is migrated.
    Ready,
    /// `STATUS=…`: one human-readable line.
    Status(String),
    /// `WATCHDOG=1`: every core loop made progress recently.
    Watchdog,
    /// `STOPPING=1`: shutdown has begun.
    Stopping,
}

/// Where notices go: systemd's socket in production, a recorder in tests.
pub trait Notifier: Send + Sync + 'static {
    /// Sends one notice; failures are logged, never fatal.
    fn notify(&self, notice: Notice);
}

/// The real notifier, speaking to `$NOTIFY_SOCKET` (a no-op without it).
#[derive(Debug, Default)]
pub struct SdNotifier;

impl Notifier for SdNotifier {
    fn notify(&self, notice: Notice) {
        use sd_notify::NotifyState;
        let result = match &notice {
            Notice::Ready => sd_notify::notify(&[NotifyState::Ready]),
            Notice::Status(s) => sd_notify::notify(&[NotifyState::Status(s)]),
            Notice::Watchdog => sd_notify::notify(&[NotifyState::Watchdog]),
            Notice::Stopping => sd_notify::notify(&[NotifyState::Stopping]),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, ?notice, "sd_notify failed");
        }
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
pub fn interval_from_env() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// The set of core-loop heartbeats.
#[derive(Debug, Clone)]
pub struct Heartbeats {
    origin: Instant,
    beats: Arc<Mutex<Vec<Heartbeat>>>,
}

/// One core loop's progress marker; cloning shares it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    name: &'static str,
    origin: Instant,
    last_millis: Arc<AtomicU64>,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeats {
    /// An empty set; time is measured from now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            beats: Arc::default(),
        }
    }

    /// Registers a core loop. It counts as fresh from now on.
    pub fn register(&self, name: &'static str) -> Heartbeat {
        let hb = Heartbeat {
            name,
            origin: self.origin,
            last_millis: Arc::default(),
        };
        hb.beat();
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hb.clone());
        hb
    }

    /// The loops whose last beat is older than `max_age`, with their ages.
    pub fn stale(&self, max_age: Duration) -> Vec<(&'static str, Duration)> {
        let beats = self.beats.lock().unwrap_or_else(|p| p.into_inner());
        beats
            .iter()
            .map(|b| (b.name, b.age()))
            .filter(|(_, age)| *age > max_age)
            .collect()
    }

    /// Every loop and the age of its last beat, for the readiness report.
    pub fn ages(&self) -> Vec<(&'static str, Duration)> {
        let beats = self.beats.lock().unwrap_or_else(|p| p.into_inner());
        beats.iter().map(|b| (b.name, b.age())).collect()
    }
}

impl Heartbeat {
    /// Records progress now.
    pub fn beat(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_millis.load(Ordering::Relaxed)))
    }
}

/// Pings the watchdog every `interval / 2` while no heartbeat is older than
/// `stale_after`; runs until `shutdown` resolves. `stale_after` should be a
/// few heartbeat periods and well under `interval` (systemd's WatchdogSec).
pub async fn supervise(
    heartbeats: Heartbeats,
    interval: Duration,
    stale_after: Duration,
    notifier: Arc<dyn Notifier>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let period = interval / 2;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut withholding = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let stale = heartbeats.stale(stale_after);
        if stale.is_empty() {
            if withholding {
                tracing::info!("all core loops are making progress again; watchdog pings resumed");
                withholding = false;
            }
            notifier.notify(Notice::Watchdog);
        } else if !withholding {
            let list: Vec<String> = stale
                .iter()
                .map(|(n, age)| format!("{n} ({} ms)", age.as_millis()))
                .collect();
            tracing::error!(stalled = %list.join(", "), "a core loop stopped making progress; withholding watchdog pings");
            notifier.notify(Notice::Status(format!("stalled: {}", list.join(", "))));
            withholding = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Notice>>);
    impl Notifier for Recorder {
        fn notify(&self, n: Notice) {
            self.0.lock().expect("lock").push(n);
        }
    }
    impl Recorder {
        fn pings(&self) -> usize {
            self.0
                .lock()
                .expect("lock")
                .iter()
                .filter(|n| **n == Notice::Watchdog)
                .count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn pings_only_while_every_loop_beats() {
        let hbs = Heartbeats::new();
        let http = hbs.register("http");
        let db = hbs.register("db");
        let rec = Arc::new(Recorder::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(supervise(
            hbs.clone(),
            Duration::from_secs(2),
            Duration::from_secs(1),
            rec.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        // Both loops beat every 500 ms for 3 s: a ping each second.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            http.beat();
            db.beat();
        }
        let healthy = rec.pings();
        assert!(healthy >= 3, "pings while healthy: {healthy}");
        // The db loop stalls: after its beat ages past 1 s, no more pings.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            http.beat();
        }
        let stalled = rec.pings();
        assert!(
            stalled <= healthy + 2,
            "at most the pings before the beat went stale: {healthy} -> {stalled}"
        );
        assert_eq!(
            hbs.stale(Duration::from_secs(1))
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            ["db"]
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(rec.pings(), stalled, "no ping while stalled");
        assert!(rec
            .0
            .lock()
            .expect("lock")
            .iter()
            .any(|n| matches!(n, Notice::Status(s) if s.contains("db"))));
        // It recovers.
        for _ in 0..4 {
            http.beat();
            db.beat();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(rec.pings() > stalled);
        let _ = stop_tx.send(());
        task.await.expect("supervisor ends on shutdown");
    }
}
