//! The router's public address and port forwards, learnt and kept without
//! the household's help.
//!
//! Dynamic home addresses and forgotten forwards are what breaks calls from
//! Twilio at home (one-way audio, dead webhooks). The [`service`] task asks,
//! every few minutes and when this machine's addresses change:
//!
//! * the router itself: [`natpmp`] (RFC 6886) and [`upnp`] (UPnP-IGD over
//!   SSDP and SOAP, with [`http1`] for its HTTP);
//! * a [`stun`] server (RFC 8489), which sees the address the internet sees.
//!
//! It hands the address to the SIP endpoint (the next call's SDP carries it)
//! and publishes [`crate::events::Event::PublicAddressChanged`]; when the
//! admin agreed (`router.auto_forward`) it asks the router for the forwards
//! ([`mappings`]), renews them before their lease ends and removes them when
//! turned off or at shutdown; it keeps a dynamic-DNS name following the
//! address ([`ddns`], DuckDNS). Nothing here runs on the SIP loop, and
//! nothing leaves the LAN unless `net.discover_public_ip` (STUN) or the
//! `ddns` group (DuckDNS) asks for it. State changes (not checks) are
//! written to the database ([`persist`]).

pub mod ddns;
pub mod http1;
pub mod mappings;
pub mod natpmp;
pub mod persist;
pub mod service;
pub mod stun;
pub mod upnp;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Timestamp;

/// Why asking the network failed; the text is shown to the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Nobody could be reached (no route, no socket, no DNS).
    #[error("{0}")]
    Unreachable(String),
    /// Asked, but no answer came in time.
    #[error("{0}")]
    NoAnswer(String),
    /// The other side does not speak this protocol here.
    #[error("{0}")]
    Unsupported(String),
    /// The other side answered no (with its reason).
    #[error("{0}")]
    Refused(String),
}

/// A transport of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// UDP (RTP).
    Udp,
    /// TCP (SIP over TLS, HTTP, HTTPS).
    Tcp,
}

impl Protocol {
    /// As UPnP writes it.
    pub fn upnp(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        }
    }

    /// As the database and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }
}

/// Where the public address in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `media.public_ip` set by hand.
    Manual,
    /// The router, over NAT-PMP.
    NatPmp,
    /// The router, over UPnP-IGD.
    Upnp,
    /// A STUN server.
    Stun,
    /// Not known (discovery off or nothing answered).
    None,
}

impl Source {
    /// As the API and the database write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::NatPmp => "nat-pmp",
            Source::Upnp => "upnp",
            Source::Stun => "stun",
            Source::None => "none",
        }
    }

    /// Reads [`Source::as_str`] back.
    pub fn parse(s: &str) -> Source {
        match s {
            "manual" => Source::Manual,
            "nat-pmp" => Source::NatPmp,
            "upnp" => Source::Upnp,
            "stun" => Source::Stun,
            _ => Source::None,
        }
    }
}

/// What one way of asking found in the last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodResult {
    /// `nat-pmp`, `upnp` or `stun`.
    pub method: Source,
    /// The address it gave.
    pub ip: Option<IpAddr>,
    /// Why it gave none.
    pub error: Option<String>,
}

/// How a port mapping stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingStatus {
    /// The router forwards it.
    Ok,
    /// The router said no (see the detail).
    Refused,
    /// The router speaks neither UPnP-IGD nor NAT-PMP.
    Unsupported,
    /// Not asked for (the admin did not agree, or it was removed).
    Off,
}

impl MappingStatus {
    /// As the database writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingStatus::Ok => "ok",
            MappingStatus::Refused => "refused",
            MappingStatus::Unsupported => "unsupported",
            MappingStatus::Off => "off",
        }
    }

    /// Reads [`MappingStatus::as_str`] back.
    pub fn parse(s: &str) -> MappingStatus {
        match s {
            "ok" => MappingStatus::Ok,
            "refused" => MappingStatus::Refused,
            "unsupported" => MappingStatus::Unsupported,
            _ => MappingStatus::Off,
        }
    }
}

