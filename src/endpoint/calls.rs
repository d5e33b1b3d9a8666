//! The B2BUA: every call is an incoming leg (A, the caller) and an outgoing
//! leg (B, the phone or Twilio that answered), each its own dialog, with
//! the audio anchored in a [`Relay`].
//!
//! An incoming INVITE is authenticated (phones and Twilio both answer a
//! 407), routed (a DID rings every registered contact of every phone of its
//! users, an extension rings that phone, a number goes to Twilio after the
//! toll-fraud guard), and forked: the first 2xx wins, the other forks are
//! CANCELled, a late 2xx is ACKed and hung up. Re-INVITEs are answered by
//! Homeline itself: a peer putting the call on hold makes the relay play
//! music to the other party, so the other leg never needs renegotiating.
//! When a call ends, for whatever reason, one CDR is written.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;

use super::uac::{ClientEvent, ClientKey, Owner};
use super::{reply, DeviceCredential, Endpoint, Key, TimerKey, REALM};
use crate::clock::Timestamp;
use crate::dialplan::{Dialed, TollGuard};
use crate::media::relay::{Control, MediaEvent, Relay, Side};
use crate::media::sdp::{self, Codec, Description, Direction, Origin, SdpError};
use crate::sip::auth::{Credentials, Verdict};
use crate::sip::dialog::Dialog;
use crate::sip::message::{HeaderName, Headers, Method, NameAddr, Request, Response};
use crate::sip::transport::Protocol;
use crate::store::cdrs::{Cdr, Direction as CdrDirection, Disposition};

mod trunk_dns;
pub(super) use trunk_dns::AwaitingDns;
use trunk_dns::TrunkDestination;

/// Timers of the call layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum CallTimer {
    /// The phones rang long enough.
    Ring,
    /// Resend our 2xx to A until its ACK (UDP, RFC 3261 §13.3.1.4).
    Retransmit,
    /// Carry out an accepted REFER (its 202 has been sent).
    Refer,
    /// A blind transfer's target rang long enough.
    TransferRing,
}

/// A call as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallInfo {
    /// The call's id (for hold, transfer, hang up).
    pub id: u64,
    /// `inbound`, `outbound` or `internal`.
    pub direction: &'static str,
    /// Caller (number or extension).
    pub from: String,
    /// Callee (number or extension).
    pub to: String,
    /// `ringing` or `answered`.
    pub state: &'static str,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it was answered.
    pub answered_at: Option<String>,
    /// Whether the call is on hold (either side, or from the API).
    pub on_hold: bool,
    /// The answering or calling phone.
    pub device_id: Option<i64>,
    /// RTP packets received from the caller's and the callee's side.
    pub rtp_received: [u64; 2],
    /// RTP packets sent to the caller's and the callee's side.
    pub rtp_sent: [u64; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Internal,
    Inbound,
    Outbound,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Inbound => "inbound",
            Kind::Outbound => "outbound",
        }
    }
}

/// Where an in-dialog request or a response goes for one leg.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route {
    pub(super) protocol: Protocol,
    pub(super) dest: SocketAddr,
}

/// The caller's leg: we are its UAS.
struct ALeg {
    invite: Request,
    key: Key,
    route: Route,
    tag: String,
    offer: Description,
    origin: Origin,
    dialog: Option<Dialog>,
    ok: Option<Response>,
    acked: bool,
    retransmit_every: Duration,
    sent_ringing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkState {
    Calling,
    Ringing,
    Failed(u16),
    Answered,
    /// CANCEL wanted; sent once a provisional response shows the INVITE arrived.
    CancelPending,
    Cancelled,
}

/// One outgoing INVITE of the B leg.
struct Fork {
    invite: Request,
    key: ClientKey,
    route: Route,
    device_id: Option<i64>,
    state: ForkState,
    auth_tried: bool,
}

/// The answered callee's leg: we are its UAC.
struct BLeg {
    dialog: Dialog,
    route: Route,
    origin: Origin,
    ack: Request,
    device_id: Option<i64>,
}

struct Call {
    id: u64,
    kind: Kind,
    from: String,
    to: String,
    did_id: Option<i64>,
    device_id: Option<i64>,
    started_at: Timestamp,
    answered_at: Option<Timestamp>,
    a: ALeg,
    forks: Vec<Fork>,
    b: Option<BLeg>,
    relay: Relay,
    codec: Codec,
    telephone_event: Option<u8>,
    /// Side X holds the other (its last description was sendonly/inactive).
    holding: [bool; 2],
    /// The API put the call on hold.
    api_hold: bool,
    /// The B leg's answer (its codec choice and direction).
    b_answer: Option<Description>,
    /// A REFER waiting for its 202 to go out.
    refer: Option<ReferPlan>,
    /// A blind transfer in progress.
    transfer: Option<Transfer>,
    /// Relays of calls joined into this one by an attended transfer.
    bridged: Vec<Relay>,
    /// The side whose party arrived through an attended transfer.
    joined_side: Option<Side>,
    /// A REFER is being carried out: its sender gets NOTIFYs (a transfer
    /// started from the API has nobody to notify).
    notifies: bool,
}

/// What the live-updates channel tells about a call: its state and who may
/// see it. The endpoint compares the marks after every turn of its loop
/// (`endpoint::call_events`), so a state change is announced from one place
/// whichever code path made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CallMark {
    /// `ringing`, `answered` or `held`.
    pub(super) state: &'static str,
    /// The household number involved.
    pub(super) did_id: Option<i64>,
    /// The calling, ringing or answering phones.
    pub(super) device_ids: Vec<i64>,
}

impl Call {
    fn mark(&self) -> CallMark {
        let state = match (&self.b, self.on_hold()) {
            (None, _) => "ringing",
            (Some(_), true) => "held",
            (Some(_), false) => "answered",
        };
        let mut device_ids: Vec<i64> = self
            .device_id
            .into_iter()
            .chain(self.forks.iter().filter_map(|f| f.device_id))
            .chain(self.b.as_ref().and_then(|b| b.device_id))
            .collect();
        device_ids.sort_unstable();
        device_ids.dedup();
        CallMark {
            state,
            did_id: self.did_id,
            device_ids,
        }
    }

    fn on_hold(&self) -> bool {
        self.api_hold || self.holding.iter().any(|h| *h)
    }

    fn info(&self) -> CallInfo {
        let load = |a: &[std::sync::atomic::AtomicU64; 2]| {
            [
                a[0].load(std::sync::atomic::Ordering::Relaxed),
                a[1].load(std::sync::atomic::Ordering::Relaxed),
            ]
        };
        CallInfo {
            id: self.id,
            direction: self.kind.name(),
            from: self.from.clone(),
            to: self.to.clone(),
            state: if self.b.is_some() {
                "answered"
            } else {
                "ringing"
            },
            started_at: self.started_at.to_string(),
            answered_at: self.answered_at.map(|t| t.to_string()),
            on_hold: self.on_hold(),
            device_id: self.device_id,
            rtp_received: load(&self.relay.stats.received),
            rtp_sent: load(&self.relay.stats.sent),
        }
    }
}

/// The live calls and their indexes.
#[derive(Default)]
pub(super) struct CallTable {
    calls: HashMap<u64, Call>,
    next_id: u64,
    /// A's INVITE server transaction → call (for CANCEL).
    by_invite: HashMap<Key, u64>,
    /// (Call-ID, our tag) → call and side, for in-dialog requests.
    by_dialog: HashMap<(String, String), (u64, Side)>,
    /// The rate side of the toll-fraud guard.
    guard: TollGuard,
    /// Calls joined into another by an attended transfer: old id → new.
    joined: HashMap<u64, u64>,
}

impl CallTable {
    /// The calls, for the API.
    pub(super) fn list(&self) -> Vec<CallInfo> {
        let mut v: Vec<CallInfo> = self.calls.values().map(Call::info).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Whether no call is live.
    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Each live call's [`CallMark`], for the live-updates channel.
    pub(super) fn marks(&self) -> impl Iterator<Item = (u64, CallMark)> + '_ {
        self.calls.iter().map(|(id, call)| (*id, call.mark()))
    }

    fn outgoing(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.kind == Kind::Outbound)
            .count()
    }
}

/// Why a call ended, for the CDR.
struct Ending {
    disposition: Disposition,
    cause: String,
}

impl Ending {
    fn new(disposition: Disposition, cause: impl Into<String>) -> Ending {
        Ending {
            disposition,
            cause: cause.into(),
        }
    }
}

/// What a new leg is offered: the relay port facing it and the call's codecs.
struct OfferMedia {
    port: u16,
    codecs: Vec<Codec>,
    telephone_event: Option<u8>,
    ptime: Option<u32>,
    /// The leg is Twilio's: Homeline is the router's public address there.
    towards_twilio: bool,
}

/// What a REFER asked for, carried out once its 202 is on the wire.
#[derive(Debug, Clone)]
enum ReferPlan {
    /// Blind: ring this extension and hand it the referrer's place.
    Blind { referrer: Side, extension: String },
    /// Attended (Replaces): join the other party of this call to the
    /// other party of `call`, where the referrer is on `side`.
    Attended {
        referrer: Side,
        call: u64,
        side: Side,
    },
}

/// A blind transfer ringing its target.
struct Transfer {
    referrer: Side,
    forks: Vec<Fork>,
}

