//! RFC 4475: all 49 torture messages replayed byte-exact over UDP and TCP
//! against the running appliance, each answered (or dropped) as the RFC says,
//! and afterwards a phone still registers.
//!
//! The messages name 192.0.2.x, *.example.com and 255.255.255.255. When run
//! as root the whole test moves into a private network namespace (only `lo`
//! exists: nothing can leave the machine whatever the server did); otherwise
//! it runs on loopback, which is safe because Homeline answers only to the
//! packet's source address and never resolves names from messages.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{provision_devices, sipp, Homeline, Start};
use homeline::sip::message::{HeaderName, Via};

/// Expected answer: a status, any non-error status (valid request), or none.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Valid,
    Status(u16),
    Nothing,
}
use Want::*;

const TABLE: &[(&str, Want)] = &[
    ("wsinv", Valid),
    ("intmeth", Valid),
    ("esc01", Valid),
    ("escnull", Valid),
    ("esc02", Valid),
    ("lwsdisp", Valid),
    ("longreq", Valid),
    ("dblreq", Valid),
    ("semiuri", Valid),
    ("transports", Valid),
    ("mpart01", Valid),
    ("unreason", Nothing),
    ("noreason", Nothing),
    ("badinv01", Status(400)),
    ("clerr", Status(400)),
    ("ncl", Status(400)),
    ("scalar02", Status(400)),
    ("scalarlg", Nothing),
    ("quotbal", Status(400)),
    ("ltgtruri", Status(400)),
    ("lwsruri", Status(400)),
    ("lwsstart", Status(400)),
    ("trws", Status(400)),
    ("escruri", Status(400)),
    ("baddate", Valid),
    ("regbadct", Status(400)),
    ("badaspec", Valid),
    ("baddn", Status(400)),
    ("badvers", Status(505)),
    ("mismatch01", Status(400)),
    ("mismatch02", Status(400)),
    ("bigcode", Nothing),
    ("badbranch", Status(400)),
    ("insuf", Status(400)),
    ("unkscm", Status(416)),
    ("novelsc", Status(416)),
    ("unksm2", Status(400)),
    ("bext01", Status(420)),
    ("invut", Valid),
    ("regaut01", Status(401)),
    ("multi01", Status(400)),
    ("mcl01", Status(400)),
    ("bcast", Nothing),
    ("cparam01", Status(401)),
    ("cparam02", Status(401)),
    ("regescrt", Status(401)),
    ("sdp01", Valid),
    ("inv2543", Valid),
];

fn data(name: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/data/rfc4475",
        &format!("{name}.dat"),
    ]
    .iter()
    .collect();
    std::fs::read(p).expect("torture file")
}

fn statuses(buf: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(buf)
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("SIP/2.0 "))
        .filter_map(|l| l.get(..3)?.parse().ok())
        .collect()
}

fn judge(name: &str, want: Want, got: &[u16], failures: &mut Vec<String>) {
    let ok = match want {
        Valid => !got.is_empty() && got.iter().all(|s| ![400, 416, 505].contains(s)),
        Status(s) => got.first() == Some(&s),
        Nothing => got.is_empty(),
    };
    if !ok {
        failures.push(format!("{name}: want {want:?}, got {got:?}"));
    }
}

/// The port the server will answer a UDP request on (RFC 3261 §18.2.2): the
/// Via port, 5060 by default, or ours with `rport`.
fn reply_port(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let head = text
        .split("\r\n\r\n")
        .next()?
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let line = head.split("\r\n").find(|l| {
        let name = l.split(':').next().unwrap_or("").trim();
        HeaderName::parse(name) == HeaderName::Via
    })?;
    let value = line.split_once(':')?.1;
    let via = Via::parse(homeline::sip::message::split_list(value).first()?)?;
    if via.params.get("rport").is_some() {
        return Some(0);
    }
    Some(via.port.unwrap_or(5060))
}

fn call_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next()?.to_string();
    head.split("\r\n").find_map(|l| {
        let (name, value) = l.split_once(':')?;
        (HeaderName::parse(name.trim()) == HeaderName::CallId).then(|| value.trim().to_string())
    })
}

