//! One call: its fixed facts, its caller's leg, and its [`Phase`].
//!
//! The phase is a type per stage holding only what is valid there: forks
//! exist while ringing, the answered callee's leg once answered, the 2xx
//! being retransmitted only until the caller's ACK. "Answered" is being in
//! [`Phase::AwaitingAck`] or [`Phase::Up`], never a flag.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::media::relay::Side;
use crate::media::sdp::{Codec, Description, Origin};
use crate::sip::dialog::{Dialog, DialogId};
use crate::sip::message::{Request, Response};
use crate::sip::transaction::ServerKey;

use super::forking::Fork;
use super::hold::Hold;
use super::in_dialog::LegState;
use super::invite::OfferMedia;
use super::prack::ReliableUas;
use super::transfer::TransferState;
use super::{CallId, DeviceId, Route};

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Phone to phone.
    Internal,
    /// From Twilio to the household's phones.
    Inbound,
    /// From a phone out through Twilio.
    Outbound,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Inbound => "inbound",
            Kind::Outbound => "outbound",
        }
    }

    /// Whether the party on `side` is Twilio (it sees our public address).
    pub(super) fn twilio_on(self, side: Side) -> bool {
        matches!(
            (side, self),
            (Side::A, Kind::Inbound) | (Side::B, Kind::Outbound)
        )
    }
}

/// The caller's leg: we are its UAS.
pub(super) struct ALeg {
    /// The INVITE that started the call.
    pub(super) invite: Request,
    /// Its server transaction.
    pub(super) tx: ServerKey,
    /// Where A is (after an attended transfer: the party that replaced it).
    pub(super) route: Route,
    /// Our To tag towards A.
    pub(super) tag: String,
    /// A's SDP: the offer of its INVITE, or (a delayed offer, RFC 3261
    /// §13.2.1) the answer its ACK carries to the offer in our 2xx; `None`
    /// until then.
    pub(super) offer: Option<Description>,
    /// Our SDP origin towards A (its version counts our answers).
    pub(super) origin: Origin,
    /// A's dialog, once we answered (none if A's INVITE could not form one).
    /// Early (from a reliable provisional) when A required 100rel.
    pub(super) dialog: Option<Dialog>,
    // early media, 100rel:
    /// Reliable provisional responses towards A (RFC 3262): `Some` when
    /// A's INVITE required them.
    pub(super) reliable: Option<ReliableUas>,
    /// The SDP answer A got in a 183 (early media); the 2xx repeats it.
    pub(super) early_answer: Option<bytes::Bytes>,
}

/// The answered callee's leg: we are its UAC.
pub(super) struct BLeg {
    pub(super) dialog: Dialog,
    pub(super) route: Route,
    pub(super) origin: Origin,
    /// Our ACK for its 2xx, sent again if the 2xx is.
    pub(super) ack: Request,
    pub(super) device_id: Option<DeviceId>,
}

/// An outgoing call waiting for the trunk's address.
pub(super) struct Resolving {
    /// The E.164 number called.
    pub(super) number: String,
    /// What its INVITE offers.
    pub(super) media: OfferMedia,
}

/// The forks ring.
pub(super) struct Ringing {
    pub(super) forks: Vec<Fork>,
    /// A 180 went to the caller (only one is sent).
    pub(super) sent_ringing: bool,
    // early media:
    /// The fork whose early media the caller hears (see
    /// [`super::early_media`]).
    pub(super) early_media: Option<usize>,
    /// Ringing in steps: the steps still to come (see [`super::sequence`]).
    pub(super) sequence: Option<super::sequence::Sequence>,
}

/// An answered call.
pub(super) struct Up {
    pub(super) b: BLeg,
    /// Every fork; the losers are wound down (CANCEL after their first
    /// provisional, a late 2xx ACKed and hung up).
    pub(super) forks: Vec<Fork>,
    pub(super) hold: Hold,
    pub(super) transfer: TransferState,
    /// A REFER is being carried out: its sender gets NOTIFYs (a transfer
    /// started from the API has nobody to notify).
    pub(super) notifies: bool,
}

/// Answered, our 2xx sent, the caller's ACK not in yet.
pub(super) struct AwaitingAck {
    pub(super) up: Up,
    /// The 2xx, for retransmission.
    pub(super) ok: Response,
    /// The next retransmission interval (T1 doubling to T2).
    pub(super) every: Duration,
}

/// Where a call stands.
pub(super) enum Phase {
    /// Outgoing: waiting for the trunk's host name to resolve.
    Resolving(Resolving),
    /// The forks are out.
    Ringing(Ringing),
    /// Answered; the 2xx to A is retransmitted until A's ACK.
    AwaitingAck(AwaitingAck),
    /// Answered and confirmed.
    Up(Up),
    /// Being taken apart (only ever seen between two statements).
    Ending,
}

impl Phase {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Phase::Resolving(_) => "resolving",
            Phase::Ringing(_) => "ringing",
            Phase::AwaitingAck(_) => "awaiting-ack",
            Phase::Up(_) => "up",
            Phase::Ending => "ending",
        }
    }
}

