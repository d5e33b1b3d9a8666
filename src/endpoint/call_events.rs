//! Announces call state changes on the application's events channel (the
//! web UI's live updates).
//!
//! Rather than a publish call beside every state change in the call layer,
//! the endpoint compares each call's [`CallMark`] with the one it last
//! announced after every turn of its loop: a call that appeared, changed
//! state or went away is announced once, whatever code path did it. With a
//! household's handful of calls this is a few comparisons per SIP message.

use std::collections::HashMap;

use super::Endpoint;
use crate::b2bua::CallMark;
use crate::events::Event;

/// The marks last announced, by call id.
pub(super) type Announced = HashMap<u64, CallMark>;

impl Endpoint {
    /// Publishes the calls whose mark changed since the last turn.
    pub(super) fn announce_call_changes(&mut self) {
        if self.announced_calls.is_empty() && self.calls.is_empty() {
            return;
        }
        let mut now: Announced = self.calls.marks().collect();
        for (id, mark) in &now {
            if self.announced_calls.get(id).map(|m| m.state) != Some(mark.state) {
                self.events.publish(call_event(*id, mark, false));
            }
        }
        for (id, mark) in &self.announced_calls {
            if !now.contains_key(id) {
                self.events.publish(call_event(*id, mark, true));
            }
        }
        std::mem::swap(&mut self.announced_calls, &mut now);
    }
}

fn call_event(call_id: u64, mark: &CallMark, ended: bool) -> Event {
    Event::Call {
        call_id,
        state: if ended { "ended" } else { mark.state },
        ended,
        did_id: mark.did_id,
        device_ids: mark.device_ids.clone(),
    }
}
