//! The `devices` table: SIP phones and softphones, each owned by a user.
//!
//! The SIP password is stored sealed (see `secrets`); this module moves the
//! sealed bytes and never sees the plain password.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{conflict_as, found, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

/// A phone's row id in the database. The call layer, the HTTP API and the
/// store name phones by it; it travels as a plain number in JSON and SQL.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct DeviceId(pub i64);

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl rusqlite::ToSql for DeviceId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl rusqlite::types::FromSql for DeviceId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        i64::column_result(v).map(DeviceId)
    }
}

/// Associated data binding a sealed SIP password to this column (see `secrets`).
pub const SIP_PASSWORD_CONTEXT: &str = "device.sip_password";

text_enum! {
    /// The kind of phone, which decides its provisioning template.
    pub enum DeviceType {
        Grandstream = "grandstream",
        Yealink = "yealink",
        Linphone = "linphone",
        Zoiper = "zoiper",
        Softphone = "softphone",
        Other = "other",
    }
}

/// A phone as shown by the API (no secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Row id.
    pub id: DeviceId,
    /// The owning user, if any.
    pub user_id: Option<i64>,
    /// Shown in the UI ("Kitchen phone").
    pub name: String,
    /// SIP auth user name.
    pub username: String,
    /// Kind of phone.
    pub device_type: DeviceType,
    /// Whether its calls are recorded.
    pub recording_enabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// The editable fields of a phone.
#[derive(Debug, Clone)]
pub struct DeviceFields<'a> {
    /// Owner.
    pub user_id: Option<i64>,
    /// Display name.
    pub name: &'a str,
    /// SIP user name.
    pub username: &'a str,
    /// Kind of phone.
    pub device_type: DeviceType,
    /// Record its calls.
    pub recording_enabled: bool,
}

const COLUMNS: &str =
    "id, user_id, name, username, device_type, recording_enabled, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        username: r.get(3)?,
        device_type: r.get(4)?,
        recording_enabled: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// Adds a phone with its sealed SIP password.
pub fn insert(
    conn: &Connection,
    f: &DeviceFields<'_>,
    sealed_password: &[u8],
    now: Timestamp,
) -> Result<DeviceId, StoreError> {
    conn.execute(
        "INSERT INTO devices (user_id, name, username, sip_password_sealed, device_type, recording_enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![f.user_id, f.name, f.username, sealed_password, f.device_type, f.recording_enabled, now.to_string()],
    )
    .map_err(|e| conflict_as(e, "this SIP user name is taken or the owner does not exist"))?;
    Ok(DeviceId(conn.last_insert_rowid()))
}

/// One phone by id.
pub fn get(conn: &Connection, id: DeviceId) -> Result<Device, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM devices WHERE id = ?1"),
            [id],
            from_row,
        ),
        "device",
        id,
    )
}

/// A phone and its sealed password by SIP user name (for digest checks).
pub fn credentials(
    conn: &Connection,
    username: &str,
) -> Result<Option<(Device, Vec<u8>)>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS}, sip_password_sealed FROM devices WHERE username = ?1"),
            [username],
            |r| Ok((from_row(r)?, r.get(8)?)),
        )
        .optional()?)
}

/// Every phone's id, SIP user name and sealed password, for the registrar's
/// in-memory credential table.
pub fn all_credentials(conn: &Connection) -> Result<Vec<(DeviceId, String, Vec<u8>)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, username, sip_password_sealed FROM devices ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Phones, optionally only those of one owner, ordered by name.
pub fn list(
    conn: &Connection,
    owner: Option<i64>,
    page: Page,
) -> Result<Paged<Device>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE ?1 IS NULL OR user_id = ?1 ORDER BY name, id LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![owner, page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        "SELECT count(*) FROM devices WHERE ?1 IS NULL OR user_id = ?1",
        [owner],
        |r| r.get(0),
    )?;
    Ok(Paged { items, total })
}

/// The ids of the phones `user_id` owns, ascending.
pub fn ids_of_user(conn: &Connection, user_id: i64) -> Result<Vec<DeviceId>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM devices WHERE user_id = ?1 ORDER BY id")?;
    let ids = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Updates the editable fields.
