//! Dialogs (RFC 3261 §12): the state two user agents share between an
//! INVITE (or SUBSCRIBE/REFER) and its end.
//!
//! A B2BUA holds one dialog per leg: the UAS side towards the caller
//! ([`Dialog::uas`]) and the UAC side towards each callee ([`Dialog::uac`]).
//! A dialog builds its own in-dialog requests (Request-URI, Route set,
//! CSeq, tags) and checks incoming ones (CSeq order, target refresh).
//! Like the transaction layer it does no I/O.

use std::collections::HashMap;

use bytes::Bytes;

use super::message::{HeaderName, Headers, Method, NameAddr, Request, Response, Uri};

/// Identifies a dialog from our side: Call-ID, our tag, the peer's tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (From tag as UAC, To tag as UAS).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog an incoming in-dialog request belongs to (we are
    /// its recipient, so our tag is in To).
    pub fn of_incoming_request(req: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: req.headers.get(&HeaderName::CallId)?.to_string(),
            local_tag: tag(req.headers.get(&HeaderName::To)?)?,
            remote_tag: tag(req.headers.get(&HeaderName::From)?)?,
        })
    }
}

fn tag(value: &str) -> Option<String> {
    NameAddr::parse(value)?
        .params
        .get("tag")
        .flatten()
        .map(str::to_string)
}

/// Early (after a provisional response with a tag) or confirmed (after 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Established by a 1xx with a To tag.
    Early,
    /// Established by a 2xx.
    Confirmed,
}

/// Why a message does not fit a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header needed to build the dialog is missing or malformed.
    #[error("cannot build a dialog: {0}")]
    Malformed(&'static str),
    /// An in-dialog request with a CSeq not above the last one (§12.2.2: 500).
    #[error("CSeq {got} is not above {last}")]
    CSeqOutOfOrder {
        /// Received.
        got: u32,
        /// Last seen.
        last: u32,
    },
}

/// One dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    /// Its id.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our last CSeq number.
    pub local_seq: u32,
    /// The peer's last CSeq number, once it sent one.
    pub remote_seq: Option<u32>,
    /// Our URI (From of our requests), with our tag.
    pub local: String,
    /// The peer's URI (To of our requests), with its tag.
    pub remote: String,
    /// Where in-dialog requests go: the peer's Contact.
    pub remote_target: String,
    /// Route set, in the order our requests must carry it.
    pub route_set: Vec<String>,
}

fn contact_uri(h: &Headers) -> Option<String> {
    let c = h.values(&HeaderName::Contact).first().copied()?;
    Some(NameAddr::parse(c)?.uri.to_string())
}

fn cseq(h: &Headers) -> Option<u32> {
    h.get(&HeaderName::CSeq)
        .and_then(super::message::CSeq::parse)
        .map(|c| c.seq)
}

