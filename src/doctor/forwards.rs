//! Are the router's forwards open? What [`crate::netaddr`] found when it
//! asked the router (UPnP-IGD or NAT-PMP) for each forward Homeline needs.

use super::Check;
use crate::netaddr::{MappingState, MappingStatus};

const ID: &str = "forwards";
const TITLE: &str = "Router forwards";

fn label(m: &MappingState) -> String {
    let ports = if m.external_first == m.external_last {
        m.external_first.to_string()
    } else {
        format!("{}-{}", m.external_first, m.external_last)
    };
    format!("{} ({} {ports})", m.name, m.protocol.upnp())
}

/// `mappings` are the forwards' states; `auto_forward` whether the admin
/// agreed that Homeline asks the router for them.
pub fn check(mappings: &[MappingState], auto_forward: bool) -> Check {
    if !auto_forward {
        return Check::ok(
            ID,
            TITLE,
            "Homeline does not ask the router for forwards: they are set by hand (see the checklist in the setup wizard).",
        );
    }
    if mappings.is_empty() {
        return Check::warning(
            ID,
            TITLE,
            "The router has not been asked for the forwards yet.",
            "Check again in a minute (Settings → Router & address → Check now).",
        );
    }
    let unsupported: Vec<&MappingState> = mappings
        .iter()
        .filter(|m| m.status == MappingStatus::Unsupported)
        .collect();
    if !unsupported.is_empty() && unsupported.len() == mappings.len() {
        return Check::error(
            ID,
            TITLE,
            "The router answers neither UPnP-IGD nor NAT-PMP, so Homeline cannot open the forwards.",
            "Turn on UPnP (or NAT-PMP) in the router's settings, or forward the ports by hand as the setup wizard lists them.",
        );
    }
    let refused: Vec<String> = mappings
        .iter()
        .filter(|m| {
            matches!(
                m.status,
                MappingStatus::Refused | MappingStatus::Unsupported
            )
        })
        .map(|m| {
            format!(
                "{}: {}",
                label(m),
                m.detail.clone().unwrap_or_else(|| "refused".into())
            )
        })
        .collect();
    if !refused.is_empty() {
        return Check::error(
            ID,
            TITLE,
            format!("The router refused: {}.", refused.join("; ")),
            "Free these ports on the router (another device may use them) or forward them by hand to this Homeline.",
        );
    }
    let off: Vec<String> = mappings
        .iter()
        .filter(|m| m.status == MappingStatus::Off)
        .map(label)
        .collect();
    if !off.is_empty() {
        return Check::warning(
            ID,
            TITLE,
            format!("Not open yet: {}.", off.join(", ")),
            "Check again in a minute (Settings → Router & address → Check now).",
        );
    }
    let all: Vec<String> = mappings.iter().map(label).collect();
    Check::ok(
        ID,
        TITLE,
        format!("The router forwards {}.", all.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::netaddr::{Protocol, Source};

    fn m(name: &str, status: MappingStatus, detail: Option<&str>) -> MappingState {
        MappingState {
            name: name.into(),
            protocol: Protocol::Tcp,
            external_first: 5061,
            external_last: 5061,
            internal_port: 5061,
            status,
            detail: detail.map(str::to_string),
            via: Some(Source::Upnp),
            expires_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn all_open_is_ok_and_by_hand_is_ok() {
        let c = check(
            &[
                m("sip-tls", MappingStatus::Ok, None),
                m("http", MappingStatus::Ok, None),
            ],
            true,
        );
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.detail.contains("sip-tls (TCP 5061)"));
        assert_eq!(check(&[], false).status, Status::Ok);
    }

    #[test]
    fn refused_or_unsupported_is_an_error_with_the_routers_reason() {
        let c = check(
            &[
                m("sip-tls", MappingStatus::Ok, None),
                m(
                    "http",
                    MappingStatus::Refused,
                    Some("UPnP error 718 ConflictInMappingEntry"),
                ),
            ],
            true,
        );
        assert_eq!(c.status, Status::Error);
        assert!(c.detail.contains("718"), "{c:?}");
        let u = check(&[m("rtp", MappingStatus::Unsupported, None)], true);
        assert_eq!(u.status, Status::Error);
        assert!(u.fix.as_deref().is_some_and(|f| f.contains("UPnP")));
        assert_eq!(check(&[], true).status, Status::Warning);
    }
}
