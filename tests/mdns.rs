//! The mDNS responder of the real binary, seen from another host: two
//! network namespaces joined by a veth pair, Homeline in one with mDNS on,
//! `dig` and a small querier in the other. Nothing leaves the namespaces.
//! Needs root (`ip netns add`); skipped with a message otherwise.
//!
//! `dig` asks the responder's address on port 5353 (a direct unicast
//! query, RFC 6762 §5.5): dig 9.18 drops answers whose source is not the
//! address it asked, so `dig @224.0.0.251` never shows the (correct)
//! answer from the host's own address. The group itself is asked by the
//! querier here, both as a legacy resolver (random port) and as an mDNS
//! peer (port 5353, multicast answer).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use homeline::mdns::message::{rtype, Data, Message, Name, Outgoing, Question, Record};
use socket2::{Domain, Protocol, Socket, Type};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// Two namespaces `a` and `b` joined by veth `10.<net>.0.1/24` (in `a`) and
/// `10.<net>.0.2/24` (in `b`); removed on drop, also when a test fails.
struct Link {
    a: String,
    b: String,
    a_ip: Ipv4Addr,
    b_ip: Ipv4Addr,
}

impl Link {
    fn new(tag: &str, net: u8) -> Option<Link> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("SKIPPED: the mDNS namespace tests need root (ip netns add)");
            return None;
        }
        let pid = std::process::id();
        let link = Link {
            a: format!("hl-{tag}-a-{pid}"),
            b: format!("hl-{tag}-b-{pid}"),
            a_ip: Ipv4Addr::new(10, net, 0, 1),
            b_ip: Ipv4Addr::new(10, net, 0, 2),
        };
        let (va, vb) = (
            format!("hl{tag}a{}", pid % 10000),
            format!("hl{tag}b{}", pid % 10000),
        );
        ip(&["netns", "add", &link.a]);
        ip(&["netns", "add", &link.b]);
        ip(&[
            "link", "add", &va, "netns", &link.a, "type", "veth", "peer", "name", &vb, "netns",
            &link.b,
        ]);
        for (ns, dev, addr) in [(&link.a, &va, link.a_ip), (&link.b, &vb, link.b_ip)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            // Multicast leaves by this link (there is no default route).
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev]);
        }
        Some(link)
    }

    /// Runs `f` on a thread inside namespace `b`.
    fn in_b<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.b);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// `dig` from namespace `b` to port 5353 of namespace `a`'s address,
    /// from a random port (a legacy unicast query); its `+short` lines.
    fn dig(&self, name: &str, qtype: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.b, "dig", "-p", "5353", "+notcp"])
            .arg(format!("@{}", self.a_ip))
            .args(["+time=1", "+tries=1", "+short", name, qtype])
            .output()
            .expect("run dig (Debian package bind9-dnsutils)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(str::to_string)
            .collect()
    }

    /// Polls `dig` until it answers, for at most `within`.
    fn dig_until(&self, name: &str, qtype: &str, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let got = self.dig(name, qtype);
            if !got.is_empty() || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The appliance's process, stopped (SIGKILL) if a test fails before
/// [`stop`]: it would outlive its namespace otherwise.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Homeline in namespace `a` with mDNS on; its HTTP port.
fn start_in_a(link: &Link, dir: &Path, env: &[(&str, &str)]) -> (Running, u16) {
    let log = std::fs::File::create(dir.join("server.log")).expect("log");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &link.a, common::BIN, "run", "--data-dir"])
        .arg(dir)
        .args(["--http-listen", "0.0.0.0:0", "--sip-listen", "127.0.0.1:0"])
        .args(["--sip-tls-listen", "", "--log-target", "stderr"])
        .env("HOMELINE_CONFIG_FILE", "")
        .env("HOMELINE_MDNS_ENABLED", "true")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Running(Some(cmd.spawn().expect("start homeline")));
    let ports = dir.join("run/ports.json");
    let port = common::wait_for(Duration::from_secs(20), || {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&ports).ok()?).ok()?;
        v["http"]
            .as_str()?
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.port())
    })
    .expect("homeline wrote run/ports.json");
    (child, port)
}

fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// SIGTERM, as systemd stops it, and waits for the exit.
fn stop(mut running: Running) {
    let Some(mut child) = running.0.take() else {
        return;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An mDNS socket on port 5353 in the calling thread's namespace, in the
/// group on the interface with `local`.
fn mdns_socket(local: Ipv4Addr) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5353)).into())
        .unwrap();
    s.join_multicast_v4(&GROUP, &local).unwrap();
    s.set_multicast_if_v4(&local).unwrap();
    s.set_multicast_ttl_v4(255).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.into()
}

