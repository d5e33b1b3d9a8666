//! The `messages` table: SMS/MMS, grouped into conversations by
//! (number, remote party). Webhooks may be delivered twice, so inserting is
//! idempotent on Twilio's MessageSid.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::{found, one_row, Page, Paged, StoreError};
use crate::clock::Timestamp;

text_enum! {
    /// Which way a message went.
    pub enum Direction { Inbound = "inbound", Outbound = "outbound" }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Row id.
    pub id: i64,
    /// Twilio's MessageSid, once known.
    pub message_sid: Option<String>,
    /// Which way.
    pub direction: Direction,
    /// The household number.
    pub did_id: i64,
    /// Sender.
    pub from_number: String,
    /// Recipient.
    pub to_number: String,
    /// The other party (derived by the schema from direction).
    pub remote_number: String,
    /// Text.
    pub body: String,
    /// MMS media: a JSON array of `{path, content_type, size}` objects.
    pub media: Value,
    /// Twilio's message status (`received`, `queued`, `sent`, `delivered`…).
    pub status: String,
    /// Twilio's error code for failed messages.
    pub error_code: Option<i64>,
    /// Seen by a user.
    pub is_read: bool,
    /// Sent by Homeline itself, as an SMS auto-reply.
    pub auto_reply: bool,
    /// Arrival or creation.
    pub created_at: String,
}

/// A new message.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// Twilio's MessageSid (known for inbound, later for outbound).
    pub message_sid: Option<&'a str>,
    /// Which way.
    pub direction: Direction,
    /// The household number.
    pub did_id: i64,
    /// Sender.
    pub from_number: &'a str,
    /// Recipient.
    pub to_number: &'a str,
    /// Text.
    pub body: &'a str,
    /// Media descriptors (a JSON array).
    pub media: &'a Value,
    /// Initial status.
    pub status: &'a str,
}

/// One conversation in the list view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    /// The household number.
    pub did_id: i64,
    /// The other party.
    pub remote_number: String,
    /// Newest message text.
    pub last_body: String,
    /// Newest message time.
    pub last_at: String,
    /// Unread inbound messages.
    pub unread: u64,
}

const COLUMNS: &str =
    "id, message_sid, direction, did_id, from_number, to_number, remote_number, body, media, status, error_code, is_read, created_at, auto_reply";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let media: String = r.get(8)?;
    Ok(Message {
        id: r.get(0)?,
        message_sid: r.get(1)?,
        direction: r.get(2)?,
        did_id: r.get(3)?,
        from_number: r.get(4)?,
        to_number: r.get(5)?,
        remote_number: r.get(6)?,
        body: r.get(7)?,
        media: serde_json::from_str(&media).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?,
        status: r.get(9)?,
        error_code: r.get(10)?,
        is_read: r.get(11)?,
        created_at: r.get(12)?,
        auto_reply: r.get(13)?,
    })
}

/// Stores a message; with a MessageSid already stored, returns that row's id
/// and `false`. Outbound messages are stored read.
pub fn insert_once(
    conn: &Connection,
    m: &NewMessage<'_>,
    now: Timestamp,
) -> Result<(i64, bool), StoreError> {
    insert_flagged(conn, m, false, now)
}

/// Stores an outbound message Homeline sends by itself (an SMS auto-reply);
/// returns its id.
pub fn insert_auto_reply(
    conn: &Connection,
    m: &NewMessage<'_>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    insert_flagged(conn, m, true, now).map(|(id, _)| id)
}

fn insert_flagged(
    conn: &Connection,
    m: &NewMessage<'_>,
    auto_reply: bool,
    now: Timestamp,
) -> Result<(i64, bool), StoreError> {
    let n = conn
        .execute(
            "INSERT INTO messages (message_sid, direction, did_id, from_number, to_number, body, media, status, is_read, created_at, updated_at, auto_reply)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11) ON CONFLICT (message_sid) DO NOTHING",
            params![
                m.message_sid,
                m.direction,
                m.did_id,
                m.from_number,
                m.to_number,
                m.body,
                m.media.to_string(),
                m.status,
                m.direction == Direction::Outbound,
                now.to_string(),
                auto_reply
            ],
        )
        .map_err(|e| super::conflict_as(e, "no such number, or media is not a JSON array"))?;
    if n > 0 {
        return Ok((conn.last_insert_rowid(), true));
    }
    let id = conn.query_row(
        "SELECT id FROM messages WHERE message_sid = ?1",
        [m.message_sid],
        |r| r.get(0),
    )?;
    Ok((id, false))
}

/// Records Twilio's verdict on an outbound message (status callbacks).
/// Returns whether a message with this SID exists.
pub fn update_status(
    conn: &Connection,
    sid: &str,
    status: &str,
    error_code: Option<i64>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE messages SET status = ?2, error_code = ?3, updated_at = ?4 WHERE message_sid = ?1",
        params![sid, status, error_code, now.to_string()],
    )? > 0)
}

