//! The decision for an incoming call, and how it travels to the call layer.
//!
//! [`ring_header`] writes the phones a ring action names into the
//! `X-Homeline-Ring` header of the `<Sip>` URI Twilio dials (Twilio passes
//! `?x-name=value` of a `<Sip>` URI on as headers of its INVITE);
//! [`parse_ring_header`] reads it back in the call layer. The format:
//! `.` separates phones ringing together, `,` separates steps rung one
//! after another, and a step may end in `~SECS` (`1.2,3~20`).
//!
//! [`decide`] is the one decision: the voice webhook (which TwiML), the
//! call layer (for a call that arrives without a decision) and the
//! simulator all call it. It is pure: the caller loads a [`Context`]
//! (see `rules::store`) and passes the facts of the call.
//!
//! Order: the built-in defaults first (the blocklist rejects, as before
//! rules; then anonymous rejection when `calls.reject_anonymous` is on),
//! then the number's rules by position (first match wins, disabled rules
//! skipped), then ring every phone. A phone in DND never rings: when every
//! phone a ring action would ring is in DND, the caller gets voicemail.

use std::collections::BTreeSet;

use jiff::tz::TimeZone;
use serde::Serialize;

use super::dnd::DndView;
use super::model::{
    Action, CallerList, CallerListId, Condition, RejectReason, RingStep, Rule, RuleId, MAX_DEVICES,
    MAX_STEPS,
};
pub use super::signals::CallFacts;
use crate::store::blocklist::Entry;
use crate::store::devices::DeviceId;
use crate::twilio::routing;

/// The custom header naming the rule that decided a call (for the CDR).
pub const RULE_HEADER: &str = "X-Homeline-Rule";
/// The custom header naming the phones to ring (see [`ring_header`]).
pub const RING_HEADER: &str = "X-Homeline-Ring";
/// Longest step a header may carry, in seconds.
pub const MAX_HEADER_STEP_SECS: u32 = 600;

/// The `X-Homeline-Ring` value for a ring action: `None` for `ring_all`
/// (no header: every phone of the number, as before rules existed) and for
/// actions that ring no phone.
pub fn ring_header(action: &Action) -> Option<String> {
    let steps: Vec<RingStep> = match action {
        Action::Ring { devices } => vec![RingStep {
            devices: devices.clone(),
            secs: None,
        }],
        Action::Sequence { steps } => steps.clone(),
        _ => return None,
    };
    Some(format_steps(&steps))
}

