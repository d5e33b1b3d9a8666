//! Homeline: a home phone system on a Raspberry Pi that bridges the SIP phones
//! on the home network to Twilio, managed from a web UI on the LAN.
//!
//! # Layout
//!
//! One binary (`src/main.rs`, a thin CLI) over this library:
//!
//! * [`app`] wires the services together, runs them until SIGTERM and owns the
//!   systemd conversation (READY, STATUS, WATCHDOG, STOPPING).
//! * [`settings`] is the one source of configuration: flags, then `HOMELINE_*`
//!   environment variables, then the `config` table, then the config file
//!   (`/etc/homeline/homeline.conf` on the appliance image), then defaults.
//! * [`constants`] holds the P0 numbers of the plan (SLAs, security, voicemail,
//!   paging, retries) so every rule cites one place.
//! * [`clock`] is the one clock, injectable so time-based rules are testable.
//! * [`store`] is SQLite: one connection on its own thread, embedded
//!   migrations, one repository module per table.
//! * [`http`] is the hyper server: router, JSON errors, embedded UI, health,
//!   and the API contract (`http::openapi`, an OpenAPI 3.1 document).
//! * [`sip`] is our SIP stack (message → transport → transaction → dialog);
//!   [`endpoint`] runs it and dispatches requests to the [`registrar`].
//! * [`doctor`] checks every link of the chain (clock, certificate, router,
//!   Twilio) and says what to fix.
//! * [`dns`] resolves names (Twilio's SIP Domain) off the SIP loop, with a
//!   timeout and a TTL cache; answers come back to the loop as events.
//! * [`mdns`] answers multicast DNS as `homeline.local` and advertises the
//!   web UI (`_http._tcp`) on the LAN, inside the binary.
//! * [`watchdog`] turns core-loop heartbeats into systemd watchdog pings.
//! * [`storage`] watches free space on the SD card without writing to it.
//! * [`secrets`] seals secrets at rest with a key kept in the data dir.
//! * [`certs`] is the TLS certificate shared by HTTPS and SIP over TLS,
//!   swapped on renewal without a restart; [`acme`] obtains and renews it
//!   from an ACME CA (RFC 8555, HTTP-01).
//! * [`accounts`] holds web accounts: password hashing and policy, sessions,
//!   login lockout, and the ownership [`accounts::scope::Scope`].
//! * [`sysconfig`] is the configuration edited from the web UI (Twilio, SMTP,
//!   notifications, time zone), with its secrets sealed.
//! * [`twilio`] is the Twilio REST client, webhook signatures, TwiML and
//!   the outbox jobs that talk to Twilio.
//! * [`outbox`] is the durable queue of side effects (exactly once across
//!   crashes), with a worker generic over how a job is executed.
//! * [`events`] tells other parts (MWI, notifications) what happened.
//! * [`media`] is SDP and the RTP relay that anchors every call.
//! * [`netaddr`] learns the router's public address (NAT-PMP, UPnP-IGD,
//!   STUN), asks the router for the forwards and keeps DuckDNS following.
//! * [`dialplan`] reads dialled numbers and guards against toll fraud.
//! * [`rules`] decides who rings when: routing rules, schedules, DND.
//! * [`voicemail`], [`messages`] and [`cdr`] take in what Twilio's webhooks
//!   report (recordings and transcripts, SMS/MMS and their statuses, call
//!   statuses); `http::webhooks` only parses the callbacks and renders TwiML.
//!
//! Lower modules never import upper ones: `store` knows nothing of `http`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod acme;
pub mod app;
pub mod b2bua;
pub mod cdr;
pub mod certs;
pub mod clock;
pub mod constants;
pub mod dialplan;
pub mod dns;
pub mod doctor;
pub mod endpoint;
pub mod events;
pub mod http;
pub mod logging;
pub mod mdns;
pub mod media;
pub mod messages;
pub mod netaddr;
pub mod notify;
pub mod outbox;
pub mod registrar;
pub mod rules;
pub mod secrets;
pub mod settings;
pub mod sip;
pub mod storage;
pub mod store;
pub mod sysconfig;
pub mod twilio;
pub mod voicemail;
pub mod watchdog;

/// The version printed by `homeline version` and served by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the binary was built from (`unknown` outside a checkout).
pub const GIT_REV: &str = env!("HOMELINE_GIT_REV");
