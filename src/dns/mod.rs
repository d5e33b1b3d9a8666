//! Name resolution that never blocks the SIP loop.
//!
//! The SIP endpoint is one task: if it awaited a DNS answer, a slow or dead
//! resolver would freeze every registration, call and timer until the
//! watchdog restarted the service. So the loop only ever asks
//! [`Resolver::lookup`], which answers at once from the cache (or for an IP
//! literal), or starts a lookup on its own task and says
//! [`Lookup::Pending`]. That task always finishes — with addresses, an
//! error, or [`DnsError::Timeout`] once the budget in `resolv.conf` (capped
//! by [`crate::constants::DNS_LOOKUP_LIMIT`]) is spent — and its
//! [`Resolved`] comes back to the loop as an event, which hands it to
//! [`Resolver::finish`].
//!
//! Only A and AAAA records are asked (Twilio's SIP Domains are plain host
//! names: no SRV/NAPTR). Answers are cached for their TTL ([`cache`]).
//! The servers come from `resolv.conf` ([`conf`]); `/etc/hosts` is
//! consulted first, as getaddrinfo does. The wire format is [`wire`]; we
//! speak it ourselves over UDP because the lookups are few, the records
//! simple, and the TTLs (which getaddrinfo hides) are what the cache needs.

pub mod cache;
pub mod conf;
pub mod wire;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::constants::DNS_LOOKUP_LIMIT;
use cache::Cache;
use conf::ResolvConf;
use wire::{RecordType, WireError};

/// How long a name found in `/etc/hosts` is cached.
const HOSTS_TTL: Duration = Duration::from_secs(30);
/// Once one family answered with addresses, the other gets this much longer.
const SECOND_FAMILY_GRACE: Duration = Duration::from_millis(250);

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No server answered in time.
    #[error("DNS lookup timed out")]
    Timeout,
    /// The name has no A or AAAA record.
    #[error("no address for this name")]
    NotFound,
    /// The servers answered with errors (SERVFAIL…) or garbage.
    #[error("DNS lookup failed: {0}")]
    Failed(String),
}

/// Where the resolver's configuration lives.
#[derive(Debug, Clone)]
pub struct ResolverFiles {
    /// `resolv.conf(5)`: the servers (`dns.resolv_conf`).
    pub resolv_conf: PathBuf,
    /// `hosts(5)`.
    pub hosts: PathBuf,
}

impl ResolverFiles {
    /// The system's files, with resolv.conf at `resolv_conf`.
    pub fn system(resolv_conf: PathBuf) -> ResolverFiles {
        ResolverFiles {
            resolv_conf,
            hosts: PathBuf::from("/etc/hosts"),
        }
    }
}

/// A finished lookup, on its way back to the loop.
#[derive(Debug)]
pub struct Resolved {
    /// The name as it was asked for.
    pub name: String,
    /// Its addresses (IPv4 first) and how long they may be kept.
    pub result: Result<(Vec<IpAddr>, Duration), DnsError>,
}

/// The loop's answer to a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Known now.
    Ready(Vec<IpAddr>),
    /// Being looked up: a [`Resolved`] for this name will arrive.
    Pending,
}

/// The loop's side of name resolution: the cache and the lookups in flight.
pub struct Resolver {
    files: ResolverFiles,
    cache: Cache,
    in_flight: HashSet<String>,
    done: mpsc::UnboundedSender<Resolved>,
}

impl Resolver {
    /// A resolver whose finished lookups arrive on the returned channel.
    pub fn new(files: ResolverFiles) -> (Resolver, mpsc::UnboundedReceiver<Resolved>) {
        let (done, rx) = mpsc::unbounded_channel();
        let r = Resolver {
            files,
            cache: Cache::default(),
            in_flight: HashSet::new(),
            done,
        };
        (r, rx)
    }

    /// `name`'s addresses if known, else starts (or joins) a lookup.
    /// Never waits.
    pub fn lookup(&mut self, name: &str, now: Instant) -> Lookup {
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Lookup::Ready(vec![ip]);
        }
        if let Some(addrs) = self.cache.get(name, now) {
            return Lookup::Ready(addrs.to_vec());
        }
        let key = name.to_ascii_lowercase();
        if self.in_flight.insert(key) {
            let files = self.files.clone();
            let done = self.done.clone();
            let name = name.to_string();
            tokio::spawn(async move {
                let result =
                    match tokio::time::timeout(DNS_LOOKUP_LIMIT, resolve(&name, &files)).await {
                        Ok(r) => r,
                        Err(_) => Err(DnsError::Timeout),
                    };
                let _ = done.send(Resolved { name, result });
            });
        }
        Lookup::Pending
    }

    /// Takes a finished lookup in: caches its addresses and returns them.
    pub fn finish(&mut self, r: Resolved, now: Instant) -> Result<Vec<IpAddr>, DnsError> {
        self.in_flight.remove(&r.name.to_ascii_lowercase());
        let (addrs, ttl) = r.result?;
        self.cache.insert(&r.name, addrs.clone(), ttl, now);
        Ok(addrs)
    }
}

