//! The DNS wire format (RFC 1035 §4), reduced to what a stub resolver
//! asking for A and AAAA records needs: one question out, the answer
//! section's addresses and their TTLs back.
//!
//! Answers are checked against the question (ID, QR bit, the question
//! echoed back) and only addresses owned by the asked name, or by a name it
//! is a CNAME of, are taken: a stray or spoofed datagram yields nothing.
//!
//! [`Reader`], the bounds-checked reader with name decompression, is shared
//! with the multicast DNS responder ([`crate::mdns`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The record types we ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4 address (RFC 1035).
    A,
    /// IPv6 address (RFC 3596).
    Aaaa,
}

impl RecordType {
    fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Aaaa => 28,
        }
    }
}

const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;
/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// Why an answer carried no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The name cannot be asked for (empty label, label over 63 bytes…).
    #[error("not a valid domain name")]
    BadName,
    /// Not an answer to our question (wrong ID, no QR bit, other question).
    #[error("not an answer to our question")]
    NotOurs,
    /// The datagram is cut short or its names loop.
    #[error("malformed DNS answer")]
    Malformed,
    /// The server said the name does not exist (NXDOMAIN).
    #[error("no such domain")]
    NoSuchName,
    /// Another RCODE (SERVFAIL, REFUSED…).
    #[error("DNS server answered rcode {0}")]
    Rcode(u8),
    /// The answer was truncated (TC) and carried no address.
    #[error("truncated DNS answer")]
    Truncated,
}

/// Addresses found in an answer, with the smallest TTL among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The addresses, in the order the server gave them.
    pub addrs: Vec<IpAddr>,
    /// How long they may be cached.
    pub ttl: Duration,
}

/// A recursive query for `name`'s records of type `rtype`, with `id`.
pub fn query(id: u16, name: &str, rtype: RecordType) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    encode_name(name, &mut out)?;
    out.extend_from_slice(&rtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), WireError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME - 2 {
        return Err(WireError::BadName);
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 || !label.is_ascii() {
            return Err(WireError::BadName);
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// The addresses of type `rtype` that `msg` gives for `name`, if `msg` is
/// the answer to our query `id`. An empty answer (NODATA) is `Ok` with no
/// addresses; its TTL is then zero.
pub fn parse_answer(
    msg: &[u8],
    id: u16,
    name: &str,
    rtype: RecordType,
) -> Result<Answer, WireError> {
    let mut r = Reader { msg, pos: 0 };
    let got_id = r.u16()?;
    let flags = r.u16()?;
    if got_id != id || flags & 0x8000 == 0 {
        return Err(WireError::NotOurs);
    }
    let (qd, an) = (r.u16()?, r.u16()?);
    let _ns = r.u16()?;
    let _ar = r.u16()?;
    let wanted = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if qd != 1 {
        return Err(WireError::NotOurs);
    }
    let qname = r.name()?;
    let (qtype, qclass) = (r.u16()?, r.u16()?);
    if qname != wanted || qtype != rtype.code() || qclass != CLASS_IN {
        return Err(WireError::NotOurs);
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        3 => return Err(WireError::NoSuchName),
        other => return Err(WireError::Rcode(other)),
    }
    let mut records = Vec::new();
    for _ in 0..an {
        let owner = r.name()?;
        let (rt, class) = (r.u16()?, r.u16()?);
        let ttl = r.u32()?;
        let len = r.u16()? as usize;
        let start = r.pos;
        let data = r.take(len)?;
        let value = if rt == TYPE_CNAME {
            // The target may be compressed against the whole message.
            let mut inner = Reader { msg, pos: start };
            Record::Alias(inner.name()?)
        } else if rt == rtype.code() && class == CLASS_IN {
            match data.len() {
                4 => Record::Addr(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                ))),
                16 => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(data);
                    Record::Addr(IpAddr::V6(Ipv6Addr::from(b)))
                }
                _ => return Err(WireError::Malformed),
            }
        } else {
            continue;
        };
        records.push((owner, ttl, value));
    }
    // Follow the CNAME chain from the asked name (bounded: each pass adds a name).
    let mut names = vec![wanted];
    for _ in 0..8 {
        let before = names.len();
        for (owner, _, v) in &records {
            if let Record::Alias(target) = v {
                if names.contains(owner) && !names.contains(target) {
                    names.push(target.clone());
                }
            }
        }
        if names.len() == before {
            break;
        }
    }
    let mut addrs = Vec::new();
    let mut ttl = u32::MAX;
    for (owner, t, v) in &records {
        if names.contains(owner) {
            ttl = ttl.min(*t);
            if let Record::Addr(a) = v {
                addrs.push(*a);
            }
        }
    }
    if addrs.is_empty() && flags & 0x0200 != 0 {
        return Err(WireError::Truncated);
    }
    if addrs.is_empty() {
        ttl = 0;
    }
    Ok(Answer {
        addrs,
        ttl: Duration::from_secs(u64::from(ttl)),
    })
}

