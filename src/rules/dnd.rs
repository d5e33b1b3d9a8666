//! Do-Not-Disturb: for the whole household, for a person (every phone they
//! own and every number assigned to them) and for one phone, each switched
//! on by hand (the web UI, `*78`) and/or by a weekly schedule.
//!
//! "In DND" means: switched on, or its schedule contains the current local
//! time in the household's zone (`system.timezone`). Two strengths:
//!
//! * A phone's own DND (the web UI, `*78`) is absolute: it never rings.
//! * A person's or the household's DND is the number's when it covers the
//!   whole number (the household, or every person the number is assigned
//!   to: [`DndView::number_dnd`], what the rules' `dnd` condition reads).
//!   Then the routing rules decide: a "VIP" rule placed before a "DND →
//!   voicemail" rule rings through. A person in DND on a number shared
//!   with someone who is not makes only their own phones silent
//!   ([`DndView::devices`]), as a phone's own DND does.
//!
//! Without a decision of the rules (no ring plan in the call), a phone
//! rings only when none of the three applies ([`DndTable::device_active`]).
//!
//! The call layer must not wait on SQLite, so it keeps a [`DndTable`] (the
//! settings, the phones' owners and the zone) in its directory, reloaded
//! when a setting changes (`events::Event::DndChanged` goes with a
//! directory reload), and evaluates it against the clock at each call:
//! schedules change with time, the table does not.

use std::collections::{BTreeSet, HashMap};

use jiff::tz::TimeZone;
use rusqlite::Connection;
use serde::Serialize;

use crate::rules::schedule::Schedule;
use crate::store::devices::DeviceId;
use crate::store::dnd::{self, Scope, Setting};
use crate::store::StoreError;

/// One subject's setting, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dnd {
    /// Switched on by hand.
    pub on: bool,
    /// Its schedule, if any.
    pub schedule: Option<Schedule>,
}

impl Dnd {
    /// Whether it is in effect at `now`.
    pub fn active_at(&self, now: jiff::Timestamp, tz: &TimeZone) -> bool {
        self.on || self.schedule.as_ref().is_some_and(|s| s.active_at(now, tz))
    }
}

/// A stored schedule's JSON, read; a row that no longer parses (written by
/// a newer version, edited by hand) counts as no schedule, loudly.
pub fn parse_schedule(setting: &Setting) -> Option<Schedule> {
    let text = setting.schedule.as_deref()?;
    match serde_json::from_str(text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(scope = %setting.scope, subject = setting.subject_id, error = %e, "unreadable DND schedule ignored");
            None
        }
    }
}

/// A setting as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DndState {
    /// `system`, `user` or `device`.
    pub scope: Scope,
    /// The account or phone (0 for the household).
    pub subject_id: i64,
    /// Switched on by hand.
    pub on: bool,
    /// Its schedule.
    pub schedule: Option<Schedule>,
    /// In effect now.
    pub active: bool,
}

impl DndState {
    /// The state of `setting` at `now`.
    pub fn of(setting: &Setting, now: jiff::Timestamp, tz: &TimeZone) -> DndState {
        let dnd = Dnd {
            on: setting.on,
            schedule: parse_schedule(setting),
        };
        DndState {
            scope: setting.scope,
            subject_id: setting.subject_id,
            on: dnd.on,
            active: dnd.active_at(now, tz),
            schedule: dnd.schedule,
        }
    }

    /// A subject without a stored setting: off.
    pub fn off(scope: Scope, subject_id: i64) -> DndState {
        DndState {
            scope,
            subject_id,
            on: false,
            schedule: None,
            active: false,
        }
    }
}

/// What DND means for one number's call right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DndView {
    /// The household is in DND, or every person the number is assigned to.
    pub number_dnd: bool,
    /// The number's phones that are in DND.
    pub devices: BTreeSet<DeviceId>,
}

/// Every DND setting with what evaluating them needs, in memory.
#[derive(Debug, Clone)]
pub struct DndTable {
    /// The household's.
    pub system: Dnd,
    /// By account id.
    pub users: HashMap<i64, Dnd>,
    /// By phone id.
    pub devices: HashMap<i64, Dnd>,
    /// Each phone's owner (phones without one are absent).
    pub owners: HashMap<i64, i64>,
    /// The people each number is assigned to, by number id.
    pub did_users: HashMap<i64, Vec<i64>>,
    /// The household's zone.
    pub tz: TimeZone,
}

impl Default for DndTable {
    /// Nobody in DND (zone UTC).
    fn default() -> DndTable {
        DndTable {
            system: Dnd::default(),
            users: HashMap::new(),
            devices: HashMap::new(),
            owners: HashMap::new(),
            did_users: HashMap::new(),
            tz: TimeZone::UTC,
        }
    }
}