/// Looks `name` up: `/etc/hosts`, then each server of resolv.conf in turn,
/// `attempts` rounds, each server waited for `timeout`.
async fn resolve(name: &str, files: &ResolverFiles) -> Result<(Vec<IpAddr>, Duration), DnsError> {
    let hosts = tokio::fs::read_to_string(&files.hosts)
        .await
        .unwrap_or_default();
    let mut found = conf::hosts_lookup(&hosts, name);
    if !found.is_empty() {
        found.sort_by_key(|ip| ip.is_ipv6());
        return Ok((found, HOSTS_TTL));
    }
    let text = tokio::fs::read_to_string(&files.resolv_conf)
        .await
        .unwrap_or_default();
    resolve_with(name, &ResolvConf::parse(&text)).await
}

/// Asks the servers of `conf` for `name`'s A and AAAA records.
pub async fn resolve_with(
    name: &str,
    conf: &ResolvConf,
) -> Result<(Vec<IpAddr>, Duration), DnsError> {
    let mut last = DnsError::Timeout;
    for _ in 0..conf.attempts {
        for &server in &conf.servers {
            match exchange(server, name, conf.timeout).await {
                Ok(found) => return Ok(found),
                // The name does not exist: asking elsewhere will not help.
                Err(DnsError::NotFound) => return Err(DnsError::NotFound),
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// One server, both families, one socket: A and AAAA asked at once.
async fn exchange(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<(Vec<IpAddr>, Duration), DnsError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let failed = |e: std::io::Error| DnsError::Failed(e.to_string());
    let socket = UdpSocket::bind(bind).await.map_err(failed)?;
    // Connected: datagrams from anywhere but the server are not delivered.
    socket.connect(server).await.map_err(failed)?;
    let rng = SystemRandom::new();
    let mut asks = Vec::new();
    for rtype in [RecordType::A, RecordType::Aaaa] {
        let mut id = [0u8; 2];
        let _ = rng.fill(&mut id);
        let id = u16::from_be_bytes(id);
        let q = wire::query(id, name, rtype).map_err(|e| DnsError::Failed(e.to_string()))?;
        socket.send(&q).await.map_err(failed)?;
        asks.push((id, rtype));
    }
    let mut deadline = Instant::now() + timeout;
    let mut answers: [Option<Result<wire::Answer, WireError>>; 2] = [None, None];
    let mut buf = vec![0u8; 4096];
    while answers.iter().any(Option::is_none) {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            // ICMP port unreachable and the like: this server is no use.
            Ok(Err(e)) => return Err(failed(e)),
            Err(_) => break,
        };
        for (i, (id, rtype)) in asks.iter().enumerate() {
            if answers[i].is_some() {
                continue;
            }
            match wire::parse_answer(&buf[..n], *id, name, *rtype) {
                Err(WireError::NotOurs) | Err(WireError::Malformed) => continue,
                got => {
                    let has_addrs = matches!(&got, Ok(a) if !a.addrs.is_empty());
                    answers[i] = Some(got);
                    if has_addrs {
                        deadline = deadline.min(Instant::now() + SECOND_FAMILY_GRACE);
                    }
                    break;
                }
            }
        }
    }
    let mut addrs = Vec::new();
    let mut ttl: Option<Duration> = None;
    let mut nxdomain = false;
    let mut error = None;
    for a in answers.iter().flatten() {
        match a {
            Ok(a) if !a.addrs.is_empty() => {
                addrs.extend(a.addrs.iter().copied());
                ttl = Some(ttl.map_or(a.ttl, |t| t.min(a.ttl)));
            }
            Ok(_) => {}
            Err(WireError::NoSuchName) => nxdomain = true,
            Err(e) => error = Some(e.to_string()),
        }
    }
    if !addrs.is_empty() {
        return Ok((addrs, ttl.unwrap_or_default()));
    }
    if nxdomain || (error.is_none() && answers.iter().all(Option::is_some)) {
        return Err(DnsError::NotFound);
    }
    match error {
        Some(e) => Err(DnsError::Failed(e)),
        None => Err(DnsError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::wire::build::{answer, Data};
    use super::*;

    const NAME: &str = "home.sip.twilio.com";

    /// A DNS server on loopback: answers A queries with `a`, AAAA with `aaaa`
    /// (None: swallows them); counts the queries it saw.
    async fn server(
        a: Option<Vec<(u32, IpAddr)>>,
        aaaa: Option<Vec<(u32, IpAddr)>>,
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let q = &buf[..n];
                let qtype = u16::from_be_bytes([q[n - 4], q[n - 3]]);
                let records = if qtype == 1 { &a } else { &aaaa };
                if let Some(records) = records {
                    let rr: Vec<(&str, u32, Data)> = records
                        .iter()
                        .map(|(ttl, ip)| (NAME, *ttl, Data::Addr(*ip)))
                        .collect();
                    let _ = s.send_to(&answer(q, 0, &rr), from).await;
                }
            }
        });
        (addr, seen)
    }

    fn conf(server: SocketAddr, timeout_ms: u64) -> ResolvConf {
        ResolvConf {
            servers: vec![server],
            timeout: Duration::from_millis(timeout_ms),
            attempts: 2,
        }
    }

    #[tokio::test]
    async fn both_families_come_back_ipv4_first_with_the_smaller_ttl() {
        let (addr, _) = server(
            Some(vec![(120, "192.0.2.10".parse().unwrap())]),
            Some(vec![(30, "2001:db8::10".parse().unwrap())]),
        )
        .await;
        let (addrs, ttl) = resolve_with(NAME, &conf(addr, 1000)).await.unwrap();
        assert_eq!(
            addrs,
            vec![
                "192.0.2.10".parse::<IpAddr>().unwrap(),
                "2001:db8::10".parse().unwrap()
            ]
        );
        assert_eq!(ttl, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_after_its_budget() {
        let (addr, seen) = server(None, None).await;
        let started = std::time::Instant::now();
        let got = resolve_with(NAME, &conf(addr, 200)).await;
        let took = started.elapsed();
        assert_eq!(got, Err(DnsError::Timeout));
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
            "two attempts of 200 ms: {took:?}"
        );
        assert_eq!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "A+AAAA twice"
        );
    }

    #[tokio::test]
    async fn a_missing_aaaa_answer_costs_only_the_grace_period() {
        let (addr, _) = server(Some(vec![(60, "192.0.2.11".parse().unwrap())]), None).await;
        let started = std::time::Instant::now();
        let (addrs, _) = resolve_with(NAME, &conf(addr, 3000)).await.unwrap();
        assert_eq!(addrs, vec!["192.0.2.11".parse::<IpAddr>().unwrap()]);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn no_records_is_not_found() {
        let (addr, _) = server(Some(vec![]), Some(vec![])).await;
        assert_eq!(
            resolve_with(NAME, &conf(addr, 1000)).await,
            Err(DnsError::NotFound)
        );
    }

    #[tokio::test]
    async fn the_loop_side_answers_at_once_then_from_the_cache() {
        // The servers' side is tested through resolve_with above (resolv.conf
        // cannot name a port); here a hosts entry stands in for an answer.
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("resolv.conf");
        std::fs::write(&rc, "nameserver 192.0.2.53\n").unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "192.0.2.13 pbx-edge.test\n").unwrap();
        let (mut r, mut done) = Resolver::new(ResolverFiles {
            resolv_conf: rc,
            hosts,
        });
        let now = Instant::now();
        assert_eq!(
            r.lookup("192.0.2.1", now),
            Lookup::Ready(vec!["192.0.2.1".parse().unwrap()])
        );
        assert_eq!(
            r.lookup("[2001:db8::1]", now),
            Lookup::Ready(vec!["2001:db8::1".parse().unwrap()])
        );
        assert_eq!(r.lookup("pbx-edge.test", now), Lookup::Pending);
        assert_eq!(
            r.lookup("PBX-edge.test", now),
            Lookup::Pending,
            "joined, not a second lookup"
        );
        let resolved = done.recv().await.unwrap();
        assert_eq!(resolved.name, "pbx-edge.test");
        assert_eq!(
            r.finish(resolved, now),
            Ok(vec!["192.0.2.13".parse::<IpAddr>().unwrap()])
        );
        assert!(done.try_recv().is_err(), "one lookup for both asks");
        assert_eq!(
            r.lookup("pbx-edge.test", now + Duration::from_secs(29)),
            Lookup::Ready(vec!["192.0.2.13".parse().unwrap()])
        );
        assert_eq!(r.lookup("pbx-edge.test", now + HOSTS_TTL), Lookup::Pending);
    }
}