/// Where the call goes.
enum Target {
    /// Ring these phones.
    Phones(Vec<i64>),
    /// Send it to Twilio as this number.
    Trunk { number: String },
}

impl Endpoint {
    /// A new INVITE (no To tag) whose server transaction exists under `key`.
    pub(super) async fn on_invite(
        &mut self,
        req: Request,
        source: SocketAddr,
        protocol: Protocol,
        key: Key,
    ) {
        let tag = self.tag();
        let trying = reply(&req, 100, "");
        self.respond(&key, trying).await;
        let now = self.clock.now();
        let fail = |status: u16, why: &str| refusal(&req, status, why, &tag);
        // Who is calling: a phone, or Twilio (by digest, or by address in
        // trunking mode).
        let phone = match self.authenticate_caller(&req, source, &tag) {
            Ok(phone) => phone,
            Err(r) => return self.respond(&key, r).await,
        };
        // What the caller offers.
        if req.body.is_empty() {
            let r = fail(
                488,
                "an INVITE without SDP (delayed offer) is not supported",
            );
            return self.respond(&key, r).await;
        }
        let offer = match Description::parse(&req.body) {
            Ok(d) => d,
            Err(SdpError::Malformed(why)) => return self.respond(&key, fail(400, why)).await,
            Err(e) => return self.respond(&key, fail(488, &e.to_string())).await,
        };
        if offer.audio.port == 0 {
            return self
                .respond(&key, fail(488, "the audio stream is disabled"))
                .await;
        }
        let dialed = req
            .uri()
            .and_then(|u| u.user_unescaped())
            .unwrap_or_default();
        let from_user = req
            .headers
            .get(&HeaderName::From)
            .and_then(NameAddr::parse)
            .and_then(|n| n.uri.user_unescaped())
            .unwrap_or_default();
        // Where it goes.
        let (kind, target, from, to, did_id, device_id) = if let Some(phone) = &phone {
            let me = self.directory.phones.get(&phone.device_id).cloned();
            let rules = self.rules.clone();
            let dir = &self.directory;
            let interpreted = rules.interpret(&dialed, |s| dir.phone_by_username(s).is_some());
            let from = phone.username.clone();
            match interpreted {
                Ok(Dialed::Extension(ext)) => {
                    let Some(callee) = self.directory.phone_by_username(&ext) else {
                        return self.respond(&key, fail(404, "")).await;
                    };
                    if callee.device_id == phone.device_id {
                        return self.respond(&key, fail(486, "calling yourself")).await;
                    }
                    (
                        Kind::Internal,
                        Target::Phones(vec![callee.device_id]),
                        from,
                        ext,
                        None,
                        Some(phone.device_id),
                    )
                }
                Ok(Dialed::Number(number)) | Ok(Dialed::Emergency(number)) => {
                    let emergency = !number.starts_with('+');
                    if self
                        .directory
                        .trunk
                        .as_ref()
                        .is_some_and(|t| t.domain.is_empty() && t.edge.is_none())
                    {
                        return self
                            .respond(&key, fail(503, "the Twilio SIP Domain is not set"))
                            .await;
                    }
                    if self.directory.trunk.is_none() {
                        return self.respond(&key, fail(503, "Twilio is not set up")).await;
                    }
                    let caller_id = me.and_then(|p| p.caller_id).or_else(|| {
                        self.directory
                            .numbers
                            .keys()
                            .min()
                            .cloned()
                            .filter(|_| emergency)
                    });
                    let Some(caller_id) = caller_id else {
                        return self
                            .respond(&key, fail(403, "this phone has no number to call out with"))
                            .await;
                    };
                    if !emergency {
                        let active = self.calls.outgoing();
                        if let Err(refusal) =
                            self.calls.guard.admit(&self.rules, &number, active, now)
                        {
                            tracing::warn!(device = phone.device_id, %number, reason = %refusal, "outgoing call refused by the toll-fraud guard");
                            let mut r = fail(403, &refusal.to_string());
                            r.reason = "Forbidden (toll-fraud guard)".into();
                            self.record_refusal(
                                &req,
                                &phone.username,
                                &number,
                                phone.device_id,
                                &refusal.to_string(),
                            );
                            return self.respond(&key, r).await;
                        }
                    }
                    let did_id = self.directory.numbers.get(&caller_id).map(|n| n.did_id);
                    (
                        Kind::Outbound,
                        Target::Trunk {
                            number: number.clone(),
                        },
                        caller_id,
                        number,
                        did_id,
                        Some(phone.device_id),
                    )
                }
                Err(e) => {
                    return self.respond(&key, fail(404, &e.to_string())).await;
                }
            }
        } else {
            let Some((number, entry)) = self.directory.number(&dialed) else {
                return self
                    .respond(&key, fail(404, "not one of this household's numbers"))
                    .await;
            };
            let (number, entry) = (number.to_string(), entry.clone());
            (
                Kind::Inbound,
                Target::Phones(entry.device_ids.clone()),
                from_user.clone(),
                number,
                Some(entry.did_id),
                None,
            )
        };
        // The relay: two port pairs.
        let id = {
            self.calls.next_id += 1;
            self.calls.next_id
        };
        let pairs = match (self.media.pool.allocate(), self.media.pool.allocate()) {
            (Ok(a), Ok(b)) => [a, b],
            _ => {
                tracing::warn!("no free RTP ports: call refused");
                return self.respond(&key, fail(503, "no free media ports")).await;
            }
        };
        let relay = Relay::start(
            id,
            pairs,
            self.media.music.clone(),
            self.media.timeout,
            self.media.events.clone(),
        );
        // The offer's first G.711 codec is the call's (no transcoding).
        let codec = offer.audio.codecs.first().copied().unwrap_or(Codec::Pcmu);
        let telephone_event = offer.audio.telephone_event;
        let a_route = Route {
            protocol,
            dest: self.txs.get(&key).map(|t| t.dest).unwrap_or(source),
        };
        let call = Call {
            id,
            kind,
            from: from.clone(),
            to: to.clone(),
            did_id,
            device_id,
            started_at: now,
            answered_at: None,
            a: ALeg {
                invite: req.clone(),
                key: key.clone(),
                route: a_route,
                tag: tag.clone(),
                offer: offer.clone(),
                origin: Origin::new(self.random_u32() as u64),
                dialog: None,
                ok: None,
                acked: false,
                retransmit_every: crate::sip::transaction::TimerConfig::UDP.t1,
                sent_ringing: false,
            },
            forks: Vec::new(),
            b: None,
            relay,
            codec,
            telephone_event,
            holding: [false; 2],
            api_hold: false,
            b_answer: None,
            refer: None,
            transfer: None,
            bridged: Vec::new(),
            joined_side: None,
            notifies: false,
        };
        call.relay.control(Control::Peer {
            side: Side::A,
            rtp: SocketAddr::new(offer.audio.addr, offer.audio.port),
            direction: offer.audio.direction,
            codec,
        });
        // The B leg's INVITEs.
        let display = match kind {
            Kind::Internal => phone
                .as_ref()
                .and_then(|p| self.directory.phones.get(&p.device_id))
                .map(|p| p.name.clone()),
            _ => None,
        };
        let media = OfferMedia {
            port: call.relay.ports[1],
            codecs: call.a.offer.audio.codecs.clone(),
            telephone_event: call.telephone_event,
            ptime: call.a.offer.audio.ptime,
            towards_twilio: matches!(target, Target::Trunk { .. }),
        };
        let mut targets: Vec<(Request, Route, Option<i64>)> = Vec::new();
        match &target {
            Target::Phones(devices) => {
                for &device in devices {
                    let username = self
                        .directory
                        .phones
                        .get(&device)
                        .map(|p| p.username.clone())
                        .unwrap_or_default();
                    for b in self.registrar.bindings(device).to_vec() {
                        let route = Route {
                            protocol: b.protocol,
                            dest: b.source,
                        };
                        let to_uri = format!("sip:{username}@{}", self.host_for(route.dest.ip()));
                        let invite = self.b_invite(
                            &media,
                            &b.contact,
                            &to_uri,
                            &from,
                            display.as_deref(),
                            route,
                        );
                        targets.push((invite, route, Some(device)));
                    }
                }
            }
            Target::Trunk { number } => match self.trunk_destination() {
                TrunkDestination::Ready(dest) => {
                    targets.push(self.trunk_invite(&media, number, &from, dest))
                }
                TrunkDestination::Unknown => {}
                TrunkDestination::Resolving(domain) => {
                    return self.await_trunk_address(call, domain);
                }
            },
        }
        let failure = match target {
            Target::Phones(_) => (480, "no phone is registered for this call"),
            Target::Trunk { .. } => (503, "Twilio's SIP edge could not be resolved"),
        };
        self.launch(call, targets, failure).await;
    }

