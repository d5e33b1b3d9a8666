//! Twilio's own view: the errors and warnings its debugger logged (Monitor
//! Alerts) in the last day, grouped by error code and explained in plain
//! words with the fix for the ones a household meets.
//!
//! Each known code is its own check (`twilio_alert_11200`…), so the page
//! and the command list one line per kind of trouble; unknown codes share
//! `twilio_alerts_other`, with Twilio's error page named.

use std::collections::BTreeMap;

use super::Check;
use crate::twilio::monitor::Alert;

/// How far back alerts are read.
pub const WINDOW_HOURS: u64 = 24;

/// What one error code means for Homeline, and its fix.
#[derive(Debug)]
pub struct Explained {
    /// Twilio's code.
    pub code: u32,
    /// The check's id.
    pub id: &'static str,
    /// Twilio's name for it.
    pub name: &'static str,
    /// What happened, for this appliance.
    pub meaning: &'static str,
    /// What to do.
    pub fix: &'static str,
}

const fn e(
    code: u32,
    id: &'static str,
    name: &'static str,
    meaning: &'static str,
    fix: &'static str,
) -> Explained {
    Explained {
        code,
        id,
        name,
        meaning,
        fix,
    }
}

const REACH: &str = "Check that the public URL (Settings → System) reaches this Pi from the \
    internet: the router forwards TCP 443 to it, the name points at the router's current \
    address and the certificate is valid (see the checks above).";
const NOT_HOMELINE: &str = "Make sure the public URL leads to Homeline itself and not to a \
    router's, proxy's or captive portal's page: open it from a phone on mobile data.";

