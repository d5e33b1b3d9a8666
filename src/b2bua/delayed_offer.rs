//! Delayed offer (RFC 3261 §13.2.1, RFC 3264): an INVITE without SDP, as
//! some desk phones and Twilio in some flows send.
//!
//! Homeline anchors the media, so it can make its own offer: the callee
//! gets Homeline's usual INVITE offering both G.711 codecs and
//! `telephone-event`; the callee's answer decides the call's codec, and
//! the caller's 2xx carries Homeline's *offer* of that codec (nothing else
//! can be relayed without transcoding). The caller's ACK must carry the
//! answer: without one, or with one Homeline cannot use (the stream
//! rejected, another codec, not SDP), both legs get a BYE whose `Reason`
//! says why, and the record files the call as failed with that reason.

use std::net::SocketAddr;

use crate::media::relay::{Control, Side};
use crate::media::sdp::{Codec, Description, SdpError};
use crate::sip::message::{build, HeaderName, Method, Request};
use crate::store::cdrs::Disposition;

use super::cdr::Ending;
use super::{CallId, Calls, Cx};

/// The payload type Homeline offers `telephone-event` on (RFC 4733).
const TELEPHONE_EVENT: u8 = 101;

/// What the caller's INVITE offers: `None` for a delayed offer, or the
/// status and reason to refuse it with.
pub(super) fn read_offer(req: &Request) -> Result<Option<Description>, (u16, String)> {
    if req.body.is_empty() {
        return Ok(None);
    }
    let offer = match Description::parse(&req.body) {
        Ok(d) => d,
        Err(SdpError::Malformed(why)) => return Err((400, why.to_string())),
        Err(e) => return Err((488, e.to_string())),
    };
    if offer.audio.port == 0 {
        return Err((488, "the audio stream is disabled".into()));
    }
    Ok(Some(offer))
}

/// What Homeline offers the callee of a delayed-offer call: codecs,
/// `telephone-event`, ptime.
pub(super) fn our_codecs() -> (Vec<Codec>, Option<u8>, Option<u32>) {
    (vec![Codec::Pcmu, Codec::Pcma], Some(TELEPHONE_EVENT), None)
}

/// Why an ACK's body is not a usable answer to our offer of `codec`;
/// `who` sent it ("caller").
fn read_answer(body: &[u8], codec: Codec, who: &str) -> Result<Description, String> {
    if body.is_empty() {
        return Err(format!(
            "the {who}'s ACK carried no SDP answer to Homeline's offer"
        ));
    }
    let d = Description::parse(body).map_err(|e| format!("the {who}'s SDP answer: {e}"))?;
    if d.audio.port == 0 {
        return Err(format!("the {who}'s SDP answer rejected the audio stream"));
    }
    if !d.audio.codecs.contains(&codec) {
        return Err(format!(
            "the {who}'s SDP answer does not accept the offered codec"
        ));
    }
    Ok(d)
}

impl Calls {
    /// The caller's ACK of a 2xx that carried our offer: its answer points
    /// the relay at the caller, or the call ends (BYE to both, a record).
    pub(super) fn on_ack_answer(&mut self, id: CallId, ack: &Request, cx: &mut Cx<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.a.offer.is_some() {
            return; // the offer was the caller's: the answer went in our 2xx
        }
        self.on_delayed_answer(id, Side::A, ack, cx);
    }

    /// The ACK (from `side`: the caller, or a picking-up phone) of a 2xx
    /// that carried our offer: its answer points the relay at that side,
    /// or the call ends (BYE to both, a record).
    pub(super) fn on_delayed_answer(
        &mut self,
        id: CallId,
        side: Side,
        ack: &Request,
        cx: &mut Cx<'_>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let who = match side {
            Side::A => "caller",
            Side::B => "picking-up phone",
        };
        match read_answer(&ack.body, call.codec, who) {
            Ok(answer) => {
                cx.media(
                    id,
                    Control::Peer {
                        side,
                        rtp: SocketAddr::new(answer.audio.addr, answer.audio.port),
                        direction: answer.audio.direction,
                        codec: call.codec,
                    },
                );
                // DTMF: that side's own telephone-events, from its answer.
                call.dtmf[side.index()] = answer.audio.telephone_event;
                super::dtmf::tell_relay(call, cx);
                if side == Side::A {
                    call.a.offer = Some(answer);
                }
            }
            Err(why) => {
                tracing::info!(call = %id, ?side, %why, "delayed offer: no usable answer in the ACK");
                let reason = build::reason(488, &why);
                for side in [Side::A, Side::B] {
                    let reason = reason.clone();
                    self.request_in_dialog(
                        id,
                        side,
                        Method::Bye,
                        |bye| bye.headers.push(HeaderName::Other("Reason".into()), reason),
                        cx,
                    );
                }
                self.end_call(id, Ending::new(Disposition::Failed, why), cx);
            }
        }
    }
}
