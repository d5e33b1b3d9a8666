//! Does each number send its calls and messages here? Twilio's
//! IncomingPhoneNumbers say where a number's *A call comes in*, *A message
//! comes in* and status callback go; each must be this appliance's
//! `system.public_url` plus the webhook path the Numbers page's "Connect"
//! sets (see `http::twilio_admin`).

use super::Check;
use crate::twilio::client::IncomingNumber;

const ID: &str = "numbers";
const TITLE: &str = "Numbers point at this appliance";

/// A number Homeline handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurNumber {
    /// E.164.
    pub number: String,
    /// Its IncomingPhoneNumber SID, once linked.
    pub twilio_sid: Option<String>,
}

/// The webhook URLs "Connect" gives a number, for `public_url`.
pub fn expected(public_url: &str) -> [(&'static str, String); 3] {
    let p = public_url.trim_end_matches('/');
    [
        ("calls", format!("{p}/api/webhooks/voice/incoming")),
        ("messages", format!("{p}/api/webhooks/sms/incoming")),
        ("call status", format!("{p}/api/webhooks/voice/status")),
    ]
}

/// The check, from Homeline's numbers, Twilio's list and the public URL.
pub fn check(ours: &[OurNumber], at_twilio: &[IncomingNumber], public_url: Option<&str>) -> Check {
    let Some(public_url) = public_url else {
        return Check::error(
            ID,
            TITLE,
            "the appliance's public URL (system.public_url) is not set, so Twilio cannot be told where to send calls",
            "Set the public URL in Settings → System (e.g. https://myhome.example.org), then press Connect on the Numbers page.",
        );
    };
    if ours.is_empty() {
        return Check::warning(
            ID,
            TITLE,
            "Homeline has no phone number yet",
            "Open the Numbers page and press Connect next to your Twilio number.",
        );
    }
    let want = expected(public_url);
    let mut problems = Vec::new();
    for n in ours {
        let Some(t) = at_twilio
            .iter()
            .find(|t| Some(&t.sid) == n.twilio_sid.as_ref() || t.phone_number == n.number)
        else {
            problems.push(format!("{} is not in the Twilio account", n.number));
            continue;
        };
        let have = [&t.voice_url, &t.sms_url, &t.status_callback];
        for ((what, url), got) in want.iter().zip(have) {
            match got.as_deref().filter(|u| !u.is_empty()) {
                Some(g) if g == url => {}
                Some(g) => {
                    problems.push(format!("{}: {what} go to {g} instead of {url}", n.number))
                }
                None => problems.push(format!("{}: {what} go nowhere (should be {url})", n.number)),
            }
        }
    }
    if problems.is_empty() {
        let list: Vec<&str> = ours.iter().map(|n| n.number.as_str()).collect();
        return Check::ok(
            ID,
            TITLE,
            format!(
                "{} send calls and messages to {public_url}",
                list.join(", ")
            ),
        );
    }
    Check::error(
        ID,
        TITLE,
        problems.join("; "),
        "On the Numbers page press Connect next to each number named: it points the number's \
         webhooks at this appliance. A number missing from the account was released or belongs \
         to another Twilio account.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const PUBLIC: &str = "https://home.example.org";

    fn ours() -> Vec<OurNumber> {
        vec![OurNumber {
            number: "+15551230009".into(),
            twilio_sid: Some("PN0123456789abcdef0123456789abcdef".into()),
        }]
    }

    fn twilio(voice: &str) -> Vec<IncomingNumber> {
        vec![IncomingNumber {
            sid: "PN0123456789abcdef0123456789abcdef".into(),
            phone_number: "+15551230009".into(),
            friendly_name: String::new(),
            voice_url: Some(voice.into()),
            sms_url: Some(format!("{PUBLIC}/api/webhooks/sms/incoming")),
            status_callback: Some(format!("{PUBLIC}/api/webhooks/voice/status")),
        }]
    }

    #[test]
    fn a_number_pointing_here_is_ok() {
        let c = check(
            &ours(),
            &twilio(&format!("{PUBLIC}/api/webhooks/voice/incoming")),
            Some(PUBLIC),
        );
        assert_eq!(c.status, Status::Ok, "{c:?}");
    }

    #[test]
    fn a_number_pointing_elsewhere_says_where_and_how_to_fix_it() {
        let c = check(
            &ours(),
            &twilio("https://old.example.net/voice"),
            Some(PUBLIC),
        );
        assert_eq!(c.status, Status::Error);
        assert!(c.detail.contains("+15551230009: calls go to https://old.example.net/voice instead of https://home.example.org/api/webhooks/voice/incoming"), "{c:?}");
        assert!(c.fix.as_deref().unwrap_or("").contains("Connect"));
        assert_eq!(check(&ours(), &[], Some(PUBLIC)).status, Status::Error);
        assert_eq!(check(&ours(), &[], None).status, Status::Error);
        assert_eq!(check(&[], &[], Some(PUBLIC)).status, Status::Warning);
    }
}
