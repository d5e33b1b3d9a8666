//! RFC 4733 telephone-events on one relay leg: the tones played to it
//! (from a SIP INFO on the other leg) and the events it sends that are
//! reported instead of relayed (for another leg without telephone-event).
//!
//! A tone is sent the way RFC 4733 §2.5 asks: packets every 20 ms with the
//! event's start timestamp and a growing duration, the first with the
//! marker bit, then the end packet (E bit) three times. Each tone is its
//! own source for the leg's [`OutStream`](super::relay) rewrite, so it sits
//! on the leg's SSRC with continuous sequence numbers and a timestamp after
//! the audio before it; audio to the leg pauses while it plays.

use std::collections::VecDeque;
use std::time::Duration;

/// How often a tone's packets go out.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);

/// Samples per packet interval at 8 kHz.
const STEP: u32 = 160;

/// The volume written in generated events (−10 dBm0).
const VOLUME: u8 = 10;

/// How many times the end packet is sent.
const END_PACKETS: u8 = 3;

/// The source ids tones are rewritten under (never a real SSRC we would
/// confuse it with: real ones come from the packets, and each tone gets
/// its own so each starts a new timestamp).
const TONE_SOURCE: u32 = 0x4474_6d00;

/// Longest tone: the duration field counts 16 bits of samples.
const MAX_SAMPLES: u32 = u16::MAX as u32;

/// One tone being played.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tone {
    event: u8,
    /// Its whole length, in samples.
    total: u32,
    /// How much of it the packets sent so far cover.
    covered: u32,
    ends_sent: u8,
    seq: u16,
    source: u32,
}

/// A leg's telephone-events.
#[derive(Debug, Default)]
pub struct LegEvents {
    /// The payload type the leg negotiated.
    pub pt: Option<u8>,
    /// Its events are reported rather than relayed.
    pub report: bool,
    playing: Option<Tone>,
    waiting: VecDeque<(u8, u32)>,
    tones: u32,
    /// The timestamp of the last event reported (its end packet comes
    /// three times).
    last_reported: Option<u32>,
}

impl LegEvents {
    /// What the leg negotiated (a new peer after a transfer starts over).
    pub fn negotiated(&mut self, pt: Option<u8>, report: bool) {
        self.pt = pt;
        self.report = report && pt.is_some();
        self.last_reported = None;
        if pt.is_none() {
            self.stop();
        }
    }

    /// Plays `event` for `duration` after the tones already waiting
    /// (ignored when the leg has no telephone-event).
    pub fn queue(&mut self, event: u8, duration: Duration) {
        if self.pt.is_none() || event > 16 {
            return;
        }
        let samples = (duration.as_millis() as u32).saturating_mul(8);
        self.waiting
            .push_back((event, samples.clamp(STEP, MAX_SAMPLES)));
    }

    /// Whether a tone is playing or waiting.
    pub fn playing(&self) -> bool {
        self.playing.is_some() || !self.waiting.is_empty()
    }

    /// Drops the tones (the leg's peer is gone).
    pub fn stop(&mut self) {
        self.playing = None;
        self.waiting.clear();
    }

    /// The next packet of the tone playing (starting the next one waiting),
    /// with the source id to rewrite it under; `None` when nothing plays.
    pub fn next_packet(&mut self) -> Option<([u8; 16], u32)> {
        let pt = self.pt?;
        if self.playing.is_none() {
            let (event, total) = self.waiting.pop_front()?;
            self.tones = self.tones.wrapping_add(1);
            self.playing = Some(Tone {
                event,
                total,
                covered: 0,
                ends_sent: 0,
                seq: 0,
                source: TONE_SOURCE.wrapping_add(self.tones),
            });
        }
        let tone = self.playing.as_mut()?;
        let first = tone.covered == 0;
        let end = if tone.covered < tone.total {
            tone.covered = (tone.covered + STEP).min(tone.total);
            tone.covered == tone.total
        } else {
            true
        };
        if end {
            tone.ends_sent += 1;
        }
        let packet = packet(pt, first, tone.seq, tone.event, end, tone.covered);
        tone.seq = tone.seq.wrapping_add(1);
        let source = tone.source;
        if tone.ends_sent >= END_PACKETS {
            self.playing = None;
        }
        Some((packet, source))
    }

    /// An RTP packet of this leg's telephone-event type arrived: the event
    /// and its duration in ms when it is the first end packet seen of its
    /// event.
    pub fn ended(&mut self, rtp: &[u8]) -> Option<(u8, u32)> {
        let (ts, event, end, duration) = parse(rtp)?;
        if !end || self.last_reported == Some(ts) || event > 16 {
            return None;
        }
        self.last_reported = Some(ts);
        Some((event, duration as u32 / 8))
    }
}