enum Record {
    Addr(IpAddr),
    Alias(String),
}

/// Reads a DNS message field by field; every read is bounds-checked and
/// fails with [`WireError::Malformed`] past the end.
pub(crate) struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at `pos` of `msg` (names may point anywhere in `msg`).
    pub(crate) fn at(msg: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { msg, pos }
    }

    /// Where the next read starts.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Malformed)?;
        let s = self.msg.get(self.pos..end).ok_or(WireError::Malformed)?;
        self.pos = end;
        Ok(s)
    }

    /// A big-endian 16-bit field.
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian 32-bit field.
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name, lower-cased, following compression pointers (RFC 1035
    /// §4.1.4); a pointer loop or an over-long name is malformed.
    fn name(&mut self) -> Result<String, WireError> {
        let labels = self.labels()?;
        let mut out = String::new();
        for label in labels {
            if !out.is_empty() {
                out.push('.');
            }
            out.extend(label.iter().map(|b| b.to_ascii_lowercase() as char));
        }
        Ok(out)
    }

    /// A name as its labels, bytes as sent (case kept), following
    /// compression pointers; at most 32 pointers and [`MAX_NAME`] bytes,
    /// so a loop or an over-long name is malformed, never endless.
    pub(crate) fn labels(&mut self) -> Result<Vec<&'a [u8]>, WireError> {
        let mut out = Vec::new();
        let mut total = 1;
        let mut pos = self.pos;
        let mut jumped = false;
        let mut hops = 0;
        loop {
            let len = *self.msg.get(pos).ok_or(WireError::Malformed)? as usize;
            match len {
                0 => {
                    if !jumped {
                        self.pos = pos + 1;
                    }
                    return Ok(out);
                }
                l if l & 0xc0 == 0xc0 => {
                    let lo = *self.msg.get(pos + 1).ok_or(WireError::Malformed)? as usize;
                    if !jumped {
                        self.pos = pos + 2;
                    }
                    jumped = true;
                    hops += 1;
                    if hops > 32 {
                        return Err(WireError::Malformed);
                    }
                    pos = ((l & 0x3f) << 8) | lo;
                }
                l if l <= 63 => {
                    let label = self
                        .msg
                        .get(pos + 1..pos + 1 + l)
                        .ok_or(WireError::Malformed)?;
                    total += 1 + l;
                    if total > MAX_NAME {
                        return Err(WireError::Malformed);
                    }
                    out.push(label);
                    pos += 1 + l;
                }
                _ => return Err(WireError::Malformed),
            }
        }
    }
}