impl Dialog {
    /// The UAS side (§12.1.1): built from the request we received and the
    /// response (with our To tag) we sent to it.
    pub fn uas(req: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let call_id = req
            .headers
            .get(&HeaderName::CallId)
            .ok_or(DialogError::Malformed("Call-ID"))?
            .to_string();
        let remote = req
            .headers
            .get(&HeaderName::From)
            .ok_or(DialogError::Malformed("From"))?
            .to_string();
        let local = resp
            .headers
            .get(&HeaderName::To)
            .ok_or(DialogError::Malformed("To"))?
            .to_string();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: tag(&local).ok_or(DialogError::Malformed("To tag"))?,
                remote_tag: tag(&remote).unwrap_or_default(),
            },
            state: if resp.status >= 200 {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_seq: 0,
            remote_seq: Some(cseq(&req.headers).ok_or(DialogError::Malformed("CSeq"))?),
            local,
            remote,
            remote_target: contact_uri(&req.headers).ok_or(DialogError::Malformed("Contact"))?,
            route_set: req
                .headers
                .values(&HeaderName::RecordRoute)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })
    }

    /// The UAC side (§12.1.2): built from the request we sent and a response
    /// (1xx with a To tag, or 2xx) we received. The route set is the
    /// Record-Route of the response, reversed.
    pub fn uac(req: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let call_id = req
            .headers
            .get(&HeaderName::CallId)
            .ok_or(DialogError::Malformed("Call-ID"))?
            .to_string();
        let local = req
            .headers
            .get(&HeaderName::From)
            .ok_or(DialogError::Malformed("From"))?
            .to_string();
        let remote = resp
            .headers
            .get(&HeaderName::To)
            .ok_or(DialogError::Malformed("To"))?
            .to_string();
        let mut route_set: Vec<String> = resp
            .headers
            .values(&HeaderName::RecordRoute)
            .iter()
            .map(|s| s.to_string())
            .collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: tag(&local).ok_or(DialogError::Malformed("From tag"))?,
                remote_tag: tag(&remote).ok_or(DialogError::Malformed("To tag"))?,
            },
            state: if resp.status >= 200 {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_seq: cseq(&req.headers).ok_or(DialogError::Malformed("CSeq"))?,
            remote_seq: None,
            local,
            remote,
            remote_target: contact_uri(&resp.headers).ok_or(DialogError::Malformed("Contact"))?,
            route_set,
        })
    }

    /// Builds an in-dialog request (§12.2.1.1). `via` is the top Via value
    /// (with a fresh branch) and `contact` our Contact. ACK and CANCEL reuse
    /// `cseq_for_ack`; any other method takes the next local CSeq.
    pub fn request(
        &mut self,
        method: Method,
        via: &str,
        contact: &str,
        cseq_for_ack: Option<u32>,
    ) -> Request {
        let seq = match (&method, cseq_for_ack) {
            (Method::Ack | Method::Cancel, Some(n)) => n,
            _ => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        let mut headers = Headers::default();
        headers.push(HeaderName::Via, via);
        headers.push(HeaderName::MaxForwards, "70");
        // Loose routing (first route has ;lr): R-URI = remote target, Route =
        // the route set. Strict: R-URI = first route, the target goes last.
        let strict = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r))
            .is_some_and(|r| r.uri.params.get("lr").is_none());
        let uri = if strict {
            let first = NameAddr::parse(&self.route_set[0])
                .map(|n| n.uri.to_string())
                .unwrap_or_default();
            for r in &self.route_set[1..] {
                headers.push(HeaderName::Route, r.clone());
            }
            headers.push(HeaderName::Route, format!("<{}>", self.remote_target));
            first
        } else {
            for r in &self.route_set {
                headers.push(HeaderName::Route, r.clone());
            }
            self.remote_target.clone()
        };
        headers.push(HeaderName::From, self.local.clone());
        headers.push(HeaderName::To, self.remote.clone());
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        headers.push(HeaderName::Contact, format!("<{contact}>"));
        Request {
            method,
            uri,
            headers,
            body: Bytes::new(),
        }
    }

    /// Checks an incoming in-dialog request (§12.2.2): its CSeq must be above
    /// the last; a target refresh (re-INVITE, UPDATE) with a Contact moves
    /// the remote target.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let got = cseq(&req.headers).ok_or(DialogError::Malformed("CSeq"))?;
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(last) = self.remote_seq {
                if got <= last {
                    return Err(DialogError::CSeqOutOfOrder { got, last });
                }
            }
            self.remote_seq = Some(got);
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Some(target) = contact_uri(&req.headers) {
                self.remote_target = target;
            }
        }
        Ok(())
    }

    /// Applies a response to a request we sent in this dialog: a 2xx
    /// confirms an early dialog; a 2xx to a target refresh moves the target.
    pub fn on_response(&mut self, method: &Method, resp: &Response) {
        if (200..300).contains(&resp.status) {
            self.state = DialogState::Confirmed;
            if matches!(method, Method::Invite | Method::Update) {
                if let Some(target) = contact_uri(&resp.headers) {
                    self.remote_target = target;
                }
            }
        }
    }

    /// The remote target as a URI.
    pub fn target_uri(&self) -> Option<Uri> {
        Uri::parse(&self.remote_target)
    }
}

/// The answer to an in-dialog request for a dialog this UA does not have
/// (RFC 3261 §12.2.2): 481 Call/Transaction Does Not Exist. The one place
/// that decides it, so every method gets the same response.
pub fn no_such_dialog(req: &Request, tag: &str) -> Response {
    super::message::build::reply(req, 481, tag)
}

/// The dialogs alive in the endpoint, found by id.
#[derive(Debug, Default)]
pub struct DialogTable {
    dialogs: HashMap<DialogId, Dialog>,
}

impl DialogTable {
    /// Adds (or replaces) a dialog.
    pub fn insert(&mut self, d: Dialog) {
        self.dialogs.insert(d.id.clone(), d);
    }

    /// The dialog of an incoming in-dialog request; `None` means 481.
    pub fn for_request(&mut self, req: &Request) -> Option<&mut Dialog> {
        self.dialogs.get_mut(&DialogId::of_incoming_request(req)?)
    }

