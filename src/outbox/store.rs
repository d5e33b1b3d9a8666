//! The `outbox` table (migration 004): enqueue, claim, record outcomes.
//! Plain functions over `&Connection`, so a job can be enqueued in the
//! caller's transaction.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Job, Task};
use crate::clock::Timestamp;
use crate::constants::OUTBOX_KEEP_DONE;
use crate::store::{Page, Paged, StoreError};

/// A job as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// The `kind` tag.
    pub kind: String,
    /// The job's parameters.
    pub payload: serde_json::Value,
    /// `pending`, `attempting`, `done` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// Next attempt (RFC 3339), for unfinished jobs.
    pub next_attempt_at: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// Messages go out in the order they were written: a `send_message` job
/// waits while an older one is unfinished (after an outage the replies of a
/// conversation must not arrive shuffled). A message Twilio refuses for good
/// is `failed` and no longer holds the others back. [`claim`] and
/// [`next_due`] share this condition, so the worker never wakes for a job it
/// may not take.
const IN_TURN: &str = "NOT (kind = 'send_message' AND EXISTS (
    SELECT 1 FROM outbox older WHERE older.kind = 'send_message'
    AND older.state IN ('pending', 'attempting') AND older.id < outbox.id))";

/// Writes a job, due now.
pub fn enqueue(conn: &Connection, task: &Task, now: Timestamp) -> Result<i64, StoreError> {
    let payload = serde_json::to_string(task)
        .map_err(|e| StoreError::Conflict(format!("outbox job cannot be encoded: {e}")))?;
    conn.execute(
        "INSERT INTO outbox (kind, payload, next_attempt_ms, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![task.kind(), payload, now.unix_millis(), now.to_string()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claimed {
    /// A due job, now recorded as being attempted.
    Job(Job),
    /// A due row whose payload this binary cannot read; it was marked failed.
    Unreadable {
        /// Its id.
        id: i64,
        /// Why.
        error: String,
    },
}

/// The earliest due unfinished job, marked `attempting` (committed with
/// `synchronous=FULL`, so the mark survives even a power cut) before it is
/// returned. `None` when nothing is due.
pub fn claim(conn: &mut Connection, now: Timestamp) -> Result<Option<Claimed>, StoreError> {
    let row = conn
        .query_row(
            &format!(
                "SELECT id, payload, state, attempts, attempt_started_ms FROM outbox
                 WHERE state IN ('pending', 'attempting') AND next_attempt_ms <= ?1 AND {IN_TURN}
                 ORDER BY next_attempt_ms, id LIMIT 1"
            ),
            [now.unix_millis()],
            |r: &Row<'_>| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((id, payload, state, attempts, started)) = row else {
        return Ok(None);
    };
    let task: Task = match serde_json::from_str(&payload) {
        Ok(t) => t,
        Err(e) => {
            let error = format!("unreadable job: {e}");
            conn.execute(
                "UPDATE outbox SET state = 'failed', last_error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, error, now.to_string()],
            )?;
            return Ok(Some(Claimed::Unreadable { id, error }));
        }
    };
    let resumed = state == "attempting";
    // Due again, if this attempt's outcome is lost, once a lost request can
    // no longer be in flight.
    let due_if_lost = now.plus(task.reconcile_after());
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    let marked = conn.execute(
        // A resumed job keeps the start of its earliest unknown attempt: the
        // reconciliation window must cover every attempt that may have
        // reached the other side.
        "UPDATE outbox SET state = 'attempting', attempts = attempts + 1,
         attempt_started_ms = CASE WHEN state = 'attempting' AND attempt_started_ms IS NOT NULL
                                   THEN attempt_started_ms ELSE ?2 END,
         next_attempt_ms = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            id,
            now.unix_millis(),
            due_if_lost.unix_millis(),
            now.to_string()
        ],
    );
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    marked?;
    Ok(Some(Claimed::Job(Job {
        id,
        task,
        attempts,
        resumed,
        previous_attempt: if resumed {
            started.map(Timestamp::from_unix_millis)
        } else {
            None
        },
        started: now,
    })))
}

