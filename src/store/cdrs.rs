//! The `cdrs` table: one call detail record per finished call.
//!
//! `Disposition` is Homeline's verdict on a call. Twilio's call statuses are
//! mapped onto it here, once, and the raw status is kept beside it — GoSIP
//! wrote Twilio statuses straight into a CHECK-constrained column, which
//! rejected `completed` and `no-answer`.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};
use serde::Serialize;

use super::{conflict_as, found, Page, Paged, StoreError};

text_enum! {
    /// Which way a call went.
    pub enum Direction { Inbound = "inbound", Outbound = "outbound", Internal = "internal" }
}

text_enum! {
    /// How a call ended, from the household's point of view.
    pub enum Disposition {
        Answered = "answered",
        Voicemail = "voicemail",
        Missed = "missed",
        NoAnswer = "no_answer",
        Busy = "busy",
        Failed = "failed",
        Canceled = "canceled",
        Blocked = "blocked",
        Rejected = "rejected",
    }
}

impl Disposition {
    /// Maps a final Twilio call status (`CallStatus`, `DialCallStatus`);
    /// `None` for statuses that are not final (`queued`, `ringing`,
    /// `in-progress`) or unknown.
    pub fn from_twilio_status(status: &str) -> Option<Disposition> {
        Some(match status {
            "completed" | "answered" => Disposition::Answered,
            "busy" => Disposition::Busy,
            "no-answer" => Disposition::NoAnswer,
            "failed" => Disposition::Failed,
            "canceled" => Disposition::Canceled,
            _ => return None,
        })
    }
}

/// A call detail record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cdr {
    /// Row id (ignored on insert).
    pub id: i64,
    /// Twilio's CallSid, for calls that crossed Twilio.
    pub call_sid: Option<String>,
    /// The SIP Call-ID of the leg Homeline saw.
    pub sip_call_id: Option<String>,
    /// Which way.
    pub direction: Direction,
    /// Caller.
    pub from_number: String,
    /// Callee.
    pub to_number: String,
    /// The household number involved.
    pub did_id: Option<i64>,
    /// The phone involved.
    pub device_id: Option<i64>,
    /// First signal.
    pub started_at: String,
    /// Answer, if answered.
    pub answered_at: Option<String>,
    /// Hang-up.
    pub ended_at: Option<String>,
    /// Talk time in seconds.
    pub duration_secs: i64,
    /// Homeline's verdict.
    pub disposition: Disposition,
    /// Twilio's raw status, if any.
    pub twilio_status: Option<String>,
    /// Why it ended (`bye`, `media_timeout`, `cancel`, a SIP status…).
    pub hangup_cause: Option<String>,
    /// A local recording, if any.
    pub recording_path: Option<String>,
    /// Spam likelihood 0..1, if known.
    pub spam_score: Option<f64>,
}

/// Filters for the call history.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these numbers (a user's DIDs); `None` for all.
    pub did_ids: Option<Vec<i64>>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this disposition.
    pub disposition: Option<Disposition>,
    /// Only calls with this party, caller or callee (a number or an
    /// extension, compared exactly).
    pub number: Option<String>,
    /// Started at or after (RFC 3339, in [`Timestamp`](crate::clock::Timestamp)'s form).
    pub since: Option<String>,
    /// Started before (RFC 3339, in the same form).
    pub until: Option<String>,
}

/// Where a page of history continues: after this record, newest first.
/// Handed to clients as an opaque string ([`Cursor::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last record's `started_at`.
    pub started_at: String,
    /// The last record's id (the tie-break within one second).
    pub id: i64,
}

impl Cursor {
    /// The cursor after `cdr`.
    pub fn after(cdr: &Cdr) -> Cursor {
        Cursor {
            started_at: cdr.started_at.clone(),
            id: cdr.id,
        }
    }

    /// The opaque form: base64url of `id|started_at`.
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}|{}", self.id, self.started_at))
    }

    /// Reads [`Cursor::encode`]'s form; `None` for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, started_at) = raw.split_once('|')?;
        let started_at = crate::clock::Timestamp::parse_rfc3339(started_at)?.to_string();
        Some(Cursor {
            id: id.parse().ok()?,
            started_at,
        })
    }
}

/// Which party the `number` filter is matched against in one scan.
#[derive(Debug, Clone, Copy)]
enum Party {
    From,
    To,
}

