//! Media: what the B2BUA needs to anchor every call's audio on the Pi.
//!
//! * [`sdp`] reads the peers' descriptions and writes Homeline's own.
//! * [`ports`] hands out RTP/RTCP port pairs from the configured range.
//! * [`relay`] copies RTP between the two legs of a call (latching,
//!   SSRC continuity, music on hold, media timeout).
//! * [`dtmf`] plays and reads RFC 4733 telephone-events on a relay leg.
//! * [`music`] prepares hold music as G.711 frames; [`g711`] encodes them.

pub mod dtmf;
pub mod g711;
pub mod music;
pub mod ports;
pub mod relay;
pub mod sdp;
