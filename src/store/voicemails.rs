//! The `voicemails` table. A voicemail belongs to the mailbox of the number
//! that was called (`did_id`); the users of that number may read it.
//! Recording webhooks may be delivered twice, so inserting is idempotent on
//! Twilio's RecordingSid.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{found, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

/// A voicemail message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Voicemail {
    /// Row id.
    pub id: i64,
    /// The mailbox (called number).
    pub did_id: i64,
    /// The call's record, if written.
    pub cdr_id: Option<i64>,
    /// Twilio's RecordingSid.
    pub recording_sid: Option<String>,
    /// Twilio's CallSid.
    pub call_sid: Option<String>,
    /// Caller.
    pub from_number: String,
    /// The audio file under the data dir, once downloaded.
    pub audio_path: Option<String>,
    /// Twilio's recording URL (until downloaded and deleted there).
    pub twilio_recording_url: Option<String>,
    /// Transcript, when Twilio delivers it.
    pub transcript: Option<String>,
    /// Length in seconds.
    pub duration_secs: i64,
    /// Listened to.
    pub is_read: bool,
    /// When it was left.
    pub created_at: String,
}

/// What a recording webhook knows.
#[derive(Debug, Clone)]
pub struct NewVoicemail<'a> {
    /// Mailbox.
    pub did_id: i64,
    /// Twilio's RecordingSid (the idempotency key).
    pub recording_sid: &'a str,
    /// Twilio's CallSid.
    pub call_sid: Option<&'a str>,
    /// Caller.
    pub from_number: &'a str,
    /// Where Twilio holds the audio.
    pub twilio_recording_url: Option<&'a str>,
    /// Length in seconds.
    pub duration_secs: i64,
}

const COLUMNS: &str =
    "id, did_id, cdr_id, recording_sid, call_sid, from_number, audio_path, twilio_recording_url, \
                       transcript, duration_secs, is_read, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Voicemail> {
    Ok(Voicemail {
        id: r.get(0)?,
        did_id: r.get(1)?,
        cdr_id: r.get(2)?,
        recording_sid: r.get(3)?,
        call_sid: r.get(4)?,
        from_number: r.get(5)?,
        audio_path: r.get(6)?,
        twilio_recording_url: r.get(7)?,
        transcript: r.get(8)?,
        duration_secs: r.get(9)?,
        is_read: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// Stores a voicemail, or finds the one already stored for this recording.
/// Returns its id and whether it is new.
pub fn insert_once(
    conn: &Connection,
    v: &NewVoicemail<'_>,
    now: Timestamp,
) -> Result<(i64, bool), StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO voicemails (did_id, recording_sid, call_sid, from_number, twilio_recording_url, duration_secs, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (recording_sid) DO NOTHING",
            params![v.did_id, v.recording_sid, v.call_sid, v.from_number, v.twilio_recording_url, v.duration_secs, now.to_string()],
        )
        .map_err(|e| super::conflict_as(e, "no such mailbox"))?;
    let id = conn.query_row(
        "SELECT id FROM voicemails WHERE recording_sid = ?1",
        [v.recording_sid],
        |r| r.get(0),
    )?;
    Ok((id, inserted > 0))
}

/// One voicemail.
pub fn get(conn: &Connection, id: i64) -> Result<Voicemail, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM voicemails WHERE id = ?1"),
            [id],
            from_row,
        ),
        "voicemail",
        id,
    )
}

/// Whether a voicemail was left on the call `call_sid`.
pub fn exists_for_call(conn: &Connection, call_sid: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM voicemails WHERE call_sid = ?1)",
        [call_sid],
        |r| r.get(0),
    )?)
}

/// The voicemail of a recording, if any.
pub fn find_by_recording(
    conn: &Connection,
    recording_sid: &str,
) -> Result<Option<Voicemail>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM voicemails WHERE recording_sid = ?1"),
            [recording_sid],
            from_row,
        )
        .optional()?)
}

/// Voicemails of some mailboxes (`None`: all), newest first.
pub fn list(
    conn: &Connection,
    did_ids: Option<&[i64]>,
    page: Page,
) -> Result<Paged<Voicemail>, StoreError> {
    let dids = did_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    const FILTER: &str = "?1 IS NULL OR did_id IN (SELECT value FROM json_each(?1))";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM voicemails WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![dids, page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        &format!("SELECT count(*) FROM voicemails WHERE {FILTER}"),
        [&dids],
        |r| r.get(0),
    )?;
    Ok(Paged { items, total })
}

/// Unread voicemails in a mailbox (for MWI).
pub fn unread_count(conn: &Connection, did_id: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM voicemails WHERE did_id = ?1 AND is_read = 0",
        [did_id],
        |r| r.get(0),
    )?)
}