    /// Sends a call's forks, or refuses it with `failure` (and a CDR) when
    /// there is nowhere to send it.
    async fn launch(
        &mut self,
        mut call: Call,
        targets: Vec<(Request, Route, Option<i64>)>,
        failure: (u16, &str),
    ) {
        let (id, kind, key) = (call.id, call.kind, call.a.key.clone());
        if targets.is_empty() {
            let (status, why) = failure;
            let r = refusal(&call.a.invite, status, why, &call.a.tag);
            self.respond(&key, r).await;
            let ending = Ending::new(Disposition::Failed, why);
            self.write_cdr(&call, self.clock.now(), ending);
            return;
        }
        tracing::info!(call = id, kind = kind.name(), from = %call.from, to = %call.to, forks = targets.len(), "call started");
        self.calls.by_invite.insert(key, id);
        for (invite, route, device) in &targets {
            if let Some(k) = super::uac::client_key(invite) {
                call.forks.push(Fork {
                    invite: invite.clone(),
                    key: k,
                    route: *route,
                    device_id: *device,
                    state: ForkState::Calling,
                    auth_tried: false,
                });
            }
        }
        self.calls.calls.insert(id, call);
        for (n, (invite, route, _)) in targets.into_iter().enumerate() {
            let events = self
                .start_client(invite, route.protocol, route.dest, Owner::Fork(id, n))
                .await;
            self.pending.extend(events);
        }
        if kind != Kind::Outbound {
            self.arm(TimerKey::Call(id, CallTimer::Ring), self.ring_timeout);
        }
    }

    /// The INVITE towards Twilio's edge at `dest` for `number`, from `from`.
    fn trunk_invite(
        &mut self,
        media: &OfferMedia,
        number: &str,
        from: &str,
        dest: SocketAddr,
    ) -> (Request, Route, Option<i64>) {
        let domain = self
            .directory
            .trunk
            .as_ref()
            .map(|t| t.domain.clone())
            .unwrap_or_default();
        let route = Route {
            protocol: Protocol::Udp,
            dest,
        };
        let uri = format!("sip:{number}@{domain}");
        let from_uri = format!("sip:{from}@{domain}");
        let mut invite = self.b_invite(media, &uri, &uri, from, None, route);
        invite
            .headers
            .set(HeaderName::From, format!("<{from_uri}>;tag={}", self.tag()));
        (invite, route, None)
    }

    /// Authenticates an INVITE: `Ok(Some(phone))` for a phone, `Ok(None)`
    /// for Twilio, `Err(answer)` otherwise (407 challenge, 403).
    ///
    /// Phones and Twilio's SIP Domain answer a 407 digest challenge. In
    /// Elastic SIP Trunking mode Twilio's origination INVITEs carry no
    /// credentials and are trusted by source address (`twilio.sip_sources`);
    /// in either mode a configured address list also confines the Twilio
    /// credentials to those addresses.
    fn authenticate_caller(
        &mut self,
        req: &Request,
        source: SocketAddr,
        tag: &str,
    ) -> Result<Option<DeviceCredential>, Response> {
        let now = self.clock.now();
        let from_twilio = self.twilio_sip.sources.contains(source.ip());
        if self.twilio_sip.trunking && from_twilio && self.directory.trunk.is_some() {
            return Ok(None);
        }
        let creds = req
            .headers
            .lines(&HeaderName::ProxyAuthorization)
            .filter_map(Credentials::parse)
            .find(|c| c.realm == REALM);
        let challenge = |auth: &crate::sip::auth::DigestAuth, stale: bool| {
            let mut r = reply(req, 407, tag);
            for c in auth.challenges(now, stale) {
                r.headers.push(HeaderName::ProxyAuthenticate, c);
            }
            r
        };
        let Some(creds) = creds.filter(|c| c.algorithm().is_some()) else {
            return Err(challenge(&self.auth, false));
        };
        let alg = creds
            .algorithm()
            .unwrap_or(crate::sip::auth::Algorithm::Md5);
        let phone = self.devices.get(&creds.username).cloned();
        let trunk = self
            .directory
            .trunk
            .as_ref()
            .filter(|t| t.credential.username == creds.username)
            .map(|t| t.credential.clone());
        let caller = phone.clone().or(trunk.clone());
        let ha1 = caller
            .as_ref()
            .map(|d| d.ha1(alg).to_string())
            .unwrap_or_else(|| alg.hash("no such user"));
        match self.auth.verify(&creds, "INVITE", &ha1, now) {
            Verdict::Ok if caller.is_some() => {}
            Verdict::Stale => return Err(challenge(&self.auth, true)),
            Verdict::Rechallenge => return Err(challenge(&self.auth, false)),
            Verdict::Ok | Verdict::Rejected => {
                tracing::info!(%source, username = %creds.username, "SIP authentication failed for a call");
                self.guard.auth_failed(source.ip(), now);
                return Err(reply(req, 403, tag));
            }
        }
        if phone.is_none() && !self.twilio_sip.sources.is_empty() && !from_twilio {
            tracing::warn!(%source, "Twilio's SIP credentials used from an address outside twilio.sip_sources");
            let mut r = reply(req, 403, tag);
            r.reason = "Forbidden (not a Twilio address)".into();
            return Err(r);
        }
        Ok(phone)
    }

    /// Builds one fork's INVITE.
    fn b_invite(
        &mut self,
        media: &OfferMedia,
        ruri: &str,
        to_uri: &str,
        from_user: &str,
        display: Option<&str>,
        route: Route,
    ) -> Request {
        // Towards Twilio, Homeline is the router's public address (when
        // known): in the SDP, so media comes back through the forwarded
        // RTP ports, and in Contact, so Twilio's BYE finds the way back.
        let local = self.local_ip_for(route.dest.ip());
        let sdp_ip = match self.media.public_ip {
            Some(public) if media.towards_twilio => public,
            _ => local,
        };
        let mut origin = Origin::new(self.random_u32() as u64);
        let body = sdp::write(
            &mut origin,
            &sdp::Offer {
                addr: sdp_ip,
                port: media.port,
                codecs: media.codecs.clone(),
                telephone_event: media.telephone_event,
                direction: Direction::SendRecv,
                ptime: media.ptime,
            },
            &[],
            0,
        );
        let mut h = Headers::default();
        h.push(HeaderName::Via, self.via(route));
        h.push(HeaderName::MaxForwards, "70");
        let from = match display {
            Some(d) => format!(
                "\"{}\" <sip:{from_user}@{}>;tag={}",
                d.replace('"', ""),
                self.host_for(route.dest.ip()),
                self.tag()
            ),
            None => format!(
                "<sip:{from_user}@{}>;tag={}",
                self.host_for(route.dest.ip()),
                self.tag()
            ),
        };
        h.push(HeaderName::From, from);
        h.push(HeaderName::To, format!("<{to_uri}>"));
        h.push(HeaderName::CallId, format!("{}@homeline", self.tag_long()));
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(
            HeaderName::Contact,
            format!("<{}>", contact_for(&self.transport, route, sdp_ip)),
        );
        h.push(HeaderName::Allow, super::ALLOW);
        h.push(HeaderName::UserAgent, super::server_header());
        h.push(HeaderName::ContentType, "application/sdp");
        Request {
            method: Method::Invite,
            uri: ruri.to_string(),
            headers: h,
            body: Bytes::from(body),
        }
    }

    /// Client transaction events to the call layer.
    /// Runs the call layer on client transaction events, including those
    /// its own handlers queue (a queue, not recursion: a handler that
    /// starts a transaction whose send fails gets its 503 here, later).
    pub(super) async fn dispatch(&mut self, events: Vec<ClientEvent>) {
        self.pending.extend(events);
        while let Some(ev) = self.pending.pop_front() {
            match ev {
                ClientEvent::Response(Owner::Fork(call, n), resp) => {
                    self.on_fork_response(call, n, resp).await
                }
                ClientEvent::Response(Owner::TransferFork(call, n), resp) => {
                    self.on_transfer_response(call, n, resp).await
                }
                ClientEvent::Response(Owner::Nobody, _) => {}
            }
        }
    }

    async fn on_fork_response(&mut self, id: u64, n: usize, resp: Response) {
        let Some(a_route) = self.calls.calls.get(&id).map(|c| c.a.route) else {
            // The call is over: a late 2xx still needs its ACK and a BYE.
            if (200..300).contains(&resp.status) {
                self.hang_up_stray(&resp).await;
            }
            return;
        };
        let a_contact = self.contact(a_route);
        let cnonce = self.tag();
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(n) else {
            return;
        };
        match resp.status {
            100 => {}
            101..=199 => {
                if fork.state == ForkState::CancelPending {
                    fork.state = ForkState::Cancelled;
                    let cancel = vec![(cancel_for(&fork.invite), fork.route)];
                    self.send_cancels(cancel).await;
                    return;
                }
                if fork.state == ForkState::Calling {
                    fork.state = ForkState::Ringing;
                }
                if !call.a.sent_ringing && call.b.is_none() {
                    call.a.sent_ringing = true;
                    let mut r = reply(&call.a.invite, 180, &call.a.tag);
                    r.headers
                        .push(HeaderName::Contact, format!("<{a_contact}>"));
                    let key = call.a.key.clone();
                    self.respond(&key, r).await;
                }
            }
            200..=299 => {
                if fork.state == ForkState::Answered {
                    // The winner's 2xx again: our ACK was lost, send it again.
                    if let Some(b) = &call.b {
                        let (ack, route) = (b.ack.clone(), b.route);
                        self.send(
                            route.protocol,
                            route.dest,
                            &crate::sip::message::Message::Request(ack),
                        )
                        .await;
                    }
                    return;
                }
                if call.b.is_some()
                    || matches!(fork.state, ForkState::Cancelled | ForkState::Failed(_))
                {
                    self.hang_up_stray(&resp).await;
                    return;
                }
                self.on_answer(id, n, resp).await;
            }
            401 | 407 if !fork.auth_tried && fork.device_id.is_none() => {
                // Twilio's challenge: answer it once with the trunk credentials.
                fork.auth_tried = true;
                let Some(trunk) = self.directory.trunk.clone() else {
                    return;
                };
                let (header_in, header_out) = if resp.status == 401 {
                    (HeaderName::WwwAuthenticate, HeaderName::Authorization)
                } else {
                    (
                        HeaderName::ProxyAuthenticate,
                        HeaderName::ProxyAuthorization,
                    )
                };
                let mut invite = fork.invite.clone();
                let answer = resp.headers.lines(&header_in).find_map(|c| {
                    crate::sip::auth::answer_challenge(
                        c,
                        "INVITE",
                        &invite.uri,
                        &trunk.credential.username,
                        &trunk.password,
                        &cnonce,
                    )
                });
                let Some(answer) = answer else {
                    fork.state = ForkState::Failed(resp.status);
                    return self.fork_failed(id).await;
                };
                let route = fork.route;
                invite.headers.set(HeaderName::Via, self.via(route));
                invite.headers.set(HeaderName::CSeq, "2 INVITE");
                invite.headers.push(header_out, answer);
                let Some(call) = self.calls.calls.get_mut(&id) else {
                    return;
                };
                let Some(fork) = call.forks.get_mut(n) else {
                    return;
                };
                fork.invite = invite.clone();
                if let Some(k) = super::uac::client_key(&invite) {
                    fork.key = k;
                }
                let ev = self
                    .start_client(invite, route.protocol, route.dest, Owner::Fork(id, n))
                    .await;
                self.pending.extend(ev);
            }
            status => {
                if fork.state != ForkState::Cancelled {
                    fork.state = ForkState::Failed(status);
                }
                self.fork_failed(id).await;
            }
        }
    }

