//! Framing and parsing (RFC 3261 §7, §18.3).
//!
//! Datagrams: one message per datagram; octets beyond Content-Length are
//! ignored, a missing Content-Length means "the rest of the datagram".
//! Streams: messages are framed by Content-Length (absent means 0); CRLF
//! keep-alives between messages are recognised (RFC 5626 §3.5.1).
//!
//! Errors carry the reply they deserve: [`ParseError::status`] is `Some` for
//! a request worth answering (400, 416, 505…) and `None` for input that must
//! be dropped silently (garbage, malformed responses).

use bytes::Bytes;

use super::headers::{HeaderName, Headers};
use super::uri::{NameAddr, Uri};
use super::{CSeq, Message, Method, Request, Response, Via};

/// Largest message accepted, in bytes (a UDP datagram's maximum).
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// Most header lines accepted in one message.
pub const MAX_HEADERS: usize = 256;

/// Why a message was refused, and what to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The status to answer with, or `None` to drop silently.
    pub status: Option<u16>,
    /// What was wrong, for the log and the reason phrase.
    pub reason: String,
    /// The request as far as it could be read, to build the answer from.
    pub request: Option<Box<Request>>,
    /// For streams: the framing is lost and the connection must close.
    pub fatal_framing: bool,
}

impl ParseError {
    fn drop(reason: impl Into<String>) -> Self {
        Self {
            status: None,
            reason: reason.into(),
            request: None,
            fatal_framing: false,
        }
    }
    /// The error for a request that deserves `status`, except that an ACK
    /// never gets a response, whatever is wrong with it (RFC 3261 §17): it
    /// is kept for the log only.
    fn reply(status: u16, reason: impl Into<String>, request: Request) -> Self {
        Self {
            status: (request.method != Method::Ack).then_some(status),
            reason: reason.into(),
            request: Some(Box::new(request)),
            fatal_framing: false,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({s})", self.reason),
            None => write!(f, "{} (dropped)", self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// The result of looking at the front of a stream buffer.
#[derive(Debug)]
pub enum Framing {
    /// Not a whole message yet; read more.
    Incomplete,
    /// A CRLF keep-alive of this many octets (`\r\n\r\n` is a ping to answer
    /// with `\r\n`, a lone `\r\n` a pong).
    KeepAlive {
        /// Octets consumed.
        consumed: usize,
        /// Whether it was a ping (double CRLF) that wants a pong.
        ping: bool,
    },
    /// A message (or its error) and how many octets it took.
    Message {
        /// The parsed message, or why it was refused.
        result: Result<Message, ParseError>,
        /// Octets consumed.
        consumed: usize,
    },
}

/// Parses one UDP datagram.
pub fn parse_datagram(data: &[u8]) -> Result<Message, ParseError> {
    parse_datagram_with_via(data).map(|(message, _)| message)
}

/// [`parse_datagram`], also handing back the top Via of a request as the
/// validator parsed it, so the transport stamps `received`/`rport` into it
/// without parsing it again (the top Via was parsed four times per request:
/// found by benches/register_load.sh).
pub fn parse_datagram_with_via(data: &[u8]) -> Result<(Message, Option<Via>), ParseError> {
    if data.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::drop("datagram too large"));
    }
    let data = skip_leading_crlf(data);
    // A datagram is the whole message: headers ending at its last CRLF
    // without the empty line (baddn.dat) are still complete.
    let (head, rest): (&[u8], &[u8]) = match find(data, b"\r\n\r\n") {
        Some(end) => (&data[..end], &data[end + 4..]),
        None if data.ends_with(b"\r\n") => (&data[..data.len() - 2], &[]),
        None => return Err(ParseError::drop("no end of headers")),
    };
    let (start, headers) = parse_head(head)?;
    let body = match content_length(&headers) {
        Ok(Some(n)) if n <= rest.len() => Bytes::copy_from_slice(&rest[..n]),
        Ok(Some(n)) => {
            return Err(refuse(
                start,
                headers,
                400,
                format!(
                    "Content-Length {n} exceeds the {} octets received",
                    rest.len()
                ),
            ))
        }
        Ok(None) => Bytes::copy_from_slice(rest),
        Err(why) => return Err(refuse(start, headers, 400, why)),
    };
    build_with_via(start, headers, body)
}

/// Frames and parses the first message of a stream buffer.
pub fn parse_stream(buf: &[u8]) -> Framing {
    if buf.starts_with(b"\r\n\r\n") {
        return Framing::KeepAlive {
            consumed: 4,
            ping: true,
        };
    }
    if buf.starts_with(b"\r\n") {
        if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            return Framing::Incomplete;
        }
        return Framing::KeepAlive {
            consumed: 2,
            ping: false,
        };
    }
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_MESSAGE_BYTES {
            return fatal(buf.len(), "headers longer than the message limit");
        }
        return Framing::Incomplete;
    };
    let (start, headers) = match parse_head(&buf[..head_end]) {
        Ok(v) => v,
        Err(mut e) => {
            e.fatal_framing = true;
            return Framing::Message {
                result: Err(e),
                consumed: buf.len(),
            };
        }
    };
    let n = match content_length(&headers) {
        Ok(n) => n.unwrap_or(0),
        Err(why) => {
            let mut e = refuse(start, headers, 400, why);
            e.fatal_framing = true;
            return Framing::Message {
                result: Err(e),
                consumed: buf.len(),
            };
        }
    };
    let total = head_end + 4 + n;
    if total > MAX_MESSAGE_BYTES {
        let mut e = refuse(
            start,
            headers,
            513,
            "message larger than the limit".to_string(),
        );
        e.fatal_framing = true;
        return Framing::Message {
            result: Err(e),
            consumed: buf.len(),
        };
    }
    if buf.len() < total {
        return Framing::Incomplete;
    }
    let body = Bytes::copy_from_slice(&buf[head_end + 4..total]);
    Framing::Message {
        result: build(start, headers, body),
        consumed: total,
    }
}

