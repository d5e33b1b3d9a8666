//! The SIP endpoint of the appliance: one task that owns the server
//! transactions and their timers, digest authentication, the registrar and
//! the flood guard, and answers requests.
//!
//! Requests come up from the transport as values; the endpoint matches them
//! to transactions (retransmissions are absorbed there, never re-processed),
//! hands new ones to the method's handler, and pushes the answer back down
//! through the transaction. The loop beats the `sip` heartbeat, so a wedged
//! endpoint stops the systemd watchdog.
//!
//! Methods: REGISTER (registrar), OPTIONS (keep-alive pings), ACK/CANCEL per
//! RFC 3261; INVITEs and everything inside a call's dialogs go to the call
//! layer ([`crate::b2bua`]), whose actions `drive` carries out (relays,
//! sends, client transactions, timers, records); other known methods are
//! answered 405 and unknown ones 501, both with `Allow`.

mod authenticate;
mod call_events;
mod drive;
mod refuse;
mod uac;

pub use crate::b2bua::{CallInfo, Directory, Number, Party, Phone, TransferRefused, Trunk};
pub use crate::sip::message::build::ALLOW;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::b2bua::{self, CallId, CallTimer, Calls};
use crate::clock::SharedClock;
use crate::constants::HEARTBEAT_INTERVAL;
use crate::registrar::{
    Binding, Persist, RegisterError, Registrar, RegistrationEvent, MIN_EXPIRES,
};
use crate::sip::auth::{Credentials, DigestAuth, Verdict};
use crate::sip::guard::{Ban, Guard, GuardConfig};
use crate::sip::message::build::{self, reply};
use crate::sip::message::{HeaderName, Message, Method, NameAddr, Request, Response};
use crate::sip::transaction::{
    Action, FifoTimers, Input, ServerKey, ServerTable, Timer, TimerConfig, TimerQueue, TxKey,
};
use crate::sip::transport::{
    response_destination, response_destination_of, Listen, Protocol, Received, Transport,
    UdpReceiver,
};
use crate::store::registrations::Binding as StoredBinding;
use crate::watchdog::Heartbeat;

pub use crate::sip::auth::{DeviceCredential, REALM};

/// One phone's live registrations, for the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRegistrations {
    /// The phone.
    pub device_id: i64,
    /// Its contacts.
    pub contacts: Vec<ContactInfo>,
}

/// One contact, for the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactInfo {
    /// Contact URI.
    pub contact: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
    /// Source address.
    pub source: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// User-Agent.
    pub user_agent: Option<String>,
}

enum Command {
    ReloadDevices(Vec<DeviceCredential>),
    Registrations(oneshot::Sender<Vec<DeviceRegistrations>>),
    Bans(oneshot::Sender<Vec<Ban>>),
    Unban(std::net::IpAddr, oneshot::Sender<bool>),
    Subscribe(oneshot::Sender<tokio::sync::broadcast::Receiver<RegistrationEvent>>),
    ReloadDirectory(Box<Directory>),
    PublicIp(Option<std::net::IpAddr>),
    HoldMusic(Arc<crate::media::music::HoldMusic>),
    Calls(oneshot::Sender<Vec<CallInfo>>),
    HangUp(u64, oneshot::Sender<bool>),
    Hold(u64, bool, oneshot::Sender<bool>),
    Transfer(
        u64,
        String,
        Option<crate::b2bua::Party>,
        oneshot::Sender<Result<(), TransferRefused>>,
    ),
}

/// A handle for the rest of the application.
#[derive(Clone, Debug)]
pub struct SipHandle {
    cmds: mpsc::Sender<Command>,
    /// The bound UDP address (none in TLS-only mode).
    pub udp_addr: Option<SocketAddr>,
    /// The bound TCP address (none in TLS-only mode).
    pub tcp_addr: Option<SocketAddr>,
    /// The bound TLS address, if TLS is on.
    pub tls_addr: Option<SocketAddr>,
}

impl SipHandle {
    /// Replaces the table of phone credentials (after the devices API changed one).
    pub async fn reload_devices(&self, creds: Vec<DeviceCredential>) {
        let _ = self.cmds.send(Command::ReloadDevices(creds)).await;
    }