/// Attaches the SID Twilio assigned to an outbound message.
pub fn set_sid(
    conn: &Connection,
    id: i64,
    sid: &str,
    status: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE messages SET message_sid = ?2, status = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, sid, status, now.to_string()],
    )?;
    one_row(n, "message", id)
}

/// Conversations of some numbers (`None`: all), most recent first.
pub fn conversations(
    conn: &Connection,
    did_ids: Option<&[i64]>,
    page: Page,
) -> Result<Paged<Conversation>, StoreError> {
    let dids = did_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    const GROUPED: &str = "SELECT did_id, remote_number, max(created_at) AS last_at,
            sum(direction = 'inbound' AND is_read = 0) AS unread, max(id) AS last_id
        FROM messages WHERE ?1 IS NULL OR did_id IN (SELECT value FROM json_each(?1))
        GROUP BY did_id, remote_number";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT g.did_id, g.remote_number, m.body, g.last_at, g.unread FROM ({GROUPED}) g
         JOIN messages m ON m.id = g.last_id ORDER BY g.last_at DESC, g.last_id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let items = stmt
        .query_map(params![dids, page.limit, page.offset], |r| {
            Ok(Conversation {
                did_id: r.get(0)?,
                remote_number: r.get(1)?,
                last_body: r.get(2)?,
                last_at: r.get(3)?,
                unread: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(&format!("SELECT count(*) FROM ({GROUPED})"), [&dids], |r| {
        r.get(0)
    })?;
    Ok(Paged { items, total })
}

/// The messages of one conversation, oldest first.
pub fn thread(
    conn: &Connection,
    did_id: i64,
    remote: &str,
    page: Page,
) -> Result<Paged<Message>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE did_id = ?1 AND remote_number = ?2 ORDER BY created_at, id LIMIT ?3 OFFSET ?4"
    ))?;
    let items = stmt
        .query_map(params![did_id, remote, page.limit, page.offset], from_row)?
        .collect::<Result<_, _>>()?;
    let total = conn.query_row(
        "SELECT count(*) FROM messages WHERE did_id = ?1 AND remote_number = ?2",
        params![did_id, remote],
        |r| r.get(0),
    )?;
    Ok(Paged { items, total })
}

/// Marks a conversation read; returns how many messages changed.
pub fn mark_read(conn: &Connection, did_id: i64, remote: &str) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "UPDATE messages SET is_read = 1 WHERE did_id = ?1 AND remote_number = ?2 AND is_read = 0",
        params![did_id, remote],
    )? as u64)
}

/// One message.
pub fn get(conn: &Connection, id: i64) -> Result<Message, StoreError> {
    found(
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
            [id],
            from_row,
        ),
        "message",
        id,
    )
}

/// The message with Twilio SID `sid`, if stored.
pub fn find_by_sid(conn: &Connection, sid: &str) -> Result<Option<Message>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM messages WHERE message_sid = ?1"),
            [sid],
            from_row,
        )
        .optional()?)
}

/// Records a local verdict on a message (e.g. `failed` when Twilio refused
/// to create it), whether or not it has a SID.
pub fn set_status(
    conn: &Connection,
    id: i64,
    status: &str,
    error_code: Option<i64>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE messages SET status = ?2, error_code = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, status, error_code, now.to_string()],
    )?;
    one_row(n, "message", id)
}

/// Fills in a downloaded media item: its file (relative to the data dir),
/// size and type, at position `index` of the message's `media` array.
pub fn set_media_item(
    conn: &Connection,
    id: i64,
    index: usize,
    path: &str,
    size: u64,
    content_type: &str,
) -> Result<(), StoreError> {
    let at = format!("$[{index}]");
    let n = conn.execute(
        "UPDATE messages SET media = json_set(media, ?2 || '.path', ?3, ?2 || '.size', ?4, ?2 || '.content_type', ?5)
         WHERE id = ?1 AND json_type(media, ?2) = 'object'",
        params![id, at, path, size as i64, content_type],
    )?;
    one_row(n, "message media item", format!("{id}/{index}"))
}

