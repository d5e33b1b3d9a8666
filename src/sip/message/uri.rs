//! SIP URIs (RFC 3261 §19.1), name-addr / addr-spec values and `;params`.

use std::fmt;

use super::is_token_char;

/// `;name=value` parameters, in order; names compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=1;b;c="x"` (leading `;` required for each; LWS tolerated).
    /// An empty name (`;;`) is an error.
    pub fn parse(s: &str) -> Option<Params> {
        Self::read::<true>(s)
    }

    /// Whether [`Params::parse`] accepts `s`, without building anything.
    pub fn is_valid(s: &str) -> bool {
        Self::read::<false>(s).is_some()
    }

    /// The one parser behind both: the same checks in the same order;
    /// only with `BUILD` are the parameters copied out (the parser's
    /// validator built and dropped every From, To and Contact of every
    /// request: found by benches/register_load.sh).
    fn read<const BUILD: bool>(s: &str) -> Option<Params> {
        let s = s.trim();
        if s.is_empty() {
            return Some(Params::default());
        }
        let body = s.strip_prefix(';')?;
        let mut out = Vec::new();
        // Only a quoted value can hide a ';': without quotes a plain split
        // gives the same parts without collecting them first.
        let (mut quoted, mut plain);
        let parts: &mut dyn Iterator<Item = &str> = if body.contains('"') {
            quoted = split_outside_quotes(body, ';').into_iter();
            &mut quoted
        } else {
            plain = body.split(';');
            &mut plain
        };
        for part in parts {
            let part = part.trim();
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (part, None),
            };
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return None;
            }
            if let Some(v) = value {
                let ok = if v.starts_with('"') {
                    v.len() >= 2 && v.ends_with('"') && !v.ends_with("\\\"")
                } else {
                    !v.is_empty() && v.bytes().all(|b| is_token_char(b) || b"[]:".contains(&b))
                };
                if !ok {
                    return None;
                }
            }
            if BUILD {
                out.push((name.to_ascii_lowercase(), value.map(str::to_string)));
            }
        }
        Some(Params(out))
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets or adds a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut esc) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
        } else if c == '\\' && quoted {
            esc = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// A URI: SIP/SIPS parsed into parts; any other scheme kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// Scheme, lower case (`sip`, `sips`, `tel`, …).
    pub scheme: String,
    /// User part, still %-escaped (SIP/SIPS only).
    pub user: Option<String>,
    /// Host (SIP/SIPS only; IPv6 with brackets).
    pub host: String,
    /// Port (SIP/SIPS only).
    pub port: Option<u16>,
    /// URI parameters (SIP/SIPS only).
    pub params: Params,
    /// The `?headers` part, still escaped (SIP/SIPS only).
    pub headers: Option<String>,
    /// Everything after `scheme:` for other schemes.
    pub opaque: Option<String>,
}

impl Uri {
    /// Parses a URI; `None` if it is not one (spaces, brackets, bad host…).
    pub fn parse(s: &str) -> Option<Uri> {
        Self::read::<true>(s)
    }

    /// Whether [`Uri::parse`] accepts `s`, without building anything.
    pub fn is_valid(s: &str) -> bool {
        Self::read::<false>(s).is_some()
    }

    /// Both: the same checks; only with `BUILD` are the parts copied out
    /// (see [`Params::read`]).
    fn read<const BUILD: bool>(s: &str) -> Option<Uri> {
        let (scheme, rest) = s.split_once(':')?;
        let mut sb = scheme.bytes();
        if !sb.next()?.is_ascii_alphabetic()
            || !sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        if rest.is_empty()
            || rest
                .bytes()
                .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"' || b == 0x7f)
        {
            return None;
        }
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return Some(Uri {
                scheme: lower::<BUILD>(scheme),
                user: None,
                host: String::new(),
                port: None,
                params: Params::default(),
                headers: None,
                opaque: Some(owned::<BUILD>(rest)),
            });
        }
        let scheme = lower::<BUILD>(scheme);
        // An unescaped '@' can only end the userinfo (RFC 3261 §25.1), while
        // '?', ';' and ',' are legal inside the user part; so split it first.
        let (user, after_user) = match rest.split_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u), h),
            Some(_) => return None,
            None => (None, rest),
        };
        if let Some(u) = user {
            if !valid_escapes(u) {
                return None;
            }
        }
        let (hostpart, headers) = match after_user.split_once('?') {
            Some((m, h)) if !h.is_empty() => (m, Some(owned::<BUILD>(h))),
            Some(_) => return None,
            None => (after_user, None),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], Params::read::<BUILD>(&hostpart[i..])?),
            None => (hostpart, Params::default()),
        };
        let (host, port) = read_host_port::<BUILD>(hostport)?;
        Some(Uri {
            scheme,
            user: user.map(owned::<BUILD>),
            host,
            port,
            params,
            headers,
            opaque: None,
        })
    }

    /// Whether this is a `sip:` or `sips:` URI.
    pub fn is_sip(&self) -> bool {
        self.opaque.is_none()
    }

    /// The user part with %-escapes decoded once (never recursively).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(unescape)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.opaque {
            return write!(f, "{}:{o}", self.scheme);
        }
        write!(f, "{}:", self.scheme)?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Decodes %XX escapes once; invalid escapes are kept literally.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `host[:port]`, `[v6]:port`; validates the host's characters.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    read_host_port::<true>(s)
}