pub fn update(
    conn: &Connection,
    id: DeviceId,
    f: &DeviceFields<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "UPDATE devices SET user_id = ?2, name = ?3, username = ?4, device_type = ?5, recording_enabled = ?6, updated_at = ?7
             WHERE id = ?1",
            params![id, f.user_id, f.name, f.username, f.device_type, f.recording_enabled, now.to_string()],
        )
        .map_err(|e| conflict_as(e, "this SIP user name is taken or the owner does not exist"))?;
    one_row(n, "device", id)
}

/// Replaces the sealed SIP password.
pub fn set_sealed_password(
    conn: &Connection,
    id: DeviceId,
    sealed: &[u8],
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE devices SET sip_password_sealed = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, sealed, now.to_string()],
    )?;
    one_row(n, "device", id)
}

/// Removes a phone and its registrations.
pub fn delete(conn: &Connection, id: DeviceId) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM devices WHERE id = ?1", [id])?,
        "device",
        id,
    )
}

/// A phone as the call router sees it: id, SIP user name, display name, user.
pub type RoutingRow = (DeviceId, String, String, Option<i64>);

/// Every phone's id, SIP user name, display name and user, for the router.
pub fn routing(conn: &Connection) -> Result<Vec<RoutingRow>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, username, name, user_id FROM devices ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing::{db, t};
    use crate::store::users::{self, Role};

    pub(crate) fn make(conn: &Connection, username: &str, owner: Option<i64>) -> DeviceId {
        let f = DeviceFields {
            user_id: owner,
            name: username,
            username,
            device_type: DeviceType::Softphone,
            recording_enabled: false,
        };
        insert(conn, &f, b"sealed", t(0)).expect("insert device")
    }

    #[test]
    fn crud_and_owner_filter() {
        let conn = db();
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        let a = make(&conn, "kitchen", Some(mum));
        make(&conn, "bedroom", Some(kid));
        assert_eq!(list(&conn, Some(kid), Page::ALL).expect("list").total, 1);
        assert_eq!(list(&conn, None, Page::ALL).expect("list").total, 2);
        let (d, sealed) = credentials(&conn, "kitchen")
            .expect("creds")
            .expect("exists");
        assert_eq!((d.id, sealed.as_slice()), (a, &b"sealed"[..]));
        assert_eq!(all_credentials(&conn).expect("all").len(), 2);
        let f = DeviceFields {
            user_id: Some(kid),
            name: "Kitchen",
            username: "kitchen",
            device_type: DeviceType::Grandstream,
            recording_enabled: true,
        };
        update(&conn, a, &f, t(1)).expect("update");
        set_sealed_password(&conn, a, b"new", t(2)).expect("password");
        let d = get(&conn, a).expect("get");
        assert_eq!(
            (d.user_id, d.device_type, d.recording_enabled),
            (Some(kid), DeviceType::Grandstream, true)
        );
        users::delete(&conn, kid).expect("delete owner");
        assert_eq!(
            get(&conn, a).expect("get").user_id,
            None,
            "a deleted owner leaves the phone unowned"
        );
        delete(&conn, a).expect("delete");
        assert!(matches!(get(&conn, a), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn username_is_unique_and_every_type_fits_the_schema() {
        let conn = db();
        make(&conn, "dup", None);
        let f = DeviceFields {
            user_id: None,
            name: "x",
            username: "dup",
            device_type: DeviceType::Other,
            recording_enabled: false,
        };
        assert!(matches!(
            insert(&conn, &f, b"s", t(0)),
            Err(StoreError::Conflict(_))
        ));
        for (i, ty) in DeviceType::ALL.iter().enumerate() {
            let name = format!("d{i}");
            let f = DeviceFields {
                user_id: None,
                name: &name,
                username: &name,
                device_type: *ty,
                recording_enabled: false,
            };
            insert(&conn, &f, b"s", t(0)).expect("every type is allowed by CHECK");
        }
        let f = DeviceFields {
            user_id: Some(999),
            name: "x",
            username: "orphan",
            device_type: DeviceType::Other,
            recording_enabled: false,
        };
        assert!(
            matches!(insert(&conn, &f, b"s", t(0)), Err(StoreError::Conflict(_))),
            "foreign keys are on"
        );
    }
}
