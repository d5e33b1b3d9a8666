//! Transactions (RFC 3261 §17, with RFC 6026's Accepted states).
//!
//! Each of the four machines is sans-IO: it takes an [`Input`] (a message
//! from the wire, a message from the transaction user, a timer) and returns
//! [`Action`]s (send these bytes, arm that timer, tell the TU this). A driver
//! owns sockets and clocks; these types own only the rules, so every
//! transition is testable without either. [`ServerTable`] owns an
//! endpoint's server transactions and [`TimerQueue`] the deadlines of all
//! its timers.

mod client;
mod client_table;
mod fifo;
mod queue;
mod server;
mod shards;
mod table;
mod timers;

pub use client::{ack_for_non_2xx, ClientInvite, ClientNonInvite};
pub use client_table::{client_key, ClientKey, ClientTable};
pub use fifo::FifoTimers;
pub use queue::TimerQueue;
pub use server::{ServerInvite, ServerNonInvite};
pub use table::ServerTable;
pub use timers::{Timer, TimerConfig};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::message::{HeaderName, Message, Method, Request, Response, Via};
use super::transport::Protocol;

/// A server transaction's key plus the transport it arrived on (the same
/// branch over UDP and over TCP is not the same transaction).
pub type ServerKey = (TxKey, Protocol);

impl shards::ShardOf for ServerKey {
    fn shard_of(&self) -> usize {
        match &self.0 {
            // The branch leads the RFC 3261 key and varies most.
            TxKey::Rfc3261 { parts } => {
                shards::fold(parts.split('|').next().unwrap_or(parts).as_bytes())
            }
            // Its tail is the top Via and the method.
            TxKey::Rfc2543 { parts } => shards::fold(parts.as_bytes()),
        }
    }
}

/// The INVITE transaction a CANCEL's key points at (§9.2: same branch).
pub fn invite_key_of_cancel(cancel: &ServerKey) -> ServerKey {
    let (k, p) = cancel;
    let k = match k {
        TxKey::Rfc3261 { parts } => {
            let mut it = parts.splitn(4, '|');
            let (branch, sent_by, _method, call) = (
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next(),
                it.next().unwrap_or(""),
            );
            TxKey::Rfc3261 {
                parts: format!("{branch}|{sent_by}|INVITE|{call}").into(),
            }
        }
        TxKey::Rfc2543 { parts } => TxKey::Rfc2543 {
            parts: parts
                .strip_suffix("CANCEL")
                .map(|s| format!("{s}INVITE").into())
                .unwrap_or_else(|| parts.clone()),
        },
    };
    (k, *p)
}

/// What drives a transaction forward.
#[derive(Debug, Clone)]
pub enum Input {
    /// A request from the wire (server transactions: a retransmission or ACK).
    Request(Request),
    /// A response from the wire (client transactions).
    Response(Response),
    /// The transaction user sends this response (server transactions).
    Respond(Response),
    /// A timer fired.
    Timer(Timer),
    /// The transport failed to deliver.
    TransportError,
}

/// What the transaction wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message to the peer.
    Send(Message),
    /// Send these serialised bytes to the peer: a server transaction's
    /// response, serialised once when the TU hands it over and kept in that
    /// form for the retransmissions (a `Response` kept as a list of header
    /// strings cost ~1 KB and a dozen allocations per live transaction, and
    /// a UDP non-INVITE one lives 32 s: found by benches/register_load.sh).
    Transmit(Bytes),
    /// Start (or restart) a timer.
    Arm(Timer, Duration),
    /// Tell the TU about a response (client transactions).
    Deliver(Response),
    /// Tell the TU about an ACK for a 2xx (RFC 6026: it belongs to the dialog).
    DeliverAck(Request),
    /// The transaction timed out (Timer B/F, or H for a lost ACK).
    Timeout,
    /// The transport failed.
    TransportFailed,
    /// The transaction is over; forget it.
    Terminated,
}

/// Every state of every machine, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE: request sent, nothing heard.
    Calling,
    /// Non-INVITE: request sent (client) or received (server), no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final non-2xx response was received/sent; absorbing retransmissions.
    Completed,
    /// RFC 6026: a 2xx to INVITE was received/sent; the dialog handles ACK.
    Accepted,
    /// Server INVITE: the ACK arrived.
    Confirmed,
    /// Over.
    Terminated,
}

