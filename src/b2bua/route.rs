//! Routing: where a new call goes, decided from who calls, what they
//! dialled, the directory and the dial rules. Pure: no I/O, no call state
//! beyond the count of outgoing calls the toll-fraud guard needs.
//!
//! A phone's call to an extension rings that phone; to a number it goes to
//! Twilio after the toll-fraud guard (emergency numbers always pass). A call
//! from Twilio to one of the household's numbers rings every phone of every
//! user the number is assigned to, or the phones (or the steps) its ring
//! plan names (see [`super::sequence`]). A phone in Do-Not-Disturb never
//! rings: when every phone a call would ring is in DND the caller gets 480
//! (from Twilio, that is voicemail). The DND feature codes (`*78`, `*79`)
//! are answered by [`super::feature_code`].

use crate::clock::Timestamp;
use crate::dialplan::{DialRules, Dialed, TollGuard};

use super::call::Kind;
use super::sequence::{self, Step};
use super::{DeviceId, Directory};

/// Who sent an INVITE, as authentication established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// One of the household's phones.
    Phone {
        /// Its row id.
        device: DeviceId,
        /// Its SIP user name.
        username: String,
    },
    /// Twilio (by its credentials, or by address in trunking mode).
    Twilio,
}

/// Where the call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// Ring these phones: the first step's at once, then each next step's
    /// (see [`super::sequence`]).
    Ring(Vec<Step>),
    /// Send it to Twilio as this number.
    Trunk {
        /// The E.164 number.
        number: String,
    },
    /// Answer a call ringing elsewhere in the house (the pickup code).
    Pickup,
    /// Put the calling phone in Do-Not-Disturb (`true`) or take it out (a
    /// feature code).
    Dnd(bool),
}

/// The routing decision for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) kind: Kind,
    pub(super) target: Target,
    /// Caller, as the call shows it (extension or E.164).
    pub(super) from: String,
    /// Callee, as the call shows it.
    pub(super) to: String,
    pub(super) did_id: Option<i64>,
    /// The calling phone.
    pub(super) device_id: Option<DeviceId>,
    /// The caller's display name for the callee (phone to phone only).
    pub(super) display: Option<String>,
}

/// Why a call cannot be routed, and how the caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) status: u16,
    /// The `Warning` text (may be empty).
    pub(super) why: String,
    /// A reason phrase other than the default.
    pub(super) reason: Option<&'static str>,
    /// The toll-fraud guard refused: the refusal leaves a `blocked` record.
    pub(super) blocked: Option<BlockedCall>,
}

/// An outgoing call the guard refused, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BlockedCall {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) device: DeviceId,
}

fn refuse(status: u16, why: impl Into<String>) -> Refused {
    Refused {
        status,
        why: why.into(),
        reason: None,
        blocked: None,
    }
}

/// What routing looks at.
pub(super) struct Request<'a> {
    pub(super) caller: &'a Caller,
    /// The Request-URI's user part.
    pub(super) dialed: &'a str,
    /// The From URI's user part (the caller's number, from Twilio).
    pub(super) from_user: &'a str,
    /// Outgoing calls up now (for the concurrency cap).
    pub(super) outgoing: usize,
    pub(super) now: Timestamp,
    /// The ring plan an authenticated call from Twilio carried
    /// (`X-Homeline-Ring`); `None`: every phone of the number.
    pub(super) ring: Option<Vec<Step>>,
    /// The routing rules decided the call (it names a rule or carries a
    /// ring plan): they saw the number's DND.
    pub(super) decided: bool,
}

fn dnd_refusal(why: &str) -> Refused {
    Refused {
        status: 480,
        why: why.into(),
        reason: Some("Temporarily Unavailable"),
        blocked: None,
    }
}

