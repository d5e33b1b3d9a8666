//! Are the listeners up? Each configured listener is reached the way a
//! client would: a TCP connection for HTTP, SIP/TCP and SIP/TLS, a SIP
//! `OPTIONS` over UDP (UDP has no connection to make; any SIP answer proves
//! the port is served).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::Check;

/// One listener and what probing it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `http`, `sip_udp`, `sip_tcp`, `sip_tls`, `https`…
    pub name: String,
    /// Where it was probed.
    pub addr: SocketAddr,
    /// `None` when it answered, else what went wrong.
    pub failure: Option<String>,
}

/// Probes `listeners` (name, address) within `timeout` each; an unspecified
/// address (`0.0.0.0`) is probed on loopback.
pub fn probe_all(listeners: &[(String, SocketAddr)], timeout: Duration) -> Vec<Probe> {
    listeners
        .iter()
        .map(|(name, addr)| {
            let addr = reachable(*addr);
            let failure = if name.ends_with("udp") {
                probe_sip_udp(addr, timeout)
            } else {
                TcpStream::connect_timeout(&addr, timeout)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            .err();
            Probe {
                name: name.clone(),
                addr,
                failure,
            }
        })
        .collect()
}

fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

fn probe_sip_udp(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let branch = format!("z9hG4bK-doctor-{}", local.port());
    let options = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:doctor@{local}>;tag={branch}\r\nTo: <sip:{addr}>\r\n\
         Call-ID: {branch}@homeline-doctor\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), addr)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 ") => Ok(()),
        Ok(_) => Err("something answered, but not SIP".into()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("no SIP answer within {} ms", timeout.as_millis()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The ports check. `listeners_known` is false when the running appliance
/// could not be found at all (no `run/ports.json`).
pub fn check(probes: &[Probe], listeners_known: bool) -> Check {
    const ID: &str = "ports";
    const TITLE: &str = "Ports listening";
    if !listeners_known {
        return Check::error(
            ID,
            TITLE,
            "Homeline does not seem to be running: it wrote no run/ports.json in its data directory",
            "Start it: `systemctl start homeline` (then `journalctl -u homeline` says why it stopped).",
        );
    }
    let down: Vec<String> = probes
        .iter()
        .filter_map(|p| {
            p.failure
                .as_ref()
                .map(|f| format!("{} on {} is not listening ({f})", label(&p.name), p.addr))
        })
        .collect();
    let up: Vec<String> = probes
        .iter()
        .filter(|p| p.failure.is_none())
        .map(|p| format!("{} {}", label(&p.name), p.addr))
        .collect();
    if down.is_empty() {
        return Check::ok(ID, TITLE, format!("listening: {}", up.join(", ")));
    }
    Check::error(
        ID,
        TITLE,
        down.join("; "),
        "Restart Homeline (`systemctl restart homeline`); if the port stays closed another \
         program holds it (`ss -ltnup` shows which) or a firewall on the Pi blocks it.",
    )
}

fn label(name: &str) -> &str {
    match name {
        "http" => "the web UI (HTTP)",
        "https" => "HTTPS",
        "sip_udp" => "SIP over UDP",
        "sip_tcp" => "SIP over TCP",
        "sip_tls" => "SIP over TLS",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::net::TcpListener;

    #[test]
    fn a_listening_port_is_ok_and_a_closed_one_named() {
        let open = TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let list = vec![
            ("http".to_string(), open.local_addr().expect("addr")),
            ("sip_tls".to_string(), closed),
        ];
        let probes = probe_all(&list, Duration::from_millis(500));
        assert!(probes[0].failure.is_none(), "{probes:?}");
        let c = check(&probes, true);
        assert_eq!(c.status, Status::Error);
        assert!(
            c.detail
                .contains(&format!("SIP over TLS on {closed} is not listening")),
            "{c:?}"
        );
        assert_eq!(check(&probes[..1], true).status, Status::Ok);
    }

    #[test]
    fn udp_needs_a_sip_answer_and_a_stopped_appliance_is_an_error() {
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let list = vec![("sip_udp".to_string(), silent.local_addr().expect("addr"))];
        let probes = probe_all(&list, Duration::from_millis(200));
        assert!(probes[0].failure.is_some(), "{probes:?}");
        let c = check(&[], false);
        assert_eq!(c.status, Status::Error);
        assert!(c.detail.contains("not seem to be running"));
    }
}
