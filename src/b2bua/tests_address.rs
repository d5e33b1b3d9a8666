//! The public address following the router: after [`Calls::set_public_ip`]
//! the next call towards Twilio offers the new address in its SDP and
//! Contact, on virtual time over the test world of `tests.rs`.

use std::net::{IpAddr, SocketAddr};

use super::tests::{forks, invite_from, phone_at, udp, World};
use super::*;
use crate::sip::message::HeaderName;

/// Kitchen dials out with `call_id`; the trunk resolves to Twilio's edge:
/// the INVITE sent to Twilio.
fn call_to_twilio(w: &mut World, call_id: &str) -> Request {
    let a = invite_from(phone_at(1), "kitchen", "5551239876", call_id);
    let out = w.feed(Event::Invite {
        request: a.invite.clone(),
        caller: Caller::Phone {
            device: DeviceId(1),
            username: "kitchen".into(),
        },
        tx: a.tx.clone(),
        route: udp(a.at),
    });
    let Some(Action::Resolve(id, _)) = out.0.last() else {
        panic!("no lookup: {:?}", out.0);
    };
    let edge = SocketAddr::from(([198, 51, 100, 7], 5060));
    let out = w.feed(Event::Resolved(*id, Some(edge)));
    forks(&out).remove(0).invite
}

fn sdp_connection(invite: &Request) -> String {
    let body = String::from_utf8_lossy(&invite.body).to_string();
    body.lines()
        .find(|l| l.starts_with("c="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_call_after_an_address_change_offers_the_new_address_to_twilio() {
    let mut w = World::new(None);
    let first: IpAddr = "203.0.113.5".parse().expect("ip");
    w.calls.set_public_ip(Some(first));
    let before = call_to_twilio(&mut w, "addr1");
    assert_eq!(sdp_connection(&before), "c=IN IP4 203.0.113.5");

    let second: IpAddr = "203.0.113.77".parse().expect("ip");
    w.calls.set_public_ip(Some(second));
    let after = call_to_twilio(&mut w, "addr2");
    assert_eq!(sdp_connection(&after), "c=IN IP4 203.0.113.77");
    assert!(after
        .headers
        .get(&HeaderName::Contact)
        .is_some_and(|c| c.contains("203.0.113.77")));

    // Forgotten (discovery found nothing): the local address again.
    w.calls.set_public_ip(None);
    let local = call_to_twilio(&mut w, "addr3");
    assert!(!sdp_connection(&local).contains("203.0.113."));
}