/// Records success (in the caller's transaction, with the job's own
/// commit) and prunes old finished rows.
pub fn complete(conn: &Connection, id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET state = 'done', failures = 0, last_error = NULL, attempt_started_ms = NULL,
         updated_at = ?2 WHERE id = ?1",
        params![id, now.to_string()],
    )?;
    let cutoff =
        Timestamp::from_unix_millis(now.unix_millis() - OUTBOX_KEEP_DONE.as_millis() as i64);
    conn.execute(
        "DELETE FROM outbox WHERE state = 'done' AND updated_at < ?1",
        [cutoff.to_string()],
    )?;
    Ok(())
}

/// Records a failed attempt; the job is due again after `delay`. With
/// `unknown`, the request may have been carried out, so the job stays
/// `attempting` (the next attempt is a resumed one). Returns the number of
/// consecutive failures.
pub fn fail(
    conn: &Connection,
    id: i64,
    error: &str,
    delay: Duration,
    unknown: bool,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let state = if unknown { "attempting" } else { "pending" };
    conn.execute(
        "UPDATE outbox SET state = ?2, failures = failures + 1, last_error = ?3, next_attempt_ms = ?4,
         attempt_started_ms = CASE WHEN ?2 = 'attempting' THEN attempt_started_ms END, updated_at = ?5
         WHERE id = ?1",
        params![id, state, error, now.plus(delay).unix_millis(), now.to_string()],
    )?;
    Ok(
        conn.query_row("SELECT failures FROM outbox WHERE id = ?1", [id], |r| {
            r.get(0)
        })?,
    )
}

/// Gives up on a job that cannot succeed.
pub fn fail_permanently(
    conn: &Connection,
    id: i64,
    error: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET state = 'failed', failures = failures + 1, last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, error, now.to_string()],
    )?;
    Ok(())
}

/// When the earliest unfinished job is due (unix ms), if any.
pub fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        &format!(
            "SELECT min(next_attempt_ms) FROM outbox WHERE state IN ('pending', 'attempting') AND {IN_TURN}"
        ),
        [],
        |r| r.get(0),
    )?)
}

/// [`next_due`] in the shape `Db::call` takes.
pub fn next_due_ref(conn: &mut Connection) -> Result<Option<i64>, StoreError> {
    next_due(conn)
}

/// The task of job `id`, if it exists.
pub fn task(conn: &Connection, id: i64) -> Result<Option<(Task, String)>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT payload, state FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(p, s)| serde_json::from_str(&p).ok().map(|t| (t, s))))
}

const JOB_COLUMNS: &str = "id, kind, payload, state, attempts, failures, next_attempt_ms, last_error, created_at, updated_at";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let payload: String = r.get(2)?;
    let state: String = r.get(3)?;
    let next: i64 = r.get(6)?;
    Ok(JobRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        next_attempt_at: matches!(state.as_str(), "pending" | "attempting")
            .then(|| Timestamp::from_unix_millis(next).to_string()),
        state,
        attempts: r.get(4)?,
        failures: r.get(5)?,
        last_error: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// Jobs, newest first; `unfinished` keeps only pending/attempting/failed.
pub fn list(conn: &Connection, unfinished: bool, page: Page) -> Result<Paged<JobRow>, StoreError> {
    const FILTER: &str = "(?1 = 0 OR state != 'done')";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM outbox WHERE {FILTER} ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![unfinished, page.limit, page.offset], job_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        &format!("SELECT count(*) FROM outbox WHERE {FILTER}"),
        [unfinished],
        |r| r.get(0),
    )?;
    Ok(Paged { items, total })
}

/// One job.
pub fn get(conn: &Connection, id: i64) -> Result<JobRow, StoreError> {
    conn.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM outbox WHERE id = ?1"),
        [id],
        job_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::not_found("outbox job", id))
}

/// The newest `update_number` job of each Twilio number, by number SID:
/// whether pointing it at the appliance is under way, failed or done.
pub fn latest_number_updates(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, JobRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM outbox WHERE kind = 'update_number' ORDER BY id DESC"
    ))?;
    let mut latest = std::collections::HashMap::new();
    for row in stmt.query_map([], job_row)? {
        let row = row?;
        if let Some(sid) = row.payload.get("number_sid").and_then(|v| v.as_str()) {
            latest.entry(sid.to_string()).or_insert(row);
        }
    }
    Ok(latest)
}

