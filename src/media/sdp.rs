//! SDP (RFC 4566) as far as a G.711 B2BUA needs it, and the offer/answer
//! rules (RFC 3264) Homeline applies on each leg.
//!
//! Homeline never passes a peer's SDP through: each leg sees a description
//! that Homeline wrote, naming its own relay address, so the two legs can sit
//! on different networks (LAN phones, Twilio on the public side) and the
//! media always flows through the relay. What survives from the peer is its
//! codec choice (PCMU/PCMA), `telephone-event` and the direction.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Why a description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not SDP at all, or a line we need is malformed.
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    /// No audio stream, or none of its codecs is G.711 (answered 488).
    #[error("no common codec (Homeline relays PCMU and PCMA)")]
    NoCommonCodec,
    /// Secure RTP offered as mandatory on a leg Homeline runs in clear.
    #[error("secure RTP (RTP/SAVP) is not offered on this leg")]
    SecureOnly,
}

/// Media direction (RFC 3264 §5.1): who may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The writer only sends (it is holding the other side).
    SendOnly,
    /// The writer only receives.
    RecvOnly,
    /// Nobody sends.
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to this offer (§6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the writer of this direction puts the other party on hold.
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }

    /// Whether the writer sends media at all.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// A G.711 codec, the only audio Homeline relays (no transcoding on a Pi).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// μ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
        }
    }

    fn from_format(fmt: &str, rtpmaps: &[(String, String)]) -> Option<Codec> {
        let name = rtpmaps
            .iter()
            .find(|(pt, _)| pt == fmt)
            .map(|(_, enc)| enc.to_ascii_uppercase());
        match (fmt, name.as_deref()) {
            (_, Some(n)) if n.starts_with("PCMU/8000") => Some(Codec::Pcmu),
            (_, Some(n)) if n.starts_with("PCMA/8000") => Some(Codec::Pcma),
            ("0", None) => Some(Codec::Pcmu),
            ("8", None) => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// The audio stream of a description, reduced to what the relay and the
/// negotiation need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Where the writer wants to receive RTP (`c=` and `m=` port). Port 0
    /// means the stream is rejected or disabled.
    pub addr: IpAddr,
    /// RTP port.
    pub port: u16,
    /// G.711 codecs in the writer's order of preference.
    pub codecs: Vec<Codec>,
    /// The `telephone-event` payload type, if offered (RFC 4733).
    pub telephone_event: Option<u8>,
    /// Direction, with `c=0.0.0.0` (RFC 2543 hold) read as `sendonly`.
    pub direction: Direction,
    /// `a=ptime`, if given.
    pub ptime: Option<u32>,
}

/// A parsed description: the audio stream plus how many other `m=` lines
/// there were (an answer must reject each of them, in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The first audio stream.
    pub audio: Audio,
    /// Index of the audio stream among the `m=` lines.
    pub audio_index: usize,
    /// Every `m=` line's media type and protocol, in order.
    pub streams: Vec<(String, String)>,
}

