//! The interfaces mDNS runs on: every one that is up, can multicast, is not
//! the loopback and has an IPv4 address. Read with getifaddrs(3) each time
//! the responder looks again, because a Pi's Wi-Fi or DHCP address often
//! arrives after the service started.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use nix::net::if_::InterfaceFlags;

use super::zone::Addrs;

/// One interface as seen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel index (what IP_PKTINFO reports a datagram came in on).
    pub index: u32,
    /// Name, for the log (`eth0`, `wlan0`).
    pub name: String,
    /// Its addresses (the first IPv4 address; every IPv6 one).
    pub addrs: Addrs,
    /// The IPv4 netmask, to tell on-link askers from others.
    pub netmask: Ipv4Addr,
}

impl Interface {
    /// Whether `ip` is on this interface's link: in its subnet, IPv4
    /// link-local (169.254/16), or one of our own addresses.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(self.netmask);
        (u32::from(ip) & mask) == (u32::from(self.addrs.v4) & mask) || ip.is_link_local()
    }
}

/// The interfaces mDNS should run on, by index.
pub fn current() -> BTreeMap<u32, Interface> {
    let mut out: BTreeMap<u32, Interface> = BTreeMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    let mut v6: BTreeMap<String, Vec<Ipv6Addr>> = BTreeMap::new();
    for ifa in addrs {
        let wanted = ifa.flags.contains(InterfaceFlags::IFF_UP)
            && ifa.flags.contains(InterfaceFlags::IFF_MULTICAST)
            && !ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        if !wanted {
            continue;
        }
        let Some(addr) = ifa.address else { continue };
        if let Some(sin6) = addr.as_sockaddr_in6() {
            v6.entry(ifa.interface_name.clone())
                .or_default()
                .push(sin6.ip());
            continue;
        }
        let Some(sin) = addr.as_sockaddr_in() else {
            continue;
        };
        let Ok(index) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) else {
            continue;
        };
        let netmask = ifa
            .netmask
            .and_then(|m| m.as_sockaddr_in().map(|m| m.ip()))
            .unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
        out.entry(index).or_insert(Interface {
            index,
            name: ifa.interface_name.clone(),
            addrs: Addrs {
                v4: sin.ip(),
                v6: vec![],
            },
            netmask,
        });
    }
    for iface in out.values_mut() {
        if let Some(list) = v6.remove(&iface.name) {
            iface.addrs.v6 = list;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_link_is_the_subnet_or_link_local() {
        let i = Interface {
            index: 2,
            name: "eth0".into(),
            addrs: Addrs {
                v4: Ipv4Addr::new(192, 168, 1, 20),
                v6: vec![],
            },
            netmask: Ipv4Addr::new(255, 255, 255, 0),
        };
        assert!(i.on_link(Ipv4Addr::new(192, 168, 1, 77)));
        assert!(i.on_link(Ipv4Addr::new(169, 254, 3, 4)));
        assert!(!i.on_link(Ipv4Addr::new(8, 8, 8, 8)));
        assert!(!i.on_link(Ipv4Addr::new(192, 168, 2, 1)));
    }

    #[test]
    fn the_loopback_is_never_used() {
        assert!(current().values().all(|i| !i.addrs.v4.is_loopback()));
    }
}