fn fatal(consumed: usize, why: &str) -> Framing {
    let mut e = ParseError::drop(why);
    e.fatal_framing = true;
    Framing::Message {
        result: Err(e),
        consumed,
    }
}

fn skip_leading_crlf(mut d: &[u8]) -> &[u8] {
    while let Some(rest) = d.strip_prefix(b"\r\n") {
        d = rest;
    }
    d
}

/// The first position of `needle` in `hay`: a scan for its first byte,
/// then a comparison only there (comparing at every offset was a visible
/// share of a REGISTER's cost).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(p) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + p;
        if hay.get(at + 1..at + needle.len()) == Some(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The first line, classified.
#[derive(Debug)]
enum StartLine {
    Request {
        method: Method,
        uri: String,
        version_ok: bool,
    },
    /// Looks like a request (`method` is what the line starts with) but the
    /// line is malformed.
    BadRequestLine {
        method: Method,
        why: String,
    },
    Response {
        status: u16,
        reason: String,
    },
}

fn parse_head(head: &[u8]) -> Result<(StartLine, Headers), ParseError> {
    let (text, not_utf8) = decode_head(head)?;
    let (start, headers) = parse_lines(&text)?;
    match not_utf8 {
        Some(why) => Err(head_error(start, headers, why)),
        None => Ok((start, headers)),
    }
}

/// Headers whose value may start with a display name (`"Name" <uri>`).
const NAME_ADDR_HEADERS: &[&str] = &[
    "from",
    "f",
    "to",
    "t",
    "contact",
    "m",
    "reply-to",
    "referred-by",
    "b",
    "p-asserted-identity",
    "p-preferred-identity",
    "remote-party-id",
];

/// The header section as text.
///
/// RFC 3261 headers are UTF-8, but older phones send display names in
/// Latin-1 (`"M\xfcller" <sip:…>`). Refusing those would leave such a
/// phone unable to register or call, so a display name — the part of a
/// From/To/Contact-like header before its `<` — is decoded leniently:
/// bytes that are not UTF-8 are read as Latin-1 (`\xfc` becomes `ü`). A
/// display name is only shown, never compared (dialogs match on tags), so
/// re-encoding it costs nothing. Anywhere else (a URI, a tag, a Call-ID,
/// another header) invalid UTF-8 could not be echoed back faithfully, so
/// the request is refused with 400 once it is framed (the second value
/// says why; the text is still decoded leniently to build that answer). A
/// start line that is not UTF-8 is not SIP: dropped.
fn decode_head(head: &[u8]) -> Result<(std::borrow::Cow<'_, str>, Option<String>), ParseError> {
    if let Ok(text) = std::str::from_utf8(head) {
        return Ok((std::borrow::Cow::Borrowed(text), None));
    }
    let mut out = String::with_capacity(head.len() + 16);
    let mut why = None;
    let mut name: &[u8] = b"";
    for (i, line) in split_crlf(head).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let folded = line.starts_with(b" ") || line.starts_with(b"\t");
        if !folded {
            name = line
                .iter()
                .position(|&b| b == b':')
                .map(|at| line[..at].trim_ascii())
                .unwrap_or(b"");
        }
        if let Ok(t) = std::str::from_utf8(line) {
            out.push_str(t);
            continue;
        }
        if i == 0 {
            return Err(ParseError::drop("start line is not UTF-8"));
        }
        let display_name_only = NAME_ADDR_HEADERS
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
            && match line.iter().position(|&b| b == b'<') {
                Some(lt) => std::str::from_utf8(&line[lt..]).is_ok(),
                None => false,
            };
        if !display_name_only && why.is_none() {
            let shown = String::from_utf8_lossy(name);
            why = Some(format!("header {shown:.40} is not UTF-8"));
        }
        push_latin1_lenient(&mut out, line);
    }
    Ok((std::borrow::Cow::Owned(out), why))
}

