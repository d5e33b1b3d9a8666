//! A STUN client (RFC 8489, compatible with RFC 5389 servers): one Binding
//! request over UDP, resent on the RFC's schedule until an answer with our
//! transaction ID comes back; the XOR-MAPPED-ADDRESS (or, from an old
//! server, MAPPED-ADDRESS) is the address the internet sees us at.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::NetError;

/// The magic cookie of every RFC 5389/8489 message.
const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ATTR_ERROR_CODE: u16 = 0x0009;
const HEADER_LEN: usize = 20;

/// A transaction ID (96 random bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh random ID.
    pub fn random() -> TransactionId {
        let mut id = [0u8; 12];
        // The system RNG cannot fail on Linux; a zero ID would still work.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
        TransactionId(id)
    }
}

/// The Binding request for `id` (no attributes).
pub fn binding_request(id: TransactionId) -> [u8; HEADER_LEN] {
    let mut m = [0u8; HEADER_LEN];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&id.0);
    m
}

/// What a datagram said about our request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Not an answer to our transaction (another ID, not STUN): ignore.
    Unrelated,
    /// Our mapped address.
    Mapped(SocketAddr),
    /// An error response, or a success without an address.
    Failed(String),
}

/// Reads a datagram as the answer to transaction `id`.
pub fn parse_reply(datagram: &[u8], id: TransactionId) -> Reply {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 {
        return Reply::Unrelated;
    }
    let kind = u16::from_be_bytes([datagram[0], datagram[1]]);
    let len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let cookie = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
    if cookie != MAGIC_COOKIE || datagram[8..20] != id.0 {
        return Reply::Unrelated;
    }
    if !len.is_multiple_of(4) || HEADER_LEN + len > datagram.len() {
        return Reply::Failed("malformed STUN answer (bad length)".into());
    }
    let attrs = &datagram[HEADER_LEN..HEADER_LEN + len];
    match kind {
        BINDING_SUCCESS => {
            let mut plain = None;
            for (t, value) in attributes(attrs) {
                match t {
                    ATTR_XOR_MAPPED_ADDRESS => {
                        if let Some(a) = address(value, Some(&id)) {
                            return Reply::Mapped(a);
                        }
                    }
                    ATTR_MAPPED_ADDRESS => plain = plain.or_else(|| address(value, None)),
                    _ => {}
                }
            }
            match plain {
                Some(a) => Reply::Mapped(a),
                None => Reply::Failed("the STUN answer names no address".into()),
            }
        }
        BINDING_ERROR => {
            let reason = attributes(attrs)
                .find(|(t, _)| *t == ATTR_ERROR_CODE)
                .filter(|(_, v)| v.len() >= 4)
                .map(|(_, v)| {
                    let code = u16::from(v[2] & 0x7) * 100 + u16::from(v[3]);
                    format!("{code} {}", String::from_utf8_lossy(&v[4..]))
                })
                .unwrap_or_else(|| "no error code".into());
            Reply::Failed(format!("the STUN server refused: {reason}"))
        }
        _ => Reply::Unrelated,
    }
}

