//! The B2BUA: every call is an incoming leg (A, the caller) and an outgoing
//! leg (B, the phone or Twilio that answered), each its own dialog, with the
//! audio anchored in a relay.
//!
//! This layer is sans-IO, in the shape of [`crate::sip::transaction`]: the
//! endpoint feeds [`Calls::handle`] an [`Event`] (a new INVITE, a response to
//! one of our requests, a timer, a relay report) with the time, and carries
//! out the [`Action`]s it returns (send this, start that client transaction,
//! arm that timer, tell the relay, write this CDR). It owns no socket, task
//! or clock, so every race is a unit test on virtual time (`tests.rs`).
//!
//! A call's progress is its typed [`call::Phase`]: ringing with its forks,
//! answered and waiting for the caller's ACK, up (with its hold and transfer
//! sub-states); ending removes it and writes its record. The jobs around it
//! are modules of their own: [`route`] decides where a call goes,
//! [`forking`] runs the parallel INVITEs and picks the best failure,
//! [`hold`] decides who hears music, [`transfer`] reads REFERs, [`cdr`]
//! assembles the record, [`dialogs`] finds a call from an in-dialog request.
//! Call set-up has three more: [`delayed_offer`] (an INVITE without SDP:
//! our offer in the 2xx, the answer from the ACK), [`early_media`] (the
//! forks' provisionals, a 183's SDP relayed before the answer) and
//! [`prack`] (reliable provisional responses, RFC 3262, on both legs).
//! The call features: [`dtmf`] carries key presses between SIP INFO and
//! RFC 4733, [`pickup`] answers a ringing call from another phone (`*8`),
//! [`transfer_out`] transfers to a number through Twilio.
//! Who rings: [`sequence`] rings the chosen phones or steps one after
//! another (skipping phones in Do-Not-Disturb), [`feature_code`] answers
//! the DND codes `*78`/`*79`.

mod answer;
mod call;
mod cdr;
mod challenge;
mod delayed_offer;
mod dialogs;
mod directory;
mod dtmf;
mod early_media;
mod feature_code;
mod forking;
mod hold;
mod in_dialog;
mod invite;
mod pickup;
mod prack;
mod route;
mod sequence;
mod timers;
mod transfer;
mod transfer_out;
// In-dialog features: session timers, our re-INVITEs and their glare.
mod glare;
mod session_timer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_address;
#[cfg(test)]
mod tests_dialog;
#[cfg(test)]
mod tests_early;
#[cfg(test)]
mod tests_ringing;

pub use call::{CallInfo, CallMark};
pub use directory::{Directory, Number, Phone, Trunk};
pub use feature_code::CONFIRMATION as DND_CONFIRMATION;
pub use route::Caller;
pub use sequence::{RING_HEADER, RULE_HEADER};
pub use transfer::TransferRefused;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::clock::Timestamp;
use crate::dialplan::{DialRules, TollGuard};
use crate::media::relay::{Control, MediaEvent, Side};
use crate::sip::message::{build, Message, Request, Response};
use crate::sip::transaction::ServerKey;
use crate::sip::transport::Protocol;
use crate::store::cdrs::Cdr;

/// Homeline's number for a call: what the API, the relay and the timers
/// name it by (not the SIP Call-ID, which each leg has its own of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A phone's row id in the database (defined by the store, which the HTTP
/// API shares).
pub use crate::store::devices::DeviceId;

/// A party of a call, as the API names it: `a` called, `b` was called.
/// (The relay's own [`crate::media::relay::Side`] stays internal.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    /// The caller's side.
    A,
    /// The callee's side.
    B,
}

impl From<Party> for crate::media::relay::Side {
    fn from(p: Party) -> Self {
        match p {
            Party::A => crate::media::relay::Side::A,
            Party::B => crate::media::relay::Side::B,
        }
    }
}

/// Where a leg's requests and responses go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The transport.
    pub protocol: Protocol,
    /// The peer's address.
    pub dest: SocketAddr,
}

