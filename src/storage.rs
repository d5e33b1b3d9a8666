//! Free-space monitoring of the data disk (usually the SD card).
//!
//! Sampling is a `statvfs` call: it reads filesystem counters and writes
//! nothing, so it costs the card no wear however often it runs.

use std::path::Path;

use serde::Serialize;

/// How worried to be about free space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageState {
    /// Enough room.
    Ok,
    /// Below the configured minimum: recordings should be skipped, admins told.
    Low,
    /// Below a quarter of the minimum: database writes may soon fail.
    Critical,
}

/// One sample of the data disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StorageReport {
    /// Bytes available to an unprivileged writer.
    pub free_bytes: u64,
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// The verdict.
    pub state: StorageState,
}

/// Classifies `free_bytes` against a minimum of `min_free_mib`.
pub fn classify(free_bytes: u64, min_free_mib: u64) -> StorageState {
    let min = min_free_mib.saturating_mul(1024 * 1024);
    if free_bytes < min / 4 {
        StorageState::Critical
    } else if free_bytes < min {
        StorageState::Low
    } else {
        StorageState::Ok
    }
}

/// Samples the filesystem holding `dir`.
pub fn sample(dir: &Path, min_free_mib: u64) -> std::io::Result<StorageReport> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    let frag = st.fragment_size() as u64;
    let free_bytes = (st.blocks_available() as u64).saturating_mul(frag);
    let total_bytes = (st.blocks() as u64).saturating_mul(frag);
    Ok(StorageReport {
        free_bytes,
        total_bytes,
        state: classify(free_bytes, min_free_mib),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(classify(1024 * MIB, 256), StorageState::Ok);
        assert_eq!(classify(256 * MIB, 256), StorageState::Ok);
        assert_eq!(classify(255 * MIB, 256), StorageState::Low);
        assert_eq!(classify(63 * MIB, 256), StorageState::Critical);
        assert_eq!(
            classify(0, 0),
            StorageState::Ok,
            "a zero minimum never warns"
        );
    }

    #[test]
    fn samples_a_real_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = sample(dir.path(), 0).expect("statvfs");
        assert!(r.total_bytes > 0 && r.free_bytes <= r.total_bytes);
        assert_eq!(r.state, StorageState::Ok);
        assert!(sample(&dir.path().join("missing"), 0).is_err());
    }
}
