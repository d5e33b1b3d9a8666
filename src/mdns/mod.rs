//! Multicast DNS (RFC 6762) and DNS-SD (RFC 6763) for the appliance: the
//! Pi answers as `homeline.local` and advertises its web UI as an
//! `_http._tcp` service, so a family types `http://homeline.local` and a
//! browser or a phone's service browser finds it without knowing its
//! address.
//!
//! The responder runs inside the binary rather than relying on Avahi: one
//! process to start, supervise and update; no D-Bus daemon and no
//! `avahi-daemon` with its own configuration (and its own writable state)
//! on a read-only root; the host name, port and instance name come from the
//! same settings as everything else, and the instance follows the
//! household's name as soon as the setup wizard saves it. It runs on its
//! own task, off the SIP loop, and never sends anything but mDNS to
//! 224.0.0.251 or unicast answers to on-link askers.
//!
//! What is implemented: A for `<mdns.hostname>.local` with the address of
//! the interface a query came in on (IP_PKTINFO) and AAAA with that
//! interface's IPv6 addresses (the responder itself listens on IPv4 only),
//! NSEC for the types a name lacks; `_services._dns-sd._udp.local` PTR,
//! `_http._tcp.local` PTR to `<instance>._http._tcp.local`, its SRV (the
//! port of `http.listen`) and TXT (`path=/`), with the additional records
//! a browser needs. The unicast-response (QU) bit; legacy unicast queries
//! (source port other than 5353, e.g. `dig -p 5353 @224.0.0.251`) answered
//! by unicast with their ID and question and TTLs of at most 10 s;
//! known-answer suppression; shared answers delayed 20-120 ms. Probing,
//! two announcements one second apart, goodbye (TTL 0) at shutdown,
//! simultaneous-probe tie-breaking, and conflicts: a conflict while probing
//! takes the next name (`homeline-2.local`, `Homeline (2)`, logged), one
//! seen afterwards sends the responder back to probing. Interfaces are
//! looked at every few seconds, so a late Wi-Fi or DHCP address is joined
//! and announced when it appears.
//!
//! Not implemented: IPv6 transport (ff02::fb), the once-per-second
//! multicast rate limit per record, answer aggregation across queries and
//! truncated (TC) known-answer lists spanning several datagrams.
//!
//! [`message`] is the wire format (on top of [`crate::dns::wire`]'s
//! reader), [`zone`] the records and answers as pure functions, [`iface`]
//! the interfaces, [`responder`] the socket and the phases.

pub mod iface;
pub mod message;
pub mod responder;
pub mod zone;

pub use responder::{run, Config};

/// The service instance name when the household has none yet.
pub const DEFAULT_INSTANCE: &str = "Homeline";
