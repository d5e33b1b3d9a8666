//! The `dnd` table: Do-Not-Disturb settings of the household, of web
//! accounts and of phones. A subject without a row is not in DND. The
//! schedule is kept as its JSON text; reading it into a
//! `rules::schedule::Schedule` (and deciding whether it is active now) is
//! done above this layer, in `rules::dnd`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::StoreError;
use crate::clock::Timestamp;

text_enum! {
    /// What a DND setting is for.
    pub enum Scope { System = "system", User = "user", Device = "device" }
}

/// One stored setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// What it is for.
    pub scope: Scope,
    /// The account's or phone's id (0 for the household).
    pub subject_id: i64,
    /// Switched on by hand (or by `*78`).
    pub on: bool,
    /// The schedule, as JSON text (`None`: none).
    pub schedule: Option<String>,
    /// When it last changed.
    pub updated_at: String,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Setting> {
    Ok(Setting {
        scope: r.get(0)?,
        subject_id: r.get(1)?,
        on: r.get(2)?,
        schedule: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

const COLUMNS: &str = r#"scope, subject_id, "on", schedule, updated_at"#;

/// Every stored setting, the household's first, then accounts, then phones.
pub fn all(conn: &Connection) -> Result<Vec<Setting>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dnd ORDER BY CASE scope WHEN 'system' THEN 0 WHEN 'user' THEN 1 ELSE 2 END, subject_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One subject's setting, if it has one.
pub fn get(
    conn: &Connection,
    scope: Scope,
    subject_id: i64,
) -> Result<Option<Setting>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM dnd WHERE scope = ?1 AND subject_id = ?2"),
            params![scope, subject_id],
            from_row,
        )
        .optional()?)
}

/// Writes a subject's setting (insert or replace) and returns it. The
/// subject must exist: a user or phone id that does not is `NotFound`.
pub fn put(
    conn: &Connection,
    scope: Scope,
    subject_id: i64,
    on: bool,
    schedule: Option<&str>,
    now: Timestamp,
) -> Result<Setting, StoreError> {
    let table = match scope {
        Scope::System if subject_id != 0 => {
            return Err(StoreError::not_found("household", subject_id))
        }
        Scope::System => None,
        Scope::User => Some(("users", "user")),
        Scope::Device => Some(("devices", "device")),
    };
    if let Some((table, entity)) = table {
        let exists: bool = conn.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ?1)"),
            [subject_id],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::not_found(entity, subject_id));
        }
    }
    conn.execute(
        r#"INSERT INTO dnd (scope, subject_id, "on", schedule, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
           ON CONFLICT (scope, subject_id) DO UPDATE SET "on" = excluded."on",
               schedule = excluded.schedule, updated_at = excluded.updated_at"#,
        params![scope, subject_id, on, schedule, now.to_string()],
    )?;
    Ok(Setting {
        scope,
        subject_id,
        on,
        schedule: schedule.map(str::to_string),
        updated_at: now.to_string(),
    })
}

/// Switches a subject's DND on or off by hand, keeping its schedule (what
/// the `*78`/`*79` feature codes do).
pub fn set_on(
    conn: &Connection,
    scope: Scope,
    subject_id: i64,
    on: bool,
    now: Timestamp,
) -> Result<Setting, StoreError> {
    let schedule = get(conn, scope, subject_id)?.and_then(|s| s.schedule);
    put(conn, scope, subject_id, on, schedule.as_deref(), now)
}

/// The accounts a number is assigned to.
pub fn users_of_did(conn: &Connection, did_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM did_users WHERE did_id = ?1 ORDER BY user_id")?;
    let rows = stmt.query_map([did_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every account's id, ascending.
pub fn user_ids(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM users ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every phone's id (of `owner` only, if given), ascending.
pub fn device_ids(conn: &Connection, owner: Option<i64>) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM devices WHERE ?1 IS NULL OR user_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([owner], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::devices::tests::make as make_device;
    use crate::store::testing::{db, t};

    fn make_user(conn: &Connection, email: &str) -> i64 {
        conn.execute(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?1, 'x', 'now', 'now')",
            [email],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn settings_are_written_replaced_and_listed_in_scope_order() {
        let conn = db();
        let user = make_user(&conn, "a@example.com");
        let phone = make_device(&conn, "kitchen", Some(user));
        put(&conn, Scope::Device, phone.0, true, None, t(0)).unwrap();
        put(
            &conn,
            Scope::User,
            user,
            false,
            Some(r#"{"weekly":[]}"#),
            t(1),
        )
        .unwrap();
        put(&conn, Scope::System, 0, false, None, t(2)).unwrap();
        let scopes: Vec<Scope> = all(&conn).unwrap().iter().map(|s| s.scope).collect();
        assert_eq!(scopes, [Scope::System, Scope::User, Scope::Device]);
        let replaced = put(&conn, Scope::Device, phone.0, false, None, t(3)).unwrap();
        assert_eq!(get(&conn, Scope::Device, phone.0).unwrap(), Some(replaced));
        assert_eq!(all(&conn).unwrap().len(), 3);
    }

    #[test]
    fn the_feature_code_keeps_the_schedule() {
        let conn = db();
        let phone = make_device(&conn, "kitchen", None);
        let json = r#"{"weekly":[],"dates":[]}"#;
        put(&conn, Scope::Device, phone.0, false, Some(json), t(0)).unwrap();
        let s = set_on(&conn, Scope::Device, phone.0, true, t(1)).unwrap();
        assert!(s.on);
        assert_eq!(s.schedule.as_deref(), Some(json));
        // Without a row, the code creates one.
        let other = make_device(&conn, "office", None);
        assert!(
            set_on(&conn, Scope::Device, other.0, true, t(2))
                .unwrap()
                .on
        );
    }

    #[test]
    fn unknown_subjects_are_not_found_and_deleted_ones_vanish() {
        let conn = db();
        assert!(matches!(
            put(&conn, Scope::Device, 99, true, None, t(0)),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            put(&conn, Scope::User, 99, true, None, t(0)),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            put(&conn, Scope::System, 3, true, None, t(0)),
            Err(StoreError::NotFound { .. })
        ));
        let user = make_user(&conn, "b@example.com");
        let phone = make_device(&conn, "hall", Some(user));
        put(&conn, Scope::Device, phone.0, true, None, t(0)).unwrap();
        put(&conn, Scope::User, user, true, None, t(0)).unwrap();
        conn.execute("DELETE FROM devices WHERE id = ?1", [phone.0])
            .unwrap();
        conn.execute("DELETE FROM users WHERE id = ?1", [user])
            .unwrap();
        assert!(all(&conn).unwrap().is_empty());
    }

    #[test]
    fn every_scope_round_trips() {
        let conn = db();
        let user = make_user(&conn, "c@example.com");
        let phone = make_device(&conn, "den", None);
        for scope in Scope::ALL {
            let id = match scope {
                Scope::System => 0,
                Scope::User => user,
                Scope::Device => phone.0,
            };
            put(&conn, *scope, id, true, None, t(0)).unwrap();
            assert_eq!(get(&conn, *scope, id).unwrap().unwrap().scope, *scope);
        }
    }
}
