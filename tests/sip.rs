//! The SIP core against real peers: Debian's sipp registering with digest
//! authentication over UDP and TCP, raw messages on the wire, and the
//! persistence rule for bindings.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{provision_devices, sipp, Homeline, Start};

fn start_with_phones() -> Homeline {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw"), ("bob", "bobpw")]);
    Homeline::start_with(Start {
        dir: Some(dir),
        ..Start::default()
    })
}

#[test]
fn sipp_registers_with_digest_over_udp_and_tcp() {
    let h = start_with_phones();
    for transport in ["u1", "t1"] {
        let (code, out) = sipp(
            h.sip(),
            "register_auth.xml",
            &[
                "-t", transport, "-s", "alice", "-au", "alice", "-ap", "alicepw",
            ],
        );
        assert_eq!(code, 0, "register_auth over {transport}:\n{out}");
        let (code, out) = sipp(
            h.sip(),
            "register_badauth.xml",
            &[
                "-t", transport, "-s", "alice", "-au", "alice", "-ap", "WRONG",
            ],
        );
        assert_eq!(
            code, 0,
            "a wrong password is refused over {transport}:\n{out}"
        );
        let (code, out) = sipp(
            h.sip(),
            "unregister_auth.xml",
            &[
                "-t", transport, "-s", "alice", "-au", "alice", "-ap", "alicepw",
            ],
        );
        assert_eq!(code, 0, "unregister over {transport}:\n{out}");
    }
}

fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, msg: &str) -> String {
    sock.send_to(msg.as_bytes(), to).expect("send");
    let mut buf = [0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

fn request(method: &str, branch: &str, port: u16, extra: &str) -> String {
    format!(
        "{method} sip:homeline SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@homeline>;tag=t{branch}\r\nTo: <sip:alice@homeline>\r\nCall-ID: {branch}@test\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn methods_are_answered_as_rfc3261_says() {
    let h = start_with_phones();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();

    let r = exchange(&sock, h.sip(), &request("OPTIONS", "o1", port, ""));
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(r.contains("Allow: REGISTER, OPTIONS, ACK, CANCEL"), "{r}");
    assert!(
        r.contains(&format!("rport={port}")) && r.contains("received=127.0.0.1"),
        "RFC 3581: {r}"
    );

    let r = exchange(&sock, h.sip(), &request("FOOBAR", "f1", port, ""));
    assert!(
        r.starts_with("SIP/2.0 501 ") && r.contains("Allow:"),
        "unknown method: {r}"
    );
    let r = exchange(&sock, h.sip(), &request("SUBSCRIBE", "s1", port, ""));
    assert!(
        r.starts_with("SIP/2.0 405 ") && r.contains("Allow:"),
        "known but unsupported: {r}"
    );
    let r = exchange(
        &sock,
        h.sip(),
        &request("OPTIONS", "q1", port, "Require: 100rel, foo\r\n"),
    );
    assert!(
        r.starts_with("SIP/2.0 420 ") && r.contains("Unsupported: 100rel, foo"),
        "{r}"
    );
    let r = exchange(
        &sock,
        h.sip(),
        &request("REGISTER", "r1", port, "Contact: <sip:alice@127.0.0.1>\r\n"),
    );
    assert!(
        r.starts_with("SIP/2.0 401 ") && r.contains("algorithm=MD5") && r.contains("qop=\"auth\""),
        "{r}"
    );

    // A retransmitted request gets the same answer (same To tag), not a new one.
    let first = exchange(&sock, h.sip(), &request("OPTIONS", "same", port, ""));
    let again = exchange(&sock, h.sip(), &request("OPTIONS", "same", port, ""));
    assert_eq!(first, again, "absorbed by the server transaction");

    let bad = "OPTIONS sip:homeline SIP/7.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKv\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: v\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let r = exchange(
        &sock,
        h.sip(),
        &bad.replace("127.0.0.1:1", &format!("127.0.0.1:{port}")),
    );
    assert!(r.starts_with("SIP/2.0 505 "), "{r}");
}

#[test]
fn registration_refreshes_do_not_write_to_the_database() {
    let h = start_with_phones();
    let db = h.data().join("homeline.db");
    let rows = || -> i64 {
        let conn = homeline::store::open_connection(&db).expect("open");
        conn.query_row("SELECT count(*) FROM registrations", [], |r| r.get(0))
            .expect("count")
    };
    // The same phone (same port, so the same Contact) registering repeatedly.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
        .to_string();
    let register = || {
        let (code, out) = sipp(
            h.sip(),
            "register_auth.xml",
            &["-s", "bob", "-au", "bob", "-ap", "bobpw", "-p", &port],
        );
        assert_eq!(code, 0, "{out}");
    };
    register();
    assert!(
        common::wait_for(Duration::from_secs(5), || (rows() == 1).then_some(())).is_some(),
        "a new binding is stored"
    );
    let wal = h.data().join("homeline.db-wal");
    let size = || {
        std::fs::metadata(&wal)
            .map(|m| m.len())
            .expect("WAL exists")
    };
    let before = size();
    for _ in 0..5 {
        register();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rows(), 1);
    assert_eq!(
        size(),
        before,
        "five refreshes appended nothing to the WAL: no SD-card writes"
    );
}
