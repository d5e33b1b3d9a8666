//! The `caller_lists` and `caller_list_numbers` tables: named lists of
//! callers ("VIP", "Family") that routing rules match on. Numbers arrive
//! normalized (E.164, see `rules::model`).

use rusqlite::{params, Connection};

use super::{conflict_as, found, one_row, StoreError};
use crate::clock::Timestamp;

/// A stored list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// Row id.
    pub id: i64,
    /// Unique, case-insensitively.
    pub name: String,
    /// E.164, sorted.
    pub numbers: Vec<String>,
}

fn numbers_of(conn: &Connection, id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT number FROM caller_list_numbers WHERE list_id = ?1 ORDER BY number",
    )?;
    let rows = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn put_numbers(conn: &Connection, id: i64, numbers: &[String]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM caller_list_numbers WHERE list_id = ?1", [id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO caller_list_numbers (list_id, number) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for n in numbers {
        stmt.execute(params![id, n])?;
    }
    Ok(())
}

const DUPLICATE: &str = "a caller list with this name exists already";

/// Adds a list with its numbers, in one transaction; returns its id.
pub fn insert(
    conn: &mut Connection,
    name: &str,
    numbers: &[String],
    now: Timestamp,
) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO caller_lists (name, created_at, updated_at) VALUES (?1, ?2, ?2)",
        params![name, now.to_string()],
    )
    .map_err(|e| conflict_as(e, DUPLICATE))?;
    let id = tx.last_insert_rowid();
    put_numbers(&tx, id, numbers).map_err(|e| match e {
        StoreError::Sqlite(e) => conflict_as(e, "a number is not in E.164 form"),
        e => e,
    })?;
    tx.commit()?;
    Ok(id)
}

/// Renames a list and replaces its numbers, in one transaction.
pub fn update(
    conn: &mut Connection,
    id: i64,
    name: &str,
    numbers: &[String],
    now: Timestamp,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    one_row(
        tx.execute(
            "UPDATE caller_lists SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, name, now.to_string()],
        )
        .map_err(|e| conflict_as(e, DUPLICATE))?,
        "caller list",
        id,
    )?;
    put_numbers(&tx, id, numbers).map_err(|e| match e {
        StoreError::Sqlite(e) => conflict_as(e, "a number is not in E.164 form"),
        e => e,
    })?;
    tx.commit()?;
    Ok(())
}

/// One list.
pub fn get(conn: &Connection, id: i64) -> Result<ListRow, StoreError> {
    let name: String = found(
        conn.query_row("SELECT name FROM caller_lists WHERE id = ?1", [id], |r| {
            r.get(0)
        }),
        "caller list",
        id,
    )?;
    Ok(ListRow {
        id,
        name,
        numbers: numbers_of(conn, id)?,
    })
}

/// Every list, by name.
pub fn list(conn: &Connection) -> Result<Vec<ListRow>, StoreError> {
    let ids: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare_cached("SELECT id, name FROM caller_lists ORDER BY name COLLATE NOCASE, id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows
    };
    ids.into_iter()
        .map(|(id, name)| {
            Ok(ListRow {
                id,
                name,
                numbers: numbers_of(conn, id)?,
            })
        })
        .collect()
}

/// Removes a list and its numbers.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM caller_lists WHERE id = ?1", [id])?,
        "caller list",
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    fn nums(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_with_numbers_crud() {
        let mut conn = db();
        let vip = insert(
            &mut conn,
            "VIP",
            &nums(&["+15550000002", "+15550000001"]),
            t(0),
        )
        .expect("insert");
        let fam = insert(&mut conn, "family", &[], t(0)).expect("insert");
        assert!(matches!(
            insert(&mut conn, "vip", &[], t(1)),
            Err(StoreError::Conflict(_))
        ));
        let got = get(&conn, vip).expect("get");
        assert_eq!(got.numbers, ["+15550000001", "+15550000002"]);
        let all = list(&conn).expect("list");
        assert_eq!(
            all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["family", "VIP"]
        );
        update(&mut conn, vip, "VIPs", &nums(&["+15550000003"]), t(2)).expect("update");
        assert_eq!(get(&conn, vip).expect("get").numbers, ["+15550000003"]);
        assert!(matches!(
            update(&mut conn, fam, "VIPs", &[], t(3)),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            update(&mut conn, fam, "Family", &nums(&["555"]), t(3)),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            get(&conn, fam).expect("get").name,
            "family",
            "a refused update changes nothing"
        );
        assert!(matches!(
            update(&mut conn, 999, "x", &[], t(3)),
            Err(StoreError::NotFound { .. })
        ));
        delete(&conn, vip).expect("delete");
        assert!(matches!(get(&conn, vip), Err(StoreError::NotFound { .. })));
        let left: i64 = conn
            .query_row("SELECT count(*) FROM caller_list_numbers", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0, "numbers go with their list");
    }
}
