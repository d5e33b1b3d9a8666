//! The responder's socket and life cycle: one UDP socket on port 5353 shared
//! with any other responder on the host (SO_REUSEADDR/SO_REUSEPORT), joined
//! to 224.0.0.251 on every interface [`super::iface`] reports, and for each
//! interface the phases of RFC 6762 §8: probe three times 250 ms apart,
//! announce twice one second apart, then answer. A conflict while probing
//! renames (`homeline-2`, `Homeline (2)`) and probes again; a conflicting
//! answer seen later sends every interface back to probing, where the other
//! host's answer leads to the rename. Shutdown says goodbye (TTL 0).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{self, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use ring::rand::{SecureRandom, SystemRandom};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use super::iface::{self, Interface};
use super::message::{rtype, Data, Message};
use super::zone::{self, Identity};

/// The mDNS port.
pub const MDNS_PORT: u16 = 5353;
/// The IPv4 mDNS group.
pub const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// How often the interfaces are looked at again.
const IFACE_RECHECK: Duration = Duration::from_secs(5);
/// How long to wait before trying to bind port 5353 again.
const BIND_RETRY: Duration = Duration::from_secs(30);
/// Gap between probes (RFC 6762 §8.1).
const PROBE_GAP: Duration = Duration::from_millis(250);
/// Gap between announcements (RFC 6762 §8.3).
const ANNOUNCE_GAP: Duration = Duration::from_secs(1);
/// Probes and announcements sent.
const PROBES: u8 = 3;
const ANNOUNCEMENTS: u8 = 2;
/// After this many conflicts within [`CONFLICT_WINDOW`], probing slows to
/// one attempt per [`CONFLICT_BACKOFF`] (RFC 6762 §8.1).
const CONFLICT_LIMIT: usize = 15;
const CONFLICT_WINDOW: Duration = Duration::from_secs(10);
const CONFLICT_BACKOFF: Duration = Duration::from_secs(5);
/// Our own datagrams come back (multicast loop, several interfaces on one
/// link); those sent this recently are recognised and ignored.
const OWN_ECHO: Duration = Duration::from_secs(5);
/// The largest datagram read.
const MAX_DATAGRAM: usize = 9000;

/// What the responder needs to know.
#[derive(Debug)]
pub struct Config {
    /// `mdns.hostname`: the host label.
    pub hostname: String,
    /// The web UI's TCP port (advertised in SRV).
    pub http_port: u16,
    /// The service instance name (the household's name, or "Homeline");
    /// a change is announced.
    pub instance: watch::Receiver<String>,
}

/// Runs the responder until `stop` resolves, then says goodbye. A port
/// that cannot be bound is logged and tried again; it never stops the rest.
pub async fn run(mut config: Config, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let sock = loop {
        match bind() {
            Ok(s) => break s,
            Err(e) => {
                tracing::error!(error = %e, "mDNS: cannot listen on UDP {MDNS_PORT}; trying again in {}s", BIND_RETRY.as_secs());
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(BIND_RETRY) => {}
                }
            }
        }
    };
    let instance = config.instance.borrow_and_update().clone();
    let mut r = Responder {
        sock,
        base_host: config.hostname.clone(),
        host_attempt: 1,
        base_instance: instance,
        instance_attempt: 1,
        port: config.http_port,
        ifaces: BTreeMap::new(),
        pending: Vec::new(),
        sent: VecDeque::new(),
        conflicts: VecDeque::new(),
        rng: SystemRandom::new(),
    };
    tracing::info!(host = %r.identity().host_name(), instance = %r.identity().instance, "mDNS responder started");
    let mut recheck = tokio::time::interval(IFACE_RECHECK);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut watching = true;
    loop {
        let deadline = r.next_deadline();
        tokio::select! {
            _ = &mut stop => break,
            _ = recheck.tick() => r.refresh_interfaces(),
            changed = async {
                if watching { config.instance.changed().await } else { std::future::pending().await }
            } => match changed {
                Ok(()) => {
                    let name = config.instance.borrow_and_update().clone();
                    r.rename_instance(name).await;
                }
                Err(_) => watching = false,
            },
            _ = sleep_until(deadline) => r.on_timer().await,
            got = recv(&r.sock, &mut buf) => match got {
                Ok((len, Some(src), Some(index))) => {
                    let datagram = buf[..len].to_vec();
                    r.on_datagram(&datagram, src, index).await;
                }
                Ok((len, src, index)) => {
                    tracing::trace!(len, ?src, ?index, "mDNS: datagram without its source or interface");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "mDNS: receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    r.goodbye().await;
    tracing::info!("mDNS responder stopped");
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn bind() -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    // RFC 6762 §11: mDNS datagrams go out with IP TTL 255.
    s.set_multicast_ttl_v4(255)?;
    s.set_ttl_v4(255)?;
    s.set_multicast_loop_v4(true)?;
    socket::setsockopt(&s, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT)).into())?;
    UdpSocket::from_std(s.into())
}

/// A datagram, its source and the index of the interface it came in on.
async fn recv(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, Option<SocketAddrV4>, Option<u32>)> {
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::READABLE, || recv_with_interface(fd, buf))
        .await
}

