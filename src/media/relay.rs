//! The RTP relay of one call: two legs, each a port pair on Homeline,
//! packets copied from one to the other.
//!
//! One task per call with fixed buffers: no allocation and no task spawn
//! per packet (a Pi relays a household's calls on one core). Each leg
//! latches onto the address its peer really sends from (symmetric RTP), so
//! a phone behind NAT whose SDP names a private address still gets audio.
//! What a leg receives is rewritten onto one SSRC and continuous sequence
//! numbers and timestamps, so switching its source (the other party, music
//! on hold, a transferred party) never looks like a broken stream to the
//! phone. A leg that falls silent for longer than the media timeout is
//! reported, so the call layer can hang up a vanished phone. DTMF: tones
//! asked for by the call layer are played onto a leg's stream as RFC 4733
//! events, and a leg's events are reported instead of relayed when its peer
//! cannot take them ([`super::dtmf`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::music::{HoldMusic, FRAME_SAMPLES};
use super::ports::PortPair;
use super::sdp::{Codec, Direction};

/// Largest datagram relayed (RTP over Ethernet fits comfortably).
const MAX_PACKET: usize = 1500;

/// One side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The leg that called in (the caller's side).
    A,
    /// The leg Homeline called (the callee's side).
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// 0 for A, 1 for B: where a side's entry sits in per-side arrays.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What the call layer tells a relay.
#[derive(Debug)]
pub enum Control {
    /// The peer of `side` described its media (SDP): where it listens, in
    /// which direction and with which codec. Latching starts over.
    Peer {
        /// Which leg.
        side: Side,
        /// The RTP address from its SDP.
        rtp: SocketAddr,
        /// Its direction, as it wrote it.
        direction: Direction,
        /// The negotiated codec (for music on hold).
        codec: Codec,
    },
    /// Play music on hold to `side` instead of what the other side sends.
    Music {
        /// Which leg hears it.
        side: Side,
        /// On or off.
        on: bool,
    },
    // DTMF (RFC 4733 telephone-events):
    /// `side`'s peer negotiated `telephone-event` as payload type `pt`
    /// (`None`: it did not). With `report`, the events it sends are
    /// reported ([`MediaEvent::Dtmf`]) instead of relayed: the other party
    /// cannot take them and hears them as SIP INFO.
    Events {
        /// Which leg.
        side: Side,
        /// Its telephone-event payload type.
        pt: Option<u8>,
        /// Report its events instead of relaying them.
        report: bool,
    },
    /// Play the DTMF `event` (0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash)
    /// to `side` as RFC 4733 packets on its stream, for `duration`.
    Dtmf {
        /// Which leg hears it.
        side: Side,
        /// The event code.
        event: u8,
        /// How long the key was held.
        duration: Duration,
    },
}

/// What a relay reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP or RTCP from `side` for the media timeout, while it should send.
    Timeout(Side),
    // DTMF:
    /// `side` sent a complete telephone-event (its end packet arrived),
    /// on a leg told to report them.
    Dtmf {
        /// Who pressed the key.
        side: Side,
        /// The event code.
        event: u8,
        /// How long, in milliseconds.
        duration_ms: u32,
    },
}

/// Counters, shared with the API and the benchmark.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// RTP packets received from each side (A, B).
    pub received: [AtomicU64; 2],
    /// RTP packets sent to each side (A, B), relayed or music.
    pub sent: [AtomicU64; 2],
    /// Music frames sent to each side.
    pub music: [AtomicU64; 2],
    /// Packets dropped from an address other than the latched one.
    pub strays: AtomicU64,
}

/// The call layer's handle; dropping it stops the relay and frees the ports.
#[derive(Debug)]
pub struct Relay {
    control: mpsc::UnboundedSender<Control>,
    /// The RTP port each side sends to (A's, B's).
    pub ports: [u16; 2],
    /// Live counters.
    pub stats: Arc<RelayStats>,
}