impl DndTable {
    /// Reads the settings, the phones' owners and the zone.
    pub fn load(conn: &Connection) -> Result<DndTable, StoreError> {
        let mut table = DndTable {
            tz: household_zone(conn)?,
            ..DndTable::default()
        };
        for setting in dnd::all(conn)? {
            let d = Dnd {
                on: setting.on,
                schedule: parse_schedule(&setting),
            };
            match setting.scope {
                Scope::System => table.system = d,
                Scope::User => {
                    table.users.insert(setting.subject_id, d);
                }
                Scope::Device => {
                    table.devices.insert(setting.subject_id, d);
                }
            }
        }
        let mut stmt =
            conn.prepare_cached("SELECT id, user_id FROM devices WHERE user_id IS NOT NULL")?;
        let owners = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in owners {
            let (device, user) = row?;
            table.owners.insert(device, user);
        }
        let mut stmt =
            conn.prepare_cached("SELECT did_id, user_id FROM did_users ORDER BY user_id")?;
        let assigned = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in assigned {
            let (did, user) = row?;
            table.did_users.entry(did).or_default().push(user);
        }
        Ok(table)
    }

    fn active(&self, d: Option<&Dnd>, now: jiff::Timestamp) -> bool {
        d.is_some_and(|d| d.active_at(now, &self.tz))
    }

    /// Whether the household is in DND at `now`.
    pub fn system_active(&self, now: jiff::Timestamp) -> bool {
        self.system.active_at(now, &self.tz)
    }

    /// Whether a person is in DND at `now` (the household's counts).
    pub fn user_active(&self, user: i64, now: jiff::Timestamp) -> bool {
        self.system_active(now) || self.active(self.users.get(&user), now)
    }

    /// Whether a phone's own DND is in effect at `now` (it never rings).
    pub fn device_own_active(&self, device: DeviceId, now: jiff::Timestamp) -> bool {
        self.active(self.devices.get(&device.0), now)
    }

    /// Whether a phone is in DND at `now` in any way: its own, its owner's
    /// or the household's (what a call without a decision of the rules
    /// goes by).
    pub fn device_active(&self, device: DeviceId, now: jiff::Timestamp) -> bool {
        self.device_own_active(device, now)
            || self
                .owners
                .get(&device.0)
                .map_or(self.system_active(now), |u| self.user_active(*u, now))
    }

    /// Whether the number assigned to `users` is in DND at `now`.
    pub fn number_active(&self, users: &[i64], now: jiff::Timestamp) -> bool {
        self.system_active(now)
            || (!users.is_empty() && users.iter().all(|u| self.user_active(*u, now)))
    }

    /// Whether `device` must not ring for a call to `did_id` that the rules
    /// decided: its own DND, or its owner's when the number as a whole is
    /// not in DND (then the rules have had their say).
    pub fn silences(&self, did_id: i64, device: DeviceId, now: jiff::Timestamp) -> bool {
        let users = self.did_users.get(&did_id).map_or(&[][..], Vec::as_slice);
        self.silences_for(users, device, now)
    }

    fn silences_for(&self, users: &[i64], device: DeviceId, now: jiff::Timestamp) -> bool {
        self.device_own_active(device, now)
            || (!self.number_active(users, now) && self.device_active(device, now))
    }

    /// The view of a number assigned to `users` and ringing `devices`.
    pub fn view(&self, users: &[i64], devices: &[DeviceId], now: jiff::Timestamp) -> DndView {
        DndView {
            number_dnd: self.number_active(users, now),
            devices: devices
                .iter()
                .copied()
                .filter(|d| self.silences_for(users, *d, now))
                .collect(),
        }
    }
}

/// The household's zone (`system.timezone`); unset or unknown: the
/// system's own zone.
pub fn household_zone(conn: &Connection) -> Result<TimeZone, StoreError> {
    let name = crate::store::config::get(conn, crate::sysconfig::SYSTEM_TIMEZONE)?;
    Ok(match name.as_deref().map(TimeZone::get) {
        Some(Ok(tz)) => tz,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "unknown system.timezone: using the system's zone");
            TimeZone::system()
        }
        None => TimeZone::system(),
    })
}