    /// Live registrations of every phone.
    pub async fn registrations(&self) -> Vec<DeviceRegistrations> {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::Registrations(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Sources currently banned by the guard.
    pub async fn bans(&self) -> Vec<Ban> {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::Bans(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Lifts the guard's ban on `ip`; false if it was not banned.
    pub async fn unban(&self, ip: std::net::IpAddr) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::Unban(ip, tx)).await;
        rx.await.unwrap_or(false)
    }

    /// Changes the public address written in SDP towards Twilio; the next
    /// call uses it (see [`crate::netaddr`]).
    pub async fn set_public_ip(&self, ip: Option<std::net::IpAddr>) {
        let _ = self.cmds.send(Command::PublicIp(ip)).await;
    }

    /// Replaces the routing directory (phones, numbers, the Twilio trunk).
    pub async fn reload_directory(&self, directory: Directory) {
        let _ = self
            .cmds
            .send(Command::ReloadDirectory(Box::new(directory)))
            .await;
    }

    /// Plays `music` on holds from now on.
    pub async fn set_hold_music(&self, music: Arc<crate::media::music::HoldMusic>) {
        let _ = self.cmds.send(Command::HoldMusic(music)).await;
    }

    /// The calls in progress.
    pub async fn calls(&self) -> Vec<CallInfo> {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::Calls(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Hangs a call up (BYE, or CANCEL while ringing); false if no such call.
    pub async fn hang_up(&self, id: u64) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::HangUp(id, tx)).await;
        rx.await.unwrap_or(false)
    }

    /// Puts an answered call on hold (both parties hear music) or resumes
    /// it; false if no such answered call.
    pub async fn hold(&self, id: u64, on: bool) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.cmds.send(Command::Hold(id, on, tx)).await;
        rx.await.unwrap_or(false)
    }

    /// Transfers a call to another phone (blind); `side` is the party
    /// replaced (default: the household's phone in the call).
    pub async fn transfer(
        &self,
        id: u64,
        extension: &str,
        side: Option<crate::b2bua::Party>,
    ) -> Result<(), TransferRefused> {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .cmds
            .send(Command::Transfer(id, extension.to_string(), side, tx))
            .await;
        rx.await.unwrap_or(Err(TransferRefused::NoSuchCall))
    }

    /// Registration changes as they happen.
    pub async fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<RegistrationEvent>> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(Command::Subscribe(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// A server transaction's key (with its transport).
type Key = ServerKey;

/// What the endpoint needs to start.
pub struct EndpointSetup {
    /// Where to listen.
    pub listen: Listen,
    /// The one clock.
    pub clock: SharedClock,
    /// Phone credentials.
    pub devices: Vec<DeviceCredential>,
    /// Bindings stored before the restart.
    pub stored_bindings: Vec<StoredBinding>,
    /// Where binding changes go (a task writes them to SQLite in order).
    pub persist: mpsc::UnboundedSender<Persist>,
    /// Flood-guard thresholds.
    pub guard: GuardConfig,
    /// The endpoint's watchdog heartbeat.
    pub heartbeat: Heartbeat,
    /// Also challenge with SHA-256 (`sip.digest_sha256`).
    pub offer_sha256: bool,
    /// Phones, numbers and the Twilio trunk, for routing calls.
    pub directory: Directory,
    /// The RTP relay's resources.
    pub media: MediaSetup,
    /// Call handling and the dial plan.
    pub calls: crate::settings::CallSettings,
    /// Where finished calls' CDRs go (a task writes them to SQLite).
    pub cdrs: Option<mpsc::UnboundedSender<crate::store::cdrs::Cdr>>,
    /// Where the phones' DND feature codes go (a task stores them).
    pub dnd: Option<mpsc::UnboundedSender<crate::b2bua::DndRequest>>,
    /// Send outgoing calls here instead of the SIP Domain (`twilio.sip_edge`).
    pub trunk_edge: Option<SocketAddr>,
    /// How Twilio's INVITEs are recognised (SIP Domain or trunking mode).
    pub twilio_sip: crate::settings::TwilioSip,
    /// Where the resolver finds its servers (for the SIP Domain).
    pub dns: crate::dns::ResolverFiles,
    /// Where registration and call changes are announced.
    pub events: crate::events::Events,
}

/// What the call layer relays media with.
pub struct MediaSetup {
    /// The RTP port range.
    pub pool: Arc<crate::media::ports::PortPool>,
    /// Music on hold.
    pub music: Arc<crate::media::music::HoldMusic>,
    /// Silence after which a call is hung up.
    pub timeout: std::time::Duration,
    /// The public address written in SDP towards Twilio.
    pub public_ip: Option<std::net::IpAddr>,
}

/// [`MediaSetup`] plus the channel relays report on and the live relays.
struct Media {
    pool: Arc<crate::media::ports::PortPool>,
    music: Arc<crate::media::music::HoldMusic>,
    timeout: std::time::Duration,
    events: mpsc::UnboundedSender<(u64, crate::media::relay::MediaEvent)>,
    /// Each call's relay first, then any relays joined into it by an
    /// attended transfer (they live as long as the call).
    relays: HashMap<CallId, Vec<crate::media::relay::Relay>>,
}

/// Binds the transports and starts the endpoint task; it runs until `stop`.
pub async fn start(
    setup: EndpointSetup,
    stop: watch::Receiver<bool>,
) -> std::io::Result<(SipHandle, tokio::task::JoinHandle<()>)> {
    let (up_tx, up_rx) = mpsc::channel(1024);
    let (transport, udp) =
        Transport::bind_with_udp_receiver(setup.listen, up_tx, stop.clone()).await?;
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    let (resolver, resolved_rx) = crate::dns::Resolver::new(setup.dns);
    let mut registrar = Registrar::new(setup.persist).with_events(setup.events.clone());
    registrar.load(setup.stored_bindings, setup.clock.now());
    let endpoint = Endpoint {
        transport: transport.clone(),
        auth: DigestAuth::new(REALM, setup.offer_sha256),
        registrar,
        guard: Guard::new(setup.guard),
        clock: setup.clock,
        devices: setup
            .devices
            .into_iter()
            .map(|d| (d.username.clone(), d))
            .collect(),
        txs: ServerTable::default(),
        timers: TimerQueue::default(),
        timer_j: FifoTimers::default(),
        rng: crate::sip::random::RandomPool::default(),
        calls: Calls::new(
            setup.directory,
            b2bua::Config {
                rules: setup.calls.rules,
                ring_timeout: setup.calls.ring_timeout,
                public_ip: setup.media.public_ip,
                trunk_edge: setup.trunk_edge,
            },
        ),
        clients: Default::default(),
        pending: std::collections::VecDeque::new(),
        twilio_sip: setup.twilio_sip,
        media: Media {
            pool: setup.media.pool,
            music: setup.media.music,
            timeout: setup.media.timeout,
            events: media_tx,
            relays: HashMap::new(),
        },
        cdrs: setup.cdrs,
        dnd: setup.dnd,
        local_ips: HashMap::new(),
        resolver,
        awaiting_dns: HashMap::new(),
        events: setup.events,
        announced_calls: Default::default(),
    };
    let handle = SipHandle {
        cmds: cmd_tx,
        udp_addr: transport.udp_addr(),
        tls_addr: transport.tls_addr(),
        tcp_addr: transport.tcp_addr(),
    };
    let inputs = Inputs {
        udp,
        up: up_rx,
        cmds: cmd_rx,
        media: media_rx,
        resolved: resolved_rx,
    };
    let task = tokio::spawn(endpoint.run(inputs, setup.heartbeat, stop));
    Ok((handle, task))
}

struct Endpoint {
    transport: Arc<Transport>,
    auth: DigestAuth,
    registrar: Registrar,
    guard: Guard,
    clock: SharedClock,
    devices: HashMap<String, DeviceCredential>,
    /// The server transactions.
    txs: ServerTable,
    /// Every timer: transactions', client transactions' and calls'.
    timers: TimerQueue<TimerKey, Instant>,
    /// Timer J of UDP server transactions (always 64·T1, so due in the
    /// order armed), with the transaction's generation.
    timer_j: FifoTimers<(Key, u64), Instant>,
    rng: crate::sip::random::RandomPool,
    calls: Calls,
    /// The client transactions.
    clients: crate::sip::transaction::ClientTable<uac::Owner>,
    /// Client transaction events waiting for the call layer.
    pending: std::collections::VecDeque<uac::ClientEvent>,
    twilio_sip: crate::settings::TwilioSip,
    media: Media,
    cdrs: Option<mpsc::UnboundedSender<crate::store::cdrs::Cdr>>,
    dnd: Option<mpsc::UnboundedSender<crate::b2bua::DndRequest>>,
    /// Which of our addresses routes to a peer's address (cached).
    local_ips: HashMap<std::net::IpAddr, std::net::IpAddr>,
    /// Names resolved off the loop (the Twilio SIP Domain), with their cache.
    resolver: crate::dns::Resolver,
    /// Outgoing calls waiting for the SIP Domain's address.
    awaiting_dns: HashMap<String, Vec<CallId>>,
    /// The application's events channel.
    events: crate::events::Events,
    /// The call states last announced on it.
    announced_calls: call_events::Announced,
}

/// What the endpoint loop waits on besides its timers.
struct Inputs {
    /// UDP, read by the loop itself (none in TLS-only mode).
    udp: Option<UdpReceiver>,
    /// TCP and TLS messages, from their connections' readers.
    up: mpsc::Receiver<Received>,
    cmds: mpsc::Receiver<Command>,
    media: mpsc::UnboundedReceiver<(u64, crate::media::relay::MediaEvent)>,
    resolved: mpsc::UnboundedReceiver<crate::dns::Resolved>,
}

/// Most datagrams handled in a row once one arrived, before the loop looks
/// at its timers and other inputs again.
const UDP_BURST: usize = 64;

/// Everything that can be armed on the endpoint's one timer queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TimerKey {
    Server(Key, Timer),
    Client(uac::ClientKey, Timer),
    Call(CallId, CallTimer),
}

impl Endpoint {
    /// The SIP loop. UDP datagrams are read here, not by a task of their
    /// own: receiving, parsing and answering on one task saves a queue hop
    /// and a task wake-up per datagram, and the datagrams already waiting
    /// are handled in a row ([`UDP_BURST`]) instead of one loop turn each.
    /// The timer sleep is kept across turns and only moved when the
    /// earliest deadline changes (making a new one each turn registered and
    /// cancelled a runtime timer per datagram).
    async fn run(mut self, inputs: Inputs, heartbeat: Heartbeat, stop: watch::Receiver<bool>) {
        let Inputs {
            mut udp,
            mut up,
            mut cmds,
            mut media,
            mut resolved,
        } = inputs;
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        let stopped = async move {
            let mut stop = stop;
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        let timer = tokio::time::sleep(std::time::Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let next_timer = match (self.timers.next_deadline(), self.timer_j.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(at) = next_timer {
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
            }
            tokio::select! {
                _ = &mut stopped => return,
                Some(r) = recv_udp(&mut udp) => {
                    self.on_received(r).await;
                    if let Some(udp) = udp.as_mut() {
                        for _ in 1..UDP_BURST {
                            let Some(r) = udp.try_recv() else { break };
                            self.on_received(r).await;
                        }
                    }
                }
                Some(r) = up.recv() => self.on_received(r).await,
                Some(c) = cmds.recv() => self.on_command(c).await,
                Some((call, ev)) = media.recv() => self.on_media_event(call, ev).await,
                Some(r) = resolved.recv() => self.on_resolved(r).await,
                _ = &mut timer, if next_timer.is_some() => self.fire_timers().await,
                _ = tick.tick() => {
                    heartbeat.beat();
                    let now = self.clock.now();
                    let swept = self.registrar.sweep(now);
                    if swept > 0 {
                        tracing::info!(count = swept, "registrations expired");
                    }
                    self.guard.prune(now);
                }
            }
            if !self.pending.is_empty() {
                self.dispatch(Vec::new()).await;
            }
            self.announce_call_changes();
        }
    }

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::ReloadDevices(creds) => {
                let known: std::collections::HashSet<i64> =
                    creds.iter().map(|d| d.device_id).collect();
                let gone: Vec<i64> = self
                    .devices
                    .values()
                    .map(|d| d.device_id)
                    .filter(|id| !known.contains(id))
                    .collect();
                for id in gone {
                    self.registrar.forget_device(id);
                }
                self.devices = creds.into_iter().map(|d| (d.username.clone(), d)).collect();
            }
            Command::Registrations(reply) => {
                let mut v: Vec<DeviceRegistrations> = self
                    .registrar
                    .all()
                    .map(|(device_id, b)| DeviceRegistrations {
                        device_id,
                        contacts: b.iter().map(contact_info).collect(),
                    })
                    .collect();
                v.sort_by_key(|d| d.device_id);
                let _ = reply.send(v);
            }
            Command::Bans(reply) => {
                let _ = reply.send(self.guard.bans(self.clock.now()));
            }
            Command::Unban(ip, reply) => {
                let _ = reply.send(self.guard.unban(ip, self.clock.now()));
            }
            Command::Subscribe(reply) => {
                let _ = reply.send(self.registrar.subscribe());
            }
            Command::ReloadDirectory(d) => self.calls.set_directory(*d),
            Command::PublicIp(ip) => self.calls.set_public_ip(ip),
            Command::HoldMusic(m) => self.media.music = m,
            Command::Calls(reply) => {
                let _ = reply.send(self.list_calls());
            }
            Command::HangUp(id, reply) => {
                let done = self.hang_up(id).await;
                let _ = reply.send(done);
            }
            Command::Hold(id, on, reply) => {
                let done = self.hold(id, on).await;
                let _ = reply.send(done);
            }
            Command::Transfer(id, extension, side, reply) => {
                let outcome = self.api_transfer(id, &extension, side).await;
                let _ = reply.send(outcome);
            }
        }
    }

    async fn on_received(&mut self, r: Received) {
        let now = self.clock.now();
        let ip = r.source.ip();
        if self.guard.is_banned(ip, now) {
            return;
        }
        match r.message {
            Err(e) => {
                self.guard.garbage(ip, now);
                tracing::debug!(source = %r.source, error = %e, "unreadable SIP message");
                let Some((resp, via)) = refuse::unparsable(&e, &self.tag()) else {
                    return;
                };
                let dest = response_destination(&via, r.source, r.protocol);
                self.send(r.protocol, dest, &Message::Response(resp)).await;
            }
            Ok(Message::Response(resp)) => {
                // Responses only ever reach a client transaction of ours;
                // strays are dropped, never forwarded.
                let events = self.on_response(resp).await;
                self.dispatch(events).await;
            }
            Ok(Message::Request(req)) => {
                let registered = self.registrar.has_binding_from(ip);
                if !self.guard.allow_request(ip, registered, now) {
                    return;
                }
                self.on_request(req, r.source, r.protocol).await;
            }
        }
    }

    async fn on_request(&mut self, req: Request, source: SocketAddr, protocol: Protocol) {
        // One parse of the top Via for the key and the answer's destination.
        let Some((key, top_via)) = TxKey::server_and_top_via(&req) else {
            return;
        };
        let key = (key, protocol);
        let dest = response_destination_of(&top_via, source, protocol);
        if self.txs.contains(&key) {
            // A retransmission, or the ACK of a non-2xx answer. Over TCP it may
            // come on a new connection: answer where it came from now.
            let actions = self.txs.retransmission(&key, req, dest).unwrap_or_default();
            return self.apply(&key, actions).await;
        }
        if req.method == Method::Ack {
            // The ACK for a 2xx belongs to the dialog; any other is for a
            // transaction long gone.
            if self.calls.owns(&req) {
                self.call_event(b2bua::Event::Ack(req)).await;
            }
            return;
        }
        // §8.2.2.2: the same request reaching us again over another path
        // (a different branch) while the first is still live is a loop or a
        // fork merging back: 482, answered once, by its own transaction.
        let merged = self.txs.open(key.clone(), &req, dest);
        // To, parsed once for every decision below (it used to be parsed
        // again by each).
        let to = req.headers.get(&HeaderName::To).and_then(NameAddr::parse);
        let out_of_dialog = to.as_ref().is_some_and(|to| to.params.get("tag").is_none());
        let in_dialog_call = !out_of_dialog && self.calls.owns(&req);
        let resp = if merged {
            reply(&req, 482, &self.tag())
        } else if req.method == Method::Invite && out_of_dialog {
            return self.on_invite(req, source, protocol, key).await;
        } else if req.method == Method::Cancel {
            let invite_tx = crate::sip::transaction::invite_key_of_cancel(&key);
            let event = b2bua::Event::Cancel {
                request: req,
                invite_exists: self.txs.contains(&invite_tx),
                tx: key,
            };
            return self.call_event(event).await;
        } else if in_dialog_call {
            let event = b2bua::Event::InDialog {
                request: req,
                tx: key,
            };
            return self.call_event(event).await;
        } else {
            self.answer(&req, to.as_ref(), source, protocol)
        };
        let actions = self.feed(&key, Input::Respond(resp));
        self.apply(&key, actions).await;
    }

    fn feed(&mut self, key: &Key, input: Input) -> Vec<Action> {
        self.txs.feed(key, input)
    }

    async fn apply(&mut self, key: &Key, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(msg) => {
                    if let Some((p, d)) = self.txs.destination(key) {
                        self.send(p, d, &msg).await;
                    }
                }
                Action::Transmit(bytes) => {
                    if let Some((p, d)) = self.txs.destination(key) {
                        self.send_bytes(p, d, bytes).await;
                    }
                }
                Action::Arm(Timer::J, after) if after == TimerConfig::UDP.timeout() => {
                    if let Some(generation) = self.txs.generation(key) {
                        self.timer_j
                            .arm((key.clone(), generation), Instant::now() + after);
                    }
                }
                Action::Arm(timer, after) => self.arm(TimerKey::Server(key.clone(), timer), after),
                Action::Terminated => {
                    let Some(own) = self.txs.remove(key) else {
                        continue;
                    };
                    // A UDP non-INVITE transaction's only timer is on the
                    // FIFO, whose entry is ignored once the generation is gone.
                    if own == [Timer::J] && !key.1.reliable() {
                        continue;
                    }
                    // Only the timers this kind of transaction arms: scanning
                    // every armed timer made the cost grow with the load, and
                    // trying all twelve kinds cost a key copy each (both
                    // found by benches/register_load.sh). Their queue entries
                    // are skipped when they fire.
                    let mut target = TimerKey::Server(key.clone(), Timer::J);
                    for t in own {
                        if let TimerKey::Server(_, timer) = &mut target {
                            *timer = *t;
                        }
                        self.timers.cancel(&target);
                    }
                }
                Action::Timeout => tracing::debug!(?key, "server transaction timed out (no ACK)"),
                Action::TransportFailed => {
                    tracing::debug!(?key, "transport failed for a server transaction")
                }
                Action::Deliver(_) | Action::DeliverAck(_) => {}
            }
        }
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((key, generation)) = self.timer_j.pop_due(now) {
            if self.txs.generation(&key) == Some(generation) {
                let actions = self.feed(&key, Input::Timer(Timer::J));
                self.apply(&key, actions).await;
            }
        }
        while let Some(target) = self.timers.pop_due(now) {
            match target {
                TimerKey::Server(key, timer) => {
                    let actions = self.feed(&key, Input::Timer(timer));
                    self.apply(&key, actions).await;
                }
                TimerKey::Client(key, timer) => {
                    let events = self.client_timer(key, timer).await;
                    self.dispatch(events).await;
                }
                TimerKey::Call(call, timer) => {
                    self.call_event(b2bua::Event::Timer(call, timer)).await
                }
            }
        }
    }

    async fn send(&self, protocol: Protocol, dest: SocketAddr, msg: &Message) {
        self.send_bytes(protocol, dest, Bytes::from(msg.to_bytes()))
            .await
    }

    async fn send_bytes(&self, protocol: Protocol, dest: SocketAddr, bytes: Bytes) {
        if let Err(e) = self.transport.send(protocol, dest, bytes).await {
            tracing::debug!(%dest, error = %e, "SIP send failed");
        }
    }

    /// Arms (or re-arms) a timer on the one queue.
    fn arm(&mut self, target: TimerKey, after: std::time::Duration) {
        self.timers.arm(target, Instant::now() + after);
    }

    /// Sends a response through its server transaction.
    async fn respond(&mut self, key: &Key, resp: Response) {
        let actions = self.feed(key, Input::Respond(resp));
        self.apply(key, actions).await;
    }

    fn tag(&self) -> String {
        self.rng.hex::<6>()
    }

    /// The transaction user: decides the answer to a new request (`to` is
    /// its parsed To header).
    fn answer(
        &mut self,
        req: &Request,
        to: Option<&NameAddr>,
        source: SocketAddr,
        protocol: Protocol,
    ) -> Response {
        let tag = self.tag();
        let reply = |status: u16| reply(req, status, &tag);
        if req.method != Method::Cancel {
            let required = build::unsupported_requirements(req);
            if !required.is_empty() {
                let mut r = reply(420);
                r.headers.push(HeaderName::Unsupported, required.join(", "));
                return r;
            }
        }
        let in_dialog = to.is_some_and(|to| to.params.get("tag").is_some());
        match req.method {
            Method::Options => {
                let mut r = reply(200);
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, "application/sdp");
                r
            }
            Method::Register => self.register(req, to, source, protocol, &tag),
            Method::Cancel => reply(481), // no INVITE is ever left pending yet
            Method::Other(_) => {
                let mut r = reply(501);
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
            _ if in_dialog => reply(481),
            _ => {
                let mut r = reply(405);
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
        }
    }

    fn register(
        &mut self,
        req: &Request,
        to: Option<&NameAddr>,
        source: SocketAddr,
        protocol: Protocol,
        tag: &str,
    ) -> Response {
        let now = self.clock.now();
        let reply = |status: u16| reply(req, status, tag);
        let Some(to) = to else {
            return reply(400);
        };
        if !to.uri.is_sip() {
            let mut r = reply(400);
            r.reason = "To Must Be a SIP or SIPS URI".into();
            return r;
        }
        let creds = req
            .headers
            .lines(&HeaderName::Authorization)
            .filter_map(Credentials::parse)
            .find(|c| c.realm == REALM);
        let challenge = |auth: &DigestAuth, stale: bool| {
            let mut r = reply(401);
            for c in auth.challenges(now, stale) {
                r.headers.push(HeaderName::WwwAuthenticate, c);
            }
            r
        };
        let Some(creds) = creds else {
            return challenge(&self.auth, false);
        };
        let Some(alg) = creds.algorithm() else {
            return challenge(&self.auth, false);
        };
        let device = self.devices.get(&creds.username);
        // Unknown users are checked against a dummy HA1 so they cost (and
        // answer) the same as a wrong password.
        let dummy;
        let ha1 = match device {
            Some(d) => d.ha1(alg),
            None => {
                dummy = alg.hash("no such user");
                &dummy
            }
        };
        let device = device.map(|d| (d.device_id, d.username.clone()));
        match self.auth.verify(&creds, "REGISTER", ha1, now) {
            Verdict::Ok if device.is_some() => {}
            Verdict::Stale => return challenge(&self.auth, true),
            Verdict::Rechallenge => return challenge(&self.auth, false),
            Verdict::Ok | Verdict::Rejected => {
                tracing::info!(%source, username = %creds.username, "SIP authentication failed");
                self.guard.auth_failed(source.ip(), now);
                return reply(403);
            }
        }
        let Some((device_id, username)) = device else {
            return reply(403);
        };
        if to.uri.user_unescaped().as_deref() != Some(username.as_str()) {
            let mut r = reply(403);
            r.reason = "Credentials Do Not Match the AOR".into();
            return r;
        }
        match self
            .registrar
            .register(device_id, req, source, protocol, now)
        {
            Ok(bindings) => {
                let mut r = reply(200);
                for b in bindings {
                    let left = b.expires_at.since(now).as_secs();
                    r.headers.push(
                        HeaderName::Contact,
                        format!("<{}>;expires={left}", b.contact),
                    );
                }
                r
            }
            Err(RegisterError::IntervalTooBrief) => {
                let mut r = reply(423);
                r.headers
                    .push(HeaderName::MinExpires, MIN_EXPIRES.to_string());
                r
            }
            Err(RegisterError::BadRequest(why)) => {
                let mut r = reply(400);
                r.headers.push(
                    HeaderName::Other("Warning".into()),
                    crate::sip::message::text::warning(&why),
                );
                r
            }
        }
    }
}

fn contact_info(b: &Binding) -> ContactInfo {
    ContactInfo {
        contact: b.contact.clone(),
        expires_at: b.expires_at.to_string(),
        source: b.source.to_string(),
        transport: match b.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        },
        user_agent: b.user_agent.clone(),
    }
}

/// The next datagram, or never in TLS-only mode.
async fn recv_udp(udp: &mut Option<UdpReceiver>) -> Option<Received> {
    match udp {
        Some(udp) => Some(udp.recv().await),
        None => std::future::pending().await,
    }
}
