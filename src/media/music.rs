//! Music on hold: a WAV file read once, turned into 20 ms G.711 frames for
//! both codecs, and looped by the relay. A default tune ships in the binary
//! (`hold-music.wav`, made by `image/make-hold-music.py`); an uploaded file
//! replaces it after the same validation.

use std::sync::Arc;

use super::g711::{linear_to_alaw, linear_to_ulaw};
use super::sdp::Codec;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// The default tune, embedded.
const DEFAULT_WAV: &[u8] = include_bytes!("hold-music.wav");

/// The default tune as a WAV file (for the web UI's preview).
pub fn default_wav() -> &'static [u8] {
    DEFAULT_WAV
}

/// Longest music accepted (G.711 at 8 kHz: 8 KB per second per codec).
pub const MAX_SECONDS: usize = 300;

/// Why a WAV file is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WavError {
    /// Not a RIFF/WAVE file, or truncated.
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    /// A WAV we do not read (compressed, 8-bit, 24-bit…).
    #[error("unsupported WAV format: {0} (use 16-bit PCM, mono or stereo)")]
    Unsupported(String),
    /// Shorter than one second or longer than [`MAX_SECONDS`].
    #[error("music must last between 1 and {MAX_SECONDS} seconds (this lasts {0:.1} s)")]
    Length(f64),
}

/// Prepared hold music: one frame list per codec.
#[derive(Debug)]
pub struct HoldMusic {
    pcmu: Vec<u8>,
    pcma: Vec<u8>,
}

impl HoldMusic {
    /// The embedded default.
    pub fn default_tune() -> Arc<HoldMusic> {
        // The embedded file is checked by a unit test; an error here would
        // be a build defect, and silence is the safe fallback.
        Arc::new(HoldMusic::from_wav(DEFAULT_WAV).unwrap_or_else(|_| HoldMusic::silence()))
    }

    fn silence() -> HoldMusic {
        HoldMusic {
            pcmu: vec![linear_to_ulaw(0); FRAME_SAMPLES],
            pcma: vec![linear_to_alaw(0); FRAME_SAMPLES],
        }
    }

    /// Reads a 16-bit PCM WAV at any rate, mixes to mono, resamples to
    /// 8 kHz and encodes both G.711 laws.
    pub fn from_wav(bytes: &[u8]) -> Result<HoldMusic, WavError> {
        HoldMusic::from_pcm(&read_wav(bytes)?)
    }

    fn from_pcm(pcm: &[i16]) -> Result<HoldMusic, WavError> {
        let seconds = pcm.len() as f64 / 8000.0;
        if !(1.0..=MAX_SECONDS as f64).contains(&seconds) {
            return Err(WavError::Length(seconds));
        }
        // Whole frames only, so the loop point never splits a packet.
        let n = pcm.len() - pcm.len() % FRAME_SAMPLES;
        Ok(HoldMusic {
            pcmu: pcm[..n].iter().map(|&s| linear_to_ulaw(s)).collect(),
            pcma: pcm[..n].iter().map(|&s| linear_to_alaw(s)).collect(),
        })
    }

    /// Converts an uploaded WAV: validated, mixed to mono, resampled to
    /// 8 kHz. Returns the converted file (16-bit PCM WAV, what is kept on
    /// disk) and the prepared music.
    pub fn convert(bytes: &[u8]) -> Result<(Vec<u8>, HoldMusic), WavError> {
        let pcm = read_wav(bytes)?;
        let music = HoldMusic::from_pcm(&pcm)?;
        let n = music.frames() * FRAME_SAMPLES;
        Ok((write_wav(&pcm[..n]), music))
    }

    /// The music in `<data>/hold-music.wav` if there is a valid one, else
    /// the embedded tune.
    pub fn load(data_dir: &std::path::Path) -> Arc<HoldMusic> {
        let path = data_dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => match HoldMusic::from_wav(&bytes) {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unusable hold music, playing the default");
                    HoldMusic::default_tune()
                }
            },
            Err(_) => HoldMusic::default_tune(),
        }
    }

    /// Length of the loop in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 * 0.02
    }

    /// Number of 20 ms frames in the loop.
    pub fn frames(&self) -> usize {
        self.pcmu.len() / FRAME_SAMPLES
    }

    /// Frame `i` (modulo the loop) in `codec`.
    pub fn frame(&self, codec: Codec, i: usize) -> &[u8] {
        let data = match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        };
        let start = (i % self.frames().max(1)) * FRAME_SAMPLES;
        &data[start..start + FRAME_SAMPLES]
    }
}

/// Where uploaded hold music is kept, in the data dir.
pub const FILE_NAME: &str = "hold-music.wav";