/// The header form of ring steps.
pub fn format_steps(steps: &[RingStep]) -> String {
    steps
        .iter()
        .map(|s| {
            let devices: Vec<String> = s.devices.iter().map(|d| d.0.to_string()).collect();
            match s.secs {
                Some(secs) => format!("{}~{secs}", devices.join(".")),
                None => devices.join("."),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads an `X-Homeline-Ring` value. Strict: anything but the format (or
/// more than [`MAX_STEPS`] steps, [`MAX_DEVICES`] phones in a step, a phone
/// twice, a step longer than [`MAX_HEADER_STEP_SECS`]) is an error, which
/// the call layer logs and treats as "ring every phone". `%2C` is read as
/// `,` in case a proxy escaped it.
pub fn parse_ring_header(value: &str) -> Result<Vec<RingStep>, String> {
    let value = value.trim().replace("%2C", ",").replace("%2c", ",");
    if value.is_empty() {
        return Err("empty ring list".into());
    }
    let parts: Vec<&str> = value.split(',').collect();
    if parts.len() > MAX_STEPS {
        return Err(format!("more than {MAX_STEPS} steps"));
    }
    let mut seen = BTreeSet::new();
    let mut steps = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let (list, secs) = match part.split_once('~') {
            Some((list, secs)) => {
                let secs: u32 = secs
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_HEADER_STEP_SECS).contains(s))
                    .ok_or_else(|| {
                        format!("step {}: {secs:?} is not a number of seconds", i + 1)
                    })?;
                (list, Some(secs))
            }
            None => (*part, None),
        };
        let ids: Vec<&str> = list.split('.').collect();
        if ids.len() > MAX_DEVICES {
            return Err(format!("step {}: more than {MAX_DEVICES} phones", i + 1));
        }
        let mut devices = Vec::with_capacity(ids.len());
        for id in ids {
            let d = id
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
                .map(DeviceId)
                .ok_or_else(|| format!("step {}: {id:?} is not a phone id", i + 1))?;
            if !seen.insert(d) {
                return Err(format!("phone {d} is named twice"));
            }
            devices.push(d);
        }
        steps.push(RingStep { devices, secs });
    }
    Ok(steps)
}

/// Everything besides the call that a decision depends on.
#[derive(Debug, Clone)]
pub struct Context {
    /// The instant of the call.
    pub now: jiff::Timestamp,
    /// The household's zone (`system.timezone`).
    pub tz: TimeZone,
    /// The blocklist, newest first (as `store::blocklist::list` gives it).
    pub blocklist: Vec<Entry>,
    /// `calls.reject_anonymous`.
    pub reject_anonymous: bool,
    /// The number's rules, in position order.
    pub rules: Vec<Rule>,
    /// The caller lists rules refer to.
    pub caller_lists: Vec<CallerList>,
    /// Every phone of the number's users (what `ring_all` rings).
    pub devices: Vec<DeviceId>,
    /// Do-Not-Disturb now.
    pub dnd: DndView,
    /// Scores above this are spam ([`crate::constants::SPAM_SCORE_THRESHOLD`]).
    pub spam_threshold: f64,
}

impl Context {
    /// A context with no rules, lists, phones, blocklist or DND, at `now`
    /// in `tz` (the rest is filled in by the caller).
    pub fn new(now: jiff::Timestamp, tz: TimeZone) -> Context {
        Context {
            now,
            tz,
            blocklist: Vec::new(),
            reject_anonymous: false,
            rules: Vec::new(),
            caller_lists: Vec::new(),
            devices: Vec::new(),
            dnd: DndView::default(),
            spam_threshold: crate::constants::SPAM_SCORE_THRESHOLD,
        }
    }
}

/// The rule that made a decision, as the API and the CDR name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Its id.
    pub id: RuleId,
    /// Its name when the decision was made.
    pub name: String,
}

/// Which built-in default decided, when no rule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultKind {
    /// The caller is on the blocklist.
    Blocklist,
    /// The caller ID is withheld and `calls.reject_anonymous` is on.
    Anonymous,
    /// No rule matched (or the number has none): ring every phone.
    NoRules,
}

/// What happens to a call, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What the caller gets (after DND: a ring action whose phones are all
    /// in DND has become voicemail).
    pub action: Action,
    /// The rule that matched, if one did.
    pub rule: Option<RuleRef>,
    /// The default that decided, if no rule did.
    pub default: Option<DefaultKind>,
    /// In plain words, for the simulator and the log.
    pub explanation: String,
    /// The phones that will ring, step by step, without those in DND
    /// (empty when nothing rings).
    #[serde(skip)]
    pub rings: Vec<RingStep>,
}

