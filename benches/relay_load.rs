//! RTP relay load: N concurrent G.711 calls (50 packets/s each way, 172
//! bytes) through Homeline's relay engine and, side by side, through
//! rtpengine (Debian's `rtpengine-daemon`, userspace forwarding), on
//! loopback. Prints CPU per call, packet loss and the latency the relay
//! adds over a direct loopback path.
//!
//!   cargo bench --bench relay_load                 # 10, 50, 100 calls, 15 s each
//!   cargo bench --bench relay_load -- 25 50 --secs 20
//!
//! The relay runs in its own process so its CPU can be read from
//! /proc/PID/stat: Homeline's is this binary re-executed with `--serve N`
//! (the production `media::relay` code, signalling excluded: relays latch
//! onto the generator's sockets exactly as onto phones behind NAT);
//! rtpengine is started with `--table=-1` (no kernel module) and given
//! calls through its ng control protocol (offer/answer over UDP, bencode).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PACKET: usize = 172; // 12-byte RTP header + 160 bytes of G.711
const INTERVAL: Duration = Duration::from_millis(20);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
        return serve(n);
    }
    let mut counts: Vec<usize> = Vec::new();
    let mut secs = 15u64;
    let mut it = args.iter().filter(|a| *a != "--bench");
    while let Some(a) = it.next() {
        if a == "--secs" {
            secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(secs);
        } else if let Ok(n) = a.parse() {
            counts.push(n);
        }
    }
    if counts.is_empty() {
        counts = vec![10, 50, 100];
    }
    let rtpengine = which("rtpengine");
    println!(
        "relay load: {secs} s per step, 50 pps each way per call, {PACKET}-byte packets, loopback"
    );
    println!("| calls | relay | CPU % (of one core) | CPU ms/s per call | loss | added latency p50 / p99 |");
    println!("|---|---|---|---|---|---|");
    for &n in &counts {
        let direct = measure_direct(n, secs.min(5));
        let row = run_homeline(n, secs, &direct);
        println!("{row}");
        match &rtpengine {
            Some(bin) => println!("{}", run_rtpengine(bin, n, secs, &direct)),
            None => println!(
                "| {n} | rtpengine | not installed (apt-get install rtpengine-daemon) | | | |"
            ),
        }
    }
}

/// `--serve N`: N relays of the production code; prints their port pairs.
fn serve(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let pool = homeline::media::ports::PortPool::new(
            "127.0.0.1".parse().unwrap(),
            40000,
            40000 + 4 * n as u16 + 8,
        );
        let music = homeline::media::music::HoldMusic::default_tune();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut relays = Vec::new();
        for i in 0..n {
            let pairs = [
                pool.allocate().expect("ports"),
                pool.allocate().expect("ports"),
            ];
            let relay = homeline::media::relay::Relay::start(
                i as u64,
                pairs,
                music.clone(),
                Duration::from_secs(3600),
                tx.clone(),
            );
            println!("{} {}", relay.ports[0], relay.ports[1]);
            relays.push(relay);
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        // Until the parent closes stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            while std::io::stdin()
                .read_line(&mut s)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                s.clear();
            }
        })
        .await;
        drop(relays);
    });
}

/// Where each call's two endpoints send to reach the other.
struct CallPath {
    /// Caller's socket sends to this address (the relay's A side).
    a_to: SocketAddr,
    /// Callee's socket sends to this address (the relay's B side).
    b_to: SocketAddr,
}

