//! Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).

use bytes::Bytes;

use super::{Action, Input, State, Timer, TimerConfig};
use crate::sip::message::{Method, Response};

/// A response serialised once: what is sent now and kept for the
/// retransmissions.
fn serialised(resp: &Response) -> Bytes {
    Bytes::from(resp.to_bytes())
}

/// The kept response sent again, if there is one.
fn resend(last: &Option<Bytes>) -> Vec<Action> {
    last.iter().map(|b| Action::Transmit(b.clone())).collect()
}

/// A server non-INVITE transaction: Trying → Proceeding → Completed → Terminated.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: State,
    cfg: TimerConfig,
    /// The last response, serialised.
    last_response: Option<Bytes>,
}

impl ServerNonInvite {
    /// A transaction for a request just received.
    pub fn new(cfg: TimerConfig) -> Self {
        Self {
            state: State::Trying,
            cfg,
            last_response: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match (self.state, input) {
            (State::Trying, Input::Request(_)) => vec![],
            (State::Proceeding | State::Completed, Input::Request(_)) => {
                resend(&self.last_response)
            }
            (State::Trying | State::Proceeding, Input::Respond(resp)) => {
                let bytes = serialised(&resp);
                let send = Action::Transmit(bytes.clone());
                let provisional = resp.status < 200;
                self.last_response = Some(bytes);
                if provisional {
                    self.state = State::Proceeding;
                    vec![send]
                } else {
                    self.state = State::Completed;
                    vec![
                        send,
                        Action::Arm(Timer::J, self.cfg.wait(self.cfg.timeout())),
                    ]
                }
            }
            (State::Completed, Input::Timer(Timer::J)) => self.terminate(),
            (State::Trying | State::Proceeding | State::Completed, Input::TransportError) => {
                let mut a = vec![Action::TransportFailed];
                a.extend(self.terminate());
                a
            }
            _ => vec![],
        }
    }

    fn terminate(&mut self) -> Vec<Action> {
        self.state = State::Terminated;
        vec![Action::Terminated]
    }
}

/// A server INVITE transaction: Proceeding → Completed → Confirmed, or
/// Proceeding → Accepted (2xx, RFC 6026) → Terminated.
#[derive(Debug)]
pub struct ServerInvite {
    state: State,
    cfg: TimerConfig,
    /// The last response, serialised.
    last_response: Option<Bytes>,
    g_interval: std::time::Duration,
}

impl ServerInvite {
    /// A transaction for an INVITE just received. The caller sends 100 Trying
    /// through [`Input::Respond`] straight away (the TU will take longer than
    /// 200 ms to answer, §17.2.1).
    pub fn new(cfg: TimerConfig) -> Self {
        Self {
            state: State::Proceeding,
            cfg,
            last_response: None,
            g_interval: cfg.t1,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match (self.state, input) {
            (State::Proceeding | State::Completed, Input::Request(req))
                if req.method == Method::Invite =>
            {
                resend(&self.last_response)
            }
            (State::Accepted, Input::Request(req)) if req.method == Method::Ack => {
                vec![Action::DeliverAck(req)]
            }
            (State::Completed, Input::Request(req)) if req.method == Method::Ack => {
                self.state = State::Confirmed;
                vec![Action::Arm(Timer::I, self.cfg.wait(self.cfg.t4))]
            }
            (State::Proceeding, Input::Respond(resp)) => {
                let bytes = serialised(&resp);
                let send = Action::Transmit(bytes.clone());
                let status = resp.status;
                self.last_response = Some(bytes);
                match status {
                    100..=199 => vec![send],
                    200..=299 => {
                        self.state = State::Accepted;
                        vec![send, Action::Arm(Timer::L, self.cfg.timeout())]
                    }
                    _ => {
                        self.state = State::Completed;
                        let mut a = vec![send, Action::Arm(Timer::H, self.cfg.timeout())];
                        if !self.cfg.reliable {
                            a.push(Action::Arm(Timer::G, self.g_interval));
                        }
                        a
                    }
                }
            }
            // The TU retransmits its 2xx itself while in Accepted (§13.3.1.4).
            (State::Accepted, Input::Respond(resp)) if (200..300).contains(&resp.status) => {
                vec![Action::Transmit(serialised(&resp))]
            }
            (State::Completed, Input::Timer(Timer::G)) => {
                self.g_interval = (self.g_interval * 2).min(self.cfg.t2);
                let mut a = resend(&self.last_response);
                a.push(Action::Arm(Timer::G, self.g_interval));
                a
            }
            (State::Completed, Input::Timer(Timer::H)) => {
                self.state = State::Terminated;
                vec![Action::Timeout, Action::Terminated]
            }
            (State::Confirmed, Input::Timer(Timer::I))
            | (State::Accepted, Input::Timer(Timer::L)) => {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            (State::Proceeding | State::Completed | State::Accepted, Input::TransportError) => {
                self.state = State::Terminated;
                vec![Action::TransportFailed, Action::Terminated]
            }
            _ => vec![],
        }
    }
}
