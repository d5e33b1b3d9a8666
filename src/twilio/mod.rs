//! Twilio: the REST client (credentials check today; messages, calls and
//! recordings with the Twilio issue), and later webhook signatures and TwiML.
//!
//! There is no maintained Rust SDK for Twilio, and the API surface Homeline
//! needs is small, so the client is ours: HTTP Basic with the Account SID and
//! auth token, form-encoded requests, JSON answers.

pub mod client;

pub use client::{AccountInfo, Client, TwilioError};