/// One registered contact of a phone, for ringing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The Contact URI it registered.
    pub uri: String,
    /// The transport it registered over.
    pub protocol: Protocol,
    /// Where its REGISTER came from (where its INVITEs go).
    pub source: SocketAddr,
}

/// What the call layer asks of its host without waiting: facts about our
/// own addresses, randomness, the registrar's contacts, and relay ports.
///
/// The endpoint implements it over its transport, registrar and port pool;
/// the unit tests with fixed values.
pub trait Host {
    /// Which of our addresses `peer` reaches us at.
    fn local_ip_for(&mut self, peer: IpAddr) -> IpAddr;
    /// The port we listen on for `protocol`.
    fn port(&self, protocol: Protocol) -> u16;
    /// `bytes` random bytes in hex (tags, branches, Call-IDs).
    fn token(&mut self, bytes: usize) -> String;
    /// A random number (SDP session ids).
    fn random(&mut self) -> u64;
    /// The registered contacts of a phone.
    fn contacts(&self, device: DeviceId) -> Vec<Contact>;
    /// Opens the relay for `call`: the RTP port facing A and the one facing
    /// B, or `None` when the port range is used up. (The one effect done
    /// through the host rather than as an action: the offer needs the ports.)
    fn open_media(&mut self, call: CallId) -> Option<[u16; 2]>;
    /// The address two relays on this machine reach each other at.
    fn loopback_ip(&self) -> IpAddr;
}

/// Who waits for a client transaction's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Fork `n` of a call's outgoing INVITEs.
    Fork(CallId, usize),
    /// Fork `n` of a blind transfer's INVITEs.
    TransferFork(CallId, usize),
    /// Nobody (CANCEL, BYE, NOTIFY): the answer only ends the transaction.
    Nobody,
    // In-dialog features:
    /// Our re-INVITE (a session refresh) on one leg of a call.
    Reinvite(CallId, Side),
}

/// The call layer's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallTimer {
    /// The phones rang long enough.
    Ring,
    /// Resend our 2xx to A until its ACK (RFC 3261 §13.3.1.4); at 64·T1
    /// without one, the call is torn down.
    Retransmit,
    /// Carry out an accepted REFER (its 202 has been sent).
    Refer,
    /// A blind transfer's target rang long enough.
    TransferRing,
    // Call pickup:
    /// Resend our 2xx to the picking-up phone until its ACK.
    PickupRetransmit,
    // 100rel (RFC 3262):
    /// Resend the unacknowledged reliable provisional response to A (T1
    /// doubling); at 64·T1 without its PRACK, A gets 500.
    Prack,
    // In-dialog features (RFC 4028 session timers, RFC 3261 §14 re-INVITEs):
    /// Send our session refresh on a leg (half its interval has passed).
    SessionRefresh(Side),
    /// A leg's session expires now unless it was refreshed since.
    SessionExpiry(Side),
    /// Resend our 2xx to a leg's re-INVITE until its ACK (§13.3.1.4).
    ReinviteRetransmit(Side),
    /// Send our re-INVITE again after its 491 (§14.1).
    GlareRetry(Side),
    // Who rings:
    /// A step of a ring sequence rang long enough: the next one rings.
    NextStep,
    /// Resend our 2xx to a feature code until the phone's ACK.
    FeatureRetransmit,
    /// The feature code's confirmation is over: hang up.
    FeatureHangUp,
}