    /// A fork failed: when none is left, the caller gets the best answer.
    async fn fork_failed(&mut self, id: u64) {
        let Some(call) = self.calls.calls.get(&id) else {
            return;
        };
        if call.b.is_some() {
            return;
        }
        let live = call.forks.iter().any(|f| {
            matches!(
                f.state,
                ForkState::Calling | ForkState::Ringing | ForkState::CancelPending
            )
        });
        if live {
            return;
        }
        let statuses: Vec<u16> = call
            .forks
            .iter()
            .filter_map(|f| match f.state {
                ForkState::Failed(s) => Some(s),
                _ => None,
            })
            .collect();
        let status = if statuses.iter().any(|s| matches!(s, 486 | 600)) {
            486
        } else if statuses.iter().any(|s| matches!(s, 603)) {
            603
        } else if let Some(s) = statuses
            .iter()
            .find(|s| (400..700).contains(*s) && !matches!(s, 408 | 487 | 503))
        {
            *s
        } else {
            480
        };
        let disposition = match status {
            486 => Disposition::Busy,
            603 => Disposition::Rejected,
            480 | 408 => Disposition::NoAnswer,
            _ => Disposition::Failed,
        };
        let r = reply(&call.a.invite, status, &call.a.tag);
        let key = call.a.key.clone();
        self.respond(&key, r).await;
        self.end_call(
            id,
            Ending::new(disposition, format!("callee answered {status}")),
        )
        .await;
    }

