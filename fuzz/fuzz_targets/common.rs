//! Checks shared by the fuzz targets: run every typed view over a parsed
//! message and assert the properties the SIP stack relies on.

#![allow(dead_code)]

use homeline::sip::auth::Credentials;
use homeline::sip::message::{
    split_list, CSeq, Framing, HeaderName, Message, NameAddr, Params, Uri, Via,
};

/// The message without its Content-Length lines (`to_bytes` regenerates
/// Content-Length, so it is the one header allowed to differ).
pub fn without_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    match &mut m {
        Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
        Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
    }
    m
}

/// Serialise → re-parse (as a datagram and as a stream) must give the same
/// message, and serialising is a fixed point after one round.
pub fn check_round_trip(msg: &Message) {
    let bytes = msg.to_bytes();
    let again = match homeline::sip::message::parse_datagram(&bytes) {
        Ok(m) => m,
        Err(e) => panic!(
            "serialised message does not re-parse: {e}\noriginal: {msg:?}\nserialised: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(
        without_content_length(msg),
        without_content_length(&again),
        "round trip changed the message; serialised: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(bytes, again.to_bytes(), "serialisation is not a fixed point");

    // The same bytes on a TCP stream frame as exactly one message.
    match homeline::sip::message::parse_stream(&bytes) {
        Framing::Message {
            result: Ok(m),
            consumed,
        } => {
            assert_eq!(consumed, bytes.len(), "stream framing of a serialised message");
            assert_eq!(m, again, "stream and datagram parses differ");
        }
        other => panic!(
            "serialised message does not frame on a stream: {other:?}\nserialised: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// Runs every typed view over one header value (whatever the header is, as
/// the stack may be handed any of them) and checks the views' own
/// parse → display → parse round trips.
pub fn exercise_value(value: &str) {
    if let Some(v) = Via::parse(value) {
        let s = v.to_value();
        assert_eq!(Via::parse(&s).as_ref(), Some(&v), "Via round trip via {s:?}");
        let _ = v.branch();
    }
    if let Some(n) = NameAddr::parse(value) {
        let s = n.to_string();
        // Display always brackets the URI, so only `bracketed` may change.
        let back = NameAddr::parse(&s)
            .unwrap_or_else(|| panic!("NameAddr {n:?} displays as {s:?}, which does not parse"));
        assert_eq!(
            (&back.display, &back.uri, &back.params),
            (&n.display, &n.uri, &n.params),
            "NameAddr round trip via {s:?}"
        );
        check_uri(&n.uri);
    }
    if let Some(u) = Uri::parse(value) {
        check_uri(&u);
    }
    if let Some(c) = CSeq::parse(value) {
        let s = format!("{} {}", c.seq, c.method);
        assert_eq!(CSeq::parse(&s).as_ref(), Some(&c), "CSeq round trip via {s:?}");
    }
    if let Some(c) = Credentials::parse(value) {
        let _ = c.algorithm();
    }
    if let Some(p) = Params::parse(value) {
        let s = p.to_string();
        assert_eq!(Params::parse(&s).as_ref(), Some(&p), "Params round trip via {s:?}");
    }
    for element in split_list(value) {
        let _ = Via::parse(element);
        let _ = NameAddr::parse(element);
        let _ = Uri::parse(element);
    }
}

fn check_uri(u: &Uri) {
    let s = u.to_string();
    assert_eq!(Uri::parse(&s).as_ref(), Some(u), "Uri round trip via {s:?}");
    let _ = u.user_unescaped();
    let _ = u.is_sip();
}

/// Every view over every header of a parsed message.
pub fn exercise_message(msg: &Message) {
    for (name, value) in msg.headers().iter() {
        assert_eq!(
            &HeaderName::parse(name.as_str()),
            name,
            "header name does not survive as_str/parse"
        );
        exercise_value(value);
    }
    if let Message::Request(r) = msg {
        if let Some(u) = r.uri() {
            check_uri(&u);
        }
    }
}