/// The codes explained, by code.
pub const EXPLAINED: &[Explained] = &[
    e(11200, "twilio_alert_11200", "HTTP retrieval failure",
      "Twilio asked the appliance's webhook and got no usable answer (no answer in time, or an error status): callers heard an application error or the message was not delivered here.",
      REACH),
    e(11205, "twilio_alert_11205", "HTTP connection failure",
      "Twilio could not open a connection to the appliance's public URL at all.",
      REACH),
    e(11220, "twilio_alert_11220", "SSL/TLS handshake error",
      "Twilio could not set up HTTPS with the appliance.",
      "Check the certificate in Settings → HTTPS certificate; Twilio needs a certificate from a public authority (Let's Encrypt), never a self-signed one."),
    e(11235, "twilio_alert_11235", "Certificate invalid: domain mismatch",
      "The appliance's certificate is not for the name in the public URL.",
      "Issue the certificate for the public URL's name in Settings → HTTPS certificate."),
    e(11236, "twilio_alert_11236", "Certificate invalid: expired",
      "The appliance's certificate has expired, so Twilio refuses its webhooks.",
      "Renew it in Settings → HTTPS certificate (renewal needs port 80 or 443 forwarded to the Pi)."),
    e(11237, "twilio_alert_11237", "Certificate invalid: no trusted path",
      "Twilio does not trust the appliance's certificate (self-signed, or the chain is incomplete).",
      "Use a certificate from Let's Encrypt in Settings → HTTPS certificate."),
    e(11750, "twilio_alert_11750", "TwiML response body too large",
      "The answer to Twilio's webhook was over 64 kB: something other than Homeline answered (an error or login page).",
      NOT_HOMELINE),
    e(12100, "twilio_alert_12100", "Document parse failure",
      "Twilio could not read the webhook's answer as TwiML: something other than Homeline answered.",
      NOT_HOMELINE),
    e(12300, "twilio_alert_12300", "Invalid Content-Type",
      "The webhook's answer was not XML or audio: something other than Homeline answered.",
      NOT_HOMELINE),
    e(13225, "twilio_alert_13225", "Dial: forbidden phone number",
      "Twilio refused to call a number that its voice geographic permissions or fraud protection block (often premium or high-risk numbers).",
      "In the Twilio console open Voice → Settings → Geo permissions and allow the destination's country if the call was wanted; premium numbers stay blocked."),
    e(13227, "twilio_alert_13227", "Dial: no international authorization",
      "The account may not call the destination's country.",
      "Allow the country in the Twilio console under Voice → Settings → Geo permissions."),
    e(21211, "twilio_alert_21211", "Invalid 'To' phone number",
      "A call or message was sent to a number that is not a valid phone number.",
      "Enter numbers with their country code (+44 20…, +1 555…); the Messages page shows which one."),
    e(30003, "twilio_alert_30003", "Unreachable destination handset",
      "A text message could not be delivered: the recipient's phone is off or out of coverage.",
      "Nothing to fix here; send it again later."),
    e(30004, "twilio_alert_30004", "Message blocked",
      "The recipient (or their carrier) blocks messages from this number.",
      "Ask the recipient; a number that blocks you cannot be reached by SMS."),
    e(30005, "twilio_alert_30005", "Unknown destination handset",
      "The recipient's number does not exist or is no longer in service.",
      "Check the number."),
    e(30006, "twilio_alert_30006", "Landline or unreachable carrier",
      "The recipient's number is a landline or its carrier does not take text messages.",
      "Call the number instead."),
    e(30007, "twilio_alert_30007", "Message filtered",
      "The carrier filtered the message as spam.",
      "In the US, register the number for A2P 10DLC (Twilio console → Messaging → Regulatory compliance); avoid link shorteners in messages."),
    e(30008, "twilio_alert_30008", "Unknown error",
      "The carrier refused the message without saying why.",
      "Send it again; if it keeps failing, give Twilio support the message's SID from the alert."),
    e(32009, "twilio_alert_32009", "User not registered with the SIP Domain",
      "A call was sent to a user of a Twilio SIP Domain who is not registered there; Homeline's phones register with Homeline, not with Twilio.",
      "Set the SIP public host in Settings → Twilio to this appliance's public name, not to the *.sip.twilio.com domain."),
    e(32011, "twilio_alert_32011", "Error communicating with your SIP infrastructure",
      "Twilio could not hand an incoming call to the appliance over SIP/TLS (no answer, an error, or TLS failed): the caller went to voicemail or heard an error.",
      "Forward TCP 5061 on the router to the Pi, and make sure the certificate is valid for the SIP public host (Twilio needs TLS 1.2 and a trusted certificate)."),
    e(32201, "twilio_alert_32201", "SIP: source IP address not in the access control list",
      "The SIP Domain or trunk refused a call because the sending address is not in its IP access control list.",
      "Homeline authenticates with a credential list: remove the IP access control list from the domain, or add the router's public address to it."),
    e(32202, "twilio_alert_32202", "SIP: bad user credentials",
      "The SIP Domain refused Homeline's call: the user name or password does not match its credential list.",
      "Put the SIP user name and password shown in Settings → Twilio into the domain's credential list (or set the list's password here)."),
    e(32209, "twilio_alert_32209", "SIP: secure transport required",
      "Secure media is on for the SIP Domain or trunk, so Twilio refuses calls that arrive over UDP or TCP, as Homeline's do.",
      "Turn off Secure media in the SIP Domain's settings in the Twilio console."),
];

/// The explanation of `code`, if it is one of the common ones.
pub fn explain(code: u32) -> Option<&'static Explained> {
    EXPLAINED.iter().find(|e| e.code == code)
}