/// `bytes` as text: valid UTF-8 as it is, every other byte as Latin-1.
fn push_latin1_lenient(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| char::from(b)));
    }
}

fn split_crlf(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r, b"\r\n") {
            Some(at) => {
                rest = Some(&r[at + 2..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// [`split_crlf`] for text: the same lines as `text.split("\r\n")`, found
/// with the byte search of [`find`] (the two-way string search behind
/// `split` was ~2 % of a REGISTER's instructions).
fn split_crlf_str(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r.as_bytes(), b"\r\n") {
            // `at` is the index of an ASCII '\r': a char boundary.
            Some(at) => {
                rest = Some(&r[at + 2..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn parse_lines(text: &str) -> Result<(StartLine, Headers), ParseError> {
    let mut lines = split_crlf_str(text);
    let first = lines.next().unwrap_or("");
    let start = parse_start_line(first)?;
    let mut headers = Headers::with_capacity(16);
    // The header being read: its name (borrowed) and value (one allocation,
    // grown only by continuation lines, trimmed in place).
    let mut current: Option<(&str, String)> = None;
    let push = |headers: &mut Headers, (n, mut v): (&str, String)| {
        let end = v.trim_end().len();
        v.truncate(end);
        // Only an empty first line continued leaves leading space here.
        let lead = v.len() - v.trim_start().len();
        if lead > 0 {
            v.drain(..lead);
        }
        headers.push(HeaderName::parse(n), v);
    };
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            match current.as_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => return Err(ParseError::drop("continuation line before any header")),
            }
            continue;
        }
        if let Some(h) = current.take() {
            push(&mut headers, h);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(head_error(
                start,
                headers,
                format!("header line without a colon: {:.40}", line),
            ));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(super::is_token_char) {
            return Err(head_error(
                start,
                headers,
                format!("bad header name {name:.40}"),
            ));
        }
        current = Some((name, value.trim_start().to_string()));
        if headers.len() >= MAX_HEADERS {
            return Err(head_error(
                start,
                headers,
                "too many header lines".to_string(),
            ));
        }
    }
    if let Some(h) = current.take() {
        push(&mut headers, h);
    }
    Ok((start, headers))
}

fn head_error(start: StartLine, headers: Headers, why: String) -> ParseError {
    refuse(start, headers, 400, why)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest
            .split_once(' ')
            .ok_or_else(|| ParseError::drop("bad status line"))?;
        if version != "2.0" {
            return Err(ParseError::drop("response with an unknown SIP version"));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::drop("status code is not three digits"));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| ParseError::drop("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::drop("status code out of range"));
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_string(),
        });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        // Still worth a 400 if it looks like a request at all.
        return match parts.first().and_then(|m| Method::parse(m)) {
            Some(method) if parts.len() > 1 => Ok(StartLine::BadRequestLine {
                method,
                why: format!("malformed Request-Line {line:.60}"),
            }),
            _ => Err(ParseError::drop("not a SIP message")),
        };
    };
    let Some(method) = Method::parse(method) else {
        return Err(ParseError::drop("method is not a token"));
    };
    let version_ok = version.eq_ignore_ascii_case("SIP/2.0");
    if !version_ok && !version.to_ascii_uppercase().starts_with("SIP/") {
        return Ok(StartLine::BadRequestLine {
            method,
            why: format!("bad SIP-Version {version:.20}"),
        });
    }
    Ok(StartLine::Request {
        method,
        uri: uri.to_string(),
        version_ok,
    })
}

fn content_length(headers: &Headers) -> Result<Option<usize>, String> {
    let mut values = headers.values_iter(&HeaderName::ContentLength);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let parse = |v: &str| -> Result<usize, String> {
        if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad Content-Length {v:.20}"));
        }
        v.parse().map_err(|_| format!("bad Content-Length {v:.20}"))
    };
    let n = parse(first)?;
    if values.next().is_some() {
        return Err("more than one Content-Length".into());
    }
    Ok(Some(n))
}

/// Builds the error for a message that failed after its start line was read.
fn refuse(start: StartLine, headers: Headers, status: u16, why: String) -> ParseError {
    match start {
        StartLine::Request { method, uri, .. } => ParseError::reply(
            status,
            why,
            Request {
                method,
                uri,
                headers,
                body: Bytes::new(),
            },
        ),
        StartLine::BadRequestLine { method, .. } => ParseError::reply(
            status,
            why,
            Request {
                method,
                uri: String::new(),
                headers,
                body: Bytes::new(),
            },
        ),
        StartLine::Response { .. } => ParseError::drop(why),
    }
}

fn build(start: StartLine, headers: Headers, body: Bytes) -> Result<Message, ParseError> {
    build_with_via(start, headers, body).map(|(message, _)| message)
}

/// The message, with a request's top Via as the validator parsed it.
fn build_with_via(
    start: StartLine,
    headers: Headers,
    body: Bytes,
) -> Result<(Message, Option<Via>), ParseError> {
    match start {
        StartLine::Response { status, reason } => {
            check_response(&headers).map_err(ParseError::drop)?;
            Ok((
                Message::Response(Response {
                    status,
                    reason,
                    headers,
                    body,
                }),
                None,
            ))
        }
        StartLine::BadRequestLine { method, why } => Err(refuse(
            StartLine::BadRequestLine {
                method,
                why: why.clone(),
            },
            headers,
            400,
            why,
        )),
        StartLine::Request {
            method,
            uri,
            version_ok,
        } => {
            let req = Request {
                method,
                uri,
                headers,
                body,
            };
            if !version_ok {
                return Err(ParseError::reply(505, "SIP version not supported", req));
            }
            match check_request(&req) {
                Ok(top_via) => Ok((Message::Request(req), Some(top_via))),
                Err((status, why)) => Err(ParseError::reply(status, why, req)),
            }
        }
    }
}

fn single<'a>(h: &'a Headers, name: &'a HeaderName) -> Result<&'a str, String> {
    let mut v = h.values_iter(name);
    match (v.next(), v.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(format!("missing {name}")),
        (Some(_), Some(_)) => Err(format!("more than one {name}")),
    }
}

/// The checks requests and responses share; returns the CSeq and the top
/// Via, parsed.
fn check_common(h: &Headers) -> Result<(CSeq, Via), String> {
    single(h, &HeaderName::CallId)?;
    for name in [HeaderName::From, HeaderName::To] {
        if !NameAddr::is_valid(single(h, &name)?) {
            return Err(format!("malformed {name}"));
        }
    }
    let cseq = CSeq::parse(single(h, &HeaderName::CSeq)?).ok_or("malformed CSeq")?;
    let top = h.values_iter(&HeaderName::Via).next();
    let (Some(top), false) = (
        top,
        h.lines(&HeaderName::Via)
            .any(|l| super::headers::list_values(l).next().is_none()),
    ) else {
        return Err("missing or empty Via".into());
    };
    let top = Via::parse(top).ok_or("malformed Via")?;
    if top.branch() == Some("z9hG4bK") {
        return Err("Via branch is only the magic cookie".into());
    }
    Ok((cseq, top))
}

fn check_response(h: &Headers) -> Result<(), String> {
    check_common(h).map(|_| ())
}

fn check_request(req: &Request) -> Result<Via, (u16, String)> {
    let bad = |why: String| (400, why);
    let h = &req.headers;
    let (cseq, top_via) = check_common(h).map_err(bad)?;
    if cseq.method != req.method {
        return Err(bad(format!(
            "CSeq method {} does not match {}",
            cseq.method, req.method
        )));
    }
    let mut max_forwards = h.values_iter(&HeaderName::MaxForwards);
    if let Some(mf) = max_forwards.next() {
        // Leading zeros are legal (wsinv.dat has 0068).
        let ok = !mf.is_empty()
            && mf.len() <= 10
            && mf.bytes().all(|b| b.is_ascii_digit())
            && mf.parse::<u64>().is_ok_and(|n| n <= 255);
        if !ok || max_forwards.next().is_some() {
            return Err(bad("bad Max-Forwards".into()));
        }
    }
    for c in h.values_iter(&HeaderName::Contact) {
        if c != "*" && !NameAddr::is_valid(c) {
            return Err(bad("malformed Contact".into()));
        }
    }
    let uri = Uri::parse(&req.uri).ok_or_else(|| bad("malformed Request-URI".into()))?;
    if uri.headers.is_some() {
        return Err(bad("headers in the Request-URI".into()));
    }
    if !matches!(uri.scheme.as_str(), "sip" | "sips" | "tel") {
        return Err((416, format!("unsupported URI scheme {}", uri.scheme)));
    }
    Ok(top_via)
}

#[cfg(test)]
mod tests {
    use super::split_crlf_str;

    #[test]
    fn lines_split_exactly_where_str_split_splits() {
        for text in [
            "",
            "a",
            "a\r\nb",
            "a\r\n",
            "\r\n\r\n",
            "a\nb\r\rc\r\n\r\nd",
            "ü\r\nß\r\n\r",
        ] {
            assert_eq!(
                split_crlf_str(text).collect::<Vec<_>>(),
                text.split("\r\n").collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }
}
