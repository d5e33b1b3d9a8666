//! DTMF between legs that carry it differently: a key press sent as SIP
//! INFO (`application/dtmf-relay` or `application/dtmf`) reaches a party
//! that negotiated `telephone-event` as RFC 4733 packets played by the
//! relay, and a party without it as the INFO itself; RFC 4733 events from
//! a party whose peer has no `telephone-event` are reported by the relay
//! and become one INFO per event (on its end packet).

use std::time::Duration;

use bytes::Bytes;

use crate::media::relay::{Control, Side};
use crate::sip::message::{build, HeaderName, Method, Request, Response};

use super::call::Call;
use super::{CallId, Calls, Cx};

/// The INFO bodies understood.
const DTMF_RELAY: &str = "application/dtmf-relay";
const DTMF: &str = "application/dtmf";

/// A key press held this long unless the INFO says otherwise.
const DEFAULT_DURATION: Duration = Duration::from_millis(250);

/// Durations are kept within what phones send and RFC 4733 can carry.
const MIN_DURATION: Duration = Duration::from_millis(40);
const MAX_DURATION: Duration = Duration::from_millis(5000);

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyPress {
    /// The RFC 4733 event code (0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash).
    pub(super) event: u8,
    pub(super) duration: Duration,
}

/// Why an INFO body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum InfoError {
    /// Not a DTMF content type (415).
    #[error("content type {0:?} is not DTMF")]
    Unsupported(String),
    /// A DTMF body that does not read (400).
    #[error("bad DTMF body: {0}")]
    Malformed(&'static str),
}

/// The event code of a key (`5`, `*`, `#`, `A`, or a number up to 16).
fn event_of(signal: &str) -> Option<u8> {
    let s = signal.trim();
    match s {
        "*" => Some(10),
        "#" => Some(11),
        _ if s.len() == 1 && matches!(s.as_bytes()[0], b'A'..=b'D' | b'a'..=b'd') => {
            Some(10 + (s.as_bytes()[0].to_ascii_uppercase() - b'A') + 2)
        }
        _ => s.parse::<u8>().ok().filter(|e| *e <= 16),
    }
}

/// The key of an event code, as `Signal=` writes it.
fn signal_of(event: u8) -> String {
    match event {
        0..=9 => event.to_string(),
        10 => "*".into(),
        11 => "#".into(),
        12..=15 => char::from(b'A' + event - 12).to_string(),
        other => other.to_string(),
    }
}

/// Reads a DTMF INFO body of `content_type`.
pub(super) fn parse_info(content_type: &str, body: &[u8]) -> Result<KeyPress, InfoError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != DTMF_RELAY && mime != DTMF {
        return Err(InfoError::Unsupported(mime));
    }
    let text = std::str::from_utf8(body).map_err(|_| InfoError::Malformed("not text"))?;
    let mut signal = None;
    let mut duration = None;
    if mime == DTMF && !text.contains('=') {
        // `application/dtmf`: the key alone.
        signal = Some(event_of(text).ok_or(InfoError::Malformed("unknown key"))?);
    } else {
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((k, v)) = line.split_once('=') else {
                return Err(InfoError::Malformed("a line without '='"));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "signal" => {
                    signal = Some(event_of(v).ok_or(InfoError::Malformed("unknown Signal"))?)
                }
                "duration" => {
                    let ms: u64 = v
                        .trim()
                        .parse()
                        .map_err(|_| InfoError::Malformed("Duration is not a number"))?;
                    duration = Some(Duration::from_millis(ms));
                }
                _ => {} // other fields (e.g. a volume) are allowed and unused
            }
        }
    }
    let event = signal.ok_or(InfoError::Malformed("no Signal"))?;
    let duration = duration
        .unwrap_or(DEFAULT_DURATION)
        .clamp(MIN_DURATION, MAX_DURATION);
    Ok(KeyPress { event, duration })
}

/// The `application/dtmf-relay` body of a key press.
fn dtmf_relay_body(event: u8, duration_ms: u32) -> Bytes {
    Bytes::from(format!(
        "Signal={}\r\nDuration={duration_ms}\r\n",
        signal_of(event)
    ))
}

/// Tells the relay what each leg negotiated: a leg's events are reported
/// (and become INFO) when the other leg has no telephone-event.
pub(super) fn tell_relay(call: &Call, cx: &mut Cx<'_>) {
    for side in [Side::A, Side::B] {
        let pt = call.dtmf[side.index()];
        let report = call.dtmf[side.other().index()].is_none();
        cx.media(call.id, Control::Events { side, pt, report });
    }
}