/// Checks for the alerts of the window: one per known code, one for the
/// rest, one "ok" when there are none.
pub fn checks(alerts: &[Alert]) -> Vec<Check> {
    let relevant: Vec<&Alert> = alerts
        .iter()
        .filter(|a| matches!(a.log_level.as_str(), "error" | "warning"))
        .collect();
    if relevant.is_empty() {
        return vec![Check::ok(
            "twilio_alerts",
            "Twilio's error log",
            format!("no errors or warnings from Twilio in the last {WINDOW_HOURS} hours"),
        )];
    }
    let mut by_code: BTreeMap<Option<u32>, Vec<&Alert>> = BTreeMap::new();
    for a in relevant {
        by_code.entry(a.error_code).or_default().push(a);
    }
    let mut out = Vec::new();
    let mut other = Vec::new();
    let mut other_error = false;
    for (code, group) in &by_code {
        let is_error = group.iter().any(|a| a.log_level == "error");
        match code.and_then(explain) {
            Some(x) => {
                let detail = format!("{} {}", summary(group), x.meaning);
                let title = format!("Twilio error {}: {}", x.code, x.name);
                out.push(if is_error {
                    Check::error(x.id, title, detail, x.fix)
                } else {
                    Check::warning(x.id, title, detail, x.fix)
                });
            }
            None => {
                other_error |= is_error;
                let c = code.map_or("without a code".to_string(), |c| c.to_string());
                other.push(format!("{c}: {}", summary(group)));
            }
        }
    }
    if !other.is_empty() {
        let (title, detail) = ("Other Twilio errors", other.join("; "));
        let fix = "Look each code up at https://www.twilio.com/docs/errors/<code>, or open the \
                   Twilio console's Monitor → Logs → Errors for the full request.";
        out.push(if other_error {
            Check::error("twilio_alerts_other", title, detail, fix)
        } else {
            Check::warning("twilio_alerts_other", title, detail, fix)
        });
    }
    out
}

/// "3 times in the last 24 hours, last at … (URL)."
fn summary(group: &[&Alert]) -> String {
    let last = group
        .iter()
        .filter_map(|a| a.date_created.as_deref())
        .max()
        .unwrap_or("an unknown time");
    let url = group
        .iter()
        .find_map(|a| a.request_url.as_deref().filter(|u| !u.is_empty()));
    let times = if group.len() == 1 {
        "once".to_string()
    } else {
        format!("{} times", group.len())
    };
    match url {
        Some(u) => format!("{times} in the last {WINDOW_HOURS} hours, last at {last} ({u})."),
        None => format!("{times} in the last {WINDOW_HOURS} hours, last at {last}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn alert(code: u32, level: &str, at: &str) -> Alert {
        Alert {
            sid: String::new(),
            error_code: Some(code),
            log_level: level.into(),
            date_created: Some(at.into()),
            alert_text: None,
            request_url: Some("https://home.example.org/api/webhooks/voice/incoming".into()),
            resource_sid: None,
        }
    }

    #[test]
    fn no_alerts_is_ok() {
        let c = checks(&[]);
        assert_eq!((c.len(), c[0].status), (1, Status::Ok));
        let notices = checks(&[alert(11200, "notice", "2026-12-01T10:00:00Z")]);
        assert_eq!(notices[0].status, Status::Ok);
    }

    #[test]
    fn alerts_are_grouped_by_code_and_explained() {
        let c = checks(&[
            alert(11200, "error", "2026-12-01T10:00:00Z"),
            alert(11200, "error", "2026-12-01T11:00:00Z"),
            alert(32209, "error", "2026-12-01T09:00:00Z"),
            alert(99999, "warning", "2026-12-01T09:00:00Z"),
        ]);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].id, "twilio_alert_11200");
        assert_eq!(c[0].status, Status::Error);
        assert!(
            c[0].detail
                .starts_with("2 times in the last 24 hours, last at 2026-12-01T11:00:00Z"),
            "{:?}",
            c[0]
        );
        assert!(c[0]
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("forwards TCP 443"));
        assert_eq!(c[1].id, "twilio_alert_32209");
        assert!(c[1].fix.as_deref().unwrap_or("").contains("Secure media"));
        assert_eq!(
            (c[2].id, c[2].status),
            ("twilio_alerts_other", Status::Warning)
        );
    }

    #[test]
    fn the_common_codes_are_all_explained_once() {
        for code in [
            11200, 11205, 11750, 12100, 12300, 13225, 13227, 21211, 30003, 30004, 30005, 30006,
            30007, 30008, 32009, 32011, 32201, 32202, 32209,
        ] {
            let x = explain(code).unwrap_or_else(|| panic!("{code} explained"));
            assert!(x.id.ends_with(&code.to_string()));
        }
        let mut ids: Vec<_> = EXPLAINED.iter().map(|x| x.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EXPLAINED.len());
    }
}