/// One index-ordered scan of a keyset query: the filter narrowed to one of
/// the caller's numbers and one party, so that every condition is an
/// equality or a range on an index that also gives the order.
#[derive(Debug, Clone, Copy)]
struct Arm {
    did_id: Option<i64>,
    party: Option<Party>,
}

/// The `WHERE` clause and its parameters for `f`, either for one [`Arm`] or
/// (`arm: None`) for the whole filter in one statement (the OFFSET pages).
fn conditions(f: &Filter, arm: Option<Arm>, after: Option<&Cursor>) -> (String, Vec<Value>) {
    let mut sql: Vec<&str> = Vec::new();
    let mut values = Vec::new();
    match (arm, &f.did_ids) {
        (
            Some(Arm {
                did_id: Some(did), ..
            }),
            _,
        ) => {
            sql.push("did_id = ?");
            values.push(Value::Integer(did));
        }
        (None, Some(ids)) => {
            sql.push("did_id IN (SELECT value FROM json_each(?))");
            values.push(Value::Text(
                serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()),
            ));
        }
        _ => {}
    }
    if let Some(n) = &f.number {
        match arm.and_then(|a| a.party) {
            Some(Party::From) => sql.push("from_number = ?"),
            // A call from the number to itself was found by the From scan.
            Some(Party::To) => {
                sql.push("to_number = ? AND from_number <> ?");
                values.push(Value::Text(n.clone()));
            }
            None => {
                sql.push("(from_number = ? OR to_number = ?)");
                values.push(Value::Text(n.clone()));
            }
        }
        values.push(Value::Text(n.clone()));
    }
    if let Some(d) = f.direction {
        sql.push("direction = ?");
        values.push(Value::Text(d.as_str().into()));
    }
    if let Some(d) = f.disposition {
        sql.push("disposition = ?");
        values.push(Value::Text(d.as_str().into()));
    }
    if let Some(t) = &f.since {
        sql.push("started_at >= ?");
        values.push(Value::Text(t.clone()));
    }
    if let Some(t) = &f.until {
        sql.push("started_at < ?");
        values.push(Value::Text(t.clone()));
    }
    if let Some(c) = after {
        sql.push("(started_at, id) < (?, ?)");
        values.push(Value::Text(c.started_at.clone()));
        values.push(Value::Integer(c.id));
    }
    if sql.is_empty() {
        return ("1".into(), values);
    }
    (sql.join(" AND "), values)
}

/// The scans a keyset query of `f` needs (none: nothing can match).
fn arms(f: &Filter) -> Vec<Arm> {
    let dids: Vec<Option<i64>> = match &f.did_ids {
        None => vec![None],
        Some(ids) => ids.iter().copied().map(Some).collect(),
    };
    let parties: &[Option<Party>] = if f.number.is_some() {
        &[Some(Party::From), Some(Party::To)]
    } else {
        &[None]
    };
    dids.iter()
        .flat_map(|&did_id| parties.iter().map(move |&party| Arm { did_id, party }))
        .collect()
}

/// The SQL of one keyset scan, for `EXPLAIN QUERY PLAN` in tests.
fn keyset_sql(where_sql: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM cdrs WHERE {where_sql} ORDER BY started_at DESC, id DESC LIMIT ?"
    )
}

const COLUMNS: &str = "id, call_sid, sip_call_id, direction, from_number, to_number, did_id, device_id, started_at, \
                       answered_at, ended_at, duration_secs, disposition, twilio_status, hangup_cause, recording_path, spam_score";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Cdr> {
    Ok(Cdr {
        id: r.get(0)?,
        call_sid: r.get(1)?,
        sip_call_id: r.get(2)?,
        direction: r.get(3)?,
        from_number: r.get(4)?,
        to_number: r.get(5)?,
        did_id: r.get(6)?,
        device_id: r.get(7)?,
        started_at: r.get(8)?,
        answered_at: r.get(9)?,
        ended_at: r.get(10)?,
        duration_secs: r.get(11)?,
        disposition: r.get(12)?,
        twilio_status: r.get(13)?,
        hangup_cause: r.get(14)?,
        recording_path: r.get(15)?,
        spam_score: r.get(16)?,
    })
}