    async fn on_answer(&mut self, id: u64, n: usize, resp: Response) {
        let now = self.clock.now();
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        let fork = &mut call.forks[n];
        fork.state = ForkState::Answered;
        let (invite, route, device_id) = (fork.invite.clone(), fork.route, fork.device_id);
        let dialog = match Dialog::uac(&invite, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(call = id, error = %e, "unusable 2xx from the callee");
                return self.hang_up_stray(&resp).await;
            }
        };
        let answer = Description::parse(&resp.body);
        // ACK the 2xx (it is ours to send, RFC 6026) before anything else.
        let mut dialog = dialog;
        let cseq =
            crate::sip::message::CSeq::parse(invite.headers.get(&HeaderName::CSeq).unwrap_or(""))
                .map(|c| c.seq)
                .unwrap_or(1);
        let via = self.via(route);
        let contact = self.contact(route);
        let ack = dialog.request(Method::Ack, &via, &contact, Some(cseq));
        self.send(
            route.protocol,
            route.dest,
            &crate::sip::message::Message::Request(ack.clone()),
        )
        .await;
        let answer = match answer {
            Ok(a) if a.audio.port != 0 && !a.audio.codecs.is_empty() => a,
            other => {
                tracing::info!(call = id, error = ?other.err(), "callee answered without usable audio");
                let bye = dialog.request(Method::Bye, &self.via(route), &contact, None);
                let ev = self
                    .start_client(bye, route.protocol, route.dest, Owner::Nobody)
                    .await;
                self.pending.extend(ev);
                let Some(call) = self.calls.calls.get_mut(&id) else {
                    return;
                };
                call.forks[n].state = ForkState::Failed(488);
                return self.fork_failed(id).await;
            }
        };
        let b_origin = Origin::new(self.random_u32() as u64);
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        let codec = answer.audio.codecs[0];
        call.codec = codec;
        if answer.audio.telephone_event.is_none() {
            call.telephone_event = None;
        }
        call.relay.control(Control::Peer {
            side: Side::B,
            rtp: SocketAddr::new(answer.audio.addr, answer.audio.port),
            direction: answer.audio.direction,
            codec,
        });
        call.relay.control(Control::Peer {
            side: Side::A,
            rtp: SocketAddr::new(call.a.offer.audio.addr, call.a.offer.audio.port),
            direction: call.a.offer.audio.direction,
            codec,
        });
        call.answered_at = Some(now);
        if device_id.is_some() && call.kind != Kind::Outbound {
            call.device_id = device_id;
        }
        let b_dialog_key = (dialog.id.call_id.clone(), dialog.id.local_tag.clone());
        call.b = Some(BLeg {
            dialog,
            route,
            origin: b_origin,
            ack,
            device_id,
        });
        call.b_answer = Some(answer.clone());
        // Stop the other forks.
        let cancels = stop_forks(call.forks.iter_mut());
        // Answer the caller.
        let a_ip = self.local_ip_for(call_a_dest(&self.calls, id).ip());
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        // Inbound calls come from Twilio: answer with the public address.
        let sdp_ip = match self.media.public_ip {
            Some(public) if call.kind == Kind::Inbound => public,
            _ => a_ip,
        };
        let body = sdp::write(
            &mut call.a.origin,
            &sdp::Offer {
                addr: sdp_ip,
                port: call.relay.ports[0],
                codecs: vec![codec],
                telephone_event: call.telephone_event,
                direction: answer.audio.direction,
                ptime: call.a.offer.audio.ptime,
            },
            &call.a.offer.streams,
            call.a.offer.audio_index,
        );
        let mut ok = reply(&call.a.invite, 200, &call.a.tag);
        ok.headers.push(
            HeaderName::Contact,
            format!("<{}>", contact_for(&self.transport, call.a.route, sdp_ip)),
        );
        ok.headers.push(HeaderName::Allow, super::ALLOW);
        ok.headers.push(HeaderName::ContentType, "application/sdp");
        ok.body = Bytes::from(body);
        match Dialog::uas(&call.a.invite, &ok) {
            Ok(d) => {
                self.calls.by_dialog.insert(
                    (d.id.call_id.clone(), d.id.local_tag.clone()),
                    (id, Side::A),
                );
                if let Some(call) = self.calls.calls.get_mut(&id) {
                    call.a.dialog = Some(d);
                }
            }
            Err(e) => tracing::info!(call = id, error = %e, "caller's dialog could not be formed"),
        }
        self.calls.by_dialog.insert(b_dialog_key, (id, Side::B));
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        call.a.ok = Some(ok.clone());
        let (key, reliable) = (call.a.key.clone(), call.a.route.protocol.reliable());
        tracing::info!(call = id, "call answered");
        self.respond(&key, ok).await;
        if !reliable {
            self.arm(
                TimerKey::Call(id, CallTimer::Retransmit),
                crate::sip::transaction::TimerConfig::UDP.t1,
            );
        }
        self.send_cancels(cancels).await;
    }

    /// A 2xx nobody wants (a losing fork, a call already over): ACK it and
    /// hang it up, or the phone keeps ringing into a dead call.
    async fn hang_up_stray(&mut self, resp: &Response) {
        let Some(cseq) = resp
            .headers
            .get(&HeaderName::CSeq)
            .and_then(crate::sip::message::CSeq::parse)
        else {
            return;
        };
        let Some(contact) = resp
            .headers
            .get(&HeaderName::Contact)
            .and_then(NameAddr::parse)
        else {
            return;
        };
        // Rebuild just enough of our INVITE to form the dialog.
        let mut h = Headers::default();
        for name in [HeaderName::From, HeaderName::CallId, HeaderName::CSeq] {
            if let Some(v) = resp.headers.get(&name) {
                h.push(name, v.to_string());
            }
        }
        h.push(HeaderName::Contact, format!("<{}>", contact.uri));
        let invite = Request {
            method: Method::Invite,
            uri: contact.uri.to_string(),
            headers: h,
            body: Bytes::new(),
        };
        let Ok(mut d) = Dialog::uac(&invite, resp) else {
            return;
        };
        // Responses come back the way the request went: to the Via's
        // received/rport if present, else the contact.
        let dest = contact
            .uri
            .host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, contact.uri.port.unwrap_or(5060)));
        let Some(dest) = dest else { return };
        let route = Route {
            protocol: Protocol::Udp,
            dest,
        };
        let via = self.via(route);
        let c = self.contact(route);
        let ack = d.request(Method::Ack, &via, &c, Some(cseq.seq));
        self.send(
            route.protocol,
            dest,
            &crate::sip::message::Message::Request(ack),
        )
        .await;
        let bye = d.request(Method::Bye, &self.via(route), &c, None);
        let ev = self
            .start_client(bye, route.protocol, dest, Owner::Nobody)
            .await;
        self.pending.extend(ev);
    }

    /// CANCEL from the caller (its server transaction already exists).
    pub(super) async fn on_cancel(&mut self, req: &Request, cancel_key: &Key) -> Response {
        let tag = self.tag();
        let invite_key = invite_key_of(cancel_key);
        let Some(&id) = self.calls.by_invite.get(&invite_key) else {
            // §9.2: the INVITE's transaction still exists but was answered
            // (a 407, a refusal, an ended call): the CANCEL matched it, gets
            // 200 and changes nothing.
            let status = if self.txs.contains_key(&invite_key) {
                200
            } else {
                481
            };
            return reply(req, status, &tag);
        };
        let Some(call) = self.calls.calls.get(&id) else {
            return reply(req, 481, &tag);
        };
        if call.b.is_some() {
            return reply(req, 200, &tag); // too late: the call was answered
        }
        let r = reply(&call.a.invite, 487, &call.a.tag);
        let key = call.a.key.clone();
        self.respond(&key, r).await;
        self.cancel_forks(id).await;
        let disposition = if call_kind(&self.calls, id) == Some(Kind::Inbound) {
            Disposition::Missed
        } else {
            Disposition::Canceled
        };
        self.end_call(
            id,
            Ending::new(disposition, "caller hung up before an answer"),
        )
        .await;
        reply(req, 200, &tag)
    }

    async fn cancel_forks(&mut self, id: u64) {
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        let cancels = stop_forks(call.forks.iter_mut());
        self.send_cancels(cancels).await;
    }

    /// Sends CANCELs (their answers only end their transactions).
    async fn send_cancels(&mut self, cancels: Vec<(Request, Route)>) {
        for (cancel, route) in cancels {
            let ev = self
                .start_client(cancel, route.protocol, route.dest, Owner::Nobody)
                .await;
            self.pending.extend(ev);
        }
    }

    /// Whether an in-dialog request belongs to a call; `None` if not ours.
    pub(super) fn call_of(&self, req: &Request) -> Option<(u64, Side)> {
        let call_id = req.headers.get(&HeaderName::CallId)?;
        let to_tag = req
            .headers
            .get(&HeaderName::To)
            .and_then(NameAddr::parse)
            .and_then(|n| n.params.get("tag").flatten().map(str::to_string))?;
        self.calls
            .by_dialog
            .get(&(call_id.to_string(), to_tag))
            .copied()
    }

    /// The ACK for our 2xx (no transaction of its own).
    pub(super) fn on_dialog_ack(&mut self, id: u64, side: Side) {
        if let (Some(call), Side::A) = (self.calls.calls.get_mut(&id), side) {
            call.a.acked = true;
        }
    }

    /// A request inside a call's dialog (BYE, re-INVITE, INFO…).
    pub(super) async fn on_in_dialog(&mut self, req: &Request, id: u64, side: Side) -> Response {
        let tag = self.tag();
        let Some(dialog) = self.leg_dialog(id, side) else {
            return reply(req, 481, &tag);
        };
        if let Err(e) = dialog.on_request(req) {
            tracing::debug!(call = id, error = %e, "in-dialog request refused");
            return reply(req, 500, &tag);
        }
        match req.method {
            Method::Bye => {
                let who = match side {
                    Side::A => "caller hung up",
                    Side::B => "callee hung up",
                };
                self.bye_side(id, side.other()).await;
                self.end_call(id, Ending::new(Disposition::Answered, who))
                    .await;
                reply(req, 200, &tag)
            }
            Method::Invite => self.on_reinvite(req, id, side, &tag),
            Method::Refer => self.on_refer(req, id, side, &tag),
            Method::Info | Method::Notify | Method::Options | Method::Update
                if req.body.is_empty() || req.method != Method::Update =>
            {
                reply(req, 200, &tag)
            }
            _ => {
                let mut r = reply(req, 405, &tag);
                r.headers.push(HeaderName::Allow, super::ALLOW);
                r
            }
        }
    }

    /// A re-INVITE: hold, resume or a moved peer. Answered here; the other
    /// leg hears music while it is held and is never renegotiated.
    fn on_reinvite(&mut self, req: &Request, id: u64, side: Side, tag: &str) -> Response {
        let local_for = match self.calls.calls.get(&id) {
            Some(call) => match side {
                Side::A => call.a.route.dest.ip(),
                Side::B => call
                    .b
                    .as_ref()
                    .map(|b| b.route.dest.ip())
                    .unwrap_or(call.a.route.dest.ip()),
            },
            None => return reply(req, 481, tag),
        };
        let local = self.local_ip_for(local_for);
        let public = self.media.public_ip;
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return reply(req, 481, tag);
        };
        // Twilio's leg sees the public address, as in the first answer.
        let twilio_side = matches!(
            (side, call.kind),
            (Side::A, Kind::Inbound) | (Side::B, Kind::Outbound)
        );
        let ip = public.filter(|_| twilio_side).unwrap_or(local);
        let described = if req.body.is_empty() {
            None // an offerless re-INVITE: we offer what we have, sendrecv
        } else {
            match Description::parse(&req.body) {
                Ok(d) => Some(d),
                Err(SdpError::Malformed(why)) => {
                    let mut r = reply(req, 400, tag);
                    r.reason = format!("Bad SDP ({why})");
                    return r;
                }
                Err(_) => return reply(req, 488, tag),
            }
        };
        let i = side.index();
        let direction = described
            .as_ref()
            .map(|d| d.audio.direction)
            .unwrap_or(Direction::SendRecv);
        if let Some(d) = &described {
            if !d.audio.codecs.contains(&call.codec) {
                return reply(req, 488, tag);
            }
            call.relay.control(Control::Peer {
                side,
                rtp: SocketAddr::new(d.audio.addr, d.audio.port),
                direction: d.audio.direction,
                codec: call.codec,
            });
        }
        let holds = direction.is_hold();
        if call.holding[i] != holds {
            tracing::info!(call = id, ?side, hold = holds, "hold changed");
        }
        call.holding[i] = holds;
        let music_to_other = holds || call.api_hold;
        call.relay.control(Control::Music {
            side: side.other(),
            on: music_to_other,
        });
        let (streams, audio_index) = described
            .as_ref()
            .map(|d| (d.streams.clone(), d.audio_index))
            .unwrap_or_default();
        let origin = match side {
            Side::A => &mut call.a.origin,
            Side::B => match call.b.as_mut() {
                Some(b) => &mut b.origin,
                None => return reply(req, 491, tag),
            },
        };
        let body = sdp::write(
            origin,
            &sdp::Offer {
                addr: ip,
                port: call.relay.ports[i],
                codecs: vec![call.codec],
                telephone_event: call.telephone_event,
                direction: direction.answer(),
                ptime: None,
            },
            &streams,
            audio_index,
        );
        let mut r = reply(req, 200, tag);
        let route = match side {
            Side::A => call.a.route,
            Side::B => call.b.as_ref().map(|b| b.route).unwrap_or(call.a.route),
        };
        r.headers.push(
            HeaderName::Contact,
            format!("<{}>", contact_for(&self.transport, route, ip)),
        );
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = Bytes::from(body);
        r
    }

    /// Sends BYE on one side of an answered call.
    async fn bye_side(&mut self, id: u64, side: Side) {
        self.request_in_dialog(id, side, Method::Bye, |_| {}).await;
    }

    /// Sends a request in the dialog of one leg (nobody waits for its
    /// answer); `fill` adds its headers and body.
    async fn request_in_dialog(
        &mut self,
        id: u64,
        side: Side,
        method: Method,
        fill: impl FnOnce(&mut Request),
    ) {
        let Some(route) = self.leg_route(id, side) else {
            return;
        };
        let via = self.via(route);
        let contact = self.contact(route);
        let Some(dialog) = self.leg_dialog(id, side) else {
            return;
        };
        let mut req = dialog.request(method, &via, &contact, None);
        fill(&mut req);
        let ev = self
            .start_client(req, route.protocol, route.dest, Owner::Nobody)
            .await;
        self.pending.extend(ev);
    }

    /// A call timer fired.
    pub(super) async fn call_timer(&mut self, id: u64, timer: CallTimer) {
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        match timer {
            CallTimer::Ring => {
                if call.b.is_some() {
                    return;
                }
                let r = reply(&call.a.invite, 480, &call.a.tag);
                let key = call.a.key.clone();
                tracing::info!(call = id, "nobody answered in time");
                self.respond(&key, r).await;
                self.cancel_forks(id).await;
                self.end_call(id, Ending::new(Disposition::NoAnswer, "ring timeout"))
                    .await;
            }
            CallTimer::Refer => {
                if let Some(plan) = call.refer.take() {
                    self.carry_out_refer(id, plan).await;
                }
            }
            CallTimer::TransferRing => {
                let Some(t) = call.transfer.as_ref() else {
                    return;
                };
                if t.forks.iter().any(|f| f.state == ForkState::Answered) {
                    return;
                }
                self.transfer_failed(id, 408).await;
            }
            CallTimer::Retransmit => {
                if call.a.acked {
                    return;
                }
                let t2 = crate::sip::transaction::TimerConfig::UDP.t2;
                let given_up = call.answered_at.is_some_and(|t| {
                    self.clock.now().since(t) >= crate::sip::transaction::TimerConfig::UDP.timeout()
                });
                if given_up {
                    tracing::info!(call = id, "caller never ACKed the answer: hanging up");
                    return self
                        .hang_up_both(
                            id,
                            Ending::new(Disposition::Failed, "no ACK from the caller"),
                        )
                        .await;
                }
                call.a.retransmit_every = (call.a.retransmit_every * 2).min(t2);
                let (every, ok, key) = (
                    call.a.retransmit_every,
                    call.a.ok.clone(),
                    call.a.key.clone(),
                );
                if let Some(ok) = ok {
                    let actions =
                        self.feed(&key, crate::sip::transaction::Input::Respond(ok.clone()));
                    if actions.is_empty() {
                        // The transaction is gone (Timer L): send it ourselves.
                        if let Some(call) = self.calls.calls.get(&id) {
                            let route = call.a.route;
                            self.send(
                                route.protocol,
                                route.dest,
                                &crate::sip::message::Message::Response(ok),
                            )
                            .await;
                        }
                    } else {
                        self.apply(&key, actions).await;
                    }
                }
                self.arm(TimerKey::Call(id, CallTimer::Retransmit), every);
            }
        }
    }

    /// The relay reported something.
    pub(super) async fn on_media_event(&mut self, id: u64, event: MediaEvent) {
        let MediaEvent::Timeout(_) = event;
        let Some(call) = self.calls.calls.get(&id) else {
            // A relay joined into another call by an attended transfer
            // reports under its old id: the transferred party went silent.
            if let Some(&into) = self.calls.joined.get(&id) {
                if self.calls.calls.contains_key(&into) {
                    tracing::warn!(call = into, "no media from a transferred party: hanging up");
                    self.hang_up_both(
                        into,
                        Ending::new(
                            Disposition::Answered,
                            "media timeout: no RTP from the transferred party",
                        ),
                    )
                    .await;
                }
            }
            return;
        };
        let MediaEvent::Timeout(side) = event;
        if call.b.is_none() {
            return;
        }
        let who = match (side, call.kind) {
            (Side::A, Kind::Inbound) => "Twilio",
            (Side::B, Kind::Outbound) => "Twilio",
            _ => "the phone",
        };
        tracing::warn!(call = id, ?side, "no media from {who}: hanging up");
        self.hang_up_both(
            id,
            Ending::new(
                Disposition::Answered,
                format!("media timeout: no RTP from {who}"),
            ),
        )
        .await;
    }

    /// Ends an answered call from Homeline's side: BYE on both legs, then
    /// the record.
    async fn hang_up_both(&mut self, id: u64, ending: Ending) {
        self.bye_side(id, Side::A).await;
        self.bye_side(id, Side::B).await;
        self.end_call(id, ending).await;
    }

    /// Hangs a call up from the API: BYE to answered legs, CANCEL/487 while ringing.
    pub(super) async fn hang_up(&mut self, id: u64) -> bool {
        let Some(call) = self.calls.calls.get(&id) else {
            return false;
        };
        if call.b.is_some() {
            self.hang_up_both(
                id,
                Ending::new(Disposition::Answered, "hung up from the web UI"),
            )
            .await;
        } else {
            let r = reply(&call.a.invite, 487, &call.a.tag);
            let key = call.a.key.clone();
            self.respond(&key, r).await;
            self.cancel_forks(id).await;
            self.end_call(
                id,
                Ending::new(Disposition::Canceled, "hung up from the web UI"),
            )
            .await;
        }
        true
    }

    /// Puts both parties on hold (each hears music) or takes them off.
    pub(super) fn hold(&mut self, id: u64, on: bool) -> bool {
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return false;
        };
        if call.b.is_none() {
            return false;
        }
        call.api_hold = on;
        for side in [Side::A, Side::B] {
            let held_by_other = call.holding[side.other().index()];
            call.relay.control(Control::Music {
                side,
                on: on || held_by_other,
            });
        }
        true
    }

    /// The call list for the API.
    pub(super) fn list_calls(&self) -> Vec<CallInfo> {
        self.calls.list()
    }

    /// Removes a call, stops its relay and writes its CDR.
    async fn end_call(&mut self, id: u64, ending: Ending) {
        let Some(call) = self.calls.calls.remove(&id) else {
            return;
        };
        self.calls.joined.retain(|_, into| *into != id);
        self.calls.by_invite.remove(&call.a.key);
        if let Some(d) = &call.a.dialog {
            self.calls
                .by_dialog
                .remove(&(d.id.call_id.clone(), d.id.local_tag.clone()));
        }
        if let Some(b) = &call.b {
            self.calls
                .by_dialog
                .remove(&(b.dialog.id.call_id.clone(), b.dialog.id.local_tag.clone()));
        }
        for t in [
            CallTimer::Ring,
            CallTimer::Retransmit,
            CallTimer::Refer,
            CallTimer::TransferRing,
        ] {
            self.armed.remove(&TimerKey::Call(id, t));
        }
        let now = self.clock.now();
        tracing::info!(call = id, cause = %ending.cause, "call ended");
        self.write_cdr(&call, now, ending);
        // Dropping the call drops its relay: the task ends, the ports return.
    }

    fn write_cdr(&self, call: &Call, now: Timestamp, ending: Ending) {
        let device_id = call
            .b
            .as_ref()
            .and_then(|b| b.device_id)
            .filter(|_| call.kind != Kind::Outbound)
            .or(call.device_id);
        let cdr = Cdr {
            id: 0,
            call_sid: None,
            sip_call_id: call
                .a
                .invite
                .headers
                .get(&HeaderName::CallId)
                .map(str::to_string),
            direction: match call.kind {
                Kind::Inbound => CdrDirection::Inbound,
                Kind::Outbound => CdrDirection::Outbound,
                Kind::Internal => CdrDirection::Internal,
            },
            from_number: call.from.clone(),
            to_number: call.to.clone(),
            did_id: call.did_id,
            device_id,
            started_at: call.started_at.to_string(),
            answered_at: call.answered_at.map(|t| t.to_string()),
            ended_at: Some(now.to_string()),
            duration_secs: call
                .answered_at
                .map(|t| now.since(t).as_secs() as i64)
                .unwrap_or(0),
            disposition: ending.disposition,
            twilio_status: None,
            hangup_cause: Some(ending.cause),
            recording_path: None,
            spam_score: None,
        };
        if let Some(tx) = &self.cdrs {
            let _ = tx.send(cdr);
        }
    }

    /// A refused outgoing call still leaves a CDR (`blocked`), so the
    /// refusal is visible in the call history, not only in the log.
    fn record_refusal(&self, req: &Request, from: &str, to: &str, device_id: i64, why: &str) {
        let now = self.clock.now();
        let cdr = Cdr {
            id: 0,
            call_sid: None,
            sip_call_id: req.headers.get(&HeaderName::CallId).map(str::to_string),
            direction: CdrDirection::Outbound,
            from_number: from.to_string(),
            to_number: to.to_string(),
            did_id: None,
            device_id: Some(device_id),
            started_at: now.to_string(),
            answered_at: None,
            ended_at: Some(now.to_string()),
            duration_secs: 0,
            disposition: Disposition::Blocked,
            twilio_status: None,
            hangup_cause: Some(format!("toll-fraud guard: {why}")),
            recording_path: None,
            spam_score: None,
        };
        if let Some(tx) = &self.cdrs {
            let _ = tx.send(cdr);
        }
    }
}

