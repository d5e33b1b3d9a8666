//! TwiML from a small typed builder: a document is a list of verbs, each a
//! Rust value with only the attributes Homeline uses, all escaped on output.
//!
//! GoSIP concatenated strings and shipped a nested `<Response>`, a `<Sip>`
//! URI without a scheme and a callback to a route that did not exist; here a
//! document has exactly one root, nouns can only sit inside `<Dial>`, and
//! every text and attribute goes through one escaper. Attributes are written
//! in name order, like Twilio's own libraries, so documents compare cleanly.

use std::fmt::Write as _;

/// The root of a voice or messaging document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    verbs: Vec<Verb>,
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: text to speech.
    Say(String),
    /// `<Play>`: an audio file by URL.
    Play(String),
    /// `<Record>`: the voicemail recorder.
    Record(Record),
    /// `<Dial>`: connect the caller to one target.
    Dial(Dial),
    /// `<Reject>`: refuse the call without answering it (no charge).
    Reject,
    /// `<Reject reason="busy">`: refuse the call with a busy signal.
    RejectBusy,
    /// `<Hangup>`.
    Hangup,
    /// `<Message>` (messaging documents): a reply text.
    Message(String),
}

/// `<Record>`'s attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where Twilio goes once recording ends (otherwise it re-requests the
    /// current document, which would record again).
    pub action: String,
    /// Longest recording in seconds.
    pub max_length: u32,
    /// Silence in seconds that ends the recording.
    pub timeout: u32,
    /// Beep before recording.
    pub play_beep: bool,
    /// Ask for a transcription.
    pub transcribe: bool,
    /// Where the transcription is posted.
    pub transcribe_callback: String,
    /// Where the recording's status is posted once it is available.
    pub recording_status_callback: String,
}

/// `<Dial>` and its one noun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// Keep the caller hearing ringback until the callee answers.
    pub answer_on_bridge: bool,
    /// Seconds to ring.
    pub timeout: Option<u32>,
    /// Where the outcome is posted (and the next TwiML fetched).
    pub action: Option<String>,
    /// Caller ID shown to the callee (outgoing calls: one of our numbers).
    pub caller_id: Option<String>,
    /// Whom to dial.
    pub target: DialTarget,
}

/// The noun inside `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Sip username password>sip:…</Sip>`: Homeline's SIP endpoint.
    Sip {
        /// A full `sip:` or `sips:` URI.
        uri: String,
        /// Digest user name Twilio answers our challenge with.
        username: String,
        /// Digest password.
        password: String,
    },
    /// `<Number>+E164</Number>`: the public phone network.
    Number(String),
}

impl Response {
    /// An empty document.
    pub fn new() -> Response {
        Response::default()
    }

    /// Appends a verb.
    pub fn push(mut self, verb: Verb) -> Response {
        self.verbs.push(verb);
        self
    }

    /// The verbs, for tests and logging.
    pub fn verbs(&self) -> &[Verb] {
        &self.verbs
    }

    /// The document as Twilio expects it (`Content-Type: text/xml`).
    pub fn to_xml(&self) -> String {
        let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if self.verbs.is_empty() {
            out.push_str("<Response/>");
            return out;
        }
        out.push_str("<Response>");
        for v in &self.verbs {
            write_verb(&mut out, v);
        }
        out.push_str("</Response>");
        out
    }
}