/// An RFC 4733 packet: RTP header (SSRC and timestamp filled in by the
/// rewrite) and the 4-byte event payload.
fn packet(pt: u8, marker: bool, seq: u16, event: u8, end: bool, duration: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 0x80;
    p[1] = (pt & 0x7f) | if marker { 0x80 } else { 0 };
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    // Timestamp 0: every packet of an event carries its start (the rewrite
    // moves it onto the leg's stream).
    p[12] = event;
    p[13] = if end { 0x80 } else { 0 } | VOLUME;
    p[14..16].copy_from_slice(&(duration.min(MAX_SAMPLES) as u16).to_be_bytes());
    p
}

/// Reads an RFC 4733 packet: its timestamp, event, end bit and duration
/// (samples). Skips CSRCs and a header extension; `None` if too short.
pub fn parse(rtp: &[u8]) -> Option<(u32, u8, bool, u16)> {
    if rtp.len() < 12 || rtp[0] >> 6 != 2 {
        return None;
    }
    let ts = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
    let mut at = 12 + 4 * (rtp[0] & 0x0f) as usize;
    if rtp[0] & 0x10 != 0 {
        let ext = rtp.get(at + 2..at + 4)?;
        at += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let payload = rtp.get(at..at + 4)?;
    Some((
        ts,
        payload[0],
        payload[1] & 0x80 != 0,
        u16::from_be_bytes([payload[2], payload[3]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_packets(e: &mut LegEvents) -> Vec<[u8; 16]> {
        std::iter::from_fn(|| e.next_packet().map(|(p, _)| p)).collect()
    }

    #[test]
    fn rfc4733_a_tone_grows_its_duration_then_ends_three_times() {
        let mut e = LegEvents::default();
        e.negotiated(Some(101), false);
        e.queue(5, Duration::from_millis(100));
        assert!(e.playing());
        let p = all_packets(&mut e);
        // 100 ms = 800 samples: 5 packets of 160, the fifth the first end.
        assert_eq!(p.len(), 7);
        assert_eq!(p[0][1], 0x80 | 101, "marker on the first packet");
        assert!(p[1..].iter().all(|q| q[1] == 101));
        let parsed: Vec<_> = p.iter().map(|q| parse(q).unwrap()).collect();
        assert!(parsed.iter().all(|(ts, ev, _, _)| *ts == 0 && *ev == 5));
        assert_eq!(
            parsed.iter().map(|x| x.3).collect::<Vec<_>>(),
            [160, 320, 480, 640, 800, 800, 800]
        );
        assert_eq!(
            parsed.iter().filter(|x| x.2).count(),
            3,
            "three end packets"
        );
        let seqs: Vec<u16> = p.iter().map(|q| u16::from_be_bytes([q[2], q[3]])).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6]);
        assert!(!e.playing());
    }

    #[test]
    fn tones_queue_and_each_is_a_new_source() {
        let mut e = LegEvents::default();
        e.negotiated(Some(96), false);
        e.queue(1, Duration::from_millis(20));
        e.queue(11, Duration::from_millis(20));
        let (_, s1) = e.next_packet().unwrap();
        let mut rest = Vec::new();
        while let Some((p, s)) = e.next_packet() {
            rest.push((p[12], s));
        }
        assert_eq!(rest.len(), 5);
        assert!(rest[..2].iter().all(|(ev, s)| *ev == 1 && *s == s1));
        assert!(rest[2..].iter().all(|(ev, s)| *ev == 11 && *s != s1));
    }

    #[test]
    fn no_telephone_event_plays_nothing_and_bad_events_are_ignored() {
        let mut e = LegEvents::default();
        e.queue(5, Duration::from_millis(100));
        assert!(!e.playing());
        e.negotiated(Some(101), false);
        e.queue(17, Duration::from_millis(100));
        assert!(!e.playing());
        // An absurd duration is capped at what the field holds.
        e.queue(0, Duration::from_secs(3600));
        let last = all_packets(&mut e).pop().unwrap();
        assert_eq!(parse(&last).unwrap().3, u16::MAX);
    }

    #[test]
    fn an_event_is_reported_once_on_its_first_end_packet() {
        let mut e = LegEvents::default();
        e.negotiated(Some(101), true);
        let mut p = packet(101, true, 1, 9, false, 160);
        p[4..8].copy_from_slice(&4000u32.to_be_bytes());
        assert_eq!(e.ended(&p), None);
        let mut end = packet(101, false, 2, 9, true, 1280);
        end[4..8].copy_from_slice(&4000u32.to_be_bytes());
        assert_eq!(e.ended(&end), Some((9, 160)));
        assert_eq!(e.ended(&end), None, "the retransmitted end");
        end[4..8].copy_from_slice(&9000u32.to_be_bytes());
        assert_eq!(e.ended(&end), Some((9, 160)), "the same key again");
        assert_eq!(e.ended(&end[..14]), None, "too short");
    }

    #[test]
    fn the_payload_is_found_after_csrcs_and_an_extension() {
        let mut p = vec![0x80 | 0x10 | 1, 101, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1];
        p.extend([0, 0, 0, 2]); // one CSRC
        p.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // a one-word extension
        p.extend([3, 0x8a, 0x01, 0x40]);
        assert_eq!(parse(&p), Some((7, 3, true, 320)));
    }
}
