//! The `users` table: web accounts (admins and family members).
//!
//! The password hash never leaves this module inside [`User`]; it is read
//! only through [`password_hash_by_email`] for a login check.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{conflict_as, found, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

text_enum! {
    /// What an account may do.
    pub enum Role { Admin = "admin", User = "user" }
}

/// A web account, without its password hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name; unique, compared case-insensitively.
    pub email: String,
    /// Shown in the UI.
    pub display_name: String,
    /// Admin or user.
    pub role: Role,
    /// When the account was made.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Last successful login.
    pub last_login_at: Option<String>,
}

/// What it takes to create an account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Login name.
    pub email: &'a str,
    /// Shown in the UI.
    pub display_name: &'a str,
    /// An argon2 PHC string (see `accounts::password`).
    pub password_hash: &'a str,
    /// Admin or user.
    pub role: Role,
}

const COLUMNS: &str = "id, email, display_name, role, created_at, updated_at, last_login_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        last_login_at: r.get(6)?,
    })
}

/// Creates an account; a taken e-mail is a `Conflict`.
pub fn insert(conn: &Connection, u: &NewUser<'_>, now: Timestamp) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO users (email, display_name, password_hash, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            u.email,
            u.display_name,
            u.password_hash,
            u.role,
            now.to_string()
        ],
    )
    .map_err(|e| conflict_as(e, "a user with this e-mail already exists"))?;
    Ok(conn.last_insert_rowid())
}

/// One account by id.
pub fn get(conn: &Connection, id: i64) -> Result<User, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        ),
        "user",
        id,
    )
}

/// One account by e-mail (case-insensitive).
pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE email = ?1"),
            [email],
            from_row,
        )
        .optional()?)
}

/// The id and password hash for a login attempt.
pub fn password_hash_by_email(
    conn: &Connection,
    email: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash FROM users WHERE email = ?1",
            [email],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Accounts ordered by e-mail.
pub fn list(conn: &Connection, page: Page) -> Result<Paged<User>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY email LIMIT ?1 OFFSET ?2"
    ))?;
    let items = stmt
        .query_map(params![page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    Ok(Paged { items, total })
}

/// Replaces the password hash.
pub fn set_password_hash(
    conn: &Connection,
    id: i64,
    hash: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, hash, now.to_string()],
    )?;
    one_row(n, "user", id)
}

/// Changes the display name and role.
pub fn update(
    conn: &Connection,
    id: i64,
    display_name: &str,
    role: Role,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET display_name = ?2, role = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, display_name, role, now.to_string()],
    )?;
    one_row(n, "user", id)
}

/// Records a successful login.
pub fn record_login(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
        params![id, now.to_string()],
    )?;
    Ok(())
}

/// How many admins exist (the last one may not be deleted or demoted).
pub fn count_admins(conn: &Connection) -> Result<u64, StoreError> {
    Ok(
        conn.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
            r.get(0)
        })?,
    )
}

/// Deletes an account; its devices become unowned, its DID assignments go.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM users WHERE id = ?1", [id])?,
        "user",
        id,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    pub(crate) fn make(conn: &Connection, email: &str, role: Role) -> i64 {
        insert(
            conn,
            &NewUser {
                email,
                display_name: "",
                password_hash: "$argon2id$x",
                role,
            },
            t(0),
        )
        .expect("insert")
    }

    #[test]
    fn crud_round_trip() {
        let conn = db();
        let id = make(&conn, "Mum@Example.org", Role::Admin);
        let u = get(&conn, id).expect("get");
        assert_eq!(
            (u.email.as_str(), u.role, u.created_at.as_str()),
            ("Mum@Example.org", Role::Admin, "2026-11-21T10:00:00Z")
        );
        assert_eq!(
            find_by_email(&conn, "mum@example.org")
                .expect("find")
                .map(|u| u.id),
            Some(id),
            "e-mail is case-insensitive"
        );
        assert_eq!(
            password_hash_by_email(&conn, "MUM@example.org").expect("hash"),
            Some((id, "$argon2id$x".into()))
        );
        set_password_hash(&conn, id, "$argon2id$y", t(5)).expect("set hash");
        update(&conn, id, "Mum", Role::User, t(6)).expect("update");
        record_login(&conn, id, t(7)).expect("login");
        let u = get(&conn, id).expect("get");
        assert_eq!((u.display_name.as_str(), u.role), ("Mum", Role::User));
        assert_eq!(u.last_login_at.as_deref(), Some("2026-11-21T10:00:07Z"));
        delete(&conn, id).expect("delete");
        assert!(matches!(get(&conn, id), Err(StoreError::NotFound { .. })));
        assert!(matches!(
            delete(&conn, id),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn duplicate_email_is_a_conflict_and_admins_are_counted() {
        let conn = db();
        make(&conn, "a@x.org", Role::Admin);
        make(&conn, "b@x.org", Role::User);
        let dup = insert(
            &conn,
            &NewUser {
                email: "A@X.ORG",
                display_name: "",
                password_hash: "h",
                role: Role::User,
            },
            t(0),
        );
        assert!(matches!(dup, Err(StoreError::Conflict(_))));
        assert_eq!(count_admins(&conn).expect("count"), 1);
        let page = list(
            &conn,
            Page {
                limit: 1,
                offset: 1,
            },
        )
        .expect("list");
        assert_eq!((page.total, page.items[0].email.as_str()), (2, "b@x.org"));
    }

    #[test]
    fn every_role_is_accepted_by_the_schema() {
        let conn = db();
        for (i, role) in Role::ALL.iter().enumerate() {
            make(&conn, &format!("{i}@x.org"), *role);
        }
        assert!(
            conn.execute("UPDATE users SET role = 'root'", []).is_err(),
            "CHECK rejects unknown roles"
        );
    }
}
