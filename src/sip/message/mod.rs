//! SIP messages: parsing, serialising and typed views of the headers the
//! stack relies on (RFC 3261 §7, §20, §25).
//!
//! The parser is total: any input gives a message or a [`ParseError`] that
//! says what was wrong and which reply it deserves ([`ParseError::status`]),
//! never a panic. Headers are kept in order with their values unfolded;
//! unknown headers survive verbatim. Typed views (`Via`, `NameAddr`, `CSeq`,
//! `Uri`) are parsed on demand from those values.

pub mod build;
mod headers;
mod parse;
pub mod text;
mod uri;

pub use headers::{split_list, HeaderName, Headers};
pub use parse::{
    parse_datagram, parse_datagram_with_via, parse_stream, Framing, ParseError, MAX_HEADERS,
    MAX_MESSAGE_BYTES,
};
pub use uri::{unescape, NameAddr, Params, Uri};

use std::fmt;

use bytes::Bytes;

/// A request method; unknown methods are kept, not rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO
    Info,
    /// UPDATE
    Update,
    /// PRACK
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// REFER
    Refer,
    /// MESSAGE
    Message,
    /// PUBLISH
    Publish,
    /// Any other token (methods are case-sensitive).
    Other(String),
}

impl Method {
    /// Parses a method token; `None` if it is not a token.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI as received (validated by [`Request::uri`]).
    pub uri: String,
    /// The headers, in order.
    pub headers: Headers,
    /// The body, exactly Content-Length octets.
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase (informational only).
    pub reason: String,
    /// The headers, in order.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Serialises with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (name, value) in headers.iter() {
        if name == &HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        text::write_value(out, value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Appends `n` in decimal (what `format!` did, without its allocation).
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

impl Request {
    /// Serialises the request (Content-Length always matches the body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        text::write_value(&mut out, &self.uri);
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }

    /// The parsed Request-URI.
    pub fn uri(&self) -> Option<Uri> {
        Uri::parse(&self.uri)
    }
}

impl Response {
    /// Serialises the response (Content-Length always matches the body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(b"SIP/2.0 ");
        push_decimal(&mut out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(text::phrase(&self.reason, text::MAX_REASON).as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }

    /// A response to `req` as RFC 3261 §8.2.6 builds it: Via, From, To,
    /// Call-ID and CSeq copied; a To tag added (for non-100 responses) when
    /// the request had none.
    pub fn to(req: &Request, status: u16, reason: &str, to_tag: &str) -> Response {
        // Room for the copied headers and the few a reply adds (Server,
        // Contact, WWW-Authenticate…) without growing the list.
        let mut headers = Headers::with_capacity(10);
        for (name, value) in req.headers.iter() {
            match name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    headers.push(name.clone(), value.clone())
                }
                HeaderName::To => {
                    // A value without the letters "tag" has no tag
                    // parameter: most requests skip the parse.
                    let has_tag = contains_ignore_case(value, "tag")
                        && NameAddr::parse(value).is_some_and(|na| na.params.get("tag").is_some());
                    if has_tag || status == 100 || to_tag.is_empty() {
                        headers.push(HeaderName::To, value.clone());
                    } else {
                        headers.push(HeaderName::To, format!("{value};tag={to_tag}"));
                    }
                }
                _ => {}
            }
        }
        Response {
            status,
            reason: reason.to_string(),
            headers,
            body: Bytes::new(),
        }
    }
}

/// Whether `needle` (ASCII) occurs in `hay`, ignoring ASCII case.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The reason phrase RFC 3261 suggests for a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A Via header value (`SIP/2.0/UDP host:port;branch=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper case as sent (`UDP`, `TCP`, `TLS`…).
    pub transport: String,
    /// sent-by host (a name, IPv4 or `[IPv6]`).
    pub host: String,
    /// sent-by port, if given.
    pub port: Option<u16>,
    /// Parameters in order.
    pub params: Params,
}

impl Via {
    /// Parses one Via value.
    pub fn parse(s: &str) -> Option<Via> {
        let (proto, rest) = split_proto(s.trim())?;
        let mut parts = proto.split('/').map(str::trim);
        let (name, version, transport) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.eq_ignore_ascii_case("SIP")
            || version != "2.0"
            || parts.next().is_some()
            || transport.is_empty()
        {
            return None;
        }
        if !transport.bytes().all(is_token_char) {
            return None;
        }
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), Params::parse(&rest[i..])?),
            None => (rest.trim(), Params::default()),
        };
        let (host, port) = uri::split_host_port(sent_by)?;
        Some(Via {
            transport: transport.to_string(),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// Serialises it back.
    pub fn to_value(&self) -> String {
        let mut s = format!("SIP/2.0/{} {}", self.transport, self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(&self.params.to_string());
        s
    }
}

/// Splits `SIP / 2.0 / UDP host…` into the protocol (with inner LWS
/// allowed, as wsinv.dat has it) and the rest.
fn split_proto(s: &str) -> Option<(String, &str)> {
    let mut proto = String::new();
    let mut slashes = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'/' {
            slashes += 1;
            proto.push('/');
        } else if c == b' ' || c == b'\t' {
            // LWS inside the protocol is allowed around '/'; after the
            // transport token it ends the protocol.
            let next = s[i..].trim_start();
            if slashes == 2 && !proto.ends_with('/') && !next.starts_with('/') {
                return Some((proto, next));
            }
        } else {
            proto.push(c as char);
        }
        i += 1;
    }
    None
}

/// A CSeq value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31 per RFC 3261 §8.1.1.5, parsed as u32).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `4711 INVITE`; leading zeros allowed, overflow rejected.
    pub fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_ascii_whitespace();
        let num = it.next()?;
        let method = Method::parse(it.next()?)?;
        if it.next().is_some() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 16 {
            return None;
        }
        let seq: u64 = num.parse().ok()?;
        Some(CSeq {
            seq: u32::try_from(seq).ok()?,
            method,
        })
    }
}

#[cfg(test)]
mod tests;
