//! The registrar (RFC 3261 §10.3): which phone can be reached where.
//!
//! Bindings live in memory. The database copy is written only when a binding
//! is created, changes (contact, transport, source address, User-Agent) or
//! is removed — never on a plain refresh — so phones re-registering every
//! minute cost the SD card nothing (the [`Persist`] channel carries only those
//! changes, in order). After a restart the stored bindings are loaded with a
//! short grace period, so phones keep ringing until they re-register.
//! Changes are published as [`RegistrationEvent`]s for the UI, MWI and routing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::clock::Timestamp;
use crate::sip::message::{HeaderName, NameAddr, Request};
use crate::sip::transport::Protocol;
use crate::store::registrations::{Binding as StoredBinding, Transport};

/// Registrations shorter than this are refused with 423.
pub const MIN_EXPIRES: u32 = 60;
/// Longest registration granted (longer requests are shortened).
pub const MAX_EXPIRES: u32 = 3600;
/// Used when the phone names no expiry.
pub const DEFAULT_EXPIRES: u32 = 3600;
/// Most contacts one phone may register at once.
pub const MAX_BINDINGS_PER_DEVICE: usize = 8;
/// Bindings loaded at start live at least this long, waiting for a refresh.
pub const RESTART_GRACE: Duration = Duration::from_secs(120);

/// One contact of one phone.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI as registered.
    pub contact: String,
    /// When it lapses.
    pub expires_at: Timestamp,
    /// The REGISTER's Call-ID (ordering of refreshes).
    pub call_id: String,
    /// The REGISTER's CSeq number.
    pub cseq: u32,
    /// Where the REGISTER came from (NATed phones are reached here).
    pub source: SocketAddr,
    /// Over which transport.
    pub protocol: Protocol,
    /// The phone's User-Agent.
    pub user_agent: Option<String>,
}

/// A change the database must record, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// A binding was created or changed.
    Upsert(StoredBinding),
    /// A binding was removed.
    Remove {
        /// The phone.
        device_id: i64,
        /// The contact.
        contact: String,
    },
}

/// What changed, for the rest of the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// A phone registered a new contact or changed one.
    Registered {
        /// The phone.
        device_id: i64,
        /// The contact.
        contact: String,
    },
    /// A contact went away.
    Unregistered {
        /// The phone.
        device_id: i64,
        /// The contact.
        contact: String,
        /// `removed` (by the phone) or `expired`.
        reason: &'static str,
    },
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// 400 with a reason.
    BadRequest(String),
    /// 423 Interval Too Brief: answer with `Min-Expires`.
    IntervalTooBrief,
}

/// The registrar's state.
#[derive(Debug)]
pub struct Registrar {
    bindings: HashMap<i64, Vec<Binding>>,
    persist: mpsc::UnboundedSender<Persist>,
    events: broadcast::Sender<RegistrationEvent>,
    /// The application's channel, told whether a phone is registered.
    app_events: Option<crate::events::Events>,
}

