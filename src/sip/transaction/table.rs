//! The server transactions of an endpoint: each machine with where its
//! responses go, found by [`ServerKey`], plus the index that spots merged
//! requests (RFC 3261 §8.2.2.2). Sans-IO like the machines: the driver
//! sends what [`ServerTable::feed`] returns.

use std::net::SocketAddr;
use std::sync::Arc;

use super::shards::Sharded;
use super::{Action, Input, ServerInvite, ServerKey, ServerNonInvite, Timer, TimerConfig, TxKey};
use crate::sip::message::{HeaderName, Method, NameAddr, Request, Via};
use crate::sip::transport::Protocol;

enum Machine {
    NonInvite(ServerNonInvite),
    Invite(ServerInvite),
}

struct Entry {
    machine: Machine,
    protocol: Protocol,
    dest: SocketAddr,
    /// From tag, Call-ID and CSeq (with method) and the branch: a second
    /// request with the same identity on another branch is a merged
    /// request (§8.2.2.2). Shared with the merge index (each used to be
    /// stored twice).
    identity: (Arc<str>, Arc<str>),
    /// Which transaction this is among those ever opened under its key:
    /// a queued timer carries it, so one left behind by an earlier
    /// transaction with the same key is ignored.
    generation: u64,
}

/// From tag, Call-ID and CSeq of a request, which a forked copy shares,
/// with the top Via branch (which a forked copy does not share; an RFC 3261
/// key already holds it, so the Via is not parsed again).
fn identity(key: &TxKey, req: &Request) -> (Arc<str>, Arc<str>) {
    let branch: Arc<str> = match key.branch() {
        Some(branch) => branch.into(),
        None => req
            .headers
            .values(&HeaderName::Via)
            .first()
            .and_then(|v| Via::parse(v))
            .and_then(|v| v.branch().map(Arc::from))
            .unwrap_or_else(|| Arc::from("")),
    };
    // The parser has checked From: its tag is read without parsing it again.
    let from_tag = req
        .headers
        .get(&HeaderName::From)
        .and_then(|from| NameAddr::param_of(from, "tag"))
        .flatten()
        .unwrap_or("");
    let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("");
    let cseq = req.headers.get(&HeaderName::CSeq).unwrap_or("");
    let mut who = String::with_capacity(from_tag.len() + call_id.len() + cseq.len() + 2);
    for (i, part) in [from_tag, call_id, cseq].into_iter().enumerate() {
        if i > 0 {
            who.push('|');
        }
        who.push_str(part);
    }
    (who.into(), branch)
}

/// Live server transactions.
#[derive(Default)]
pub struct ServerTable {
    /// Sharded, as is the merge index: neither grows all at once.
    txs: Sharded<ServerKey, Entry>,
    /// Live requests by From tag/Call-ID/CSeq → the branch they came on.
    /// An index keeps the merge check O(1): scanning every live
    /// transaction made each request cost O(load).
    branches: Sharded<Arc<str>, Arc<str>>,
    /// The generation the next transaction gets.
    next_generation: u64,
}

impl ServerTable {
    /// Whether a transaction exists under `key`.
    pub fn contains(&self, key: &ServerKey) -> bool {
        self.txs.contains_key(key)
    }

    /// The generation of the live transaction under `key`.
    pub fn generation(&self, key: &ServerKey) -> Option<u64> {
        self.txs.get(key).map(|t| t.generation)
    }

    /// Where `key`'s responses go.
    pub fn destination(&self, key: &ServerKey) -> Option<(Protocol, SocketAddr)> {
        self.txs.get(key).map(|t| (t.protocol, t.dest))
    }

    /// A request arrived again (a retransmission, or the ACK of a non-2xx
    /// answer), maybe over a new TCP connection: answer at `dest` now.
    /// Returns the machine's actions, `None` if there is no such
    /// transaction.
    pub fn retransmission(
        &mut self,
        key: &ServerKey,
        req: Request,
        dest: SocketAddr,
    ) -> Option<Vec<Action>> {
        let tx = self.txs.get_mut(key)?;
        tx.dest = dest;
        Some(self.feed(key, Input::Request(req)))
    }

    /// Opens a transaction for a new request; returns whether it is a
    /// merged request (the same out-of-dialog request on another branch
    /// while the first is live: answer it 482).
    pub fn open(&mut self, key: ServerKey, req: &Request, dest: SocketAddr) -> bool {
        let protocol = key.1;
        let cfg = if protocol.reliable() {
            TimerConfig::RELIABLE
        } else {
            TimerConfig::UDP
        };
        let machine = if req.method == Method::Invite {
            Machine::Invite(ServerInvite::new(cfg))
        } else {
            Machine::NonInvite(ServerNonInvite::new(cfg))
        };
        let identity = identity(&key.0, req);
        // To is parsed only for the rare request whose identity is live on
        // another branch.
        let merged = self
            .branches
            .get(&identity.0)
            .is_some_and(|branch| *branch != identity.1)
            && req
                .headers
                .get(&HeaderName::To)
                .and_then(NameAddr::parse)
                .is_some_and(|to| to.params.get("tag").is_none());
        if !merged {
            self.branches.insert(identity.0.clone(), identity.1.clone());
        }
        self.next_generation += 1;
        self.txs.insert(
            key,
            Entry {
                machine,
                protocol,
                dest,
                identity,
                generation: self.next_generation,
            },
        );
        merged
    }

    /// Feeds one input to `key`'s machine (nothing if it is gone).
    pub fn feed(&mut self, key: &ServerKey, input: Input) -> Vec<Action> {
        match self.txs.get_mut(key) {
            Some(Entry {
                machine: Machine::NonInvite(m),
                ..
            }) => m.handle(input),
            Some(Entry {
                machine: Machine::Invite(m),
                ..
            }) => m.handle(input),
            None => Vec::new(),
        }
    }

    /// Forgets a terminated transaction; returns the timers its kind of
    /// machine arms (for the driver to cancel), `None` if there was none.
    pub fn remove(&mut self, key: &ServerKey) -> Option<&'static [Timer]> {
        let tx = self.txs.remove(key)?;
        if self.branches.get(&tx.identity.0) == Some(&tx.identity.1) {
            self.branches.remove(&tx.identity.0);
        }
        Some(match tx.machine {
            Machine::NonInvite(_) => &[Timer::J],
            Machine::Invite(_) => &[Timer::G, Timer::H, Timer::I, Timer::L],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse_datagram, Message};
    use crate::sip::transaction::TxKey;

    fn invite(branch: &str) -> Request {
        let raw = format!(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{branch}\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_datagram(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc3261_8_2_2_2_the_same_request_on_another_branch_is_merged() {
        let mut t = ServerTable::default();
        let dest: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
        let first = invite("one");
        let k1 = (TxKey::server(&first).expect("key"), Protocol::Udp);
        assert!(!t.open(k1.clone(), &first, dest));
        let second = invite("two");
        let k2 = (TxKey::server(&second).expect("key"), Protocol::Udp);
        assert!(t.open(k2.clone(), &second, dest));
        // Once the first is over, the request is new again.
        t.remove(&k2);
        t.remove(&k1);
        assert!(!t.open(k2, &second, dest));
        assert_eq!(t.destination(&k1), None);
    }
}
