//! Telling the household: e-mail (SMTP or Postmark), push (Gotify) and
//! event webhooks, for voicemail, missed calls, messages and admin alerts.
//!
//! Two halves meet at the `notifications` table ([`queue`]):
//!
//! * deciding: a task follows the events channel, works out who wants what
//!   on which channel, renders the message and stores it with its outbox job
//!   in one transaction ([`queue::enqueue_in`]);
//! * delivering: the outbox worker hands each job to the channel's sender,
//!   which retries on that channel's schedule and abandons with an alert.
//!
//! A notification is rendered once, when its event happened: a retry sends
//! the same bytes, and the delivery log shows what went out.

pub mod deliver;
pub mod email;
pub mod gotify;
pub mod hooks;
pub mod postmark;
pub mod queue;
pub mod send;
pub mod smtp;
pub mod webhook;
