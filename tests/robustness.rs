//! Malformed INVITE/CANCEL/ACK traffic against the real binary, raw UDP on
//! loopback: damaged ACKs are never answered, refusals quote the request
//! only cleaned and bounded, a CANCEL for an INVITE already answered gets
//! 200 and leaves it alone, and Latin-1 display names are understood.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{provision_devices, Homeline, Start};

fn start() -> (Homeline, UdpSocket, u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(dir.path(), &[("alice", "alicepw")]);
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env: vec![("HOMELINE_MEDIA_RTP_PORTS".into(), "23700-23719".into())],
        ..Start::default()
    });
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().unwrap().port();
    (h, sock, port)
}

/// Everything that arrives within `window`.
fn collect(sock: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    let until = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => got.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    got
}

fn first_line(msg: &[u8]) -> String {
    String::from_utf8_lossy(msg)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn send(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) {
    sock.send_to(msg, to).expect("send");
}

fn invite(port: u16, branch: &str, cseq: &str) -> String {
    format!(
        "{cseq_method} sip:bob@homeline SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@homeline>;tag=t{branch}\r\nTo: <sip:bob@homeline>\r\n\
         Call-ID: {branch}@test\r\nCSeq: {cseq}\r\nContact: <sip:alice@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n",
        cseq_method = cseq.split(' ').nth(1).unwrap_or("INVITE"),
    )
}

#[test]
fn damaged_acks_get_no_answer_at_all() {
    let (h, sock, port) = start();
    let sip = h.sip();
    let good = invite(port, "ack1", "1 ACK");
    let damaged = [
        good.replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"),
        good.replace("sip:bob@homeline SIP", "mailto:bob@homeline SIP"),
        good.replace("CSeq: 1 ACK", "CSeq: 1 INVITE"),
        good.replace("CSeq: 1 ACK", "CSeq: one ACK"),
        good.replace("Call-ID: ack1@test\r\n", ""),
        good.replace("Max-Forwards: 70", "Max-Forwards: 7000"),
        good.replace("Content-Length: 0", "Content-Length: 50"),
        good.replace(
            "Content-Length: 0",
            "Content-Length: 0\r\nContent-Length: 0",
        ),
        good.replace("sip:bob@homeline SIP/2.0", "sip:bob@homeline  SIP/2.0"),
        good.replace(
            "Contact: <sip:alice@127.0.0.1",
            "Contact: <<sip:alice@127.0.0.1",
        ),
        good.replace("Max-Forwards: 70", "Max-Forwards 70"),
        good.replace(
            "Max-Forwards: 70",
            "Max-Forwards: 70\r\nX-Name: caf\u{e9}\r\nX-Bad\u{1}: 1",
        ),
    ];
    for d in &damaged {
        send(&sock, sip, d.as_bytes());
    }
    // Latin-1 outside a display name, on the wire as raw bytes.
    let mut latin = good
        .replace("branch=z9hG4bKack1", "branch=z9hG4bKack-l1")
        .into_bytes();
    let at = latin.windows(4).position(|w| w == b"bob@").unwrap();
    latin[at + 1] = 0xf6;
    send(&sock, sip, &latin);
    // The same damage in an OPTIONS is answered: the ACKs were heard.
    send(
        &sock,
        sip,
        invite(port, "opt1", "1 OPTIONS")
            .replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia")
            .as_bytes(),
    );
    let got = collect(&sock, Duration::from_millis(800));
    let lines: Vec<String> = got.iter().map(|m| first_line(m)).collect();
    assert_eq!(
        lines,
        vec!["SIP/2.0 505 Version Not Supported".to_string()],
        "only the OPTIONS is answered"
    );
}

#[test]
fn refusals_quote_the_request_cleaned_and_bounded() {
    let (h, sock, port) = start();
    let sip = h.sip();
    // A bare LF inside the CSeq: the 400 quotes it, never as a line break.
    let msg =
        invite(port, "w1", "1 OPTIONS").replace("CSeq: 1 OPTIONS", "CSeq: 1 OPT\nInjected: yes");
    send(&sock, sip, msg.as_bytes());
    // A 60 KB method in the CSeq: echoed in the Warning, bounded.
    let msg = invite(port, "w2", "1 OPTIONS").replace(
        "CSeq: 1 OPTIONS",
        &format!("CSeq: 1 {}", "X".repeat(60_000)),
    );
    send(&sock, sip, msg.as_bytes());
    let got = collect(&sock, Duration::from_millis(800));
    assert_eq!(got.len(), 2, "both answered");
    for m in &got {
        assert_eq!(first_line(m), "SIP/2.0 400 Bad Request");
        assert!(m.len() <= 65_507, "fits a datagram: {}", m.len());
        for (i, b) in m.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(m.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
                b'\n' => assert_eq!(m[i - 1], b'\r', "bare LF at {i}"),
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(m);
        let warning = text
            .lines()
            .find_map(|l| l.strip_prefix("Warning: "))
            .expect("a Warning");
        assert!(warning.starts_with("399 homeline \""), "{warning}");
        assert!(warning.len() <= 230, "bounded: {} bytes", warning.len());
        assert!(!warning.chars().any(char::is_control), "{warning:?}");
        assert!(!text.lines().any(|l| l.starts_with("Injected")), "{text}");
    }
}

#[test]
fn cancel_of_an_answered_invite_gets_200_and_leaves_it_alone() {
    let (h, sock, port) = start();
    let sip = h.sip();
    // No credentials: the INVITE is answered 407 (its transaction completes).
    let inv = invite(port, "c1", "1 INVITE").replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n",
    );
    send(&sock, sip, inv.as_bytes());
    let got = collect(&sock, Duration::from_millis(300));
    assert!(
        got.iter().any(|m| first_line(m).starts_with("SIP/2.0 407")),
        "{:?}",
        got.iter().map(|m| first_line(m)).collect::<Vec<_>>()
    );
    let cancel = invite(port, "c1", "1 CANCEL")
        .replace("Contact: <sip:alice@127.0.0.1:", "X-Was-Contact: <");
    send(&sock, sip, cancel.as_bytes());
    let got = collect(&sock, Duration::from_millis(300));
    let lines: Vec<String> = got.iter().map(|m| first_line(m)).collect();
    assert!(
        lines.iter().any(|l| l == "SIP/2.0 200 OK"),
        "§9.2: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("SIP/2.0 481") || l.starts_with("SIP/2.0 487")),
        "{lines:?}"
    );
    let cancel_ok = got
        .iter()
        .find(|m| first_line(m) == "SIP/2.0 200 OK")
        .map(|m| String::from_utf8_lossy(m).to_string())
        .unwrap();
    assert!(cancel_ok.contains("CSeq: 1 CANCEL"), "{cancel_ok}");
    // The INVITE is left alone: its 407 is still retransmitted until the ACK.
    let got = collect(&sock, Duration::from_millis(1500));
    assert!(
        got.iter().any(|m| first_line(m).starts_with("SIP/2.0 407")),
        "{:?}",
        got.iter().map(|m| first_line(m)).collect::<Vec<_>>()
    );
    let ack = invite(port, "c1", "1 ACK");
    send(&sock, sip, ack.as_bytes());
    // A CANCEL for an INVITE never seen is still 481.
    send(&sock, sip, invite(port, "never", "1 CANCEL").as_bytes());
    let got = collect(&sock, Duration::from_millis(400));
    let lines: Vec<String> = got
        .iter()
        .filter(|m| !first_line(m).starts_with("SIP/2.0 407"))
        .map(|m| first_line(m))
        .collect();
    assert_eq!(
        lines,
        vec!["SIP/2.0 481 Call/Transaction Does Not Exist".to_string()]
    );
}

#[test]
fn a_latin1_display_name_is_understood_and_other_bad_bytes_get_400() {
    let (h, sock, port) = start();
    let sip = h.sip();
    let mut msg = invite(port, "l1", "1 OPTIONS")
        .replace("From: <sip:alice", "From: \"M?ller\" <sip:alice")
        .into_bytes();
    let at = msg.windows(2).position(|w| w == b"M?").unwrap();
    msg[at + 1] = 0xfc;
    send(&sock, sip, &msg);
    let mut bad = invite(port, "l2", "1 OPTIONS").into_bytes();
    let at = bad.windows(7).position(|w| w == b"Call-ID").unwrap();
    bad[at + 9] = 0xfc; // inside the Call-ID value
    send(&sock, sip, &bad);
    let got = collect(&sock, Duration::from_millis(600));
    let texts: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .collect();
    let ok = texts
        .iter()
        .find(|t| t.contains("z9hG4bKl1"))
        .expect("the Latin-1 display name is answered");
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains("From: \"Müller\" <sip:alice@homeline>"), "{ok}");
    let refused = texts
        .iter()
        .find(|t| t.contains("z9hG4bKl2"))
        .expect("the bad Call-ID is answered");
    assert!(refused.starts_with("SIP/2.0 400 "), "{refused}");
    assert!(refused.contains("not UTF-8"), "{refused}");
}