/// The (type, value) pairs of an attribute block (values padded to 4).
fn attributes(mut block: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if block.len() < 4 {
            return None;
        }
        let t = u16::from_be_bytes([block[0], block[1]]);
        let len = u16::from_be_bytes([block[2], block[3]]) as usize;
        let padded = len.div_ceil(4) * 4;
        if block.len() < 4 + len {
            return None;
        }
        let value = &block[4..4 + len];
        block = &block[(4 + padded).min(block.len())..];
        Some((t, value))
    })
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` carries the ID for IPv6's mask.
fn address(v: &[u8], xor: Option<&TransactionId>) -> Option<SocketAddr> {
    if v.len() < 8 {
        return None;
    }
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match v[1] {
        0x01 => {
            let mut b = [v[4], v[5], v[6], v[7]];
            if xor.is_some() {
                for (x, c) in b.iter_mut().zip(cookie) {
                    *x ^= c;
                }
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        0x02 if v.len() >= 20 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&v[4..20]);
            if let Some(id) = xor {
                let mask: Vec<u8> = cookie.iter().chain(id.0.iter()).copied().collect();
                for (x, m) in b.iter_mut().zip(mask) {
                    *x ^= m;
                }
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// When each transmission goes out, from the first: RFC 8489 §6.2.1 with
/// RTO 500 ms, doubling, and a last wait of `Rm`·RTO. `tries` is `Rc`.
pub fn schedule(rto: Duration, tries: u32) -> (Vec<Duration>, Duration) {
    let mut at = Vec::new();
    let mut t = Duration::ZERO;
    let mut gap = rto;
    for _ in 0..tries {
        at.push(t);
        t += gap;
        gap *= 2;
    }
    (at, rto * 16)
}

/// Asks `server` (`host:port`) for our public address.
pub async fn public_address(server: &str, rto: Duration, tries: u32) -> Result<IpAddr, NetError> {
    let target = tokio::net::lookup_host(server)
        .await
        .map_err(|e| NetError::Unreachable(format!("cannot resolve {server}: {e}")))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| NetError::Unreachable(format!("{server} has no IPv4 address")))?;
    let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .map_err(|e| NetError::Unreachable(format!("cannot open a UDP socket: {e}")))?;
    let id = TransactionId::random();
    let request = binding_request(id);
    let (sends, last_wait) = schedule(rto, tries);
    let start = tokio::time::Instant::now();
    let deadline = start + sends.last().copied().unwrap_or_default() + last_wait;
    let mut next = 0usize;
    let mut buf = [0u8; 1500];
    loop {
        let wake = sends
            .get(next)
            .map(|d| start + *d)
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {
                if next < sends.len() {
                    // A send error (no route yet) is retried like a loss.
                    let _ = socket.send_to(&request, target).await;
                    next += 1;
                } else {
                    return Err(NetError::NoAnswer(format!("no STUN answer from {server}")));
                }
            }
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                if from != target {
                    continue;
                }
                match parse_reply(&buf[..n], id) {
                    Reply::Unrelated => {}
                    Reply::Mapped(a) => return Ok(a.ip()),
                    Reply::Failed(why) => return Err(NetError::Refused(why)),
                }
            }
        }
    }
}

/// Answers a Binding request with `mapped` (the stand-in STUN server of
/// the tests, and what the parser is checked against).
pub fn success_for(request: &[u8], mapped: SocketAddr) -> Option<Vec<u8>> {
    if request.len() < HEADER_LEN || u16::from_be_bytes([request[0], request[1]]) != BINDING_REQUEST
    {
        return None;
    }
    let mut id = [0u8; 12];
    id.copy_from_slice(&request[8..20]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut value = vec![0u8];
    let port = mapped.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match mapped.ip() {
        IpAddr::V4(ip) => {
            value.push(0x01);
            value.extend_from_slice(&port.to_be_bytes());
            value.extend(ip.octets().iter().zip(cookie).map(|(a, c)| a ^ c));
        }
        IpAddr::V6(ip) => {
            value.push(0x02);
            value.extend_from_slice(&port.to_be_bytes());
            let mask: Vec<u8> = cookie.iter().chain(id.iter()).copied().collect();
            value.extend(ip.octets().iter().zip(mask).map(|(a, m)| a ^ m));
        }
    }
    let mut m = Vec::with_capacity(HEADER_LEN + 4 + value.len());
    m.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    m.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    m.extend_from_slice(&cookie);
    m.extend_from_slice(&id);
    m.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(&value);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_sample_ipv4_response_decodes() {
        // RFC 5769 §2.2: XOR-MAPPED-ADDRESS 192.0.2.1:32853 (other
        // attributes skipped: SOFTWARE, MESSAGE-INTEGRITY, FINGERPRINT).
        let id = TransactionId([
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ]);
        let mut m = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&id.0);
        m.extend_from_slice(&[
            0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
        ]);
        assert_eq!(
            parse_reply(&m, id),
            Reply::Mapped("192.0.2.1:32853".parse().expect("addr"))
        );
    }

    #[test]
    fn rfc5769_sample_ipv6_response_decodes() {
        let id = TransactionId([
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ]);
        let mapped: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .expect("addr");
        let mut req = binding_request(id).to_vec();
        req[0] = 0;
        let answer = success_for(&req, mapped).expect("answer");
        // The value bytes of RFC 5769 §2.3.
        assert_eq!(
            &answer[24..44],
            &[
                0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
                0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9
            ]
        );
        assert_eq!(parse_reply(&answer, id), Reply::Mapped(mapped));
    }

    #[test]
    fn another_transaction_or_garbage_is_ignored_and_an_error_is_reported() {
        let id = TransactionId([1; 12]);
        let other = TransactionId([2; 12]);
        let answer = success_for(&binding_request(other), "203.0.113.9:1".parse().expect("a"))
            .expect("answer");
        assert_eq!(parse_reply(&answer, id), Reply::Unrelated);
        assert_eq!(parse_reply(b"hello", id), Reply::Unrelated);
        let mut err = vec![0x01, 0x11, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        err.extend_from_slice(&id.0);
        err.extend_from_slice(&[0x00, 0x09, 0x00, 0x07, 0, 0, 4, 0, b'B', b'a', b'd', 0]);
        assert_eq!(
            parse_reply(&err, id),
            Reply::Failed("the STUN server refused: 400 Bad".into())
        );
    }

    #[test]
    fn rfc8489_retransmits_double_from_the_rto() {
        let (at, last) = schedule(Duration::from_millis(500), 4);
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 500, 1500, 3500]);
        assert_eq!(last, Duration::from_secs(8));
    }

    #[tokio::test]
    async fn asks_a_server_on_loopback_after_a_lost_request() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            // The first request is "lost"; the retransmission is answered.
            let _ = server.recv_from(&mut buf).await.expect("first");
            let (n, from) = server.recv_from(&mut buf).await.expect("second");
            let answer =
                success_for(&buf[..n], "203.0.113.44:4000".parse().expect("a")).expect("answer");
            server.send_to(&answer, from).await.expect("send");
        });
        let ip = public_address(&addr.to_string(), Duration::from_millis(50), 4)
            .await
            .expect("address");
        assert_eq!(ip, "203.0.113.44".parse::<IpAddr>().expect("ip"));
        task.await.expect("server");
    }

    #[tokio::test]
    async fn a_silent_server_is_no_answer_after_the_schedule() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let got = public_address(&addr.to_string(), Duration::from_millis(10), 3).await;
        assert!(matches!(got, Err(NetError::NoAnswer(_))), "{got:?}");
    }
}
