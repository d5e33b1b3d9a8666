//! The client transactions of an endpoint: each machine with where its
//! requests go and who waits for its responses, found by [`ClientKey`], and
//! the request itself to synthesise 408/503 from (RFC 3261 §8.1.3.1). The
//! counterpart of [`super::ServerTable`]; sans-IO like the machines: the
//! driver sends what [`ClientTable::start`] and [`ClientTable::feed`]
//! return and arms their timers.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{Action, ClientInvite, ClientNonInvite, Input, TimerConfig};
use crate::sip::message::{default_reason, HeaderName, Method, Request, Response, Via};
use crate::sip::transport::Protocol;

/// A client transaction's key: top Via branch and CSeq method (what
/// [`super::TxKey::client`] reads off a response).
pub type ClientKey = (String, String);

enum Machine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

struct Entry<O> {
    machine: Machine,
    protocol: Protocol,
    dest: SocketAddr,
    owner: O,
    /// The request, to synthesise a response from when none comes.
    request: Request,
}

/// Live client transactions; `O` names who a transaction's responses are
/// for (the call layer's owner).
pub struct ClientTable<O> {
    txs: HashMap<ClientKey, Entry<O>>,
}

impl<O> Default for ClientTable<O> {
    fn default() -> Self {
        ClientTable {
            txs: HashMap::new(),
        }
    }
}

impl<O: Copy> ClientTable<O> {
    /// Starts a transaction for `req` towards `dest`: its key and the first
    /// actions (send, arm). `None` for an ACK or a request without a Via
    /// branch, which get no transaction.
    pub fn start(
        &mut self,
        req: Request,
        protocol: Protocol,
        dest: SocketAddr,
        owner: O,
    ) -> Option<(ClientKey, Vec<Action>)> {
        let key = client_key(&req)?;
        let cfg = if protocol.reliable() {
            TimerConfig::RELIABLE
        } else {
            TimerConfig::UDP
        };
        let request = req.clone();
        let (machine, actions) = if req.method == Method::Invite {
            let (m, a) = ClientInvite::start(req, cfg);
            (Machine::Invite(m), a)
        } else {
            let (m, a) = ClientNonInvite::start(req, cfg);
            (Machine::NonInvite(m), a)
        };
        self.txs.insert(
            key.clone(),
            Entry {
                machine,
                protocol,
                dest,
                owner,
                request,
            },
        );
        Some((key, actions))
    }

    /// Whether `key` is a live transaction.
    pub fn contains(&self, key: &ClientKey) -> bool {
        self.txs.contains_key(key)
    }

    /// Feeds `input` to the transaction of `key` (nothing if it is gone).
    pub fn feed(&mut self, key: &ClientKey, input: Input) -> Vec<Action> {
        match self.txs.get_mut(key).map(|e| &mut e.machine) {
            Some(Machine::Invite(m)) => m.handle(input),
            Some(Machine::NonInvite(m)) => m.handle(input),
            None => Vec::new(),
        }
    }

    /// Where the transaction's requests go and who its responses are for.
    pub fn route(&self, key: &ClientKey) -> Option<(Protocol, SocketAddr, O)> {
        self.txs.get(key).map(|e| (e.protocol, e.dest, e.owner))
    }

    /// A response made up for a request that got none (§8.1.3.1).
    pub fn synthesised(&self, key: &ClientKey, status: u16) -> Option<Response> {
        let e = self.txs.get(key)?;
        Some(Response::to(&e.request, status, default_reason(status), ""))
    }

    /// Forgets a transaction (terminated, or its transport failed).
    pub fn remove(&mut self, key: &ClientKey) {
        self.txs.remove(key);
    }

    /// How many transactions are live.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
}

/// The key a request's responses will carry; `None` for an ACK (it has no
/// transaction) or without a Via branch.
pub fn client_key(req: &Request) -> Option<ClientKey> {
    let via = Via::parse(req.headers.values(&HeaderName::Via).first()?)?;
    let method = match req.method {
        Method::Ack => return None,
        ref m => m.as_str().to_string(),
    };
    Some((via.branch()?.to_string(), method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse_datagram, Message};
    use crate::sip::transaction::{Timer, TxKey};

    fn request(method: &str, branch: &str) -> Request {
        let raw = format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
             From: <sip:alice@127.0.0.1>;tag=a1\r\n\
             To: <sip:bob@127.0.0.1>\r\n\
             Call-ID: c1@127.0.0.1\r\n\
             CSeq: 1 {method}\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match parse_datagram(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn dest() -> SocketAddr {
        "127.0.0.1:5062".parse().expect("addr")
    }

    #[test]
    fn a_transaction_is_found_by_the_key_its_responses_carry() {
        let mut table = ClientTable::default();
        let req = request("INVITE", "z9hG4bK-1");
        let (key, actions) = table
            .start(req.clone(), Protocol::Udp, dest(), 7u32)
            .expect("started");
        assert!(actions.iter().any(|a| matches!(a, Action::Send(_))));
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Arm(Timer::A, _))));
        let ringing = Response::to(&req, 180, "Ringing", "t1");
        assert_eq!(TxKey::client(&ringing), Some(key.clone()));
        assert_eq!(table.route(&key), Some((Protocol::Udp, dest(), 7)));
        let delivered = table.feed(&key, Input::Response(ringing));
        assert!(delivered
            .iter()
            .any(|a| matches!(a, Action::Deliver(r) if r.status == 180)));
        let timeout = table.synthesised(&key, 408).expect("synthesised");
        assert_eq!(timeout.status, 408);
        assert_eq!(TxKey::client(&timeout), Some(key.clone()));
        table.remove(&key);
        assert!(!table.contains(&key) && table.is_empty());
        assert!(table.feed(&key, Input::Timer(Timer::B)).is_empty());
    }

    #[test]
    fn an_ack_gets_no_transaction() {
        let mut table = ClientTable::default();
        assert!(table
            .start(request("ACK", "z9hG4bK-2"), Protocol::Udp, dest(), 1u32)
            .is_none());
        assert_eq!(table.len(), 0);
        let bye = table
            .start(request("BYE", "z9hG4bK-3"), Protocol::Tcp, dest(), 1u32)
            .map(|(k, _)| k);
        assert_eq!(bye, Some(("z9hG4bK-3".to_string(), "BYE".to_string())));
    }
}
