//! Drives the call layer: feeds [`crate::b2bua::Calls`] its events and
//! carries out its actions: server and client transactions, raw sends,
//! relays, timers, DNS and call records. The I/O half of the B2BUA.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use crate::sip::random::RandomPool;

use crate::b2bua::{
    self, Action, CallId, CallInfo, CallTimer, Contact, DeviceId, Event, Route, TransferRefused,
};
use crate::dns::{Lookup, Resolved};
use crate::media::relay::{MediaEvent, Relay};
use crate::registrar::Registrar;
use crate::sip::message::build::reply;
use crate::sip::message::{Message, Request};
use crate::sip::transaction::Input;
use crate::sip::transport::{Protocol, Transport};

use super::{Endpoint, Key, Media, TimerKey};

/// Twilio's SIP port (the SIP Domain is reached over UDP, no SRV).
const TWILIO_SIP_PORT: u16 = 5060;

/// What the call layer may ask of the endpoint while it decides.
struct CallHost<'a> {
    transport: &'a Transport,
    local_ips: &'a mut HashMap<IpAddr, IpAddr>,
    rng: &'a RandomPool,
    registrar: &'a Registrar,
    media: &'a mut Media,
}

impl b2bua::Host for CallHost<'_> {
    fn local_ip_for(&mut self, peer: IpAddr) -> IpAddr {
        local_ip_for(self.transport, self.local_ips, peer)
    }

    fn port(&self, protocol: Protocol) -> u16 {
        port_of(self.transport, protocol)
    }

    fn token(&mut self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.rng.fill(&mut b);
        crate::sip::random::hex(&b)
    }

    fn random(&mut self) -> u64 {
        let mut b = [0u8; 4];
        self.rng.fill(&mut b);
        u32::from_be_bytes(b) as u64
    }

    fn contacts(&self, device: DeviceId) -> Vec<Contact> {
        self.registrar
            .bindings(device.0)
            .iter()
            .map(|b| Contact {
                uri: b.contact.clone(),
                protocol: b.protocol,
                source: b.source,
            })
            .collect()
    }

    fn open_media(&mut self, call: CallId) -> Option<[u16; 2]> {
        let pairs = match (self.media.pool.allocate(), self.media.pool.allocate()) {
            (Ok(a), Ok(b)) => [a, b],
            _ => return None,
        };
        let relay = Relay::start(
            call.0,
            pairs,
            self.media.music.clone(),
            self.media.timeout,
            self.media.events.clone(),
        );
        let ports = relay.ports;
        self.media.relays.insert(call, vec![relay]);
        Some(ports)
    }

    fn loopback_ip(&self) -> IpAddr {
        self.media.pool.loopback_ip()
    }
}

impl Endpoint {
    /// Feeds the call layer one event and carries out what it says.
    pub(super) async fn call_event(&mut self, event: Event) {
        let now = self.clock.now();
        let actions = {
            let (calls, mut host) = self.split();
            calls.handle(event, now, &mut host)
        };
        self.execute(actions).await;
    }

    /// The call table and the host it asks, borrowed apart.
    fn split(&mut self) -> (&mut b2bua::Calls, CallHost<'_>) {
        (
            &mut self.calls,
            CallHost {
                transport: &self.transport,
                local_ips: &mut self.local_ips,
                rng: &self.rng,
                registrar: &self.registrar,
                media: &mut self.media,
            },
        )
    }

