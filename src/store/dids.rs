//! The `dids` and `did_users` tables: the household's phone numbers and which
//! users each belongs to (a user sees the calls, voicemail and messages of
//! the numbers assigned to them).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{conflict_as, found, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

/// A phone number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Did {
    /// Row id.
    pub id: i64,
    /// E.164, e.g. `+15551234567`.
    pub number: String,
    /// Twilio's IncomingPhoneNumber SID, once linked.
    pub twilio_sid: Option<String>,
    /// A friendly name ("Home line").
    pub name: String,
    /// Whether SMS is handled.
    pub sms_enabled: bool,
    /// Whether calls are handled.
    pub voice_enabled: bool,
    /// Creation time.
    pub created_at: String,
}

const COLUMNS: &str = "id, number, twilio_sid, name, sms_enabled, voice_enabled, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Did> {
    Ok(Did {
        id: r.get(0)?,
        number: r.get(1)?,
        twilio_sid: r.get(2)?,
        name: r.get(3)?,
        sms_enabled: r.get(4)?,
        voice_enabled: r.get(5)?,
        created_at: r.get(6)?,
    })
}

/// Adds a number (the schema enforces the E.164 shape).
pub fn insert(
    conn: &Connection,
    number: &str,
    name: &str,
    twilio_sid: Option<&str>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO dids (number, name, twilio_sid, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![number, name, twilio_sid, now.to_string()],
    )
    .map_err(|e| conflict_as(e, "this number exists already or is not in E.164 form"))?;
    Ok(conn.last_insert_rowid())
}

/// One number by id.
pub fn get(conn: &Connection, id: i64) -> Result<Did, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM dids WHERE id = ?1"),
            [id],
            from_row,
        ),
        "number",
        id,
    )
}

/// One number by its E.164 form (webhooks name numbers, not ids).
pub fn find_by_number(conn: &Connection, number: &str) -> Result<Option<Did>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM dids WHERE number = ?1"),
            [number],
            from_row,
        )
        .optional()?)
}

/// Numbers, optionally only those assigned to `user`, ordered by number.
pub fn list(conn: &Connection, user: Option<i64>, page: Page) -> Result<Paged<Did>, StoreError> {
    const FILTER: &str = "?1 IS NULL OR id IN (SELECT did_id FROM did_users WHERE user_id = ?1)";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dids WHERE {FILTER} ORDER BY number LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![user, page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        &format!("SELECT count(*) FROM dids WHERE {FILTER}"),
        [user],
        |r| r.get(0),
    )?;
    Ok(Paged { items, total })
}

/// Updates name and feature flags.
pub fn update(
    conn: &Connection,
    id: i64,
    name: &str,
    sms_enabled: bool,
    voice_enabled: bool,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE dids SET name = ?2, sms_enabled = ?3, voice_enabled = ?4 WHERE id = ?1",
        params![id, name, sms_enabled, voice_enabled],
    )?;
    one_row(n, "number", id)
}

/// Removes a number with its assignments, routes, voicemail and messages.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM dids WHERE id = ?1", [id])?,
        "number",
        id,
    )
}

/// Gives `user` access to `did` (idempotent).
pub fn assign(conn: &Connection, did: i64, user: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO did_users (did_id, user_id) VALUES (?1, ?2)",
        params![did, user],
    )
    .map_err(|e| conflict_as(e, "no such number or user"))?;
    Ok(())
}

/// Takes `user`'s access to `did` away.
pub fn unassign(conn: &Connection, did: i64, user: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM did_users WHERE did_id = ?1 AND user_id = ?2",
        params![did, user],
    )?;
    Ok(())
}

/// Makes `users` exactly the users of `did` (in one transaction, so a
/// failure leaves the old assignment); an unknown user is a `Conflict`.
pub fn set_users(conn: &mut Connection, did: i64, users: &[i64]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM did_users WHERE did_id = ?1", [did])?;
    for user in users {
        assign(&tx, did, *user)?;
    }
    tx.commit()?;
    Ok(())
}