fn write_verb(out: &mut String, verb: &Verb) {
    match verb {
        Verb::Say(text) => element(out, "Say", &[], Some(text)),
        Verb::Play(url) => element(out, "Play", &[], Some(url)),
        Verb::Message(text) => element(out, "Message", &[], Some(text)),
        Verb::Reject => element(out, "Reject", &[], None),
        Verb::RejectBusy => element(out, "Reject", &[("reason", Some("busy"))], None),
        Verb::Hangup => element(out, "Hangup", &[], None),
        Verb::Record(r) => {
            let (max, timeout) = (r.max_length.to_string(), r.timeout.to_string());
            element(
                out,
                "Record",
                &[
                    ("action", Some(&r.action)),
                    ("maxLength", Some(&max)),
                    ("playBeep", Some(bool_str(r.play_beep))),
                    (
                        "recordingStatusCallback",
                        Some(&r.recording_status_callback),
                    ),
                    ("timeout", Some(&timeout)),
                    ("transcribe", Some(bool_str(r.transcribe))),
                    ("transcribeCallback", Some(&r.transcribe_callback)),
                ],
                None,
            )
        }
        Verb::Dial(d) => {
            let timeout = d.timeout.map(|t| t.to_string());
            open(
                out,
                "Dial",
                &[
                    ("action", d.action.as_deref()),
                    (
                        "answerOnBridge",
                        d.answer_on_bridge.then_some(bool_str(true)),
                    ),
                    ("callerId", d.caller_id.as_deref()),
                    ("timeout", timeout.as_deref()),
                ],
            );
            out.push('>');
            match &d.target {
                DialTarget::Sip {
                    uri,
                    username,
                    password,
                } => element(
                    out,
                    "Sip",
                    &[("password", Some(password)), ("username", Some(username))],
                    Some(uri),
                ),
                DialTarget::Number(n) => element(out, "Number", &[], Some(n)),
            }
            out.push_str("</Dial>");
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn open(out: &mut String, name: &str, attrs: &[(&str, Option<&str>)]) {
    out.push('<');
    out.push_str(name);
    for (k, v) in attrs {
        if let Some(v) = v {
            let _ = write!(out, r#" {k}="{}""#, escape(v, true));
        }
    }
}

fn element(out: &mut String, name: &str, attrs: &[(&str, Option<&str>)], text: Option<&str>) {
    open(out, name, attrs);
    match text {
        Some(t) => {
            let _ = write!(out, ">{}</{name}>", escape(t, false));
        }
        None => out.push_str("/>"),
    }
}

/// Escapes XML text or an attribute value. Characters XML 1.0 cannot carry
/// (most control characters) are dropped rather than making the document
/// invalid; in attributes, tab and newlines become character references so
/// the parser keeps them.
pub fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' | '\n' | '\r' if attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_call_document() {
        let doc = Response::new()
            .push(Verb::Dial(Dial {
                answer_on_bridge: true,
                timeout: Some(30),
                action: Some("https://h.example/api/webhooks/voice/dial-result".into()),
                caller_id: None,
                target: DialTarget::Sip {
                    uri: "sip:+15551230001@h.example:5061;transport=tls".into(),
                    username: "u".into(),
                    password: "p&<\"'>".into(),
                },
            }))
            .to_xml();
        assert_eq!(
            doc,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h.example/api/webhooks/voice/dial-result" answerOnBridge="true" timeout="30"><Sip password="p&amp;&lt;&quot;'&gt;" username="u">sip:+15551230001@h.example:5061;transport=tls</Sip></Dial></Response>"#
        );
    }

    #[test]
    fn empty_reject_and_escaped_text() {
        assert_eq!(
            Response::new().to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
        assert_eq!(
            Response::new().push(Verb::Reject).to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject/></Response>"#
        );
        let doc = Response::new()
            .push(Verb::Say("Tom & Jerry <home>\u{7}\n".into()))
            .push(Verb::Hangup)
            .to_xml();
        assert!(
            doc.contains("<Say>Tom &amp; Jerry &lt;home&gt;\n</Say><Hangup/>"),
            "{doc}"
        );
        assert_eq!(escape("a\"b\nc", true), "a&quot;b&#10;c");
        assert_eq!(
            Response::new().push(Verb::RejectBusy).to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>"#
        );
    }

    #[test]
    fn voicemail_record_attributes() {
        let doc = Response::new()
            .push(Verb::Record(Record {
                action: "https://h/a?x=1&y=2".into(),
                max_length: 180,
                timeout: 10,
                play_beep: true,
                transcribe: true,
                transcribe_callback: "https://h/t".into(),
                recording_status_callback: "https://h/r".into(),
            }))
            .to_xml();
        assert!(doc.contains(r#"<Record action="https://h/a?x=1&amp;y=2" maxLength="180" playBeep="true" recordingStatusCallback="https://h/r" timeout="10" transcribe="true" transcribeCallback="https://h/t"/>"#), "{doc}");
    }
}
