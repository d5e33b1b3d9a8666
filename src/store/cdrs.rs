//! The `cdrs` table: one call detail record per finished call.
//!
//! `Disposition` is Homeline's verdict on a call. Twilio's call statuses are
//! mapped onto it here, once, and the raw status is kept beside it — GoSIP
//! wrote Twilio statuses straight into a CHECK-constrained column, which
//! rejected `completed` and `no-answer`.

use rusqlite::{params, Connection, Row};
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
    /// Started at or after (RFC 3339).
    pub since: Option<String>,
    /// Started before (RFC 3339).
    pub until: Option<String>,
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

/// Call history, newest first.
pub fn list(conn: &Connection, f: &Filter, page: Page) -> Result<Paged<Cdr>, StoreError> {
    let dids = f
        .did_ids
        .as_ref()
        .map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    const WHERE: &str = "(?1 IS NULL OR did_id IN (SELECT value FROM json_each(?1)))
        AND (?2 IS NULL OR direction = ?2) AND (?3 IS NULL OR disposition = ?3)
        AND (?4 IS NULL OR started_at >= ?4) AND (?5 IS NULL OR started_at < ?5)";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM cdrs WHERE {WHERE} ORDER BY started_at DESC, id DESC LIMIT ?6 OFFSET ?7"
    ))?;
    let items = stmt
        .query_map(
            params![
                dids,
                f.direction,
                f.disposition,
                f.since,
                f.until,
                page.limit,
                page.offset
            ],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        &format!("SELECT count(*) FROM cdrs WHERE {WHERE}"),
        params![dids, f.direction, f.disposition, f.since, f.until],
        |r| r.get(0),
    )?;
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
}
