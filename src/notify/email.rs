//! Building the e-mail of a notification: text and HTML alternatives inside
//! a multipart/mixed with the attachments, UTF-8 headers encoded by lettre,
//! and a Message-ID derived from the notification, so a send resumed after a
//! crash carries the same id and the recipient's mail system (and a person
//! reading headers) can tell it is the same message.

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::queue::{Attachment, Notification};
use super::send::{Reason, SendError};

/// Largest attachment file read into an e-mail (MMS are capped lower by the
/// dispatcher; this only guards against a runaway file).
const MAX_ATTACHMENT: u64 = 25 * 1024 * 1024;

/// A file read for sending.
#[derive(Debug, Clone)]
pub struct File {
    /// The name the recipient sees.
    pub filename: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Reads the attachments that exist; a missing or oversized file is left
/// out with a warning (the text already links to the portal), never a
/// reason to lose the whole e-mail.
pub fn read_attachments(list: &[Attachment]) -> Vec<File> {
    list.iter()
        .filter_map(|a| {
            let meta = std::fs::metadata(&a.path).ok()?;
            if meta.len() > MAX_ATTACHMENT {
                tracing::warn!(path = %a.path, size = meta.len(), "attachment too large; sent without it");
                return None;
            }
            match std::fs::read(&a.path) {
                Ok(bytes) => Some(File {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    bytes,
                }),
                Err(e) => {
                    tracing::warn!(path = %a.path, error = %e, "attachment unreadable; sent without it");
                    None
                }
            }
        })
        .collect()
}

/// `<notification-<id>.<16 hex of SHA-256(dedupe key)>@<host>>`.
pub fn message_id(id: i64, dedupe_key: &str, from: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, dedupe_key.as_bytes());
    let hash: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let host = from
        .rsplit_once('@')
        .map(|(_, h)| h.trim_end_matches('>'))
        .filter(|h| !h.is_empty())
        .unwrap_or("homeline.local");
    format!("<notification-{id}.{hash}@{host}>")
}

/// Parses an address setting or target (`a@b.c` or `Name <a@b.c>`).
pub fn mailbox(s: &str, what: Reason) -> Result<Mailbox, SendError> {
    s.parse::<Mailbox>()
        .map_err(|e| SendError::permanent(what, format!("{s:?} is not a usable address: {e}")))
}

/// The e-mail of notification `id`, from `from`.
pub fn build(id: i64, n: &Notification, from: &str, files: &[File]) -> Result<Message, SendError> {
    let from_box = mailbox(from, Reason::SenderRefused)?;
    let to_box = mailbox(&n.target, Reason::RecipientRefused)?;
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(n.text.clone());
    let body = match &n.html {
        Some(html) => MultiPart::alternative().singlepart(text).singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html.clone()),
        ),
        None => MultiPart::alternative().singlepart(text),
    };
    let mut mixed = MultiPart::mixed().multipart(body);
    for f in files {
        let ct = ContentType::parse(&f.content_type).unwrap_or(
            ContentType::parse("application/octet-stream")
                .map_err(|e| SendError::new(Reason::Other, format!("content type: {e}")))?,
        );
        mixed = mixed.singlepart(MimeAttachment::new(f.filename.clone()).body(f.bytes.clone(), ct));
    }
    Message::builder()
        .from(from_box)
        .to(to_box)
        .subject(n.subject.clone())
        .message_id(Some(message_id(id, &n.dedupe_key, from)))
        .multipart(mixed)
        .map_err(|e| {
            SendError::permanent(Reason::Other, format!("the e-mail cannot be built: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::queue::{Channel, Topic};

    fn note() -> Notification {
        Notification {
            channel: Channel::Email,
            topic: Topic::Voicemail,
            user_id: None,
            target: "Zoë Ångström <zoe@example.org>".into(),
            subject: "Voicemail von Jürgen — 3 Min.".into(),
            text: "Jürgen hat angerufen.".into(),
            html: Some("<p>J&uuml;rgen hat angerufen.</p>".into()),
            payload: None,
            attachments: vec![],
            link: None,
            priority: 5,
            dedupe_key: "voicemail:1:email:user:2".into(),
        }
    }

    #[test]
    fn multipart_with_encoded_headers_attachment_and_stable_id() {
        let files = vec![File {
            filename: "voicemail.mp3".into(),
            content_type: "audio/mpeg".into(),
            bytes: vec![0xff, 0xfb, 0x90, 0x00],
        }];
        let m = build(9, &note(), "Homeline <pi@home.example>", &files).expect("built");
        let raw = String::from_utf8(m.formatted()).expect("ascii");
        assert!(raw.is_ascii(), "headers are encoded");
        assert!(raw.contains("multipart/mixed"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/html"));
        assert!(raw.contains("audio/mpeg"));
        assert!(raw.contains("=?utf-8?"), "RFC 2047 subject: {raw}");
        let id = message_id(9, "voicemail:1:email:user:2", "Homeline <pi@home.example>");
        assert!(raw.contains(&format!("Message-ID: {id}")), "{raw}");
        assert!(id.starts_with("<notification-9.") && id.ends_with("@home.example>"));
        assert_eq!(
            id,
            message_id(9, "voicemail:1:email:user:2", "pi@home.example")
        );
    }

    #[test]
    fn a_bad_recipient_is_permanent() {
        let mut n = note();
        n.target = "not an address".into();
        let e = build(1, &n, "pi@home.example", &[]).expect_err("refused");
        assert!(e.permanent);
        assert_eq!(e.reason, Reason::RecipientRefused);
    }
}