/// Why a job cannot be retried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRefused {
    /// It succeeded already.
    Done,
    /// An attempt is running, or its outcome is unknown and the job waits
    /// to reconcile: making it due at once could send a message twice.
    Attempting,
}

/// An administrator asks for another attempt now: a `failed` job becomes
/// `pending` again, a `pending` one skips the rest of its backoff. The
/// failure count starts afresh (the backoff schedule too); the job's alert
/// stays open until it succeeds. Wake the worker after the commit.
pub fn retry(
    conn: &Connection,
    id: i64,
    now: Timestamp,
) -> Result<Result<JobRow, RetryRefused>, StoreError> {
    let job = get(conn, id)?;
    match job.state.as_str() {
        "done" => return Ok(Err(RetryRefused::Done)),
        "attempting" => return Ok(Err(RetryRefused::Attempting)),
        _ => {}
    }
    conn.execute(
        "UPDATE outbox SET state = 'pending', failures = 0, next_attempt_ms = ?2, updated_at = ?3
         WHERE id = ?1 AND state IN ('pending', 'failed')",
        params![id, now.unix_millis(), now.to_string()],
    )?;
    get(conn, id).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    fn claimed(c: Option<Claimed>) -> Job {
        match c {
            Some(Claimed::Job(j)) => j,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    #[test]
    fn claim_marks_attempting_and_a_crash_resumes_it_later() {
        let mut conn = db();
        let send = Task::SendMessage { message_id: 7 };
        let id = enqueue(&conn, &send, t(0)).expect("enqueue");
        assert_eq!(next_due(&conn).expect("due"), Some(t(0).unix_millis()));
        assert!(claim(
            &mut conn,
            Timestamp::from_unix_millis(t(0).unix_millis() - 1)
        )
        .expect("claim")
        .is_none());
        let job = claimed(claim(&mut conn, t(0)).expect("claim"));
        assert_eq!((job.id, &job.task, job.resumed), (id, &send, false));
        // "Crash": nothing recorded. Not due until the reconcile delay passed.
        assert!(claim(&mut conn, t(14)).expect("claim").is_none());
        let again = claimed(claim(&mut conn, t(15)).expect("claim"));
        assert!(again.resumed);
        assert_eq!(again.previous_attempt, Some(t(0)));
        assert_eq!(again.attempts, 1);
        // Crashed again: the window still starts at the first unknown attempt.
        let third = claimed(claim(&mut conn, t(40)).expect("claim"));
        assert_eq!((third.resumed, third.previous_attempt), (true, Some(t(0))));
        complete(&conn, id, t(16)).expect("complete");
        assert_eq!(next_due(&conn).expect("due"), None);
        assert!(claim(&mut conn, t(1000)).expect("claim").is_none());
    }

    #[test]
    fn failures_count_and_reschedule() {
        let mut conn = db();
        let id = enqueue(
            &conn,
            &Task::DeleteRecording {
                recording_sid: "RE1".into(),
            },
            t(0),
        )
        .expect("enqueue");
        claimed(claim(&mut conn, t(0)).expect("claim"));
        assert_eq!(
            fail(&conn, id, "HTTP 500", Duration::from_secs(2), false, t(0)).expect("fail"),
            1
        );
        assert!(claim(&mut conn, t(1)).expect("claim").is_none());
        let j = claimed(claim(&mut conn, t(2)).expect("claim"));
        assert!(!j.resumed, "a plain failure is not an unknown outcome");
        assert_eq!(
            fail(&conn, id, "timeout", Duration::from_secs(1), true, t(2)).expect("fail"),
            2
        );
        let j = claimed(claim(&mut conn, t(3)).expect("claim"));
        assert!(j.resumed, "a timeout is an unknown outcome");
        fail_permanently(&conn, id, "HTTP 400", t(3)).expect("fail");
        assert_eq!(next_due(&conn).expect("due"), None);
        let rows = list(&conn, true, Page::ALL).expect("list");
        assert_eq!(
            (rows.items[0].state.as_str(), rows.items[0].attempts),
            ("failed", 3)
        );
    }

    #[test]
    fn a_failed_job_is_retried_on_request_but_not_a_running_or_done_one() {
        let mut conn = db();
        let task = Task::DeleteRecording {
            recording_sid: "RE1".into(),
        };
        let id = enqueue(&conn, &task, t(0)).expect("enqueue");
        claimed(claim(&mut conn, t(0)).expect("claim"));
        assert_eq!(
            retry(&conn, id, t(1)).expect("retry").err(),
            Some(RetryRefused::Attempting)
        );
        fail_permanently(&conn, id, "HTTP 400", t(1)).expect("fail");
        assert_eq!(next_due(&conn).expect("due"), None);
        let row = retry(&conn, id, t(5))
            .expect("retry")
            .expect("failed jobs retry");
        assert_eq!((row.state.as_str(), row.failures), ("pending", 0));
        assert_eq!(next_due(&conn).expect("due"), Some(t(5).unix_millis()));
        // A pending job waiting out its backoff is made due at once.
        claimed(claim(&mut conn, t(5)).expect("claim"));
        fail(&conn, id, "HTTP 500", Duration::from_secs(300), false, t(5)).expect("fail");
        retry(&conn, id, t(6))
            .expect("retry")
            .expect("pending jobs retry");
        assert_eq!(next_due(&conn).expect("due"), Some(t(6).unix_millis()));
        claimed(claim(&mut conn, t(6)).expect("claim"));
        complete(&conn, id, t(7)).expect("complete");
        assert_eq!(
            retry(&conn, id, t(8)).expect("retry").err(),
            Some(RetryRefused::Done)
        );
        assert!(matches!(
            retry(&conn, 999, t(8)),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn the_latest_update_of_each_number_is_found() {
        let conn = db();
        let update = |sid: &str| Task::UpdateNumber {
            number_sid: sid.into(),
            voice_url: "v".into(),
            sms_url: "s".into(),
            status_callback: "c".into(),
        };
        enqueue(&conn, &update("PN1"), t(0)).expect("enqueue");
        let newer = enqueue(&conn, &update("PN1"), t(1)).expect("enqueue");
        let other = enqueue(&conn, &update("PN2"), t(2)).expect("enqueue");
        enqueue(&conn, &Task::SendMessage { message_id: 1 }, t(3)).expect("enqueue");
        let latest = latest_number_updates(&conn).expect("latest");
        assert_eq!(latest.len(), 2);
        assert_eq!((latest["PN1"].id, latest["PN2"].id), (newer, other));
    }

    #[test]
    fn unreadable_payloads_fail_without_panicking() {
        let mut conn = db();
        conn.execute(
            "INSERT INTO outbox (kind, payload, next_attempt_ms, created_at, updated_at) VALUES ('x', '{\"kind\":\"from_the_future\"}', 0, 'n', 'n')",
            [],
        )
        .expect("insert");
        assert!(matches!(
            claim(&mut conn, t(0)).expect("claim"),
            Some(Claimed::Unreadable { .. })
        ));
        assert!(claim(&mut conn, t(0)).expect("claim").is_none());
    }

    #[test]
    fn messages_leave_in_order_and_a_failed_one_does_not_block() {
        let mut conn = db();
        let first = enqueue(&conn, &Task::SendMessage { message_id: 1 }, t(0)).expect("enqueue");
        let second = enqueue(&conn, &Task::SendMessage { message_id: 2 }, t(0)).expect("enqueue");
        let other = enqueue(
            &conn,
            &Task::DeleteRecording {
                recording_sid: "RE1".into(),
            },
            t(0),
        )
        .expect("enqueue");
        assert_eq!(claimed(claim(&mut conn, t(0)).expect("claim")).id, first);
        fail(
            &conn,
            first,
            "HTTP 500",
            Duration::from_secs(10),
            false,
            t(0),
        )
        .expect("fail");
        // The second message waits for the first; other kinds do not.
        assert_eq!(claimed(claim(&mut conn, t(1)).expect("claim")).id, other);
        complete(&conn, other, t(1)).expect("done");
        assert!(claim(&mut conn, t(2)).expect("claim").is_none());
        assert_eq!(
            next_due(&conn).expect("due"),
            Some(t(10).unix_millis()),
            "the worker sleeps until the first message is due, not the blocked second"
        );
        assert_eq!(claimed(claim(&mut conn, t(10)).expect("claim")).id, first);
        fail_permanently(&conn, first, "HTTP 400", t(10)).expect("fail");
        assert_eq!(claimed(claim(&mut conn, t(10)).expect("claim")).id, second);
    }
}
