//! Does the public name lead to this home? The DNS answers for the name
//! Twilio and browsers use (the host of `system.public_url`) against the
//! router's public address found by [`crate::netaddr`].

use std::net::IpAddr;

use super::Check;

const ID: &str = "public_address";
const TITLE: &str = "Public name and address";

/// `public_ip` is the router's public address (`source`: `upnp`, `stun`…),
/// `name` the public name, `resolved` what DNS answers for it.
pub fn check(
    public_ip: Option<IpAddr>,
    source: &str,
    name: Option<&str>,
    resolved: &[IpAddr],
) -> Check {
    let Some(ip) = public_ip else {
        return Check::warning(
            ID,
            TITLE,
            "The router's public address is not known.",
            "Turn on \"Learn the public address\" (net.discover_public_ip) or enter it in media.public_ip, then check again in Settings → Router & address.",
        );
    };
    if !crate::netaddr::is_public(ip) {
        return Check::error(
            ID,
            TITLE,
            format!("The router's address {ip} (from {source}) is a private one: the router itself sits behind another router or your provider's carrier-grade NAT, so the internet cannot reach this home."),
            "Put the provider's box in bridge mode, or ask your provider for a public IPv4 address.",
        );
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Check::warning(
            ID,
            TITLE,
            format!("The public address is {ip} (from {source}), but no public name is set."),
            "Set the public URL (Settings → System), e.g. https://myhome.duckdns.org with a DuckDNS name.",
        );
    };
    let literal = name.trim_matches(['[', ']']).parse::<IpAddr>().ok();
    if let Some(lit) = literal {
        return if lit == ip {
            Check::ok(
                ID,
                TITLE,
                format!("The public URL names this home's address {ip} directly."),
            )
        } else {
            Check::error(
                ID,
                TITLE,
                format!("The public URL names {lit}, but this home's address is now {ip}."),
                "Use a name that follows the address (a DuckDNS name in Settings → Router & address) instead of a fixed address.",
            )
        };
    }
    if resolved.is_empty() {
        return Check::error(
            ID,
            TITLE,
            format!("{name} does not resolve to any address."),
            format!("Check the spelling of {name}, and that its DNS record exists (with DuckDNS: the name and token in Settings → Router & address)."),
        );
    }
    if resolved.contains(&ip) {
        return Check::ok(
            ID,
            TITLE,
            format!("{name} points at this home's address {ip} (from {source})."),
        );
    }
    let shown: Vec<String> = resolved.iter().map(IpAddr::to_string).collect();
    Check::error(
        ID,
        TITLE,
        format!("{name} points at {}, but this home's address is {ip} (from {source}).", shown.join(", ")),
        "Update the name's DNS record to the new address, or let Homeline keep it up to date with DuckDNS (Settings → Router & address).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_name_pointing_at_the_public_address_is_ok() {
        let c = check(
            Some(ip("203.0.113.5")),
            "upnp",
            Some("myhome.duckdns.org"),
            &[ip("203.0.113.5")],
        );
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.fix.is_none());
    }

    #[test]
    fn a_stale_record_a_missing_record_and_a_private_address_are_errors() {
        let stale = check(
            Some(ip("203.0.113.5")),
            "stun",
            Some("myhome.duckdns.org"),
            &[ip("198.51.100.1")],
        );
        assert_eq!(stale.status, Status::Error);
        assert!(stale.detail.contains("198.51.100.1") && stale.detail.contains("203.0.113.5"));
        let missing = check(Some(ip("203.0.113.5")), "stun", Some("nope.example"), &[]);
        assert_eq!(missing.status, Status::Error);
        let cgnat = check(
            Some(ip("100.64.3.4")),
            "nat-pmp",
            Some("x.example"),
            &[ip("100.64.3.4")],
        );
        assert_eq!(cgnat.status, Status::Error);
        assert!(cgnat.detail.contains("carrier-grade"));
        let literal = check(Some(ip("203.0.113.5")), "upnp", Some("203.0.113.9"), &[]);
        assert_eq!(literal.status, Status::Error);
    }

    #[test]
    fn unknown_address_or_no_name_is_a_warning() {
        assert_eq!(
            check(None, "none", Some("x.example"), &[]).status,
            Status::Warning
        );
        assert_eq!(
            check(Some(ip("203.0.113.5")), "upnp", None, &[]).status,
            Status::Warning
        );
    }
}