fn holds(c: &Condition, call: &CallFacts, ctx: &Context) -> bool {
    match c {
        Condition::Time { schedule, outside } => schedule.active_at(ctx.now, &ctx.tz) != *outside,
        Condition::Caller { kind, value } => {
            !call.withheld && routing::pattern_matches(*kind, value, &call.from)
        }
        Condition::CallerList { list_id } => !call.withheld && in_list(*list_id, call, ctx),
        Condition::Withheld => call.withheld,
        Condition::Spam => call.spam_score.is_some_and(|s| s > ctx.spam_threshold),
        Condition::Verification { verstat } => {
            let got = call.verstat.as_deref().unwrap_or("none");
            verstat.iter().any(|v| v.eq_ignore_ascii_case(got))
        }
        Condition::Dnd => ctx.dnd.number_dnd,
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn in_list(id: CallerListId, call: &CallFacts, ctx: &Context) -> bool {
    let caller = digits(&call.from);
    !caller.is_empty()
        && ctx
            .caller_lists
            .iter()
            .find(|l| l.id == id)
            .is_some_and(|l| l.numbers.iter().any(|n| digits(n) == caller))
}

/// The steps an action rings, phones in DND left out and emptied steps
/// dropped; `None` for actions that ring nothing.
fn ring_steps(action: &Action, ctx: &Context) -> Option<Vec<RingStep>> {
    let steps = match action {
        Action::RingAll => vec![RingStep {
            devices: ctx.devices.clone(),
            secs: None,
        }],
        Action::Ring { devices } => vec![RingStep {
            devices: devices.clone(),
            secs: None,
        }],
        Action::Sequence { steps } => steps.clone(),
        _ => return None,
    };
    Some(
        steps
            .into_iter()
            .map(|s| RingStep {
                devices: s
                    .devices
                    .into_iter()
                    .filter(|d| !ctx.dnd.devices.contains(d))
                    .collect(),
                secs: s.secs,
            })
            .filter(|s| !s.devices.is_empty())
            .collect(),
    )
}

fn describe(action: &Action) -> String {
    match action {
        Action::RingAll => "rings every phone of the number".into(),
        Action::Ring { devices } => format!("rings {}", phones(devices)),
        Action::Sequence { steps } => format!(
            "rings {}",
            steps
                .iter()
                .map(|s| match s.secs {
                    Some(secs) => format!("{} for {secs} s", phones(&s.devices)),
                    None => phones(&s.devices),
                })
                .collect::<Vec<_>>()
                .join(", then ")
        ),
        Action::Forward { number } => format!("forwards the call to {number}"),
        Action::Voicemail => "goes straight to voicemail".into(),
        Action::Reject {
            reason: RejectReason::Busy,
        } => "rejects the call with a busy signal".into(),
        Action::Reject {
            reason: RejectReason::Rejected,
        } => "rejects the call".into(),
        Action::Play { .. } => "plays a message and hangs up".into(),
    }
}

fn phones(devices: &[DeviceId]) -> String {
    let ids: Vec<String> = devices.iter().map(|d| format!("#{d}")).collect();
    match ids.len() {
        1 => format!("phone {}", ids[0]),
        _ => format!("phones {}", ids.join(", ")),
    }
}

/// Applies DND to a ring action: the rings, or voicemail when none is left.
fn finish(
    action: Action,
    rule: Option<RuleRef>,
    default: Option<DefaultKind>,
    why: String,
    ctx: &Context,
) -> Decision {
    let Some(rings) = ring_steps(&action, ctx) else {
        return Decision {
            explanation: format!("{why}: {}.", describe(&action)),
            action,
            rule,
            default,
            rings: Vec::new(),
        };
    };
    // A number without phones keeps today's behaviour (Twilio dials and
    // the call falls through to voicemail); only DND empties a ring.
    let wanted = ring_steps_without_dnd(&action, ctx);
    if rings.is_empty() && !wanted.is_empty() {
        return Decision {
            explanation: format!(
                "{why}: {}, but every one of them is in Do-Not-Disturb, so the caller gets voicemail.",
                describe(&action)
            ),
            action: Action::Voicemail,
            rule,
            default,
            rings,
        };
    }
    let skipped = wanted
        .len()
        .saturating_sub(rings.iter().map(|s| s.devices.len()).sum::<usize>());
    let dnd_note = match skipped {
        0 => String::new(),
        1 => " (one phone in Do-Not-Disturb does not ring)".into(),
        n => format!(" ({n} phones in Do-Not-Disturb do not ring)"),
    };
    Decision {
        explanation: format!("{why}: {}{dnd_note}.", describe(&action)),
        action,
        rule,
        default,
        rings,
    }
}

fn ring_steps_without_dnd(action: &Action, ctx: &Context) -> Vec<DeviceId> {
    match action {
        Action::RingAll => ctx.devices.clone(),
        other => other.devices(),
    }
}

/// The decision for `call` (see the module documentation for the order).
pub fn decide(call: &CallFacts, ctx: &Context) -> Decision {
    if !call.withheld {
        if let Some(entry) = routing::first_match(&ctx.blocklist, &call.from) {
            let reason = if entry.reason.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", entry.reason.trim())
            };
            return finish(
                Action::Reject {
                    reason: RejectReason::Rejected,
                },
                None,
                Some(DefaultKind::Blocklist),
                format!(
                    "{} is on the blocklist (pattern {}{reason})",
                    call.from, entry.pattern
                ),
                ctx,
            );
        }
    }
    if call.withheld && ctx.reject_anonymous {
        return finish(
            Action::Reject {
                reason: RejectReason::Rejected,
            },
            None,
            Some(DefaultKind::Anonymous),
            "The caller ID is withheld and anonymous calls are rejected".into(),
            ctx,
        );
    }
    let matched = ctx
        .rules
        .iter()
        .filter(|r| r.enabled)
        .find(|r| r.conditions.iter().all(|c| holds(c, call, ctx)));
    match matched {
        Some(rule) => finish(
            rule.action.clone(),
            Some(RuleRef {
                id: rule.id,
                name: rule.name.clone(),
            }),
            None,
            format!("Rule \"{}\" matched", rule.name),
            ctx,
        ),
        None => {
            let why = if ctx.rules.iter().any(|r| r.enabled) {
                "No rule matched"
            } else {
                "The number has no active rules"
            };
            finish(
                Action::RingAll,
                None,
                Some(DefaultKind::NoRules),
                why.into(),
                ctx,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::RuleInput;
    use crate::store::blocklist::PatternType;
    use serde_json::json;

    const NY: &str = "America/New_York";

    /// A context in New York at local `at` with phones 1, 2 and 3.
    fn ctx(at: &str, rules: serde_json::Value) -> Context {
        let tz = TimeZone::get(NY).expect("zone");
        let dt: jiff::civil::DateTime = at.parse().expect("datetime");
        let now = tz.to_ambiguous_timestamp(dt).compatible().expect("instant");
        let mut c = Context::new(now, tz);
        c.devices = vec![DeviceId(1), DeviceId(2), DeviceId(3)];
        c.rules = rules
            .as_array()
            .expect("array")
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let input: RuleInput = serde_json::from_value(v.clone()).expect("rule");
                input.validate().expect("valid");
                Rule {
                    id: RuleId(i as i64 + 1),
                    did_id: 1,
                    position: i as i64,
                    name: input.name,
                    enabled: input.enabled,
                    conditions: input.conditions,
                    action: input.action,
                }
            })
            .collect();
        c.caller_lists = vec![CallerList {
            id: CallerListId(3),
            name: "VIP".into(),
            numbers: vec!["+15550000001".into()],
        }];
        c
    }

    fn call(from: &str) -> CallFacts {
        CallFacts {
            to: "+15551230001".into(),
            from: from.into(),
            withheld: crate::rules::signals::is_withheld(from),
            ..CallFacts::default()
        }
    }

    fn rule(
        name: &str,
        conditions: serde_json::Value,
        action: serde_json::Value,
    ) -> serde_json::Value {
        json!({"name": name, "conditions": conditions, "action": action})
    }

    fn bedtime() -> serde_json::Value {
        json!({"type":"time","schedule":{"weekly":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"21:00","to":"07:00"}]}})
    }

    #[test]
    fn no_rules_ring_every_phone() {
        let d = decide(&call("+15557654321"), &ctx("2026-12-02T12:00", json!([])));
        assert_eq!(d.action, Action::RingAll);
        assert_eq!(
            (d.rule.clone(), d.default),
            (None, Some(DefaultKind::NoRules))
        );
        assert_eq!(d.rings[0].devices, [DeviceId(1), DeviceId(2), DeviceId(3)]);
        assert!(
            d.explanation.contains("no active rules"),
            "{}",
            d.explanation
        );
        assert_eq!(
            serde_json::to_value(&d).expect("json"),
            json!({"action":{"type":"ring_all"},"rule":null,"default":"no_rules","explanation":d.explanation})
        );
    }

    #[test]
    fn time_rule_across_midnight_rings_the_chosen_phone() {
        let rules = json!([rule(
            "Kids' bedtime",
            json!([bedtime()]),
            json!({"type":"ring","devices":[2]})
        )]);
        for (at, night) in [
            ("2026-12-02T23:00", true),
            ("2026-12-03T06:59", true),
            ("2026-12-02T12:00", false),
            ("2026-12-03T07:00", false),
            ("2026-12-02T21:00", true),
        ] {
            let d = decide(&call("+15557654321"), &ctx(at, rules.clone()));
            if night {
                assert_eq!(
                    d.action,
                    Action::Ring {
                        devices: vec![DeviceId(2)]
                    },
                    "{at}"
                );
                assert_eq!(
                    d.rule,
                    Some(RuleRef {
                        id: RuleId(1),
                        name: "Kids' bedtime".into()
                    })
                );
                assert_eq!(d.default, None);
                assert_eq!(ring_header(&d.action).as_deref(), Some("2"));
            } else {
                assert_eq!(d.action, Action::RingAll, "{at}");
                assert_eq!(d.default, Some(DefaultKind::NoRules));
                assert!(
                    d.explanation.starts_with("No rule matched"),
                    "{}",
                    d.explanation
                );
            }
        }
        let outside = json!([rule(
            "Office hours",
            json!([{"type":"time","outside":true,
            "schedule":{"weekly":[{"days":["mon","tue","wed","thu","fri"],"from":"09:00","to":"17:00"}]}}]),
            json!({"type":"voicemail"})
        )]);
        // 2026-12-02 is a Wednesday, 2026-12-05 a Saturday.
        assert_eq!(
            decide(
                &call("+15557654321"),
                &ctx("2026-12-02T12:00", outside.clone())
            )
            .action,
            Action::RingAll
        );
        assert_eq!(
            decide(
                &call("+15557654321"),
                &ctx("2026-12-02T18:00", outside.clone())
            )
            .action,
            Action::Voicemail
        );
        assert_eq!(
            decide(&call("+15557654321"), &ctx("2026-12-05T12:00", outside)).action,
            Action::Voicemail
        );
    }

    #[test]
    fn holidays_send_calls_to_voicemail() {
        let rules = json!([rule(
            "Christmas",
            json!([{"type":"time","schedule":{"dates":[
            {"from":"2026-12-24","to":"2026-12-26","label":"Christmas"}]}}]),
            json!({"type":"voicemail"})
        )]);
        assert_eq!(
            decide(
                &call("+15557654321"),
                &ctx("2026-12-25T10:00", rules.clone())
            )
            .action,
            Action::Voicemail
        );
        assert_eq!(
            decide(
                &call("+15557654321"),
                &ctx("2026-12-26T23:59", rules.clone())
            )
            .action,
            Action::Voicemail
        );
        assert_eq!(
            decide(&call("+15557654321"), &ctx("2026-12-27T00:00", rules)).action,
            Action::RingAll
        );
    }

    #[test]
    fn first_match_wins_and_disabled_rules_are_skipped() {
        let mut rules = json!([
            rule(
                "Grandma",
                json!([{"type":"caller","match":"exact","value":"+1 555 000 0001"}]),
                json!({"type":"ring_all"})
            ),
            rule("Night", json!([bedtime()]), json!({"type":"voicemail"})),
            rule("Always", json!([]), json!({"type":"ring","devices":[1]})),
        ]);
        let d = decide(
            &call("+15550000001"),
            &ctx("2026-12-02T23:00", rules.clone()),
        );
        assert_eq!(
            (d.action, d.rule.map(|r| r.name)),
            (Action::RingAll, Some("Grandma".into()))
        );
        let d = decide(
            &call("+15557654321"),
            &ctx("2026-12-02T23:00", rules.clone()),
        );
        assert_eq!(d.rule.map(|r| r.name).as_deref(), Some("Night"));
        let d = decide(
            &call("+15557654321"),
            &ctx("2026-12-02T12:00", rules.clone()),
        );
        assert_eq!(d.rule.map(|r| r.name).as_deref(), Some("Always"));
        rules[0]["enabled"] = json!(false);
        let d = decide(
            &call("+15550000001"),
            &ctx("2026-12-02T23:00", rules.clone()),
        );
        assert_eq!(
            d.rule.map(|r| r.name).as_deref(),
            Some("Night"),
            "disabled Grandma skipped"
        );
        for r in rules.as_array_mut().expect("rules") {
            r["enabled"] = json!(false);
        }
        let d = decide(&call("+15550000001"), &ctx("2026-12-02T23:00", rules));
        assert_eq!(d.default, Some(DefaultKind::NoRules));
        assert!(d.explanation.contains("no active rules"));
    }

    #[test]
    fn caller_conditions_exact_prefix_regex_and_lists() {
        let rules = json!([
            rule(
                "exact",
                json!([{"type":"caller","match":"exact","value":"+15550000009"}]),
                json!({"type":"ring","devices":[1]})
            ),
            rule(
                "prefix",
                json!([{"type":"caller","match":"prefix","value":"+44"}]),
                json!({"type":"ring","devices":[2]})
            ),
            rule(
                "regex",
                json!([{"type":"caller","match":"regex","value":r"\+1900\d+"}]),
                json!({"type":"reject","reason":"busy"})
            ),
            rule(
                "vip",
                json!([{"type":"caller_list","list_id":3}]),
                json!({"type":"ring","devices":[3]})
            ),
            rule(
                "unknown list",
                json!([{"type":"caller_list","list_id":99}]),
                json!({"type":"voicemail"})
            ),
        ]);
        let c = ctx("2026-12-02T12:00", rules);
        let name = |from: &str| decide(&call(from), &c).rule.map(|r| r.name);
        assert_eq!(name("+15550000009").as_deref(), Some("exact"));
        assert_eq!(name("+442079460000").as_deref(), Some("prefix"));
        assert_eq!(name("+19005550100").as_deref(), Some("regex"));
        assert_eq!(name("+15550000001").as_deref(), Some("vip"));
        assert_eq!(name("+15557654321"), None);
        assert_eq!(
            name("anonymous"),
            None,
            "a withheld caller matches no number"
        );
        assert_eq!(
            decide(&call("+19005550100"), &c).action,
            Action::Reject {
                reason: RejectReason::Busy
            }
        );
    }

    #[test]
    fn withheld_spam_verification_and_dnd_conditions() {
        let rules = json!([
            rule(
                "anon",
                json!([{"type":"withheld"}]),
                json!({"type":"play","message":"Please call with your number shown."})
            ),
            rule(
                "spam",
                json!([{"type":"spam"}]),
                json!({"type":"reject","reason":"rejected"})
            ),
            rule(
                "unverified",
                json!([{"type":"verification","verstat":["TN-Validation-Failed-A","none"]}]),
                json!({"type":"voicemail"})
            ),
            rule(
                "dnd",
                json!([{"type":"dnd"}]),
                json!({"type":"forward","number":"+15559990000"})
            ),
        ]);
        let mut c = ctx("2026-12-02T12:00", rules);
        let verified = |from: &str, score: Option<f64>| CallFacts {
            spam_score: score,
            verstat: Some("TN-Validation-Passed-A".into()),
            ..call(from)
        };
        assert_eq!(
            decide(&call("anonymous"), &c)
                .rule
                .map(|r| r.name)
                .as_deref(),
            Some("anon")
        );
        assert_eq!(
            decide(&verified("+15557654321", Some(0.9)), &c)
                .rule
                .map(|r| r.name)
                .as_deref(),
            Some("spam")
        );
        assert_eq!(
            decide(&verified("+15557654321", Some(0.7)), &c).rule,
            None,
            "0.7 is not above 0.7"
        );
        assert_eq!(decide(&verified("+15557654321", Some(0.2)), &c).rule, None);
        assert_eq!(
            decide(&verified("+15557654321", None), &c).rule,
            None,
            "unknown is never spam"
        );
        assert_eq!(
            decide(&call("+15557654321"), &c)
                .rule
                .map(|r| r.name)
                .as_deref(),
            Some("unverified"),
            "no StirVerstat is \"none\""
        );
        let failed = CallFacts {
            verstat: Some("tn-validation-failed-a".into()),
            ..call("+15557654321")
        };
        assert_eq!(
            decide(&failed, &c).rule.map(|r| r.name).as_deref(),
            Some("unverified")
        );
        assert_eq!(
            decide(&verified("+15557654321", None), &c).action,
            Action::RingAll
        );
        c.dnd.number_dnd = true;
        let d = decide(&verified("+15557654321", None), &c);
        assert_eq!(
            d.action,
            Action::Forward {
                number: "+15559990000".into()
            }
        );
        assert_eq!(ring_header(&d.action), None);
        assert!(d.rings.is_empty());
        assert!(
            d.explanation.contains("forwards the call to +15559990000"),
            "{}",
            d.explanation
        );
    }

    #[test]
    fn a_vip_rings_through_dnd_and_phones_in_dnd_never_ring() {
        let rules = json!([
            rule(
                "VIP",
                json!([{"type":"caller_list","list_id":3}]),
                json!({"type":"ring_all"})
            ),
            rule(
                "Quiet",
                json!([{"type":"dnd"}]),
                json!({"type":"voicemail"})
            ),
        ]);
        let mut c = ctx("2026-12-02T23:00", rules);
        c.dnd.number_dnd = true;
        c.dnd.devices = [DeviceId(1)].into();
        let vip = decide(&call("+15550000001"), &c);
        assert_eq!(vip.action, Action::RingAll);
        assert_eq!(
            vip.rings,
            [RingStep {
                devices: vec![DeviceId(2), DeviceId(3)],
                secs: None
            }]
        );
        assert!(
            vip.explanation.contains("one phone in Do-Not-Disturb"),
            "{}",
            vip.explanation
        );
        assert_eq!(decide(&call("+15557654321"), &c).action, Action::Voicemail);
        // Every phone of a ring action in DND: voicemail, and it says so.
        c.dnd.devices = [DeviceId(1), DeviceId(2), DeviceId(3)].into();
        let d = decide(&call("+15550000001"), &c);
        assert_eq!(d.action, Action::Voicemail);
        assert_eq!(d.rule.map(|r| r.name).as_deref(), Some("VIP"));
        assert!(
            d.explanation.contains("Do-Not-Disturb"),
            "{}",
            d.explanation
        );
    }

    #[test]
    fn sequences_skip_phones_in_dnd() {
        let rules = json!([rule(
            "A then B",
            json!([]),
            json!({"type":"sequence","steps":[
            {"devices":[1],"secs":15},{"devices":[2,3],"secs":20}]})
        )]);
        let mut c = ctx("2026-12-02T12:00", rules);
        let d = decide(&call("+15557654321"), &c);
        assert_eq!(ring_header(&d.action).as_deref(), Some("1~15,2.3~20"));
        assert_eq!(d.rings.len(), 2);
        assert!(
            d.explanation
                .contains("phone #1 for 15 s, then phones #2, #3 for 20 s"),
            "{}",
            d.explanation
        );
        c.dnd.devices = [DeviceId(1), DeviceId(3)].into();
        let d = decide(&call("+15557654321"), &c);
        assert_eq!(
            d.rings,
            [RingStep {
                devices: vec![DeviceId(2)],
                secs: Some(20)
            }]
        );
        assert!(matches!(d.action, Action::Sequence { .. }));
    }

    #[test]
    fn defaults_come_before_rules() {
        let rules = json!([rule("Everyone", json!([]), json!({"type":"ring_all"}))]);
        let mut c = ctx("2026-12-02T12:00", rules);
        c.blocklist = vec![Entry {
            id: 1,
            pattern: "+1900".into(),
            pattern_type: PatternType::Prefix,
            reason: "premium".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }];
        let d = decide(&call("+19005550100"), &c);
        assert_eq!(
            d.action,
            Action::Reject {
                reason: RejectReason::Rejected
            }
        );
        assert_eq!((d.rule, d.default), (None, Some(DefaultKind::Blocklist)));
        assert!(
            d.explanation.contains("blocklist") && d.explanation.contains("premium"),
            "{}",
            d.explanation
        );
        assert_eq!(
            decide(&call("anonymous"), &c)
                .rule
                .map(|r| r.name)
                .as_deref(),
            Some("Everyone")
        );
        c.reject_anonymous = true;
        let d = decide(&call("anonymous"), &c);
        assert_eq!(d.default, Some(DefaultKind::Anonymous));
        assert_eq!(
            d.action,
            Action::Reject {
                reason: RejectReason::Rejected
            }
        );
        assert_eq!(
            decide(&call("+15557654321"), &c)
                .rule
                .map(|r| r.name)
                .as_deref(),
            Some("Everyone")
        );
    }

    #[test]
    fn every_action_is_described() {
        for (action, words) in [
            (json!({"type":"voicemail"}), "straight to voicemail"),
            (json!({"type":"reject","reason":"busy"}), "busy"),
            (json!({"type":"play","message":"Hi"}), "plays a message"),
            (json!({"type":"ring","devices":[3]}), "rings phone #3"),
        ] {
            let c = ctx("2026-12-02T12:00", json!([rule("r", json!([]), action)]));
            let d = decide(&call("+15557654321"), &c);
            assert!(
                d.explanation.starts_with("Rule \"r\" matched: "),
                "{}",
                d.explanation
            );
            assert!(d.explanation.contains(words), "{}", d.explanation);
        }
    }

    fn step(ids: &[i64], secs: Option<u32>) -> RingStep {
        RingStep {
            devices: ids.iter().copied().map(DeviceId).collect(),
            secs,
        }
    }

    #[test]
    fn ring_header_round_trips() {
        assert_eq!(ring_header(&Action::RingAll), None);
        assert_eq!(ring_header(&Action::Voicemail), None);
        let ring = Action::Ring {
            devices: vec![DeviceId(1), DeviceId(2)],
        };
        assert_eq!(ring_header(&ring).as_deref(), Some("1.2"));
        let seq = Action::Sequence {
            steps: vec![step(&[1], Some(15)), step(&[2, 3], Some(20))],
        };
        let h = ring_header(&seq).expect("header");
        assert_eq!(h, "1~15,2.3~20");
        assert_eq!(
            parse_ring_header(&h).expect("parse"),
            [step(&[1], Some(15)), step(&[2, 3], Some(20))]
        );
        assert_eq!(
            parse_ring_header("1.2,3").expect("parse"),
            [step(&[1, 2], None), step(&[3], None)]
        );
        assert_eq!(
            parse_ring_header(" 4%2C5~9 ").expect("escaped comma"),
            [step(&[4], None), step(&[5], Some(9))]
        );
    }

    #[test]
    fn bad_ring_headers_are_errors() {
        for bad in [
            "",
            " ",
            "1,",
            ",1",
            "1..2",
            "a",
            "-1",
            "0",
            "+1",
            "1~",
            "1~0",
            "1~601",
            "1~x",
            "1,1",
            "1.2,2",
            "1~15~3",
            "99999999999999999999",
        ] {
            assert!(parse_ring_header(bad).is_err(), "{bad:?}");
        }
        let many = (1..=MAX_STEPS + 1)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_ring_header(&many).is_err());
    }
}
