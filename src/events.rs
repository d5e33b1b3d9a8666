//! Things that happened, for whoever wants to react: MWI (issue 6) lights the
//! phones' lamps on a new voicemail, notifications (later) send e-mail and
//! push. A `tokio::sync::broadcast` channel: publishing never blocks and
//! never fails when nobody listens; a slow subscriber misses old events
//! (`Lagged`) and re-reads the state from the database.

use tokio::sync::broadcast;

/// How many events a subscriber may fall behind before it lags.
const CAPACITY: usize = 64;

/// An event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A voicemail was stored (its audio may still be downloading).
    VoicemailCreated {
        /// The `voicemails` row.
        voicemail_id: i64,
        /// Its mailbox (the number called).
        did_id: i64,
    },
    /// A voicemail was marked read or unread, or deleted (MWI counts change).
    VoicemailChanged {
        /// Its mailbox.
        did_id: i64,
    },
    /// An SMS/MMS arrived.
    MessageReceived {
        /// The `messages` row.
        message_id: i64,
        /// The number it was sent to.
        did_id: i64,
    },
}

/// The publisher; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// A channel with no subscribers yet.
    pub fn new() -> Events {
        Events {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Publishes `event` to every current subscriber.
    pub fn publish(&self, event: Event) {
        tracing::debug!(?event, "event");
        let _ = self.tx.send(event);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_events_and_publishing_alone_is_fine() {
        let events = Events::new();
        events.publish(Event::VoicemailChanged { did_id: 1 });
        let mut rx = events.subscribe();
        let e = Event::VoicemailCreated {
            voicemail_id: 3,
            did_id: 1,
        };
        events.publish(e.clone());
        assert_eq!(rx.recv().await.expect("event"), e);
    }
}
