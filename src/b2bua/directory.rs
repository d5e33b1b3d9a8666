//! Who can be called and who calls as whom: the slice of the database the
//! call layer needs, kept in the call layer's memory so routing a call never
//! waits on SQLite. The application rebuilds it whenever phones, numbers,
//! the Twilio settings, the zone or a Do-Not-Disturb setting change.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::sip::auth::DeviceCredential;

/// A phone, for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// Its row id.
    pub device_id: i64,
    /// Its SIP user name (also its extension).
    pub username: String,
    /// Its display name ("Kitchen").
    pub name: String,
    /// The E.164 number its calls go out as: the first number assigned to
    /// its user, if any.
    pub caller_id: Option<String>,
}

/// One of the household's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// Its row id.
    pub did_id: i64,
    /// The phones that ring for it (every phone of every assigned user).
    pub device_ids: Vec<i64>,
}

/// How Homeline and Twilio's SIP side find each other.
#[derive(Clone)]
pub struct Trunk {
    /// The user name Twilio authenticates with (and Homeline with Twilio).
    pub credential: DeviceCredential,
    /// The password, needed to answer Twilio's challenges.
    pub password: String,
    /// The SIP Domain host (`myhome.sip.twilio.com`), for Request-URIs.
    pub domain: String,
    /// Where outgoing INVITEs are sent (the domain's address, or a stand-in).
    pub edge: Option<SocketAddr>,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trunk {{ user: {:?}, domain: {:?}, edge: {:?} }}",
            self.credential.username, self.domain, self.edge
        )
    }
}

/// Everything routing needs.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Phones by device id.
    pub phones: HashMap<i64, Phone>,
    /// Numbers by E.164 string.
    pub numbers: HashMap<String, Number>,
    /// The Twilio side, once configured.
    pub trunk: Option<Trunk>,
    /// Every Do-Not-Disturb setting, evaluated at each call.
    pub dnd: crate::rules::dnd::DndTable,
}

impl Directory {
    /// Whether a phone is in Do-Not-Disturb at `now` (its own, its
    /// owner's or the household's; schedules read against `now`).
    pub fn in_dnd(&self, device: super::DeviceId, now: crate::clock::Timestamp) -> bool {
        self.dnd
            .device_active(device, crate::rules::dnd::instant(now))
    }

    /// Whether a phone must stay silent for a call to number `did_id` whose
    /// ring plan the routing rules decided (they saw the number's DND, so
    /// only the phone's own DND, or its owner's on a number not in DND as
    /// a whole, still applies; see `rules::dnd`).
    pub fn silenced(
        &self,
        did_id: i64,
        device: super::DeviceId,
        now: crate::clock::Timestamp,
    ) -> bool {
        self.dnd
            .silences(did_id, device, crate::rules::dnd::instant(now))
    }

    /// The phone with this SIP user name.
    pub fn phone_by_username(&self, username: &str) -> Option<&Phone> {
        self.phones.values().find(|p| p.username == username)
    }

    /// The number a Request-URI user names (`+15551230000`, or the same
    /// without `+`).
    pub fn number(&self, user: &str) -> Option<(&str, &Number)> {
        let e164 = if user.starts_with('+') {
            user.to_string()
        } else {
            format!("+{user}")
        };
        self.numbers
            .get_key_value(&e164)
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// A directory whose trunk sends to the configured edge, if any.
pub(super) fn with_edge(mut d: Directory, edge: Option<SocketAddr>) -> Directory {
    if let Some(t) = d.trunk.as_mut() {
        t.edge = edge.or(t.edge);
    }
    d
}