/// Every mDNS message received from `from` while `running`.
fn capture(sock: &UdpSocket, from: Ipv4Addr, running: &AtomicBool, into: &Mutex<Vec<Message>>) {
    let mut buf = [0u8; 9000];
    while running.load(Ordering::Relaxed) {
        if let Ok((n, SocketAddr::V4(src))) = sock.recv_from(&mut buf) {
            if *src.ip() == from {
                if let Ok(m) = Message::parse(&buf[..n]) {
                    into.lock().unwrap().push(m);
                }
            }
        }
    }
}

fn has(m: &Message, name: &str, t: u16) -> bool {
    m.answers
        .iter()
        .any(|r| r.name == Name::dotted(name) && r.rtype == t)
}

#[test]
fn homeline_local_and_the_web_ui_are_found_from_another_host() {
    let Some(link) = Link::new("md", 213) else {
        return;
    };
    // A listener on the other host sees the probes, announcements and goodbye.
    let running = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (b_ip, a_ip) = (link.b_ip, link.a_ip);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let listener = {
        let (running, seen) = (running.clone(), seen.clone());
        link.in_b(move || {
            let sock = mdns_socket(b_ip);
            ready_tx.send(()).unwrap();
            capture(&sock, a_ip, &running, &seen);
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("listener up");

    let dir = tempfile::tempdir().unwrap();
    let (child, http_port) = start_in_a(&link, dir.path(), &[]);

    let a = link.dig_until("homeline.local", "A", Duration::from_secs(10));
    assert_eq!(
        a,
        vec![link.a_ip.to_string()],
        "A; log:\n{}",
        server_log(dir.path())
    );
    let ptr = link.dig("_http._tcp.local", "PTR");
    assert_eq!(ptr, vec!["Homeline._http._tcp.local.".to_string()]);
    let srv = link.dig("Homeline._http._tcp.local", "SRV");
    assert_eq!(srv, vec![format!("0 0 {http_port} homeline.local.")]);
    let txt = link.dig("Homeline._http._tcp.local", "TXT");
    assert_eq!(txt, vec!["\"path=/\"".to_string()]);
    let services = link.dig("_services._dns-sd._udp.local", "PTR");
    assert_eq!(services, vec!["_http._tcp.local.".to_string()]);
    assert!(
        link.dig("other.local", "A").is_empty(),
        "only our names are answered"
    );

    // A legacy resolver asking the group from a random port gets a unicast
    // answer with its ID, from the responder's address.
    let legacy = {
        let b_ip = link.b_ip;
        link.in_b(move || {
            let sock = UdpSocket::bind((b_ip, 0)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let query = Outgoing {
                id: 0x5151,
                questions: vec![Question {
                    name: Name::dotted("homeline.local"),
                    qtype: rtype::A,
                    unicast_response: false,
                }],
                ..Outgoing::default()
            };
            sock.send_to(&query.encode(), SocketAddrV4::new(GROUP, 5353))
                .unwrap();
            let mut buf = [0u8; 9000];
            let (n, src) = sock.recv_from(&mut buf).ok()?;
            Some((Message::parse(&buf[..n]).ok()?, src))
        })
        .join()
        .unwrap()
    };
    let (m, src) = legacy.expect("a unicast answer to a legacy query of the group");
    assert_eq!(src, SocketAddr::from((link.a_ip, 5353)));
    assert_eq!(m.id, 0x5151);
    assert_eq!(m.questions.len(), 1, "the question is echoed");
    assert_eq!(m.answers[0].data, Data::A(link.a_ip));
    assert!(m.answers[0].ttl <= 10 && !m.answers[0].cache_flush);

    // A standard mDNS query (from port 5353, multicast answer) for the
    // service gets the instance with its SRV, TXT and address.
    let answer = {
        let b_ip = link.b_ip;
        link.in_b(move || {
            let sock = mdns_socket(b_ip);
            let query = Outgoing {
                questions: vec![Question {
                    name: Name::dotted("_http._tcp.local"),
                    qtype: rtype::PTR,
                    unicast_response: false,
                }],
                ..Outgoing::default()
            };
            sock.send_to(&query.encode(), SocketAddrV4::new(GROUP, 5353))
                .unwrap();
            let until = Instant::now() + Duration::from_secs(3);
            let mut buf = [0u8; 9000];
            while Instant::now() < until {
                if let Ok((n, src)) = sock.recv_from(&mut buf) {
                    if src.ip() == std::net::IpAddr::V4(a_ip) {
                        if let Ok(m) = Message::parse(&buf[..n]) {
                            if m.is_response && has(&m, "_http._tcp.local", rtype::PTR) {
                                return Some((m, buf[..n].to_vec()));
                            }
                        }
                    }
                }
            }
            None
        })
        .join()
        .unwrap()
    };
    let (_, raw) = answer.expect("a multicast answer to a PTR query");
    let full = homeline::mdns::message::Message::parse(&raw).unwrap();
    assert_eq!(
        full.answers[0].data,
        Data::Ptr(Name::dotted("Homeline._http._tcp.local"))
    );
    // The additional records are not read by Message; their presence is
    // seen in the raw datagram: SRV target and A address.
    assert!(
        raw.windows(4).any(|w| w == a_ip.octets()),
        "A in the additional records"
    );
    assert!(
        raw.windows(2).any(|w| w == http_port.to_be_bytes()),
        "SRV port in the additional records"
    );

    stop(child);
    std::thread::sleep(Duration::from_millis(300));
    running.store(false, Ordering::Relaxed);
    listener.join().unwrap();
    let seen = seen.lock().unwrap();
    let probes = seen
        .iter()
        .filter(|m| !m.is_response && !m.authority.is_empty())
        .filter(|m| {
            m.questions
                .iter()
                .any(|q| q.name == Name::dotted("homeline.local"))
        })
        .count();
    assert!(probes >= 3, "three probes, saw {probes}");
    let announcements: Vec<&Message> = seen
        .iter()
        .filter(|m| m.is_response && m.questions.is_empty() && has(m, "homeline.local", rtype::A))
        .filter(|m| m.answers.iter().all(|r| r.ttl > 0))
        .filter(|m| has(m, "_http._tcp.local", rtype::PTR))
        .collect();
    assert!(
        announcements.len() >= 2,
        "two announcements, saw {}",
        announcements.len()
    );
    let a_record: &Record = announcements[0]
        .answers
        .iter()
        .find(|r| r.rtype == rtype::A)
        .unwrap();
    assert_eq!(a_record.data, Data::A(link.a_ip));
    assert!(a_record.cache_flush);
    let goodbye = seen.iter().any(|m| {
        m.is_response && has(m, "homeline.local", rtype::A) && m.answers.iter().all(|r| r.ttl == 0)
    });
    assert!(
        goodbye,
        "a goodbye (TTL 0) at shutdown; log:\n{}",
        server_log(dir.path())
    );
}

#[test]
fn a_taken_name_makes_homeline_take_the_next_one() {
    let Some(link) = Link::new("mc", 214) else {
        return;
    };
    // Another device in namespace b already answers for homeline.local.
    let running = Arc::new(AtomicBool::new(true));
    let b_ip = link.b_ip;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let squatter = {
        let running = running.clone();
        link.in_b(move || {
            let sock = mdns_socket(b_ip);
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 9000];
            while running.load(Ordering::Relaxed) {
                let Ok((n, src)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(m) = Message::parse(&buf[..n]) else {
                    continue;
                };
                if m.is_response
                    || !m
                        .questions
                        .iter()
                        .any(|q| q.name == Name::dotted("homeline.local"))
                {
                    continue;
                }
                let claim = Outgoing {
                    response: true,
                    answers: vec![Record {
                        name: Name::dotted("homeline.local"),
                        rtype: rtype::A,
                        cache_flush: true,
                        ttl: 120,
                        data: Data::A(b_ip),
                    }],
                    ..Outgoing::default()
                };
                let bytes = claim.encode();
                let _ = sock.send_to(&bytes, SocketAddrV4::new(GROUP, 5353));
                let _ = sock.send_to(&bytes, src);
            }
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("squatter up");
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = start_in_a(&link, dir.path(), &[]);
    let a = link.dig_until("homeline-2.local", "A", Duration::from_secs(10));
    let log = server_log(dir.path());
    assert_eq!(a, vec![link.a_ip.to_string()], "log:\n{log}");
    assert!(
        log.contains("another device answers for our host name")
            && log.contains("homeline-2.local"),
        "the rename is logged:\n{log}"
    );
    stop(child);
    running.store(false, Ordering::Relaxed);
    squatter.join().unwrap();
}