/// The users of a number (the mailbox's readers).
pub fn users_of(conn: &Connection, did: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT user_id FROM did_users WHERE did_id = ?1 ORDER BY user_id")?;
    let ids = stmt
        .query_map([did], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The numbers of a user (what they may see).
pub fn ids_of_user(conn: &Connection, user: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT did_id FROM did_users WHERE user_id = ?1 ORDER BY did_id")?;
    let ids = stmt
        .query_map([user], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Every voice-enabled number with the phones that ring for it (every
/// phone of every user it is assigned to), for the call router.
pub fn routing(conn: &Connection) -> Result<Vec<(i64, String, Vec<i64>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT d.id, d.number, dev.id FROM dids d \
         LEFT JOIN did_users du ON du.did_id = d.id \
         LEFT JOIN devices dev ON dev.user_id = du.user_id \
         WHERE d.voice_enabled = 1 ORDER BY d.id, dev.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })?;
    let mut out: Vec<(i64, String, Vec<i64>)> = Vec::new();
    for row in rows {
        let (id, number, device) = row?;
        match out.last_mut() {
            Some(last) if last.0 == id => last.2.extend(device),
            _ => out.push((id, number, device.into_iter().collect())),
        }
    }
    Ok(out)
}

/// Each user's first number (lowest id), which their phones call out as.
pub fn first_number_of_users(conn: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT du.user_id, d.number FROM did_users du JOIN dids d ON d.id = du.did_id \
         WHERE d.id = (SELECT MIN(d2.id) FROM did_users du2 JOIN dids d2 ON d2.id = du2.did_id \
                       WHERE du2.user_id = du.user_id)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing::{db, t};
    use crate::store::users::{self, Role};

    pub(crate) fn make(conn: &Connection, number: &str) -> i64 {
        insert(conn, number, "", None, t(0)).expect("insert did")
    }

    #[test]
    fn crud_and_assignments() {
        let mut conn = db();
        let home = make(&conn, "+15551230001");
        let work = make(&conn, "+15551230002");
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        assign(&conn, home, mum).expect("assign");
        assign(&conn, home, kid).expect("assign");
        assign(&conn, home, kid).expect("assigning twice is fine");
        assign(&conn, work, mum).expect("assign");
        assert_eq!(users_of(&conn, home).expect("users"), vec![mum, kid]);
        assert_eq!(ids_of_user(&conn, kid).expect("dids"), vec![home]);
        assert_eq!(list(&conn, Some(kid), Page::ALL).expect("list").total, 1);
        assert_eq!(list(&conn, None, Page::ALL).expect("list").total, 2);
        set_users(&mut conn, work, &[kid]).expect("replace");
        assert_eq!(users_of(&conn, work).expect("users"), vec![kid]);
        assert!(matches!(
            set_users(&mut conn, work, &[kid, 999]),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            users_of(&conn, work).expect("users"),
            vec![kid],
            "a failed replacement changes nothing"
        );
        set_users(&mut conn, work, &[mum]).expect("back");
        unassign(&conn, home, kid).expect("unassign");
        assert!(ids_of_user(&conn, kid).expect("dids").is_empty());
        update(&conn, home, "Home", true, true).expect("update");
        let d = find_by_number(&conn, "+15551230001")
            .expect("find")
            .expect("exists");
        assert_eq!((d.name.as_str(), d.sms_enabled), ("Home", true));
        delete(&conn, home).expect("delete");
        assert!(matches!(get(&conn, home), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn schema_rejects_non_e164_and_duplicates() {
        let conn = db();
        make(&conn, "+15551230001");
        for bad in [
            "+15551230001",
            "5551230001",
            "+0123",
            "+1",
            "+1234567890123456",
        ] {
            assert!(
                matches!(
                    insert(&conn, bad, "", None, t(0)),
                    Err(StoreError::Conflict(_))
                ),
                "{bad}"
            );
        }
    }
}
