//! The dialog registry: which call, and which side of it, an in-dialog
//! request belongs to.
//!
//! Keyed by the full dialog id (Call-ID, our tag, the peer's tag) of each
//! leg's dialog, so a request is found in O(1) and a request for a dialog
//! Homeline does not have is recognised as such: its answer is
//! [`crate::sip::dialog::no_such_dialog`] (481, §12.2.2).

use std::collections::HashMap;

use crate::media::relay::Side;
use crate::sip::dialog::DialogId;
use crate::sip::message::Request;

use super::CallId;

#[derive(Default)]
pub(super) struct Registry {
    by_id: HashMap<DialogId, (CallId, Side)>,
}

impl Registry {
    pub(super) fn insert(&mut self, id: DialogId, call: CallId, side: Side) {
        self.by_id.insert(id, (call, side));
    }

    pub(super) fn remove(&mut self, id: &DialogId) {
        self.by_id.remove(id);
    }

    pub(super) fn get(&self, id: &DialogId) -> Option<(CallId, Side)> {
        self.by_id.get(id).copied()
    }

    /// The call and side an incoming in-dialog request (or ACK) is for.
    pub(super) fn find(&self, req: &Request) -> Option<(CallId, Side)> {
        self.get(&DialogId::of_incoming_request(req)?)
    }
}