/// A final answer refusing `req`, its reason in a `Warning` when given.
fn refusal(req: &Request, status: u16, why: &str, tag: &str) -> Response {
    let mut r = reply(req, status, tag);
    if !why.is_empty() {
        r.headers.push(
            HeaderName::Other("Warning".into()),
            crate::sip::message::text::warning(why),
        );
    }
    r
}

fn call_a_dest(calls: &CallTable, id: u64) -> SocketAddr {
    calls
        .calls
        .get(&id)
        .map(|c| c.a.route.dest)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn call_kind(calls: &CallTable, id: u64) -> Option<Kind> {
    calls.calls.get(&id).map(|c| c.kind)
}

fn contact_for(transport: &crate::sip::transport::Transport, route: Route, ip: IpAddr) -> String {
    super::contact_uri(transport, route.protocol, ip)
}

/// Stops the forks still trying: a ringing one is CANCELled now; one that
/// has not answered at all gets its CANCEL with its first provisional
/// response (§9.1: a CANCEL may only follow one).
fn stop_forks<'a>(forks: impl Iterator<Item = &'a mut Fork>) -> Vec<(Request, Route)> {
    let mut cancels = Vec::new();
    for f in forks {
        match f.state {
            ForkState::Ringing => {
                f.state = ForkState::Cancelled;
                cancels.push((cancel_for(&f.invite), f.route));
            }
            ForkState::Calling => f.state = ForkState::CancelPending,
            _ => {}
        }
    }
    cancels
}