/// What happens to the call layer.
#[derive(Debug)]
pub enum Event {
    /// A new INVITE (no To tag), its 100 sent and its caller authenticated.
    Invite {
        /// The request.
        request: Request,
        /// Who sent it.
        caller: Caller,
        /// Its server transaction.
        tx: ServerKey,
        /// Where its responses go.
        route: Route,
    },
    /// A CANCEL; answered through its own transaction `tx`.
    Cancel {
        /// The request.
        request: Request,
        /// The CANCEL's server transaction.
        tx: ServerKey,
        /// The INVITE transaction it names still exists (answered or
        /// not): without a call, the CANCEL then gets 200, not 481 (§9.2).
        invite_exists: bool,
    },
    /// A request inside a call's dialog (see [`Calls::owns`]).
    InDialog {
        /// The request.
        request: Request,
        /// Its server transaction.
        tx: ServerKey,
    },
    /// An ACK for one of our 2xx (it has no transaction, RFC 6026).
    Ack(Request),
    /// A response to one of our requests (or one made up for a timeout).
    Response {
        /// Who asked.
        owner: Owner,
        /// The response.
        response: Response,
    },
    /// A call timer fired.
    Timer(CallId, CallTimer),
    /// A relay reported (under the id it was opened with).
    Media(CallId, MediaEvent),
    /// The trunk's host name resolved (or did not).
    Resolved(CallId, Option<SocketAddr>),
}

/// What the call layer wants done.
#[derive(Debug)]
pub enum Action {
    /// Answer through a server transaction.
    Respond {
        /// The transaction.
        tx: ServerKey,
        /// The response.
        response: Response,
    },
    /// Our 2xx (or a reliable provisional, RFC 3262) to A once more:
    /// through its transaction while it lives, else straight to `route`.
    Retransmit {
        /// A's INVITE transaction.
        tx: ServerKey,
        /// The 2xx.
        response: Response,
        /// Where A is.
        route: Route,
    },
    /// Start a client transaction; its responses come back as
    /// [`Event::Response`] for `owner`.
    Request {
        /// The request.
        request: Request,
        /// Where it goes.
        route: Route,
        /// Who waits for the answer.
        owner: Owner,
    },
    /// Send a message outside any transaction (the ACK of a 2xx).
    Send {
        /// The message.
        message: Message,
        /// Where it goes.
        route: Route,
    },
    /// Tell a call's relay something.
    Media(CallId, Control),
    /// The relay opened for `from` carries part of `into` now (attended
    /// transfer): it lives as long as `into`.
    MergeMedia {
        /// The dissolved call.
        from: CallId,
        /// The call it joined.
        into: CallId,
    },
    /// Stop a call's relay (and the relays merged into it); the ports return.
    CloseMedia(CallId),
    /// Arm (or re-arm) a call timer.
    Arm(CallId, CallTimer, Duration),
    /// Forget every timer of a call.
    Disarm(CallId),
    /// Resolve the trunk's host name (A/AAAA) and answer with
    /// [`Event::Resolved`].
    Resolve(CallId, String),
    /// Write a call record.
    Record(Box<Cdr>),
    /// A phone dialled a Do-Not-Disturb feature code: put it in DND (or
    /// take it out). The application stores and announces the change.
    SetDnd {
        /// The phone.
        device: DeviceId,
        /// In DND from now on.
        on: bool,
    },
}

/// A phone asked for Do-Not-Disturb with a feature code: what
/// [`Action::SetDnd`] hands the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DndRequest {
    /// The phone.
    pub device: DeviceId,
    /// In DND from now on.
    pub on: bool,
}

/// The settings the call layer decides with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The dial plan and the toll-fraud limits.
    pub rules: DialRules,
    /// How long phones ring.
    pub ring_timeout: Duration,
    /// The public address written in SDP and Contact towards Twilio.
    pub public_ip: Option<IpAddr>,
    /// Send outgoing calls here instead of the SIP Domain (`twilio.sip_edge`).
    pub trunk_edge: Option<SocketAddr>,
}

/// The live calls, their indexes, and what they are routed with.
pub struct Calls {
    calls: HashMap<CallId, call::Call>,
    next_id: u64,
    /// A's INVITE server transaction → call (for CANCEL).
    by_invite: HashMap<ServerKey, CallId>,
    dialogs: dialogs::Registry,
    /// The rate side of the toll-fraud guard.
    guard: TollGuard,
    /// Calls joined into another by an attended transfer: old id → new.
    joined: HashMap<CallId, CallId>,
    directory: Directory,
    config: Config,
    /// Feature codes being confirmed (not calls).
    features: HashMap<CallId, feature_code::FeatureCall>,
}

