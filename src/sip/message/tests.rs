//! The 49 RFC 4475 torture messages, byte-exact, against the parser: valid
//! messages parse, invalid requests get the status the RFC names, invalid
//! responses are dropped. Plus round trips and a few direct cases.

use super::*;

#[derive(Debug, PartialEq)]
enum Expect {
    Req,
    Resp,
    Reply(u16),
    Drop,
}
use Expect::*;

const TORTURE: &[(&str, Expect)] = &[
    ("wsinv", Req),
    ("intmeth", Req),
    ("esc01", Req),
    ("escnull", Req),
    ("esc02", Req),
    ("lwsdisp", Req),
    ("longreq", Req),
    ("dblreq", Req),
    ("semiuri", Req),
    ("transports", Req),
    ("mpart01", Req),
    ("unreason", Resp),
    ("noreason", Resp),
    ("badinv01", Reply(400)),
    ("clerr", Reply(400)),
    ("ncl", Reply(400)),
    ("scalar02", Reply(400)),
    ("scalarlg", Drop),
    ("quotbal", Reply(400)),
    ("ltgtruri", Reply(400)),
    ("lwsruri", Reply(400)),
    ("lwsstart", Reply(400)),
    ("trws", Reply(400)),
    ("escruri", Reply(400)),
    ("baddate", Req),
    ("regbadct", Reply(400)),
    ("badaspec", Req),
    ("baddn", Reply(400)),
    ("badvers", Reply(505)),
    ("mismatch01", Reply(400)),
    ("mismatch02", Reply(400)),
    ("bigcode", Drop),
    ("badbranch", Reply(400)),
    ("insuf", Reply(400)),
    ("unkscm", Reply(416)),
    ("novelsc", Reply(416)),
    ("unksm2", Req),
    ("bext01", Req),
    ("invut", Req),
    ("regaut01", Req),
    ("multi01", Reply(400)),
    ("mcl01", Reply(400)),
    ("bcast", Resp),
    ("cparam01", Req),
    ("cparam02", Req),
    ("regescrt", Req),
    ("sdp01", Req),
    ("inv2543", Req),
];

fn torture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn outcome(r: &Result<Message, ParseError>) -> Expect {
    match r {
        Ok(Message::Request(_)) => Req,
        Ok(Message::Response(_)) => Resp,
        Err(e) => match e.status {
            Some(s) => Reply(s),
            None => Drop,
        },
    }
}

