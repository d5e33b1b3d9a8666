//! Things that happened, for whoever wants to react: the web UI's live
//! updates (`GET /api/events`), MWI lighting the phones' lamps, notifications
//! (later). A `tokio::sync::broadcast` channel: publishing never blocks and
//! never fails when nobody listens; a slow subscriber misses old events
//! (`Lagged`) and re-reads the state from the database.
//!
//! Every event gets an id that increases within a run and across restarts
//! (the first id of a run is derived from its start time), and the recent
//! ones are kept in a bounded backlog so that a client that reconnects with
//! the last id it saw gets what it missed, or learns that it must resync.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::constants::{EVENTS_BACKLOG, MAX_EVENT_STREAMS};

/// How many events a subscriber may fall behind before it lags.
const CAPACITY: usize = 256;

/// How long [`Events::directory_changed`] waits for the reload before it
/// gives up (and logs): a stuck reload must not hang an admin's request.
const DIRECTORY_RELOAD_WAIT: Duration = Duration::from_secs(10);

/// What happened to a voicemail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VoicemailChange {
    /// Stored (its audio may still be downloading).
    Created,
    /// Its transcript arrived.
    Transcribed,
    /// Marked read or unread (MWI counts change).
    Read,
    /// Deleted.
    Deleted,
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageChange {
    /// An SMS/MMS arrived.
    Received,
    /// Its delivery status changed (or it was queued for sending).
    Status,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertChange {
    /// Opened.
    Raised,
    /// Closed, by an admin or because its cause went away.
    Dismissed,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phone's registered contacts changed.
    Registration {
        /// The phone.
        device_id: i64,
        /// Whether it has any contact left.
        registered: bool,
    },
    /// A call started, changed state (answered, held, resumed) or ended.
    Call {
        /// Its id in `GET /api/calls`.
        call_id: u64,
        /// `ringing`, `answered`, `held` or `ended`.
        state: &'static str,
        /// Whether it is over.
        ended: bool,
        /// The household number involved, if any (who may see it).
        did_id: Option<i64>,
        /// The phones involved: ringing, answering or calling.
        device_ids: Vec<i64>,
    },
    /// A voicemail changed.
    Voicemail {
        /// The `voicemails` row.
        voicemail_id: Option<i64>,
        /// Its mailbox (the number called).
        did_id: i64,
        /// What happened.
        change: VoicemailChange,
    },
    /// A message arrived or its status changed.
    Message {
        /// The `messages` row.
        message_id: i64,
        /// The household number it belongs to.
        did_id: i64,
        /// What happened.
        change: MessageChange,
        /// The new status, if it changed.
        status: Option<String>,
    },
    /// An admin alert was raised or closed.
    Alert {
        /// The `alerts` row.
        alert_id: i64,
        /// What happened.
        change: AlertChange,
    },
    /// Sessions of this account ended or its rights changed (logout,
    /// password change, role change, deletion); open event streams of the
    /// account re-check their session. Not shown to clients.
    SessionsChanged {
        /// The account.
        user_id: i64,
    },
    /// The server is stopping; event streams end. Not shown to clients.
    Closing,
    /// Phones, numbers, their assignments or the Twilio SIP settings changed
    /// in the database: the SIP endpoint reloads its directory. Published by
    /// [`Events::directory_changed`]; not shown to clients.
    DirectoryChanged {
        /// Increases with every change; the reloader acknowledges the
        /// highest generation its reload covered.
        generation: u64,
    },
    /// A Do-Not-Disturb setting changed (from the API or a phone's feature
    /// code). Shown to admins, to everyone for the household's setting, to
    /// the account for its own, and to a phone's owner for the phone's.
    DndChanged {
        /// `system`, `user` or `device`.
        scope: &'static str,
        /// The account or phone (0 for the household).
        subject_id: i64,
        /// Switched on by hand.
        on: bool,
        /// In effect now (on, or its schedule says so).
        active: bool,
    },
    /// A new certificate from the ACME CA is being served (first issuance or
    /// renewal). Shown to admins.
    CertificateRenewed {
        /// The public name it is for.
        name: String,
        /// When it expires (RFC 3339).
        not_after: String,
    },
    /// The router's public address changed (or was found for the first
    /// time): new calls offer it to Twilio, the DNS name follows it. Shown
    /// to admins.
    PublicAddressChanged {
        /// The new address.
        ip: std::net::IpAddr,
    },
}

impl Event {
    /// Whether clients see this event (the others steer the streams).
    pub fn is_shown(&self) -> bool {
        !matches!(
            self,
            Event::SessionsChanged { .. } | Event::Closing | Event::DirectoryChanged { .. }
        )
    }
}

/// An event with its id.
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    /// Increases with every event.
    pub id: u64,
    /// What happened.
    pub event: Event,
}

