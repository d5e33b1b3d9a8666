//! The doctor: every link of the chain from a caller to a phone, checked one
//! by one, each saying in plain words what is wrong and how to fix it.
//!
//! `homeline doctor` and the Diagnostics page (`GET /api/diagnostics`) run
//! the same checks. A check is a plain function from facts gathered
//! elsewhere (the clock, the certificate, the router, Twilio's answers) to a
//! [`Check`], so each can be tested for ok and for failure without a network.

use serde::Serialize;

pub mod alerts;
pub mod certificate;
pub mod clock;
pub mod forwards;
pub mod local;
pub mod numbers;
pub mod phones;
pub mod ports;
pub mod public_address;
pub mod reaching;
pub mod run;
pub mod sip_domain;
pub mod storage;
pub mod twilio_account;

/// How a check came out, worst last (a report's status is its worst check's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works as it should.
    Ok,
    /// Works now but will not for long, or works only partly.
    Warning,
    /// Broken: some calls, messages or webhooks fail because of it.
    Error,
}

/// The outcome of one check, as the admin reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (`clock`, `certificate`, `public_address`, …).
    pub id: &'static str,
    /// What was checked, in a few words ("Certificate for webhooks").
    pub title: String,
    /// Ok, warning or error.
    pub status: Status,
    /// What was found, in plain words ("valid until 2027-02-01, issued by Let's Encrypt").
    pub detail: String,
    /// What to do about it; `None` when the status is ok.
    pub fix: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn ok(id: &'static str, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            id,
            title: title.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warning(
        id: &'static str,
        title: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            id,
            title: title.into(),
            status: Status::Warning,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// An error with its fix.
    pub fn error(
        id: &'static str,
        title: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            id,
            title: title.into(),
            status: Status::Error,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// A whole run, as `GET /api/diagnostics` and `homeline doctor --json` give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The worst status of the checks.
    pub status: Status,
    /// When the checks ran (RFC 3339).
    pub ran_at: String,
    /// Every check, in the order of the chain (clock first, Twilio's view last).
    pub checks: Vec<Check>,
}

impl Report {
    /// A report of `checks` run at `ran_at`.
    pub fn new(checks: Vec<Check>, ran_at: crate::clock::Timestamp) -> Report {
        Report {
            status: overall(&checks),
            ran_at: ran_at.to_string(),
            checks,
        }
    }

    /// The exit code of `homeline doctor`: 0 ok, 1 warning, 2 error.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Error => 2,
        }
    }
}

/// The worst status among `checks` (ok for none).
pub fn overall(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_check_decides_the_overall_status() {
        let ok = Check::ok("a", "A", "fine");
        let warn = Check::warning("b", "B", "soon", "renew");
        let err = Check::error("c", "C", "broken", "fix it");
        assert_eq!(overall(&[]), Status::Ok);
        assert_eq!(overall(&[ok.clone(), warn.clone()]), Status::Warning);
        assert_eq!(overall(&[err, ok, warn]), Status::Error);
        assert_eq!(
            serde_json::to_value(Status::Warning).unwrap(),
            serde_json::json!("warning")
        );
    }
}