impl Registrar {
    /// An empty registrar writing changes to `persist`.
    pub fn new(persist: mpsc::UnboundedSender<Persist>) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            bindings: HashMap::new(),
            persist,
            events,
            app_events: None,
        }
    }

    /// Also announces changes on the application's events channel (the web
    /// UI's live updates).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.app_events = Some(events);
        self
    }

    /// Tells subscribers about a change of `device_id`'s bindings.
    fn announce(&self, event: RegistrationEvent) {
        let device_id = match &event {
            RegistrationEvent::Registered { device_id, .. }
            | RegistrationEvent::Unregistered { device_id, .. } => *device_id,
        };
        if let Some(app) = &self.app_events {
            app.publish(crate::events::Event::Registration {
                device_id,
                registered: !self.bindings(device_id).is_empty(),
            });
        }
        let _ = self.events.send(event);
    }

    /// Subscribes to registration changes.
    pub fn subscribe(&self) -> broadcast::Receiver<RegistrationEvent> {
        self.events.subscribe()
    }

    /// Loads stored bindings at start (no writes).
    pub fn load(&mut self, stored: Vec<StoredBinding>, now: Timestamp) {
        for s in stored {
            let Ok(source) = s.source_addr.parse() else {
                continue;
            };
            let stored_expiry = Timestamp::parse_rfc3339(&s.expires_at).unwrap_or(now);
            let b = Binding {
                contact: s.contact_uri,
                expires_at: stored_expiry.max(now.plus(RESTART_GRACE)),
                call_id: String::new(),
                cseq: 0,
                source,
                protocol: if s.transport == Transport::Udp {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                user_agent: s.user_agent,
            };
            self.bindings.entry(s.device_id).or_default().push(b);
        }
    }

    /// The live bindings of a phone.
    pub fn bindings(&self, device_id: i64) -> &[Binding] {
        self.bindings
            .get(&device_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every phone with at least one binding.
    pub fn all(&self) -> impl Iterator<Item = (i64, &[Binding])> {
        self.bindings
            .iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(id, b)| (*id, b.as_slice()))
    }

    /// Whether some phone is registered from this IP (such sources are
    /// exempt from the flood rate limit).
    pub fn has_binding_from(&self, ip: std::net::IpAddr) -> bool {
        self.bindings
            .values()
            .flatten()
            .any(|b| b.source.ip() == ip)
    }

    /// Applies an authenticated REGISTER of `device_id` (§10.3 steps 6–8).
    /// Returns the phone's bindings afterwards.
    pub fn register(
        &mut self,
        device_id: i64,
        req: &Request,
        source: SocketAddr,
        protocol: Protocol,
        now: Timestamp,
    ) -> Result<&[Binding], RegisterError> {
        let h = &req.headers;
        let contacts = h.values(&HeaderName::Contact);
        let header_expires = match h.get(&HeaderName::Expires) {
            Some(v) => Some(
                parse_expires(v).ok_or_else(|| RegisterError::BadRequest("bad Expires".into()))?,
            ),
            None => None,
        };
        let call_id = h.get(&HeaderName::CallId).unwrap_or("").to_string();
        let cseq = h
            .get(&HeaderName::CSeq)
            .and_then(crate::sip::message::CSeq::parse)
            .map(|c| c.seq)
            .unwrap_or(0);
        let user_agent = h.get(&HeaderName::UserAgent).map(str::to_string);

        if contacts.contains(&"*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(RegisterError::BadRequest(
                    "Contact: * needs Expires: 0 and no other contact".into(),
                ));
            }
            for b in self.bindings.remove(&device_id).unwrap_or_default() {
                self.removed(device_id, b.contact, "removed");
            }
            return Ok(&[]);
        }

        // Validate everything before changing anything.
        let mut wanted = Vec::new();
        for c in &contacts {
            let na = NameAddr::parse(c)
                .ok_or_else(|| RegisterError::BadRequest("malformed Contact".into()))?;
            let expires = match na.params.get("expires") {
                Some(Some(v)) => parse_expires(v)
                    .ok_or_else(|| RegisterError::BadRequest("bad contact expires".into()))?,
                Some(None) => return Err(RegisterError::BadRequest("bad contact expires".into())),
                None => header_expires.unwrap_or(DEFAULT_EXPIRES),
            };
            if expires > 0 && expires < MIN_EXPIRES {
                return Err(RegisterError::IntervalTooBrief);
            }
            wanted.push((na.uri.to_string(), expires.min(MAX_EXPIRES)));
        }

        for (contact, expires) in wanted {
            let list = self.bindings.entry(device_id).or_default();
            let existing = list.iter().position(|b| b.contact == contact);
            if let Some(i) = existing {
                let b = &list[i];
                if b.call_id == call_id && cseq <= b.cseq {
                    continue; // an older request overtaken by a newer one
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    let b = list.remove(i);
                    self.removed(device_id, b.contact, "removed");
                }
                continue;
            }
            let new = Binding {
                contact: contact.clone(),
                expires_at: now.plus(Duration::from_secs(u64::from(expires))),
                call_id: call_id.clone(),
                cseq,
                source,
                protocol,
                user_agent: user_agent.clone(),
            };
            let changed = match existing {
                Some(i) => {
                    let old = std::mem::replace(&mut list[i], new.clone());
                    old.source != new.source
                        || old.protocol != new.protocol
                        || old.user_agent != new.user_agent
                }
                None => {
                    if list.len() >= MAX_BINDINGS_PER_DEVICE {
                        // Make room by dropping the binding closest to expiry.
                        if let Some(i) = list
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, b)| b.expires_at)
                            .map(|(i, _)| i)
                        {
                            let gone = list.remove(i);
                            let _ = self.persist.send(Persist::Remove {
                                device_id,
                                contact: gone.contact,
                            });
                        }
                    }
                    let list = self.bindings.entry(device_id).or_default();
                    list.push(new.clone());
                    true
                }
            };
            if changed {
                let _ = self.persist.send(Persist::Upsert(stored(device_id, &new)));
                self.announce(RegistrationEvent::Registered { device_id, contact });
            }
        }
        // Borrowed: the answer lists them, and a copy of every binding per
        // REGISTER was three allocations each (benches/register_load.sh).
        Ok(self.bindings(device_id))
    }

    /// Drops lapsed bindings; returns how many went.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let mut gone = Vec::new();
        for (device_id, list) in self.bindings.iter_mut() {
            list.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    gone.push((*device_id, b.contact.clone()));
                }
                live
            });
        }
        self.bindings.retain(|_, l| !l.is_empty());
        let n = gone.len();
        for (device_id, contact) in gone {
            self.removed(device_id, contact, "expired");
        }
        n
    }

    /// Forgets a phone that was deleted.
    pub fn forget_device(&mut self, device_id: i64) {
        for b in self.bindings.remove(&device_id).unwrap_or_default() {
            self.announce(RegistrationEvent::Unregistered {
                device_id,
                contact: b.contact,
                reason: "removed",
            });
        }
    }

    fn removed(&mut self, device_id: i64, contact: String, reason: &'static str) {
        let _ = self.persist.send(Persist::Remove {
            device_id,
            contact: contact.clone(),
        });
        self.announce(RegistrationEvent::Unregistered {
            device_id,
            contact,
            reason,
        });
    }
}

