//! `parse_datagram` on arbitrary bytes: must never panic; a message it
//! accepts must survive `to_bytes` → `parse_datagram` unchanged (modulo the
//! regenerated Content-Length) and frame identically on a stream; every
//! typed view (Via, NameAddr, Uri, CSeq, Params, digest Credentials) is run
//! over every header value, also of refused requests.

#![no_main]

mod common;

use homeline::sip::message::{parse_datagram, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_datagram(data) {
        Ok(msg) => {
            common::exercise_message(&msg);
            common::check_round_trip(&msg);
        }
        Err(e) => {
            // The error's partial request is what the endpoint answers from
            // (Response::to): make sure building the reply is safe too.
            let _ = e.to_string();
            if let Some(req) = e.request {
                let msg = Message::Request(*req);
                common::exercise_message(&msg);
                if let Message::Request(req) = &msg {
                    let status = e.status.unwrap_or(400);
                    let resp = homeline::sip::message::Response::to(req, status, "Bad", "fz1");
                    let _ = resp.to_bytes();
                }
            }
        }
    }
});