/// How a transaction is found again: RFC 3261 §17.2.3 (branch with the magic
/// cookie, sent-by, method; ACK matches INVITE) or, for RFC 2543 peers, the
/// request's identifying headers.
///
/// The RFC 3261 key also carries the Call-ID and CSeq number: a genuine
/// retransmission always repeats them, so this changes nothing for correct
/// clients, while a client that reuses a branch for a new request (the RFC
/// 4475 messages do) gets that request processed instead of absorbed.
///
/// The RFC 3261 key is one shared string: a key is stored in the
/// transaction table and the timer queues and hashed several times per
/// request; four strings made that four allocations per copy, and one
/// `String` still one per copy (found by benches/register_load.sh), while a
/// copy of an `Arc<str>` allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// RFC 3261 key: `branch|sent-by|method|Call-ID|CSeq number`, with the
    /// Via branch, the Via sent-by (`host:port`), the method (ACK mapped to
    /// INVITE per §17.2.3) and the Call-ID and CSeq number, which every
    /// retransmission repeats. Only the Call-ID can hold a `|` (a branch is
    /// a token, sent-by a host and port, a method a token), and it comes
    /// after the others, so the parts cannot run into each other.
    Rfc3261 {
        /// The parts, `|`-separated.
        parts: Arc<str>,
    },
    /// RFC 2543 fallback.
    Rfc2543 {
        /// Request-URI, Call-ID, From tag, CSeq number, top Via, method.
        parts: Arc<str>,
    },
}

impl TxKey {
    /// The server-side key of a request; `None` without a parseable Via.
    pub fn server(req: &Request) -> Option<TxKey> {
        Self::server_and_top_via(req).map(|(key, _)| key)
    }

    /// [`TxKey::server`] with the top Via it parsed, which also says where
    /// the responses go (one parse for both).
    pub fn server_and_top_via(req: &Request) -> Option<(TxKey, Via)> {
        let via = Via::parse(req.headers.values_iter(&HeaderName::Via).next()?)?;
        let key = Self::server_with_via(req, &via);
        Some((key, via))
    }

    fn server_with_via(req: &Request, via: &Via) -> TxKey {
        let method = match req.method {
            Method::Ack => "INVITE",
            ref m => m.as_str(),
        };
        match via.branch() {
            Some(b) if b.starts_with("z9hG4bK") => {
                use std::fmt::Write;
                let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("");
                let seq = req
                    .headers
                    .get(&HeaderName::CSeq)
                    .and_then(super::message::CSeq::parse)
                    .map(|c| c.seq)
                    .unwrap_or(0);
                // One buffer, written in place (format! and the lower-cased
                // host copy were three allocations per request).
                let mut parts = String::with_capacity(
                    b.len() + via.host.len() + method.len() + call_id.len() + 20,
                );
                parts.push_str(b);
                parts.push('|');
                parts.extend(via.host.chars().map(|c| c.to_ascii_lowercase()));
                let _ = write!(
                    parts,
                    ":{}|{method}|{call_id}|{seq}",
                    via.port.unwrap_or(5060)
                );
                TxKey::Rfc3261 {
                    parts: parts.into(),
                }
            }
            _ => {
                let h = &req.headers;
                let from_tag = h
                    .get(&HeaderName::From)
                    .and_then(super::message::NameAddr::parse)
                    .and_then(|n| n.params.get("tag").flatten().map(str::to_string))
                    .unwrap_or_default();
                let cseq = h
                    .get(&HeaderName::CSeq)
                    .and_then(super::message::CSeq::parse)
                    .map(|c| c.seq)
                    .unwrap_or(0);
                TxKey::Rfc2543 {
                    parts: format!(
                        "{}|{}|{}|{}|{}|{}",
                        req.uri,
                        h.get(&HeaderName::CallId).unwrap_or(""),
                        from_tag,
                        cseq,
                        via.to_value(),
                        method
                    )
                    .into(),
                }
            }
        }
    }

    /// The Via branch of an RFC 3261 key.
    pub fn branch(&self) -> Option<&str> {
        match self {
            TxKey::Rfc3261 { parts } => parts.split('|').next(),
            TxKey::Rfc2543 { .. } => None,
        }
    }

    /// The client-side key of a response: its top Via branch and CSeq method.
    pub fn client(resp: &Response) -> Option<(String, String)> {
        let via = Via::parse(resp.headers.values(&HeaderName::Via).first()?)?;
        let cseq = super::message::CSeq::parse(resp.headers.get(&HeaderName::CSeq)?)?;
        Some((via.branch()?.to_string(), cseq.method.as_str().to_string()))
    }
}

#[cfg(test)]
mod tests;
