//! The retry schedule: 1 s doubling to 30 s for the first attempts, then a
//! slower pace, each delay with ±20 % jitter so many queued jobs do not
//! retry in lockstep after an outage.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

use crate::constants::{
    RETRY_BASE_DELAY, RETRY_FAST_ATTEMPTS, RETRY_JITTER_PERCENT, RETRY_MAX_DELAY,
    RETRY_MAX_RETRY_AFTER, RETRY_SLOW_DELAY,
};

/// The delay before the next attempt after `failures` consecutive failures
/// (1 for the first), before jitter.
pub fn base_delay(failures: u32) -> Duration {
    if failures > RETRY_FAST_ATTEMPTS {
        return RETRY_SLOW_DELAY;
    }
    let shift = failures.saturating_sub(1).min(16);
    RETRY_BASE_DELAY
        .saturating_mul(1 << shift)
        .min(RETRY_MAX_DELAY)
}

/// `d` scaled by a random factor within ±[`RETRY_JITTER_PERCENT`].
pub fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = match SystemRandom::new().fill(&mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b)),
        Err(_) => 32768,
    };
    let span = u64::from(RETRY_JITTER_PERCENT) * 2;
    // percent in [100 - J, 100 + J]
    let percent = 100 - u64::from(RETRY_JITTER_PERCENT) + r * span / 65535;
    Duration::from_millis((d.as_millis() as u64).saturating_mul(percent) / 100)
}

/// The delay to wait: the other side's `Retry-After` if given (capped),
/// otherwise the schedule with jitter.
pub fn next_delay(failures: u32, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(d) => d.min(RETRY_MAX_RETRY_AFTER),
        None => jitter(base_delay(failures)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds_then_slows() {
        let secs: Vec<u64> = (1..=12).map(|n| base_delay(n).as_secs()).collect();
        assert_eq!(secs[..7], [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(base_delay(RETRY_FAST_ATTEMPTS), RETRY_MAX_DELAY);
        assert_eq!(base_delay(RETRY_FAST_ATTEMPTS + 1), RETRY_SLOW_DELAY);
        assert_eq!(base_delay(u32::MAX), RETRY_SLOW_DELAY);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let d = Duration::from_secs(10);
        let samples: Vec<Duration> = (0..200).map(|_| jitter(d)).collect();
        assert!(samples
            .iter()
            .all(|s| *s >= Duration::from_secs(8) && *s <= Duration::from_secs(12)));
        assert!(samples.iter().any(|s| *s != samples[0]), "not constant");
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        assert_eq!(
            next_delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            next_delay(1, Some(Duration::from_secs(86_400))),
            RETRY_MAX_RETRY_AFTER
        );
    }
}
