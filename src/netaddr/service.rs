//! The task that keeps the public address, the router's forwards and the
//! dynamic-DNS name up to date: a check at start, every
//! `net.check_interval_secs`, when this machine's addresses change, before
//! a mapping's lease runs out, and when the API asks (`POST
//! /api/network/refresh`). It never blocks the SIP loop: the endpoint only
//! receives the new address as a command.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::mappings::{self, Forward, Router};
use super::{
    ddns, natpmp, persist, stun, upnp, DdnsState, MappingState, MappingStatus, MethodResult,
    NetError, NetHandle, NetworkState, Source,
};
use crate::clock::{SharedClock, Timestamp};
use crate::events::{AlertChange, Event, Events};
use crate::secrets::SecretBox;
use crate::settings::NetSettings;
use crate::store::{alerts, config, secrets, Db, StoreError};

/// How often this machine's addresses are compared (no I/O beyond a
/// `getifaddrs`).
const INTERFACE_SAMPLE: Duration = Duration::from_secs(30);
/// How long SSDP answers are awaited.
const SSDP_WAIT: Duration = Duration::from_secs(2);
/// NAT-PMP attempts when asking the external address (250 ms doubling).
const NATPMP_TRIES: u32 = 3;
/// STUN: RTO and attempts (RFC 8489 §6.2.1, fewer than its 7: a check
/// runs again in a few minutes anyway).
const STUN_RTO: Duration = Duration::from_millis(500);
const STUN_TRIES: u32 = 4;
/// A DNS name is updated at least this often even if nothing changed.
const DDNS_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// The alert key of failing dynamic-DNS updates.
pub const DDNS_ALERT: &str = "ddns";
/// `config` keys read at each check (runtime config, `crate::sysconfig`).
const AUTO_FORWARD: &str = "router.auto_forward";
const DDNS_PROVIDER: &str = "ddns.provider";
const DDNS_DOMAIN: &str = "ddns.domain";
const DDNS_TOKEN: &str = "ddns.token";

/// What the service needs.
pub struct NetSetup {
    /// The database.
    pub db: Db,
    /// The one clock.
    pub clock: SharedClock,
    /// Opens the DuckDNS token.
    pub secrets: Arc<SecretBox>,
    /// Where a new address goes (the next call's SDP).
    pub sip: crate::endpoint::SipHandle,
    /// Where changes and alerts are announced.
    pub events: Events,
    /// `net.*`.
    pub settings: NetSettings,
    /// `media.public_ip`, when set by hand (then nothing is discovered).
    pub manual_ip: Option<IpAddr>,
    /// The bound listeners by name (what the forwards point at).
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// The RTP range.
    pub rtp: (u16, u16),
}