/// Builds answers for tests (here and in the resolver's).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// An answer to `query` with `records` (owner, TTL, address or alias).
    pub fn answer(query: &[u8], rcode: u8, records: &[(&str, u32, Data)]) -> Vec<u8> {
        let mut out = query.to_vec();
        out[2] = 0x81; // QR, RD
        out[3] = 0x80 | rcode; // RA
        out[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        let qtype = u16::from_be_bytes([query[query.len() - 4], query[query.len() - 3]]);
        for (owner, ttl, data) in records {
            encode_name(owner, &mut out).unwrap();
            let (rt, rdata) = match data {
                Data::Addr(IpAddr::V4(a)) => (1u16, a.octets().to_vec()),
                Data::Addr(IpAddr::V6(a)) => (28, a.octets().to_vec()),
                Data::Alias(t) => {
                    let mut v = Vec::new();
                    encode_name(t, &mut v).unwrap();
                    (TYPE_CNAME, v)
                }
            };
            let rt = if matches!(data, Data::Alias(_)) {
                rt
            } else {
                qtype
            };
            out.extend_from_slice(&rt.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }

    /// Record data.
    pub enum Data {
        Addr(IpAddr),
        Alias(&'static str),
    }
}

#[cfg(test)]
mod tests {
    use super::build::{answer, Data};
    use super::*;

    const NAME: &str = "home.sip.twilio.com";

    #[test]
    fn a_query_is_one_recursive_question() {
        let q = query(0x1234, NAME, RecordType::A).unwrap();
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[4..6], &[0, 1]);
        assert_eq!(&q[12..17], b"\x04home");
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        assert_eq!(query(1, "a..b", RecordType::A), Err(WireError::BadName));
        assert_eq!(query(1, "", RecordType::A), Err(WireError::BadName));
        assert!(query(1, &format!("{}.com", "x".repeat(64)), RecordType::A).is_err());
    }

    #[test]
    fn addresses_and_the_smallest_ttl_are_read() {
        let q = query(7, NAME, RecordType::A).unwrap();
        let a = answer(
            &q,
            0,
            &[
                (NAME, 300, Data::Addr("54.172.60.1".parse().unwrap())),
                (NAME, 60, Data::Addr("54.172.60.2".parse().unwrap())),
            ],
        );
        let got = parse_answer(&a, 7, NAME, RecordType::A).unwrap();
        assert_eq!(got.addrs.len(), 2);
        assert_eq!(got.ttl, Duration::from_secs(60));
    }

    #[test]
    fn a_cname_chain_is_followed_and_strangers_ignored() {
        let q = query(7, NAME, RecordType::Aaaa).unwrap();
        let a = answer(
            &q,
            0,
            &[
                (NAME, 100, Data::Alias("edge.twilio.com")),
                (
                    "edge.twilio.com",
                    50,
                    Data::Addr("2600::1".parse().unwrap()),
                ),
                (
                    "evil.example",
                    9999,
                    Data::Addr("2600::666".parse().unwrap()),
                ),
            ],
        );
        let got = parse_answer(&a, 7, NAME, RecordType::Aaaa).unwrap();
        assert_eq!(got.addrs, vec!["2600::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(got.ttl, Duration::from_secs(50));
    }

    #[test]
    fn answers_to_other_questions_are_not_ours() {
        let q = query(7, NAME, RecordType::A).unwrap();
        let a = answer(&q, 0, &[(NAME, 1, Data::Addr("1.2.3.4".parse().unwrap()))]);
        assert_eq!(
            parse_answer(&a, 8, NAME, RecordType::A),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_answer(&a, 7, "other.example", RecordType::A),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_answer(&q, 7, NAME, RecordType::A),
            Err(WireError::NotOurs),
            "a query is not an answer"
        );
    }

    #[test]
    fn rcodes_and_damage_are_errors_never_panics() {
        let q = query(7, NAME, RecordType::A).unwrap();
        assert_eq!(
            parse_answer(&answer(&q, 3, &[]), 7, NAME, RecordType::A),
            Err(WireError::NoSuchName)
        );
        assert_eq!(
            parse_answer(&answer(&q, 2, &[]), 7, NAME, RecordType::A),
            Err(WireError::Rcode(2))
        );
        let empty = parse_answer(&answer(&q, 0, &[]), 7, NAME, RecordType::A).unwrap();
        assert!(empty.addrs.is_empty());
        let full = answer(&q, 0, &[(NAME, 1, Data::Addr("1.2.3.4".parse().unwrap()))]);
        for cut in 0..full.len() {
            let _ = parse_answer(&full[..cut], 7, NAME, RecordType::A);
        }
        // A compression pointer pointing at itself.
        let mut looped = full.clone();
        let at = q.len();
        looped[at] = 0xc0;
        looped[at + 1] = at as u8;
        assert!(parse_answer(&looped, 7, NAME, RecordType::A).is_err());
    }
}
