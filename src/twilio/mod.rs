//! Twilio: the REST client, webhook signatures and TwiML.
//!
//! There is no maintained Rust SDK for Twilio, and the API surface Homeline
//! needs is small, so the client is ours: HTTP Basic with the Account SID and
//! auth token (or an API key), form-encoded requests, JSON answers.

pub mod client;
pub mod jobs;
pub mod monitor;
pub mod routing;
pub mod signature;
pub mod sip_domains;
pub mod twiml;

pub use client::{AccountInfo, Client, TwilioError};