    /// Carries out the call layer's actions, in order.
    pub(super) async fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Respond { tx, response } => self.respond(&tx, response).await,
                Action::Retransmit {
                    tx,
                    response,
                    route,
                } => {
                    let actions = self.feed(&tx, Input::Respond(response.clone()));
                    if actions.is_empty() {
                        // The transaction is gone (Timer L): send it ourselves.
                        self.send(route.protocol, route.dest, &Message::Response(response))
                            .await;
                    } else {
                        self.apply(&tx, actions).await;
                    }
                }
                Action::Request {
                    request,
                    route,
                    owner,
                } => {
                    let events = self
                        .start_client(request, route.protocol, route.dest, owner)
                        .await;
                    self.pending.extend(events);
                }
                Action::Send { message, route } => {
                    self.send(route.protocol, route.dest, &message).await
                }
                Action::Media(call, control) => {
                    if let Some(relay) = self.media.relays.get(&call).and_then(|r| r.first()) {
                        relay.control(control);
                    }
                }
                Action::MergeMedia { from, into } => {
                    let moved = self.media.relays.remove(&from).unwrap_or_default();
                    self.media.relays.entry(into).or_default().extend(moved);
                }
                // Dropping a relay ends its task and returns its ports.
                Action::CloseMedia(call) => drop(self.media.relays.remove(&call)),
                Action::Arm(call, timer, after) => self.arm(TimerKey::Call(call, timer), after),
                Action::Disarm(call) => {
                    for t in CallTimer::per_call().chain(CallTimer::per_leg()) {
                        self.timers.cancel(&TimerKey::Call(call, t));
                    }
                }
                Action::Resolve(call, domain) => {
                    // Answered at once from the cache (or for an IP
                    // literal); else looked up off the loop, and the call
                    // waits for `on_resolved`.
                    let lookup = self.resolver.lookup(&domain, tokio::time::Instant::now());
                    let dest = match lookup {
                        Lookup::Ready(addrs) => addrs
                            .first()
                            .map(|ip| SocketAddr::new(*ip, TWILIO_SIP_PORT)),
                        Lookup::Pending => {
                            tracing::info!(call = %call, %domain, "outgoing call waits for the SIP Domain's address");
                            self.awaiting_dns
                                .entry(domain.to_ascii_lowercase())
                                .or_default()
                                .push(call);
                            continue;
                        }
                    };
                    let now = self.clock.now();
                    let more = {
                        let (calls, mut host) = self.split();
                        calls.handle(Event::Resolved(call, dest), now, &mut host)
                    };
                    for a in more.into_iter().rev() {
                        queue.push_front(a);
                    }
                }
                Action::Record(cdr) => {
                    if let Some(tx) = &self.cdrs {
                        let _ = tx.send(*cdr);
                    }
                }
                Action::SetDnd { device, on } => match &self.dnd {
                    Some(tx) => {
                        let _ = tx.send(crate::b2bua::DndRequest { device, on });
                    }
                    None => tracing::warn!(device = device.0, "nobody stores DND changes"),
                },
            }
        }
    }

    /// A lookup finished: the calls waiting for it go on, or fail with 503.
    pub(super) async fn on_resolved(&mut self, resolved: Resolved) {
        let name = resolved.name.to_ascii_lowercase();
        let outcome = self.resolver.finish(resolved, tokio::time::Instant::now());
        if let Err(e) = &outcome {
            tracing::warn!(domain = %name, error = %e, "the Twilio SIP Domain could not be resolved");
        }
        let dest = outcome
            .ok()
            .and_then(|addrs| addrs.first().copied())
            .map(|ip| SocketAddr::new(ip, TWILIO_SIP_PORT));
        for call in self.awaiting_dns.remove(&name).unwrap_or_default() {
            self.call_event(Event::Resolved(call, dest)).await;
        }
    }

    /// A new INVITE (no To tag) whose server transaction exists under `key`.
    pub(super) async fn on_invite(
        &mut self,
        req: Request,
        source: SocketAddr,
        protocol: Protocol,
        key: Key,
    ) {
        // §8.2.2.3: an INVITE requiring an extension we lack gets 420.
        let unsupported = crate::sip::message::build::unsupported_requirements(&req);
        if !unsupported.is_empty() {
            let mut r = reply(&req, 420, &self.tag());
            r.headers.push(
                crate::sip::message::HeaderName::Unsupported,
                unsupported.join(", "),
            );
            return self.respond(&key, r).await;
        }
        let trying = reply(&req, 100, "");
        self.respond(&key, trying).await;
        let tag = self.tag();
        let caller = match self.authenticate_caller(&req, source, &tag) {
            Ok(caller) => caller,
            Err(r) => return self.respond(&key, r).await,
        };
        let route = Route {
            protocol,
            dest: self.txs.destination(&key).map(|(_, d)| d).unwrap_or(source),
        };
        let event = Event::Invite {
            request: req,
            caller,
            tx: key,
            route,
        };
        self.call_event(event).await;
    }

    /// Client transaction events to the call layer, including those its
    /// own actions queue (a queue, not recursion: an action that starts a
    /// transaction whose send fails gets its 503 here, later).
    pub(super) async fn dispatch(&mut self, events: Vec<super::uac::ClientEvent>) {
        self.pending.extend(events);
        while let Some(super::uac::ClientEvent::Response(owner, response)) =
            self.pending.pop_front()
        {
            self.call_event(Event::Response { owner, response }).await;
        }
    }

    /// A relay reported something.
    pub(super) async fn on_media_event(&mut self, call: u64, event: MediaEvent) {
        self.call_event(Event::Media(CallId(call), event)).await;
    }

    /// Hangs a call up from the API.
    pub(super) async fn hang_up(&mut self, id: u64) -> bool {
        let now = self.clock.now();
        let (done, actions) = {
            let (calls, mut host) = self.split();
            calls.hang_up(CallId(id), now, &mut host)
        };
        self.execute(actions).await;
        done
    }

    /// Holds or resumes a call from the API.
    pub(super) async fn hold(&mut self, id: u64, on: bool) -> bool {
        let now = self.clock.now();
        let (done, actions) = {
            let (calls, mut host) = self.split();
            calls.hold(CallId(id), on, now, &mut host)
        };
        self.execute(actions).await;
        done
    }

    /// Transfers a call from the API.
    pub(super) async fn api_transfer(
        &mut self,
        id: u64,
        extension: &str,
        side: Option<b2bua::Party>,
    ) -> Result<(), TransferRefused> {
        let now = self.clock.now();
        let (outcome, actions) = {
            let (calls, mut host) = self.split();
            calls.transfer(CallId(id), extension, side, now, &mut host)
        };
        self.execute(actions).await;
        outcome
    }

    /// The calls for the API, with their relays' counters.
    pub(super) fn list_calls(&self) -> Vec<CallInfo> {
        let load = |a: &[std::sync::atomic::AtomicU64; 2]| {
            [
                a[0].load(std::sync::atomic::Ordering::Relaxed),
                a[1].load(std::sync::atomic::Ordering::Relaxed),
            ]
        };
        let mut calls = self.calls.list();
        for c in &mut calls {
            if let Some(relay) = self.media.relays.get(&CallId(c.id)).and_then(|r| r.first()) {
                c.rtp_received = load(&relay.stats.received);
                c.rtp_sent = load(&relay.stats.sent);
            }
        }
        calls
    }
}

/// Which of our addresses a peer reaches us at: the address we are bound
/// to, else the kernel's routing answer (a connected UDP socket sends
/// nothing), cached per peer.
fn local_ip_for(
    transport: &Transport,
    cache: &mut HashMap<IpAddr, IpAddr>,
    peer: IpAddr,
) -> IpAddr {
    if let Some(ip) = cache.get(&peer) {
        return *ip;
    }
    let bound = transport
        .udp_addr()
        .or(transport.tcp_addr())
        .or(transport.tls_addr())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified());
    let ip = bound.unwrap_or_else(|| {
        let any: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        std::net::UdpSocket::bind(any)
            .and_then(|s| {
                s.connect((peer, 9))?;
                s.local_addr()
            })
            .map(|a| a.ip())
            .unwrap_or(peer)
    });
    if cache.len() > 1024 {
        cache.clear();
    }
    cache.insert(peer, ip);
    ip
}

/// The port we listen on for `protocol`.
fn port_of(transport: &Transport, protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => transport.udp_addr(),
        Protocol::Tcp => transport.tcp_addr(),
        Protocol::Tls => transport.tls_addr(),
    }
    .map(|a| a.port())
    .unwrap_or(5060)
}
