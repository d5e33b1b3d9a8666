//! When something is in force: weekly windows of local time and whole local
//! days (holidays, a vacation). Routing rules, Do-Not-Disturb and SMS
//! after-hours replies all use this one type.
//!
//! A schedule is evaluated on the household's civil (wall-clock) time, in
//! its IANA time zone via `jiff`. That is what a family means by "21:00":
//! on the spring-forward night a window starting at 02:30 is simply never
//! reached (that wall-clock time does not exist), and during the repeated
//! hour of the fall-back night a window covering it is in force both times.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most weekly windows one schedule may hold (a week grid has far fewer).
pub const MAX_WEEKLY: usize = 64;
/// Most date ranges one schedule may hold.
pub const MAX_DATES: usize = 128;
/// Longest label of a date range.
pub const MAX_LABEL_CHARS: usize = 80;

/// `{"weekly":[WeeklyWindow…],"dates":[DateRange…]}`; either list may be
/// absent (empty). An empty schedule is never active.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Windows of local time on days of the week.
    #[serde(default)]
    pub weekly: Vec<WeeklyWindow>,
    /// Whole local days, inclusive.
    #[serde(default)]
    pub dates: Vec<DateRange>,
}

/// `{"days":["mon",…],"from":"21:00","to":"07:00"}`. When `to` is not after
/// `from` the window crosses midnight and belongs to the day it starts on
/// (fri 21:00–07:00 covers Saturday until 07:00); `00:00`–`00:00` is the
/// whole day. `to` may be `24:00` for "until midnight".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    /// The days the window starts on.
    pub days: Vec<Day>,
    /// Start, inclusive.
    pub from: TimeOfDay,
    /// End, exclusive.
    pub to: TimeOfDay,
}

/// `{"from":"2026-12-24","to":"2026-12-26","label":"Christmas"}`: whole
/// local days from `from` to `to`, both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    /// First day.
    pub from: LocalDate,
    /// Last day (the same as `from` for one day).
    pub to: LocalDate,
    /// What the days are, shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A day of the week, `"mon"` … `"sun"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The day of a civil date.
    pub fn of(date: Date) -> Day {
        match date.weekday() {
            Weekday::Monday => Day::Mon,
            Weekday::Tuesday => Day::Tue,
            Weekday::Wednesday => Day::Wed,
            Weekday::Thursday => Day::Thu,
            Weekday::Friday => Day::Fri,
            Weekday::Saturday => Day::Sat,
            Weekday::Sunday => Day::Sun,
        }
    }
}