fn recv_with_interface(
    fd: RawFd,
    buf: &mut [u8],
) -> io::Result<(usize, Option<SocketAddrV4>, Option<u32>)> {
    let mut iov = [io::IoSliceMut::new(buf)];
    // Room for one IP_PKTINFO control message (CMSG_SPACE(12) is 32 on
    // 64-bit Linux); a bigger buffer is harmless.
    let mut space = [0u8; 64];
    let msg = socket::recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut space), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut index = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                index = u32::try_from(info.ipi_ifindex).ok();
            }
        }
    }
    let src = msg.address.map(|a| SocketAddrV4::new(a.ip(), a.port()));
    Ok((msg.bytes, src, index))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// This many probes sent.
    Probing(u8),
    /// This many announcements sent.
    Announcing(u8),
    /// Answering queries.
    Ready,
}

struct Live {
    iface: Interface,
    phase: Phase,
    next: Instant,
}

/// A multicast answer held back 20-120 ms (shared records, RFC 6762 §6).
struct Pending {
    at: Instant,
    index: u32,
    bytes: Vec<u8>,
}

struct Responder {
    sock: UdpSocket,
    base_host: String,
    host_attempt: u32,
    base_instance: String,
    instance_attempt: u32,
    port: u16,
    ifaces: BTreeMap<u32, Live>,
    pending: Vec<Pending>,
    sent: VecDeque<(Instant, u64)>,
    conflicts: VecDeque<Instant>,
    rng: SystemRandom,
}

impl Responder {
    fn identity(&self) -> Identity {
        Identity {
            host: zone::host_after_conflict(&self.base_host, self.host_attempt),
            instance: zone::instance_after_conflict(&self.base_instance, self.instance_attempt),
            port: self.port,
        }
    }

    fn random_ms(&self, from: u64, to: u64) -> Duration {
        let mut b = [0u8; 2];
        let r = self.rng.fill(&mut b).map_or(0, |_| u16::from_be_bytes(b));
        Duration::from_millis(from + u64::from(r) % (to - from).max(1))
    }

