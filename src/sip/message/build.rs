//! Building the messages Homeline writes: replies, CANCEL, a B2BUA's
//! INVITE, `Via`/`Contact` values and the `Warning` header.
//!
//! Every message the endpoint and the call layer originate is made here, so
//! the headers Homeline always adds (`Server`, `User-Agent`, `Allow`) and the
//! rules for values taken from the outside (`Warning` text) live in one
//! place. Nothing here does I/O or keeps state.

use bytes::Bytes;

use super::{default_reason, CSeq, HeaderName, Headers, Method, Request, Response};

/// What Homeline answers to in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, NOTIFY, REFER";

/// The SIP extensions (option tags) Homeline implements: what it lists in
/// `Supported` and accepts in a peer's `Require`. One list, so the 420
/// check and the headers Homeline sends cannot disagree.
pub const SUPPORTED: &[&str] = &["100rel", "timer"];

/// The `Supported` value Homeline sends on its INVITEs and 2xx answers.
pub fn supported() -> String {
    SUPPORTED.join(", ")
}

/// A `Reason` header value (RFC 3326) saying why Homeline ends a call,
/// the text cleaned and bounded like a `Warning`'s.
pub fn reason(cause: u16, text: &str) -> String {
    format!(
        "SIP;cause={cause};text=\"{}\"",
        super::text::phrase(text, super::text::MAX_WARNING_TEXT)
    )
}

/// The option tags of `req`'s `Require` that Homeline does not implement
/// (RFC 3261 §8.2.2.3: a request requiring one gets 420 with them listed in
/// `Unsupported`).
pub fn unsupported_requirements(req: &Request) -> Vec<&str> {
    req.headers
        .values(&HeaderName::Require)
        .into_iter()
        .filter(|tag| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect()
}

/// Our `Server` / `User-Agent` value.
pub const PRODUCT: &str = concat!("Homeline/", env!("CARGO_PKG_VERSION"));

/// Our `Server` / `User-Agent` value, owned.
pub fn product() -> String {
    PRODUCT.to_string()
}

/// A response to `req` with the default reason phrase and our `Server`
/// header; every answer Homeline sends starts here.
pub fn reply(req: &Request, status: u16, tag: &str) -> Response {
    let mut r = Response::to(req, status, default_reason(status), tag);
    r.headers.push(HeaderName::Server, PRODUCT);
    r
}

/// [`reply`] with a `Warning: 399 homeline "why"` saying why (nothing
/// added when `why` is empty).
pub fn reply_with_warning(req: &Request, status: u16, tag: &str, why: &str) -> Response {
    let mut r = reply(req, status, tag);
    if !why.is_empty() {
        r.headers
            .push(HeaderName::Other("Warning".into()), warning(why));
    }
    r
}

pub use super::text::warning;

/// The CANCEL for one of our INVITEs (§9.1): same Request-URI, top Via,
/// Call-ID, From, To and CSeq number.
pub fn cancel_for(invite: &Request) -> Request {
    let mut h = Headers::default();
    if let Some(v) = invite.headers.values(&HeaderName::Via).first() {
        h.push(HeaderName::Via, v.to_string());
    }
    h.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            h.push(name, v.to_string());
        }
    }
    let seq = invite
        .headers
        .get(&HeaderName::CSeq)
        .and_then(CSeq::parse)
        .map(|c| c.seq)
        .unwrap_or(1);
    h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers: h,
        body: Bytes::new(),
    }
}

/// The transport token, host and port of a `Via` we write.
pub fn via(transport_token: &str, host: &str, port: u16, branch_token: &str) -> String {
    format!("SIP/2.0/{transport_token} {host}:{port};branch=z9hG4bK{branch_token};rport")
}