/// One event's worth of work: the time, the host, and the actions so far.
pub(crate) struct Cx<'h> {
    now: Timestamp,
    host: &'h mut dyn Host,
    out: Vec<Action>,
}

impl<'h> Cx<'h> {
    fn new(now: Timestamp, host: &'h mut dyn Host) -> Self {
        Cx {
            now,
            host,
            out: Vec::new(),
        }
    }

    fn tag(&mut self) -> String {
        self.host.token(6)
    }

    fn respond(&mut self, tx: &ServerKey, response: Response) {
        self.out.push(Action::Respond {
            tx: tx.clone(),
            response,
        });
    }

    fn request(&mut self, request: Request, route: Route, owner: Owner) {
        self.out.push(Action::Request {
            request,
            route,
            owner,
        });
    }

    fn send(&mut self, route: Route, message: Message) {
        self.out.push(Action::Send { message, route });
    }

    fn media(&mut self, call: CallId, control: Control) {
        self.out.push(Action::Media(call, control));
    }

    fn arm(&mut self, call: CallId, timer: CallTimer, after: Duration) {
        self.out.push(Action::Arm(call, timer, after));
    }

    /// Our host as written in URIs towards `peer`.
    fn host_for(&mut self, peer: IpAddr) -> String {
        build::uri_host(self.host.local_ip_for(peer))
    }

    /// A top Via for a new request towards `route`, with a fresh branch.
    fn via(&mut self, route: Route) -> String {
        let host = self.host_for(route.dest.ip());
        let port = self.host.port(route.protocol);
        let branch = self.host.token(12);
        build::via(route.protocol.via_token(), &host, port, &branch)
    }

    /// Our Contact URI for `route`'s transport at `ip`.
    fn contact_at(&mut self, route: Route, ip: IpAddr) -> String {
        let host = build::uri_host(ip);
        let port = self.host.port(route.protocol);
        match route.protocol {
            Protocol::Udp => format!("sip:homeline@{host}:{port}"),
            Protocol::Tcp => format!("sip:homeline@{host}:{port};transport=tcp"),
            Protocol::Tls => format!("sip:homeline@{host}:{port};transport=tls"),
        }
    }

    /// Our Contact URI towards `route`.
    fn contact(&mut self, route: Route) -> String {
        let ip = self.host.local_ip_for(route.dest.ip());
        self.contact_at(route, ip)
    }
}

