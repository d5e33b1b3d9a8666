//! G.711 encoders (ITU-T G.711, the classic segment tables written as code),
//! used once per hold-music file: frames are prepared at load time, so
//! nothing is encoded per packet.

/// Encodes one 16-bit linear sample as μ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let top = (s >> 7) as u32; // 1..=255 after the bias
    let exponent = if top == 0 {
        0
    } else {
        (31 - top.leading_zeros()) as i32
    };
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 as i32 | mantissa) as u8
}

/// Encodes one 16-bit linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    s = s.min(32767);
    let v = if s < 256 {
        s >> 4
    } else {
        let exponent = 31 - (s as u32).leading_zeros() as i32 - 7; // 1..=7
        let mantissa = (s >> (exponent + 3)) & 0x0f;
        (exponent << 4) | mantissa
    };
    ((sign | v) ^ 0x55) as u8
}

/// Decodes μ-law (used by tests and the upload check to prove round trips).
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Decodes A-law.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if sign != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_stay_within_the_quantisation_step() {
        for s in (-32768i32..32767).step_by(7) {
            let s = s as i16;
            for (enc, dec) in [
                (
                    linear_to_ulaw as fn(i16) -> u8,
                    ulaw_to_linear as fn(u8) -> i16,
                ),
                (linear_to_alaw, alaw_to_linear),
            ] {
                let back = dec(enc(s)) as i32;
                let err = (back - s as i32).abs();
                // The step grows with the segment: 1/16 of the magnitude plus a floor.
                let allowed = (s as i32).abs() / 16 + 140;
                assert!(err <= allowed, "sample {s} came back as {back}");
            }
        }
    }

    #[test]
    fn silence_encodes_to_the_usual_bytes() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
    }
}
