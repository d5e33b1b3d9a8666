//! Message intake: an SMS/MMS Twilio delivers to one of our numbers is
//! stored (unless blocked or not ours) with a download job per accepted
//! media item and, when one of the number's rules says so, an auto-reply
//! ([`auto_reply`]); status callbacks update the messages we sent. The
//! webhooks in `http::webhooks` only parse the callbacks and call here; the
//! SQL is in `store::messages`.

pub mod auto_reply;

use std::time::Duration;

use rusqlite::Connection;

use crate::clock::Timestamp;
use crate::events::{Event, Events, MessageChange};
use crate::outbox::{Outbox, Task};
use crate::store::messages::{self, Direction, NewMessage};
use crate::store::{dids, StoreError};
use crate::twilio::jobs::ALLOWED_MEDIA_TYPES;
use crate::twilio::routing;

/// Most MMS media items read from one message.
pub const MAX_MEDIA_ITEMS: usize = 10;

/// One media item of an incoming message, as Twilio announces it.
#[derive(Debug, Clone)]
pub struct MediaItem {
    /// Where Twilio keeps it.
    pub url: String,
    /// Its declared media type.
    pub content_type: String,
}

/// An incoming message.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `SM…`/`MM…`.
    pub sid: String,
    /// The sender.
    pub from: String,
    /// Our number.
    pub to: String,
    /// The text.
    pub body: String,
    /// Its media, in order (at most [`MAX_MEDIA_ITEMS`] are read).
    pub media: Vec<MediaItem>,
}

/// A status callback of a message we sent.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The message's SID.
    pub sid: String,
    /// Twilio's status (`sent`, `delivered`, `failed`…).
    pub status: String,
    /// Twilio's error code, if any.
    pub error: Option<i64>,
    /// The outbox job that sent it, from our callback URL.
    pub outbox_id: Option<i64>,
}

/// Stores an incoming message, queues the downloads of its accepted media
/// and its auto-reply, if any (one rule answers a sender at most once per
/// `auto_reply_window`); announces both. Returns the new message's id,
/// `None` when it was dropped (blocked sender, not our number) or already
/// stored.
pub async fn receive(
    outbox: &Outbox,
    events: &Events,
    incoming: Incoming,
    auto_reply_window: Duration,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let stored = outbox
        .db()
        .call(move |c| store_incoming(c, &incoming, auto_reply_window, now))
        .await?;
    let Some(Stored {
        message_id,
        did_id,
        reply,
    }) = stored
    else {
        return Ok(None);
    };
    outbox.wake();
    events.publish(Event::Message {
        message_id,
        did_id,
        change: MessageChange::Received,
        status: None,
    });
    if let Some(reply) = reply {
        events.publish(Event::Message {
            message_id: reply.message_id,
            did_id,
            change: MessageChange::Status,
            status: Some("pending".into()),
        });
    }
    Ok(Some(message_id))
}

/// A newly stored incoming message.
struct Stored {
    message_id: i64,
    did_id: i64,
    reply: Option<auto_reply::Queued>,
}

/// Records a delivery status; announces the change. Returns the message's
/// id when one changed.
pub async fn status_changed(
    outbox: &Outbox,
    events: &Events,
    report: StatusReport,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let status = report.status.clone();
    let changed = outbox
        .db()
        .call(move |c| store_status(c, &report, now))
        .await?;
    let Some((message_id, did_id)) = changed else {
        return Ok(None);
    };
    events.publish(Event::Message {
        message_id,
        did_id,
        change: MessageChange::Status,
        status: Some(status),
    });
    Ok(Some(message_id))
}

/// The `media` column of a new message (accepted items with no file yet,
/// refused ones marked) and the downloads to queue (index in that list,
/// URL).
fn plan_media(items: &[MediaItem]) -> (serde_json::Value, Vec<(usize, String)>) {
    let mut media = Vec::new();
    let mut downloads = Vec::new();
    for (i, item) in items.iter().take(MAX_MEDIA_ITEMS).enumerate() {
        let ct = item.content_type.to_ascii_lowercase();
        if ALLOWED_MEDIA_TYPES.contains(&ct.as_str()) && !item.url.is_empty() {
            media.push(
                serde_json::json!({"index": i, "content_type": ct, "path": null, "size": null}),
            );
            downloads.push((media.len() - 1, item.url.clone()));
        } else {
            media.push(serde_json::json!({"index": i, "content_type": ct, "path": null, "size": null, "rejected": "media type not accepted"}));
        }
    }
    (serde_json::Value::Array(media), downloads)
}

