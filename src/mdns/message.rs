//! Multicast DNS messages (RFC 6762 §18) as the responder reads and writes
//! them: questions with the unicast-response bit, records with the
//! cache-flush bit. Reading goes through the stub resolver's bounds-checked
//! [`Reader`]; a damaged datagram is an error, never a panic, and every
//! count in the header is bounded by what the datagram can hold.
//!
//! Written messages are not compressed: the responder's answers are a few
//! hundred bytes, far below the 9000 an mDNS datagram may carry.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dns::wire::{Reader, WireError};

/// Record and question types the responder knows.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Pointer (DNS-SD browsing).
    pub const PTR: u16 = 12;
    /// Text (DNS-SD service attributes).
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service location.
    pub const SRV: u16 = 33;
    /// Which types a name has (negative answers, RFC 6762 §6.1).
    pub const NSEC: u16 = 47;
    /// Every type (questions only).
    pub const ANY: u16 = 255;
}

const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;
/// The top bit of a question's class: answer me by unicast (QU).
const UNICAST_RESPONSE: u16 = 0x8000;
/// The top bit of a record's class: this is the whole set, flush the rest.
const CACHE_FLUSH: u16 = 0x8000;
/// Most entries read from one section; more is not a real query.
const MAX_ENTRIES: usize = 64;

/// A domain name as labels; compared without regard to ASCII case.
#[derive(Clone, Eq)]
pub struct Name(Vec<Vec<u8>>);

impl Name {
    /// `labels` joined, e.g. `Name::new(["homeline", "local"])`.
    pub fn new<I, L>(labels: I) -> Name
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        Name(labels.into_iter().map(|l| l.as_ref().to_vec()).collect())
    }

    /// A dotted name of plain labels (`_http._tcp.local`).
    pub fn dotted(s: &str) -> Name {
        Name::new(s.split('.').filter(|l| !l.is_empty()))
    }

    /// `label` prepended to `self`.
    pub fn child(&self, label: &[u8]) -> Name {
        let mut v = vec![label.to_vec()];
        v.extend(self.0.iter().cloned());
        Name(v)
    }

    fn write(&self, out: &mut Vec<u8>) {
        for label in &self.0 {
            // Labels are built by the responder and capped at 63 bytes.
            let len = label.len().min(63);
            out.push(len as u8);
            out.extend_from_slice(&label[..len]);
        }
        out.push(0);
    }

    /// The name in canonical (lower-case, uncompressed) wire form, for
    /// comparisons (RFC 6762 §8.2).
    fn canonical(&self, out: &mut Vec<u8>) {
        for label in &self.0 {
            out.push(label.len() as u8);
            out.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        out.push(0);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&String::from_utf8_lossy(label))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// What is asked about.
    pub name: Name,
    /// The type asked for ([`rtype`]).
    pub qtype: u16,
    /// The QU bit: the asker wants a unicast answer.
    pub unicast_response: bool,
}

/// A record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A pointer.
    Ptr(Name),
    /// A service's host and port.
    Srv {
        /// Priority (lower first).
        priority: u16,
        /// Weight among equal priorities.
        weight: u16,
        /// TCP/UDP port.
        port: u16,
        /// The host.
        target: Name,
    },
    /// Character strings.
    Txt(Vec<Vec<u8>>),
    /// The types `name` has (our negative answers; the next name is the owner).
    Nsec(Vec<u16>),
    /// A type the responder only passes over, as sent.
    Other(Vec<u8>),
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner.
    pub name: Name,
    /// Type ([`rtype`]).
    pub rtype: u16,
    /// The cache-flush bit (unique records).
    pub cache_flush: bool,
    /// Seconds; 0 says goodbye.
    pub ttl: u32,
    /// The data.
    pub data: Data,
}

impl Record {
    /// The record data in canonical wire form (names lower-cased,
    /// uncompressed): what "identical" means when records are compared.
    pub fn rdata(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.data {
            Data::A(a) => out.extend_from_slice(&a.octets()),
            Data::Aaaa(a) => out.extend_from_slice(&a.octets()),
            Data::Ptr(n) => n.canonical(&mut out),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                target.canonical(&mut out);
            }
            Data::Txt(strings) => write_txt(strings, &mut out),
            Data::Nsec(types) => {
                self.name.canonical(&mut out);
                write_type_bitmap(types, &mut out);
            }
            Data::Other(raw) => out.extend_from_slice(raw),
        }
        out
    }

    /// Same name, type and data (TTL and flags aside).
    pub fn same_as(&self, other: &Record) -> bool {
        self.rtype == other.rtype && self.name == other.name && self.rdata() == other.rdata()
    }

    fn write(&self, out: &mut Vec<u8>) {
        self.name.write(out);
        out.extend_from_slice(&self.rtype.to_be_bytes());
        let class = CLASS_IN | if self.cache_flush { CACHE_FLUSH } else { 0 };
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        match &self.data {
            Data::Ptr(n) => n.write(out),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                target.write(out);
            }
            Data::Nsec(types) => {
                self.name.write(out);
                write_type_bitmap(types, out);
            }
            _ => out.extend_from_slice(&self.rdata()),
        }
        let len = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

