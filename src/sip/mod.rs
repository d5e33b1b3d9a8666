//! Homeline's own SIP stack, layered like RFC 3261 (and pjsip/sofia-sip):
//!
//! * [`message`]: parse and print messages; typed views of headers.
//! * [`transport`]: UDP, TCP and [`tls`] sockets; framing, `received`/`rport`,
//!   response routing, connection reuse. The only code with SIP sockets.
//! * [`transaction`]: the four RFC 3261 §17 state machines, sans-IO.
//! * [`dialog`]: dialog state, route sets, CSeq, target refresh, sans-IO.
//! * [`auth`]: digest challenges and checks.
//! * [`guard`]: per-source counters and bans against scanners.
//!
//! Applications sit above: the registrar (`crate::registrar`) and the
//! endpoint that dispatches requests to them (`crate::endpoint`). Lower layers
//! never call upper ones; news travels up as values.

pub mod auth;
pub mod dialog;
pub mod guard;
pub mod message;
pub mod random;
pub mod tls;
pub mod transaction;
pub mod transport;
