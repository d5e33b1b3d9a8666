//! Applies the embedded `migrations/NNN_name.sql` files in order.
//!
//! Each migration runs in its own transaction together with the row that
//! records it in `schema_migrations`, so a failure leaves no half-applied
//! schema. Running again applies nothing (idempotent). An applied migration
//! whose text changed since, or a database newer than this binary, is refused
//! rather than guessed at.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;
use crate::clock::Clock;

/// One embedded migration.
#[derive(Debug)]
pub struct Migration {
    /// Its number, from the file name.
    pub version: u32,
    /// Its name, from the file name.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// A migration that [`apply`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its number.
    pub version: u32,
    /// Its name.
    pub name: &'static str,
}

fn checksum(sql: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, sql.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Brings the database up to the newest embedded migration.
pub fn apply(conn: &mut Connection, clock: &dyn Clock) -> Result<Vec<Applied>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TEXT NOT NULL
        ) STRICT;",
    )?;
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    let newest_applied: Option<u32> =
        conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })?;
    if let Some(v) = newest_applied.filter(|v| *v > newest_known) {
        return Err(StoreError::SchemaMismatch(format!(
            "the database is at migration {v:03} but this binary knows only up to {newest_known:03}; \
             run a newer Homeline or restore a backup"
        )));
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let recorded: Option<String> = conn
            .query_row(
                "SELECT checksum FROM schema_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()?;
        match recorded {
            Some(sum) if sum == checksum(m.sql) => continue,
            Some(_) => {
                return Err(StoreError::SchemaMismatch(format!(
                "migration {:03}_{} was changed after it was applied; migrations are append-only",
                m.version, m.name
            )))
            }
            None => {}
        }
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![m.version, m.name, checksum(m.sql), clock.now().to_string()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied.push(Applied {
            version: m.version,
            name: m.name,
        });
    }
    Ok(applied)
}

/// The newest applied migration, 0 for an empty database.
pub fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn schema(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn applies_all_then_nothing() {
        let mut conn = Connection::open_in_memory().expect("open");
        let first = apply(&mut conn, &SystemClock).expect("first run");
        assert_eq!(first.len(), MIGRATIONS.len());
        assert_eq!(
            first[0],
            Applied {
                version: 1,
                name: "initial_schema"
            }
        );
        let before = schema(&conn);
        assert!(apply(&mut conn, &SystemClock)
            .expect("second run")
            .is_empty());
        assert_eq!(schema(&conn), before);
        assert_eq!(
            current_version(&conn).expect("version"),
            MIGRATIONS.len() as u32
        );
    }

    #[test]
    fn refuses_an_edited_migration() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply(&mut conn, &SystemClock).expect("apply");
        conn.execute(
            "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1",
            [],
        )
        .expect("tamper");
        let err = apply(&mut conn, &SystemClock).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    #[test]
    fn refuses_a_newer_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        apply(&mut conn, &SystemClock).expect("apply");
        conn.execute(
            "INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')",
            [],
        )
        .expect("insert");
        assert!(matches!(
            apply(&mut conn, &SystemClock),
            Err(StoreError::SchemaMismatch(_))
        ));
    }

    #[test]
    fn a_failing_migration_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE config (x INTEGER);")
            .expect("squat the name");
        let err = apply(&mut conn, &SystemClock).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 1, .. }),
            "{err}"
        );
        assert_eq!(current_version(&conn).expect("version"), 0);
        let users: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'users'",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(
            users, 0,
            "the failed migration's other tables were rolled back"
        );
    }
}