impl Relay {
    /// Starts the relay task over two port pairs (A's, B's). Events are
    /// sent tagged with `call` on `events`.
    pub fn start(
        call: u64,
        pairs: [PortPair; 2],
        music: Arc<HoldMusic>,
        timeout: Duration,
        events: mpsc::UnboundedSender<(u64, MediaEvent)>,
    ) -> Relay {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(RelayStats::default());
        let ports = [pairs[0].port(), pairs[1].port()];
        let [a, b] = pairs;
        let task = Task {
            call,
            legs: [
                Leg::new(a, 0x484c_0a00 ^ call as u32),
                Leg::new(b, 0x484c_0b00 ^ call as u32),
            ],
            music,
            timeout,
            events,
            stats: stats.clone(),
        };
        tokio::spawn(task.run(rx));
        Relay {
            control: tx,
            ports,
            stats,
        }
    }

    /// Sends a control message (ignored if the relay already stopped).
    pub fn control(&self, c: Control) {
        let _ = self.control.send(c);
    }
}

/// One leg: its sockets, where its peer is, and the stream we send it.
struct Leg {
    pair: PortPair,
    sdp_rtp: Option<SocketAddr>,
    peer_rtp: Option<SocketAddr>,
    peer_rtcp: Option<SocketAddr>,
    rtp_latched: bool,
    rtcp_latched: bool,
    direction: Direction,
    codec: Codec,
    music: bool,
    music_pos: usize,
    out: OutStream,
    last_heard: Instant,
    timed_out: bool,
    /// Its telephone-events: the payload type, what is played to it, and
    /// the last event it sent that was reported.
    events: super::dtmf::LegEvents,
}

impl Leg {
    fn new(pair: PortPair, ssrc: u32) -> Leg {
        Leg {
            pair,
            sdp_rtp: None,
            peer_rtp: None,
            peer_rtcp: None,
            rtp_latched: false,
            rtcp_latched: false,
            direction: Direction::SendRecv,
            codec: Codec::Pcmu,
            music: false,
            music_pos: 0,
            out: OutStream::new(ssrc),
            last_heard: Instant::now(),
            timed_out: false,
            events: super::dtmf::LegEvents::default(),
        }
    }

