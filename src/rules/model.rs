//! The routing-rule model: what a number's rules say, as stored (JSON
//! columns) and as the API carries them. Conditions all hold for a rule to
//! match (none = always); its one action says what the caller gets.
//!
//! Deserializing checks shapes and formats; [`Rule::validate`] (through
//! [`RuleInput::validate`]) checks the rest and names the field that is
//! wrong (`conditions[1].value`), for the person who typed it. Whether a
//! phone or caller list exists is checked above, where the store is.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::store::blocklist::PatternType;
use crate::store::devices::DeviceId;

/// Longest rule name.
pub const MAX_NAME_CHARS: usize = 80;
/// Most conditions of one rule.
pub const MAX_CONDITIONS: usize = 16;
/// Most phones one ring step names.
pub const MAX_DEVICES: usize = 32;
/// Most steps of a sequence.
pub const MAX_STEPS: usize = 10;
/// Shortest and longest ring of one sequence step, in seconds.
pub const STEP_SECS: std::ops::RangeInclusive<u32> = 5..=120;
/// Longest spoken message of a `play` action.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Most numbers in one caller list.
pub const MAX_LIST_NUMBERS: usize = 1000;
/// Most verification results one condition lists.
pub const MAX_VERSTATS: usize = 16;

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map($name)
            }
        }
    };
}

id_newtype!(
    /// A routing rule's row id.
    RuleId
);
id_newtype!(
    /// A caller list's row id.
    CallerListId
);

/// A field that fails validation and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The JSON path of the field (`action.devices`, `conditions[0].schedule.weekly[1].days`).
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl Invalid {
    /// `field`: `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

/// A number's routing rule, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Row id.
    pub id: RuleId,
    /// The number (`dids.id`) it belongs to.
    pub did_id: i64,
    /// Order among the number's rules, 0 first.
    pub position: i64,
    /// Shown in the UI and the CDR.
    pub name: String,
    /// Disabled rules are skipped.
    pub enabled: bool,
    /// All must hold; empty = always.
    pub conditions: Vec<Condition>,
    /// What the caller gets when the rule matches.
    pub action: Action,
}

/// A rule as the API receives it (POST and PUT): no id, number or position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// Shown in the UI and the CDR.
    pub name: String,
    /// Defaults to on.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// All must hold; empty or absent = always.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What the caller gets.
    pub action: Action,
}

fn yes() -> bool {
    true
}

/// When a rule applies (`"type"` tags the variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Inside (or, with `outside`, outside) the schedule.
    Time {
        /// When.
        schedule: Schedule,
        /// Invert: the rule holds when the schedule is not in force.
        #[serde(default)]
        outside: bool,
    },
    /// The caller's number matches, as the blocklist matches: digits only
    /// for `exact`/`prefix`, the whole E.164 number for `regex`.
    Caller {
        /// How to compare.
        #[serde(rename = "match")]
        kind: PatternType,
        /// The number, prefix or expression.
        value: String,
    },
    /// The caller is in a caller list (e.g. "VIP").
    CallerList {
        /// The list.
        list_id: CallerListId,
    },
    /// The caller's number is withheld (anonymous, restricted, unavailable).
    Withheld,
    /// The spam-screening add-on scored the call above
    /// [`crate::constants::SPAM_SCORE_THRESHOLD`]; an unknown score never is.
    Spam,
    /// Twilio's STIR/SHAKEN `StirVerstat` is one of these (`"none"` when
    /// Twilio sent none).
    Verification {
        /// E.g. `TN-Validation-Failed-A`, `No-TN-Validation`, `none`.
        verstat: Vec<String>,
    },
    /// Do-Not-Disturb is on for the number (system-wide, or for every user
    /// of the number).
    Dnd,
}

/// What a caller gets (`"type"` tags the variant). Unknown fields are
/// refused, except beside a variant without fields (serde cannot tell for
/// those; they are dropped on the way to the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Every phone of the number's users (today's behaviour).
    RingAll,
    /// These phones at once.
    Ring {
        /// The phones.
        devices: Vec<DeviceId>,
    },
    /// One group of phones after another.
    Sequence {
        /// In order; each rings for its `secs`.
        steps: Vec<RingStep>,
    },
    /// To an external number through Twilio; the toll-fraud guard applies.
    Forward {
        /// E.164.
        number: String,
    },
    /// Straight to the number's voicemail.
    Voicemail,
    /// Refuse the call without answering.
    Reject {
        /// What the caller hears.
        reason: RejectReason,
    },
    /// Speak a message, then hang up.
    Play {
        /// The text.
        message: String,
    },
}