impl Description {
    /// Parses an SDP body; only the first `m=audio` line over RTP/AVP is used.
    pub fn parse(body: &[u8]) -> Result<Description, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not UTF-8"))?;
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        if lines.next().map(str::trim) != Some("v=0") {
            return Err(SdpError::Malformed("does not start with v=0"));
        }
        let mut session_addr: Option<IpAddr> = None;
        let mut session_dir: Option<Direction> = None;
        let mut streams: Vec<(String, String)> = Vec::new();
        let mut audio: Option<(usize, AudioDraft)> = None;
        let mut current: Option<AudioDraft> = None;
        let mut saw_secure_audio = false;
        for line in lines {
            let Some((kind, value)) = line.split_once('=') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(SdpError::Malformed("line without '='"));
            };
            match kind {
                "m" => {
                    if let Some(done) = current.take() {
                        if audio.is_none() {
                            audio = Some((streams.len() - 1, done));
                        }
                    }
                    let mut parts = value.split_ascii_whitespace();
                    let media = parts.next().ok_or(SdpError::Malformed("m= line"))?;
                    let port_field = parts.next().ok_or(SdpError::Malformed("m= port"))?;
                    let proto = parts.next().ok_or(SdpError::Malformed("m= proto"))?;
                    let port: u16 = port_field
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or(SdpError::Malformed("m= port"))?;
                    streams.push((media.to_string(), proto.to_string()));
                    let is_audio = media.eq_ignore_ascii_case("audio");
                    if is_audio && proto.eq_ignore_ascii_case("RTP/AVP") && audio.is_none() {
                        current = Some(AudioDraft {
                            port,
                            formats: parts.map(str::to_string).collect(),
                            ..AudioDraft::default()
                        });
                    } else if is_audio && proto.to_ascii_uppercase().contains("SAVP") && port != 0 {
                        saw_secure_audio = true;
                    }
                }
                "c" => {
                    let addr = parse_connection(value)?;
                    match current.as_mut() {
                        Some(d) => d.addr = Some(addr),
                        None if streams.is_empty() => session_addr = Some(addr),
                        None => {}
                    }
                }
                "a" => {
                    let (name, val) = match value.split_once(':') {
                        Some((n, v)) => (n, Some(v)),
                        None => (value, None),
                    };
                    let dir = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    match (current.as_mut(), dir) {
                        (Some(d), Some(dir)) => d.direction = Some(dir),
                        (None, Some(dir)) if streams.is_empty() => session_dir = Some(dir),
                        (Some(d), None) => match (name, val) {
                            ("rtpmap", Some(v)) => {
                                if let Some((pt, enc)) = v.split_once(' ') {
                                    d.rtpmaps
                                        .push((pt.trim().to_string(), enc.trim().to_string()));
                                }
                            }
                            ("ptime", Some(v)) => d.ptime = v.trim().parse().ok(),
                            _ => {}
                        },
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if let Some(done) = current.take() {
            if audio.is_none() {
                audio = Some((streams.len() - 1, done));
            }
        }
        let Some((audio_index, draft)) = audio else {
            return Err(if saw_secure_audio {
                SdpError::SecureOnly
            } else {
                SdpError::NoCommonCodec
            });
        };
        let addr = draft
            .addr
            .or(session_addr)
            .ok_or(SdpError::Malformed("no c= line for the audio stream"))?;
        let mut codecs = Vec::new();
        let mut telephone_event = None;
        for f in &draft.formats {
            if let Some(c) = Codec::from_format(f, &draft.rtpmaps) {
                if !codecs.contains(&c) {
                    codecs.push(c);
                }
            } else if draft.rtpmaps.iter().any(|(pt, enc)| {
                pt == f && enc.to_ascii_lowercase().starts_with("telephone-event/8000")
            }) {
                telephone_event = f.parse().ok();
            }
        }
        let mut direction = draft
            .direction
            .or(session_dir)
            .unwrap_or(Direction::SendRecv);
        if addr.is_unspecified() && direction == Direction::SendRecv {
            direction = Direction::SendOnly; // RFC 2543 hold: c=0.0.0.0
        }
        if codecs.is_empty() && draft.port != 0 {
            return Err(SdpError::NoCommonCodec);
        }
        Ok(Description {
            audio: Audio {
                addr,
                port: draft.port,
                codecs,
                telephone_event,
                direction,
                ptime: draft.ptime,
            },
            audio_index,
            streams,
        })
    }
}

#[derive(Default)]
struct AudioDraft {
    port: u16,
    formats: Vec<String>,
    rtpmaps: Vec<(String, String)>,
    addr: Option<IpAddr>,
    direction: Option<Direction>,
    ptime: Option<u32>,
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let (net, _family, addr) = (parts.next(), parts.next(), parts.next());
    if net != Some("IN") {
        return Err(SdpError::Malformed("c= network type"));
    }
    let addr = addr.ok_or(SdpError::Malformed("c= address"))?;
    // Multicast TTL suffixes (`/127`) do not apply to a phone call.
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().map_err(|_| SdpError::Malformed("c= address"))
}

/// What Homeline writes on one leg: its own origin (one per leg, version
/// bumped on every new description, RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct Origin {
    session_id: u64,
    version: u64,
}

impl Origin {
    /// A fresh origin for a new leg.
    pub fn new(session_id: u64) -> Origin {
        Origin {
            session_id,
            version: 0,
        }
    }

