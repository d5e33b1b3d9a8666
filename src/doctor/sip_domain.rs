//! Is the SIP Domain set up the way Homeline uses it? Outgoing calls go from
//! Homeline to `twilio.sip_domain` over UDP with plain RTP, answering
//! Twilio's challenge with `twilio.sip_username`; Twilio then asks
//! `<public_url>/api/webhooks/voice/sip-domain` (POST) what to do. So the
//! domain must exist in the account, have that voice URL, authenticate calls
//! with a credential list holding our user name, and not require secure
//! media (TLS + SRTP, which Homeline does not send to Twilio).

use super::Check;
use crate::twilio::sip_domains::{CredentialListRef, SipDomain};

const ID: &str = "sip_domain";
const TITLE: &str = "SIP Domain settings";

/// What Twilio says about the configured domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    /// The domain.
    pub domain: SipDomain,
    /// Credential lists mapped for calls, with their user names.
    pub credential_lists: Vec<(CredentialListRef, Vec<String>)>,
}

/// What Homeline is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// `twilio.sip_mode = trunk`: Elastic SIP Trunking instead of a domain.
    pub trunking: bool,
    /// `twilio.sip_domain`.
    pub domain: Option<&'a str>,
    /// `twilio.sip_username` (generated when first shown).
    pub username: Option<&'a str>,
    /// `system.public_url`.
    pub public_url: Option<&'a str>,
}

/// The webhook a domain's *A call comes in* must name.
pub fn voice_url(public_url: &str) -> String {
    format!(
        "{}/api/webhooks/voice/sip-domain",
        public_url.trim_end_matches('/')
    )
}

/// The check. `found` is `None` when the account has no such domain.
pub fn check(w: Wanted<'_>, found: Option<&DomainFacts>) -> Check {
    if w.trunking {
        return Check::ok(
            ID,
            TITLE,
            "Elastic SIP Trunking mode: the trunk's settings are made in the Twilio console and not read by this check",
        );
    }
    let Some(name) = w.domain else {
        return Check::error(
            ID,
            TITLE,
            "no SIP Domain is set (twilio.sip_domain): calls from the phones to outside numbers fail",
            "In the Twilio console create a SIP Domain (Voice → Manage → SIP domains), then enter \
             its name (myhome.sip.twilio.com) in Settings → Twilio.",
        );
    };
    let Some(f) = found else {
        return Check::error(
            ID,
            TITLE,
            format!("the Twilio account has no SIP Domain {name}"),
            "Create it in the Twilio console (Voice → Manage → SIP domains), or correct the name \
             in Settings → Twilio.",
        );
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if let Some(public) = w.public_url {
        let want = voice_url(public);
        match f.domain.voice_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) if u == want => {}
            Some(u) => problems.push(format!("calls go to {u} instead of {want}")),
            None => problems.push(format!("no *A call comes in* URL (should be {want})")),
        }
        if f.domain
            .voice_method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case("POST"))
        {
            problems.push("the webhook method is not POST".into());
        }
        if !problems.is_empty() {
            fixes.push(format!(
                "In the domain's settings set *A call comes in* to Webhook {want}, HTTP POST."
            ));
        }
    }
    if f.domain.secure {
        problems.push(
            "Secure media is on: Twilio then refuses Homeline's calls over UDP (error 32209)"
                .into(),
        );
        fixes.push("Turn off Secure media in the domain's settings.".into());
    }
    if f.credential_lists.is_empty() {
        problems.push(
            "no credential list authenticates calls: Twilio blocks every call to the domain".into(),
        );
        fixes.push(format!(
            "Under Voice Authentication → Credential lists add a list with the user name and \
             password shown by Settings → Twilio ({}).",
            w.username.unwrap_or("twilio.sip_username")
        ));
    } else if let Some(user) = w.username {
        if !f
            .credential_lists
            .iter()
            .any(|(_, users)| users.iter().any(|u| u == user))
        {
            let names: Vec<&str> = f
                .credential_lists
                .iter()
                .map(|(l, _)| l.friendly_name.as_str())
                .collect();
            problems.push(format!(
                "none of its credential lists ({}) has the user {user}",
                names.join(", ")
            ));
            fixes.push(format!(
                "Add the user {user} with the password shown by Settings → Twilio to one of the \
                 domain's credential lists."
            ));
        }
    }
    if problems.is_empty() {
        return Check::ok(
            ID,
            TITLE,
            format!(
                "{name}: calls are authenticated with our SIP login and handled by this appliance"
            ),
        );
    }
    Check::error(
        ID,
        TITLE,
        format!("{name}: {}", problems.join("; ")),
        fixes.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const PUBLIC: &str = "https://home.example.org";

    fn wanted() -> Wanted<'static> {
        Wanted {
            trunking: false,
            domain: Some("myhome.sip.twilio.com"),
            username: Some("homeline-abc"),
            public_url: Some(PUBLIC),
        }
    }

    fn facts() -> DomainFacts {
        DomainFacts {
            domain: SipDomain {
                sid: "SD0123456789abcdef0123456789abcdef".into(),
                domain_name: "myhome.sip.twilio.com".into(),
                voice_url: Some(voice_url(PUBLIC)),
                voice_method: Some("POST".into()),
                secure: false,
            },
            credential_lists: vec![(
                CredentialListRef {
                    sid: "CL0123456789abcdef0123456789abcdef".into(),
                    friendly_name: "Homeline".into(),
                },
                vec!["homeline-abc".into()],
            )],
        }
    }

    #[test]
    fn a_domain_set_up_as_homeline_needs_is_ok() {
        let c = check(wanted(), Some(&facts()));
        assert_eq!(c.status, Status::Ok, "{c:?}");
    }

    #[test]
    fn each_wrong_setting_is_named_with_its_fix() {
        let mut f = facts();
        f.domain.voice_url = Some("https://elsewhere.example/x".into());
        f.domain.secure = true;
        f.credential_lists[0].1 = vec!["someone".into()];
        let c = check(wanted(), Some(&f));
        assert_eq!(c.status, Status::Error);
        assert!(
            c.detail.contains("calls go to https://elsewhere.example/x"),
            "{c:?}"
        );
        assert!(c.detail.contains("Secure media is on"), "{c:?}");
        assert!(c.detail.contains("has the user homeline-abc"), "{c:?}");
        assert!(c
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("Turn off Secure media"));
        f.credential_lists.clear();
        assert!(check(wanted(), Some(&f))
            .detail
            .contains("no credential list"));
        assert_eq!(check(wanted(), None).status, Status::Error);
        let none = Wanted {
            domain: None,
            ..wanted()
        };
        assert_eq!(check(none, None).status, Status::Error);
        let trunk = Wanted {
            trunking: true,
            ..wanted()
        };
        assert_eq!(check(trunk, None).status, Status::Ok);
    }
}
