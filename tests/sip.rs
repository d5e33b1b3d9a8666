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
    assert!(
        r.contains(&format!("Allow: {}", homeline::endpoint::ALLOW)),
        "{r}"
    );
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
        // 100rel is implemented now: only the unknown tags are listed.
        &request("OPTIONS", "q1", port, "Require: 100rel, foo, x-nope\r\n"),
    );
    assert!(
        r.starts_with("SIP/2.0 420 ") && r.contains("Unsupported: foo, x-nope"),
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
fn ipv6_requests_are_answered_with_received_stamped() {
    let h = Homeline::start_with(Start {
        sip_listen: Some("[::1]:0".into()),
        ..Start::default()
    });
    let sip = h.sip();
    assert!(sip.is_ipv6(), "{sip}");
    let sock = UdpSocket::bind("[::1]:0").expect("bind ::1");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let msg = format!(
        "OPTIONS sip:homeline SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:{port};rport;branch=z9hG4bKv6\r\nMax-Forwards: 70\r\n\
         From: <sip:a@[::1]>;tag=1\r\nTo: <sip:homeline>\r\nCall-ID: v6@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let r = exchange(&sock, sip, &msg);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(
        r.contains(&format!("rport={port}")) && r.contains("received=::1"),
        "{r}"
    );
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

#[test]
fn baresip_registers_over_udp_tcp_and_tls() {
    common::baresip::require();
    let dir = tempfile::tempdir().expect("tempdir");
    provision_devices(
        dir.path(),
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        ..Start::default()
    });
    let ports: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(h.data().join("run/ports.json")).expect("ports"),
    )
    .expect("json");
    let udp = ports["sip_udp"].as_str().expect("udp").to_string();
    let tls = ports["sip_tls"].as_str().expect("tls").to_string();
    let db = h.data().join("homeline.db");
    let transport_of = |user: &str| -> Option<String> {
        let conn = homeline::store::open_connection(&db).ok()?;
        conn.query_row(
            "SELECT r.transport FROM registrations r JOIN devices d ON d.id = r.device_id WHERE d.username = ?1",
            [user],
            |r| r.get(0),
        )
        .ok()
    };
    for (user, pass, outbound, want) in [
        ("alice", "alicepw", udp.clone(), "udp"),
        ("bob", "bobpw", format!("{udp};transport=tcp"), "tcp"),
        ("carol", "carolpw", format!("{tls};transport=tls"), "tls"),
    ] {
        let profile = tempfile::tempdir().expect("tempdir");
        common::baresip::profile(
            profile.path(),
            user,
            pass,
            &outbound,
            common::baresip::free_port_pair(),
            "20000-20099",
            "sine:440",
        );
        let mut child = std::process::Command::new("timeout")
            .args(["20", "baresip", "-4", "-f"])
            .arg(profile.path())
            .args(["-t", "15"])
            .stdin(std::process::Stdio::null())
            .stdout(
                std::fs::File::create(profile.path().join("out.log"))
                    .map(std::process::Stdio::from)
                    .expect("log"),
            )
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("baresip");
        let got = common::wait_for(Duration::from_secs(10), || transport_of(user));
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(profile.path().join("out.log")).unwrap_or_default();
        assert_eq!(
            got.as_deref(),
            Some(want),
            "baresip {user} over {want}:\n{log}"
        );
    }
}

/// Bytes the process has caused to be written to storage (`/proc/PID/io`).
fn write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("write_bytes")
}

#[test]
fn five_phones_refreshing_cause_no_storage_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phones: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("phone{i}"), format!("secret-{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = phones
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    provision_devices(dir.path(), &refs);
    // Quiet logging: log lines to the harness's file would count as writes.
    let env = vec![("HOMELINE_LOG_LEVEL".to_string(), "warn".to_string())];
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        env,
        ..Start::default()
    });
    let ports: Vec<String> = (0..5)
        .map(|_| {
            UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("port")
                .port()
                .to_string()
        })
        .collect();
    let round = || {
        for ((user, pass), port) in phones.iter().zip(&ports) {
            let (code, out) = sipp(
                h.sip(),
                "register_auth.xml",
                &["-s", user, "-au", user, "-ap", pass, "-p", port],
            );
            assert_eq!(code, 0, "{out}");
        }
    };
    round(); // five new bindings: written once
    std::thread::sleep(Duration::from_millis(500));
    let before = write_bytes(h.child.id());
    for _ in 0..4 {
        round(); // twenty refreshes
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = write_bytes(h.child.id());
    eprintln!(
        "storage writes for 20 registration refreshes: {} bytes",
        after - before
    );
    assert_eq!(after, before, "refreshes must not touch the SD card");
}

