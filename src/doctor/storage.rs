//! Is there room on the data disk? Thresholds are [`crate::storage`]'s: below
//! `storage.min_free_mib` recordings are skipped, below a quarter of it
//! database writes may fail.

use super::Check;
use crate::storage::{StorageReport, StorageState};

const MIB: u64 = 1024 * 1024;

/// The storage check for a sample of the data dir (or why none was taken),
/// and whether the data dir is writable.
pub fn check(sample: Result<StorageReport, String>, writable: bool, min_free_mib: u64) -> Check {
    const ID: &str = "storage";
    const TITLE: &str = "Storage free";
    let r = match sample {
        Ok(r) => r,
        Err(e) => {
            return Check::error(
                ID,
                TITLE,
                format!("the data directory could not be measured: {e}"),
                "Check that the data partition is mounted (`findmnt /var/lib/homeline`).",
            )
        }
    };
    let free = format!(
        "{} MiB free of {} MiB",
        r.free_bytes / MIB,
        r.total_bytes / MIB
    );
    if !writable {
        return Check::error(
            ID,
            TITLE,
            format!("the data directory is not writable ({free})"),
            "The data partition may have been remounted read-only after an error: check \
             `dmesg` for the SD card, then reboot; replace the card if it happens again.",
        );
    }
    match r.state {
        StorageState::Ok => Check::ok(ID, TITLE, free),
        StorageState::Low => Check::warning(
            ID,
            TITLE,
            format!("{free}, below the minimum of {min_free_mib} MiB: new recordings are skipped"),
            "Delete old voicemails and recordings (Voicemail page), or use a larger SD card.",
        ),
        StorageState::Critical => Check::error(
            ID,
            TITLE,
            format!("{free}, below a quarter of the minimum of {min_free_mib} MiB: the database may soon refuse writes"),
            "Delete old voicemails and recordings now (Voicemail page), or move the data to a larger card.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn sample(free_mib: u64) -> Result<StorageReport, String> {
        Ok(StorageReport {
            free_bytes: free_mib * MIB,
            total_bytes: 8192 * MIB,
            state: crate::storage::classify(free_mib * MIB, 256),
        })
    }

    #[test]
    fn room_is_ok_and_low_or_critical_is_not() {
        let ok = check(sample(4000), true, 256);
        assert_eq!(
            (ok.status, ok.detail.as_str()),
            (Status::Ok, "4000 MiB free of 8192 MiB")
        );
        assert_eq!(check(sample(200), true, 256).status, Status::Warning);
        let c = check(sample(10), true, 256);
        assert_eq!(c.status, Status::Error);
        assert!(c.fix.is_some());
    }

    #[test]
    fn unwritable_or_unmeasurable_is_an_error() {
        assert_eq!(check(sample(4000), false, 256).status, Status::Error);
        assert_eq!(check(Err("gone".into()), true, 256).status, Status::Error);
    }
}