#[test]
fn rfc4475_over_udp() {
    let mut failures = Vec::new();
    for (name, want) in TORTURE {
        let got = outcome(&parse_datagram(&torture(name)));
        if got != *want {
            failures.push(format!(
                "{name}: want {want:?}, got {got:?} ({:?})",
                parse_datagram(&torture(name)).err().map(|e| e.reason)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rfc4475_over_a_stream() {
    // Over TCP framing differs: clerr waits for more octets, a missing
    // Content-Length means an empty body (inv2543 then has trailing octets).
    let mut failures = Vec::new();
    for (name, want) in TORTURE {
        let bytes = torture(name);
        let got = match parse_stream(&bytes) {
            Framing::Message { result, .. } => outcome(&result),
            Framing::Incomplete => Drop,
            Framing::KeepAlive { .. } => Drop,
        };
        // On a stream these wait for more octets (and the connection is
        // eventually closed): clerr's Content-Length exceeds what was sent,
        // baddn's header section lacks its empty line.
        let want = match *name {
            "clerr" | "baddn" => &Drop,
            _ => want,
        };
        if got != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn torture_details_the_rfc_calls_out() {
    let Ok(Message::Request(r)) = parse_datagram(&torture("wsinv")) else {
        panic!("wsinv")
    };
    assert_eq!(r.headers.get(&HeaderName::MaxForwards), Some("0068"));
    assert_eq!(
        CSeq::parse(r.headers.get(&HeaderName::CSeq).unwrap_or("")).map(|c| c.seq),
        Some(9)
    );
    assert!(r
        .headers
        .get(&HeaderName::Other("UnknownHeaderWithUnusualValue".into()))
        .is_some_and(|v| v == ";;,,;;,;"));
    assert_eq!(r.headers.values(&HeaderName::Via).len(), 3);
    assert_eq!(r.body.len(), 150);

    let Ok(Message::Request(r)) = parse_datagram(&torture("esc02")) else {
        panic!("esc02")
    };
    assert_eq!(
        r.method,
        Method::Other("RE%47IST%45R".into()),
        "% is not an escape in a method"
    );
    assert_eq!(
        r.headers.values(&HeaderName::Contact).len(),
        2,
        "C%6Fntact is another header"
    );

    let Ok(Message::Request(r)) = parse_datagram(&torture("dblreq")) else {
        panic!("dblreq")
    };
    assert_eq!(
        (r.method.clone(), r.body.len()),
        (Method::Register, 0),
        "trailing octets ignored"
    );

    let Ok(Message::Request(r)) = parse_datagram(&torture("mpart01")) else {
        panic!("mpart01")
    };
    assert_eq!(r.body.len(), 553);

    let Ok(Message::Request(r)) = parse_datagram(&torture("escnull")) else {
        panic!("escnull")
    };
    let users: Vec<String> = r
        .headers
        .values(&HeaderName::Contact)
        .iter()
        .filter_map(|c| NameAddr::parse(c))
        .filter_map(|n| n.uri.user_unescaped())
        .collect();
    assert_eq!(
        users,
        ["\0", "\0\0"],
        "two distinct contacts; %00 decodes and does not truncate"
    );
    let to = NameAddr::parse(r.headers.get(&HeaderName::To).unwrap_or(""))
        .and_then(|n| n.uri.user_unescaped());
    assert_eq!(to.as_deref(), Some("null-\0-null"));

    let Ok(Message::Request(r)) = parse_datagram(&torture("inv2543")) else {
        panic!("inv2543")
    };
    assert!(
        !r.body.is_empty(),
        "UDP without Content-Length: body is the rest of the datagram"
    );
}

#[test]
fn every_valid_request_survives_a_round_trip() {
    for (name, want) in TORTURE {
        if *want != Req && *want != Resp {
            continue;
        }
        let first = parse_datagram(&torture(name)).expect("valid");
        let again =
            parse_datagram(&first.to_bytes()).unwrap_or_else(|e| panic!("{name} re-parse: {e}"));
        // Content-Length is regenerated (last, and always matching the body).
        let strip = |m: &Message| {
            let mut m = m.clone();
            match &mut m {
                Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
                Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
            }
            m
        };
        assert_eq!(strip(&first), strip(&again), "{name}");
    }
}

#[test]
fn stream_framing_keepalives_and_pipelining() {
    let msg = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody";
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(msg);
    buf.extend_from_slice(&msg[..20]);
    let Framing::KeepAlive {
        consumed: 4,
        ping: true,
    } = parse_stream(&buf)
    else {
        panic!("ping first")
    };
    let Framing::Message {
        result: Ok(Message::Request(r)),
        consumed,
    } = parse_stream(&buf[4..])
    else {
        panic!("message")
    };
    assert_eq!((consumed, &r.body[..]), (msg.len(), &b"body"[..]));
    assert!(matches!(
        parse_stream(&buf[4 + consumed..]),
        Framing::Incomplete
    ));
    assert!(matches!(parse_stream(b"\r\n"), Framing::Incomplete));
    assert!(matches!(
        parse_stream(b"\r\nOPT"),
        Framing::KeepAlive {
            consumed: 2,
            ping: false
        }
    ));
    assert!(matches!(
        parse_stream(&msg[..msg.len() - 1]),
        Framing::Incomplete
    ));
}

#[test]
fn responses_are_built_from_the_request() {
    let Ok(Message::Request(req)) = parse_datagram(&torture("intmeth")) else {
        panic!("intmeth")
    };
    let resp = Response::to(&req, 501, "Not Implemented", "abc");
    let Ok(Message::Response(back)) = parse_datagram(&resp.to_bytes()) else {
        panic!("re-parse")
    };
    assert_eq!(back.status, 501);
    assert_eq!(
        back.headers.values(&HeaderName::Via),
        req.headers.values(&HeaderName::Via)
    );
    let to = NameAddr::parse(back.headers.get(&HeaderName::To).unwrap_or("")).expect("To");
    assert_eq!(to.params.get("tag"), Some(Some("abc")));
}

#[test]
fn never_panics_on_truncations_and_mutations() {
    for (name, _) in TORTURE {
        let b = torture(name);
        for cut in 0..b.len().min(400) {
            let _ = parse_datagram(&b[..cut]);
            let _ = parse_stream(&b[..cut]);
        }
        let mut m = b.clone();
        for i in (0..m.len()).step_by(7) {
            m[i] = m[i].wrapping_add(13);
            let _ = parse_datagram(&m);
            let _ = parse_stream(&m);
        }
    }
}

#[test]
fn the_fuzz_corpus_and_regressions_parse_without_panicking() {
    // The fuzzer's minimised corpus (fuzz/corpus) and any crash it ever found
    // (fuzz/regressions) run here on every test, so CI keeps what fuzzing learned.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for dir in [
        "corpus/parse_datagram",
        "corpus/parse_stream",
        "regressions",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if let Ok(m) = parse_datagram(&bytes) {
                let again = parse_datagram(&m.to_bytes());
                assert!(
                    again.is_ok(),
                    "{}: a parsed message must re-parse",
                    path.display()
                );
            }
            let _ = parse_stream(&bytes);
            seen += 1;
        }
    }
    assert!(seen > 100, "the corpus is there ({seen} inputs)");
}

#[test]
fn validity_checks_agree_with_the_full_parses_on_every_corpus_value() {
    // The validator asks `is_valid`; everything else parses. Both run the
    // same code, with and without building: every header value of the
    // fuzz corpus and the torture messages, and every ';'-suffix of it,
    // must get the same answer from both.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for dir in [
        "corpus/parse_datagram",
        "corpus/parse_stream",
        "regressions",
    ] {
        for entry in std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            inputs.extend(std::fs::read(entry.path()));
        }
    }
    let mut checked = 0;
    for bytes in &inputs {
        let text = String::from_utf8_lossy(bytes);
        for line in text.split(['\r', '\n']) {
            let Some((_, value)) = line.split_once(':') else {
                continue;
            };
            let mut candidates = vec![value, value.trim()];
            candidates.extend(
                value
                    .char_indices()
                    .filter(|(_, c)| *c == ';')
                    .map(|(i, _)| &value[i..]),
            );
            for v in candidates {
                assert_eq!(
                    NameAddr::is_valid(v),
                    NameAddr::parse(v).is_some(),
                    "name-addr {v:?}"
                );
                assert_eq!(Uri::is_valid(v), Uri::parse(v).is_some(), "URI {v:?}");
                assert_eq!(
                    Params::is_valid(v),
                    Params::parse(v).is_some(),
                    "params {v:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "the corpus is there ({checked} values)");
}

/// A REGISTER whose From line is `from` (raw bytes).
fn with_from(method: &str, from: &[u8]) -> Vec<u8> {
    [
        format!(
            "{method} sip:homeline SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-l1\r\n\
             Max-Forwards: 70\r\nTo: <sip:alice@homeline>\r\nCall-ID: l1\r\nCSeq: 1 {method}\r\nFrom: "
        )
        .as_bytes(),
        from,
        b"\r\nContent-Length: 0\r\n\r\n",
    ]
    .concat()
}

#[test]
fn latin1_display_names_are_decoded_leniently() {
    let raw = with_from(
        "REGISTER",
        b"\"M\xfcller \xc4rger\" <sip:alice@homeline>;tag=x",
    );
    let Ok(Message::Request(req)) = parse_datagram(&raw) else {
        panic!("accepted: {:?}", parse_datagram(&raw));
    };
    assert_eq!(
        req.headers.get(&HeaderName::From),
        Some("\"Müller Ärger\" <sip:alice@homeline>;tag=x")
    );
    // Valid UTF-8 next to Latin-1 in the same name survives as it is.
    let raw = with_from("REGISTER", "\"Zoë \u{263a}".as_bytes());
    let raw = [
        &raw[..raw.len() - 23],
        b" \xe9\" <sip:a@h>;tag=y\r\nContent-Length: 0\r\n\r\n",
    ]
    .concat();
    let Ok(Message::Request(req)) = parse_datagram(&raw) else {
        panic!("accepted");
    };
    assert_eq!(
        req.headers.get(&HeaderName::From),
        Some("\"Zoë \u{263a} é\" <sip:a@h>;tag=y")
    );
}

#[test]
fn other_invalid_utf8_is_refused_with_400_once_framed() {
    for from in [
        b"<sip:m\xfcller@homeline>;tag=x".as_slice(),
        b"\"x\" <sip:a@h>;tag=\xff",
        b"M\xfcller",
    ] {
        let e = parse_datagram(&with_from("REGISTER", from)).expect_err("refused");
        assert_eq!(e.status, Some(400), "{e}");
        assert!(e.reason.contains("not UTF-8"), "{e}");
        assert!(e.request.is_some(), "framed: a reply can be built");
    }
    let mut raw = with_from("OPTIONS", b"<sip:a@h>;tag=1");
    raw.splice(0..0, b"X-Note: caf\xe9\r\n".iter().copied());
    let e = parse_datagram(&raw).expect_err("a start line that is not UTF-8 is not SIP");
    assert_eq!(e.status, None);
    let ok = with_from("OPTIONS", b"<sip:a@h>;tag=1");
    let first_line_end = ok.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let raw = [
        b"OPTIONS sip:caf\xe9@h SIP/2.0\r\n".as_slice(),
        &ok[first_line_end..],
    ]
    .concat();
    assert_eq!(parse_datagram(&raw).expect_err("dropped").status, None);
    // An ACK is never answered, not even for this.
    let e = parse_datagram(&with_from("ACK", b"<sip:\xfc@h>;tag=1")).expect_err("refused");
    assert_eq!(e.status, None);
}