/// A wall-clock time as minutes after midnight, `"HH:MM"` in JSON
/// (`00:00`–`23:59`, and `24:00` meaning the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// Midnight at the start of the day.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    /// `24:00`.
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(24 * 60);

    /// `hour:minute`, or `None` if out of range.
    pub fn new(hour: u8, minute: u8) -> Option<TimeOfDay> {
        let m = u16::from(hour) * 60 + u16::from(minute);
        (minute < 60 && m <= 24 * 60).then_some(TimeOfDay(m))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for TimeOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day (HH:MM, 00:00 to 24:00)");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let (h, m) = (
            h.parse::<u8>().map_err(|_| bad())?,
            m.parse::<u8>().map_err(|_| bad())?,
        );
        TimeOfDay::new(h, m).ok_or_else(bad)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A civil date, `"YYYY-MM-DD"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate(pub Date);

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for LocalDate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let bad = || format!("{s:?} is not a date (YYYY-MM-DD)");
        if !ok {
            return Err(bad());
        }
        s.parse::<Date>().map(LocalDate).map_err(|_| bad())
    }
}

impl Serialize for LocalDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl WeeklyWindow {
    /// Whether the window holds at local `date` and minute `minute`.
    fn contains(&self, date: Date, minute: u16) -> bool {
        let (from, to) = (self.from.0, self.to.0);
        let starts_on = |d: Date| self.days.contains(&Day::of(d));
        if to > from {
            return starts_on(date) && (from..to).contains(&minute);
        }
        // Crosses midnight: the evening part today, the morning part
        // belongs to a window that started yesterday.
        (starts_on(date) && minute >= from)
            || (minute < to && date.yesterday().is_ok_and(starts_on))
    }
}

impl DateRange {
    fn contains(&self, date: Date) -> bool {
        (self.from.0..=self.to.0).contains(&date)
    }
}

impl Schedule {
    /// Whether the schedule is in force at `now` in the household's zone.
    pub fn active_at(&self, now: Timestamp, tz: &TimeZone) -> bool {
        let local = tz.to_datetime(now);
        let (date, time) = (local.date(), local.time());
        let minute =
            u16::try_from(i32::from(time.hour()) * 60 + i32::from(time.minute())).unwrap_or(0);
        self.dates.iter().any(|r| r.contains(date))
            || self.weekly.iter().any(|w| w.contains(date, minute))
    }

    /// Whether nothing is scheduled at all.
    pub fn is_empty(&self) -> bool {
        self.weekly.is_empty() && self.dates.is_empty()
    }

    /// Checks what the types cannot: every window has a day, no `from` of
    /// `24:00`, ranges in order, sizes within limits. The message names the
    /// field (`weekly[1].days`) for the person who typed it.
    pub fn validate(&self) -> Result<(), String> {
        if self.weekly.len() > MAX_WEEKLY {
            return Err(format!("weekly: at most {MAX_WEEKLY} windows"));
        }
        if self.dates.len() > MAX_DATES {
            return Err(format!("dates: at most {MAX_DATES} date ranges"));
        }
        for (i, w) in self.weekly.iter().enumerate() {
            if w.days.is_empty() {
                return Err(format!("weekly[{i}].days: pick at least one day"));
            }
            if w.from == TimeOfDay::END_OF_DAY {
                return Err(format!(
                    "weekly[{i}].from: a window cannot start at 24:00 (use 00:00)"
                ));
            }
        }
        for (i, r) in self.dates.iter().enumerate() {
            if r.to < r.from {
                return Err(format!(
                    "dates[{i}].to: {} is before the first day {}",
                    r.to, r.from
                ));
            }
            if r.label
                .as_ref()
                .is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS)
            {
                return Err(format!(
                    "dates[{i}].label: at most {MAX_LABEL_CHARS} characters"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sched(v: serde_json::Value) -> Schedule {
        let s: Schedule = serde_json::from_value(v).expect("schedule");
        s.validate().expect("valid");
        s
    }

    /// The instant of local wall-clock `at` in `zone` (earlier of two in a
    /// fold; for a gap, the instant after it).
    fn at(zone: &str, local: &str) -> Timestamp {
        let tz = TimeZone::get(zone).expect("zone");
        let dt: jiff::civil::DateTime = local.parse().expect("datetime");
        tz.to_ambiguous_timestamp(dt).compatible().expect("instant")
    }

    fn active(s: &Schedule, zone: &str, local: &str) -> bool {
        s.active_at(at(zone, local), &TimeZone::get(zone).expect("zone"))
    }

    #[test]
    fn serde_matches_the_contract_and_round_trips() {
        let v = json!({
            "weekly": [{"days": ["mon","tue","wed","thu","fri"], "from": "21:00", "to": "07:00"}],
            "dates": [{"from": "2026-12-24", "to": "2026-12-26", "label": "Christmas"}]
        });
        let s = sched(v.clone());
        assert_eq!(serde_json::to_value(&s).expect("json"), v);
        assert_eq!(s.weekly[0].from, TimeOfDay::new(21, 0).expect("time"));
        let empty: Schedule = serde_json::from_value(json!({})).expect("empty");
        assert!(empty.is_empty());
        assert_eq!(
            serde_json::to_value(&empty).expect("json"),
            json!({"weekly":[],"dates":[]})
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_field_or_value_named() {
        for (v, needle) in [
            (
                json!({"weekly":[{"days":["mon"],"from":"25:00","to":"07:00"}]}),
                "\"25:00\"",
            ),
            (
                json!({"weekly":[{"days":["mon"],"from":"9:00","to":"07:00"}]}),
                "\"9:00\"",
            ),
            (
                json!({"weekly":[{"days":["monday"],"from":"09:00","to":"10:00"}]}),
                "monday",
            ),
            (
                json!({"dates":[{"from":"2026-02-30","to":"2026-03-01"}]}),
                "2026-02-30",
            ),
            (json!({"weekly":[], "extra": 1}), "extra"),
        ] {
            let err = serde_json::from_value::<Schedule>(v)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
        for (v, field) in [
            (
                json!({"weekly":[{"days":[],"from":"09:00","to":"10:00"}]}),
                "weekly[0].days",
            ),
            (
                json!({"weekly":[{"days":["mon"],"from":"24:00","to":"10:00"}]}),
                "weekly[0].from",
            ),
            (
                json!({"dates":[{"from":"2026-12-26","to":"2026-12-24"}]}),
                "dates[0].to",
            ),
            (
                json!({"dates":[{"from":"2026-12-24","to":"2026-12-24","label":"x".repeat(81)}]}),
                "dates[0].label",
            ),
        ] {
            let s: Schedule = serde_json::from_value(v).expect("parses");
            let err = s.validate().expect_err("invalid");
            assert!(err.starts_with(field), "{err}");
        }
    }

    #[test]
    fn windows_across_midnight_belong_to_the_day_they_start() {
        // 2026-12-04 is a Friday.
        let s = sched(json!({"weekly":[{"days":["fri"],"from":"21:00","to":"07:00"}]}));
        let z = "Europe/Berlin";
        assert!(!active(&s, z, "2026-12-04T20:59"));
        assert!(active(&s, z, "2026-12-04T21:00"));
        assert!(active(&s, z, "2026-12-05T00:00"), "Saturday morning");
        assert!(active(&s, z, "2026-12-05T06:59"));
        assert!(!active(&s, z, "2026-12-05T07:00"), "to is exclusive");
        assert!(
            !active(&s, z, "2026-12-05T21:30"),
            "Saturday evening is not Friday's"
        );
        assert!(
            !active(&s, z, "2026-12-04T03:00"),
            "Friday morning belongs to Thursday"
        );
    }

    #[test]
    fn plain_windows_whole_days_and_end_of_day() {
        let s = sched(json!({"weekly":[
            {"days":["mon"],"from":"09:00","to":"17:00"},
            {"days":["sun"],"from":"00:00","to":"00:00"},
            {"days":["tue"],"from":"18:00","to":"24:00"}
        ]}));
        let z = "America/New_York";
        // 2026-11-30 Monday, 2026-12-01 Tuesday, 2026-12-06 Sunday.
        assert!(active(&s, z, "2026-11-30T09:00"));
        assert!(!active(&s, z, "2026-11-30T17:00"));
        assert!(active(&s, z, "2026-12-06T00:00"));
        assert!(active(&s, z, "2026-12-06T23:59"));
        assert!(
            !active(&s, z, "2026-12-07T00:00"),
            "Sunday's whole day ends"
        );
        assert!(active(&s, z, "2026-12-01T23:59"));
        assert!(
            !active(&s, z, "2026-12-02T00:00"),
            "24:00 does not spill over"
        );
        assert!(!Schedule::default().active_at(at(z, "2026-12-01T12:00"), &TimeZone::UTC));
    }

    #[test]
    fn holidays_are_whole_local_days_inclusive() {
        let s =
            sched(json!({"dates":[{"from":"2026-12-24","to":"2026-12-26","label":"Christmas"}]}));
        let z = "Europe/Berlin";
        assert!(!active(&s, z, "2026-12-23T23:59"));
        assert!(active(&s, z, "2026-12-24T00:00"));
        assert!(active(&s, z, "2026-12-26T23:59"));
        assert!(!active(&s, z, "2026-12-27T00:00"));
        // 23:30 UTC on the 23rd is already the 24th in Berlin.
        let utc: Timestamp = "2026-12-23T23:30:00Z".parse().expect("ts");
        assert!(s.active_at(utc, &TimeZone::get(z).expect("zone")));
        assert!(!s.active_at(utc, &TimeZone::UTC));
    }

    #[test]
    fn spring_forward_night_new_york_and_berlin() {
        // New York: 2026-03-08 02:00 EST → 03:00 EDT (a Sunday).
        // Berlin: 2026-03-29 02:00 CET → 03:00 CEST (a Sunday).
        let gap = sched(json!({"weekly":[{"days":["sun"],"from":"02:15","to":"02:45"}]}));
        let night = sched(json!({"weekly":[{"days":["sat"],"from":"22:00","to":"06:00"}]}));
        for (zone, day, sat) in [
            ("America/New_York", "2026-03-08", "2026-03-07"),
            ("Europe/Berlin", "2026-03-29", "2026-03-28"),
        ] {
            let tz = TimeZone::get(zone).expect("zone");
            let start = at(zone, &format!("{day}T01:00"));
            // Walk the night minute by minute: 02:15–02:45 never exists.
            for m in 0..180 {
                let t = start + jiff::SignedDuration::from_mins(m);
                assert!(!gap.active_at(t, &tz), "{zone} {t}");
            }
            // The window across midnight is shorter by the lost hour: it
            // ends at 06:00 local, which is 7 real hours after 22:00.
            let from = at(zone, &format!("{sat}T22:00"));
            let to = at(zone, &format!("{day}T06:00"));
            assert_eq!(to.duration_since(from), jiff::SignedDuration::from_hours(7));
            assert!(night.active_at(from, &tz));
            assert!(night.active_at(at(zone, &format!("{day}T03:00")), &tz));
            assert!(night.active_at(to - jiff::SignedDuration::from_secs(1), &tz));
            assert!(!night.active_at(to, &tz));
        }
    }

    #[test]
    fn fall_back_night_new_york_and_berlin() {
        // New York: 2026-11-01 02:00 EDT → 01:00 EST (the 01:xx hour twice).
        // Berlin: 2026-10-25 03:00 CEST → 02:00 CET (the 02:xx hour twice).
        for (zone, day, hour) in [
            ("America/New_York", "2026-11-01", 1),
            ("Europe/Berlin", "2026-10-25", 2),
        ] {
            let tz = TimeZone::get(zone).expect("zone");
            let window = sched(json!({"weekly":[{"days":["sun"],
                "from": format!("{hour:02}:00"), "to": format!("{:02}:00", hour + 1)}]}));
            let dt: jiff::civil::DateTime =
                format!("{day}T{hour:02}:30").parse().expect("datetime");
            let amb = tz.to_ambiguous_timestamp(dt);
            let (first, second) = (amb.earlier().expect("first"), amb.later().expect("second"));
            assert_eq!(
                second.duration_since(first),
                jiff::SignedDuration::from_hours(1)
            );
            assert!(window.active_at(first, &tz), "{zone}: first pass");
            assert!(window.active_at(second, &tz), "{zone}: second pass");
            // The repeated hour makes the window two real hours long.
            let starts = at(zone, &format!("{day}T{hour:02}:00"));
            let mut inside = 0;
            for m in 0..240 {
                if window.active_at(starts + jiff::SignedDuration::from_mins(m), &tz) {
                    inside += 1;
                }
            }
            assert_eq!(inside, 120, "{zone}");
        }
    }

    #[test]
    fn day_names_follow_the_calendar() {
        let d: Date = "2026-12-02".parse().expect("date");
        assert_eq!(Day::of(d), Day::Wed);
        assert_eq!(Day::ALL.len(), 7);
        assert_eq!(
            "07:05".parse::<TimeOfDay>().expect("t").to_string(),
            "07:05"
        );
        assert_eq!("24:00".parse::<TimeOfDay>(), Ok(TimeOfDay::END_OF_DAY));
        assert!("24:01".parse::<TimeOfDay>().is_err());
        assert!("12:60".parse::<TimeOfDay>().is_err());
    }
}
