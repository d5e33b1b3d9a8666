//! Header names (case-insensitive, compact forms expanded) and the ordered
//! header list.

use std::fmt;

macro_rules! header_names {
    ($($variant:ident = $canonical:literal $(| $compact:literal)?),+ $(,)?) => {
        /// A header name: the headers the stack knows, or any other (kept as sent).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $(#[doc = $canonical] $variant,)+
            /// A header the stack does not interpret; the name as received.
            Other(String),
        }

        impl HeaderName {
            /// Recognises long and compact forms, in any case.
            pub fn parse(name: &str) -> HeaderName {
                $(
                    if name.eq_ignore_ascii_case($canonical) $(|| name.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$variant;
                    }
                )+
                HeaderName::Other(name.to_string())
            }

            /// The canonical spelling used when sending.
            pub fn as_str(&self) -> &str {
                match self {
                    $(HeaderName::$variant => $canonical,)+
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Accept = "Accept",
    Allow = "Allow" ,
    AllowEvents = "Allow-Events" | "u",
    Authorization = "Authorization",
    CallId = "Call-ID" | "i",
    Contact = "Contact" | "m",
    ContentEncoding = "Content-Encoding" | "e",
    ContentLength = "Content-Length" | "l",
    ContentType = "Content-Type" | "c",
    CSeq = "CSeq",
    Event = "Event" | "o",
    Expires = "Expires",
    From = "From" | "f",
    MaxForwards = "Max-Forwards",
    MinExpires = "Min-Expires",
    MinSe = "Min-SE",
    ProxyAuthenticate = "Proxy-Authenticate",
    ProxyAuthorization = "Proxy-Authorization",
    ProxyRequire = "Proxy-Require",
    RAck = "RAck",
    RecordRoute = "Record-Route",
    ReferTo = "Refer-To" | "r",
    ReferredBy = "Referred-By" | "b",
    Require = "Require",
    RetryAfter = "Retry-After",
    RSeq = "RSeq",
    Route = "Route",
    Server = "Server",
    SessionExpires = "Session-Expires" | "x",
    Subject = "Subject" | "s",
    Supported = "Supported" | "k",
    To = "To" | "t",
    Unsupported = "Unsupported",
    UserAgent = "User-Agent",
    Via = "Via" | "v",
    WwwAuthenticate = "WWW-Authenticate",
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Headers in the order received; values unfolded and trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(HeaderName, String)>);

impl Headers {
    /// An empty list with room for `n` lines (a typical request has ~12).
    pub fn with_capacity(n: usize) -> Self {
        Headers(Vec::with_capacity(n))
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push((name, value.into()));
    }

    /// Inserts a header line before all others (e.g. a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(0, (name, value.into()));
    }

    /// Replaces every line of `name` with one line.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                self.0[i].1 = value;
                let mut seen = 0;
                self.0.retain(|(n, _)| {
                    if *n == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.0.push((name, value)),
        }
    }

    /// Removes every line of `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|(n, _)| n != name);
    }

    /// The first line's value.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every line of `name` (a line may hold several comma-separated values).
    pub fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a list header (`Via`, `Contact`, `Route`…), lines and
    /// comma-separated values flattened in order.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> Vec<&'a str> {
        self.values_iter(name).collect()
    }

    /// [`Headers::values`] without collecting them (the parser's checks
    /// only count them or look at the first).
    pub fn values_iter<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.lines(name).flat_map(list_values)
    }

    /// All lines in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &String)> {
        self.0.iter().map(|(n, v)| (n, v))
    }

    /// Mutable access to all lines (for stamping Via parameters).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&HeaderName, &mut String)> {
        self.0.iter_mut().map(|(n, v)| (&*n, v))
    }

    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits a list header value on commas that are outside quoted strings and
/// `<…>`; empty elements are dropped (the caller validates them).
pub fn split_list(value: &str) -> Vec<&str> {
    list_values(value).collect()
}

/// The elements [`split_list`] returns, one at a time (no vector: most
/// values hold one element and are only looked at once).
pub fn list_values(value: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = Some(value);
    std::iter::from_fn(move || loop {
        let v = rest?;
        let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
        let mut end = None;
        // Without a comma the rest is one element: a byte search, not the
        // quote-aware scan (most values hold one element, and the parser's
        // checks look at From, To, Call-ID and CSeq this way: the scan was
        // ~4 % of a REGISTER's instructions).
        let scan = if v.as_bytes().contains(&b',') { v } else { "" };
        for (i, b) in scan.bytes().enumerate() {
            if escaped {
                escaped = false;
                continue;
            }
            match b {
                b'\\' if in_quotes => escaped = true,
                b'"' => in_quotes = !in_quotes,
                b'<' if !in_quotes => in_angle = true,
                b'>' if !in_quotes => in_angle = false,
                b',' if !in_quotes && !in_angle => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let element = match end {
            Some(i) => {
                rest = Some(&v[i + 1..]);
                &v[..i]
            }
            None => {
                rest = None;
                v
            }
        };
        let element = element.trim();
        if !element.is_empty() {
            return Some(element);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_compact_forms_expand() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("VIA"), HeaderName::Via);
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("call-id").as_str(), "Call-ID");
        assert_eq!(
            HeaderName::parse("NewFangledHeader"),
            HeaderName::Other("NewFangledHeader".into())
        );
    }

    #[test]
    fn list_splitting_respects_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""Doe, John" <sip:j@x;a=1,2>;q=0.5, <sip:k@y> , sip:z@w"#),
            vec![
                r#""Doe, John" <sip:j@x;a=1,2>;q=0.5"#,
                "<sip:k@y>",
                "sip:z@w"
            ]
        );
        assert_eq!(split_list(r#""a\",b", c"#), vec![r#""a\",b""#, "c"]);
        assert!(split_list(" , ,").is_empty());
        // Without a comma: the value itself, trimmed (or nothing).
        assert_eq!(split_list("  \"a<b\" <sip:x> "), vec!["\"a<b\" <sip:x>"]);
        assert!(split_list("   ").is_empty());
    }

    #[test]
    fn set_replaces_all_lines() {
        let mut h = Headers::default();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::To, "t");
        h.push(HeaderName::Via, "b");
        h.set(HeaderName::Via, "c");
        assert_eq!(h.values(&HeaderName::Via), vec!["c"]);
        assert_eq!(h.len(), 2);
    }
}
