//! `parse_stream` the way the TCP reader drives it (src/sip/transport.rs):
//! bytes arrive in chunks, and every complete message / keep-alive at the
//! front of the buffer is drained. Checks:
//! * never panics, never reports `consumed` of 0 or more than it was given;
//! * the sequence of framed items does not depend on how the bytes were
//!   split into reads (up to the first fatal framing error, whose `consumed`
//!   is by design "the whole buffer", or an `Incomplete` forever);
//! * accepted messages survive the serialise/re-parse round trip.
//!
//! The first input byte picks the chunking (several split patterns), the
//! rest is the stream.

#![no_main]

mod common;

use homeline::sip::message::{parse_stream, Framing, Message};
use libfuzzer_sys::fuzz_target;

/// What one drained item looked like (for comparing chunkings).
#[derive(Debug, PartialEq)]
enum Item {
    KeepAlive { consumed: usize, ping: bool },
    Ok { consumed: usize, msg: Message },
    Err { consumed: usize, status: Option<u16>, fatal: bool },
}

/// Feeds `data` in chunks of the given sizes (cycled), draining the buffer
/// after each read like the transport does. Stops at the first fatal error.
/// With `check`, every framed message also goes through the common checks.
fn run(data: &[u8], chunks: &[usize], check: bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut i = 0;
    loop {
        loop {
            let before = buf.len();
            match parse_stream(&buf) {
                Framing::Incomplete => break,
                Framing::KeepAlive { consumed, ping } => {
                    assert!(consumed > 0 && consumed <= before, "keep-alive consumed {consumed} of {before}");
                    buf.drain(..consumed);
                    items.push(Item::KeepAlive { consumed, ping });
                }
                Framing::Message { result, consumed } => {
                    assert!(consumed > 0 && consumed <= before, "message consumed {consumed} of {before}");
                    buf.drain(..consumed);
                    match result {
                        Ok(msg) => {
                            if check {
                                common::exercise_message(&msg);
                                common::check_round_trip(&msg);
                            }
                            items.push(Item::Ok { consumed, msg });
                        }
                        Err(e) => {
                            let fatal = e.fatal_framing;
                            if let (true, Some(req)) = (check, e.request) {
                                common::exercise_message(&Message::Request(*req));
                            }
                            items.push(Item::Err { consumed, status: e.status, fatal });
                            if fatal {
                                return items;
                            }
                        }
                    }
                }
            }
        }
        if fed == data.len() {
            return items;
        }
        let n = chunks[i % chunks.len()].max(1).min(data.len() - fed);
        i += 1;
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
    }
}

/// Drops a trailing fatal error: its `consumed` (and whether it happens at
/// all, e.g. "headers longer than the limit") depends on the buffer size.
fn comparable(mut items: Vec<Item>) -> Vec<Item> {
    if matches!(items.last(), Some(Item::Err { fatal: true, .. })) {
        items.pop();
    }
    items
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    // Whole buffer at once: the reference.
    let whole = comparable(run(data, &[usize::MAX], true));
    let len = data.len();
    let patterns: [Vec<usize>; 4] = [
        vec![1],                                            // byte by byte
        vec![(selector as usize % 7) + 2],                  // small fixed chunks
        vec![len / 3 + 1, len / 2 + 1],                     // a few big reads
        vec![(selector as usize) * 4 + 1, len / 8 + 1, 7, len / 4 + 1], // irregular
    ];
    // Tiny reads are O(n^2): parse_stream rescans the buffer for the end of
    // the headers, and re-parses the whole header section, on every call
    // while a message is incomplete (as the TCP reader does per read). Keep
    // them to short inputs so the fuzzer stays fast.
    for (k, p) in patterns.iter().enumerate() {
        if (k == 0 && len > 128) || (k == 1 && len > 512) {
            continue;
        }
        let items = comparable(run(data, p, false));
        // A chunked run may stop earlier (a fatal error that, with more
        // bytes buffered, would have come later or not at all), so compare
        // the common prefix and require one to be a prefix of the other.
        let n = items.len().min(whole.len());
        assert_eq!(
            &items[..n],
            &whole[..n],
            "framing depends on chunking (pattern {k}: {p:?})"
        );
    }
});
