//! The one clock of the application.
//!
//! Wall-clock time (timestamps stored in the database, lockout expiry, CDRs)
//! comes from a [`Clock`] passed in at startup, so tests can move time by hand.
//! Timers and intervals use tokio's clock, which tests pause and advance.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in UTC time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

impl Timestamp {
    /// The timestamp `unix_millis` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix_millis(unix_millis: i64) -> Self {
        Self { unix_millis }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// Whole seconds since the Unix epoch.
    pub const fn unix_secs(self) -> i64 {
        self.unix_millis.div_euclid(1000)
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            unix_millis: self.unix_millis.saturating_add(ms),
        }
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        let ms = self.unix_millis.saturating_sub(earlier.unix_millis).max(0);
        Duration::from_millis(ms.unsigned_abs())
    }

    /// Parses the RFC 3339 form this module writes (`2026-11-21T10:00:00Z`,
    /// optionally with `.mmm`). Other offsets than `Z` are rejected: the
    /// database only ever holds UTC.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let rest = &s[19..];
        let (millis, tail) = match rest.strip_prefix('.') {
            Some(frac) => {
                let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
                if digits.is_empty() {
                    return None;
                }
                let ms: i64 = format!("{:0<3}", &digits[..digits.len().min(3)])
                    .parse()
                    .ok()?;
                (ms, &frac[digits.len()..])
            }
            None => (0, rest),
        };
        if tail != "Z"
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec;
        Some(Self {
            unix_millis: secs * 1000 + millis,
        })
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with whole seconds, e.g. `2026-11-21T10:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

// Howard Hinnant's proleptic Gregorian algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Where wall-clock time comes from.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A shared clock handle, as passed to services.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let now = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
        #[cfg(feature = "test-hooks")]
        let now = now.saturating_add(test_offset::get());
        Timestamp::from_unix_millis(now)
    }
}

/// Test builds only (`test-hooks`): how far the [`SystemClock`] of this
/// process is moved, so integration tests on the real binary can ask for
/// "23:00" or "13 hours later" (`POST /api/test/clock`).
#[cfg(feature = "test-hooks")]
pub mod test_offset {
    use std::sync::atomic::{AtomicI64, Ordering};

    static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

    /// The current offset in milliseconds.
    pub fn get() -> i64 {
        OFFSET_MS.load(Ordering::SeqCst)
    }

    /// Sets the offset in milliseconds (0: real time again).
    pub fn set(ms: i64) {
        OFFSET_MS.store(ms, Ordering::SeqCst);
    }
}

/// A clock that only moves when told to; for tests of time-based rules.
#[derive(Debug)]
pub struct ManualClock {
    unix_millis: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            unix_millis: AtomicI64::new(start.unix_millis()),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.unix_millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.unix_millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339_round_trip() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (1_795_255_200_000, "2026-11-21T10:00:00Z"),
            (-86_400_000, "1969-12-31T00:00:00Z"),
        ] {
            let ts = Timestamp::from_unix_millis(ms);
            assert_eq!(ts.to_string(), text);
            assert_eq!(Timestamp::parse_rfc3339(text), Some(ts));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-21T10:00:00.25Z").map(Timestamp::unix_millis),
            Some(1_795_255_200_250)
        );
    }

    #[test]
    fn rejects_non_utc_and_garbage() {
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T10:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-11-21T10:00:00",
            "2026-1x-21T10:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1000));
        assert_eq!(clock.now().unix_millis(), 1000);
        clock.advance(Duration::from_secs(15 * 60));
        assert_eq!(
            clock.now().since(Timestamp::from_unix_millis(1000)),
            Duration::from_secs(900)
        );
    }
}