/// Unread voicemails of some mailboxes (`None`: all).
pub fn unread_total(conn: &Connection, did_ids: Option<&[i64]>) -> Result<u64, StoreError> {
    let dids = did_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    Ok(conn.query_row(
        "SELECT count(*) FROM voicemails WHERE is_read = 0
         AND (?1 IS NULL OR did_id IN (SELECT value FROM json_each(?1)))",
        [dids],
        |r| r.get(0),
    )?)
}

fn update_one(
    conn: &Connection,
    sql: &str,
    id: i64,
    value: &dyn rusqlite::ToSql,
) -> Result<(), StoreError> {
    one_row(conn.execute(sql, params![id, value])?, "voicemail", id)
}

/// Marks read or unread.
pub fn set_read(conn: &Connection, id: i64, read: bool) -> Result<(), StoreError> {
    update_one(
        conn,
        "UPDATE voicemails SET is_read = ?2 WHERE id = ?1",
        id,
        &read,
    )
}

/// Records where the downloaded audio lives.
pub fn set_audio_path(conn: &Connection, id: i64, path: &str) -> Result<(), StoreError> {
    update_one(
        conn,
        "UPDATE voicemails SET audio_path = ?2 WHERE id = ?1",
        id,
        &path,
    )
}

/// Records the recording's length (known once its callback arrives).
pub fn set_duration(conn: &Connection, id: i64, secs: i64) -> Result<(), StoreError> {
    update_one(
        conn,
        "UPDATE voicemails SET duration_secs = ?2 WHERE id = ?1",
        id,
        &secs.max(0),
    )
}

/// Fills in the transcript.
pub fn set_transcript(conn: &Connection, id: i64, text: &str) -> Result<(), StoreError> {
    update_one(
        conn,
        "UPDATE voicemails SET transcript = ?2 WHERE id = ?1",
        id,
        &text,
    )
}

/// Deletes the row (the caller removes the audio file).
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    one_row(
        conn.execute("DELETE FROM voicemails WHERE id = ?1", [id])?,
        "voicemail",
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::{db, t};

    fn vm<'a>(did: i64, sid: &'a str) -> NewVoicemail<'a> {
        NewVoicemail {
            did_id: did,
            recording_sid: sid,
            call_sid: Some("CA1"),
            from_number: "+15559870000",
            twilio_recording_url: None,
            duration_secs: 12,
        }
    }

    #[test]
    fn keyed_by_mailbox_and_idempotent_per_recording() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let work = dids::tests::make(&conn, "+15551230002");
        let (a, new) = insert_once(&conn, &vm(home, "RE1"), t(0)).expect("insert");
        assert!(new);
        assert_eq!(
            insert_once(&conn, &vm(home, "RE1"), t(5)).expect("again"),
            (a, false),
            "a redelivered webhook adds nothing"
        );
        let (b, _) = insert_once(&conn, &vm(work, "RE2"), t(10)).expect("insert");
        assert!(
            matches!(
                insert_once(&conn, &vm(999, "RE3"), t(0)),
                Err(StoreError::Conflict(_))
            ),
            "mailbox must exist"
        );
        assert_eq!(
            list(&conn, Some(&[home]), Page::ALL).expect("list").total,
            1
        );
        assert_eq!(
            list(&conn, None, Page::ALL).expect("list").items[0].id,
            b,
            "newest first"
        );
        assert_eq!(unread_count(&conn, home).expect("count"), 1);
        assert_eq!(unread_total(&conn, None).expect("count"), 2);
        assert_eq!(unread_total(&conn, Some(&[work])).expect("count"), 1);
        set_read(&conn, a, true).expect("read");
        set_audio_path(&conn, a, "voicemail/RE1.wav").expect("path");
        set_transcript(&conn, a, "Hi, it's Grandma").expect("transcript");
        let v = find_by_recording(&conn, "RE1")
            .expect("find")
            .expect("exists");
        assert_eq!(
            (v.is_read, v.audio_path.as_deref(), v.transcript.as_deref()),
            (true, Some("voicemail/RE1.wav"), Some("Hi, it's Grandma"))
        );
        assert_eq!(unread_count(&conn, home).expect("count"), 0);
        assert!(matches!(
            set_read(&conn, 999, true),
            Err(StoreError::NotFound { .. })
        ));
        dids::delete(&conn, work).expect("delete did");
        assert!(
            matches!(get(&conn, b), Err(StoreError::NotFound { .. })),
            "a mailbox's voicemail goes with its number"
        );
        delete(&conn, a).expect("delete");
    }
}
