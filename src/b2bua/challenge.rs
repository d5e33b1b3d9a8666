//! Answering Twilio's digest challenges with the trunk's credentials.
//!
//! Twilio may challenge any INVITE we send it (a call's, a transfer's, a
//! session refresh's). Each is answered once, the same way: the one place
//! that knows which header carries the challenge and which the answer.

use crate::sip::message::{HeaderName, Request, Response};

use super::directory::Trunk;
use super::forking::Fork;

/// The header answering a 401's or 407's challenge and its value, or None
/// when the response carries no Digest challenge we can answer.
/// `uri` is the Request-URI of the request that is sent again.
pub(super) fn answer(
    resp: &Response,
    uri: &str,
    trunk: &Trunk,
    cnonce: &str,
) -> Option<(HeaderName, String)> {
    let (challenge, header) = if resp.status == 401 {
        (HeaderName::WwwAuthenticate, HeaderName::Authorization)
    } else {
        (
            HeaderName::ProxyAuthenticate,
            HeaderName::ProxyAuthorization,
        )
    };
    let value = resp.headers.lines(&challenge).find_map(|c| {
        crate::sip::auth::answer_challenge(
            c,
            "INVITE",
            uri,
            &trunk.credential.username,
            &trunk.password,
            cnonce,
        )
    })?;
    Some((header, value))
}

/// An initial INVITE sent again with its challenge answered: a new branch
/// (`via`), the next CSeq, and the credentials.
pub(super) fn retried_invite(
    invite: &Request,
    via: String,
    answer: (HeaderName, String),
) -> Request {
    let mut invite = invite.clone();
    invite.headers.set(HeaderName::Via, via);
    invite.headers.set(HeaderName::CSeq, "2 INVITE");
    invite.headers.push(answer.0, answer.1);
    invite
}

/// A fork's INVITE (a call's or a transfer's) answering Twilio's challenge:
/// marks the fork as having tried (a challenge is answered once), keeps the
/// new INVITE as the fork's, and returns it to send on the fork's route;
/// None when the challenge cannot be answered. `via` is a new top Via for
/// that route.
pub(super) fn retry_fork(
    fork: &mut Fork,
    resp: &Response,
    trunk: &Trunk,
    cnonce: &str,
    via: String,
) -> Option<Request> {
    fork.auth_tried = true;
    let answer = answer(resp, &fork.invite.uri, trunk, cnonce)?;
    fork.invite = retried_invite(&fork.invite, via, answer);
    Some(fork.invite.clone())
}