    /// Removes a dialog (BYE, or the call's end).
    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.dialogs.remove(id)
    }

    /// How many are alive.
    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse_datagram, Message};

    fn parse_req(s: &str) -> Request {
        match parse_datagram(s.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn invite() -> Request {
        parse_req(
            "INVITE sip:bob@pi SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@pi>;tag=a1\r\nTo: <sip:bob@pi>\r\nCall-ID: c1\r\nCSeq: 10 INVITE\r\n\
             Contact: <sip:alice@10.0.0.2:5062>\r\nRecord-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\nContent-Length: 0\r\n\r\n",
        )
    }

    fn ok(req: &Request) -> Response {
        let mut r = Response::to(req, 200, "OK", "b1");
        r.headers
            .push(HeaderName::Contact, "<sip:bob@10.0.0.3:5070>");
        for rr in req.headers.lines(&HeaderName::RecordRoute) {
            r.headers.push(HeaderName::RecordRoute, rr.to_string());
        }
        r
    }

    #[test]
    fn rfc3261_12_1_1_uas_dialog_from_the_request() {
        let req = invite();
        let d = Dialog::uas(&req, &ok(&req)).expect("dialog");
        assert_eq!(
            d.id,
            DialogId {
                call_id: "c1".into(),
                local_tag: "b1".into(),
                remote_tag: "a1".into()
            }
        );
        assert_eq!(
            (d.remote_seq, d.remote_target.as_str()),
            (Some(10), "sip:alice@10.0.0.2:5062")
        );
        assert_eq!(
            d.route_set,
            ["<sip:p1.example;lr>", "<sip:p2.example;lr>"],
            "UAS keeps Record-Route order"
        );
        assert_eq!(d.state, DialogState::Confirmed);
    }

    #[test]
    fn rfc3261_12_1_2_uac_dialog_reverses_the_route_set() {
        let req = invite();
        let mut d = Dialog::uac(&req, &ok(&req)).expect("dialog");
        assert_eq!(
            (d.local_seq, d.remote_target.as_str()),
            (10, "sip:bob@10.0.0.3:5070")
        );
        assert_eq!(d.route_set, ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP pi;branch=z9hG4bK2",
            "sip:homeline@pi",
            None,
        );
        assert_eq!(
            bye.uri, "sip:bob@10.0.0.3:5070",
            "loose routing: R-URI is the remote target"
        );
        assert_eq!(
            bye.headers.values(&HeaderName::Route),
            ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
        );
        assert_eq!(bye.headers.get(&HeaderName::CSeq), Some("11 BYE"));
        assert!(bye
            .headers
            .get(&HeaderName::To)
            .is_some_and(|t| t.contains("tag=b1")));
        let ack = d.request(
            Method::Ack,
            "SIP/2.0/UDP pi;branch=z9hG4bK3",
            "sip:homeline@pi",
            Some(10),
        );
        assert_eq!(
            ack.headers.get(&HeaderName::CSeq),
            Some("10 ACK"),
            "ACK reuses the INVITE's CSeq"
        );
        assert_eq!(d.local_seq, 11);
    }

    #[test]
    fn rfc3261_12_2_1_1_strict_route_puts_the_target_last() {
        let req = invite();
        let mut resp = ok(&req);
        resp.headers
            .set(HeaderName::RecordRoute, "<sip:old-proxy.example>");
        let mut d = Dialog::uac(&req, &resp).expect("dialog");
        let bye = d.request(
            Method::Bye,
            "SIP/2.0/UDP pi;branch=z9hG4bK2",
            "sip:h@pi",
            None,
        );
        assert_eq!(bye.uri, "sip:old-proxy.example");
        assert_eq!(
            bye.headers.values(&HeaderName::Route),
            ["<sip:bob@10.0.0.3:5070>"]
        );
    }

    #[test]
    fn rfc3261_12_2_2_cseq_order_and_target_refresh() {
        let req = invite();
        let mut d = Dialog::uas(&req, &ok(&req)).expect("dialog");
        let mut table = DialogTable::default();
        table.insert(d.clone());
        let mut reinvite = req.clone();
        reinvite.headers.set(HeaderName::To, "<sip:bob@pi>;tag=b1");
        reinvite.headers.set(HeaderName::CSeq, "11 INVITE");
        reinvite
            .headers
            .set(HeaderName::Contact, "<sip:alice@192.0.2.50:6000>");
        assert!(
            table.for_request(&reinvite).is_some(),
            "found by Call-ID and both tags"
        );
        d.on_request(&reinvite).expect("in order");
        assert_eq!(
            d.remote_target, "sip:alice@192.0.2.50:6000",
            "target refreshed"
        );
        assert_eq!(
            d.on_request(&reinvite),
            Err(DialogError::CSeqOutOfOrder { got: 11, last: 11 })
        );
        let mut stranger = reinvite.clone();
        stranger
            .headers
            .set(HeaderName::To, "<sip:bob@pi>;tag=nope");
        assert!(
            table.for_request(&stranger).is_none(),
            "481 for an unknown dialog"
        );
        let r = no_such_dialog(&stranger, "ours");
        assert_eq!(r.status, 481);
        assert_eq!(r.reason, "Call/Transaction Does Not Exist");
        assert!(r
            .headers
            .get(&HeaderName::To)
            .is_some_and(|to| to.contains("tag=nope")));
        let id = d.id.clone();
        assert!(table.remove(&id).is_some() && table.is_empty());
    }

    #[test]
    fn early_dialog_is_confirmed_by_2xx_and_needs_tags() {
        let req = invite();
        let mut ringing = Response::to(&req, 180, "Ringing", "b1");
        ringing
            .headers
            .push(HeaderName::Contact, "<sip:bob@10.0.0.3>");
        let mut d = Dialog::uac(&req, &ringing).expect("early");
        assert_eq!(d.state, DialogState::Early);
        d.on_response(&Method::Invite, &ok(&req));
        assert_eq!(
            (d.state, d.remote_target.as_str()),
            (DialogState::Confirmed, "sip:bob@10.0.0.3:5070")
        );
        let untagged = Response::to(&req, 180, "Ringing", "");
        assert_eq!(
            Dialog::uac(&req, &untagged),
            Err(DialogError::Malformed("To tag"))
        );
    }
}
