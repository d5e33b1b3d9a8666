//! Text Homeline writes into messages: reason phrases, `Warning` values and
//! every header value on the wire, made safe.
//!
//! Much of what we write echoes the peer (the reason a request was refused
//! quotes the offending part; responses copy Via, From, To…). Echoed bytes
//! must never smuggle a CR or LF into our headers (header injection), nor
//! make a reply too large to send: so reason phrases and `Warning` texts are
//! cleaned of control characters and bounded here, and the serialiser
//! replaces any CR or LF left in a header value with a space. (Other
//! control characters stay: inside a quoted-pair they are legal, RFC 3261
//! §25.1, and RFC 4475's `intmeth` carries them; only CR and LF end lines.)

/// Longest `Warning` text we write, in bytes (the whole header stays
/// under ~250 bytes, so a refusal always fits a datagram with the request's
/// own headers).
pub const MAX_WARNING_TEXT: usize = 200;
/// Longest reason phrase we write, in bytes.
pub const MAX_REASON: usize = 128;
/// The largest UDP payload (IPv4: 65,535 − 8 − 20): a reply longer than
/// this cannot be sent over UDP at all.
pub const MAX_DATAGRAM: usize = 65_507;

/// `text` as a phrase safe inside a header: control characters become
/// spaces, `"` becomes `'` and `\` becomes `/` (so it also fits a
/// quoted-string without escapes), and at most `max` bytes are kept (cut on
/// a character boundary, marked with `...`).
pub fn phrase(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let clean = text.len() <= max
        && !text
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control());
    if clean {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > max {
            while out.len() + 3 > max {
                out.pop();
            }
            out.push_str("...");
            return out.into();
        }
        out.push(c);
    }
    out.into()
}

/// A `Warning` header value (RFC 3261 §20.43) for `text`: code 399
/// (miscellaneous), agent `homeline`, the text cleaned and bounded.
pub fn warning(text: &str) -> String {
    format!("399 homeline \"{}\"", phrase(text, MAX_WARNING_TEXT))
}

/// Appends `value` to a message being serialised, any CR or LF replaced
/// by a space: no value can end a header line early.
pub(super) fn write_value(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    if !bytes.iter().any(|b| is_unsafe(*b)) {
        out.extend_from_slice(bytes);
        return;
    }
    out.extend(bytes.iter().map(|&b| if is_unsafe(b) { b' ' } else { b }));
}

fn is_unsafe(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_quotes_are_neutralised() {
        assert_eq!(
            phrase("bad\r\nVia: evil\0 \"x\" \\ ok\t", 100),
            "bad  Via: evil  'x' / ok "
        );
        assert_eq!(warning("a \"b\""), "399 homeline \"a 'b'\"");
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(70_000);
        let w = warning(&long);
        assert!(w.len() <= MAX_WARNING_TEXT + 16, "{}", w.len());
        assert!(w.ends_with("...\""));
        assert_eq!(phrase("short", 5), "short");
        assert_eq!(phrase("longer", 5), "lo...");
    }

    #[test]
    fn values_on_the_wire_never_break_a_line() {
        let mut out = Vec::new();
        write_value(&mut out, "x\r\ny\nz\r\u{7f}\tw");
        assert_eq!(out, b"x  y z \x7f\tw");
        let mut out = Vec::new();
        write_value(&mut out, "plain ünïcode");
        assert_eq!(out, "plain ünïcode".as_bytes());
    }
}