/// Writes a finished call; returns its id.
pub fn insert(conn: &Connection, c: &Cdr) -> Result<i64, StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO cdrs ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            COLUMNS.trim_start_matches("id, ")
        ),
        params![
            c.call_sid,
            c.sip_call_id,
            c.direction,
            c.from_number,
            c.to_number,
            c.did_id,
            c.device_id,
            c.started_at,
            c.answered_at,
            c.ended_at,
            c.duration_secs,
            c.disposition,
            c.twilio_status,
            c.hangup_cause,
            c.recording_path,
            c.spam_score
        ],
    )
    .map_err(|e| conflict_as(e, "a record for this call exists already"))?;
    Ok(conn.last_insert_rowid())
}

/// Marks the record of call `call_sid`, if one exists, as having ended in
/// voicemail (the recording may arrive after the call's final status).
/// Blocked calls stay blocked. Returns whether a record changed.
pub fn mark_voicemail(conn: &Connection, call_sid: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE cdrs SET disposition = 'voicemail' WHERE call_sid = ?1 AND disposition != 'blocked'",
        [call_sid],
    )? > 0)
}

/// Gives the record of SIP call `sip_call_id` Twilio's CallSid, unless it
/// has one. Returns whether a record changed.
pub fn link_call_sid(
    conn: &Connection,
    sip_call_id: &str,
    call_sid: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE cdrs SET call_sid = ?2 WHERE sip_call_id = ?1 AND call_sid IS NULL \
             AND NOT EXISTS (SELECT 1 FROM cdrs WHERE call_sid = ?2)",
            [sip_call_id, call_sid],
        )
        .map_err(|e| conflict_as(e, "this CallSid has a record already"))?;
    Ok(changed > 0)
}

/// Completes the record of call `call_sid` with Twilio's final status; a
/// call that left a voicemail is marked so (blocked calls stay blocked).
pub fn merge_twilio_status(
    conn: &Connection,
    call_sid: &str,
    status: &str,
    voicemail: bool,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE cdrs SET twilio_status = ?2, \
         disposition = CASE WHEN ?3 AND disposition != 'blocked' THEN 'voicemail' ELSE disposition END \
         WHERE call_sid = ?1",
        params![call_sid, status, voicemail],
    )? > 0)
}

/// One record.
pub fn get(conn: &Connection, id: i64) -> Result<Cdr, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM cdrs WHERE id = ?1"),
            [id],
            from_row,
        ),
        "call record",
        id,
    )
}