/// One forward Homeline needs and how it stands (what the API, the wizard
/// and the doctor show).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingState {
    /// `sip-tls`, `rtp`, `http` or `https`.
    pub name: String,
    /// Its transport.
    pub protocol: Protocol,
    /// The first external port.
    pub external_first: u16,
    /// The last external port (the same for a single port).
    pub external_last: u16,
    /// The port on this machine the first external one goes to.
    pub internal_port: u16,
    /// How it stands.
    pub status: MappingStatus,
    /// The router's answer when it refused, or why it is off.
    pub detail: Option<String>,
    /// `upnp` or `nat-pmp`, when asked of the router.
    pub via: Option<Source>,
    /// When the router forgets it unless renewed.
    #[serde(serialize_with = "ser_opt_ts")]
    pub expires_at: Option<Timestamp>,
    /// When it was last asked for, removed or refused.
    #[serde(serialize_with = "ser_opt_ts")]
    pub updated_at: Option<Timestamp>,
}

/// The dynamic-DNS name's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DdnsState {
    /// `duckdns`, or `None` when not configured.
    pub provider: Option<String>,
    /// The full name (`myhome.duckdns.org`).
    pub name: Option<String>,
    /// The address last sent successfully.
    pub ip: Option<IpAddr>,
    /// `ok`, `failed`, or `off`.
    pub status: String,
    /// Why the last update failed.
    pub error: Option<String>,
    /// The last successful update.
    #[serde(serialize_with = "ser_opt_ts")]
    pub updated_at: Option<Timestamp>,
}

/// Everything the API shows of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkState {
    /// The public address in use.
    pub public_ip: Option<IpAddr>,
    /// Where it came from.
    pub source: Source,
    /// Whether discovery runs (`net.discover_public_ip`, no `media.public_ip`).
    pub discovery: bool,
    /// The router's address (default gateway).
    pub gateway: Option<Ipv4Addr>,
    /// What each way of asking found in the last check.
    pub methods: Vec<MethodResult>,
    /// The last check.
    #[serde(serialize_with = "ser_opt_ts")]
    pub checked_at: Option<Timestamp>,
    /// When the address last changed.
    #[serde(serialize_with = "ser_opt_ts")]
    pub changed_at: Option<Timestamp>,
    /// Whether the admin agreed that the router may be asked for forwards.
    pub auto_forward: bool,
    /// The forwards and how they stand.
    pub mappings: Vec<MappingState>,
    /// The dynamic-DNS name.
    pub ddns: DdnsState,
}

impl Default for NetworkState {
    fn default() -> Self {
        NetworkState {
            public_ip: None,
            source: Source::None,
            discovery: false,
            gateway: None,
            methods: Vec::new(),
            checked_at: None,
            changed_at: None,
            auto_forward: false,
            mappings: Vec::new(),
            ddns: DdnsState {
                status: "off".into(),
                ..DdnsState::default()
            },
        }
    }
}

fn ser_opt_ts<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

/// Whether `ip` can be reached from the internet (not private, shared
/// CGNAT space, loopback or link-local): a router reporting such an
/// address sits behind another NAT.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The HTTP side's handle on the service: the state, and "check now".
#[derive(Debug, Clone, Default)]
pub struct NetHandle {
    state: Arc<RwLock<NetworkState>>,
    refresh: Option<mpsc::Sender<oneshot::Sender<()>>>,
}

impl NetHandle {
    /// A copy of the current state.
    pub fn state(&self) -> NetworkState {
        self.state.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Asks for a check now and waits (at most `limit`) until it is done;
    /// false when no service runs or it did not finish in time.
    pub async fn refresh(&self, limit: std::time::Duration) -> bool {
        let Some(tx) = &self.refresh else {
            return false;
        };
        let (done_tx, done_rx) = oneshot::channel();
        if tx.send(done_tx).await.is_err() {
            return false;
        }
        matches!(tokio::time::timeout(limit, done_rx).await, Ok(Ok(())))
    }

    pub(crate) fn shared(&self) -> Arc<RwLock<NetworkState>> {
        self.state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_shared_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "100.64.0.1",
            "169.254.1.1",
            "127.0.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["203.0.113.5", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }
}
