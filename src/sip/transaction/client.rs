//! Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).

use super::{Action, Input, State, Timer, TimerConfig};
use crate::sip::message::{HeaderName, Headers, Message, Method, Request, Response};

/// A client non-INVITE transaction: Trying → Proceeding → Completed → Terminated.
#[derive(Debug)]
pub struct ClientNonInvite {
    state: State,
    cfg: TimerConfig,
    request: Request,
    e_interval: std::time::Duration,
}

impl ClientNonInvite {
    /// Starts the transaction; the returned actions send the request and arm E/F.
    pub fn start(request: Request, cfg: TimerConfig) -> (Self, Vec<Action>) {
        let mut actions = vec![
            Action::Send(Message::Request(request.clone())),
            Action::Arm(Timer::F, cfg.timeout()),
        ];
        if !cfg.reliable {
            actions.push(Action::Arm(Timer::E, cfg.t1));
        }
        (
            Self {
                state: State::Trying,
                cfg,
                request,
                e_interval: cfg.t1,
            },
            actions,
        )
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match (self.state, input) {
            (State::Trying | State::Proceeding, Input::Timer(Timer::E)) => {
                self.e_interval = if self.state == State::Trying {
                    (self.e_interval * 2).min(self.cfg.t2)
                } else {
                    self.cfg.t2
                };
                vec![
                    Action::Send(Message::Request(self.request.clone())),
                    Action::Arm(Timer::E, self.e_interval),
                ]
            }
            (State::Trying | State::Proceeding, Input::Timer(Timer::F)) => {
                self.state = State::Terminated;
                vec![Action::Timeout, Action::Terminated]
            }
            (State::Trying | State::Proceeding, Input::Response(resp)) if resp.status < 200 => {
                self.state = State::Proceeding;
                vec![Action::Deliver(resp)]
            }
            (State::Trying | State::Proceeding, Input::Response(resp)) => {
                self.state = State::Completed;
                vec![
                    Action::Deliver(resp),
                    Action::Arm(Timer::K, self.cfg.wait(self.cfg.t4)),
                ]
            }
            (State::Completed, Input::Timer(Timer::K)) => {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            (State::Trying | State::Proceeding, Input::TransportError) => {
                self.state = State::Terminated;
                vec![Action::TransportFailed, Action::Terminated]
            }
            _ => vec![],
        }
    }
}

/// A client INVITE transaction: Calling → Proceeding → Completed (non-2xx,
/// ACK sent here) or Accepted (2xx, RFC 6026: the TU sends the ACK).
#[derive(Debug)]
pub struct ClientInvite {
    state: State,
    cfg: TimerConfig,
    request: Request,
    a_interval: std::time::Duration,
    ack: Option<Request>,
}

impl ClientInvite {
    /// Starts the transaction; the returned actions send the INVITE and arm A/B.
    pub fn start(request: Request, cfg: TimerConfig) -> (Self, Vec<Action>) {
        let mut actions = vec![
            Action::Send(Message::Request(request.clone())),
            Action::Arm(Timer::B, cfg.timeout()),
        ];
        if !cfg.reliable {
            actions.push(Action::Arm(Timer::A, cfg.t1));
        }
        (
            Self {
                state: State::Calling,
                cfg,
                request,
                a_interval: cfg.t1,
                ack: None,
            },
            actions,
        )
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match (self.state, input) {
            (State::Calling, Input::Timer(Timer::A)) => {
                self.a_interval *= 2;
                vec![
                    Action::Send(Message::Request(self.request.clone())),
                    Action::Arm(Timer::A, self.a_interval),
                ]
            }
            // Timer B only matters before a provisional response (§17.1.1.2);
            // after one, the TU's own ring timer decides (CANCEL).
            (State::Calling, Input::Timer(Timer::B)) => {
                self.state = State::Terminated;
                vec![Action::Timeout, Action::Terminated]
            }
            (State::Calling | State::Proceeding, Input::Response(resp)) => match resp.status {
                100..=199 => {
                    self.state = State::Proceeding;
                    vec![Action::Deliver(resp)]
                }
                200..=299 => {
                    self.state = State::Accepted;
                    vec![
                        Action::Deliver(resp),
                        Action::Arm(Timer::M, self.cfg.timeout()),
                    ]
                }
                _ => {
                    let ack = ack_for_non_2xx(&self.request, &resp);
                    self.ack = Some(ack.clone());
                    self.state = State::Completed;
                    vec![
                        Action::Send(Message::Request(ack)),
                        Action::Deliver(resp),
                        Action::Arm(Timer::D, self.cfg.wait(std::time::Duration::from_secs(32))),
                    ]
                }
            },
            (State::Completed, Input::Response(resp)) if resp.status >= 300 => self
                .ack
                .clone()
                .map(|a| vec![Action::Send(Message::Request(a))])
                .unwrap_or_default(),
            (State::Accepted, Input::Response(resp)) if (200..300).contains(&resp.status) => {
                vec![Action::Deliver(resp)]
            }
            (State::Completed, Input::Timer(Timer::D))
            | (State::Accepted, Input::Timer(Timer::M)) => {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            (State::Calling | State::Proceeding, Input::TransportError) => {
                self.state = State::Terminated;
                vec![Action::TransportFailed, Action::Terminated]
            }
            _ => vec![],
        }
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI,
/// Call-ID, From, CSeq number and top Via as the INVITE; To from the
/// response (with its tag); the INVITE's Route headers.
pub fn ack_for_non_2xx(invite: &Request, resp: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = invite.headers.values(&HeaderName::Via).first() {
        headers.push(HeaderName::Via, via.to_string());
    }
    for name in [HeaderName::MaxForwards, HeaderName::From] {
        if let Some(v) = invite.headers.get(&name) {
            headers.push(name, v.to_string());
        }
    }
    if let Some(to) = resp.headers.get(&HeaderName::To) {
        headers.push(HeaderName::To, to.to_string());
    }
    if let Some(v) = invite.headers.get(&HeaderName::CallId) {
        headers.push(HeaderName::CallId, v.to_string());
    }
    let seq = invite
        .headers
        .get(&HeaderName::CSeq)
        .and_then(crate::sip::message::CSeq::parse)
        .map(|c| c.seq)
        .unwrap_or(1);
    headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    for route in invite.headers.lines(&HeaderName::Route) {
        headers.push(HeaderName::Route, route.to_string());
    }
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers,
        body: Default::default(),
    }
}