/// Where a resuming subscriber starts.
#[derive(Debug)]
pub enum Resume {
    /// These shown events came after the id it named (maybe none).
    Replay(Vec<Arc<Published>>),
    /// Its id is older than the backlog (or from another run): it must
    /// reload everything.
    Gap,
}

#[derive(Debug)]
struct Backlog {
    next_id: u64,
    /// Every id up to this one is gone from `recent`, or was never in it.
    floor: u64,
    recent: VecDeque<Arc<Published>>,
}

#[derive(Debug)]
struct Shared {
    tx: broadcast::Sender<Arc<Published>>,
    backlog: Mutex<Backlog>,
    closing: AtomicBool,
    streams: AtomicUsize,
    directory: DirectorySync,
}

/// The bookkeeping that lets a publisher of `DirectoryChanged` wait until
/// the reload covering its change took effect (so an admin who changes a
/// phone and then registers it meets the new credentials).
#[derive(Debug)]
struct DirectorySync {
    /// The generation of the newest change.
    requested: AtomicU64,
    /// The newest generation a finished reload covered.
    applied: watch::Sender<u64>,
    /// How many [`DirectoryReloader`]s are attached (0 or 1 in practice);
    /// with none, nobody waits.
    reloaders: AtomicUsize,
}

/// The publisher; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    shared: Arc<Shared>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