/// Outbound messages Twilio has not reported a final status for (for the
/// status sync): `(id, sid)`.
pub fn pending_outbound(conn: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, message_sid FROM messages WHERE direction = 'outbound' AND message_sid IS NOT NULL
         AND status IN ('accepted', 'queued', 'sending', 'sent', 'scheduled') ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Unread inbound messages of some numbers (`None`: all).
pub fn unread_count(conn: &Connection, did_ids: Option<&[i64]>) -> Result<u64, StoreError> {
    let dids = did_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    Ok(conn.query_row(
        "SELECT count(*) FROM messages WHERE direction = 'inbound' AND is_read = 0
         AND (?1 IS NULL OR did_id IN (SELECT value FROM json_each(?1)))",
        [dids],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dids;
    use crate::store::testing::{db, t};
    use serde_json::json;

    fn inbound<'a>(
        did: i64,
        sid: &'a str,
        from: &'a str,
        body: &'a str,
        media: &'a Value,
    ) -> NewMessage<'a> {
        NewMessage {
            message_sid: Some(sid),
            direction: Direction::Inbound,
            did_id: did,
            from_number: from,
            to_number: "+15551230001",
            body,
            media,
            status: "received",
        }
    }

    #[test]
    fn conversations_threads_and_idempotent_webhooks() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let none = json!([]);
        let pic = json!([{"path": "mms/ME2/0.jpg", "content_type": "image/jpeg", "size": 1000}]);
        let (a, new) = insert_once(
            &conn,
            &inbound(home, "SM1", "+15559870000", "hello", &none),
            t(0),
        )
        .expect("insert");
        assert!(new);
        assert_eq!(
            insert_once(
                &conn,
                &inbound(home, "SM1", "+15559870000", "hello", &none),
                t(1)
            )
            .expect("dup"),
            (a, false)
        );
        insert_once(
            &conn,
            &inbound(home, "SM2", "+15559870000", "look", &pic),
            t(10),
        )
        .expect("insert");
        insert_once(
            &conn,
            &inbound(home, "SM3", "+15550000001", "other", &none),
            t(5),
        )
        .expect("insert");
        let out = NewMessage {
            message_sid: None,
            direction: Direction::Outbound,
            did_id: home,
            from_number: "+15551230001",
            to_number: "+15559870000",
            body: "hi!",
            media: &none,
            status: "queued",
        };
        let (o, _) = insert_once(&conn, &out, t(20)).expect("outbound without sid yet");
        set_sid(&conn, o, "SM9", "queued", t(21)).expect("sid");
        assert!(update_status(&conn, "SM9", "delivered", None, t(22)).expect("status"));
        assert!(!update_status(&conn, "SMunknown", "delivered", None, t(22)).expect("status"));

        let convs = conversations(&conn, Some(&[home]), Page::ALL).expect("conversations");
        assert_eq!(convs.total, 2);
        assert_eq!(
            (
                convs.items[0].remote_number.as_str(),
                convs.items[0].last_body.as_str(),
                convs.items[0].unread
            ),
            ("+15559870000", "hi!", 2)
        );
        let th = thread(&conn, home, "+15559870000", Page::ALL).expect("thread");
        assert_eq!(
            th.items.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["hello", "look", "hi!"]
        );
        assert_eq!(th.items[1].media[0]["content_type"], "image/jpeg");
        assert_eq!(
            (
                th.items[2].status.as_str(),
                th.items[2].remote_number.as_str()
            ),
            ("delivered", "+15559870000")
        );
        assert_eq!(mark_read(&conn, home, "+15559870000").expect("read"), 2);
        assert_eq!(
            conversations(&conn, None, Page::ALL).expect("c").items[0].unread,
            0
        );
        assert_eq!(
            conversations(&conn, Some(&[]), Page::ALL).expect("c").total,
            0
        );
    }

    #[test]
    fn media_must_be_a_json_array() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let obj = json!({"not": "an array"});
        assert!(matches!(
            insert_once(&conn, &inbound(home, "SM1", "+1555", "x", &obj), t(0)),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn media_items_statuses_and_pending_sync() {
        let conn = db();
        let home = dids::tests::make(&conn, "+15551230001");
        let media = json!([{"index": 0, "content_type": "image/jpeg", "path": null, "size": null}]);
        let (id, _) = insert_once(
            &conn,
            &inbound(home, "MM1", "+15559870000", "pic", &media),
            t(0),
        )
        .expect("insert");
        set_media_item(&conn, id, 0, "mms/1/0.jpg", 1234, "image/jpeg").expect("set");
        assert!(matches!(
            set_media_item(&conn, id, 5, "x", 1, "image/png"),
            Err(StoreError::NotFound { .. })
        ));
        let m = get(&conn, id).expect("get");
        assert_eq!(
            (m.media[0]["path"].as_str(), m.media[0]["size"].as_i64()),
            (Some("mms/1/0.jpg"), Some(1234))
        );
        assert_eq!(
            find_by_sid(&conn, "MM1").expect("find").map(|m| m.id),
            Some(id)
        );
        assert_eq!(unread_count(&conn, None).expect("count"), 1);
        assert_eq!(unread_count(&conn, Some(&[])).expect("count"), 0);
        let none = json!([]);
        let out = NewMessage {
            message_sid: None,
            direction: Direction::Outbound,
            did_id: home,
            from_number: "+15551230001",
            to_number: "+15559870000",
            body: "hi",
            media: &none,
            status: "pending",
        };
        let (o, _) = insert_once(&conn, &out, t(1)).expect("outbound");
        assert!(
            pending_outbound(&conn).expect("pending").is_empty(),
            "no SID yet"
        );
        set_sid(&conn, o, "SM1", "queued", t(2)).expect("sid");
        assert_eq!(
            pending_outbound(&conn).expect("pending"),
            vec![(o, "SM1".to_string())]
        );
        set_status(&conn, o, "delivered", None, t(3)).expect("status");
        assert!(pending_outbound(&conn).expect("pending").is_empty());
    }
}