    /// The origin of a description Homeline wrote (its `o=` line), so the
    /// leg's later descriptions keep that session id and count on from
    /// that version (RFC 3264 §8: a changed session id is a new session,
    /// which some phones refuse in a re-INVITE). `None` for a body that is
    /// not ours or has no usable `o=`.
    pub fn of_sent(body: &[u8]) -> Option<Origin> {
        let text = std::str::from_utf8(body).ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("o=homeline "))?;
        let mut fields = line.split(' ');
        let session_id = fields.next()?.parse().ok()?;
        let version = fields.next()?.parse().ok()?;
        Some(Origin {
            session_id,
            version,
        })
    }
}

/// Everything needed to write Homeline's audio description on one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The relay address the peer should send to.
    pub addr: IpAddr,
    /// The relay's RTP port on this leg (0 to reject the stream).
    pub port: u16,
    /// Codecs, in order of preference.
    pub codecs: Vec<Codec>,
    /// `telephone-event` payload type to advertise.
    pub telephone_event: Option<u8>,
    /// Direction from Homeline's point of view.
    pub direction: Direction,
    /// `a=ptime`, if the peer asked for one.
    pub ptime: Option<u32>,
}

/// Writes a description. `reject` lists the media types of streams to
/// answer with port 0 around the audio one, `audio_index` its position:
/// an answer must have as many `m=` lines as the offer, in the same order.
pub fn write(
    origin: &mut Origin,
    offer: &Offer,
    streams: &[(String, String)],
    audio_index: usize,
) -> Vec<u8> {
    origin.version += 1;
    let family = if offer.addr.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "v=0\r\no=homeline {} {} IN {family} {}\r\ns=Homeline\r\nc=IN {family} {}\r\nt=0 0\r\n",
        origin.session_id, origin.version, offer.addr, offer.addr
    );
    let single = [("audio".to_string(), "RTP/AVP".to_string())];
    let streams: &[(String, String)] = if streams.is_empty() { &single } else { streams };
    for (i, (media, proto)) in streams.iter().enumerate() {
        if i != audio_index {
            // A stream we do not carry (video, a second audio…): rejected in place.
            let _ = write!(s, "m={media} 0 {proto} 0\r\n");
            continue;
        }
        let mut formats: Vec<String> = offer
            .codecs
            .iter()
            .map(|c| c.payload_type().to_string())
            .collect();
        if let Some(te) = offer.telephone_event {
            formats.push(te.to_string());
        }
        if formats.is_empty() {
            formats.push("0".into());
        }
        let _ = write!(
            s,
            "m=audio {} RTP/AVP {}\r\n",
            offer.port,
            formats.join(" ")
        );
        for c in &offer.codecs {
            let _ = write!(s, "a=rtpmap:{} {}\r\n", c.payload_type(), c.rtpmap());
        }
        if let Some(te) = offer.telephone_event {
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        if let Some(p) = offer.ptime {
            let _ = write!(s, "a=ptime:{p}\r\n");
        }
        let _ = write!(s, "a={}\r\n", offer.direction.attr());
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINPHONE: &str = "v=0\r\no=carol 1 2 IN IP4 192.168.1.20\r\ns=Talk\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 7078 RTP/AVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\nm=video 9078 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n";

    #[test]
    fn reads_codecs_events_and_streams() {
        let d = Description::parse(LINPHONE.as_bytes()).unwrap();
        assert_eq!(d.audio.codecs, vec![Codec::Pcmu, Codec::Pcma]);
        assert_eq!(d.audio.telephone_event, Some(101));
        assert_eq!(d.audio.port, 7078);
        assert_eq!(d.audio.addr.to_string(), "192.168.1.20");
        assert_eq!(d.audio.direction, Direction::SendRecv);
        assert_eq!(d.streams.len(), 2);
        assert_eq!(d.audio_index, 0);
    }

    #[test]
    fn media_level_connection_and_direction_win() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendrecv\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\n";
        let d = Description::parse(sdp.as_bytes()).unwrap();
        assert_eq!(d.audio.addr.to_string(), "10.0.0.2");
        assert_eq!(d.audio.direction, Direction::SendOnly);
        assert_eq!(d.audio.codecs, vec![Codec::Pcma]);
    }

    #[test]
    fn old_style_hold_is_sendonly() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let d = Description::parse(sdp.as_bytes()).unwrap();
        assert!(d.audio.direction.is_hold());
    }

    #[test]
    fn refuses_what_cannot_be_relayed() {
        let opus = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
        assert_eq!(
            Description::parse(opus.as_bytes()),
            Err(SdpError::NoCommonCodec)
        );
        let srtp = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n";
        assert_eq!(
            Description::parse(srtp.as_bytes()),
            Err(SdpError::SecureOnly)
        );
        assert!(matches!(
            Description::parse(b"hello"),
            Err(SdpError::Malformed(_))
        ));
        let no_c = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert!(matches!(
            Description::parse(no_c.as_bytes()),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn a_leg_goes_on_from_the_origin_homeline_sent_it() {
        let offer = Offer {
            addr: "192.168.1.2".parse().unwrap(),
            port: 10000,
            codecs: vec![Codec::Pcmu],
            telephone_event: None,
            direction: Direction::SendRecv,
            ptime: None,
        };
        let sent = write(&mut Origin::new(7_000_000_001), &offer, &[], 0);
        let mut origin = Origin::of_sent(&sent).expect("our own o= line");
        let next = String::from_utf8(write(&mut origin, &offer, &[], 0)).unwrap();
        assert!(next.contains("o=homeline 7000000001 2 IN IP4 "), "{next}");
        // Somebody else's description, or none, is not ours to go on from.
        assert!(Origin::of_sent(LINPHONE.as_bytes()).is_none());
        assert!(Origin::of_sent(b"").is_none());
        assert!(Origin::of_sent(b"o=homeline x 1 IN IP4 1.2.3.4\r\n").is_none());
    }

    #[test]
    fn writes_an_answer_with_rejected_streams_in_place() {
        let d = Description::parse(LINPHONE.as_bytes()).unwrap();
        let mut origin = Origin::new(42);
        let offer = Offer {
            addr: "192.168.1.2".parse().unwrap(),
            port: 10000,
            codecs: vec![Codec::Pcmu],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            ptime: None,
        };
        let body = write(&mut origin, &offer, &d.streams, d.audio_index);
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains("o=homeline 42 1 IN IP4 192.168.1.2\r\n"),
            "{text}"
        );
        assert!(text.contains("m=audio 10000 RTP/AVP 0 101\r\n"), "{text}");
        assert!(text.contains("m=video 0 RTP/AVP 0\r\n"), "{text}");
        let back = Description::parse(&body).unwrap();
        assert_eq!(back.audio.port, 10000);
        assert_eq!(back.audio.telephone_event, Some(101));
        assert_eq!(back.streams.len(), 2);
        // A second description on the same leg bumps the version.
        let again = String::from_utf8(write(&mut origin, &offer, &d.streams, 0)).unwrap();
        assert!(again.contains("o=homeline 42 2 "));
    }
}