/// Starts the service; it runs until `stopped`, then removes the forwards
/// it made.
pub fn start(
    setup: NetSetup,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> (NetHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(8);
    let handle = NetHandle {
        state: Arc::new(RwLock::new(NetworkState {
            discovery: setup.settings.discover_public_ip && setup.manual_ip.is_none(),
            public_ip: setup.manual_ip,
            source: if setup.manual_ip.is_some() {
                Source::Manual
            } else {
                Source::None
            },
            ..NetworkState::default()
        })),
        refresh: Some(tx),
    };
    let service = Service {
        shared: handle.shared(),
        setup,
        router: None,
        mappings: Vec::new(),
        renew_at: None,
        lan: BTreeSet::new(),
        ddns: DdnsState::default(),
    };
    let task = tokio::spawn(service.run(rx, stopped));
    (handle, task)
}

struct Service {
    setup: NetSetup,
    shared: Arc<RwLock<NetworkState>>,
    /// The router forwards are asked of (found at the last check).
    router: Option<Router>,
    /// The forwards' states (what is stored).
    mappings: Vec<MappingState>,
    /// When the granted mappings must be renewed.
    renew_at: Option<tokio::time::Instant>,
    /// This machine's IPv4 addresses at the last sample.
    lan: BTreeSet<Ipv4Addr>,
    /// The DNS name's state as stored.
    ddns: DdnsState,
}

/// The runtime config a check reads.
struct Runtime {
    auto_forward: bool,
    sip_public_port: u16,
    ddns: Option<(String, String)>,
    ddns_error: Option<String>,
}

impl Service {
    async fn run(
        mut self,
        mut refresh: mpsc::Receiver<oneshot::Sender<()>>,
        stopped: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stopped);
        self.restore().await;
        self.lan = lan_addresses();
        let mut sample = tokio::time::interval(INTERFACE_SAMPLE);
        sample.tick().await;
        let mut waiters = Vec::new();
        loop {
            self.check().await;
            for w in waiters.drain(..) {
                let _ = oneshot::Sender::send(w, ());
            }
            let mut wake = tokio::time::Instant::now() + self.setup.settings.check_interval;
            if let Some(r) = self.renew_at {
                wake = wake.min(r);
            }
            loop {
                tokio::select! {
                    _ = &mut stopped => {
                        self.close_all("removed at shutdown").await;
                        return;
                    }
                    _ = tokio::time::sleep_until(wake) => break,
                    w = refresh.recv() => {
                        if let Some(w) = w {
                            waiters.push(w);
                        }
                        break;
                    }
                    _ = sample.tick() => {
                        let now = lan_addresses();
                        if now != self.lan {
                            tracing::info!(before = ?self.lan, after = ?now, "this machine's addresses changed: checking the public address");
                            self.lan = now;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Loads what the last run found: the address is used at once (the
    /// first check may take seconds).
    async fn restore(&mut self) {
        let loaded = self.setup.db.call(|c| persist::load(c)).await;
        let (stored, mappings) = match loaded {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the stored network state");
                return;
            }
        };
        self.ddns = stored.ddns.clone();
        // Mappings marked ok belong to a run that ended without removing
        // them (a crash or power cut): they are renewed or removed below.
        self.mappings = mappings;
        let discovery = self.setup.settings.discover_public_ip && self.setup.manual_ip.is_none();
        if let (true, Some(ip)) = (discovery, stored.public_ip) {
            self.setup.sip.set_public_ip(Some(ip)).await;
            if let Ok(mut s) = self.shared.write() {
                s.public_ip = Some(ip);
                s.source = stored.source.unwrap_or(Source::None);
                s.changed_at = stored.changed_at;
            }
        }
        self.publish_mappings();
    }

    async fn runtime(&self) -> Runtime {
        let secret_box = self.setup.secrets.clone();
        let read = self
            .setup
            .db
            .call(move |c| {
                let auto = crate::sysconfig::flag(c, AUTO_FORWARD)?;
                let port = config::get(c, crate::sysconfig::TWILIO_SIP_PUBLIC_PORT)?
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(crate::sysconfig::DEFAULT_SIP_PUBLIC_PORT);
                let provider = config::get(c, DDNS_PROVIDER)?;
                let domain = config::get(c, DDNS_DOMAIN)?;
                let token = secrets::get(c, DDNS_TOKEN)?;
                Ok::<_, StoreError>((auto, port, provider, domain, token))
            })
            .await;
        let (auto_forward, sip_public_port, provider, domain, token) = match read {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the router settings");
                (
                    false,
                    crate::sysconfig::DEFAULT_SIP_PUBLIC_PORT,
                    None,
                    None,
                    None,
                )
            }
        };
        let (ddns, ddns_error) = match (provider.as_deref(), domain, token) {
            (Some("duckdns"), Some(d), Some(t)) => {
                match crate::sysconfig::open_secret(&secret_box, DDNS_TOKEN, Some(t)) {
                    Ok(Some(token)) => match ddns::subdomain(&d) {
                        Ok(sub) => (Some((sub, token)), None),
                        Err(e) => (None, Some(e)),
                    },
                    _ => (
                        None,
                        Some("the DuckDNS token cannot be opened; enter it again".into()),
                    ),
                }
            }
            (Some("duckdns"), _, _) => (None, Some("DuckDNS needs a name and a token".into())),
            _ => (None, None),
        };
        Runtime {
            auto_forward,
            sip_public_port,
            ddns,
            ddns_error,
        }
    }

    async fn check(&mut self) {
        let rt = self.runtime().await;
        let discovery = self.setup.settings.discover_public_ip && self.setup.manual_ip.is_none();
        let gateway = natpmp::system_gateway();
        let mut methods = Vec::new();
        let mut from_router = None;
        if discovery || rt.auto_forward {
            let (pmp, igd) = tokio::join!(
                async {
                    match gateway {
                        Some(gw) => natpmp::external_address(gw, NATPMP_TRIES).await,
                        None => Err(NetError::Unreachable("no default gateway".into())),
                    }
                },
                upnp::discover(gateway, SSDP_WAIT),
            );
            let igd_ip = match &igd {
                Ok(igd) => igd.external_ip().await,
                Err(e) => Err(e.clone()),
            };
            methods.push(result(Source::NatPmp, pmp.clone().map(IpAddr::V4)));
            methods.push(result(Source::Upnp, igd_ip.clone()));
            self.router = match (igd, &pmp) {
                (Ok(igd), _) => Some(Router::Upnp(igd)),
                (Err(_), Ok(_)) => gateway.map(Router::NatPmp),
                _ => None,
            };
            from_router = igd_ip
                .ok()
                .map(|ip| (ip, Source::Upnp))
                .or(pmp.ok().map(|ip| (IpAddr::V4(ip), Source::NatPmp)));
        }
        let mut from_stun = None;
        if discovery {
            if let Some(server) = &self.setup.settings.stun_server {
                let r = stun::public_address(server, STUN_RTO, STUN_TRIES).await;
                from_stun = r.as_ref().ok().copied();
                methods.push(result(Source::Stun, r));
            }
        }
        let now = self.setup.clock.now();
        if discovery {
            if let Some((ip, source)) = choose(from_router, from_stun) {
                self.follow(ip, source, now).await;
            } else {
                tracing::warn!(
                    ?methods,
                    "the public address could not be found; keeping the last one"
                );
            }
        }
        self.forwards(&rt, gateway, now).await;
        self.update_dns(&rt, now).await;
        if let Ok(mut s) = self.shared.write() {
            s.discovery = discovery;
            s.gateway = gateway;
            s.methods = methods;
            s.checked_at = Some(now);
            s.auto_forward = rt.auto_forward;
        }
        self.publish_mappings();
    }

    /// Uses `ip` from now on if it is new.
    async fn follow(&mut self, ip: IpAddr, source: Source, now: Timestamp) {
        let (old, old_source) = match self.shared.read() {
            Ok(s) => (s.public_ip, s.source),
            Err(_) => (None, Source::None),
        };
        if old == Some(ip) {
            if old_source != source {
                if let Ok(mut s) = self.shared.write() {
                    s.source = source;
                }
            }
            return;
        }
        tracing::info!(?old, new = %ip, source = source.as_str(), "public address changed");
        self.setup.sip.set_public_ip(Some(ip)).await;
        if let Ok(mut s) = self.shared.write() {
            s.public_ip = Some(ip);
            s.source = source;
            s.changed_at = Some(now);
        }
        if let Err(e) = self
            .setup
            .db
            .call(move |c| persist::save_address(c, Some(ip), source, now))
            .await
        {
            tracing::warn!(error = %e, "could not store the public address");
        }
        self.setup
            .events
            .publish(Event::PublicAddressChanged { ip });
    }

    /// Asks for, renews or removes the forwards.
    async fn forwards(&mut self, rt: &Runtime, gateway: Option<Ipv4Addr>, now: Timestamp) {
        let plan = mappings::plan(&self.setup.listeners, rt.sip_public_port, self.setup.rtp);
        if !rt.auto_forward {
            self.close_all("not asked for: the admin did not agree")
                .await;
            self.renew_at = None;
            return;
        }
        let Some(router) = self.router.clone() else {
            for f in &plan {
                self.set(f.state(
                    MappingStatus::Unsupported,
                    Some("the router answers neither UPnP-IGD nor NAT-PMP; forward the port by hand".into()),
                    None,
                    None,
                    now,
                ))
                .await;
            }
            self.renew_at = None;
            return;
        };
        let due = self
            .renew_at
            .is_none_or(|r| r <= tokio::time::Instant::now() + Duration::from_secs(1));
        let stale = plan.iter().any(|f| {
            !self.mappings.iter().any(|m| {
                m.name == f.name
                    && m.status == MappingStatus::Ok
                    && m.via == Some(router.via())
                    && (m.external_first, m.external_last, m.internal_port)
                        == (f.external.0, f.external.1, f.internal)
            })
        });
        if !due && !stale {
            return;
        }
        let client = client_address(gateway, &router).await;
        let lease = self.setup.settings.mapping_lease;
        let expires = now.plus(lease);
        for f in &plan {
            let state = match client {
                None => f.state(
                    MappingStatus::Refused,
                    Some("no local address towards the router".into()),
                    Some(router.via()),
                    None,
                    now,
                ),
                Some(client) => match router.open(f, client, lease).await {
                    Ok(()) => f.state(
                        MappingStatus::Ok,
                        None,
                        Some(router.via()),
                        Some(expires),
                        now,
                    ),
                    Err(e) => {
                        tracing::warn!(forward = f.name, error = %e, "the router refused a forward");
                        let status = match e {
                            NetError::Unsupported(_) => MappingStatus::Unsupported,
                            _ => MappingStatus::Refused,
                        };
                        f.state(status, Some(e.to_string()), Some(router.via()), None, now)
                    }
                },
            };
            self.set(state).await;
        }
        self.renew_at = Some(tokio::time::Instant::now() + lease / 2);
    }

    /// Removes every forward this appliance made; the others are marked
    /// off with `why`.
    async fn close_all(&mut self, why: &str) {
        let now = self.setup.clock.now();
        let open: Vec<MappingState> = self
            .mappings
            .iter()
            .filter(|m| m.status != MappingStatus::Off)
            .cloned()
            .collect();
        for m in open {
            let mut detail = Some(why.to_string());
            if m.status == MappingStatus::Ok {
                let f = Forward {
                    name: "",
                    protocol: m.protocol,
                    external: (m.external_first, m.external_last),
                    internal: m.internal_port,
                };
                let router = match (&self.router, m.via) {
                    (Some(r), Some(v)) if r.via() == v => Some(r.clone()),
                    (_, Some(Source::NatPmp)) => natpmp::system_gateway().map(Router::NatPmp),
                    _ => self.router.clone(),
                };
                if let Some(r) = router {
                    if let Err(e) = r.close(&f).await {
                        tracing::warn!(forward = m.name, error = %e, "could not remove a forward");
                        detail = Some(format!("removing it failed: {e}"));
                    } else {
                        tracing::info!(forward = m.name, "forward removed");
                    }
                }
            }
            let mut off = m.clone();
            off.status = MappingStatus::Off;
            off.detail = detail;
            off.expires_at = None;
            off.updated_at = Some(now);
            self.set(off).await;
        }
        self.publish_mappings();
    }

    /// Keeps `state`; writes it only when it differs from the stored one
    /// (a renewal that changes nothing but the lease writes nothing).
    async fn set(&mut self, state: MappingState) {
        let now = state.updated_at.unwrap_or_else(|| self.setup.clock.now());
        let same = |a: &MappingState, b: &MappingState| {
            (
                a.protocol,
                a.external_first,
                a.external_last,
                a.internal_port,
                a.status,
                &a.detail,
                a.via,
            ) == (
                b.protocol,
                b.external_first,
                b.external_last,
                b.internal_port,
                b.status,
                &b.detail,
                b.via,
            )
        };
        let changed = match self.mappings.iter_mut().find(|m| m.name == state.name) {
            Some(m) => {
                let changed = !same(m, &state);
                if changed {
                    *m = state.clone();
                } else {
                    m.expires_at = state.expires_at;
                }
                changed
            }
            None => {
                self.mappings.push(state.clone());
                true
            }
        };
        if changed {
            let s = state.clone();
            if let Err(e) = self
                .setup
                .db
                .call(move |c| persist::save_mapping(c, &s, now))
                .await
            {
                tracing::warn!(error = %e, "could not store a forward's state");
            }
        }
    }

    fn publish_mappings(&self) {
        if let Ok(mut s) = self.shared.write() {
            let mut m = self.mappings.clone();
            m.sort_by_key(|m| order(&m.name));
            s.mappings = m;
        }
    }

    /// Points the DNS name at the address when it changed, once a day, and
    /// after a failure; failures raise an alert, success clears it.
    async fn update_dns(&mut self, rt: &Runtime, now: Timestamp) {
        let ip = self.shared.read().ok().and_then(|s| s.public_ip);
        let Some((sub, token)) = &rt.ddns else {
            let status = if rt.ddns_error.is_some() {
                "failed"
            } else {
                "off"
            };
            let next = DdnsState {
                provider: None,
                name: None,
                status: status.into(),
                error: rt.ddns_error.clone(),
                ..self.ddns.clone()
            };
            self.store_ddns(next, now).await;
            return;
        };
        // Without a known address DuckDNS takes the request's source.
        let due = self.ddns.ip != ip
            || self.ddns.status != "ok"
            || self
                .ddns
                .updated_at
                .is_none_or(|t| now.since(t) >= DDNS_REFRESH);
        let mut next = self.ddns.clone();
        next.provider = Some("duckdns".into());
        next.name = Some(ddns::full_name(sub));
        if due {
            match ddns::update(&self.setup.settings.duckdns_url, sub, token, ip).await {
                Ok(()) => {
                    tracing::info!(name = %ddns::full_name(sub), ?ip, "DuckDNS updated");
                    next.ip = ip;
                    next.status = "ok".into();
                    next.error = None;
                    next.updated_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(name = %ddns::full_name(sub), error = %e, "DuckDNS update failed");
                    next.status = "failed".into();
                    next.error = Some(e.to_string());
                }
            }
        }
        self.store_ddns(next, now).await;
    }

    async fn store_ddns(&mut self, next: DdnsState, now: Timestamp) {
        let changed = (next.ip, &next.status, &next.error, next.updated_at)
            != (
                self.ddns.ip,
                &self.ddns.status,
                &self.ddns.error,
                self.ddns.updated_at,
            );
        let failed = next.status == "failed";
        let was_failed = self.ddns.status == "failed";
        self.ddns = next.clone();
        if let Ok(mut s) = self.shared.write() {
            s.ddns = next.clone();
        }
        if !changed {
            return;
        }
        let message = format!(
            "The dynamic DNS name could not be updated: {}",
            next.error.clone().unwrap_or_default()
        );
        let outcome = self
            .setup
            .db
            .call(move |c| {
                persist::save_ddns(c, &next, now)?;
                let raised = if failed {
                    alerts::raise_id(c, DDNS_ALERT, &message, now)?
                } else {
                    None
                };
                let cleared = if !failed && was_failed {
                    alerts::clear_id(c, DDNS_ALERT, now)?
                } else {
                    None
                };
                Ok::<_, StoreError>((raised, cleared))
            })
            .await;
        match outcome {
            Ok((raised, cleared)) => {
                if let Some(alert_id) = raised {
                    self.setup.events.publish(Event::Alert {
                        alert_id,
                        change: AlertChange::Raised,
                    });
                }
                if let Some(alert_id) = cleared {
                    self.setup.events.publish(Event::Alert {
                        alert_id,
                        change: AlertChange::Dismissed,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not store the DNS update"),
        }
    }
}

fn result(method: Source, r: Result<IpAddr, NetError>) -> MethodResult {
    match r {
        Ok(ip) => MethodResult {
            method,
            ip: Some(ip),
            error: None,
        },
        Err(e) => MethodResult {
            method,
            ip: None,
            error: Some(e.to_string()),
        },
    }
}

/// Which address to use: the router's when it is public (it is the one the
/// forwards are on), else STUN's (the router sits behind another NAT),
/// else the router's anyway.
pub fn choose(router: Option<(IpAddr, Source)>, stun: Option<IpAddr>) -> Option<(IpAddr, Source)> {
    match (router, stun) {
        (Some((ip, s)), _) if super::is_public(ip) => Some((ip, s)),
        (_, Some(ip)) => Some((ip, Source::Stun)),
        (r, None) => r,
    }
}

fn order(name: &str) -> usize {
    ["sip-tls", "rtp", "http", "https"]
        .iter()
        .position(|n| *n == name)
        .unwrap_or(9)
}

/// Our address towards the router (what its forwards point at).
async fn client_address(gateway: Option<Ipv4Addr>, router: &Router) -> Option<Ipv4Addr> {
    let target = match router {
        Router::NatPmp(gw) => Some(*gw),
        Router::Upnp(igd) => igd
            .control
            .authority
            .rsplit_once(':')
            .and_then(|(h, _)| h.parse().ok())
            .or(gateway),
    }?;
    let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await.ok()?;
    s.connect((target, 9)).await.ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// This machine's IPv4 addresses (not loopback).
fn lan_addresses() -> BTreeSet<Ipv4Addr> {
    let mut out = BTreeSet::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                if !v4.ip().is_loopback() {
                    out.insert(v4.ip());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routers_public_address_wins_and_stun_sees_through_double_nat() {
        let public: IpAddr = "203.0.113.5".parse().expect("ip");
        let private: IpAddr = "192.168.0.2".parse().expect("ip");
        let stun_ip: IpAddr = "198.51.100.9".parse().expect("ip");
        assert_eq!(
            choose(Some((public, Source::Upnp)), Some(stun_ip)),
            Some((public, Source::Upnp))
        );
        assert_eq!(
            choose(Some((private, Source::NatPmp)), Some(stun_ip)),
            Some((stun_ip, Source::Stun))
        );
        assert_eq!(
            choose(Some((private, Source::NatPmp)), None),
            Some((private, Source::NatPmp))
        );
        assert_eq!(choose(None, Some(stun_ip)), Some((stun_ip, Source::Stun)));
        assert_eq!(choose(None, None), None);
    }
}