/// A canonical 8 kHz mono 16-bit PCM WAV.
fn write_wav(pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + pcm.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Decodes a WAV to 8 kHz mono 16-bit samples.
fn read_wav(b: &[u8]) -> Result<Vec<i16>, WavError> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(WavError::NotWav("no RIFF/WAVE header"));
    }
    let mut pos = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body_start = pos + 8;
        let body_end = body_start
            .checked_add(len)
            .ok_or(WavError::NotWav("chunk size"))?;
        match id {
            b"fmt " => {
                if len < 16 || body_end > b.len() {
                    return Err(WavError::NotWav("short fmt chunk"));
                }
                let f = &b[body_start..];
                let tag = u16::from_le_bytes([f[0], f[1]]);
                let channels = u16::from_le_bytes([f[2], f[3]]);
                let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                let bits = u16::from_le_bytes([f[14], f[15]]);
                format = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let (tag, channels, rate, bits) =
                    format.ok_or(WavError::NotWav("data before fmt"))?;
                // 0xFFFE is WAVE_FORMAT_EXTENSIBLE; its PCM subtype reads the same.
                if (tag != 1 && tag != 0xfffe) || bits != 16 {
                    return Err(WavError::Unsupported(format!(
                        "format tag {tag}, {bits}-bit"
                    )));
                }
                if !(1..=2).contains(&channels) || !(4000..=96000).contains(&rate) {
                    return Err(WavError::Unsupported(format!(
                        "{channels} channels at {rate} Hz"
                    )));
                }
                let data = &b[body_start..body_end.min(b.len())];
                let frame = 2 * channels as usize;
                let mono: Vec<i16> = data
                    .chunks_exact(frame)
                    .map(|c| {
                        let sum: i32 = c
                            .chunks_exact(2)
                            .map(|s| i16::from_le_bytes([s[0], s[1]]) as i32)
                            .sum();
                        (sum / channels as i32) as i16
                    })
                    .collect();
                return Ok(resample(&mono, rate));
            }
            _ => {}
        }
        pos = body_end + (len & 1); // chunks are word-aligned
    }
    Err(WavError::NotWav("no data chunk"))
}

/// Linear-interpolation resampling to 8 kHz, with a plain moving average
/// first when downsampling (enough for music on a telephone line).
fn resample(input: &[i16], rate: u32) -> Vec<i16> {
    if rate == 8000 || input.is_empty() {
        return input.to_vec();
    }
    let smoothed: Vec<i16> = if rate > 8000 {
        let w = (rate / 8000).max(1) as usize;
        (0..input.len())
            .map(|i| {
                let lo = i.saturating_sub(w / 2);
                let hi = (lo + w).min(input.len());
                let sum: i32 = input[lo..hi].iter().map(|&s| s as i32).sum();
                (sum / (hi - lo) as i32) as i16
            })
            .collect()
    } else {
        input.to_vec()
    };
    let out_len = (input.len() as u64 * 8000 / rate as u64) as usize;
    let step = rate as f64 / 8000.0;
    (0..out_len)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let frac = x - j as f64;
            let a = smoothed[j.min(smoothed.len() - 1)] as f64;
            let b = smoothed[(j + 1).min(smoothed.len() - 1)] as f64;
            (a + (b - a) * frac) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
        b.extend_from_slice(&(2 * channels).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        b
    }

    #[test]
    fn the_embedded_tune_loads() {
        let m = HoldMusic::from_wav(DEFAULT_WAV).unwrap();
        assert_eq!(m.frames(), 400); // 8 s of 20 ms frames
        assert_eq!(m.frame(Codec::Pcma, 401).len(), FRAME_SAMPLES);
    }

    #[test]
    fn resamples_and_mixes_uploads() {
        let stereo_16k: Vec<i16> = (0..32000 * 2).map(|i| (i % 100) as i16).collect();
        let m = HoldMusic::from_wav(&wav(16000, 2, &stereo_16k)).unwrap();
        assert_eq!(m.frames(), 100); // 2 s at 8 kHz
    }

    #[test]
    fn uploads_are_converted_to_8k_mono() {
        let stereo_44k: Vec<i16> = (0..44100 * 2 * 2).map(|i| ((i / 2) % 200) as i16).collect();
        let (file, music) = HoldMusic::convert(&wav(44100, 2, &stereo_44k)).unwrap();
        assert_eq!(music.frames(), 100);
        let again = HoldMusic::from_wav(&file).unwrap();
        assert_eq!(again.frames(), 100);
        assert_eq!(
            u32::from_le_bytes([file[24], file[25], file[26], file[27]]),
            8000
        );
    }

    #[test]
    fn refuses_what_it_cannot_play() {
        assert!(matches!(
            HoldMusic::from_wav(b"ID3 mp3"),
            Err(WavError::NotWav(_))
        ));
        assert!(matches!(
            HoldMusic::from_wav(&wav(8000, 1, &[0; 400])),
            Err(WavError::Length(_))
        ));
        let mut eight_bit = wav(8000, 1, &[0; 8000]);
        eight_bit[34] = 8;
        assert!(matches!(
            HoldMusic::from_wav(&eight_bit),
            Err(WavError::Unsupported(_))
        ));
        let mut truncated = wav(8000, 1, &[0; 8000]);
        truncated.truncate(30);
        assert!(HoldMusic::from_wav(&truncated).is_err());
    }
}