#[test]
fn phones_created_through_the_api_register_and_show_up() {
    let h = Homeline::start();
    let pw = "blue kettle on the hob";
    let admin = common::setup_admin(&h, "mum@x.org", pw);
    let r = h.call(
        "POST",
        "/api/users",
        Some(&admin),
        Some(&serde_json::json!({"email": "kid@x.org", "password": pw})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let kid_id = r.json()["id"].as_i64().expect("id");
    let kid = h.login("kid@x.org", pw).expect("kid logs in");

    let r = h.call("POST", "/api/devices", Some(&admin), Some(&serde_json::json!({"name": "Kitchen", "username": "kitchen", "user_id": kid_id, "device_type": "grandstream"})));
    assert_eq!(r.status, 201, "{}", r.text());
    let device = r.json();
    assert!(
        device.get("password").is_none() && !r.text().contains("sealed"),
        "no secret in the device: {device}"
    );
    let id = device["id"].as_i64().expect("id");
    let bad = h.call(
        "POST",
        "/api/devices",
        Some(&admin),
        Some(&serde_json::json!({"name": "", "username": "bad name", "password": "short"})),
    );
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (400, "VALIDATION_ERROR")
    );
    assert_eq!(
        bad.json()["error"]["details"].as_array().map(Vec::len),
        Some(3),
        "{}",
        bad.text()
    );
    let dup = h.call(
        "POST",
        "/api/devices",
        Some(&admin),
        Some(&serde_json::json!({"name": "Again", "username": "kitchen"})),
    );
    assert_eq!(dup.status, 409, "{}", dup.text());

    // The owner fetches the credentials to set the phone up.
    let creds = h.call(
        "GET",
        &format!("/api/devices/{id}/credentials"),
        Some(&kid),
        None,
    );
    assert_eq!(creds.status, 200, "{}", creds.text());
    let creds = creds.json();
    let password = creds["password"].as_str().expect("password").to_string();
    assert_eq!(
        (
            creds["username"].as_str(),
            creds["realm"].as_str(),
            password.len()
        ),
        (Some("kitchen"), Some("homeline"), 20)
    );

    let (code, out) = sipp(
        h.sip(),
        "register_auth.xml",
        &["-s", "kitchen", "-au", "kitchen", "-ap", &password],
    );
    assert_eq!(
        code, 0,
        "a phone made through the API registers at once:\n{out}"
    );
    let regs = h
        .call("GET", "/api/devices/registrations", Some(&kid), None)
        .json();
    assert_eq!(regs["items"][0]["device_id"].as_i64(), Some(id), "{regs}");
    assert_eq!(regs["items"][0]["contacts"][0]["transport"], "udp");

    // A new password takes effect at once; the old one is refused.
    let r = h.call("PUT", &format!("/api/devices/{id}"), Some(&admin), Some(&serde_json::json!({"name": "Kitchen", "username": "kitchen", "user_id": kid_id, "password": "a-new-secret-1"})));
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, out) = sipp(
        h.sip(),
        "register_badauth.xml",
        &["-s", "kitchen", "-au", "kitchen", "-ap", &password],
    );
    assert_eq!(code, 0, "the old password is refused:\n{out}");
    let (code, out) = sipp(
        h.sip(),
        "register_auth.xml",
        &["-s", "kitchen", "-au", "kitchen", "-ap", "a-new-secret-1"],
    );
    assert_eq!(code, 0, "{out}");

    let r = h.call("DELETE", &format!("/api/devices/{id}"), Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let regs = h
        .call("GET", "/api/devices/registrations", Some(&admin), None)
        .json();
    assert_eq!(
        regs["items"].as_array().map(Vec::len),
        Some(0),
        "a deleted phone's bindings go: {regs}"
    );
    let bans = h.call("GET", "/api/sip/bans", Some(&admin), None);
    assert_eq!((bans.status, bans.json()["items"].is_array()), (200, true));
    assert_eq!(h.call("GET", "/api/sip/bans", Some(&kid), None).status, 403);
}

#[test]
fn rfc3261_8_2_2_2_a_merged_request_gets_482() {
    let h = start_with_phones();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = sock.local_addr().expect("addr").port();
    let first = request("OPTIONS", "m1", port, "");
    let r = exchange(&sock, h.sip(), &first);
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    // The same request (From tag, Call-ID, CSeq) arriving on another branch.
    let forked = first.replace("branch=z9hG4bKm1", "branch=z9hG4bKm1-fork");
    let r = exchange(&sock, h.sip(), &forked);
    assert!(r.starts_with("SIP/2.0 482 "), "{r}");
}
