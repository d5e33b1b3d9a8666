//! Homeline's own SIP stack, layered like RFC 3261 (and pjsip/sofia-sip):
//!
//! * [`message`]: parse and print messages; typed views of headers.
//!
//! Lower layers never call upper ones; news travels up as values.

pub mod auth;
pub mod guard;
pub mod message;
pub mod tls;
pub mod transaction;
pub mod transport;