/// The application's timestamp as `jiff`'s.
pub fn instant(now: crate::clock::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(now.unix_millis()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// What DND means for number `did_id` at `now` in zone `tz`: the engine's
/// `dnd` condition and the simulator read it.
pub fn view_for_did(
    conn: &Connection,
    did_id: i64,
    now: jiff::Timestamp,
    tz: &TimeZone,
) -> Result<DndView, StoreError> {
    let mut table = DndTable::load(conn)?;
    table.tz = tz.clone();
    let users = dnd::users_of_did(conn, did_id)?;
    let mut devices = Vec::new();
    let mut stmt = conn.prepare_cached("SELECT id FROM devices WHERE user_id = ?1 ORDER BY id")?;
    for user in &users {
        for d in stmt.query_map([user], |r| r.get::<_, i64>(0))? {
            devices.push(DeviceId(d?));
        }
    }
    Ok(table.view(&users, &devices, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::devices::tests::make as make_device;
    use crate::store::testing::{db, t};

    fn schedule(json: &str) -> Schedule {
        serde_json::from_str(json).expect("schedule")
    }

    fn at(civil: &str, tz: &TimeZone) -> jiff::Timestamp {
        let dt: jiff::civil::DateTime = civil.parse().unwrap();
        tz.to_ambiguous_timestamp(dt).compatible().unwrap()
    }

    fn user(conn: &Connection, email: &str) -> i64 {
        conn.execute(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?1, 'x', 'now', 'now')",
            [email],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn a_phone_is_in_dnd_by_itself_its_owner_or_the_household() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut table = DndTable {
            tz: tz.clone(),
            ..DndTable::default()
        };
        table.owners.insert(1, 10);
        table.owners.insert(2, 20);
        let night = Dnd {
            on: false,
            schedule: Some(schedule(
                r#"{"weekly":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"21:00","to":"07:00"}]}"#,
            )),
        };
        table.users.insert(10, night);
        table.devices.insert(
            3,
            Dnd {
                on: true,
                schedule: None,
            },
        );
        let evening = at("2026-12-02T23:00", &tz);
        let noon = at("2026-12-02T12:00", &tz);
        assert!(
            table.device_active(DeviceId(1), evening),
            "the owner's schedule"
        );
        assert!(!table.device_active(DeviceId(1), noon));
        assert!(!table.device_active(DeviceId(2), evening));
        assert!(table.device_active(DeviceId(3), noon), "on by hand");
        let view = table.view(&[10, 20], &[DeviceId(1), DeviceId(2), DeviceId(3)], evening);
        assert!(!view.number_dnd, "one of the two people is not in DND");
        assert_eq!(
            view.devices,
            BTreeSet::from([DeviceId(1), DeviceId(3)]),
            "the person in DND on a shared number: their phone is silent"
        );
        // A number whose only person is in DND: the rules decide (a VIP
        // may ring through); a phone's own DND stays absolute.
        let view = table.view(&[10], &[DeviceId(1), DeviceId(3)], evening);
        assert!(view.number_dnd);
        assert_eq!(view.devices, BTreeSet::from([DeviceId(3)]));
        assert!(!table.view(&[], &[], evening).number_dnd, "nobody assigned");
        table.did_users.insert(5, vec![10]);
        assert!(!table.silences(5, DeviceId(1), evening));
        assert!(table.silences(5, DeviceId(3), noon));
        table.system.on = true;
        assert!(table.device_active(DeviceId(2), noon));
        assert!(table.device_active(DeviceId(4), noon), "an unowned phone");
        assert!(table.view(&[20], &[], noon).number_dnd);
        assert!(!table.silences(5, DeviceId(2), noon), "the rules decide");
    }

    #[test]
    fn the_view_of_a_number_reads_the_database() {
        let conn = db();
        let tz = TimeZone::get("America/New_York").unwrap();
        let kid = user(&conn, "kid@example.com");
        let mum = user(&conn, "mum@example.com");
        let kid_phone = make_device(&conn, "kid-phone", Some(kid));
        let mum_phone = make_device(&conn, "mum-phone", Some(mum));
        let did = crate::store::dids::tests::make(&conn, "+15551230001");
        crate::store::dids::assign(&conn, did, kid).unwrap();
        crate::store::dids::assign(&conn, did, mum).unwrap();
        let bedtime = r#"{"weekly":[{"days":["wed"],"from":"21:00","to":"07:00"}]}"#;
        dnd::put(&conn, Scope::User, kid, false, Some(bedtime), t(0)).unwrap();
        let late = at("2026-12-02T23:00", &tz); // a Wednesday
        let view = view_for_did(&conn, did, late, &tz).unwrap();
        assert_eq!(view.devices, BTreeSet::from([kid_phone]));
        assert!(!view.number_dnd);
        dnd::put(&conn, Scope::Device, mum_phone.0, true, None, t(1)).unwrap();
        let view = view_for_did(&conn, did, late, &tz).unwrap();
        assert_eq!(view.devices, BTreeSet::from([kid_phone, mum_phone]));
        assert!(!view.number_dnd, "a phone in DND is not its person in DND");
        // Both people in DND: the number is, and the rules decide; only
        // the phone's own DND stays.
        dnd::put(&conn, Scope::User, mum, true, None, t(2)).unwrap();
        let view = view_for_did(&conn, did, late, &tz).unwrap();
        assert!(view.number_dnd);
        assert_eq!(view.devices, BTreeSet::from([mum_phone]));
        let morning = at("2026-12-03T08:00", &tz);
        let view = view_for_did(&conn, did, morning, &tz).unwrap();
        assert!(!view.number_dnd, "the kid's bedtime is over");
        assert_eq!(view.devices, BTreeSet::from([mum_phone]));
    }

    #[test]
    fn an_unreadable_stored_schedule_counts_as_none() {
        let s = Setting {
            scope: Scope::Device,
            subject_id: 1,
            on: false,
            schedule: Some(r#"{"weekly":"nope"}"#.into()),
            updated_at: String::new(),
        };
        let state = DndState::of(&s, jiff::Timestamp::UNIX_EPOCH, &TimeZone::UTC);
        assert_eq!((state.schedule, state.active), (None, false));
    }
}