impl Calls {
    /// An empty table routing with `directory` and `config`.
    pub fn new(directory: Directory, config: Config) -> Calls {
        let directory = directory::with_edge(directory, config.trunk_edge);
        Calls {
            calls: HashMap::new(),
            next_id: 0,
            by_invite: HashMap::new(),
            dialogs: dialogs::Registry::default(),
            guard: TollGuard::default(),
            joined: HashMap::new(),
            directory,
            config,
            features: HashMap::new(),
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Timestamp, host: &mut dyn Host) -> Vec<Action> {
        let mut cx = Cx::new(now, host);
        match event {
            Event::Invite {
                request,
                caller,
                tx,
                route,
            } => self.on_invite(request, caller, tx, route, &mut cx),
            Event::Cancel {
                request,
                tx,
                invite_exists,
            } => {
                let r = self.on_cancel(&request, &tx, invite_exists, &mut cx);
                cx.respond(&tx, r);
            }
            Event::InDialog { request, tx } => {
                let r = self.on_in_dialog(&request, &mut cx);
                // A 2xx to a re-INVITE is resent until its ACK.
                self.answered_in_dialog(&request, &tx, &r, &mut cx);
                cx.respond(&tx, r);
            }
            Event::Ack(request) => self.on_ack(&request, &mut cx),
            Event::Response { owner, response } => match owner {
                Owner::Fork(call, n) => self.on_fork_response(call, n, response, &mut cx),
                Owner::TransferFork(call, n) => {
                    self.on_transfer_response(call, n, response, &mut cx)
                }
                Owner::Nobody => {}
                Owner::Reinvite(call, side) => {
                    self.on_reinvite_response(call, side, response, &mut cx)
                }
            },
            Event::Timer(call, timer) => self.on_timer(call, timer, &mut cx),
            Event::Media(call, event) => self.on_media_event(call, event, &mut cx),
            Event::Resolved(call, dest) => self.on_resolved(call, dest, &mut cx),
        }
        cx.out
    }

    /// Whether an in-dialog request (or ACK) belongs to one of our calls.
    pub fn owns(&self, req: &Request) -> bool {
        self.dialogs.find(req).is_some()
    }

    /// The routing directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Changes the public address written in SDP and Contact towards
    /// Twilio (the router's address was found to have changed): calls set
    /// up from now on use it; calls in progress keep theirs.
    pub fn set_public_ip(&mut self, ip: Option<IpAddr>) {
        self.config.public_ip = ip;
    }

    /// Replaces the routing directory (phones, numbers, the Twilio trunk).
    pub fn set_directory(&mut self, directory: Directory) {
        self.directory = directory::with_edge(directory, self.config.trunk_edge);
    }

    /// The calls in progress, for the API (without relay counters, which
    /// the endpoint adds).
    pub fn list(&self) -> Vec<CallInfo> {
        let mut v: Vec<CallInfo> = self.calls.values().map(call::Call::info).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Whether no call is live.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Each live call's [`CallMark`], for the live-updates channel.
    pub fn marks(&self) -> impl Iterator<Item = (u64, CallMark)> + '_ {
        self.calls.iter().map(|(id, call)| (id.0, call.mark()))
    }

    /// Hangs a call up: BYE to answered legs, CANCEL and 487 while ringing.
    /// False if there is no such call.
    pub fn hang_up(
        &mut self,
        id: CallId,
        now: Timestamp,
        host: &mut dyn Host,
    ) -> (bool, Vec<Action>) {
        let mut cx = Cx::new(now, host);
        let done = self.api_hang_up(id, &mut cx);
        (done, cx.out)
    }

    /// Puts both parties of an answered call on hold (each hears music) or
    /// takes them off; false if there is no such answered call.
    pub fn hold(
        &mut self,
        id: CallId,
        on: bool,
        now: Timestamp,
        host: &mut dyn Host,
    ) -> (bool, Vec<Action>) {
        let mut cx = Cx::new(now, host);
        let done = self.api_hold(id, on, &mut cx);
        (done, cx.out)
    }

    /// Transfers a call to another phone (blind); `side` is the party
    /// replaced (default: the household's phone in the call).
    pub fn transfer(
        &mut self,
        id: CallId,
        extension: &str,
        side: Option<Party>,
        now: Timestamp,
        host: &mut dyn Host,
    ) -> (Result<(), TransferRefused>, Vec<Action>) {
        let mut cx = Cx::new(now, host);
        let outcome = self.api_transfer(id, extension, side.map(Into::into), &mut cx);
        (outcome, cx.out)
    }

    fn outgoing(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.kind == call::Kind::Outbound || c.transferred_out)
            .count()
    }

    /// Removes a call, stops its relay and timers, and writes its record.
    fn end_call(&mut self, id: CallId, ending: cdr::Ending, cx: &mut Cx<'_>) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // A transfer target still ringing stops ringing.
        if let Some(up) = call.up_mut() {
            if let transfer::TransferState::Ringing(t) = &mut up.transfer {
                answer::send_cancels(forking::stop(t.forks.iter_mut()), cx);
            }
        }
        self.joined.retain(|_, into| *into != id);
        self.by_invite.remove(&call.a.tx);
        for d in call.dialog_ids() {
            self.dialogs.remove(&d);
        }
        cx.out.push(Action::Disarm(id));
        cx.out.push(Action::CloseMedia(id));
        tracing::info!(call = %id, phase = call.phase.name(), cause = %ending.cause, "call ended");
        cx.out.push(Action::Record(Box::new(cdr::assemble(
            &call, cx.now, ending,
        ))));
    }
}
