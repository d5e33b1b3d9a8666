//! Outgoing calls waiting for the address of Twilio's SIP Domain.
//!
//! The domain is resolved by [`crate::dns::Resolver`] off the SIP loop. A
//! call whose address is not cached is parked in the call table with no
//! fork (the phone has its 100 Trying; CANCEL and the API's hang-up work on
//! it as on any unanswered call) and listed here under the name. When the
//! lookup comes back as an event, each call still waiting gets its INVITE
//! to Twilio, or a 503 and a CDR if the name could not be resolved in time.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{Call, OfferMedia, Route};
use crate::dns::{Lookup, Resolved};
use crate::endpoint::Endpoint;
use crate::sip::message::Request;

/// Twilio's SIP port (the SIP Domain is reached over UDP, no SRV).
const TWILIO_SIP_PORT: u16 = 5060;

/// Calls by the (lower-cased) name they wait for.
#[derive(Debug, Default)]
pub(in crate::endpoint) struct AwaitingDns {
    calls: HashMap<String, Vec<u64>>,
}

/// Where outgoing calls go right now.
pub(super) enum TrunkDestination {
    /// Send them here.
    Ready(SocketAddr),
    /// No trunk, or its name has no address.
    Unknown,
    /// The name is being resolved.
    Resolving(String),
}

impl Endpoint {
    /// The trunk's address: the configured edge, an IP literal or a cached
    /// answer; otherwise a lookup is started and the caller waits for it.
    pub(super) fn trunk_destination(&mut self) -> TrunkDestination {
        let Some(trunk) = &self.directory.trunk else {
            return TrunkDestination::Unknown;
        };
        if let Some(edge) = trunk.edge {
            return TrunkDestination::Ready(edge);
        }
        let domain = trunk.domain.clone();
        match self.resolver.lookup(&domain, tokio::time::Instant::now()) {
            Lookup::Ready(addrs) => match addrs.first() {
                Some(ip) => TrunkDestination::Ready(SocketAddr::new(*ip, TWILIO_SIP_PORT)),
                None => TrunkDestination::Unknown,
            },
            Lookup::Pending => TrunkDestination::Resolving(domain),
        }
    }

    /// Parks `call` until `domain` is resolved.
    pub(super) fn await_trunk_address(&mut self, call: Call, domain: String) {
        let id = call.id;
        tracing::info!(call = id, %domain, "outgoing call waits for the SIP Domain's address");
        self.calls.by_invite.insert(call.a.key.clone(), id);
        self.calls.calls.insert(id, call);
        self.awaiting_dns
            .calls
            .entry(domain.to_ascii_lowercase())
            .or_default()
            .push(id);
    }

    /// A lookup finished: the calls waiting for it go on, or fail with 503.
    pub(in crate::endpoint) async fn on_resolved(&mut self, resolved: Resolved) {
        let name = resolved.name.to_ascii_lowercase();
        let outcome = self.resolver.finish(resolved, tokio::time::Instant::now());
        if let Err(e) = &outcome {
            tracing::warn!(domain = %name, error = %e, "the Twilio SIP Domain could not be resolved");
        }
        let dest = outcome
            .ok()
            .and_then(|addrs| addrs.first().copied())
            .map(|ip| SocketAddr::new(ip, TWILIO_SIP_PORT));
        for id in self.awaiting_dns.calls.remove(&name).unwrap_or_default() {
            // Gone already: cancelled or hung up while waiting.
            let Some(call) = self.calls.calls.remove(&id) else {
                continue;
            };
            self.calls.by_invite.remove(&call.a.key);
            let mut targets: Vec<(Request, Route, Option<i64>)> = Vec::new();
            if let (Some(dest), true) = (dest, self.directory.trunk.is_some()) {
                let media = OfferMedia {
                    port: call.relay.ports[1],
                    codecs: call.a.offer.audio.codecs.clone(),
                    telephone_event: call.telephone_event,
                    ptime: call.a.offer.audio.ptime,
                    towards_twilio: true,
                };
                let (number, from) = (call.to.clone(), call.from.clone());
                targets.push(self.trunk_invite(&media, &number, &from, dest));
            }
            let why = if dest.is_some() {
                "Twilio is not set up"
            } else {
                "Twilio's SIP edge could not be resolved"
            };
            self.launch(call, targets, (503, why)).await;
        }
    }
}
