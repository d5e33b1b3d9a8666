//! Twilio's webhook signature (`X-Twilio-Signature`): base64 of
//! HMAC-SHA1(auth token, full URL + each POST parameter's name and value,
//! sorted by name, then by value).
//!
//! The URL is the public one Twilio called (from `system.public_url`, never
//! the `Host` header: behind a port-forward or proxy the two differ), with
//! the query string. Like Twilio's own `RequestValidator`, the check accepts
//! the URL with and without the scheme's default port, because Twilio is not
//! consistent about it. The comparison is constant-time (`ring::hmac::verify`).

use base64::Engine as _;
use ring::hmac;

/// The string Twilio signs: the URL, then `name` + `value` for every
/// parameter, names sorted, and each name's values sorted (duplicates once,
/// as `RequestValidator` does).
fn signed_payload(url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut s = String::with_capacity(url.len() + pairs.len() * 24);
    s.push_str(url);
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// The signature Twilio would send for a form POST to `url` with `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let tag = hmac::sign(&key, signed_payload(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// `url` with the scheme's default port written out, and without any port:
/// the two forms `RequestValidator.validate` tries.
fn port_variants(url: &str) -> [String; 2] {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    // A port is what follows the last ':' after any IPv6 bracket.
    let bracket_end = hostport.rfind(']').map_or(0, |i| i + 1);
    let host = match hostport[bracket_end..].rfind(':') {
        Some(i) => &hostport[..bracket_end + i],
        None => hostport,
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    let with = if host.len() == hostport.len() {
        format!("{scheme}://{userinfo}{host}:{default_port}{tail}")
    } else {
        url.to_string()
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    [with, without]
}

/// Whether `signature` (the header's value) is Twilio's signature of this
/// request. Constant-time; a malformed header is simply invalid.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    port_variants(url)
        .iter()
        .any(|u| hmac::verify(&key, signed_payload(u, params).as_bytes(), &tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The vectors of twilio-python's `tests/unit/test_request_validator.py`
    /// (token `12345`), which its `RequestValidator` passes.
    #[test]
    fn twilio_published_vectors() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            compute("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(is_valid(
            "12345",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Twilio signed it with :443; we are configured without.
        assert!(is_valid(
            "12345",
            url,
            &params,
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert!(is_valid(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut dup = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute("12345", url, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        // Order of arrival does not matter.
        dup.reverse();
        assert_eq!(compute("12345", url, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn wrong_token_url_params_or_header_are_rejected() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = p(&[("CallSid", "CA1234567890ABCDE"), ("Digits", "1234")]);
        let good = compute("12345", url, &params);
        assert!(is_valid("12345", url, &params, &good));
        assert!(!is_valid("54321", url, &params, &good));
        assert!(!is_valid(
            "12345",
            "https://mycompany.com/other.php?foo=1&bar=2",
            &params,
            &good
        ));
        assert!(!is_valid(
            "12345",
            "https://mycompany.com/myapp.php",
            &params,
            &good
        ));
        assert!(!is_valid("12345", url, &p(&[("CallSid", "CA1")]), &good));
        for bad in ["", "not base64!", "AAAA", &good[..good.len() - 2]] {
            assert!(!is_valid("12345", url, &params, bad), "{bad:?}");
        }
    }

    #[test]
    fn port_forms() {
        assert_eq!(
            port_variants("https://h.example/p?q=1"),
            [
                "https://h.example:443/p?q=1".to_string(),
                "https://h.example/p?q=1".to_string()
            ]
        );
        assert_eq!(
            port_variants("http://[::1]:8080/p"),
            [
                "http://[::1]:8080/p".to_string(),
                "http://[::1]/p".to_string()
            ]
        );
        assert_eq!(
            port_variants("http://h"),
            ["http://h:80".to_string(), "http://h".to_string()]
        );
    }
}
