//! Hold: who put the call on hold, and so who hears music.
//!
//! A party holds the other with a re-INVITE whose SDP is `sendonly` or
//! `inactive`; the API holds both. The relay plays music to a party while
//! the other side holds it or the API holds the call, so the other leg is
//! never renegotiated.

use crate::media::relay::Side;

/// The hold state of an answered call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Hold {
    /// Side X holds the other (its last description was sendonly/inactive).
    by: [bool; 2],
    /// The API put the call on hold.
    api: bool,
}

impl Hold {
    /// Whether anything holds the call.
    pub(super) fn any(&self) -> bool {
        self.api || self.by.iter().any(|h| *h)
    }

    /// Side `side` described its media: `holds` if sendonly/inactive.
    /// Returns whether that changed anything.
    pub(super) fn set_by(&mut self, side: Side, holds: bool) -> bool {
        let changed = self.by[side.index()] != holds;
        self.by[side.index()] = holds;
        changed
    }

    /// The API holds (or resumes) the call.
    pub(super) fn set_api(&mut self, on: bool) {
        self.api = on;
    }

    /// A transfer replaced a party: neither side holds any more.
    pub(super) fn clear_parties(&mut self) {
        self.by = [false; 2];
    }

    /// Whether `side` should hear music.
    pub(super) fn music_to(&self, side: Side) -> bool {
        self.api || self.by[side.other().index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_party_holding_plays_music_to_the_other_only() {
        let mut h = Hold::default();
        assert!(h.set_by(Side::A, true));
        assert!(h.music_to(Side::B));
        assert!(!h.music_to(Side::A));
        assert!(!h.set_by(Side::A, true), "no change the second time");
        assert!(h.any());
    }

    #[test]
    fn the_api_hold_plays_music_to_both_and_outlasts_a_resume() {
        let mut h = Hold::default();
        h.set_api(true);
        h.set_by(Side::B, true);
        h.set_by(Side::B, false);
        assert!(h.music_to(Side::A) && h.music_to(Side::B));
        h.set_api(false);
        assert!(!h.any());
    }
}