    fn receives(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// The stream a leg receives from us: one SSRC, sequence numbers and
/// timestamps continuous across changes of source.
struct OutStream {
    ssrc: u32,
    source: Option<u32>,
    seq_delta: u16,
    ts_delta: u32,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
}

impl OutStream {
    fn new(ssrc: u32) -> OutStream {
        OutStream {
            ssrc,
            source: None,
            seq_delta: 0,
            ts_delta: 0,
            last_seq: 0,
            last_ts: 0,
            last_at: None,
        }
    }

    /// Rewrites an RTP header in place for this stream. `source` names
    /// where it came from (the incoming SSRC, or a fixed id for music).
    fn rewrite(&mut self, packet: &mut [u8], source: u32, now: Instant) {
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if self.source != Some(source) {
            // A new source continues where the last one stopped, advanced by
            // the wall-clock time in between (8 samples per millisecond).
            let gap = self
                .last_at
                .map(|at| now.saturating_duration_since(at).as_millis() as u32 * 8)
                .unwrap_or(0)
                .max(FRAME_SAMPLES as u32);
            self.seq_delta = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_delta = self.last_ts.wrapping_add(gap).wrapping_sub(ts);
            if self.source.is_some() {
                packet[1] |= 0x80; // marker: a new talkspurt
            }
            self.source = Some(source);
        }
        let out_seq = seq.wrapping_add(self.seq_delta);
        let out_ts = ts.wrapping_add(self.ts_delta);
        packet[2..4].copy_from_slice(&out_seq.to_be_bytes());
        packet[4..8].copy_from_slice(&out_ts.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.last_seq = out_seq;
        self.last_ts = out_ts;
        self.last_at = Some(now);
    }
}

/// The source id music frames are rewritten under (never a real SSRC we
/// would confuse it with: real ones come from the packets).
const MUSIC_SOURCE: u32 = 0x4d75_7369;

struct Task {
    call: u64,
    legs: [Leg; 2],
    music: Arc<HoldMusic>,
    timeout: Duration,
    events: mpsc::UnboundedSender<(u64, MediaEvent)>,
    stats: Arc<RelayStats>,
}

/// What one socket read was.
enum Got {
    Rtp(Side, usize, SocketAddr),
    Rtcp(Side, usize, SocketAddr),
}

impl Task {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut bufs = [[0u8; MAX_PACKET]; 4];
        let mut music_tick = tokio::time::interval(Duration::from_millis(20));
        music_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(Duration::from_millis(500));
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut music_frame = [0u8; 12 + FRAME_SAMPLES];
        let mut tone_tick = tokio::time::interval(super::dtmf::PACKET_INTERVAL);
        tone_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let playing = self.legs.iter().any(|l| l.music);
            let toning = self.legs.iter().any(|l| l.events.playing());
            let got = {
                let [b0, b1, b2, b3] = &mut bufs;
                let [la, lb] = &self.legs;
                tokio::select! {
                    c = control.recv() => match c {
                        Some(c) => { self.on_control(c, &mut music_tick); continue; }
                        None => return, // the call is over
                    },
                    r = la.pair.rtp.recv_from(b0) => r.map(|(n, s)| Got::Rtp(Side::A, n, s)),
                    r = lb.pair.rtp.recv_from(b1) => r.map(|(n, s)| Got::Rtp(Side::B, n, s)),
                    r = la.pair.rtcp.recv_from(b2) => r.map(|(n, s)| Got::Rtcp(Side::A, n, s)),
                    r = lb.pair.rtcp.recv_from(b3) => r.map(|(n, s)| Got::Rtcp(Side::B, n, s)),
                    _ = music_tick.tick(), if playing => {
                        self.play_music(&mut music_frame).await;
                        continue;
                    }
                    _ = check.tick() => { self.check_timeouts(); continue; }
                    _ = tone_tick.tick(), if toning => {
                        self.play_tones().await;
                        continue;
                    }
                }
            };
            match got {
                Ok(Got::Rtp(side, n, src)) => {
                    let buf = &mut bufs[side.index()];
                    self.on_rtp(side, &mut buf[..n], src).await;
                }
                Ok(Got::Rtcp(side, n, src)) => {
                    let buf = &bufs[2 + side.index()];
                    self.on_rtcp(side, &buf[..n], src).await;
                }
                // ICMP port-unreachable from a peer that went away surfaces
                // as an error on the next read: it is not the relay's end.
                Err(e) => tracing::trace!(call = self.call, error = %e, "RTP socket error"),
            }
        }
    }

    fn on_control(&mut self, c: Control, music_tick: &mut tokio::time::Interval) {
        match c {
            Control::Peer {
                side,
                rtp,
                direction,
                codec,
            } => {
                let leg = &mut self.legs[side.index()];
                // A description naming the same address again (a re-INVITE
                // for hold) keeps the latch; a new address (another phone
                // after a transfer, a moved peer) starts latching over.
                let usable = !rtp.ip().is_unspecified() && rtp.port() != 0;
                if usable && leg.sdp_rtp != Some(rtp) {
                    leg.sdp_rtp = Some(rtp);
                    leg.peer_rtp = Some(rtp);
                    leg.peer_rtcp = Some(SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)));
                    leg.rtp_latched = false;
                    leg.rtcp_latched = false;
                }
                leg.direction = direction;
                leg.codec = codec;
                leg.last_heard = Instant::now();
                leg.timed_out = false;
            }
            Control::Music { side, on } => {
                let was_playing = self.legs.iter().any(|l| l.music);
                self.legs[side.index()].music = on;
                if on && !was_playing {
                    music_tick.reset();
                }
            }
            Control::Events { side, pt, report } => {
                self.legs[side.index()].events.negotiated(pt, report);
            }
            Control::Dtmf {
                side,
                event,
                duration,
            } => self.legs[side.index()].events.queue(event, duration),
        }
    }

    async fn on_rtp(&mut self, side: Side, packet: &mut [u8], src: SocketAddr) {
        // RTP version 2 with a full fixed header; anything else is noise.
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return;
        }
        let i = side.index();
        let now = Instant::now();
        {
            let leg = &mut self.legs[i];
            if !leg.rtp_latched {
                if leg.peer_rtp != Some(src) {
                    tracing::debug!(call = self.call, ?side, from = %src, "RTP latched");
                }
                leg.peer_rtp = Some(src);
                leg.rtp_latched = true;
            } else if leg.peer_rtp != Some(src) {
                // The address the peer's SDP names always takes the latch
                // over: after a switch (early media from one fork, the
                // answer from another) a late packet from the old peer may
                // have latched first, and would shut the new one out.
                if leg.sdp_rtp != Some(src) {
                    self.stats.strays.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                tracing::debug!(call = self.call, ?side, from = %src, "RTP re-latched to its SDP address");
                leg.peer_rtp = Some(src);
            }
            leg.last_heard = now;
            leg.timed_out = false;
        }
        self.stats.received[i].fetch_add(1, Ordering::Relaxed);
        let o = side.other().index();
        let pt = packet[1] & 0x7f;
        if self.legs[i].events.pt == Some(pt) {
            if self.legs[i].events.report {
                // The other party cannot take telephone-events: the call
                // layer tells it by INFO, once per event, on its end.
                if let Some((event, duration_ms)) = self.legs[i].events.ended(packet) {
                    let ev = MediaEvent::Dtmf {
                        side,
                        event,
                        duration_ms,
                    };
                    let _ = self.events.send((self.call, ev));
                }
                return;
            }
            // Each leg hears the payload type it negotiated.
            if let Some(theirs) = self.legs[o].events.pt {
                packet[1] = (packet[1] & 0x80) | (theirs & 0x7f);
            }
        }
        let source = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let to = &mut self.legs[o];
        // While a tone is played to a leg, its stream carries the tone.
        let (Some(dest), false, true, false) =
            (to.peer_rtp, to.music, to.receives(), to.events.playing())
        else {
            return;
        };
        to.out.rewrite(packet, source, now);
        if to.pair.rtp.send_to(packet, dest).await.is_ok() {
            self.stats.sent[o].fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn on_rtcp(&mut self, side: Side, packet: &[u8], src: SocketAddr) {
        let leg = &mut self.legs[side.index()];
        if !leg.rtcp_latched {
            leg.peer_rtcp = Some(src);
            leg.rtcp_latched = true;
        } else if leg.peer_rtcp != Some(src) {
            return;
        }
        leg.last_heard = Instant::now();
        let to = &self.legs[side.other().index()];
        if let (Some(dest), false) = (to.peer_rtcp, to.music) {
            let _ = to.pair.rtcp.send_to(packet, dest).await;
        }
    }

    async fn play_music(&mut self, frame: &mut [u8; 12 + FRAME_SAMPLES]) {
        let now = Instant::now();
        for i in 0..2 {
            let leg = &mut self.legs[i];
            let Some(dest) = leg.peer_rtp.filter(|_| leg.music && !leg.events.playing()) else {
                continue;
            };
            let pos = leg.music_pos;
            leg.music_pos = leg.music_pos.wrapping_add(1);
            frame[0] = 0x80;
            frame[1] = leg.codec.payload_type();
            frame[2..4].copy_from_slice(&(pos as u16).to_be_bytes());
            frame[4..8]
                .copy_from_slice(&((pos as u32).wrapping_mul(FRAME_SAMPLES as u32)).to_be_bytes());
            frame[12..].copy_from_slice(self.music.frame(leg.codec, pos));
            leg.out.rewrite(frame, MUSIC_SOURCE, now);
            if leg.pair.rtp.send_to(frame, dest).await.is_ok() {
                self.stats.sent[i].fetch_add(1, Ordering::Relaxed);
                self.stats.music[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One step of the tones being played: an RFC 4733 packet to each leg
    /// that has one, rewritten onto its stream like everything it hears.
    async fn play_tones(&mut self) {
        let now = Instant::now();
        for i in 0..2 {
            let leg = &mut self.legs[i];
            let Some(dest) = leg.peer_rtp else {
                leg.events.stop();
                continue;
            };
            let Some((mut packet, source)) = leg.events.next_packet() else {
                continue;
            };
            leg.out.rewrite(&mut packet, source, now);
            if leg.pair.rtp.send_to(&packet, dest).await.is_ok() {
                self.stats.sent[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn check_timeouts(&mut self) {
        let now = Instant::now();
        for (i, side) in [(0, Side::A), (1, Side::B)] {
            let leg = &mut self.legs[i];
            // A peer that declared it does not send (holding with
            // `inactive`, or `recvonly`) is not expected to be heard.
            if leg.timed_out || !leg.direction.sends() || leg.peer_rtp.is_none() {
                continue;
            }
            if now.saturating_duration_since(leg.last_heard) >= self.timeout {
                leg.timed_out = true;
                let _ = self.events.send((self.call, MediaEvent::Timeout(side)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ports::PortPool;
    use super::*;
    use tokio::net::UdpSocket;

    fn rtp(seq: u16, ts: u32, ssrc: u32, payload: u8) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend(std::iter::repeat_n(payload, 160));
        p
    }

    fn header(p: &[u8]) -> (u16, u32, u32) {
        (
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    #[test]
    fn a_new_source_continues_the_stream() {
        let mut out = OutStream::new(7);
        let t0 = Instant::now();
        let mut p = rtp(1000, 50_000, 1, 0);
        out.rewrite(&mut p, 1, t0);
        let (s1, ts1, ssrc) = header(&p);
        assert_eq!(ssrc, 7);
        let mut q = rtp(5, 90, 2, 0);
        out.rewrite(&mut q, 2, t0 + Duration::from_millis(20));
        let (s2, ts2, _) = header(&q);
        assert_eq!(s2, s1.wrapping_add(1));
        assert_eq!(ts2, ts1 + 160);
        assert_eq!(q[1] & 0x80, 0x80, "marker set on the switch");
        let mut r = rtp(6, 250, 2, 0);
        out.rewrite(&mut r, 2, t0 + Duration::from_millis(40));
        assert_eq!(header(&r).0, s2.wrapping_add(1));
        assert_eq!(header(&r).1, ts2 + 160);
    }

    async fn peer() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    async fn recv(s: &UdpSocket) -> Vec<u8> {
        let mut b = [0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut b))
            .await
            .expect("packet in time")
            .unwrap();
        b[..n].to_vec()
    }

    #[tokio::test]
    async fn the_sdp_address_takes_the_latch_from_a_stale_peer_after_a_switch() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41111, 41120);
        let (etx, _erx) = mpsc::unbounded_channel();
        let relay = Relay::start(
            2,
            [pool.allocate().unwrap(), pool.allocate().unwrap()],
            HoldMusic::default_tune(),
            Duration::from_secs(30),
            etx,
        );
        let (alice, early, answer) = (peer().await, peer().await, peer().await);
        let peer_at = |side, s: &UdpSocket| Control::Peer {
            side,
            rtp: s.local_addr().unwrap(),
            direction: Direction::SendRecv,
            codec: Codec::Pcmu,
        };
        relay.control(peer_at(Side::A, &alice));
        relay.control(peer_at(Side::B, &early));
        let to_b = SocketAddr::from(([127, 0, 0, 1], relay.ports[1]));
        early.send_to(&rtp(1, 160, 0xe, 0x44), to_b).await.unwrap();
        assert_eq!(recv(&alice).await[12], 0x44, "early media");
        // The answer comes from another fork; the early one's late packet
        // arrives first and latches.
        relay.control(peer_at(Side::B, &answer));
        early.send_to(&rtp(2, 320, 0xe, 0x44), to_b).await.unwrap();
        assert_eq!(recv(&alice).await[12], 0x44);
        answer.send_to(&rtp(7, 700, 0xf, 0x55), to_b).await.unwrap();
        assert_eq!(recv(&alice).await[12], 0x55, "the answering fork is heard");
        early.send_to(&rtp(3, 480, 0xe, 0x44), to_b).await.unwrap();
        answer.send_to(&rtp(8, 860, 0xf, 0x56), to_b).await.unwrap();
        assert_eq!(
            recv(&alice).await[12],
            0x56,
            "the stale peer is a stray now"
        );
        assert_eq!(relay.stats.strays.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn relays_both_ways_latches_and_plays_music() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41101, 41110);
        let (etx, mut erx) = mpsc::unbounded_channel();
        let relay = Relay::start(
            1,
            [pool.allocate().unwrap(), pool.allocate().unwrap()],
            HoldMusic::default_tune(),
            Duration::from_millis(600),
            etx,
        );
        let (alice, bob) = (peer().await, peer().await);
        // Alice's SDP names a wrong port (NAT): latching must find her.
        relay.control(Control::Peer {
            side: Side::A,
            rtp: "127.0.0.1:9".parse().unwrap(),
            direction: Direction::SendRecv,
            codec: Codec::Pcmu,
        });
        relay.control(Control::Peer {
            side: Side::B,
            rtp: bob.local_addr().unwrap(),
            direction: Direction::SendRecv,
            codec: Codec::Pcmu,
        });
        let to_a = SocketAddr::from(([127, 0, 0, 1], relay.ports[0]));
        let to_b = SocketAddr::from(([127, 0, 0, 1], relay.ports[1]));
        alice.send_to(&rtp(1, 160, 0xa, 0x11), to_a).await.unwrap();
        let got = recv(&bob).await;
        assert_eq!(got[12], 0x11);
        bob.send_to(&rtp(9, 900, 0xb, 0x22), to_b).await.unwrap();
        let got = recv(&alice).await;
        assert_eq!(got[12], 0x22, "answered at the latched address");
        // A stranger on alice's relay port is ignored.
        let stranger = peer().await;
        stranger.send_to(&rtp(1, 1, 0xc, 0x33), to_a).await.unwrap();
        // Bob holds alice: alice hears music, not bob.
        relay.control(Control::Music {
            side: Side::A,
            on: true,
        });
        let music = recv(&alice).await;
        assert_eq!(music.len(), 12 + FRAME_SAMPLES);
        assert_eq!(
            header(&music).2,
            header(&got).2,
            "same SSRC across the switch"
        );
        relay.control(Control::Music {
            side: Side::A,
            on: false,
        });
        // Bob stops sending: after the timeout his side is reported.
        let ev = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                alice.send_to(&rtp(2, 320, 0xa, 0x11), to_a).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Ok(ev) = erx.try_recv() {
                    return ev;
                }
            }
        })
        .await
        .expect("timeout reported");
        assert_eq!(ev, (1, MediaEvent::Timeout(Side::B)));
        assert_eq!(relay.stats.strays.load(Ordering::Relaxed), 1);
        assert!(relay.stats.music[0].load(Ordering::Relaxed) >= 1);
    }

    #[tokio::test]
    async fn rfc4733_tones_are_played_on_the_legs_stream_and_events_reported() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41111, 41120);
        let (etx, mut erx) = mpsc::unbounded_channel();
        let relay = Relay::start(
            2,
            [pool.allocate().unwrap(), pool.allocate().unwrap()],
            HoldMusic::default_tune(),
            Duration::from_secs(30),
            etx,
        );
        let (alice, bob) = (peer().await, peer().await);
        for (side, s) in [(Side::A, &alice), (Side::B, &bob)] {
            relay.control(Control::Peer {
                side,
                rtp: s.local_addr().unwrap(),
                direction: Direction::SendRecv,
                codec: Codec::Pcmu,
            });
        }
        // Bob takes events as 96; alice's (101) are reported, as when her
        // peer has no telephone-event.
        relay.control(Control::Events {
            side: Side::B,
            pt: Some(96),
            report: false,
        });
        relay.control(Control::Events {
            side: Side::A,
            pt: Some(101),
            report: true,
        });
        let to_a = SocketAddr::from(([127, 0, 0, 1], relay.ports[0]));
        alice.send_to(&rtp(1, 160, 0xa, 0x11), to_a).await.unwrap();
        let audio = recv(&bob).await;
        relay.control(Control::Dtmf {
            side: Side::B,
            event: 7,
            duration: Duration::from_millis(60),
        });
        let mut tone = Vec::new();
        while tone.len() < 5 {
            let p = recv(&bob).await;
            if p[1] & 0x7f == 96 {
                tone.push(p);
            }
        }
        assert_eq!(tone[0][1], 0x80 | 96, "marker on the tone's first packet");
        assert!(tone
            .iter()
            .all(|p| p[12] == 7 && header(p).2 == header(&audio).2));
        assert!(
            tone.iter().all(|p| header(p).1 == header(&tone[0]).1),
            "one timestamp"
        );
        assert_eq!(header(&tone[0]).0, header(&audio).0.wrapping_add(1));
        assert_eq!(tone.iter().filter(|p| p[13] & 0x80 != 0).count(), 3);
        // Alice's event is reported on its end packet, once, not relayed.
        let mut ev = vec![0x80, 101, 0, 9, 0, 0, 1, 0, 0, 0, 0, 0xa];
        ev.extend([4, 0x8a, 0x03, 0x20]);
        for _ in 0..3 {
            alice.send_to(&ev, to_a).await.unwrap();
        }
        let got = tokio::time::timeout(Duration::from_secs(2), erx.recv())
            .await
            .expect("reported")
            .unwrap();
        assert_eq!(
            got,
            (
                2,
                MediaEvent::Dtmf {
                    side: Side::A,
                    event: 4,
                    duration_ms: 100
                }
            )
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(erx.try_recv().is_err(), "once per event");
    }
}
