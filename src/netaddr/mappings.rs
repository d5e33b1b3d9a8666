//! The forwards Homeline needs from the router and how they are asked for:
//! over UPnP-IGD (AddPortMapping / DeletePortMapping) or NAT-PMP (map with a
//! lifetime, lifetime 0 to remove). A range (RTP) is one mapping per port;
//! it stands as one: ok when every port is mapped, refused at the first
//! port the router refuses (the ports mapped before it are removed again).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::upnp::Igd;
use super::{natpmp, MappingState, MappingStatus, NetError, Protocol, Source};
use crate::clock::Timestamp;

/// Attempts per NAT-PMP request (250 ms doubling: under 4 s).
const NATPMP_TRIES: u32 = 4;

/// One forward Homeline needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `sip-tls`, `rtp`, `http` or `https`.
    pub name: &'static str,
    /// Its transport.
    pub protocol: Protocol,
    /// External ports, first and last.
    pub external: (u16, u16),
    /// The port here the first external port goes to (a range keeps its
    /// offsets).
    pub internal: u16,
}

impl Forward {
    fn ports(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        (self.external.0..=self.external.1).map(move |p| (p, self.internal + (p - self.external.0)))
    }

    /// Its state with `status`.
    pub fn state(
        &self,
        status: MappingStatus,
        detail: Option<String>,
        via: Option<Source>,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> MappingState {
        MappingState {
            name: self.name.to_string(),
            protocol: self.protocol,
            external_first: self.external.0,
            external_last: self.external.1,
            internal_port: self.internal,
            status,
            detail,
            via,
            expires_at,
            updated_at: Some(now),
        }
    }
}

/// What the forwards are: SIP over TLS on the port Twilio dials (to our TLS
/// listener), the RTP range (the same ports here: the SDP names them), and
/// 80/443 to the HTTP and HTTPS listeners (webhooks, ACME's HTTP-01) when
/// they run. `listeners` are the bound ones by name (`run/ports.json`).
pub fn plan(
    listeners: &[(&'static str, std::net::SocketAddr)],
    sip_public_port: u16,
    rtp: (u16, u16),
) -> Vec<Forward> {
    let port = |name: &str| {
        listeners
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.port())
    };
    let mut v = Vec::new();
    if let Some(p) = port("sip_tls") {
        v.push(Forward {
            name: "sip-tls",
            protocol: Protocol::Tcp,
            external: (sip_public_port, sip_public_port),
            internal: p,
        });
    }
    v.push(Forward {
        name: "rtp",
        protocol: Protocol::Udp,
        external: rtp,
        internal: rtp.0,
    });
    if let Some(p) = port("http") {
        v.push(Forward {
            name: "http",
            protocol: Protocol::Tcp,
            external: (80, 80),
            internal: p,
        });
    }
    if let Some(p) = port("https") {
        v.push(Forward {
            name: "https",
            protocol: Protocol::Tcp,
            external: (443, 443),
            internal: p,
        });
    }
    v
}

/// The router that is asked for forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Router {
    /// A UPnP Internet Gateway Device.
    Upnp(Igd),
    /// A NAT-PMP gateway.
    NatPmp(Ipv4Addr),
}

impl Router {
    /// How it is asked.
    pub fn via(&self) -> Source {
        match self {
            Router::Upnp(_) => Source::Upnp,
            Router::NatPmp(_) => Source::NatPmp,
        }
    }

    async fn map_one(
        &self,
        protocol: Protocol,
        external: u16,
        client: Ipv4Addr,
        internal: u16,
        lease: Duration,
    ) -> Result<(), NetError> {
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        match self {
            Router::Upnp(igd) => {
                let r = igd
                    .add_port_mapping(protocol, external, client, internal, secs, "Homeline")
                    .await;
                match r {
                    // 725 OnlyPermanentLeasesSupported: ask for a permanent
                    // one (removed at shutdown and when turned off).
                    Err(NetError::Refused(e)) if e.starts_with("UPnP error 725") => {
                        igd.add_port_mapping(protocol, external, client, internal, 0, "Homeline")
                            .await
                    }
                    r => r,
                }
            }
            Router::NatPmp(gw) => {
                let g = natpmp::map(*gw, protocol, internal, external, secs, NATPMP_TRIES).await?;
                if g.external_port != external {
                    let _ = natpmp::map(*gw, protocol, internal, g.external_port, 0, NATPMP_TRIES)
                        .await;
                    return Err(NetError::Refused(format!(
                        "the router offered port {} instead of {external}",
                        g.external_port
                    )));
                }
                Ok(())
            }
        }
    }

    async fn unmap_one(
        &self,
        protocol: Protocol,
        external: u16,
        internal: u16,
    ) -> Result<(), NetError> {
        match self {
            Router::Upnp(igd) => igd.delete_port_mapping(protocol, external).await,
            Router::NatPmp(gw) => natpmp::map(*gw, protocol, internal, external, 0, NATPMP_TRIES)
                .await
                .map(|_| ()),
        }
    }

    /// Asks for (or renews) every port of `f` for `lease`.
    pub async fn open(
        &self,
        f: &Forward,
        client: Ipv4Addr,
        lease: Duration,
    ) -> Result<(), NetError> {
        let mut done = Vec::new();
        for (ext, int) in f.ports() {
            match self.map_one(f.protocol, ext, client, int, lease).await {
                Ok(()) => done.push((ext, int)),
                Err(e) => {
                    for (ext, int) in done {
                        let _ = self.unmap_one(f.protocol, ext, int).await;
                    }
                    let e = if f.external.0 == f.external.1 {
                        e
                    } else {
                        NetError::Refused(format!("port {ext}: {e}"))
                    };
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes every port of `f`; the first error is returned after trying all.
    pub async fn close(&self, f: &Forward) -> Result<(), NetError> {
        let mut first = None;
        for (ext, int) in f.ports() {
            if let Err(e) = self.unmap_one(f.protocol, ext, int).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_what_listens() {
        let listeners = [
            ("http", "0.0.0.0:8080".parse().expect("a")),
            ("sip_tls", "0.0.0.0:5062".parse().expect("a")),
        ];
        let p = plan(&listeners, 5061, (10000, 10003));
        let names: Vec<_> = p.iter().map(|f| f.name).collect();
        assert_eq!(names, vec!["sip-tls", "rtp", "http"], "no https listener");
        assert_eq!(p[0].external, (5061, 5061));
        assert_eq!(p[0].internal, 5062);
        assert_eq!(p[2].external, (80, 80));
        assert_eq!(p[2].internal, 8080);
        let ports: Vec<_> = p[1].ports().collect();
        assert_eq!(
            ports,
            vec![
                (10000, 10000),
                (10001, 10001),
                (10002, 10002),
                (10003, 10003)
            ]
        );
    }
}
