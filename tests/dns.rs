//! The SIP loop never waits on DNS: with the appliance's resolver pointed
//! at a server that swallows every query (in a private network namespace,
//! so it can own port 53), an outgoing call waits for Twilio's SIP Domain
//! while phones keep registering promptly, and the call fails cleanly (503
//! to the phone, a CDR) once the lookup times out.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{provision_household, setup_admin, Homeline, SippRun, Start};

/// Registration answers must come within this while a call waits on DNS.
const REGISTER_WITHIN: Duration = Duration::from_millis(50);

/// One REGISTER transaction from `sock`: the answer's status line and
/// headers, and how long it took.
fn transact(sock: &UdpSocket, sip: SocketAddr, msg: &str) -> (String, Duration) {
    let started = Instant::now();
    sock.send_to(msg.as_bytes(), sip).expect("send");
    let mut buf = [0u8; 8192];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to REGISTER");
    (
        String::from_utf8_lossy(&buf[..n]).to_string(),
        started.elapsed(),
    )
}

/// A full digest registration of `user`: REGISTER, 401, REGISTER with
/// credentials, 200; returns the slower of the two round trips.
fn register(sip: SocketAddr, user: &str, password: &str, n: usize) -> Duration {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let uri = format!("sip:{}", sip);
    let request = |cseq: u32, auth: Option<&str>| {
        format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-dns-{n}-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{sip}>;tag=dns{n}\r\n\
             To: <sip:{user}@{sip}>\r\n\
             Call-ID: dns-test-{n}@127.0.0.1\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@127.0.0.1:{port}>\r\n\
             Expires: 300\r\n\
             {}Content-Length: 0\r\n\r\n",
            auth.map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default()
        )
    };
    let (challenge, first) = transact(&sock, sip, &request(1, None));
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let www = challenge
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .expect("a challenge");
    let auth =
        homeline::sip::auth::answer_challenge(www, "REGISTER", &uri, user, password, "c0ffee")
            .expect("answerable challenge");
    let (ok, second) = transact(&sock, sip, &request(2, Some(&auth)));
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    first.max(second)
}

/// A UDP "DNS server" on 127.0.0.1:53 that reads queries and never answers.
fn swallowing_resolver() -> Arc<AtomicUsize> {
    let sock = UdpSocket::bind("127.0.0.1:53").expect("bind port 53 in the namespace");
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while sock.recv_from(&mut buf).is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    seen
}

#[test]
fn a_dead_resolver_never_stalls_registrations_and_the_call_fails_with_503() {
    // Namespaces belong to threads: this thread, and every process it
    // starts, moves into a fresh network namespace.
    std::thread::spawn(|| {
        let isolated = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_ok()
            && std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .is_ok_and(|s| s.success());
        if !isolated {
            eprintln!(
                "SKIPPED: needs root to create a network namespace (port 53 for the resolver)"
            );
            return;
        }
        run();
    })
    .join()
    .expect("run in a namespace");
}

fn run() {
    let queries = swallowing_resolver();
    let dir = tempfile::tempdir().expect("tempdir");
    provision_household(
        dir.path(),
        "+15550001111",
        &[("kitchen", "kitchenpw"), ("hall", "hallpw")],
    );
    // Two attempts of one second: the lookup gives up after ~2 s.
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
    )
    .unwrap();
    let h = Homeline::start_with(Start {
        env: vec![
            ("HOMELINE_MEDIA_RTP_PORTS".into(), "23600-23619".into()),
            (
                "HOMELINE_DNS_RESOLV_CONF".into(),
                resolv.to_string_lossy().to_string(),
            ),
        ],
        dir: Some(dir),
        ..Start::default()
    });
    let admin = setup_admin(&h, "admin@home.test", "correct horse battery");
    let sip = h.sip();
    let idle = register(sip, "hall", "hallpw", 0);
    eprintln!("registration round trip, idle: {idle:?}");

    let started = Instant::now();
    let phone = SippRun::spawn(
        Some(sip),
        "uac_invite_503.xml",
        &[
            "-s",
            "(415)555-0100",
            "-key",
            "caller",
            "kitchen",
            "-au",
            "kitchen",
            "-ap",
            "kitchenpw",
        ],
    );
    // The call is waiting on DNS once the resolver has seen its queries.
    assert!(
        common::wait_for(Duration::from_secs(5), || (queries.load(Ordering::SeqCst)
            > 0)
        .then_some(()))
        .is_some(),
        "the SIP Domain is looked up at the configured server"
    );
    let waiting_since = Instant::now();
    let mut worst = Duration::ZERO;
    let mut n = 1;
    while waiting_since.elapsed() < Duration::from_millis(1500) {
        let took = register(sip, "hall", "hallpw", n);
        assert!(
            took < REGISTER_WITHIN,
            "REGISTER answered in {took:?} while a call waits on DNS (limit {REGISTER_WITHIN:?})"
        );
        worst = worst.max(took);
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{} registrations while the call waited on DNS, slowest round trip {worst:?}",
        n - 1
    );
    // Meanwhile the call is listed, still ringing.
    let calls = h.call("GET", "/api/calls", Some(&admin), None).json();
    assert_eq!(calls["items"][0]["state"], "ringing", "{calls}");

    let (code, out) = phone.wait(Duration::from_secs(20));
    let failed_after = started.elapsed();
    assert_eq!(code, 0, "the phone gets a 503: {out}");
    assert!(
        failed_after >= Duration::from_millis(1800) && failed_after < Duration::from_secs(8),
        "the 503 comes when the lookup gives up (two 1 s attempts), after {failed_after:?}"
    );
    let rows = common::wait_for(Duration::from_secs(3), || {
        let r = h.call("GET", "/api/cdrs", Some(&admin), None).json();
        let items = r["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .expect("a call record");
    assert_eq!(rows[0]["direction"], "outbound", "{:?}", rows[0]);
    assert_eq!(rows[0]["disposition"], "failed", "{:?}", rows[0]);
    assert_eq!(rows[0]["to_number"], "+14155550100", "{:?}", rows[0]);
    assert!(
        rows[0]["hangup_cause"]
            .as_str()
            .is_some_and(|c| c.contains("could not be resolved")),
        "{:?}",
        rows[0]
    );
    // Nothing left behind, and the appliance still answers.
    let calls = h.call("GET", "/api/calls", Some(&admin), None).json();
    assert_eq!(calls["items"].as_array().map(Vec::len), Some(0), "{calls}");
    let after = register(sip, "hall", "hallpw", 10_000);
    assert!(after < REGISTER_WITHIN, "{after:?}");
}