struct Stats {
    sent: u64,
    received: u64,
    latencies_us: Vec<u64>,
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends 50 pps each way on every call for `secs` (after a 1 s warm-up
/// that lets relays latch), counting what arrives and how late.
fn drive(sockets: &[(UdpSocket, UdpSocket)], paths: &[CallPath], secs: u64) -> Stats {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats {
        sent: 0,
        received: 0,
        latencies_us: Vec::new(),
    }));
    let all: Vec<UdpSocket> = sockets
        .iter()
        .flat_map(|(a, b)| [a.try_clone().expect("clone"), b.try_clone().expect("clone")])
        .collect();
    // One receiver thread polls every socket (non-blocking).
    let receiver = {
        let (stop, measuring, stats) = (stop.clone(), measuring.clone(), stats.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut local: Vec<u64> = Vec::with_capacity(1 << 20);
            let mut received = 0u64;
            for s in &all {
                s.set_nonblocking(true).expect("nonblocking");
            }
            while !stop.load(Ordering::Relaxed) {
                let mut idle = true;
                for s in &all {
                    while let Ok(n) = s.recv(&mut buf) {
                        idle = false;
                        if n >= 20 && measuring.load(Ordering::Relaxed) {
                            let sent_us = u64::from_be_bytes(buf[12..20].try_into().unwrap());
                            let now_us = start.elapsed().as_micros() as u64;
                            local.push(now_us.saturating_sub(sent_us));
                            received += 1;
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            let mut st = stats.lock().unwrap();
            st.received = received;
            st.latencies_us = local;
        })
    };
    let mut packet = [0u8; PACKET];
    packet[0] = 0x80;
    let mut seq: u16 = 0;
    let mut next = Instant::now();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(secs);
    let mut sent = 0u64;
    // The last packets of the window get 200 ms to arrive.
    while Instant::now() < end {
        let m = Instant::now() >= warm_until;
        measuring.store(m, Ordering::Relaxed);
        seq = seq.wrapping_add(1);
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&(seq as u32 * 160).to_be_bytes());
        for (i, ((a, b), p)) in sockets.iter().zip(paths).enumerate() {
            packet[8..12].copy_from_slice(&(i as u32).to_be_bytes());
            let now_us = start.elapsed().as_micros() as u64;
            packet[12..20].copy_from_slice(&now_us.to_be_bytes());
            let _ = a.send_to(&packet, p.a_to);
            let _ = b.send_to(&packet, p.b_to);
            if m {
                sent += 2;
            }
        }
        next += INTERVAL;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    measuring.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let mut st = Arc::try_unwrap(stats).ok().unwrap().into_inner().unwrap();
    st.sent = sent;
    st
}

fn endpoints(n: usize) -> Vec<(UdpSocket, UdpSocket)> {
    (0..n)
        .map(|_| {
            let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
            (a, b)
        })
        .collect()
}

/// Latency of loopback itself (each endpoint sends straight to the other).
fn measure_direct(n: usize, secs: u64) -> (u64, u64) {
    let socks = endpoints(n);
    let paths: Vec<CallPath> = socks
        .iter()
        .map(|(a, b)| CallPath {
            a_to: b.local_addr().unwrap(),
            b_to: a.local_addr().unwrap(),
        })
        .collect();
    let mut st = drive(&socks, &paths, secs);
    (
        percentile(&mut st.latencies_us, 0.5),
        percentile(&mut st.latencies_us, 0.99),
    )
}

/// User + system CPU time of a process, in clock ticks (100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0], utime [11], stime [12].
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn report(
    n: usize,
    name: &str,
    pid: u32,
    socks: &[(UdpSocket, UdpSocket)],
    paths: &[CallPath],
    secs: u64,
    direct: &(u64, u64),
) -> String {
    // Warm-up traffic happens inside drive(); CPU is read around it and
    // scaled to the measured window (the warm-up second is included, so the
    // figure is slightly pessimistic).
    let t0 = cpu_ticks(pid);
    let wall = Instant::now();
    let mut st = drive(socks, paths, secs);
    let ticks = cpu_ticks(pid) - t0;
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu_pct = ticks as f64 / elapsed; // ticks are 1/100 s: ticks/s == percent
    let loss = if st.sent == 0 {
        100.0
    } else {
        100.0 * (st.sent.saturating_sub(st.received)) as f64 / st.sent as f64
    };
    let p50 = percentile(&mut st.latencies_us, 0.5);
    let p99 = percentile(&mut st.latencies_us, 0.99);
    format!(
        "| {n} | {name} | {cpu_pct:.1} % | {:.2} | {loss:.3} % ({} of {}) | {} µs / {} µs |",
        cpu_pct * 10.0 / n as f64,
        st.sent.saturating_sub(st.received),
        st.sent,
        p50.saturating_sub(direct.0),
        p99.saturating_sub(direct.1),
    )
}

fn run_homeline(n: usize, secs: u64, direct: &(u64, u64)) -> String {
    let exe = std::env::current_exe().expect("exe");
    let mut child: Child = Command::new(exe)
        .args(["--serve", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let out = child.stdout.take().expect("stdout");
    let mut ports = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if line == "ready" {
            break;
        }
        let mut it = line
            .split_whitespace()
            .map(|p| p.parse::<u16>().expect("port"));
        ports.push((it.next().unwrap(), it.next().unwrap()));
    }
    let socks = endpoints(n);
    let paths: Vec<CallPath> = ports
        .iter()
        .map(|(a, b)| CallPath {
            a_to: ([127, 0, 0, 1], *a).into(),
            b_to: ([127, 0, 0, 1], *b).into(),
        })
        .collect();
    let row = report(n, "Homeline", child.id(), &socks, &paths, secs, direct);
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    row
}

fn which(bin: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A bencoded dictionary of strings (all the ng protocol needs here).
fn bencode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    let mut sorted = pairs.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        out.extend(format!("{}:{}{}:{}", k.len(), k, v.len(), v).as_bytes());
    }
    out.push(b'e');
    out
}

/// The `m=audio` port of the SDP in an ng reply.
fn sdp_port(reply: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(reply);
    let i = text.find("m=audio ")?;
    text[i + 8..].split_whitespace().next()?.parse().ok()
}

fn run_rtpengine(bin: &str, n: usize, secs: u64, direct: &(u64, u64)) -> String {
    let ng = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let ng_port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut child = Command::new(bin)
        .args([
            "--foreground",
            "--interface=127.0.0.1",
            &format!("--listen-ng=127.0.0.1:{ng_port}"),
            "--table=-1",
            "--port-min=42000",
            &format!("--port-max={}", 42000 + 4 * n + 16),
            "--log-level=3",
            "--log-stderr",
            "--num-threads=1",
            "--delete-delay=0",
            "--pidfile=/dev/null",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rtpengine");
    std::thread::sleep(Duration::from_millis(700));
    ng.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let socks = endpoints(n);
    let mut paths = Vec::new();
    let mut buf = [0u8; 65535];
    for (i, (a, b)) in socks.iter().enumerate() {
        let sdp = |port: u16| {
            format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        };
        let call_id = format!("bench-{i}");
        let mut ask = |cmd: &str, sdp: String, to_tag: bool| -> Option<u16> {
            let mut pairs = vec![
                ("command", cmd),
                ("call-id", call_id.as_str()),
                ("from-tag", "caller"),
                ("sdp", sdp.as_str()),
            ];
            if to_tag {
                pairs.push(("to-tag", "callee"));
            }
            let mut msg = format!("c{i}{cmd} ").into_bytes();
            msg.extend(bencode(&pairs));
            ng.send_to(&msg, ("127.0.0.1", ng_port)).ok()?;
            let (len, _) = ng.recv_from(&mut buf).ok()?;
            sdp_port(&buf[..len])
        };
        // The offer's answer is what the callee sends to; the answer's, the caller.
        let (Some(to_b), Some(to_a)) = (
            ask("offer", sdp(a.local_addr().unwrap().port()), false),
            ask("answer", sdp(b.local_addr().unwrap().port()), true),
        ) else {
            let _ = child.kill();
            let _ = child.wait();
            return format!(
                "| {n} | rtpengine | ng control failed (is port {ng_port} free?) | | | |"
            );
        };
        paths.push(CallPath {
            a_to: ([127, 0, 0, 1], to_a).into(),
            b_to: ([127, 0, 0, 1], to_b).into(),
        });
    }
    let row = report(
        n,
        "rtpengine (userspace)",
        child.id(),
        &socks,
        &paths,
        secs,
        direct,
    );
    let _ = child.kill();
    let _ = child.wait();
    row
}
