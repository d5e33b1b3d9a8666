//! The `notifications` table: one row per message to deliver, written with
//! its outbox job in the caller's transaction, so a notification and the
//! promise to deliver it commit together or not at all.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::outbox::{store as outbox_store, Task};
use crate::store::StoreError;

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// E-mail, through SMTP or Postmark (whichever the admin configured).
    Email,
    /// A Gotify push.
    Push,
    /// An event webhook.
    Webhook,
}

impl Channel {
    /// The `channel` column's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Webhook => "webhook",
        }
    }

    /// Parses the column's word.
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "push" => Some(Channel::Push),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }

    /// The outbox job that delivers notification `id` on this channel.
    pub fn task(self, notification_id: i64) -> Task {
        match self {
            Channel::Email => Task::SendEmail { notification_id },
            Channel::Push => Task::SendPush { notification_id },
            Channel::Webhook => Task::PostWebhook { notification_id },
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A voicemail was left.
    Voicemail,
    /// A voicemail's transcript came after its first notification.
    VoicemailTranscript,
    /// A call to a household number went unanswered (and left no voicemail).
    MissedCall,
    /// An SMS/MMS arrived.
    Message,
    /// An SMS/MMS was sent (webhooks only).
    MessageOut,
    /// An admin alert was raised.
    Alert,
    /// The admin's "send a test" button.
    Test,
}

impl Topic {
    /// The `event` column's word (also the webhook event name).
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Voicemail => "voicemail",
            Topic::VoicemailTranscript => "voicemail_transcript",
            Topic::MissedCall => "missed_call",
            Topic::Message => "message",
            Topic::MessageOut => "message_out",
            Topic::Alert => "alert",
            Topic::Test => "test",
        }
    }

    /// Parses the column's word.
    pub fn parse(s: &str) -> Option<Topic> {
        [
            Topic::Voicemail,
            Topic::VoicemailTranscript,
            Topic::MissedCall,
            Topic::Message,
            Topic::MessageOut,
            Topic::Alert,
            Topic::Test,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A file sent with an e-mail (voicemail audio, MMS media).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Absolute path on the appliance.
    pub path: String,
    /// The name the recipient sees.
    pub filename: String,
    /// Its MIME type.
    pub content_type: String,
}

/// A notification to store and deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Where it goes.
    pub channel: Channel,
    /// What it is about.
    pub topic: Topic,
    /// The account it is for, if any.
    pub user_id: Option<i64>,
    /// E-mail address; `household` or `user:<id>` for push; the webhook id.
    pub target: String,
    /// Subject (e-mail) or title (push).
    pub subject: String,
    /// Plain text (e-mail text part, push message).
    pub text: String,
    /// The e-mail's HTML part.
    pub html: Option<String>,
    /// The webhook's JSON event, or Gotify extras.
    pub payload: Option<serde_json::Value>,
    /// Files to attach (e-mail only).
    pub attachments: Vec<Attachment>,
    /// Where a click or tap leads.
    pub link: Option<String>,
    /// 0–10 (Gotify's scale; e-mail ignores it).
    pub priority: u8,
    /// Unique per message: the same key is never stored twice, so the same
    /// event seen again notifies nobody again (`voicemail:12:email:user:3`).
    pub dedupe_key: String,
}

