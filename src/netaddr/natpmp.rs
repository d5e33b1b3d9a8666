//! NAT-PMP (RFC 6886): the router's external address (opcode 0) and port
//! mappings (opcodes 1 UDP, 2 TCP; lifetime 0 deletes), over UDP to the
//! default gateway's port 5351, resent at 250 ms doubling.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::{NetError, Protocol};

/// The port NAT-PMP servers listen on.
pub const PORT: u16 = 5351;

/// The default IPv4 gateway in `/proc/net/route`'s format: the first
/// line whose destination is 0.0.0.0 and whose flags have RTF_GATEWAY.
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags) = (cols.get(1)?, cols.get(2)?, cols.get(3)?);
        let flags = u16::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || flags & 0x2 == 0 {
            return None;
        }
        // The kernel prints the address in host (little-endian) order.
        let raw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_le_bytes()))
    })
}

/// Reads the default gateway of this machine.
pub fn system_gateway() -> Option<Ipv4Addr> {
    default_gateway(&std::fs::read_to_string("/proc/net/route").ok()?)
}

/// The text of a NAT-PMP result code.
fn result_text(code: u16) -> &'static str {
    match code {
        1 => "unsupported version",
        2 => "not authorized (NAT-PMP is switched off on the router, or this address may not map)",
        3 => "network failure (the router has no external address yet)",
        4 => "out of resources (no ports left)",
        5 => "unsupported opcode",
        _ => "unknown error",
    }
}

/// A mapping the router granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The external port (may differ from the one asked for).
    pub external_port: u16,
    /// Seconds the mapping lives.
    pub lifetime: u32,
}

/// The external-address request.
pub fn address_request() -> [u8; 2] {
    [0, 0]
}

/// A mapping request (lifetime 0 removes the mapping).
pub fn map_request(protocol: Protocol, internal: u16, external: u16, lifetime: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[1] = match protocol {
        Protocol::Udp => 1,
        Protocol::Tcp => 2,
    };
    m[4..6].copy_from_slice(&internal.to_be_bytes());
    m[6..8].copy_from_slice(&external.to_be_bytes());
    m[8..12].copy_from_slice(&lifetime.to_be_bytes());
    m
}

/// Reads the answer to an external-address request.
pub fn parse_address(d: &[u8]) -> Option<Result<Ipv4Addr, NetError>> {
    if d.len() < 8 || d[0] != 0 || d[1] != 128 {
        return None;
    }
    let code = u16::from_be_bytes([d[2], d[3]]);
    if code != 0 {
        return Some(Err(NetError::Refused(result_text(code).into())));
    }
    if d.len() < 12 {
        return None;
    }
    Some(Ok(Ipv4Addr::new(d[8], d[9], d[10], d[11])))
}

/// Reads the answer to a mapping request for `protocol` and `internal`.
pub fn parse_map(d: &[u8], protocol: Protocol, internal: u16) -> Option<Result<Granted, NetError>> {
    let op = match protocol {
        Protocol::Udp => 129,
        Protocol::Tcp => 130,
    };
    if d.len() < 8 || d[0] != 0 || d[1] != op {
        return None;
    }
    let code = u16::from_be_bytes([d[2], d[3]]);
    if code != 0 {
        return Some(Err(NetError::Refused(result_text(code).into())));
    }
    if d.len() < 16 || u16::from_be_bytes([d[8], d[9]]) != internal {
        return None;
    }
    Some(Ok(Granted {
        external_port: u16::from_be_bytes([d[10], d[11]]),
        lifetime: u32::from_be_bytes([d[12], d[13], d[14], d[15]]),
    }))
}

/// Sends `request` to the gateway until `parse` accepts an answer: 250 ms,
/// doubling, `tries` times (RFC 6886 §3.1 allows up to 9).
async fn exchange<T>(
    gateway: SocketAddrV4,
    request: &[u8],
    tries: u32,
    parse: impl Fn(&[u8]) -> Option<Result<T, NetError>>,
) -> Result<T, NetError> {
    let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .map_err(|e| NetError::Unreachable(format!("cannot open a UDP socket: {e}")))?;
    let gw = SocketAddr::V4(gateway);
    let mut wait = Duration::from_millis(250);
    let mut buf = [0u8; 64];
    for _ in 0..tries {
        if let Err(e) = socket.send_to(request, gw).await {
            return Err(NetError::Unreachable(format!(
                "cannot reach the router at {gw}: {e}"
            )));
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable: nobody speaks NAT-PMP there.
                Ok(Err(_)) => {
                    return Err(NetError::Unsupported(
                        "the router does not answer NAT-PMP".into(),
                    ))
                }
                Ok(Ok((n, from))) if from == gw => {
                    if let Some(r) = parse(&buf[..n]) {
                        return r;
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
        wait *= 2;
    }
    Err(NetError::Unsupported(
        "the router does not answer NAT-PMP".into(),
    ))
}

/// The router's external address.
pub async fn external_address(gateway: Ipv4Addr, tries: u32) -> Result<Ipv4Addr, NetError> {
    exchange(
        SocketAddrV4::new(gateway, PORT),
        &address_request(),
        tries,
        parse_address,
    )
    .await
}

/// Asks for (or, with lifetime 0, removes) a mapping.
pub async fn map(
    gateway: Ipv4Addr,
    protocol: Protocol,
    internal: u16,
    external: u16,
    lifetime: u32,
    tries: u32,
) -> Result<Granted, NetError> {
    let req = map_request(protocol, internal, external, lifetime);
    exchange(SocketAddrV4::new(gateway, PORT), &req, tries, |d| {
        parse_map(d, protocol, internal)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_comes_from_the_route_table() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(default_gateway("Iface\tDestination\n"), None);
    }

    #[test]
    fn requests_and_answers_follow_rfc6886() {
        assert_eq!(address_request(), [0, 0]);
        assert_eq!(
            map_request(Protocol::Tcp, 5061, 5061, 3600),
            [0, 2, 0, 0, 0x13, 0xc5, 0x13, 0xc5, 0, 0, 0x0e, 0x10]
        );
        let ok = [0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 7];
        assert_eq!(
            parse_address(&ok).expect("answer").expect("ok"),
            Ipv4Addr::new(203, 0, 113, 7)
        );
        let refused = [0, 128, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0];
        assert!(matches!(
            parse_address(&refused),
            Some(Err(NetError::Refused(_)))
        ));
        assert!(parse_address(&[0, 129, 0, 0]).is_none(), "other opcode");
        let granted = [
            0, 129, 0, 0, 0, 0, 0, 9, 0x27, 0x10, 0x27, 0x11, 0, 0, 0, 60,
        ];
        assert_eq!(
            parse_map(&granted, Protocol::Udp, 10000)
                .expect("answer")
                .expect("ok"),
            Granted {
                external_port: 10001,
                lifetime: 60
            }
        );
        assert!(
            parse_map(&granted, Protocol::Udp, 10002).is_none(),
            "another port"
        );
        assert!(
            parse_map(&granted, Protocol::Tcp, 10000).is_none(),
            "another protocol"
        );
    }

    #[tokio::test]
    async fn a_router_without_nat_pmp_is_not_supported() {
        // Nothing listens on 127.0.0.1:5351 here (or it is a test's own).
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let SocketAddr::V4(at) = silent.local_addr().expect("addr") else {
            unreachable!()
        };
        let got = exchange(at, &address_request(), 2, parse_address).await;
        assert!(matches!(got, Err(NetError::Unsupported(_))), "{got:?}");
    }
}