/// A place among the open event streams; given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    shared: Arc<Shared>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.shared.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Events {
    /// A channel with no subscribers yet. Its first id is the run's start
    /// time in milliseconds times 1024, so ids also increase across restarts
    /// (a run would need a million events a second to catch up with the next).
    pub fn new() -> Events {
        use crate::clock::Clock as _;
        let now = crate::clock::SystemClock.now().unix_millis().max(0) as u64;
        Events::starting_at(now.saturating_mul(1024).max(1))
    }

    /// A channel whose first event gets id `first` (tests).
    pub fn starting_at(first: u64) -> Events {
        Events {
            shared: Arc::new(Shared {
                tx: broadcast::channel(CAPACITY).0,
                backlog: Mutex::new(Backlog {
                    next_id: first,
                    floor: first - 1,
                    recent: VecDeque::with_capacity(EVENTS_BACKLOG),
                }),
                closing: AtomicBool::new(false),
                streams: AtomicUsize::new(0),
                directory: DirectorySync {
                    requested: AtomicU64::new(0),
                    applied: watch::channel(0).0,
                    reloaders: AtomicUsize::new(0),
                },
            }),
        }
    }

    /// Publishes `event` to every current subscriber.
    pub fn publish(&self, event: Event) {
        tracing::debug!(?event, "event");
        let Ok(mut log) = self.shared.backlog.lock() else {
            return;
        };
        let published = Arc::new(Published {
            id: log.next_id,
            event,
        });
        log.next_id += 1;
        if published.event.is_shown() {
            if log.recent.len() == EVENTS_BACKLOG {
                if let Some(old) = log.recent.pop_front() {
                    log.floor = old.id;
                }
            }
            log.recent.push_back(published.clone());
        }
        // Sent under the lock, so a resuming subscriber sees each event
        // exactly once: in its replay or on its receiver.
        let _ = self.shared.tx.send(published);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.shared.tx.subscribe()
    }

    /// A receiver of every event published from now on, and what came after
    /// `last_id` (the `Last-Event-ID` a client sent), if that is known.
    pub fn resume(&self, last_id: Option<u64>) -> (broadcast::Receiver<Arc<Published>>, Resume) {
        let log = self
            .shared
            .backlog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rx = self.shared.tx.subscribe();
        let resume = match last_id {
            None => Resume::Replay(Vec::new()),
            Some(id) if id >= log.floor && id < log.next_id => {
                Resume::Replay(log.recent.iter().filter(|p| p.id > id).cloned().collect())
            }
            Some(_) => Resume::Gap,
        };
        (rx, resume)
    }

    /// A place for one more event stream, unless [`MAX_EVENT_STREAMS`] are
    /// open or the server is closing.
    pub fn open_stream(&self) -> Option<StreamSlot> {
        if self.shared.closing.load(Ordering::Acquire) {
            return None;
        }
        self.shared
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_EVENT_STREAMS).then_some(n + 1)
            })
            .ok()?;
        Some(StreamSlot {
            shared: self.shared.clone(),
        })
    }

    /// How many event streams are open.
    pub fn open_streams(&self) -> usize {
        self.shared.streams.load(Ordering::Acquire)
    }

    /// Whether [`Events::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// The server is stopping: open streams end, new ones are refused.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.publish(Event::Closing);
    }

    /// Publishes [`Event::DirectoryChanged`] for a change already committed
    /// to the database, and returns once an attached [`DirectoryReloader`]
    /// has reloaded from a database that includes it (at once when none is
    /// attached; after [`DIRECTORY_RELOAD_WAIT`] at the latest).
    pub async fn directory_changed(&self) {
        let sync = &self.shared.directory;
        let mut applied = sync.applied.subscribe();
        let generation = sync.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.publish(Event::DirectoryChanged { generation });
        let done =
            applied.wait_for(|&a| a >= generation || sync.reloaders.load(Ordering::Acquire) == 0);
        let late = tokio::time::timeout(DIRECTORY_RELOAD_WAIT, done)
            .await
            .is_err();
        if late {
            tracing::warn!(generation, "the directory reload is late; answering anyway");
        }
    }

    /// Attaches the one party that reloads the directory on
    /// [`Event::DirectoryChanged`]; publishers wait for it from now on.
    pub fn directory_reloader(&self) -> DirectoryReloader {
        let rx = self.subscribe();
        self.shared
            .directory
            .reloaders
            .fetch_add(1, Ordering::AcqRel);
        DirectoryReloader {
            shared: self.shared.clone(),
            rx,
        }
    }
}

/// Receives directory changes and acknowledges the reloads; waiting
/// publishers are released when it is dropped.
#[derive(Debug)]
pub struct DirectoryReloader {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Arc<Published>>,
}