/// A host as written in a URI (IPv6 in brackets).
pub fn uri_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// The parts of a new out-of-dialog INVITE a B2BUA leg sends.
pub struct NewInvite<'a> {
    /// Request-URI.
    pub uri: &'a str,
    /// The `To` URI.
    pub to_uri: &'a str,
    /// The complete `From` value (with its tag).
    pub from: String,
    /// A fresh `Via`.
    pub via: String,
    /// The Call-ID.
    pub call_id: String,
    /// Our Contact URI.
    pub contact: String,
    /// The SDP offer.
    pub sdp: Vec<u8>,
}

/// An INVITE (CSeq 1) carrying an SDP offer.
pub fn invite(p: NewInvite<'_>) -> Request {
    let mut h = Headers::default();
    h.push(HeaderName::Via, p.via);
    h.push(HeaderName::MaxForwards, "70");
    h.push(HeaderName::From, p.from);
    h.push(HeaderName::To, format!("<{}>", p.to_uri));
    h.push(HeaderName::CallId, p.call_id);
    h.push(HeaderName::CSeq, "1 INVITE");
    h.push(HeaderName::Contact, format!("<{}>", p.contact));
    h.push(HeaderName::Allow, ALLOW);
    if !SUPPORTED.is_empty() {
        h.push(HeaderName::Supported, supported());
    }
    h.push(HeaderName::UserAgent, product());
    h.push(HeaderName::ContentType, "application/sdp");
    Request {
        method: Method::Invite,
        uri: p.uri.to_string(),
        headers: h,
        body: Bytes::from(p.sdp),
    }
}

/// The `From` value of an INVITE we originate, with an optional display name.
pub fn from_value(display: Option<&str>, user: &str, host: &str, tag: &str) -> String {
    match display {
        Some(d) => format!("\"{}\" <sip:{user}@{host}>;tag={tag}", d.replace('"', "")),
        None => format!("<sip:{user}@{host}>;tag={tag}"),
    }
}

/// A NOTIFY's sipfrag body for a REFER's progress (RFC 3515 §2.4.5).
pub fn sipfrag(status: u16) -> Bytes {
    Bytes::from(format!("SIP/2.0 {status} {}\r\n", default_reason(status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite_req() -> Request {
        let mut h = Headers::default();
        h.push(
            HeaderName::Via,
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc",
        );
        h.push(HeaderName::From, "<sip:a@x>;tag=1");
        h.push(HeaderName::To, "<sip:b@x>");
        h.push(HeaderName::CallId, "c1");
        h.push(HeaderName::CSeq, "7 INVITE");
        Request {
            method: Method::Invite,
            uri: "sip:b@x".into(),
            headers: h,
            body: Bytes::new(),
        }
    }

    #[test]
    fn rfc3261_9_1_cancel_copies_the_invite() {
        let c = cancel_for(&invite_req());
        assert_eq!(c.method, Method::Cancel);
        assert_eq!(c.uri, "sip:b@x");
        assert_eq!(c.headers.get(&HeaderName::CSeq), Some("7 CANCEL"));
        assert_eq!(
            c.headers.get(&HeaderName::Via),
            Some("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc")
        );
        assert_eq!(c.headers.get(&HeaderName::To), Some("<sip:b@x>"));
    }

    #[test]
    fn rfc3262_100rel_is_supported_and_other_requirements_are_not() {
        let mut req = invite_req();
        req.headers.push(HeaderName::Require, "100rel, foo");
        assert_eq!(unsupported_requirements(&req), vec!["foo"]);
        assert!(supported().contains("100rel"));
        assert_eq!(
            reason(488, "no \"answer\"\r\n"),
            "SIP;cause=488;text=\"no 'answer'  \""
        );
    }

    #[test]
    fn warning_text_is_one_quoted_string() {
        let r = reply_with_warning(&invite_req(), 488, "t", "say \"no\"");
        assert_eq!(
            r.headers.get(&HeaderName::Other("Warning".into())),
            Some("399 homeline \"say 'no'\"")
        );
        let plain = reply_with_warning(&invite_req(), 488, "t", "");
        assert!(plain
            .headers
            .get(&HeaderName::Other("Warning".into()))
            .is_none());
    }
}