/// A call.
pub(super) struct Call {
    pub(super) id: CallId,
    pub(super) kind: Kind,
    /// Caller (number or extension).
    pub(super) from: String,
    /// Callee (number or extension).
    pub(super) to: String,
    pub(super) did_id: Option<i64>,
    /// The household's phone in the call (the caller's, or the answering one).
    pub(super) device_id: Option<DeviceId>,
    pub(super) started_at: Timestamp,
    pub(super) answered_at: Option<Timestamp>,
    pub(super) a: ALeg,
    /// The relay's ports: facing A, facing B.
    pub(super) ports: [u16; 2],
    /// The call's codec (no transcoding: A's first, then B's choice).
    pub(super) codec: Codec,
    pub(super) telephone_event: Option<u8>,
    pub(super) phase: Phase,
    /// DTMF: the telephone-event payload type each leg negotiated (A, B);
    /// a leg without one hears DTMF as SIP INFO.
    pub(super) dtmf: [Option<u8>; 2],
    /// Call pickup: the picking-up phone's 2xx, resent until its ACK.
    pub(super) picked: Option<super::pickup::Unconfirmed>,
    /// Transfer to an external number: one party is now a number rung
    /// through Twilio (the toll-fraud guard counts the call as outgoing).
    pub(super) transferred_out: bool,
    /// Each leg's in-dialog state (session timer, re-INVITEs), by side.
    pub(super) legs: [LegState; 2],
    /// The routing rule that decided the call (`X-Homeline-Rule` of a call
    /// from Twilio), for its record.
    pub(super) rule: Option<String>,
}

impl Call {
    /// The answered state, in either answered phase.
    pub(super) fn up(&self) -> Option<&Up> {
        match &self.phase {
            Phase::AwaitingAck(w) => Some(&w.up),
            Phase::Up(up) => Some(up),
            _ => None,
        }
    }

    /// The answered state, mutably.
    pub(super) fn up_mut(&mut self) -> Option<&mut Up> {
        match &mut self.phase {
            Phase::AwaitingAck(w) => Some(&mut w.up),
            Phase::Up(up) => Some(up),
            _ => None,
        }
    }

    pub(super) fn answered(&self) -> bool {
        self.up().is_some()
    }

    /// The forks, in whichever phase has them.
    pub(super) fn forks_mut(&mut self) -> Option<&mut Vec<Fork>> {
        match &mut self.phase {
            Phase::Ringing(r) => Some(&mut r.forks),
            Phase::AwaitingAck(w) => Some(&mut w.up.forks),
            Phase::Up(up) => Some(&mut up.forks),
            _ => None,
        }
    }

    /// Takes the phase out to move it forward.
    pub(super) fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Ending)
    }

    pub(super) fn on_hold(&self) -> bool {
        self.up().is_some_and(|u| u.hold.any())
    }

    /// Where one leg's requests go.
    pub(super) fn route(&self, side: Side) -> Option<Route> {
        match side {
            Side::A => Some(self.a.route),
            Side::B => self.up().map(|u| u.b.route),
        }
    }

    /// One leg's dialog.
    pub(super) fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => self.a.dialog.as_mut(),
            Side::B => self.up_mut().map(|u| &mut u.b.dialog),
        }
    }

    /// Every dialog the registry knows this call by.
    pub(super) fn dialog_ids(&self) -> Vec<DialogId> {
        let mut v: Vec<DialogId> = self.a.dialog.iter().map(|d| d.id.clone()).collect();
        if let Some(up) = self.up() {
            v.push(up.b.dialog.id.clone());
        }
        v
    }

    /// What the live-updates channel shows of the call.
    pub(super) fn mark(&self) -> CallMark {
        let state = match (self.answered(), self.on_hold()) {
            (false, _) => "ringing",
            (true, true) => "held",
            (true, false) => "answered",
        };
        let forks: Vec<i64> = match &self.phase {
            Phase::Ringing(r) => r
                .forks
                .iter()
                .filter_map(|f| f.device_id)
                .map(|d| d.0)
                .collect(),
            Phase::AwaitingAck(w) => {
                w.up.forks
                    .iter()
                    .filter_map(|f| f.device_id)
                    .map(|d| d.0)
                    .collect()
            }
            Phase::Up(u) => u
                .forks
                .iter()
                .filter_map(|f| f.device_id)
                .map(|d| d.0)
                .collect(),
            Phase::Resolving(_) | Phase::Ending => Vec::new(),
        };
        let mut device_ids: Vec<i64> = self
            .device_id
            .map(|d| d.0)
            .into_iter()
            .chain(forks)
            .chain(self.up().and_then(|u| u.b.device_id).map(|d| d.0))
            .collect();
        device_ids.sort_unstable();
        device_ids.dedup();
        CallMark {
            state,
            did_id: self.did_id,
            device_ids,
        }
    }

    pub(super) fn info(&self) -> CallInfo {
        CallInfo {
            id: self.id.0,
            direction: self.kind.name(),
            from: self.from.clone(),
            to: self.to.clone(),
            state: if self.answered() {
                "answered"
            } else {
                "ringing"
            },
            started_at: self.started_at.to_string(),
            answered_at: self.answered_at.map(|t| t.to_string()),
            on_hold: self.on_hold(),
            device_id: self.device_id.map(|d| d.0),
            rtp_received: [0; 2],
            rtp_sent: [0; 2],
        }
    }
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

/// What the live-updates channel tells about a call: its state and who may
/// see it. The endpoint compares the marks after every turn of its loop, so
/// a state change is announced from one place whichever event made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMark {
    /// `ringing`, `answered` or `held`.
    pub state: &'static str,
    /// The household number involved.
    pub did_id: Option<i64>,
    /// The calling, ringing or answering phones.
    pub device_ids: Vec<i64>,
}