impl Calls {
    /// An INFO in a call's dialog from `side`: a DTMF key press goes on to
    /// the other party (RFC 4733 if it negotiated telephone-event, else the
    /// INFO as it came); an empty INFO (a keep-alive) is just answered.
    pub(super) fn on_info(
        &mut self,
        req: &Request,
        id: CallId,
        side: Side,
        tag: &str,
        cx: &mut Cx<'_>,
    ) -> Response {
        if req.body.is_empty() {
            return build::reply(req, 200, tag);
        }
        let content_type = req.headers.get(&HeaderName::ContentType).unwrap_or("");
        let press = match parse_info(content_type, &req.body) {
            Ok(p) => p,
            Err(e @ InfoError::Unsupported(_)) => {
                let mut r = build::reply_with_warning(req, 415, tag, &e.to_string());
                r.headers
                    .push(HeaderName::Accept, format!("{DTMF_RELAY}, {DTMF}"));
                return r;
            }
            Err(e) => return build::reply_with_warning(req, 400, tag, &e.to_string()),
        };
        let Some(call) = self.calls.get(&id) else {
            return crate::sip::dialog::no_such_dialog(req, tag);
        };
        let to = side.other();
        if call.route(to).is_none() {
            // No answered party to hear it yet.
            return build::reply(req, 200, tag);
        }
        tracing::debug!(call = %id, ?side, event = press.event, "DTMF by INFO");
        if call.dtmf[to.index()].is_some() {
            cx.media(
                id,
                Control::Dtmf {
                    side: to,
                    event: press.event,
                    duration: press.duration,
                },
            );
        } else {
            let ctype = content_type.to_string();
            let body = req.body.clone();
            self.request_in_dialog(
                id,
                to,
                Method::Info,
                |info| {
                    info.headers.push(HeaderName::ContentType, ctype);
                    info.body = body;
                },
                cx,
            );
        }
        build::reply(req, 200, tag)
    }

    /// The relay saw `side` send a whole RFC 4733 event that its peer,
    /// having no telephone-event, hears as an INFO.
    pub(super) fn on_dtmf_event(
        &mut self,
        id: CallId,
        side: Side,
        event: u8,
        duration_ms: u32,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let to = side.other();
        if !call.answered() || call.dtmf[to.index()].is_some() {
            return;
        }
        tracing::debug!(call = %id, ?side, event, "DTMF event sent on as INFO");
        self.request_in_dialog(
            id,
            to,
            Method::Info,
            |info| {
                info.headers.push(HeaderName::ContentType, DTMF_RELAY);
                info.body = dtmf_relay_body(event, duration_ms);
            },
            cx,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reads_dtmf_relay_and_dtmf_bodies() {
        let p = parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!((p.event, p.duration), (5, ms(160)));
        let p = parse_info("Application/DTMF-Relay; x=y", b"signal= #\nduration = 300").unwrap();
        assert_eq!((p.event, p.duration), (11, ms(300)));
        let p = parse_info("application/dtmf-relay", b"Signal=*\r\n").unwrap();
        assert_eq!((p.event, p.duration), (10, DEFAULT_DURATION));
        assert_eq!(parse_info("application/dtmf", b"9").unwrap().event, 9);
        assert_eq!(parse_info("application/dtmf", b"D\r\n").unwrap().event, 15);
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=16")
                .unwrap()
                .event,
            16
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=1\r\nDuration=999999")
                .unwrap()
                .duration,
            MAX_DURATION
        );
    }

    #[test]
    fn refuses_what_is_not_a_key_press() {
        for body in [
            &b"Signal=X"[..],
            b"Signal=17",
            b"Duration=100",
            b"Signal=1\r\nDuration=long",
            b"Signal",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(
                    parse_info("application/dtmf-relay", body),
                    Err(InfoError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        assert_eq!(
            parse_info("application/media_control+xml", b"<x/>"),
            Err(InfoError::Unsupported(
                "application/media_control+xml".into()
            ))
        );
        assert!(matches!(
            parse_info("", b"1"),
            Err(InfoError::Unsupported(_))
        ));
    }

    #[test]
    fn signals_round_trip() {
        for event in 0..=16u8 {
            assert_eq!(event_of(&signal_of(event)), Some(event));
        }
        assert_eq!(
            dtmf_relay_body(11, 200),
            Bytes::from("Signal=#\r\nDuration=200\r\n")
        );
    }
}