/// Call history, newest first: up to `limit` records after `after` (from
/// the newest when `None`). Each scan seeks its index to the cursor and
/// reads `limit` rows, however deep the page; a filter over several numbers
/// or both parties merges one scan per number and party.
pub fn page(
    conn: &Connection,
    f: &Filter,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<Cdr>, StoreError> {
    let arms = arms(f);
    let mut rows: Vec<Cdr> = Vec::new();
    for arm in &arms {
        let (where_sql, mut values) = conditions(f, Some(*arm), after);
        values.push(Value::Integer(i64::from(limit)));
        let mut stmt = conn.prepare_cached(&keyset_sql(&where_sql))?;
        let found = stmt.query_map(params_from_iter(values), from_row)?;
        for r in found {
            rows.push(r?);
        }
    }
    if arms.len() > 1 {
        rows.sort_by(|a, b| (&b.started_at, b.id).cmp(&(&a.started_at, a.id)));
        rows.dedup_by_key(|c| c.id);
        rows.truncate(limit as usize);
    }
    Ok(rows)
}

/// Call history by page number (the older `page`/`per_page` API): OFFSET
/// paging in the index order, with the total count. Deep pages and the
/// count cost a scan; [`page`] does not.
pub fn list(conn: &Connection, f: &Filter, page: Page) -> Result<Paged<Cdr>, StoreError> {
    let (where_sql, values) = conditions(f, None, None);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM cdrs WHERE {where_sql} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
    ))?;
    let mut paged = values.clone();
    paged.push(Value::Integer(i64::from(page.limit)));
    paged.push(Value::Integer(
        i64::try_from(page.offset).unwrap_or(i64::MAX),
    ));
    let items = stmt
        .query_map(params_from_iter(paged), from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn
        .prepare_cached(&format!("SELECT count(*) FROM cdrs WHERE {where_sql}"))?
        .query_row(params_from_iter(values), |r| r.get(0))?;
    Ok(Paged { items, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::{db, t};

    fn cdr(did: Option<i64>, sid: &str, started: i64, disposition: Disposition) -> Cdr {
        Cdr {
            id: 0,
            call_sid: Some(sid.into()),
            sip_call_id: None,
            direction: Direction::Inbound,
            from_number: "+15559870000".into(),
            to_number: "+15551230001".into(),
            did_id: did,
            device_id: None,
            started_at: t(started).to_string(),
            answered_at: None,
            ended_at: Some(t(started + 30).to_string()),
            duration_secs: 30,
            disposition,
            twilio_status: Some("completed".into()),
            hangup_cause: Some("bye".into()),
            recording_path: None,
            spam_score: Some(0.1),
        }
    }

    #[test]
    fn twilio_statuses_map_onto_dispositions_the_schema_accepts() {
        let conn = db();
        for (i, status) in ["completed", "busy", "no-answer", "failed", "canceled"]
            .iter()
            .enumerate()
        {
            let d = Disposition::from_twilio_status(status).expect("final status");
            let mut c = cdr(None, &format!("CA{i}"), i as i64, d);
            c.twilio_status = Some(status.to_string());
            insert(&conn, &c).expect("GoSIP's CHECK rejected these");
        }
        for s in ["queued", "ringing", "in-progress", "bogus"] {
            assert_eq!(Disposition::from_twilio_status(s), None, "{s}");
        }
        for (i, d) in Disposition::ALL.iter().enumerate() {
            insert(&conn, &cdr(None, &format!("CX{i}"), 0, *d)).expect("every disposition fits");
        }
    }

    #[test]
    fn filters_and_pagination() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let work = dids::tests::make(&conn, "+15551230002");
        let id = insert(&conn, &cdr(Some(home), "CA1", 0, Disposition::Answered)).expect("insert");
        insert(&conn, &cdr(Some(home), "CA2", 100, Disposition::Missed)).expect("insert");
        insert(&conn, &cdr(Some(work), "CA3", 200, Disposition::Answered)).expect("insert");
        assert!(matches!(
            insert(&conn, &cdr(None, "CA1", 0, Disposition::Busy)),
            Err(StoreError::Conflict(_))
        ));
        let all = list(&conn, &Filter::default(), Page::ALL).expect("list");
        assert_eq!(
            all.items
                .iter()
                .map(|c| c.call_sid.as_deref().unwrap_or(""))
                .collect::<Vec<_>>(),
            ["CA3", "CA2", "CA1"]
        );
        let mine = list(
            &conn,
            &Filter {
                did_ids: Some(vec![home]),
                ..Filter::default()
            },
            Page::ALL,
        )
        .expect("list");
        assert_eq!(mine.total, 2);
        let none = list(
            &conn,
            &Filter {
                did_ids: Some(vec![]),
                ..Filter::default()
            },
            Page::ALL,
        )
        .expect("list");
        assert_eq!(none.total, 0, "a user with no numbers sees nothing");
        let f = Filter {
            disposition: Some(Disposition::Answered),
            since: Some(t(50).to_string()),
            ..Filter::default()
        };
        assert_eq!(list(&conn, &f, Page::ALL).expect("list").total, 1);
        let page = list(
            &conn,
            &Filter::default(),
            Page {
                limit: 1,
                offset: 2,
            },
        )
        .expect("list");
        assert_eq!((page.total, page.items[0].id), (3, id));
        assert_eq!(get(&conn, id).expect("get").spam_score, Some(0.1));
    }

    /// `n` records over two numbers, three per second, every fifth missed.
    fn seed(conn: &Connection, n: i64) -> (i64, i64) {
        let home = dids::tests::make(conn, "+15551230001");
        let work = dids::tests::make(conn, "+15551230002");
        for i in 0..n {
            let d = if i % 5 == 0 {
                Disposition::Missed
            } else {
                Disposition::Answered
            };
            let mut c = cdr(
                Some(if i % 2 == 0 { home } else { work }),
                &format!("CA{i}"),
                i / 3,
                d,
            );
            c.from_number = format!("+1555987{:04}", i % 7);
            if i % 11 == 0 {
                c.to_number = "+15559870003".into();
            }
            insert(conn, &c).expect("insert");
        }
        (home, work)
    }

    /// Every record matching `f`, walked page by page through cursors.
    fn walk(conn: &Connection, f: &Filter, limit: u32) -> Vec<i64> {
        let mut out = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let rows = page(conn, f, after.as_ref(), limit).expect("page");
            out.extend(rows.iter().map(|c| c.id));
            if rows.len() < limit as usize {
                return out;
            }
            let next = Cursor::after(rows.last().expect("a row"));
            let again = Cursor::decode(&next.encode()).expect("round trip");
            assert_eq!(again, next);
            after = Some(again);
        }
    }

    #[test]
    fn keyset_pages_walk_exactly_what_offset_pages_list() {
        let conn = db();
        let (home, work) = seed(&conn, 300);
        let filters = [
            Filter::default(),
            Filter {
                disposition: Some(Disposition::Missed),
                ..Filter::default()
            },
            Filter {
                did_ids: Some(vec![home, work]),
                ..Filter::default()
            },
            Filter {
                did_ids: Some(vec![work]),
                number: Some("+15559870003".into()),
                ..Filter::default()
            },
            Filter {
                number: Some("+15559870003".into()),
                since: Some(t(20).to_string()),
                until: Some(t(80).to_string()),
                ..Filter::default()
            },
            Filter {
                did_ids: Some(vec![]),
                ..Filter::default()
            },
        ];
        for f in &filters {
            let listed: Vec<i64> = list(&conn, f, Page::ALL)
                .expect("list")
                .items
                .iter()
                .map(|c| c.id)
                .collect();
            for limit in [1, 7, 20, 100] {
                assert_eq!(walk(&conn, f, limit), listed, "{f:?} by {limit}");
            }
        }
        let either = list(
            &conn,
            &Filter {
                number: Some("+15559870003".into()),
                ..Filter::default()
            },
            Page::ALL,
        )
        .expect("list");
        assert!(
            either.items.iter().any(|c| c.from_number == "+15559870003")
                && either.items.iter().any(|c| c.to_number == "+15559870003"),
            "the number matches either party"
        );
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }

    /// The plan of one keyset scan, one line per step.
    fn plan(conn: &Connection, f: &Filter, after: Option<&Cursor>) -> String {
        arms(f)
            .into_iter()
            .map(|arm| {
                let (where_sql, mut values) = conditions(f, Some(arm), after);
                values.push(Value::Integer(20));
                let mut stmt = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", keyset_sql(&where_sql)))
                    .expect("explain");
                stmt.query_map(params_from_iter(values), |r| r.get::<_, String>(3))
                    .expect("plan")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("plan")
                    .join("; ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn every_history_query_seeks_an_index_that_gives_its_order() {
        let conn = db();
        let (home, work) = seed(&conn, 600);
        let cases = [
            (Filter::default(), "idx_cdrs_started"),
            (
                Filter {
                    disposition: Some(Disposition::Missed),
                    ..Filter::default()
                },
                "idx_cdrs_disposition_started",
            ),
            (
                Filter {
                    direction: Some(Direction::Inbound),
                    ..Filter::default()
                },
                "idx_cdrs_direction_started",
            ),
            (
                Filter {
                    did_ids: Some(vec![home, work]),
                    ..Filter::default()
                },
                "idx_cdrs_",
            ),
            (
                Filter {
                    number: Some("+15559870003".into()),
                    ..Filter::default()
                },
                "_started",
            ),
            (
                Filter {
                    since: Some(t(10).to_string()),
                    until: Some(t(90).to_string()),
                    disposition: Some(Disposition::Missed),
                    ..Filter::default()
                },
                "_started",
            ),
        ];
        // A fresh appliance has no statistics; PRAGMA optimize may gather
        // some later. Both must plan the same way.
        for analyzed in [false, true] {
            if analyzed {
                conn.execute_batch("ANALYZE").expect("analyze");
            }
            let first = plan(&conn, &Filter::default(), None);
            assert_eq!(
                first, "SCAN cdrs USING INDEX idx_cdrs_started",
                "the first page"
            );
            let after = Cursor {
                started_at: t(50).to_string(),
                id: 100,
            };
            for (f, index) in &cases {
                let p = plan(&conn, f, Some(&after));
                for scan in p.split(" | ") {
                    assert!(
                        scan.starts_with("SEARCH cdrs USING INDEX ") && scan.contains(index),
                        "{f:?} (analyzed: {analyzed}): {p}"
                    );
                    assert!(!scan.contains("TEMP B-TREE"), "{f:?}: {p}");
                }
            }
        }
    }
}