fn replay_udp(sip: SocketAddr, failures: &mut Vec<String>) {
    // Answers go to the Via port (5060 for most messages), and unACKed
    // INVITE answers are retransmitted (Timer G), so sockets are shared per
    // port and answers are matched to messages by Call-ID.
    let mut sockets: std::collections::HashMap<u16, UdpSocket> = std::collections::HashMap::new();
    for (name, want) in TABLE {
        let bytes = data(name);
        let port = reply_port(&bytes).unwrap_or(0);
        let sock = sockets.entry(port).or_insert_with(|| {
            let s = UdpSocket::bind(("127.0.0.1", port))
                .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
                .expect("bind");
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            s
        });
        sock.send_to(&bytes, sip).expect("send");
        let mine = call_id(&bytes);
        let mut got = Vec::new();
        let deadline =
            Instant::now() + Duration::from_millis(if *want == Nothing { 300 } else { 1500 });
        let mut buf = [0u8; 65535];
        while Instant::now() < deadline {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if mine.is_some() && call_id(&buf[..n]) != mine {
                    continue; // a retransmission for an earlier message
                }
                got.extend(statuses(&buf[..n]));
                if *want != Nothing {
                    break;
                }
            }
        }
        judge(name, *want, &got, failures);
    }
}

fn replay_tcp(sip: SocketAddr, failures: &mut Vec<String>) {
    for (name, want) in TABLE {
        // Over TCP these wait for octets that never come (no answer), which
        // the RFC allows: clerr's Content-Length exceeds what was sent and
        // baddn lacks its empty line.
        let want = if matches!(*name, "clerr" | "baddn") {
            Nothing
        } else {
            *want
        };
        let mut s = TcpStream::connect(sip).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(if want == Nothing {
            300
        } else {
            1500
        })))
        .expect("timeout");
        s.write_all(&data(name)).expect("write");
        let mut buf = vec![0u8; 65535];
        let n = s.read(&mut buf).unwrap_or(0);
        judge(name, want, &statuses(&buf[..n]), failures);
    }
}

fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw")]);
    // The replay is, by design, what a scanner sends: let the guard allow it.
    let env = vec![(
        "HOMELINE_SIP_GUARD_MAX_GARBAGE".to_string(),
        "10000".to_string(),
    )];
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env,
        ..Start::default()
    });
    let sip = h.sip();
    let mut failures = Vec::new();
    for round in 0..2 {
        replay_udp(sip, &mut failures);
        replay_tcp(sip, &mut failures);
        let log = std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
        assert!(
            failures.is_empty(),
            "round {round}:\n{}\n--- server log ---\n{log}",
            failures.join("\n")
        );
    }
    assert_eq!(h.get("/health").status, 200, "the appliance survived");
    let (code, out) = sipp(
        sip,
        "register_auth.xml",
        &["-s", "alice", "-au", "alice", "-ap", "alicepw"],
    );
    assert_eq!(code, 0, "a phone still registers after the torture:\n{out}");
}

#[test]
fn a_source_sending_garbage_is_banned_and_a_registered_phone_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw")]);
    let env = vec![(
        "HOMELINE_SIP_GUARD_MAX_GARBAGE".to_string(),
        "5".to_string(),
    )];
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env,
        ..Start::default()
    });
    let sip = h.sip();
    let scanner = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    scanner
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let options = |branch: &str, port: u16| {
        format!("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:{port};rport;branch=z9hG4bK{branch}\r\nFrom: <sip:s@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    };
    let port = scanner.local_addr().expect("addr").port();
    let mut buf = [0u8; 4096];
    scanner
        .send_to(options("before", port).as_bytes(), sip)
        .expect("send");
    assert!(
        scanner.recv_from(&mut buf).is_ok(),
        "answered before the ban"
    );
    for i in 0..8 {
        scanner
            .send_to(format!("GARBAGE {i}\r\n\r\n").as_bytes(), sip)
            .expect("send");
    }
    std::thread::sleep(Duration::from_millis(200));
    while scanner.recv_from(&mut buf).is_ok() {} // nothing should be there; drain anyway
    scanner
        .send_to(options("after", port).as_bytes(), sip)
        .expect("send");
    let log = || std::fs::read_to_string(h.data().join("server.log")).unwrap_or_default();
    assert!(
        scanner.recv_from(&mut buf).is_err(),
        "banned: silently ignored\n{}",
        log()
    );
    let (code, out) = sipp(
        sip,
        "register_auth.xml",
        &["-s", "alice", "-au", "alice", "-ap", "alicepw"],
    );
    assert_eq!(code, 0, "phones on other addresses are unaffected:\n{out}");
}

#[test]
fn rfc4475_torture_over_udp_and_tcp_then_a_phone_registers() {
    // Namespaces belong to threads: this thread (and every process it
    // starts) moves into a fresh network namespace if we may create one.
    std::thread::spawn(|| {
        let isolated = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
            && std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .is_ok_and(|s| s.success());
        eprintln!(
            "RFC 4475 replay {}",
            if isolated {
                "in a private network namespace"
            } else {
                "on loopback (not root)"
            }
        );
        run();
    })
    .join()
    .expect("torture run");
}
