//! The stateless answer to a request the parser refused.
//!
//! There is no trustworthy transaction key for such a request, so it is
//! answered once, where its top Via says, with the status the parser chose
//! and (for 400 and 505) the reason in a `Warning`. The reason quotes the
//! request, so it goes through [`text::warning`]: cleaned of control
//! characters (a bare CR or LF in the request cannot become a header break
//! in our reply) and bounded. ACKs are never answered (the parser gives
//! them no status, RFC 3261 §17), nor is anything without a Via.

use crate::sip::message::{text, HeaderName, Message, ParseError, Response};

/// The reply to `e` and the top Via to send it by, or `None` to drop.
pub(super) fn unparsable(e: &ParseError, tag: &str) -> Option<(Response, String)> {
    let req = e.request.as_ref()?;
    // Without any Via no response can be routed (and answering would only
    // reflect traffic at a scanner). A Via that exists but does not parse
    // is copied as it is and answered at the source.
    let via = req.headers.lines(&HeaderName::Via).next()?.to_string();
    let status = e.status?;
    let mut resp = super::reply(req, status, tag);
    if status == 505 || status == 400 {
        resp.headers.push(
            HeaderName::Other("Warning".into()),
            text::warning(&e.reason),
        );
    }
    // The copied headers are the request's own; should they alone make
    // the reply too large for a datagram, it could not be sent anyway.
    let size = Message::Response(resp.clone()).to_bytes().len();
    if size > text::MAX_DATAGRAM {
        tracing::debug!(
            size,
            "a reply to an unreadable request would not fit a datagram: dropped"
        );
        return None;
    }
    Some((resp, via))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_datagram;

    fn request(headers: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:pbx@192.0.2.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-r1\r\n\
             {headers}\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    const GOOD: &str =
        "From: <sip:a@192.0.2.9>;tag=1\r\nTo: <sip:pbx@192.0.2.1>\r\nCall-ID: c1\r\n";

    fn answer(bytes: &[u8]) -> Option<Vec<u8>> {
        let e = parse_datagram(bytes).expect_err("refused");
        unparsable(&e, "t1").map(|(r, _)| Message::Response(r).to_bytes())
    }

    /// Every CR and LF of a serialised message is part of a CRLF.
    fn only_crlf(wire: &[u8]) -> bool {
        wire.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => wire.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && wire[i - 1] == b'\r',
            _ => true,
        })
    }

    fn warning_of(wire: &[u8]) -> String {
        let text = String::from_utf8_lossy(wire);
        text.lines()
            .find_map(|l| l.strip_prefix("Warning: "))
            .expect("a Warning")
            .to_string()
    }

    #[test]
    fn a_bare_cr_or_lf_in_the_request_never_reaches_our_headers() {
        for damage in ["Bad\nInjected: yes", "Bad\rInjected: yes", "Ba\0d"] {
            let wire = answer(&request(&format!("{GOOD}CSeq: 1 {damage}\r\n"))).expect("a 400");
            assert!(wire.starts_with(b"SIP/2.0 400 "), "{damage:?}");
            assert!(only_crlf(&wire), "{}", String::from_utf8_lossy(&wire));
            let w = warning_of(&wire);
            assert!(w.starts_with("399 homeline \""), "{w}");
            assert!(!w.chars().any(char::is_control), "{w:?}");
        }
    }

    #[test]
    fn a_huge_value_gives_a_bounded_warning_and_a_reply_that_fits_a_datagram() {
        let method = "X".repeat(60_000);
        let wire = answer(&request(&format!("{GOOD}CSeq: 1 {method}\r\n"))).expect("a 400");
        assert!(wire.len() <= text::MAX_DATAGRAM, "{}", wire.len());
        let w = warning_of(&wire);
        assert!(w.len() <= text::MAX_WARNING_TEXT + 16, "{}", w.len());
        // However the reason came to be 70 KB, the Warning stays bounded.
        let mut e = parse_datagram(&request("")).expect_err("no From");
        e.reason = format!("line\r\n{}", "é".repeat(35_000));
        let (resp, _) = unparsable(&e, "t").expect("a 400");
        let wire = Message::Response(resp).to_bytes();
        assert!(wire.len() < 1024, "{}", wire.len());
        assert!(only_crlf(&wire));
    }

    #[test]
    fn damaged_acks_and_requests_without_via_are_never_answered() {
        let ack = |line: &str, headers: &str| {
            format!("{line}\r\n{headers}Content-Length: 0\r\n\r\n").into_bytes()
        };
        let via = "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-a\r\n";
        let common = format!("{via}{GOOD}Max-Forwards: 70\r\n");
        let cases: Vec<Vec<u8>> = vec![
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{via}{GOOD}CSeq: 1 INVITE\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{via}{GOOD}CSeq: x ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/3.0",
                &format!("{common}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0 extra",
                &format!("{common}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 HTTP/1.1",
                &format!("{common}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK mailto:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1?x=y SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{via}CSeq: 1 ACK\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nMax-Forwards: many\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nContact: <<>\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nno colon here\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nBad Name: x\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nContent-Length: 9\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{common}CSeq: 1 ACK\r\nContent-Length: -1\r\n"),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("{}{common}CSeq: 1 ACK\r\n", "X-A: 1\r\n".repeat(300)),
            ),
            ack(
                "ACK sip:pbx@192.0.2.1 SIP/2.0",
                &format!("Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK\r\n{GOOD}CSeq: 1 ACK\r\n"),
            ),
            [
                b"ACK sip:pbx@192.0.2.1 SIP/2.0\r\n".as_slice(),
                common.as_bytes(),
                b"CSeq: 1 ACK\r\nX-Bin: \xff\xfe\r\nContent-Length: 0\r\n\r\n",
            ]
            .concat(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let e = parse_datagram(bytes).expect_err("damaged");
            assert_eq!(e.status, None, "case {i}: {e}");
            assert!(unparsable(&e, "t").is_none(), "case {i} answered");
        }
        // The same damage in an OPTIONS is answered (so the cases are damage).
        let options = ack(
            "OPTIONS sip:pbx@192.0.2.1 SIP/2.0",
            &format!("{common}CSeq: 1 ACK\r\n"),
        );
        assert!(answer(&options).is_some());
        let no_via = ack(
            "OPTIONS sip:pbx@192.0.2.1 SIP/3.0",
            &format!("{GOOD}CSeq: 1 OPTIONS\r\n"),
        );
        assert!(answer(&no_via).is_none());
    }
}