fn store_incoming(
    c: &mut Connection,
    m: &Incoming,
    auto_reply_window: Duration,
    now: Timestamp,
) -> Result<Option<Stored>, StoreError> {
    let Some(did) = dids::find_by_number(c, &m.to)? else {
        tracing::warn!(to = %m.to, "message for a number that is not ours; dropped");
        return Ok(None);
    };
    if routing::is_blocked(c, &m.from)? {
        tracing::info!(from = %m.from, "message from a blocked number; dropped");
        return Ok(None);
    }
    let (media, downloads) = plan_media(&m.media);
    let tx = c.unchecked_transaction()?;
    let (id, new) = messages::insert_once(
        &tx,
        &NewMessage {
            message_sid: Some(&m.sid),
            direction: Direction::Inbound,
            did_id: did.id,
            from_number: &m.from,
            to_number: &m.to,
            body: &m.body,
            media: &media,
            status: "received",
        },
        now,
    )?;
    let mut reply = None;
    if new {
        reply = auto_reply::respond(&tx, &did, &m.from, &m.body, auto_reply_window, now)?;
        for (index, url) in downloads {
            Outbox::enqueue_in(
                &tx,
                &Task::DownloadMedia {
                    message_id: id,
                    index,
                    url,
                },
                now,
            )?;
        }
    }
    tx.commit()?;
    Ok(new.then_some(Stored {
        message_id: id,
        did_id: did.id,
        reply,
    }))
}

fn store_status(
    c: &mut Connection,
    r: &StatusReport,
    now: Timestamp,
) -> Result<Option<(i64, i64)>, StoreError> {
    if messages::update_status(c, &r.sid, &r.status, r.error, now)? {
        return Ok(messages::find_by_sid(c, &r.sid)?.map(|m| (m.id, m.did_id)));
    }
    // The send's answer was lost (crash): this callback names the job,
    // whose message gets the SID now.
    if let Some((Task::SendMessage { message_id }, _)) = match r.outbox_id {
        Some(id) => crate::outbox::store::task(c, id)?,
        None => None,
    } {
        let m = messages::get(c, message_id)?;
        if m.message_sid.is_none() {
            messages::set_sid(c, message_id, &r.sid, &r.status, now)?;
            messages::set_status(c, message_id, &r.status, r.error, now)?;
            tracing::info!(message = message_id, sid = %r.sid, "message SID recorded from its status callback");
            return Ok(Some((message_id, m.did_id)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(url: &str, ct: &str) -> MediaItem {
        MediaItem {
            url: url.into(),
            content_type: ct.into(),
        }
    }

    #[test]
    fn accepted_media_is_downloaded_and_the_rest_is_marked() {
        let items = [
            item("https://x/1", "IMAGE/JPEG"),
            item("https://x/2", "application/x-msdownload"),
            item("", "image/png"),
            item("https://x/4", "image/png"),
        ];
        let (media, downloads) = plan_media(&items);
        assert_eq!(
            downloads,
            [
                (0, "https://x/1".to_string()),
                (3, "https://x/4".to_string())
            ]
        );
        let media = media.as_array().expect("array");
        assert_eq!(media.len(), 4);
        assert_eq!(media[0]["content_type"], "image/jpeg");
        assert!(media[0].get("rejected").is_none());
        assert_eq!(media[1]["rejected"], "media type not accepted");
        assert_eq!(media[2]["rejected"], "media type not accepted");
    }

    #[test]
    fn at_most_the_limit_of_items_is_read() {
        let items: Vec<_> = (0..MAX_MEDIA_ITEMS + 5)
            .map(|i| item(&format!("https://x/{i}"), "image/png"))
            .collect();
        let (media, downloads) = plan_media(&items);
        assert_eq!(media.as_array().map(Vec::len), Some(MAX_MEDIA_ITEMS));
        assert_eq!(downloads.len(), MAX_MEDIA_ITEMS);
    }
}