fn write_txt(strings: &[Vec<u8>], out: &mut Vec<u8>) {
    if strings.is_empty() {
        // An empty TXT record is one empty string (RFC 6763 §6.1).
        out.push(0);
    }
    for s in strings {
        let len = s.len().min(255);
        out.push(len as u8);
        out.extend_from_slice(&s[..len]);
    }
}

/// The NSEC type bitmap of window 0 (types below 256), RFC 4034 §4.1.2.
fn write_type_bitmap(types: &[u16], out: &mut Vec<u8>) {
    let mut bits = [0u8; 32];
    for t in types.iter().filter(|t| **t < 256) {
        bits[(*t / 8) as usize] |= 0x80 >> (t % 8);
    }
    let len = bits.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if len > 0 {
        out.push(0);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
}

/// A message read from the wire; the additional section is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The ID (echoed in legacy unicast answers).
    pub id: u16,
    /// QR: a response rather than a query.
    pub is_response: bool,
    /// The questions.
    pub questions: Vec<Question>,
    /// Answers (in a query: the answers the asker already knows).
    pub answers: Vec<Record>,
    /// Authority records (in a probe: the records the prober wants).
    pub authority: Vec<Record>,
}

impl Message {
    /// Reads `msg`; anything but a standard query or response with
    /// RCODE 0 is refused, as RFC 6762 §18.3 and §18.11 ask.
    pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader::at(msg, 0);
        let id = r.u16()?;
        let flags = r.u16()?;
        let (qd, an, ns, _ar) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
        let opcode = (flags >> 11) & 0x0f;
        if opcode != 0 || flags & 0x000f != 0 {
            return Err(WireError::NotOurs);
        }
        // A question takes at least 5 bytes and a record 11: more than the
        // datagram can hold is a lie, refused before any allocation.
        let room = msg.len().saturating_sub(12);
        let claimed = 5 * qd as usize + 11 * (an as usize + ns as usize);
        if claimed > room || qd as usize + an as usize + ns as usize > 3 * MAX_ENTRIES {
            return Err(WireError::Malformed);
        }
        let mut questions = Vec::with_capacity(qd as usize);
        for _ in 0..qd {
            let name = read_name(&mut r)?;
            let (qtype, class) = (r.u16()?, r.u16()?);
            let plain = class & !UNICAST_RESPONSE;
            if plain == CLASS_IN || plain == CLASS_ANY {
                questions.push(Question {
                    name,
                    qtype,
                    unicast_response: class & UNICAST_RESPONSE != 0,
                });
            }
        }
        let answers = read_records(&mut r, msg, an)?;
        let authority = read_records(&mut r, msg, ns)?;
        Ok(Message {
            id,
            is_response: flags & 0x8000 != 0,
            questions,
            answers,
            authority,
        })
    }
}

fn read_name(r: &mut Reader<'_>) -> Result<Name, WireError> {
    Ok(Name::new(r.labels()?))
}

fn read_records(r: &mut Reader<'_>, msg: &[u8], count: u16) -> Result<Vec<Record>, WireError> {
    let mut out = Vec::new();
    for _ in 0..count {
        let name = read_name(r)?;
        let (rt, class) = (r.u16()?, r.u16()?);
        let ttl = r.u32()?;
        let len = r.u16()? as usize;
        let start = r.pos();
        let raw = r.take(len)?;
        if class & !CACHE_FLUSH != CLASS_IN {
            continue;
        }
        // Names inside the data may be compressed against the whole message.
        let mut inner = Reader::at(msg, start);
        let data = match rt {
            rtype::A if raw.len() == 4 => Data::A(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            rtype::AAAA if raw.len() == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(raw);
                Data::Aaaa(Ipv6Addr::from(b))
            }
            rtype::PTR => Data::Ptr(read_name(&mut inner)?),
            rtype::SRV if raw.len() >= 7 => Data::Srv {
                priority: inner.u16()?,
                weight: inner.u16()?,
                port: inner.u16()?,
                target: read_name(&mut inner)?,
            },
            rtype::TXT => Data::Txt(read_txt(raw)?),
            _ => Data::Other(raw.to_vec()),
        };
        if inner.pos() > start + len {
            return Err(WireError::Malformed);
        }
        out.push(Record {
            name,
            rtype: rt,
            cache_flush: class & CACHE_FLUSH != 0,
            ttl,
            data,
        });
    }
    Ok(out)
}

fn read_txt(mut raw: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = raw.split_first() {
        let s = rest.get(..len as usize).ok_or(WireError::Malformed)?;
        if !s.is_empty() {
            out.push(s.to_vec());
        }
        raw = &rest[len as usize..];
    }
    Ok(out)
}

/// A message to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// 0 except in legacy unicast answers, which echo the query's.
    pub id: u16,
    /// A response (QR and AA set) rather than a query.
    pub response: bool,
    /// Questions (probes; legacy unicast answers echo them).
    pub questions: Vec<Question>,
    /// Answers.
    pub answers: Vec<Record>,
    /// Authority (the records a probe proposes).
    pub authority: Vec<Record>,
    /// Additional records.
    pub additional: Vec<Record>,
}

