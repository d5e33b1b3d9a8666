//! The decision for an incoming call, and how it travels to the call layer.
//!
//! [`ring_header`] writes the phones a ring action names into the
//! `X-Homeline-Ring` header of the `<Sip>` URI Twilio dials (Twilio passes
//! `?x-name=value` of a `<Sip>` URI on as headers of its INVITE);
//! [`parse_ring_header`] reads it back in the call layer. The format:
//! `.` separates phones ringing together, `,` separates steps rung one
//! after another, and a step may end in `~SECS` (`1.2,3~20`).

use std::collections::BTreeSet;

use super::model::{Action, RingStep, MAX_DEVICES, MAX_STEPS};
use crate::store::devices::DeviceId;

/// The custom header naming the rule that decided a call (for the CDR).
pub const RULE_HEADER: &str = "X-Homeline-Rule";
/// The custom header naming the phones to ring (see [`ring_header`]).
pub const RING_HEADER: &str = "X-Homeline-Ring";
/// Longest step a header may carry, in seconds.
pub const MAX_HEADER_STEP_SECS: u32 = 600;

/// The `X-Homeline-Ring` value for a ring action: `None` for `ring_all`
/// (no header: every phone of the number, as before rules existed) and for
/// actions that ring no phone.
pub fn ring_header(action: &Action) -> Option<String> {
    let steps: Vec<RingStep> = match action {
        Action::Ring { devices } => vec![RingStep {
            devices: devices.clone(),
            secs: None,
        }],
        Action::Sequence { steps } => steps.clone(),
        _ => return None,
    };
    Some(format_steps(&steps))
}

/// The header form of ring steps.
pub fn format_steps(steps: &[RingStep]) -> String {
    steps
        .iter()
        .map(|s| {
            let devices: Vec<String> = s.devices.iter().map(|d| d.0.to_string()).collect();
            match s.secs {
                Some(secs) => format!("{}~{secs}", devices.join(".")),
                None => devices.join("."),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads an `X-Homeline-Ring` value. Strict: anything but the format (or
/// more than [`MAX_STEPS`] steps, [`MAX_DEVICES`] phones in a step, a phone
/// twice, a step longer than [`MAX_HEADER_STEP_SECS`]) is an error, which
/// the call layer logs and treats as "ring every phone". `%2C` is read as
/// `,` in case a proxy escaped it.
pub fn parse_ring_header(value: &str) -> Result<Vec<RingStep>, String> {
    let value = value.trim().replace("%2C", ",").replace("%2c", ",");
    if value.is_empty() {
        return Err("empty ring list".into());
    }
    let parts: Vec<&str> = value.split(',').collect();
    if parts.len() > MAX_STEPS {
        return Err(format!("more than {MAX_STEPS} steps"));
    }
    let mut seen = BTreeSet::new();
    let mut steps = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let (list, secs) = match part.split_once('~') {
            Some((list, secs)) => {
                let secs: u32 = secs
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_HEADER_STEP_SECS).contains(s))
                    .ok_or_else(|| {
                        format!("step {}: {secs:?} is not a number of seconds", i + 1)
                    })?;
                (list, Some(secs))
            }
            None => (*part, None),
        };
        let ids: Vec<&str> = list.split('.').collect();
        if ids.len() > MAX_DEVICES {
            return Err(format!("step {}: more than {MAX_DEVICES} phones", i + 1));
        }
        let mut devices = Vec::with_capacity(ids.len());
        for id in ids {
            let d = id
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
                .map(DeviceId)
                .ok_or_else(|| format!("step {}: {id:?} is not a phone id", i + 1))?;
            if !seen.insert(d) {
                return Err(format!("phone {d} is named twice"));
            }
            devices.push(d);
        }
        steps.push(RingStep { devices, secs });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(ids: &[i64], secs: Option<u32>) -> RingStep {
        RingStep {
            devices: ids.iter().copied().map(DeviceId).collect(),
            secs,
        }
    }

    #[test]
    fn ring_header_round_trips() {
        assert_eq!(ring_header(&Action::RingAll), None);
        assert_eq!(ring_header(&Action::Voicemail), None);
        let ring = Action::Ring {
            devices: vec![DeviceId(1), DeviceId(2)],
        };
        assert_eq!(ring_header(&ring).as_deref(), Some("1.2"));
        let seq = Action::Sequence {
            steps: vec![step(&[1], Some(15)), step(&[2, 3], Some(20))],
        };
        let h = ring_header(&seq).expect("header");
        assert_eq!(h, "1~15,2.3~20");
        assert_eq!(
            parse_ring_header(&h).expect("parse"),
            [step(&[1], Some(15)), step(&[2, 3], Some(20))]
        );
        assert_eq!(
            parse_ring_header("1.2,3").expect("parse"),
            [step(&[1, 2], None), step(&[3], None)]
        );
        assert_eq!(
            parse_ring_header(" 4%2C5~9 ").expect("escaped comma"),
            [step(&[4], None), step(&[5], Some(9))]
        );
    }

    #[test]
    fn bad_ring_headers_are_errors() {
        for bad in [
            "",
            " ",
            "1,",
            ",1",
            "1..2",
            "a",
            "-1",
            "0",
            "+1",
            "1~",
            "1~0",
            "1~601",
            "1~x",
            "1,1",
            "1.2,2",
            "1~15~3",
            "99999999999999999999",
        ] {
            assert!(parse_ring_header(bad).is_err(), "{bad:?}");
        }
        let many = (1..=MAX_STEPS + 1)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ring_header(&many).is_err());
    }
}
