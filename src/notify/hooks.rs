//! The `webhooks` table as the admin API edits it, and the delivery log.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::store::StoreError;

/// A webhook as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRow {
    /// Row id.
    pub id: i64,
    /// Receiver URL.
    pub url: String,
    /// Event names; empty = all.
    pub events: Vec<String>,
    /// Whether it receives events.
    pub enabled: bool,
    /// Created (RFC 3339).
    pub created_at: String,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookRow> {
    let events: String = r.get(2)?;
    Ok(WebhookRow {
        id: r.get(0)?,
        url: r.get(1)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        enabled: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Every webhook, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<WebhookRow>, StoreError> {
    let mut st =
        conn.prepare("SELECT id, url, events, enabled, created_at FROM webhooks ORDER BY id")?;
    let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Webhook `id`.
pub fn get(conn: &Connection, id: i64) -> Result<WebhookRow, StoreError> {
    conn.query_row(
        "SELECT id, url, events, enabled, created_at FROM webhooks WHERE id = ?1",
        [id],
        row,
    )
    .optional()?
    .ok_or_else(|| StoreError::not_found("webhook", id))
}

/// Adds a webhook.
pub fn insert(
    conn: &Connection,
    url: &str,
    events: &[String],
    sealed: &[u8],
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO webhooks (url, secret_sealed, events, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![url, sealed, Value::from(events.to_vec()).to_string(), now.to_string()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Changes what is given.
pub fn update(
    conn: &Connection,
    id: i64,
    url: Option<&str>,
    events: Option<&[String]>,
    enabled: Option<bool>,
    now: Timestamp,
) -> Result<WebhookRow, StoreError> {
    get(conn, id)?;
    conn.execute(
        "UPDATE webhooks SET url = coalesce(?2, url), events = coalesce(?3, events),
                enabled = coalesce(?4, enabled), updated_at = ?5 WHERE id = ?1",
        params![
            id,
            url,
            events.map(|e| Value::from(e.to_vec()).to_string()),
            enabled,
            now.to_string()
        ],
    )?;
    get(conn, id)
}

/// Removes webhook `id`.
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    if conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::not_found("webhook", id));
    }
    Ok(())
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRow {
    /// Notification id.
    pub id: i64,
    /// `email`, `push` or `webhook`.
    pub channel: String,
    /// The topic.
    pub event: String,
    /// Address, `household`/`user:<id>`, or the webhook id.
    pub target: String,
    /// Subject or title.
    pub subject: String,
    /// `pending`, `sent` or `abandoned`.
    pub state: String,
    /// Attempts made (0 once the finished job was pruned).
    pub attempts: u32,
    /// The last error.
    pub error: Option<String>,
    /// Stored.
    pub created_at: String,
    /// Delivered.
    pub sent_at: Option<String>,
}

/// Up to `limit` notifications older than `before` (id), newest first.
pub fn log(conn: &Connection, limit: u32, before: Option<i64>) -> Result<Vec<LogRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT n.id, n.channel, n.event, n.target, n.subject, n.state,
                coalesce((SELECT max(o.attempts) FROM outbox o
                          WHERE o.kind IN ('send_email', 'send_push', 'post_webhook')
                            AND json_extract(o.payload, '$.notification_id') = n.id), 0),
                n.error, n.created_at, n.sent_at
         FROM notifications n WHERE n.id < ?1 ORDER BY n.id DESC LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
            Ok(LogRow {
                id: r.get(0)?,
                channel: r.get(1)?,
                event: r.get(2)?,
                target: r.get(3)?,
                subject: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                error: r.get(7)?,
                created_at: r.get(8)?,
                sent_at: r.get(9)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