impl Outgoing {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&self.id.to_be_bytes());
        let flags: u16 = if self.response { 0x8400 } else { 0 };
        out.extend_from_slice(&flags.to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            out.extend_from_slice(&(n.min(u16::MAX as usize) as u16).to_be_bytes());
        }
        for q in &self.questions {
            q.name.write(&mut out);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            let class = CLASS_IN
                | if q.unicast_response {
                    UNICAST_RESPONSE
                } else {
                    0
                };
            out.extend_from_slice(&class.to_be_bytes());
        }
        for r in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
        {
            r.write(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Outgoing {
        let host = Name::dotted("homeline.local");
        let service = Name::dotted("_http._tcp.local");
        let instance = service.child(b"Smith Family");
        Outgoing {
            id: 0,
            response: true,
            questions: vec![Question {
                name: service.clone(),
                qtype: rtype::PTR,
                unicast_response: true,
            }],
            answers: vec![Record {
                name: service,
                rtype: rtype::PTR,
                cache_flush: false,
                ttl: 4500,
                data: Data::Ptr(instance.clone()),
            }],
            authority: vec![Record {
                name: host.clone(),
                rtype: rtype::A,
                cache_flush: true,
                ttl: 120,
                data: Data::A(Ipv4Addr::new(10, 0, 0, 2)),
            }],
            additional: vec![
                Record {
                    name: instance.clone(),
                    rtype: rtype::SRV,
                    cache_flush: true,
                    ttl: 120,
                    data: Data::Srv {
                        priority: 0,
                        weight: 0,
                        port: 80,
                        target: host.clone(),
                    },
                },
                Record {
                    name: instance,
                    rtype: rtype::TXT,
                    cache_flush: true,
                    ttl: 4500,
                    data: Data::Txt(vec![b"path=/".to_vec()]),
                },
                Record {
                    name: host,
                    rtype: rtype::NSEC,
                    cache_flush: true,
                    ttl: 120,
                    data: Data::Nsec(vec![rtype::A]),
                },
            ],
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let out = sample();
        let bytes = out.encode();
        let m = Message::parse(&bytes).expect("parses");
        assert!(m.is_response);
        assert_eq!(m.questions, out.questions);
        assert_eq!(m.answers, out.answers);
        assert_eq!(m.authority, out.authority);
        assert_eq!(m.answers[0].name, Name::dotted("_HTTP._tcp.LOCAL"));
        assert_eq!(
            m.answers[0].data,
            Data::Ptr(Name::dotted("_http._tcp.local").child(b"smith family"))
        );
    }

    #[test]
    fn compressed_names_are_followed() {
        // A PTR answer whose data points back at the question's name.
        let mut m = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x05_http\x04_tcp\x05local\x00\x00\x0c\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1, 0, 0, 0x11, 0x94, 0, 6]);
        m.extend_from_slice(b"\x03Box\xc0\x0c");
        let msg = Message::parse(&m).expect("parses");
        assert_eq!(
            msg.answers[0].data,
            Data::Ptr(Name::dotted("box._http._tcp.local"))
        );
    }

    #[test]
    fn damaged_datagrams_are_errors_never_panics() {
        // The additional section is not read: cut anywhere before it, a
        // datagram is refused.
        let mut read = sample();
        read.additional.clear();
        let bytes = read.encode();
        for cut in 0..bytes.len() {
            assert!(Message::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            let _ = Message::parse(&bytes[..cut]);
        }
        // Every single-byte corruption, and a pseudo-random garbage stream.
        for i in 0..bytes.len() {
            for v in [0x00, 0x3f, 0x40, 0xc0, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = Message::parse(&b);
            }
        }
        let mut seed: u32 = 0x1234_5678;
        for len in 0..600 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = Message::parse(&junk);
        }
        // A name pointing at itself, and two pointing at each other.
        let mut looped = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(Message::parse(&looped).is_err());
        looped.splice(12..14, [0xc0, 14, 0xc0, 12]);
        assert!(Message::parse(&looped).is_err());
        // Counts that the datagram cannot hold.
        let huge = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0];
        assert!(Message::parse(&huge).is_err());
    }

    #[test]
    fn other_opcodes_and_rcodes_are_refused() {
        let mut bytes = sample().encode();
        bytes[2] |= 0x28; // opcode 5 (UPDATE)
        assert!(Message::parse(&bytes).is_err());
        let mut bytes = sample().encode();
        bytes[3] |= 0x03;
        assert!(Message::parse(&bytes).is_err());
    }

    #[test]
    fn nsec_bitmap_names_the_types() {
        let r = Record {
            name: Name::dotted("h.local"),
            rtype: rtype::NSEC,
            cache_flush: true,
            ttl: 120,
            data: Data::Nsec(vec![rtype::A, rtype::AAAA]),
        };
        let rd = r.rdata();
        // next name h.local, window 0, 4 bytes: A (bit 1) and AAAA (bit 28).
        assert_eq!(&rd[rd.len() - 6..], &[0, 4, 0x40, 0, 0, 0x08]);
    }
}