/// Stores `n` and its delivery job in the caller's transaction. `None` when
/// a notification with the same dedupe key exists (nothing is written).
/// Call [`crate::outbox::Outbox::wake`] after the commit.
pub fn enqueue_in(
    conn: &Connection,
    n: &Notification,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let attachments = serde_json::to_string(&n.attachments)
        .map_err(|e| StoreError::Conflict(format!("attachments cannot be encoded: {e}")))?;
    let payload = n.payload.as_ref().map(|p| p.to_string());
    let inserted = conn.execute(
        "INSERT INTO notifications (channel, event, user_id, target, subject, body_text, body_html,
                                    payload, attachments, link, priority, dedupe_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (dedupe_key) DO NOTHING",
        params![
            n.channel.as_str(),
            n.topic.as_str(),
            n.user_id,
            n.target,
            n.subject,
            n.text,
            n.html,
            payload,
            attachments,
            n.link,
            n.priority.min(10),
            n.dedupe_key,
            now.to_string(),
        ],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    outbox_store::enqueue(conn, &n.channel.task(id), now)?;
    Ok(Some(id))
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Row id.
    pub id: i64,
    /// What was stored.
    pub notification: Notification,
    /// `pending`, `sent` or `abandoned`.
    pub state: String,
    /// The last delivery error.
    pub error: Option<String>,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// When it was delivered.
    pub sent_at: Option<String>,
}

/// Reads notification `id`.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Stored>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, channel, event, user_id, target, subject, body_text, body_html, payload,
                    attachments, link, priority, dedupe_key, state, error, created_at, sent_at
             FROM notifications WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, i64>(11)?,
                    r.get::<_, String>(12)?,
                    (
                        r.get::<_, String>(13)?,
                        r.get::<_, Option<String>>(14)?,
                        r.get::<_, String>(15)?,
                        r.get::<_, Option<String>>(16)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some((
        id,
        channel,
        topic,
        user_id,
        target,
        subject,
        text,
        html,
        payload,
        att,
        link,
        prio,
        key,
        rest,
    )) = row
    else {
        return Ok(None);
    };
    let bad = |what: &str| StoreError::Conflict(format!("notification {id}: unreadable {what}"));
    let (state, error, created_at, sent_at) = rest;
    Ok(Some(Stored {
        id,
        notification: Notification {
            channel: Channel::parse(&channel).ok_or_else(|| bad("channel"))?,
            topic: Topic::parse(&topic).ok_or_else(|| bad("event"))?,
            user_id,
            target,
            subject,
            text,
            html,
            payload: match payload {
                Some(p) => Some(serde_json::from_str(&p).map_err(|_| bad("payload"))?),
                None => None,
            },
            attachments: serde_json::from_str(&att).map_err(|_| bad("attachments"))?,
            link,
            priority: u8::try_from(prio.clamp(0, 10)).unwrap_or(5),
            dedupe_key: key,
        },
        state,
        error,
        created_at,
        sent_at,
    }))
}

/// Records the outcome of a delivery: `sent`, or `abandoned` with why.
pub fn finish(
    conn: &Connection,
    id: i64,
    sent: bool,
    error: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE notifications SET state = ?2, error = ?3, sent_at = CASE WHEN ?2 = 'sent' THEN ?4 ELSE sent_at END
         WHERE id = ?1",
        params![id, if sent { "sent" } else { "abandoned" }, error, now.to_string()],
    )?;
    Ok(())
}

/// Remembers the last delivery error of a notification still being retried.
pub fn note_error(conn: &Connection, id: i64, error: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE notifications SET error = ?2 WHERE id = ?1",
        params![id, error],
    )?;
    Ok(())
}

/// The enabled webhooks that receive `topic` (those listing it, or none).
pub fn webhooks_for(conn: &Connection, topic: Topic) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id FROM webhooks
         WHERE enabled = 1
           AND (json_array_length(events) = 0
                OR EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?1))
         ORDER BY id",
    )?;
    let ids = stmt
        .query_map([topic.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &str) -> Notification {
        Notification {
            channel: Channel::Email,
            topic: Topic::Voicemail,
            user_id: None,
            target: "anna@example.org".into(),
            subject: "New voicemail from Bob".into(),
            text: "Bob called.".into(),
            html: Some("<p>Bob called.</p>".into()),
            payload: None,
            attachments: vec![Attachment {
                path: "/data/voicemail/1.mp3".into(),
                filename: "voicemail.mp3".into(),
                content_type: "audio/mpeg".into(),
            }],
            link: Some("http://homeline.local/voicemail".into()),
            priority: 5,
            dedupe_key: key.into(),
        }
    }

    #[test]
    fn stores_once_per_key_with_its_job() {
        let conn = crate::store::open_in_memory().expect("db");
        let now = Timestamp::from_unix_millis(1_795_255_200_000);
        let id = enqueue_in(&conn, &sample("vm:1"), now)
            .expect("insert")
            .expect("new");
        assert_eq!(
            enqueue_in(&conn, &sample("vm:1"), now).expect("again"),
            None
        );
        let jobs: Vec<String> = conn
            .prepare("SELECT payload FROM outbox")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(jobs.len(), 1, "one job for one notification");
        assert!(jobs[0].contains("send_email") && jobs[0].contains(&format!("{id}")));
        let stored = get(&conn, id).expect("get").expect("found");
        assert_eq!(stored.notification, sample("vm:1"));
        assert_eq!(stored.state, "pending");
        finish(&conn, id, true, None, now).expect("finish");
        assert_eq!(get(&conn, id).expect("get").expect("found").state, "sent");
    }

    #[test]
    fn webhooks_with_no_list_receive_everything() {
        let conn = crate::store::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO webhooks (id, url, secret_sealed, events, created_at, updated_at)
             VALUES (1, 'http://a', x'00', '[]', 't', 't'),
                    (2, 'http://b', x'00', '[\"voicemail\"]', 't', 't'),
                    (3, 'http://c', x'00', '[]', 't', 't');
             UPDATE webhooks SET enabled = 0 WHERE id = 3;",
        )
        .expect("rows");
        assert_eq!(
            webhooks_for(&conn, Topic::Voicemail).expect("q"),
            vec![1, 2]
        );
        assert_eq!(webhooks_for(&conn, Topic::MissedCall).expect("q"), vec![1]);
    }
}
