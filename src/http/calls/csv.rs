//! The call history as CSV (RFC 4180), for `GET /api/cdrs/export`.
//!
//! Fields that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`
//! first) get a leading `'`, except plain numbers such as `+15551234567`:
//! a caller ID is text the caller chose, and must not become a formula.

use crate::store::cdrs::Cdr;

const COLUMNS: &[&str] = &[
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "direction",
    "from",
    "to",
    "did_id",
    "device_id",
    "duration_secs",
    "disposition",
    "hangup_cause",
    "twilio_status",
    "call_sid",
];

/// The header line.
pub fn header() -> String {
    let mut s = COLUMNS.join(",");
    s.push_str("\r\n");
    s
}

/// Appends `c` as one line.
pub fn row(out: &mut String, c: &Cdr) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let fields = [
        c.id.to_string(),
        c.started_at.clone(),
        opt(&c.answered_at),
        opt(&c.ended_at),
        c.direction.as_str().to_string(),
        c.from_number.clone(),
        c.to_number.clone(),
        num(c.did_id),
        num(c.device_id),
        c.duration_secs.to_string(),
        c.disposition.as_str().to_string(),
        opt(&c.hangup_cause),
        opt(&c.twilio_status),
        opt(&c.call_sid),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

fn field(out: &mut String, v: &str) {
    let plain_number = {
        let digits = v.strip_prefix('+').unwrap_or(v);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let formula = !plain_number && v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || v.contains([',', '"', '\n', '\r']);
    if !quote {
        out.push_str(v);
        return;
    }
    out.push('"');
    if formula {
        out.push('\'');
    }
    out.push_str(&v.replace('"', "\"\""));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cdrs::{Direction, Disposition};

    #[test]
    fn rows_are_quoted_and_formulas_defused() {
        let c = Cdr {
            id: 7,
            call_sid: Some("CA1".into()),
            sip_call_id: None,
            direction: Direction::Inbound,
            from_number: "=HYPERLINK(\"x\")".into(),
            to_number: "+15551230001".into(),
            did_id: Some(1),
            device_id: None,
            started_at: "2026-11-21T10:00:00Z".into(),
            answered_at: None,
            ended_at: Some("2026-11-21T10:01:00Z".into()),
            duration_secs: 60,
            disposition: Disposition::Answered,
            twilio_status: None,
            hangup_cause: Some("bye, then \"done\"".into()),
            recording_path: None,
            spam_score: None,
        };
        let mut out = header();
        row(&mut out, &c);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0].split(',').count(), COLUMNS.len());
        assert_eq!(
            lines[1],
            "7,2026-11-21T10:00:00Z,,2026-11-21T10:01:00Z,inbound,\"'=HYPERLINK(\"\"x\"\")\",+15551230001,1,,60,answered,\"bye, then \"\"done\"\"\",,CA1"
        );
    }
}