/// Decides where a call goes; an admitted outgoing call counts towards the
/// guard's hourly cap.
pub(super) fn plan(
    req: Request<'_>,
    directory: &Directory,
    rules: &DialRules,
    guard: &mut TollGuard,
) -> Result<Plan, Refused> {
    let (device, username) = match req.caller {
        Caller::Phone { device, username } => (*device, username),
        Caller::Twilio => {
            let Some((number, entry)) = directory.number(req.dialed) else {
                return Err(refuse(404, "not one of this household's numbers"));
            };
            let all: Vec<DeviceId> = entry.device_ids.iter().map(|d| DeviceId(*d)).collect();
            // A decision of the rules was made knowing the number's DND; a
            // call without one rings only phones in no DND at all.
            let decided = req.decided || req.ring.is_some();
            let asked = match req.ring {
                Some(steps) => sequence::without(steps, |d| {
                    let known = directory.phones.contains_key(&d.0);
                    if !known {
                        tracing::warn!(device = d.0, "the ring plan names an unknown phone");
                    }
                    !known
                }),
                None => vec![Step::all(all)],
            };
            let rings_someone = !asked.is_empty();
            let steps = sequence::without(asked, |d| {
                if decided {
                    directory.silenced(entry.did_id, d, req.now)
                } else {
                    directory.in_dnd(d, req.now)
                }
            });
            if steps.is_empty() && rings_someone {
                return Err(dnd_refusal("every phone of this call is in Do-Not-Disturb"));
            }
            return Ok(Plan {
                kind: Kind::Inbound,
                target: Target::Ring(steps),
                from: req.from_user.to_string(),
                to: number.to_string(),
                did_id: Some(entry.did_id),
                device_id: None,
                display: None,
            });
        }
    };
    let me = directory.phones.get(&device.0);
    let interpreted = rules.interpret(req.dialed, |s| directory.phone_by_username(s).is_some());
    match interpreted {
        Ok(Dialed::Extension(ext)) => {
            let Some(callee) = directory.phone_by_username(&ext) else {
                return Err(refuse(404, ""));
            };
            if callee.device_id == device.0 {
                return Err(refuse(486, "calling yourself"));
            }
            let callee = DeviceId(callee.device_id);
            if directory.in_dnd(callee, req.now) {
                return Err(dnd_refusal("that phone is in Do-Not-Disturb"));
            }
            Ok(Plan {
                kind: Kind::Internal,
                target: Target::Ring(vec![Step::all(vec![callee])]),
                from: username.clone(),
                to: ext,
                did_id: None,
                device_id: Some(device),
                display: me.map(|p| p.name.clone()),
            })
        }
        Ok(Dialed::Number(number)) | Ok(Dialed::Emergency(number)) => {
            let emergency = !number.starts_with('+');
            match &directory.trunk {
                None => return Err(refuse(503, "Twilio is not set up")),
                Some(t) if t.domain.is_empty() && t.edge.is_none() => {
                    return Err(refuse(503, "the Twilio SIP Domain is not set"))
                }
                Some(_) => {}
            }
            let caller_id = me.and_then(|p| p.caller_id.clone()).or_else(|| {
                directory
                    .numbers
                    .keys()
                    .min()
                    .cloned()
                    .filter(|_| emergency)
            });
            let Some(caller_id) = caller_id else {
                return Err(refuse(403, "this phone has no number to call out with"));
            };
            if !emergency {
                if let Err(refusal) = guard.admit(rules, &number, req.outgoing, req.now) {
                    tracing::warn!(device = device.0, %number, reason = %refusal, "outgoing call refused by the toll-fraud guard");
                    return Err(Refused {
                        status: 403,
                        why: refusal.to_string(),
                        reason: Some("Forbidden (toll-fraud guard)"),
                        blocked: Some(BlockedCall {
                            from: username.clone(),
                            to: number,
                            device,
                        }),
                    });
                }
            }
            let did_id = directory.numbers.get(&caller_id).map(|n| n.did_id);
            Ok(Plan {
                kind: Kind::Outbound,
                target: Target::Trunk {
                    number: number.clone(),
                },
                from: caller_id,
                to: number,
                did_id,
                device_id: Some(device),
                display: None,
            })
        }
        Ok(Dialed::Pickup) => Ok(Plan {
            kind: Kind::Internal,
            target: Target::Pickup,
            from: username.clone(),
            to: crate::dialplan::PICKUP_CODE.to_string(),
            did_id: None,
            device_id: Some(device),
            display: None,
        }),
        Ok(Dialed::Dnd(on)) => Ok(Plan {
            kind: Kind::Internal,
            target: Target::Dnd(on),
            from: username.clone(),
            to: if on {
                crate::dialplan::DND_ON_CODE
            } else {
                crate::dialplan::DND_OFF_CODE
            }
            .to_string(),
            did_id: None,
            device_id: Some(device),
            display: None,
        }),
        Err(e) => Err(refuse(404, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Number, Phone, Trunk};
    use super::*;
    use crate::sip::auth::DeviceCredential;

    fn directory(with_trunk: bool) -> Directory {
        let mut d = Directory::default();
        for (id, user, name, cid) in [
            (1, "kitchen", "Kitchen", Some("+15551230001")),
            (2, "office", "Office", None),
        ] {
            d.phones.insert(
                id,
                Phone {
                    device_id: id,
                    username: user.into(),
                    name: name.into(),
                    caller_id: cid.map(str::to_string),
                },
            );
        }
        d.numbers.insert(
            "+15551230001".into(),
            Number {
                did_id: 7,
                device_ids: vec![1, 2],
            },
        );
        if with_trunk {
            d.trunk = Some(Trunk {
                credential: DeviceCredential::new(0, "twilio", "pw"),
                password: "pw".into(),
                domain: "home.sip.twilio.com".into(),
                edge: None,
            });
        }
        d
    }

    fn rules() -> DialRules {
        DialRules {
            home_country: "1".into(),
            allowed_prefixes: vec![],
            max_concurrent: 2,
            max_per_hour: 10,
        }
    }

    fn phone(device: i64, username: &str) -> Caller {
        Caller::Phone {
            device: DeviceId(device),
            username: username.into(),
        }
    }

    fn run(caller: &Caller, dialed: &str, dir: &Directory) -> Result<Plan, Refused> {
        let mut guard = TollGuard::default();
        plan(
            Request {
                caller,
                dialed,
                from_user: "+15550009999",
                outgoing: 0,
                now: Timestamp::from_unix_millis(0),
                ring: None,
                decided: false,
            },
            dir,
            &rules(),
            &mut guard,
        )
    }

    #[test]
    fn an_extension_rings_that_phone_with_the_callers_name() {
        let p = run(&phone(1, "kitchen"), "office", &directory(false)).unwrap();
        assert_eq!(p.kind, Kind::Internal);
        assert_eq!(p.target, Target::Ring(vec![Step::all(vec![DeviceId(2)])]));
        assert_eq!(p.display.as_deref(), Some("Kitchen"));
        assert_eq!(
            run(&phone(1, "kitchen"), "kitchen", &directory(false))
                .unwrap_err()
                .status,
            486
        );
    }

    #[test]
    fn twilio_rings_every_phone_of_the_number() {
        let p = run(&Caller::Twilio, "15551230001", &directory(true)).unwrap();
        assert_eq!(p.kind, Kind::Inbound);
        assert_eq!(
            p.target,
            Target::Ring(vec![Step::all(vec![DeviceId(1), DeviceId(2)])])
        );
        assert_eq!((p.from.as_str(), p.did_id), ("+15550009999", Some(7)));
        assert_eq!(
            run(&Caller::Twilio, "+15559999999", &directory(true))
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn a_number_goes_to_twilio_as_the_phones_caller_id() {
        let p = run(&phone(1, "kitchen"), "5551239876", &directory(true)).unwrap();
        assert_eq!(
            p.target,
            Target::Trunk {
                number: "+15551239876".into()
            }
        );
        assert_eq!((p.from.as_str(), p.did_id), ("+15551230001", Some(7)));
        let without_number = run(&phone(2, "office"), "5551239876", &directory(true));
        assert_eq!(without_number.unwrap_err().status, 403);
        let without_trunk = run(&phone(1, "kitchen"), "5551239876", &directory(false));
        assert_eq!(without_trunk.unwrap_err().status, 503);
    }

    #[test]
    fn the_guard_refuses_with_a_blocked_record_but_never_an_emergency_call() {
        let mut guard = TollGuard::default();
        let dir = directory(true);
        let caller = phone(2, "office");
        let refused = plan(
            Request {
                caller: &phone(1, "kitchen"),
                dialed: "+4420794601234",
                from_user: "",
                outgoing: 0,
                now: Timestamp::from_unix_millis(0),
                ring: None,
                decided: false,
            },
            &dir,
            &rules(),
            &mut guard,
        )
        .unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(refused.blocked.is_some());
        // The office phone has no number of its own: an emergency call goes
        // out as the household's first number, even at the concurrency cap.
        let p = plan(
            Request {
                caller: &caller,
                dialed: "911",
                from_user: "",
                outgoing: 99,
                now: Timestamp::from_unix_millis(0),
                ring: None,
                decided: false,
            },
            &dir,
            &rules(),
            &mut guard,
        )
        .unwrap();
        assert_eq!(p.from, "+15551230001");
    }
}