/// The CANCEL for one of our INVITEs (§9.1): same Request-URI, top Via,
/// Call-ID, From, To and CSeq number.
fn cancel_for(invite: &Request) -> Request {
    let mut h = Headers::default();
    if let Some(v) = invite.headers.values(&HeaderName::Via).first() {
        h.push(HeaderName::Via, v.to_string());
    }
    h.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            h.push(name, v.to_string());
        }
    }
    let seq = invite
        .headers
        .get(&HeaderName::CSeq)
        .and_then(crate::sip::message::CSeq::parse)
        .map(|c| c.seq)
        .unwrap_or(1);
    h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers: h,
        body: Bytes::new(),
    }
}

/// The INVITE transaction a CANCEL's key points at (§9.2: same branch).
fn invite_key_of(cancel: &Key) -> Key {
    use crate::sip::transaction::TxKey;
    let (k, p) = cancel;
    let k = match k {
        TxKey::Rfc3261 {
            branch,
            sent_by,
            call,
            ..
        } => TxKey::Rfc3261 {
            branch: branch.clone(),
            sent_by: sent_by.clone(),
            method: "INVITE".into(),
            call: call.clone(),
        },
        TxKey::Rfc2543 { parts } => TxKey::Rfc2543 {
            parts: parts
                .strip_suffix("CANCEL")
                .map(|s| format!("{s}INVITE"))
                .unwrap_or_else(|| parts.clone()),
        },
    };
    (k, *p)
}

/// Transfers (RFC 3515 REFER, RFC 3891 Replaces). The referrer's place in
/// the call goes to the target; the other party stays on its relay leg and
/// hears music while the target rings, so it is never renegotiated.
impl Endpoint {
    /// A REFER in a call's dialog: checked and answered 202 here, carried
    /// out by [`CallTimer::Refer`] once the 202 is on the wire (so the
    /// referrer never sees a NOTIFY before it).
    fn on_refer(&mut self, req: &Request, id: u64, side: Side, tag: &str) -> Response {
        let Some(call) = self.calls.calls.get(&id) else {
            return reply(req, 481, tag);
        };
        if call.b.is_none() || call.transfer.is_some() || call.refer.is_some() {
            return reply(req, 491, tag);
        }
        let Some(target) = req
            .headers
            .get(&HeaderName::ReferTo)
            .and_then(NameAddr::parse)
        else {
            let mut r = reply(req, 400, tag);
            r.reason = "Missing or Bad Refer-To".into();
            return r;
        };
        let replaces = target.uri.headers.as_deref().and_then(|h| {
            h.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.eq_ignore_ascii_case("Replaces")
                    .then(|| crate::sip::message::unescape(v))
            })
        });
        let plan = if let Some(replaces) = replaces {
            // callid;to-tag=…;from-tag=… names the referrer's other dialog;
            // Homeline's tag in it is the to-tag.
            let mut parts = replaces.split(';');
            let call_id = parts.next().unwrap_or("").trim().to_string();
            let to_tag = parts
                .find_map(|p| p.trim().strip_prefix("to-tag="))
                .unwrap_or("")
                .to_string();
            match self.calls.by_dialog.get(&(call_id, to_tag)).copied() {
                Some((other, other_side)) if other != id => ReferPlan::Attended {
                    referrer: side,
                    call: other,
                    side: other_side,
                },
                _ => {
                    let mut r = reply(req, 481, tag);
                    r.reason = "Replaced Dialog Does Not Exist".into();
                    return r;
                }
            }
        } else {
            let extension = target.uri.user_unescaped().unwrap_or_default();
            if self.directory.phone_by_username(&extension).is_none() {
                let mut r = reply(req, 403, tag);
                r.reason = "Transfer Target Is Not a Local Phone".into();
                return r;
            }
            ReferPlan::Blind {
                referrer: side,
                extension,
            }
        };
        tracing::info!(call = id, ?side, ?plan, "transfer requested");
        if let Some(call) = self.calls.calls.get_mut(&id) {
            call.refer = Some(plan);
            call.notifies = true;
        }
        self.arm(TimerKey::Call(id, CallTimer::Refer), Duration::ZERO);
        reply(req, 202, tag)
    }

    async fn carry_out_refer(&mut self, id: u64, plan: ReferPlan) {
        match plan {
            ReferPlan::Blind {
                referrer,
                extension,
            } => self.start_blind_transfer(id, referrer, &extension).await,
            ReferPlan::Attended {
                referrer,
                call,
                side,
            } => self.join_calls(id, referrer, call, side).await,
        }
    }

    /// Tells the referrer how its transfer goes (NOTIFY with a sipfrag).
    async fn notify_referrer(&mut self, id: u64, side: Side, status: u16, done: bool) {
        match self.calls.calls.get_mut(&id) {
            Some(call) if call.notifies => call.notifies = !done,
            _ => return,
        }
        self.request_in_dialog(id, side, Method::Notify, |notify| {
            notify.headers.push(HeaderName::Event, "refer");
            notify.headers.push(
                HeaderName::Other("Subscription-State".into()),
                if done {
                    "terminated;reason=noresource"
                } else {
                    "active;expires=60"
                },
            );
            notify
                .headers
                .push(HeaderName::ContentType, "message/sipfrag;version=2.0");
            notify.body = Bytes::from(format!(
                "SIP/2.0 {status} {}\r\n",
                crate::sip::message::default_reason(status)
            ));
        })
        .await;
    }

    /// Transfers a call from the API: the party on `side` (by default the
    /// household's phone) is replaced by `extension`, ringing while the
    /// other party hears music.
    pub(super) async fn api_transfer(
        &mut self,
        id: u64,
        extension: &str,
        side: Option<Side>,
    ) -> Result<(), TransferRefused> {
        let Some(call) = self.calls.calls.get(&id) else {
            return Err(TransferRefused::NoSuchCall);
        };
        if call.b.is_none() || call.transfer.is_some() || call.refer.is_some() {
            return Err(TransferRefused::NotNow);
        }
        if self.directory.phone_by_username(extension).is_none() {
            return Err(TransferRefused::UnknownExtension);
        }
        let side = side.unwrap_or(match call.kind {
            Kind::Outbound => Side::A,
            Kind::Inbound | Kind::Internal => Side::B,
        });
        tracing::info!(call = id, ?side, %extension, "transfer requested from the API");
        self.start_blind_transfer(id, side, extension).await;
        Ok(())
    }

    fn leg_route(&self, id: u64, side: Side) -> Option<Route> {
        let call = self.calls.calls.get(&id)?;
        match side {
            Side::A => Some(call.a.route),
            Side::B => call.b.as_ref().map(|b| b.route),
        }
    }

    fn leg_dialog(&mut self, id: u64, side: Side) -> Option<&mut Dialog> {
        let call = self.calls.calls.get_mut(&id)?;
        match side {
            Side::A => call.a.dialog.as_mut(),
            Side::B => call.b.as_mut().map(|b| &mut b.dialog),
        }
    }

    async fn start_blind_transfer(&mut self, id: u64, referrer: Side, extension: &str) {
        self.notify_referrer(id, referrer, 100, false).await;
        let Some(phone) = self.directory.phone_by_username(extension).cloned() else {
            return self.notify_referrer(id, referrer, 404, true).await;
        };
        let Some(call) = self.calls.calls.get(&id) else {
            return;
        };
        let media = OfferMedia {
            port: call.relay.ports[referrer.index()],
            codecs: vec![call.codec],
            telephone_event: call.telephone_event,
            ptime: None,
            towards_twilio: false,
        };
        let from = match referrer.other() {
            Side::A => call.from.clone(),
            Side::B => call.to.clone(),
        };
        // The transferee hears music while the target rings.
        call.relay.control(Control::Music {
            side: referrer.other(),
            on: true,
        });
        let mut forks = Vec::new();
        for b in self.registrar.bindings(phone.device_id).to_vec() {
            let route = Route {
                protocol: b.protocol,
                dest: b.source,
            };
            let to_uri = format!("sip:{}@{}", phone.username, self.host_for(route.dest.ip()));
            let invite = self.b_invite(&media, &b.contact, &to_uri, &from, None, route);
            if let Some(key) = super::uac::client_key(&invite) {
                forks.push(Fork {
                    invite,
                    key,
                    route,
                    device_id: Some(phone.device_id),
                    state: ForkState::Calling,
                    auth_tried: true,
                });
            }
        }
        if forks.is_empty() {
            return self.transfer_failed_with(id, referrer, 480).await;
        }
        let starts: Vec<(Request, Route)> =
            forks.iter().map(|f| (f.invite.clone(), f.route)).collect();
        if let Some(call) = self.calls.calls.get_mut(&id) {
            call.transfer = Some(Transfer { referrer, forks });
        }
        for (n, (invite, route)) in starts.into_iter().enumerate() {
            let ev = self
                .start_client(
                    invite,
                    route.protocol,
                    route.dest,
                    Owner::TransferFork(id, n),
                )
                .await;
            self.pending.extend(ev);
        }
        self.arm(
            TimerKey::Call(id, CallTimer::TransferRing),
            self.ring_timeout,
        );
    }

    async fn on_transfer_response(&mut self, id: u64, n: usize, resp: Response) {
        let Some(fork) = self
            .calls
            .calls
            .get_mut(&id)
            .and_then(|c| c.transfer.as_mut())
            .and_then(|t| t.forks.get_mut(n))
        else {
            if (200..300).contains(&resp.status) {
                self.hang_up_stray(&resp).await;
            }
            return;
        };
        match resp.status {
            100..=199 => {
                if fork.state == ForkState::CancelPending {
                    fork.state = ForkState::Cancelled;
                    let cancel = vec![(cancel_for(&fork.invite), fork.route)];
                    self.send_cancels(cancel).await;
                } else if fork.state == ForkState::Calling {
                    fork.state = ForkState::Ringing;
                }
            }
            200..=299 if fork.state == ForkState::Calling || fork.state == ForkState::Ringing => {
                fork.state = ForkState::Answered;
                let (invite, route, device) = (fork.invite.clone(), fork.route, fork.device_id);
                self.complete_blind_transfer(id, invite, route, device, resp)
                    .await;
            }
            200..=299 => self.hang_up_stray(&resp).await,
            status => {
                fork.state = ForkState::Failed(status);
                let all_failed = self
                    .calls
                    .calls
                    .get(&id)
                    .and_then(|c| c.transfer.as_ref())
                    .is_some_and(|t| {
                        t.forks
                            .iter()
                            .all(|f| matches!(f.state, ForkState::Failed(_) | ForkState::Cancelled))
                    });
                if all_failed {
                    self.transfer_failed(id, status).await;
                }
            }
        }
    }

    async fn complete_blind_transfer(
        &mut self,
        id: u64,
        invite: Request,
        route: Route,
        device: Option<i64>,
        resp: Response,
    ) {
        let Ok(mut dialog) = Dialog::uac(&invite, &resp) else {
            return self.hang_up_stray(&resp).await;
        };
        let via = self.via(route);
        let contact = self.contact(route);
        let ack = dialog.request(Method::Ack, &via, &contact, Some(1));
        self.send(
            route.protocol,
            route.dest,
            &crate::sip::message::Message::Request(ack.clone()),
        )
        .await;
        let answer = Description::parse(&resp.body)
            .ok()
            .filter(|a| a.audio.port != 0);
        let Some(referrer) = self
            .calls
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| t.referrer)
        else {
            return;
        };
        let Some(answer) = answer else {
            let bye = dialog.request(Method::Bye, &self.via(route), &contact, None);
            let ev = self
                .start_client(bye, route.protocol, route.dest, Owner::Nobody)
                .await;
            self.pending.extend(ev);
            return self.transfer_failed(id, 488).await;
        };
        // Tell the referrer, then let it go.
        self.notify_referrer(id, referrer, 200, true).await;
        self.bye_side(id, referrer).await;
        let origin = Origin::new(self.random_u32() as u64);
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        let cancels = call
            .transfer
            .take()
            .map(|mut t| stop_forks(t.forks.iter_mut()))
            .unwrap_or_default();
        call.relay.control(Control::Peer {
            side: referrer,
            rtp: SocketAddr::new(answer.audio.addr, answer.audio.port),
            direction: answer.audio.direction,
            codec: call.codec,
        });
        call.holding = [false; 2];
        call.relay.control(Control::Music {
            side: referrer.other(),
            on: call.api_hold,
        });
        let new_key = (dialog.id.call_id.clone(), dialog.id.local_tag.clone());
        let old_key = replace_leg(call, referrer, dialog, route, origin, ack, device);
        if let Some(k) = old_key {
            self.calls.by_dialog.remove(&k);
        }
        self.calls.by_dialog.insert(new_key, (id, referrer));
        tracing::info!(call = id, "blind transfer completed");
        self.send_cancels(cancels).await;
    }

    async fn transfer_failed(&mut self, id: u64, status: u16) {
        let Some(referrer) = self
            .calls
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| t.referrer)
        else {
            return;
        };
        self.transfer_failed_with(id, referrer, status).await;
    }

    /// The target did not answer: the referrer keeps the call.
    async fn transfer_failed_with(&mut self, id: u64, referrer: Side, status: u16) {
        let mut cancels = Vec::new();
        if let Some(call) = self.calls.calls.get_mut(&id) {
            if let Some(mut t) = call.transfer.take() {
                cancels = stop_forks(t.forks.iter_mut());
            }
            let held = call.holding[referrer.index()] || call.api_hold;
            call.relay.control(Control::Music {
                side: referrer.other(),
                on: held,
            });
        }
        tracing::info!(
            call = id,
            status,
            "transfer failed; the referrer keeps the call"
        );
        self.send_cancels(cancels).await;
        self.notify_referrer(id, referrer, status.max(300), true)
            .await;
    }

    /// Attended transfer: the referrer talks to X in call `id` (on side
    /// `referrer`) and to Y in call `other` (on side `other_side`). X and Y
    /// are joined by pointing the two relays at each other over loopback,
    /// so neither is renegotiated; the referrer leaves both calls.
    async fn join_calls(&mut self, id: u64, referrer: Side, other: u64, other_side: Side) {
        let ok = match (self.calls.calls.get(&id), self.calls.calls.get(&other)) {
            (Some(a), Some(b)) => a.b.is_some() && b.b.is_some() && a.codec == b.codec,
            _ => false,
        };
        if !ok {
            return self.notify_referrer(id, referrer, 488, true).await;
        }
        self.notify_referrer(id, referrer, 200, true).await;
        self.bye_side(id, referrer).await;
        self.bye_side(other, other_side).await;
        let Some(mut joined) = self.calls.calls.remove(&other) else {
            return;
        };
        let y_side = other_side.other();
        let (y_dialog, y_route, y_origin, y_ack, y_device) = match take_leg(&mut joined, y_side) {
            Some(leg) => leg,
            None => return,
        };
        // Forget the referrer's dialogs in both calls.
        for k in dialog_keys(&joined) {
            self.calls.by_dialog.remove(&k);
        }
        self.calls.by_invite.remove(&joined.a.key);
        let now = self.clock.now();
        self.write_cdr(
            &joined,
            now,
            Ending::new(
                Disposition::Answered,
                format!("attended transfer: joined into call {id}"),
            ),
        );
        let loopback = self.media.pool.loopback_ip();
        let Some(call) = self.calls.calls.get_mut(&id) else {
            return;
        };
        call.relay.control(Control::Peer {
            side: referrer,
            rtp: SocketAddr::new(loopback, joined.relay.ports[other_side.index()]),
            direction: Direction::SendRecv,
            codec: call.codec,
        });
        joined.relay.control(Control::Peer {
            side: other_side,
            rtp: SocketAddr::new(loopback, call.relay.ports[referrer.index()]),
            direction: Direction::SendRecv,
            codec: call.codec,
        });
        for (relay, side) in [(&call.relay, referrer.other()), (&joined.relay, y_side)] {
            relay.control(Control::Music { side, on: false });
        }
        call.holding = [false; 2];
        let y_key = (y_dialog.id.call_id.clone(), y_dialog.id.local_tag.clone());
        let old = replace_leg(call, referrer, y_dialog, y_route, y_origin, y_ack, y_device);
        call.joined_side = Some(referrer);
        call.bridged.push(joined.relay);
        if let Some(k) = old {
            self.calls.by_dialog.remove(&k);
        }
        self.calls.by_dialog.insert(y_key, (id, referrer));
        self.calls.joined.insert(other, id);
        tracing::info!(call = id, joined = other, "attended transfer completed");
    }
}

