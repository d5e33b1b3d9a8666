//! Client transactions: the requests Homeline sends (INVITEs to phones and
//! Twilio, CANCEL, BYE), kept in [`crate::sip::transaction::ClientTable`];
//! this drives its actions: sending, timers on the endpoint's queue, and
//! responses (real or synthesised) handed to the call layer.

use std::net::SocketAddr;

use crate::sip::message::{Message, Request, Response};
use crate::sip::transaction::{Action, Input, TxKey};
use crate::sip::transport::Protocol;

use super::{Endpoint, TimerKey};

pub(super) use crate::b2bua::Owner;
pub(super) use crate::sip::transaction::ClientKey;

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
        let Some((key, actions)) = self.clients.start(req, protocol, dest, owner) else {
            return Vec::new();
        };
        self.apply_client(&key, actions).await
    }

    /// A response from the wire: to its transaction, or dropped.
    pub(super) async fn on_response(&mut self, resp: Response) -> Vec<ClientEvent> {
        let Some(key) = TxKey::client(&resp) else {
            return Vec::new();
        };
        if !self.clients.contains(&key) {
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
        self.clients.feed(key, input)
    }

    async fn apply_client(&mut self, key: &ClientKey, actions: Vec<Action>) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        for a in actions {
            let Some((protocol, dest, owner)) = self.clients.route(key) else {
                break;
            };
            match a {
                Action::Send(msg) => {
                    if let Err(e) = self.try_send(protocol, dest, &msg).await {
                        tracing::debug!(%dest, error = %e, "client request not sent");
                        let more = self.feed_client(key, Input::TransportError);
                        // TransportError yields TransportFailed + Terminated only.
                        for m in more {
                            if m == Action::TransportFailed {
                                if let Some(r) = self.clients.synthesised(key, 503) {
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
                    if let Some(r) = self.clients.synthesised(key, 408) {
                        events.push(ClientEvent::Response(owner, r));
                    }
                }
                Action::TransportFailed => {
                    if let Some(r) = self.clients.synthesised(key, 503) {
                        events.push(ClientEvent::Response(owner, r));
                    }
                }
                Action::Terminated => self.forget_client(key),
                // Only server transactions transmit kept bytes.
                Action::DeliverAck(_) | Action::Transmit(_) => {}
            }
        }
        events
    }

    fn forget_client(&mut self, key: &ClientKey) {
        self.clients.remove(key);
        for t in crate::sip::transaction::Timer::ALL {
            self.timers.cancel(&TimerKey::Client(key.clone(), t));
        }
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