/// `s` copied, or (without `BUILD`, when only validity counts) nothing.
fn owned<const BUILD: bool>(s: &str) -> String {
    if BUILD {
        s.to_string()
    } else {
        String::new()
    }
}

/// `s` in lower case, or nothing without `BUILD`.
fn lower<const BUILD: bool>(s: &str) -> String {
    if BUILD {
        s.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// [`split_host_port`]; the host is copied out only with `BUILD`.
fn read_host_port<const BUILD: bool>(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let v6 = &rest[..end];
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (HostText::V6(v6), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (HostText::Name(h), Some(p)),
            None => (HostText::Name(s), None),
        }
    };
    if let HostText::Name(host) = host {
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let host = match host {
        _ if !BUILD => String::new(),
        HostText::V6(v6) => format!("[{v6}]"),
        HostText::Name(h) => h.to_string(),
    };
    Some((host, port))
}

/// A sent-by or URI host as written: an IPv6 literal (without its
/// brackets) or a name/IPv4 address.
#[derive(Clone, Copy)]
enum HostText<'a> {
    V6(&'a str),
    Name(&'a str),
}

/// A `From`/`To`/`Contact`/`Route` value: optional display name, a URI, and
/// header parameters (`tag`, `expires`, `q`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, if any.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Parameters after the URI (outside `<>`).
    pub params: Params,
    /// Whether the URI was written in `<>` (kept when serialising).
    pub bracketed: bool,
}

impl NameAddr {
    /// Parses a name-addr or addr-spec; `None` for malformed values
    /// (unterminated quotes, unquoted non-token display names, an
    /// addr-spec carrying `?`…).
    pub fn parse(s: &str) -> Option<NameAddr> {
        Self::read::<true>(s)
    }

    /// Whether [`NameAddr::parse`] accepts `s`, without building anything
    /// (what the parser's validator needs).
    pub fn is_valid(s: &str) -> bool {
        Self::read::<false>(s).is_some()
    }

    /// Both: the same checks; only with `BUILD` are the parts copied out
    /// (see [`Params::read`]).
    fn read<const BUILD: bool>(s: &str) -> Option<NameAddr> {
        let s = s.trim();
        let (display, rest) = if let Some(q) = s.strip_prefix('"') {
            let end = closing_quote(q)?;
            let name = &q[..end];
            let after = q[end + 1..].trim_start();
            if !after.starts_with('<') {
                return None;
            }
            (
                Some(if BUILD {
                    name.replace("\\\"", "\"").replace("\\\\", "\\")
                } else {
                    String::new()
                }),
                after,
            )
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim();
            if !name
                .bytes()
                .all(|b| is_token_char(b) || b == b' ' || b == b'\t')
            {
                return None;
            }
            (
                if name.is_empty() {
                    None
                } else {
                    Some(owned::<BUILD>(name))
                },
                &s[lt..],
            )
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let end = inner.find('>')?;
            let uri = Uri::read::<BUILD>(inner[..end].trim())?;
            let params = Params::read::<BUILD>(&inner[end + 1..])?;
            return Some(NameAddr {
                display,
                uri,
                params,
                bracketed: true,
            });
        }
        // addr-spec: parameters after the URI belong to the header.
        let (uri_text, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Params::read::<BUILD>(&rest[i..])?),
            None => (rest, Params::default()),
        };
        if uri_text.contains('?') || uri_text.contains(',') {
            return None;
        }
        Some(NameAddr {
            display: None,
            uri: Uri::read::<BUILD>(uri_text.trim())?,
            params,
            bracketed: false,
        })
    }
}

impl NameAddr {
    /// One header parameter (`tag`, `expires`…) of a name-addr or
    /// addr-spec value, found where [`NameAddr::parse`] finds the header
    /// parameters but without parsing the URI or copying anything:
    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None`
    /// if absent. For a value `parse` accepts, the same as
    /// `parse(value)?.params.get(name)`; it does not validate, so use it on
    /// values the parser has already checked (the merge index read the
    /// From tag with a full parse of every request's From: found by
    /// benches/register_load.sh).
    pub fn param_of<'a>(value: &'a str, name: &str) -> Option<Option<&'a str>> {
        let s = value.trim();
        let rest = if let Some(q) = s.strip_prefix('"') {
            let end = closing_quote(q)?;
            q[end + 1..].trim_start()
        } else if let Some(lt) = s.find('<') {
            &s[lt..]
        } else {
            s
        };
        let params = match rest.strip_prefix('<') {
            Some(inner) => &inner[inner.find('>')? + 1..],
            None => &rest[rest.find(';')?..],
        };
        let body = params.trim().strip_prefix(';')?;
        split_outside_quotes(body, ';')
            .into_iter()
            .find_map(|part| {
                let part = part.trim();
                let (n, v) = match part.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim())),
                    None => (part, None),
                };
                n.eq_ignore_ascii_case(name).then_some(v)
            })
    }
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_of_finds_what_the_full_parse_finds() {
        for v in [
            "<sip:a@h>;tag=1",
            "\"A; b <x>\" <sip:a@h;tag=no>;TAG=2;x",
            "Bob <sip:b@h?x=1>; tag = 3 ",
            "sip:a@h;tag=4;expires=60",
            "sip:a@h",
            "<sip:a@h;tag=uri-only>",
            "<sip:a@h>;x=\"q;tag=not\";tag",
            "<sip:a@h>;expires=30",
        ] {
            let full = NameAddr::parse(v).expect(v);
            for name in ["tag", "expires", "x"] {
                assert_eq!(
                    NameAddr::param_of(v, name),
                    full.params.get(name),
                    "{name} of {v}"
                );
            }
        }
    }

    #[test]
    fn sip_uris() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").expect("semiuri");
        assert_eq!(
            (u.user.as_deref(), u.host.as_str()),
            (Some("user;par=u%40example.net"), "example.com")
        );
        assert_eq!(
            u.user_unescaped().as_deref(),
            Some("user;par=u@example.net")
        );
        let u = Uri::parse("sips:[2001:db8::10]:5061;transport=tls;lr").expect("v6");
        assert_eq!(
            (u.host.as_str(), u.port, u.params.get("lr")),
            ("[2001:db8::10]", Some(5061), Some(None))
        );
        assert_eq!(u.to_string(), "sips:[2001:db8::10]:5061;transport=tls;lr");
        let u = Uri::parse("sip:null-%00-null@example.com").expect("escnull");
        assert_eq!(u.user_unescaped().as_deref(), Some("null-\0-null"));
        assert_eq!(
            Uri::parse("sip:u@h?Route=%3Csip:x%3E").and_then(|u| u.headers),
            Some("Route=%3Csip:x%3E".into())
        );
        assert!(Uri::parse("tel:+1-555-1234").is_some_and(|u| !u.is_sip()));
        let u = Uri::parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com")
            .expect("intmeth");
        assert_eq!((u.host.as_str(), u.headers), ("example.com", None));
        for bad in [
            "<sip:u@h>",
            "sip:u@h; lr",
            "sip:",
            "sip:@h",
            "sip:u@h:99999",
            "sip:u@h:x",
            "sip:u%zz@h",
            "1sip:x",
            "sip:u@ho st",
        ] {
            assert!(Uri::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn name_addrs() {
        let n = NameAddr::parse(r#""J Rosenberg \"" <sip:jdrosen@example.com>;tag=98asjd8"#)
            .expect("quoted");
        assert_eq!(
            (n.display.as_deref(), n.params.get("tag")),
            (Some("J Rosenberg \""), Some(Some("98asjd8")))
        );
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").expect("lwsdisp");
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n =
            NameAddr::parse("sip:+1-972-555-2222@gw1.example.net;unknownparam").expect("cparam01");
        assert_eq!(
            (
                n.uri.params.get("unknownparam"),
                n.params.get("unknownparam")
            ),
            (None, Some(None))
        );
        let n = NameAddr::parse("<sip:+1-972-555-2222@gw1.example.net;unknownparam>")
            .expect("cparam02");
        assert_eq!(n.uri.params.get("unknownparam"), Some(None));
        let n = NameAddr::parse("< sip:t.watson@example.org >").expect("badaspec tolerated");
        assert_eq!(n.uri.host, "example.org");
        assert!(
            NameAddr::parse("\"Mr J. User <sip:j.user@example.com>").is_none(),
            "quotbal"
        );
        assert!(
            NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none(),
            "regbadct"
        );
        assert!(NameAddr::parse("<sip:u@h>;;").is_none(), "badinv01");
        assert_eq!(
            NameAddr::parse("\"A\" <sip:a@b>")
                .map(|n| n.to_string())
                .as_deref(),
            Some("\"A\" <sip:a@b>")
        );
    }

    #[test]
    fn params() {
        let p = Params::parse("; branch=z9hG4bK1 ;rport; received=192.0.2.1").expect("params");
        assert_eq!(
            (p.get("BRANCH"), p.get("rport"), p.get("x")),
            (Some(Some("z9hG4bK1")), Some(None), None)
        );
        assert!(Params::parse(";;").is_none());
        assert!(Params::parse(";a=").is_none());
        assert!(Params::parse("a=1").is_none(), "must start with ;");
        let q = Params::parse(";x=\"a;b\";y").expect("quoted");
        assert_eq!(
            (q.get("x"), q.get("y"), q.0.len()),
            (Some(Some("\"a;b\"")), Some(None), 2),
            "a ';' inside quotes does not split"
        );
    }
}