/// How a call is refused: a busy tone, or "not in service"-style rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The caller hears busy.
    Busy,
    /// The caller hears the call refused.
    Rejected,
}

impl RejectReason {
    /// The name in JSON and TwiML (`<Reject reason>`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Busy => "busy",
            RejectReason::Rejected => "rejected",
        }
    }
}

/// Phones that ring together; `secs` is how long before the next step
/// (absent for a single step that rings until the call's ring timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingStep {
    /// The phones.
    pub devices: Vec<DeviceId>,
    /// Seconds this step rings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u32>,
}

/// A named list of callers (`{"id":3,"name":"VIP","numbers":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerList {
    /// Row id.
    pub id: CallerListId,
    /// Shown in the UI.
    pub name: String,
    /// E.164 numbers.
    pub numbers: Vec<String>,
}

/// A caller list as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerListInput {
    /// Shown in the UI.
    pub name: String,
    /// The callers; spaces, dashes and brackets are dropped.
    #[serde(default)]
    pub numbers: Vec<String>,
}

fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Invalid::new(field, "give it a name"));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn check_devices(field: &str, devices: &[DeviceId]) -> Result<(), Invalid> {
    if devices.is_empty() {
        return Err(Invalid::new(field, "pick at least one phone"));
    }
    if devices.len() > MAX_DEVICES {
        return Err(Invalid::new(field, format!("at most {MAX_DEVICES} phones")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = devices.iter().find(|d| !seen.insert(**d)) {
        return Err(Invalid::new(field, format!("phone {d} is listed twice")));
    }
    Ok(())
}

/// A caller-list entry as stored: `+` and digits, with the punctuation
/// people type (spaces, dashes, dots, brackets) dropped.
pub fn normalize_number(raw: &str) -> Result<String, String> {
    let kept: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if crate::twilio::routing::is_e164(&kept) {
        Ok(kept)
    } else {
        Err(format!(
            "{raw:?} is not a phone number in international form (+ and country code)"
        ))
    }
}

impl Condition {
    fn validate(&self, field: &str) -> Result<(), Invalid> {
        match self {
            Condition::Time { schedule, .. } => schedule.validate().map_err(|m| {
                let (sub, msg) = m.split_once(": ").unwrap_or(("", &m));
                Invalid::new(format!("{field}.schedule.{sub}"), msg)
            }),
            Condition::Caller { kind, value } => {
                crate::twilio::routing::check_pattern(*kind, value)
                    .map_err(|m| Invalid::new(format!("{field}.value"), m))
            }
            Condition::Verification { verstat } => {
                if verstat.is_empty() {
                    return Err(Invalid::new(
                        format!("{field}.verstat"),
                        "pick at least one verification result",
                    ));
                }
                if verstat.len() > MAX_VERSTATS {
                    return Err(Invalid::new(
                        format!("{field}.verstat"),
                        format!("at most {MAX_VERSTATS} results"),
                    ));
                }
                match verstat.iter().find(|v| {
                    v.is_empty()
                        || v.len() > 64
                        || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    Some(v) => Err(Invalid::new(
                        format!("{field}.verstat"),
                        format!(
                            "{v:?} is not a verification result such as TN-Validation-Passed-A"
                        ),
                    )),
                    None => Ok(()),
                }
            }
            Condition::CallerList { .. }
            | Condition::Withheld
            | Condition::Spam
            | Condition::Dnd => Ok(()),
        }
    }
}

impl Action {
    /// Checks the action's own fields (not whether its phones exist).
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Action::Ring { devices } => check_devices("action.devices", devices),
            Action::Sequence { steps } => {
                if steps.is_empty() {
                    return Err(Invalid::new("action.steps", "add at least one step"));
                }
                if steps.len() > MAX_STEPS {
                    return Err(Invalid::new(
                        "action.steps",
                        format!("at most {MAX_STEPS} steps"),
                    ));
                }
                for (i, s) in steps.iter().enumerate() {
                    check_devices(&format!("action.steps[{i}].devices"), &s.devices)?;
                    match s.secs {
                        Some(secs) if STEP_SECS.contains(&secs) => {}
                        _ => {
                            return Err(Invalid::new(
                                format!("action.steps[{i}].secs"),
                                format!(
                                    "ring between {} and {} seconds",
                                    STEP_SECS.start(),
                                    STEP_SECS.end()
                                ),
                            ))
                        }
                    }
                }
                Ok(())
            }
            Action::Forward { number } => {
                if crate::twilio::routing::is_e164(number) {
                    Ok(())
                } else {
                    Err(Invalid::new(
                        "action.number",
                        format!("{number:?} is not an E.164 number (+ and country code)"),
                    ))
                }
            }
            Action::Play { message } => {
                let m = message.trim();
                if m.is_empty() {
                    Err(Invalid::new(
                        "action.message",
                        "write what the caller hears",
                    ))
                } else if m.chars().count() > MAX_MESSAGE_CHARS {
                    Err(Invalid::new(
                        "action.message",
                        format!("at most {MAX_MESSAGE_CHARS} characters"),
                    ))
                } else {
                    Ok(())
                }
            }
            Action::RingAll | Action::Voicemail | Action::Reject { .. } => Ok(()),
        }
    }

    /// The phones the action names, in order, without repeats (empty for
    /// `ring_all` and the actions that ring nothing).
    pub fn devices(&self) -> Vec<DeviceId> {
        let mut out: Vec<DeviceId> = Vec::new();
        let mut push = |ds: &[DeviceId]| {
            for d in ds {
                if !out.contains(d) {
                    out.push(*d);
                }
            }
        };
        match self {
            Action::Ring { devices } => push(devices),
            Action::Sequence { steps } => steps.iter().for_each(|s| push(&s.devices)),
            _ => {}
        }
        out
    }
}

impl RuleInput {
    /// Checks every field; the first problem, with its field named.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("name", &self.name)?;
        if self.conditions.len() > MAX_CONDITIONS {
            return Err(Invalid::new(
                "conditions",
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            c.validate(&format!("conditions[{i}]"))?;
        }
        self.action.validate()
    }

    /// The caller lists the rule refers to.
    pub fn caller_lists(&self) -> Vec<CallerListId> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::CallerList { list_id } => Some(*list_id),
                _ => None,
            })
            .collect()
    }
}

