//! Is the clock right? A Raspberry Pi has no battery-backed clock: it boots
//! at the last saved time (or 1970) until time sync reaches a server, and
//! TLS certificates, webhook signatures' freshness and schedules all need the
//! real time.
//!
//! Without `unsafe` there is no `adjtimex(2)`, so the state is read from
//! systemd-timesyncd's marker file `/run/systemd/timesync/synchronized`,
//! which it creates once the kernel clock is synchronised. A machine without
//! timesyncd gives no answer ("unknown"), which is a warning, not an error.

use std::path::Path;

use super::Check;
use crate::clock::Timestamp;

/// The marker systemd-timesyncd touches once the clock is synchronised.
pub const TIMESYNC_MARKER: &str = "/run/systemd/timesync/synchronized";

/// What is known about time synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// timesyncd says the clock is synchronised.
    Synchronised,
    /// timesyncd runs but has not synchronised yet.
    NotSynchronised,
    /// No timesyncd here (another NTP client, or not a systemd machine).
    Unknown,
}

/// Reads the state from the file system under `root` (`/` in production).
pub fn sync_state(root: &Path) -> SyncState {
    let marker = root.join(TIMESYNC_MARKER.trim_start_matches('/'));
    if marker.exists() {
        SyncState::Synchronised
    } else if root.join("run/systemd/timesync").is_dir() {
        SyncState::NotSynchronised
    } else {
        SyncState::Unknown
    }
}

/// When the source this binary was built from was committed: the clock is
/// obviously wrong before it.
pub fn built_at() -> Timestamp {
    let secs: i64 = env!("HOMELINE_SOURCE_DATE").parse().unwrap_or(0);
    Timestamp::from_unix_millis(secs.saturating_mul(1000))
}

/// The clock check.
pub fn check(state: SyncState, now: Timestamp, built: Timestamp) -> Check {
    const ID: &str = "clock";
    const TITLE: &str = "Clock synchronised";
    if now < built {
        return Check::error(
            ID,
            TITLE,
            format!("the clock says {now}, before this software was built ({built})"),
            "Connect the Pi to the internet so time sync can set the clock (it needs UDP port 123 \
             to an NTP server). Until then certificates and Twilio's signatures cannot be checked.",
        );
    }
    match state {
        SyncState::Synchronised => Check::ok(
            ID,
            TITLE,
            format!("synchronised by systemd-timesyncd; it is {now}"),
        ),
        SyncState::NotSynchronised => Check::error(
            ID,
            TITLE,
            format!("systemd-timesyncd has not synchronised the clock yet; it says {now}"),
            "Check that the Pi reaches the internet and that the router lets NTP (UDP 123) out; \
             `timedatectl timesync-status` shows which server it tries.",
        ),
        SyncState::Unknown => Check::warning(
            ID,
            TITLE,
            format!("unknown: systemd-timesyncd does not run here; the clock says {now}"),
            "Make sure some time sync (systemd-timesyncd, chrony or ntpd) runs; the Homeline \
             image uses systemd-timesyncd.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const BUILT: Timestamp = Timestamp::from_unix_millis(1_790_000_000_000);
    const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    #[test]
    fn the_timesyncd_marker_decides() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(sync_state(root.path()), SyncState::Unknown);
        std::fs::create_dir_all(root.path().join("run/systemd/timesync")).expect("dir");
        assert_eq!(sync_state(root.path()), SyncState::NotSynchronised);
        std::fs::write(root.path().join("run/systemd/timesync/synchronized"), b"").expect("w");
        assert_eq!(sync_state(root.path()), SyncState::Synchronised);
    }

    #[test]
    fn synchronised_is_ok_and_not_synchronised_an_error() {
        assert_eq!(
            check(SyncState::Synchronised, NOW, BUILT).status,
            Status::Ok
        );
        let c = check(SyncState::NotSynchronised, NOW, BUILT);
        assert_eq!(c.status, Status::Error);
        assert!(c.fix.as_deref().unwrap_or("").contains("UDP 123"), "{c:?}");
    }

    #[test]
    fn unknown_is_a_warning_and_a_clock_before_the_build_an_error() {
        assert_eq!(
            check(SyncState::Unknown, NOW, BUILT).status,
            Status::Warning
        );
        let c = check(
            SyncState::Synchronised,
            Timestamp::from_unix_millis(0),
            BUILT,
        );
        assert_eq!(c.status, Status::Error);
        assert!(c.detail.contains("before this software was built"), "{c:?}");
        assert!(
            built_at().unix_millis() > 0,
            "the build stamps its source date"
        );
    }
}