/// Why the API could not start a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefused {
    /// No call with that id.
    NoSuchCall,
    /// Not answered yet, or a transfer is already under way.
    NotNow,
    /// The target is not one of the household's phones.
    UnknownExtension,
}

/// Puts a new party on `side` of a call (after a transfer); returns the
/// old leg's dialog key to forget.
fn replace_leg(
    call: &mut Call,
    side: Side,
    dialog: Dialog,
    route: Route,
    origin: Origin,
    ack: Request,
    device: Option<i64>,
) -> Option<(String, String)> {
    match side {
        Side::A => {
            let old = call
                .a
                .dialog
                .replace(dialog)
                .map(|d| (d.id.call_id, d.id.local_tag));
            call.a.route = route;
            call.a.origin = origin;
            call.a.acked = true;
            if call.kind == Kind::Internal {
                call.device_id = device.or(call.device_id);
            }
            old
        }
        Side::B => {
            let old = call
                .b
                .replace(BLeg {
                    dialog,
                    route,
                    origin,
                    ack,
                    device_id: device,
                })
                .map(|b| (b.dialog.id.call_id, b.dialog.id.local_tag));
            if call.kind != Kind::Outbound {
                call.device_id = device.or(call.device_id);
            }
            old
        }
    }
}

/// Takes one leg out of a call that is being dissolved.
fn take_leg(call: &mut Call, side: Side) -> Option<(Dialog, Route, Origin, Request, Option<i64>)> {
    match side {
        Side::A => {
            let dialog = call.a.dialog.take()?;
            let ack = call.a.invite.clone();
            Some((dialog, call.a.route, call.a.origin.clone(), ack, None))
        }
        Side::B => {
            let b = call.b.take()?;
            Some((b.dialog, b.route, b.origin, b.ack, b.device_id))
        }
    }
}

/// Every dialog key still indexed for a call.
fn dialog_keys(call: &Call) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if let Some(d) = &call.a.dialog {
        v.push((d.id.call_id.clone(), d.id.local_tag.clone()));
    }
    if let Some(b) = &call.b {
        v.push((b.dialog.id.call_id.clone(), b.dialog.id.local_tag.clone()));
    }
    v
}