impl Rule {
    /// The editable part.
    pub fn input(&self) -> RuleInput {
        RuleInput {
            name: self.name.clone(),
            enabled: self.enabled,
            conditions: self.conditions.clone(),
            action: self.action.clone(),
        }
    }

    /// Checks every field (see [`RuleInput::validate`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.input().validate()
    }
}

impl CallerListInput {
    /// Checks the name and normalizes the numbers (duplicates dropped).
    pub fn normalized(&self) -> Result<CallerListInput, Invalid> {
        check_name("name", &self.name)?;
        if self.numbers.len() > MAX_LIST_NUMBERS {
            return Err(Invalid::new(
                "numbers",
                format!("at most {MAX_LIST_NUMBERS} numbers"),
            ));
        }
        let mut numbers: Vec<String> = Vec::with_capacity(self.numbers.len());
        for (i, raw) in self.numbers.iter().enumerate() {
            let n = normalize_number(raw).map_err(|m| Invalid::new(format!("numbers[{i}]"), m))?;
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        Ok(CallerListInput {
            name: self.name.trim().to_string(),
            numbers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: serde_json::Value) -> RuleInput {
        serde_json::from_value(v).expect("rule input")
    }

    #[test]
    fn every_condition_and_action_has_the_contract_shape() {
        let conditions = json!([
            {"type":"time","schedule":{"weekly":[{"days":["mon"],"from":"21:00","to":"07:00"}],"dates":[]},"outside":false},
            {"type":"caller","match":"prefix","value":"+1555"},
            {"type":"caller_list","list_id":3},
            {"type":"withheld"},
            {"type":"spam"},
            {"type":"verification","verstat":["TN-Validation-Failed-A","none"]},
            {"type":"dnd"}
        ]);
        let actions = [
            json!({"type":"ring_all"}),
            json!({"type":"ring","devices":[1,2]}),
            json!({"type":"sequence","steps":[{"devices":[1],"secs":15},{"devices":[2],"secs":20}]}),
            json!({"type":"forward","number":"+15551239999"}),
            json!({"type":"voicemail"}),
            json!({"type":"reject","reason":"busy"}),
            json!({"type":"reject","reason":"rejected"}),
            json!({"type":"play","message":"We are asleep."}),
        ];
        for action in actions {
            let v = json!({"name":"r","enabled":true,"conditions":conditions,"action":action});
            let r = input(v.clone());
            r.validate().expect("valid");
            assert_eq!(serde_json::to_value(&r).expect("json"), v);
        }
        let r = input(json!({"name":"always","action":{"type":"voicemail"}}));
        assert!(r.enabled && r.conditions.is_empty(), "defaults");
        let rule = Rule {
            id: RuleId(7),
            did_id: 1,
            position: 2,
            name: "Kids' bedtime".into(),
            enabled: true,
            conditions: vec![Condition::Dnd],
            action: Action::Voicemail,
        };
        assert_eq!(
            serde_json::to_value(&rule).expect("json"),
            json!({"id":7,"did_id":1,"position":2,"name":"Kids' bedtime","enabled":true,
                   "conditions":[{"type":"dnd"}],"action":{"type":"voicemail"}})
        );
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        for v in [
            json!({"name":"r","action":{"type":"teleport"}}),
            json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"moon"}]}),
            json!({"name":"r","action":{"type":"reject","reason":"maybe"}}),
            json!({"name":"r","action":{"type":"ring","devices":[1],"secs":3}}),
            json!({"name":"r","action":{"type":"ring_all"},"id":3}),
            json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"caller","match":"glob","value":"1"}]}),
        ] {
            assert!(
                serde_json::from_value::<RuleInput>(v.clone()).is_err(),
                "{v}"
            );
        }
    }

    #[test]
    fn validation_names_the_field() {
        for (v, field) in [
            (json!({"name":"  ","action":{"type":"ring_all"}}), "name"),
            (
                json!({"name":"x".repeat(81),"action":{"type":"ring_all"}}),
                "name",
            ),
            (
                json!({"name":"r","action":{"type":"ring","devices":[]}}),
                "action.devices",
            ),
            (
                json!({"name":"r","action":{"type":"ring","devices":[1,1]}}),
                "action.devices",
            ),
            (
                json!({"name":"r","action":{"type":"sequence","steps":[]}}),
                "action.steps",
            ),
            (
                json!({"name":"r","action":{"type":"sequence","steps":[{"devices":[1],"secs":15},{"devices":[2]}]}}),
                "action.steps[1].secs",
            ),
            (
                json!({"name":"r","action":{"type":"sequence","steps":[{"devices":[1],"secs":2}]}}),
                "action.steps[0].secs",
            ),
            (
                json!({"name":"r","action":{"type":"sequence","steps":[{"devices":[],"secs":20}]}}),
                "action.steps[0].devices",
            ),
            (
                json!({"name":"r","action":{"type":"forward","number":"0900 123"}}),
                "action.number",
            ),
            (
                json!({"name":"r","action":{"type":"play","message":" "}}),
                "action.message",
            ),
            (
                json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"caller","match":"exact","value":"abc"}]}),
                "conditions[0].value",
            ),
            (
                json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"spam"},{"type":"caller","match":"regex","value":"(open"}]}),
                "conditions[1].value",
            ),
            (
                json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"verification","verstat":[]}]}),
                "conditions[0].verstat",
            ),
            (
                json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"verification","verstat":["<x>"]}]}),
                "conditions[0].verstat",
            ),
            (
                json!({"name":"r","action":{"type":"ring_all"},"conditions":[{"type":"time","schedule":{"weekly":[{"days":[],"from":"09:00","to":"10:00"}]}}]}),
                "conditions[0].schedule.weekly[0].days",
            ),
        ] {
            let err = input(v.clone()).validate().expect_err("invalid");
            assert_eq!(err.field, field, "{v}: {err}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn caller_lists_are_normalized() {
        let l: CallerListInput = serde_json::from_value(json!({
            "name": " VIP ", "numbers": ["+1 (555) 123-0001", "+15551230001", "+44.20.7946.0000"]
        }))
        .expect("list");
        let n = l.normalized().expect("valid");
        assert_eq!(n.name, "VIP");
        assert_eq!(n.numbers, ["+15551230001", "+442079460000"]);
        let bad = CallerListInput {
            name: "x".into(),
            numbers: vec!["+15551230001".into(), "555-0100".into()],
        };
        assert_eq!(bad.normalized().expect_err("bad").field, "numbers[1]");
        let devices = Action::Sequence {
            steps: vec![
                RingStep {
                    devices: vec![DeviceId(2), DeviceId(1)],
                    secs: Some(15),
                },
                RingStep {
                    devices: vec![DeviceId(1), DeviceId(3)],
                    secs: Some(15),
                },
            ],
        }
        .devices();
        assert_eq!(devices, [DeviceId(2), DeviceId(1), DeviceId(3)]);
    }
}
