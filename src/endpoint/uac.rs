//! Client transactions: the requests Homeline sends (INVITEs to phones and
//! Twilio, CANCEL, BYE) driven through the sans-IO machines of
//! [`crate::sip::transaction`], with their timers on the endpoint's queue.

use std::net::SocketAddr;

use crate::sip::message::{HeaderName, Message, Method, Request, Response};
use crate::sip::transaction::{Action, ClientInvite, ClientNonInvite, Input, TimerConfig, TxKey};
use crate::sip::transport::Protocol;

use super::{Endpoint, TimerKey};

/// A client transaction's key: top Via branch and CSeq method.
pub(super) type ClientKey = (String, String);

pub(super) use crate::b2bua::Owner;

pub(super) enum ClientMachine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

pub(super) struct ClientTx {
    machine: ClientMachine,
    protocol: Protocol,
    dest: SocketAddr,
    owner: Owner,
}

/// What a client transaction tells the call layer.
pub(super) enum ClientEvent {
    /// A response arrived (or was synthesised: 408 for a timeout, 503 for
    /// a transport failure, RFC 3261 §8.1.3.1).
    Response(Owner, Response),
}

impl Endpoint {
    /// Starts a client transaction for `req` towards `dest`.
    pub(super) async fn start_client(
        &mut self,
        req: Request,
        protocol: Protocol,
        dest: SocketAddr,
        owner: Owner,
    ) -> Vec<ClientEvent> {
        let Some(key) = client_key(&req) else {
            return Vec::new();
        };
        let cfg = if protocol.reliable() {
            TimerConfig::RELIABLE
        } else {
            TimerConfig::UDP
        };
        let is_invite = req.method == Method::Invite;
        let synth = req.clone();
        let (machine, actions) = if is_invite {
            let (m, a) = ClientInvite::start(req, cfg);
            (ClientMachine::Invite(m), a)
        } else {
            let (m, a) = ClientNonInvite::start(req, cfg);
            (ClientMachine::NonInvite(m), a)
        };
        self.clients.insert(
            key.clone(),
            ClientTx {
                machine,
                protocol,
                dest,
                owner,
            },
        );
        self.synth.insert(key.clone(), synth);
        self.apply_client(&key, actions).await
    }

    /// A response from the wire: to its transaction, or dropped.
    pub(super) async fn on_response(&mut self, resp: Response) -> Vec<ClientEvent> {
        let Some(key) = TxKey::client(&resp) else {
            return Vec::new();
        };
        if !self.clients.contains_key(&key) {
            tracing::debug!(
                status = resp.status,
                "response without a transaction dropped"
            );
            return Vec::new();
        }
        let actions = self.feed_client(&key, Input::Response(resp));
        self.apply_client(&key, actions).await
    }

    /// A client timer fired.
    pub(super) async fn client_timer(
        &mut self,
        key: ClientKey,
        timer: crate::sip::transaction::Timer,
    ) -> Vec<ClientEvent> {
        let actions = self.feed_client(&key, Input::Timer(timer));
        self.apply_client(&key, actions).await
    }

    fn feed_client(&mut self, key: &ClientKey, input: Input) -> Vec<Action> {
        match self.clients.get_mut(key) {
            Some(ClientTx {
                machine: ClientMachine::Invite(m),
                ..
            }) => m.handle(input),
            Some(ClientTx {
                machine: ClientMachine::NonInvite(m),
                ..
            }) => m.handle(input),
            None => Vec::new(),
        }
    }

    async fn apply_client(&mut self, key: &ClientKey, actions: Vec<Action>) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        for a in actions {
            let Some(tx) = self.clients.get(key) else {
                break;
            };
            let (protocol, dest, owner) = (tx.protocol, tx.dest, tx.owner);
            match a {
                Action::Send(msg) => {
                    if let Err(e) = self.try_send(protocol, dest, &msg).await {
                        tracing::debug!(%dest, error = %e, "client request not sent");
                        let more = self.feed_client(key, Input::TransportError);
                        // TransportError yields TransportFailed + Terminated only.
                        for m in more {
                            if m == Action::TransportFailed {
                                if let Some(r) = self.synthesised(key, 503) {
                                    events.push(ClientEvent::Response(owner, r));
                                }
                            }
                        }
                        self.forget_client(key);
                        break;
                    }
                }
                Action::Arm(timer, after) => {
                    self.arm(TimerKey::Client(key.clone(), timer), after);
                }
                Action::Deliver(resp) => events.push(ClientEvent::Response(owner, resp)),
                Action::Timeout => {
                    if let Some(r) = self.synthesised(key, 408) {
                        events.push(ClientEvent::Response(owner, r));
                    }
                }
                Action::TransportFailed => {
                    if let Some(r) = self.synthesised(key, 503) {
                        events.push(ClientEvent::Response(owner, r));
                    }
                }
                Action::Terminated => self.forget_client(key),
                Action::DeliverAck(_) => {}
            }
        }
        events
    }

    fn forget_client(&mut self, key: &ClientKey) {
        self.clients.remove(key);
        self.synth.remove(key);
        for t in crate::sip::transaction::Timer::ALL {
            self.timers.cancel(&TimerKey::Client(key.clone(), t));
        }
    }

    /// A response made up for a request that got none (§8.1.3.1).
    fn synthesised(&self, key: &ClientKey, status: u16) -> Option<Response> {
        let req = self.synth.get(key)?;
        Some(Response::to(
            req,
            status,
            crate::sip::message::default_reason(status),
            "",
        ))
    }

    async fn try_send(
        &self,
        protocol: Protocol,
        dest: SocketAddr,
        msg: &Message,
    ) -> std::io::Result<()> {
        self.transport
            .send(protocol, dest, bytes::Bytes::from(msg.to_bytes()))
            .await
    }
}

/// The key a request's responses will carry.
pub(super) fn client_key(req: &Request) -> Option<ClientKey> {
    let via = crate::sip::message::Via::parse(req.headers.values(&HeaderName::Via).first()?)?;
    let method = match req.method {
        Method::Ack => return None,
        ref m => m.as_str().to_string(),
    };
    Some((via.branch()?.to_string(), method))
}
