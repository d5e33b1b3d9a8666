//! Do-Not-Disturb as the engine sees it for one number.
//!
//! The minimal form of the shared contract, so the engine builds before
//! DND storage exists on this branch: with no `dnd` table there is no DND
//! state, so [`view_for_did`] reports none. The DND branch replaces this
//! file with the real one (same types and signature).

use std::collections::BTreeSet;

use rusqlite::Connection;

use crate::store::devices::DeviceId;
use crate::store::StoreError;

/// DND for one number at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DndView {
    /// DND is on system-wide, or for every user of the number.
    pub number_dnd: bool,
    /// The phones in DND (they never ring).
    pub devices: BTreeSet<DeviceId>,
}

/// The DND state of number `did_id` at `now` in zone `tz`.
pub fn view_for_did(
    _conn: &Connection,
    _did_id: i64,
    _now: jiff::Timestamp,
    _tz: &jiff::tz::TimeZone,
) -> Result<DndView, StoreError> {
    Ok(DndView::default())
}