/// Expires values: digits only; overlarge values mean "as long as allowed"
/// (RFC 4475 scalar02 says treat them as the default rather than fail).
fn parse_expires(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
            .unwrap_or(DEFAULT_EXPIRES),
    )
}

fn stored(device_id: i64, b: &Binding) -> StoredBinding {
    StoredBinding {
        device_id,
        contact_uri: b.contact.clone(),
        expires_at: b.expires_at.to_string(),
        user_agent: b.user_agent.clone(),
        source_addr: b.source.to_string(),
        transport: match b.protocol {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp => Transport::Tcp,
            Protocol::Tls => Transport::Tls,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse_datagram, Message};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_255_200_000 + secs * 1000)
    }

    fn register(cseq: u32, contact: &str, extra: &str) -> Request {
        let raw = format!(
            "REGISTER sip:homeline SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{cseq}\r\nFrom: <sip:kitchen@homeline>;tag=f\r\n\
             To: <sip:kitchen@homeline>\r\nCall-ID: reg-1\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n{extra}User-Agent: Grandstream\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_datagram(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn setup() -> (
        Registrar,
        mpsc::UnboundedReceiver<Persist>,
        broadcast::Receiver<RegistrationEvent>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Registrar::new(tx);
        let ev = r.subscribe();
        (r, rx, ev)
    }

    fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
        let mut v = Vec::new();
        while let Ok(x) = rx.try_recv() {
            v.push(x);
        }
        v
    }

    const SRC: &str = "192.0.2.10:5060";

    #[test]
    fn refreshes_stay_in_ram_and_changes_are_persisted() {
        let (mut r, mut persist, mut events) = setup();
        let src: SocketAddr = SRC.parse().expect("addr");
        let b = r
            .register(
                1,
                &register(1, "<sip:kitchen@192.0.2.10>", "Expires: 120\r\n"),
                src,
                Protocol::Udp,
                t(0),
            )
            .expect("ok");
        assert_eq!((b.len(), b[0].expires_at), (1, t(120)));
        assert!(
            matches!(drain(&mut persist).as_slice(), [Persist::Upsert(s)] if s.transport == Transport::Udp)
        );
        assert!(matches!(
            events.try_recv(),
            Ok(RegistrationEvent::Registered { device_id: 1, .. })
        ));
        for i in 2..50 {
            r.register(
                1,
                &register(i, "<sip:kitchen@192.0.2.10>", "Expires: 120\r\n"),
                src,
                Protocol::Udp,
                t(i as i64 * 60),
            )
            .expect("refresh");
        }
        assert!(drain(&mut persist).is_empty(), "48 refreshes wrote nothing");
        assert!(events.try_recv().is_err(), "and announced nothing");
        let moved: SocketAddr = "192.0.2.99:5060".parse().expect("addr");
        r.register(
            1,
            &register(60, "<sip:kitchen@192.0.2.10>", "Expires: 120\r\n"),
            moved,
            Protocol::Udp,
            t(3000),
        )
        .expect("moved");
        assert_eq!(
            drain(&mut persist).len(),
            1,
            "a new source address is a change"
        );
    }

    #[test]
    fn expiry_rules_423_star_and_sweep() {
        let (mut r, mut persist, _) = setup();
        let src: SocketAddr = SRC.parse().expect("addr");
        assert_eq!(
            r.register(
                1,
                &register(1, "<sip:a@h>", "Expires: 30\r\n"),
                src,
                Protocol::Udp,
                t(0)
            ),
            Err(RegisterError::IntervalTooBrief)
        );
        let b = r
            .register(
                1,
                &register(2, "<sip:a@h>;expires=90, <sip:b@h>", "Expires: 999999\r\n"),
                src,
                Protocol::Tcp,
                t(0),
            )
            .expect("two");
        assert_eq!(
            b.iter().map(|b| b.expires_at).collect::<Vec<_>>(),
            [t(90), t(i64::from(MAX_EXPIRES))],
            "per-contact expires wins; capped"
        );
        assert_eq!(
            r.register(1, &register(3, "*", ""), src, Protocol::Tcp, t(1)),
            Err(RegisterError::BadRequest(
                "Contact: * needs Expires: 0 and no other contact".into()
            ))
        );
        assert_eq!(r.sweep(t(91)), 1);
        assert_eq!(r.bindings(1).len(), 1);
        drain(&mut persist);
        assert!(r
            .register(
                1,
                &register(4, "*", "Expires: 0\r\n"),
                src,
                Protocol::Tcp,
                t(100)
            )
            .expect("unregister all")
            .is_empty());
        assert_eq!(
            drain(&mut persist),
            [Persist::Remove {
                device_id: 1,
                contact: "sip:b@h".into()
            }]
        );
        let b = r
            .register(1, &register(5, "<sip:c@h>", ""), src, Protocol::Udp, t(0))
            .expect("default");
        assert_eq!(b[0].expires_at, t(i64::from(DEFAULT_EXPIRES)));
        assert!(r
            .register(
                1,
                &register(6, "<sip:c@h>;expires=0", ""),
                src,
                Protocol::Udp,
                t(1)
            )
            .expect("remove one")
            .is_empty());
    }

    #[test]
    fn stale_cseq_is_ignored_and_contact_params_stay_out_of_the_uri() {
        let (mut r, _, _) = setup();
        let src: SocketAddr = SRC.parse().expect("addr");
        r.register(
            1,
            &register(
                5,
                "sip:+1-972-555-2222@gw1.example.net;unknownparam",
                "Expires: 60\r\n",
            ),
            src,
            Protocol::Udp,
            t(0),
        )
        .expect("cparam01");
        assert_eq!(
            r.bindings(1)[0].contact,
            "sip:+1-972-555-2222@gw1.example.net"
        );
        r.register(
            1,
            &register(4, "sip:+1-972-555-2222@gw1.example.net", "Expires: 0\r\n"),
            src,
            Protocol::Udp,
            t(1),
        )
        .expect("older");
        assert_eq!(
            r.bindings(1).len(),
            1,
            "a lower CSeq on the same Call-ID does not remove"
        );
        r.register(
            2,
            &register(1, "<sip:u@h;unknownparam>", ""),
            src,
            Protocol::Udp,
            t(0),
        )
        .expect("cparam02");
        assert_eq!(r.bindings(2)[0].contact, "sip:u@h;unknownparam");
    }

    #[test]
    fn contacts_per_device_are_capped_and_restart_load_has_grace() {
        let (mut r, _, _) = setup();
        let src: SocketAddr = SRC.parse().expect("addr");
        for i in 0..(MAX_BINDINGS_PER_DEVICE + 3) {
            let req = Request {
                headers: {
                    let mut h = register(i as u32 + 1, &format!("<sip:c{i}@h>"), "").headers;
                    h.set(HeaderName::CallId, format!("c{i}"));
                    h
                },
                ..register(1, "<sip:x@h>", "")
            };
            r.register(1, &req, src, Protocol::Udp, t(i as i64))
                .expect("ok");
        }
        assert_eq!(r.bindings(1).len(), MAX_BINDINGS_PER_DEVICE);
        assert!(r.has_binding_from(src.ip()));
        let (mut fresh, _, _) = setup();
        fresh.load(
            vec![StoredBinding {
                device_id: 7,
                contact_uri: "sip:k@h".into(),
                expires_at: t(-10).to_string(),
                user_agent: None,
                source_addr: SRC.into(),
                transport: Transport::Udp,
            }],
            t(0),
        );
        assert_eq!(
            fresh.bindings(7)[0].expires_at,
            t(RESTART_GRACE.as_secs() as i64)
        );
    }
}