    /// When probing (re)starts: a random 0-250 ms, or 5 s after many
    /// conflicts in a row.
    fn probe_start(&mut self) -> Instant {
        let now = Instant::now();
        while self
            .conflicts
            .front()
            .is_some_and(|t| now.duration_since(*t) > CONFLICT_WINDOW)
        {
            self.conflicts.pop_front();
        }
        if self.conflicts.len() >= CONFLICT_LIMIT {
            now + CONFLICT_BACKOFF
        } else {
            now + self.random_ms(0, 250)
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.ifaces
            .values()
            .filter(|l| l.phase != Phase::Ready)
            .map(|l| l.next)
            .chain(self.pending.iter().map(|p| p.at))
            .min()
    }

    fn refresh_interfaces(&mut self) {
        let now = iface::current();
        let gone: Vec<u32> = self
            .ifaces
            .keys()
            .filter(|i| !now.contains_key(i))
            .copied()
            .collect();
        for index in gone {
            if let Some(l) = self.ifaces.remove(&index) {
                let _ = SockRef::from(&self.sock)
                    .leave_multicast_v4_n(&MDNS_GROUP, &InterfaceIndexOrAddress::Index(index));
                tracing::info!(iface = %l.iface.name, "mDNS: interface gone");
            }
        }
        for (index, found) in now {
            if let Some(l) = self.ifaces.get_mut(&index) {
                if l.iface.addrs != found.addrs || l.iface.netmask != found.netmask {
                    tracing::info!(iface = %found.name, addr = %found.addrs.v4, "mDNS: interface address changed");
                    l.iface = found;
                    l.phase = Phase::Probing(0);
                    let at = self.probe_start();
                    if let Some(l) = self.ifaces.get_mut(&index) {
                        l.next = at;
                    }
                }
                continue;
            }
            match SockRef::from(&self.sock)
                .join_multicast_v4_n(&MDNS_GROUP, &InterfaceIndexOrAddress::Index(index))
            {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EADDRINUSE) => {}
                Err(e) => {
                    tracing::warn!(iface = %found.name, error = %e, "mDNS: cannot join 224.0.0.251; trying again later");
                    continue;
                }
            }
            tracing::info!(iface = %found.name, addr = %found.addrs.v4, "mDNS: probing on interface");
            let next = self.probe_start();
            self.ifaces.insert(
                index,
                Live {
                    iface: found,
                    phase: Phase::Probing(0),
                    next,
                },
            );
        }
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        let due: Vec<Pending> = {
            let (due, later) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.at <= now);
            self.pending = later;
            due
        };
        for p in due {
            self.send_multicast(p.index, p.bytes).await;
        }
        let id = self.identity();
        let indices: Vec<u32> = self
            .ifaces
            .iter()
            .filter(|(_, l)| l.phase != Phase::Ready && l.next <= now)
            .map(|(i, _)| *i)
            .collect();
        for index in indices {
            let Some(l) = self.ifaces.get(&index) else {
                continue;
            };
            let (phase, addrs, name) = (l.phase, l.iface.addrs.clone(), l.iface.name.clone());
            let (next_phase, wait, packet) = match phase {
                Phase::Probing(n) if n < PROBES => {
                    (Phase::Probing(n + 1), PROBE_GAP, Some(id.probe(&addrs)))
                }
                Phase::Probing(_) => (Phase::Announcing(0), Duration::ZERO, None),
                Phase::Announcing(n) if n < ANNOUNCEMENTS => (
                    Phase::Announcing(n + 1),
                    ANNOUNCE_GAP,
                    Some(id.announcement(&addrs, false)),
                ),
                Phase::Announcing(_) | Phase::Ready => {
                    tracing::info!(iface = %name, host = %id.host_name(), addr = %addrs.v4, instance = %id.instance, port = id.port, "mDNS: answering");
                    (Phase::Ready, Duration::ZERO, None)
                }
            };
            if let Some(p) = packet {
                self.send_multicast(index, p.encode()).await;
            }
            if let Some(l) = self.ifaces.get_mut(&index) {
                l.phase = next_phase;
                l.next = now + wait;
            }
        }
    }

    async fn on_datagram(&mut self, bytes: &[u8], src: SocketAddrV4, index: u32) {
        if self.is_own(bytes) {
            return;
        }
        let Some(live) = self.ifaces.get(&index) else {
            tracing::trace!(%src, index, "mDNS: datagram on another interface");
            return;
        };
        let (addrs, phase) = (live.iface.addrs.clone(), live.phase);
        let on_link = live.iface.on_link(*src.ip()) || self.is_our_address(*src.ip());
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::trace!(%src, error = %e, "mDNS: datagram ignored");
                return;
            }
        };
        let id = self.identity();
        if msg.is_response {
            let ours: Vec<_> = self
                .ifaces
                .values()
                .map(|l| l.iface.addrs.clone())
                .collect();
            let (host, instance) = id.conflicts(&msg, &ours);
            if host || instance {
                self.on_conflict(host, instance, src).await;
            }
            return;
        }
        if matches!(phase, Phase::Probing(_)) {
            if id.loses_tiebreak(&msg, &addrs) {
                tracing::info!(%src, "mDNS: another host probes for our name with a later claim; probing again in 1 s");
                let at = Instant::now() + Duration::from_secs(1);
                for l in self.ifaces.values_mut() {
                    l.phase = Phase::Probing(0);
                    l.next = at;
                }
            }
            return;
        }
        let legacy = src.port() != MDNS_PORT;
        let reply = id.respond(&msg, &addrs, legacy);
        if let Some(out) = reply.unicast {
            if on_link {
                self.send_to(out.encode(), SocketAddr::V4(src)).await;
            }
        }
        if let Some(out) = reply.multicast {
            let bytes = out.encode();
            if reply.shared_only && msg.authority.is_empty() {
                let at = Instant::now() + self.random_ms(20, 120);
                self.pending.push(Pending { at, index, bytes });
            } else {
                self.send_multicast(index, bytes).await;
            }
        }
    }

    /// Another host claims our host or instance name with other data.
    async fn on_conflict(&mut self, host: bool, instance: bool, src: SocketAddrV4) {
        let probing = self
            .ifaces
            .values()
            .any(|l| matches!(l.phase, Phase::Probing(_)));
        let before = self.identity();
        self.conflicts.push_back(Instant::now());
        if probing {
            if host {
                self.host_attempt += 1;
            }
            if instance {
                self.instance_attempt += 1;
            }
            let after = self.identity();
            if host {
                tracing::warn!(%src, taken = %before.host_name(), now = %after.host_name(), "mDNS: another device answers for our host name; taking the next one");
            }
            if instance {
                tracing::warn!(%src, taken = %before.instance, now = %after.instance, "mDNS: another device advertises our service name; taking the next one");
            }
        } else {
            tracing::warn!(%src, host = %before.host_name(), "mDNS: another device claims our names; probing again");
        }
        let at = self.probe_start();
        for l in self.ifaces.values_mut() {
            l.phase = Phase::Probing(0);
            l.next = at;
        }
    }

    async fn rename_instance(&mut self, name: String) {
        if name == self.base_instance {
            return;
        }
        let old = self.identity();
        let old_instance = old.instance_name();
        let announced: Vec<u32> = self
            .ifaces
            .iter()
            .filter(|(_, l)| !matches!(l.phase, Phase::Probing(_)))
            .map(|(i, _)| *i)
            .collect();
        for index in announced {
            let Some(addrs) = self.ifaces.get(&index).map(|l| l.iface.addrs.clone()) else {
                continue;
            };
            let mut bye = old.announcement(&addrs, true);
            bye.answers.retain(|r| {
                r.name == old_instance
                    || (r.rtype == rtype::PTR && r.data == Data::Ptr(old_instance.clone()))
            });
            self.send_multicast(index, bye.encode()).await;
        }
        self.base_instance = name;
        self.instance_attempt = 1;
        tracing::info!(instance = %self.identity().instance, "mDNS: service name changed");
        let at = self.probe_start();
        for l in self.ifaces.values_mut() {
            l.phase = Phase::Probing(0);
            l.next = at;
        }
    }

    async fn goodbye(&mut self) {
        let id = self.identity();
        let announced: Vec<(u32, zone::Addrs)> = self
            .ifaces
            .iter()
            .filter(|(_, l)| !matches!(l.phase, Phase::Probing(_) | Phase::Announcing(0)))
            .map(|(i, l)| (*i, l.iface.addrs.clone()))
            .collect();
        for (index, addrs) in announced {
            self.send_multicast(index, id.announcement(&addrs, true).encode())
                .await;
        }
    }

    fn is_our_address(&self, ip: Ipv4Addr) -> bool {
        self.ifaces.values().any(|l| l.iface.addrs.v4 == ip)
    }

    fn fingerprint(bytes: &[u8]) -> u64 {
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        h.finish()
    }

    fn remember(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        while self
            .sent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > OWN_ECHO)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= 256 {
            self.sent.pop_front();
        }
        self.sent.push_back((now, Self::fingerprint(bytes)));
    }

    fn is_own(&self, bytes: &[u8]) -> bool {
        let f = Self::fingerprint(bytes);
        self.sent.iter().any(|(_, s)| *s == f)
    }

    async fn send_multicast(&mut self, index: u32, bytes: Vec<u8>) {
        let Some(addr) = self.ifaces.get(&index).map(|l| l.iface.addrs.v4) else {
            return;
        };
        if let Err(e) = SockRef::from(&self.sock).set_multicast_if_v4(&addr) {
            tracing::debug!(error = %e, "mDNS: cannot pick the interface");
            return;
        }
        self.send_to(bytes, SocketAddr::from((MDNS_GROUP, MDNS_PORT)))
            .await;
    }

    async fn send_to(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        self.remember(&bytes);
        if let Err(e) = self.sock.send_to(&bytes, to).await {
            tracing::debug!(%to, error = %e, "mDNS: send failed");
        }
    }
}