impl DirectoryReloader {
    /// Waits for the next change and returns the generation a reload started
    /// now covers (the newest, so a burst of changes costs one reload), or
    /// `None` when the channel is gone.
    pub async fn next(&mut self) -> Option<u64> {
        loop {
            match self.rx.recv().await {
                Ok(p) if matches!(p.event, Event::DirectoryChanged { .. }) => break,
                Ok(_) => {}
                // Missed events may have been changes: reload to be sure.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
        // Changes already queued behind this one are covered too.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.rx.try_recv() {}
        Some(self.shared.directory.requested.load(Ordering::Acquire))
    }

    /// The reload that started after [`DirectoryReloader::next`] returned
    /// `generation` is done (whether it succeeded or logged its failure).
    pub fn applied(&self, generation: u64) {
        self.shared
            .directory
            .applied
            .send_modify(|a| *a = (*a).max(generation));
    }
}

impl Drop for DirectoryReloader {
    fn drop(&mut self) {
        let sync = &self.shared.directory;
        sync.reloaders.fetch_sub(1, Ordering::AcqRel);
        // Wake the waiters: with nobody reloading they stop waiting.
        sync.applied.send_modify(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(did_id: i64) -> Event {
        Event::Voicemail {
            voicemail_id: Some(3),
            did_id,
            change: VoicemailChange::Created,
        }
    }

    #[tokio::test]
    async fn subscribers_receive_events_and_publishing_alone_is_fine() {
        let events = Events::starting_at(1);
        events.publish(vm(1));
        let mut rx = events.subscribe();
        events.publish(vm(2));
        let got = rx.recv().await.expect("event");
        assert_eq!((got.id, &got.event), (2, &vm(2)));
    }

    #[test]
    fn ids_increase_and_resumption_replays_what_came_after() {
        let events = Events::starting_at(10);
        events.publish(vm(1));
        events.publish(Event::SessionsChanged { user_id: 1 });
        events.publish(vm(2));
        let ids = |r: &Resume| match r {
            Resume::Replay(v) => v.iter().map(|p| p.id).collect::<Vec<_>>(),
            Resume::Gap => vec![0],
        };
        assert_eq!(
            ids(&events.resume(Some(9)).1),
            [10, 12],
            "shown events only"
        );
        assert_eq!(ids(&events.resume(Some(10)).1), [12]);
        assert_eq!(ids(&events.resume(Some(12)).1), Vec::<u64>::new());
        assert!(
            matches!(events.resume(Some(13)).1, Resume::Gap),
            "a later run's id"
        );
        assert!(
            matches!(events.resume(Some(5)).1, Resume::Gap),
            "an earlier run's id"
        );
        assert_eq!(ids(&events.resume(None).1), Vec::<u64>::new());
        for i in 0..EVENTS_BACKLOG as i64 {
            events.publish(vm(i));
        }
        assert!(matches!(events.resume(Some(10)).1, Resume::Gap), "evicted");
        let newest = 12 + EVENTS_BACKLOG as u64;
        assert_eq!(ids(&events.resume(Some(newest - 1)).1), [newest]);
        assert!(Events::new().resume(Some(newest)).1.is_gap_for_tests());
    }

    impl Resume {
        fn is_gap_for_tests(&self) -> bool {
            matches!(self, Resume::Gap)
        }
    }

    #[tokio::test]
    async fn directory_changes_return_at_once_without_a_reloader() {
        let events = Events::starting_at(1);
        let mut rx = events.subscribe();
        events.directory_changed().await;
        let got = rx.recv().await.expect("event");
        assert_eq!(got.event, Event::DirectoryChanged { generation: 1 });
        assert!(!got.event.is_shown());
    }

    #[tokio::test]
    async fn a_directory_change_waits_for_the_reload_that_covers_it() {
        let events = Events::starting_at(1);
        let mut reloader = events.directory_reloader();
        let reloads = Arc::new(AtomicUsize::new(0));
        let seen = reloads.clone();
        let task = tokio::spawn(async move {
            while let Some(generation) = reloader.next().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
                seen.fetch_add(1, Ordering::AcqRel);
                reloader.applied(generation);
            }
        });
        events.directory_changed().await;
        assert_eq!(
            reloads.load(Ordering::Acquire),
            1,
            "answered after the reload"
        );
        // Concurrent changes each return after a reload that covers them.
        let (a, b) = (events.clone(), events.clone());
        tokio::join!(a.directory_changed(), b.directory_changed());
        let n = reloads.load(Ordering::Acquire);
        assert!((2..=3).contains(&n), "{n} reloads");
        task.abort();
        let _ = task.await;
        // The reloader is gone (dropped with its task): nobody waits.
        tokio::time::timeout(Duration::from_secs(1), events.directory_changed())
            .await
            .expect("no wait without a reloader");
    }

    #[test]
    fn stream_slots_are_bounded_and_refused_when_closing() {
        let events = Events::starting_at(1);
        let slots: Vec<_> = (0..MAX_EVENT_STREAMS)
            .map(|_| events.open_stream().expect("slot"))
            .collect();
        assert!(events.open_stream().is_none(), "full");
        drop(slots);
        assert_eq!(events.open_streams(), 0);
        let _one = events.open_stream().expect("slot again");
        events.close();
        assert!(events.open_stream().is_none(), "closing");
        assert!(events.is_closing());
    }
}
