//! SMS auto-replies: when a message arrives, the number's first enabled
//! rule whose trigger holds (Do-Not-Disturb is on, an after-hours schedule
//! is active, a keyword is in the text) answers the sender through the
//! outbox — in the same transaction that stores the incoming message, so a
//! redelivered webhook or a crash can neither lose nor double the answer.
//!
//! Loop and abuse protection, checked before any rule:
//! * only real phone numbers are answered: never short codes (`12345`),
//!   alphanumeric senders (`AMAZON`) or our own numbers;
//! * Twilio's own keywords are left to Twilio: a message that is just
//!   `STOP`, `HELP`, `START`… is answered by Twilio's opt-out handling,
//!   never by us (and such words cannot be auto-reply keywords);
//! * messages that look automated (another auto-responder, verification
//!   codes, "do not reply" notifications, marketing with opt-out footers)
//!   are not answered, so two auto-responders cannot talk to each other;
//! * a rule answers one sender at most once per `messages.auto_reply_hours`
//!   (the first matching rule decides: inside its window nothing is sent).
//!
//! The only write an auto-reply adds is the reply itself (message row and
//! outbox job) and one row of `auto_reply_sent`; an incoming message that
//! gets no answer writes nothing more than it did before.

use std::time::Duration;

use jiff::tz::TimeZone;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::outbox::{Outbox, Task};
use crate::rules::dnd::{household_zone, instant};
use crate::rules::schedule::Schedule;
use crate::store::auto_replies::{self, AutoReply};
use crate::store::dids::{self, Did};
use crate::store::messages::{self, Direction, NewMessage};
use crate::store::StoreError;
use crate::twilio::routing::is_e164;

/// Longest reply accepted (Twilio's limit for one message body).
pub const MAX_REPLY_CHARS: usize = 1600;
/// Most keywords on one rule.
pub const MAX_KEYWORDS: usize = 20;
/// Longest keyword or phrase.
pub const MAX_KEYWORD_CHARS: usize = 60;

/// Twilio's default keywords on long codes: opt-out (`STOP`, `STOPALL`,
/// `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`, `REVOKE`, `OPTOUT`), opt-in
/// (`START`, `YES`, `UNSTOP`) and help (`HELP`, `INFO`). Twilio matches a
/// message that is only the keyword, case-insensitively, and answers it
/// itself; we add the spelled-apart forms people type.
pub const TWILIO_KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
    "opt-out",
    "start",
    "yes",
    "unstop",
    "help",
    "info",
];

/// Phrases that mark a message as sent by a machine (lower case).
const AUTOMATED_MARKERS: &[&str] = &[
    "do not reply",
    "do-not-reply",
    "donotreply",
    "don't reply to this",
    "noreply",
    "no-reply",
    "automated message",
    "automatic reply",
    "automatic response",
    "auto-reply",
    "autoreply",
    "auto reply",
    "auto-response",
    "autoresponse",
    "out of office",
    "this is an automated",
    "verification code",
    "security code",
    "confirmation code",
    "one-time code",
    "one-time password",
    "one time password",
    "passcode",
    "login code",
    "your code is",
    "reply stop",
    "text stop",
    "txt stop",
    "msg&data rates",
    "msg & data rates",
    "msg&data rates may apply",
    "message and data rates",
];

/// How keywords are compared with the text (always case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMatch {
    /// The whole message is the keyword (surrounding spaces and
    /// punctuation aside: "Hours?" is "hours").
    Exact,
    /// The keyword appears in the message as a whole word or phrase
    /// ("what are your hours" contains "hours"; "hoursfoo" does not).
    Contains,
}

/// What makes a rule answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Do-Not-Disturb is on for the number (system-wide, or every user of
    /// the number), as `rules::dnd` computes it.
    Dnd,
    /// The schedule is active now, in the household's time zone.
    AfterHours {
        /// When the household is "closed".
        schedule: Schedule,
    },
    /// The text matches one of the keywords.
    Keyword {
        /// Words or phrases, stored as typed.
        keywords: Vec<String>,
        /// How they are compared.
        #[serde(rename = "match")]
        mode: KeywordMatch,
    },
}

/// A problem with a trigger as typed: the field (`trigger.keywords`…) and
/// what is wrong.
pub type Problem = (String, String);

fn problem(field: &str, message: impl Into<String>) -> Problem {
    (field.to_string(), message.into())
}

impl Trigger {
    /// Reads and validates a trigger object of the API (or of a stored
    /// row); every problem names its field under `trigger`.
    pub fn from_json(v: &Value) -> Result<Trigger, Vec<Problem>> {
        let Some(obj) = v.as_object() else {
            return Err(vec![problem(
                "trigger",
                "expected an object such as {\"type\": \"dnd\"}",
            )]);
        };
        let allowed: &[&str] = match obj.get("type").and_then(Value::as_str) {
            Some("dnd") => &["type"],
            Some("after_hours") => &["type", "schedule"],
            Some("keyword") => &["type", "keywords", "match"],
            _ => {
                return Err(vec![problem(
                    "trigger.type",
                    "one of dnd, after_hours, keyword",
                )])
            }
        };
        let mut problems: Vec<Problem> = obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| problem(&format!("trigger.{k}"), "unknown field for this trigger"))
            .collect();
        let trigger = match obj.get("type").and_then(Value::as_str) {
            Some("dnd") => Some(Trigger::Dnd),
            Some("after_hours") => match obj.get("schedule") {
                None | Some(Value::Null) => {
                    problems.push(problem(
                        "trigger.schedule",
                        "required: when the household is closed",
                    ));
                    None
                }
                Some(s) => match Schedule::deserialize(s) {
                    Err(e) => {
                        problems.push(problem("trigger.schedule", format!("not a schedule: {e}")));
                        None
                    }
                    Ok(schedule) => match schedule.validate() {
                        Err(e) => {
                            problems.push(problem("trigger.schedule", e));
                            None
                        }
                        Ok(()) => Some(Trigger::AfterHours { schedule }),
                    },
                },
            },
            _ => {
                let keywords = check_keywords(obj.get("keywords"), &mut problems);
                let mode = match obj.get("match").and_then(Value::as_str) {
                    Some("exact") => Some(KeywordMatch::Exact),
                    Some("contains") => Some(KeywordMatch::Contains),
                    _ => {
                        problems.push(problem("trigger.match", "exact or contains"));
                        None
                    }
                };
                match (keywords, mode) {
                    (Some(keywords), Some(mode)) => Some(Trigger::Keyword { keywords, mode }),
                    _ => None,
                }
            }
        };
        match trigger {
            Some(t) if problems.is_empty() => Ok(t),
            _ => Err(problems),
        }
    }

    /// The stored and served form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The trigger's type, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Dnd => "dnd",
            Trigger::AfterHours { .. } => "after_hours",
            Trigger::Keyword { .. } => "keyword",
        }
    }
}

fn check_keywords(v: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Vec<String>> {
    const FIELD: &str = "trigger.keywords";
    let Some(items) = v.and_then(Value::as_array) else {
        problems.push(problem(FIELD, "required: a list of words or phrases"));
        return None;
    };
    if items.is_empty() || items.len() > MAX_KEYWORDS {
        problems.push(problem(FIELD, "1 to 20 words or phrases"));
        return None;
    }
    let mut keywords = Vec::new();
    for item in items {
        let Some(word) = item.as_str().map(str::trim) else {
            problems.push(problem(FIELD, "each keyword is a string"));
            return None;
        };
        if word.is_empty()
            || word.chars().count() > MAX_KEYWORD_CHARS
            || word.chars().any(char::is_control)
            || !word.chars().any(char::is_alphanumeric)
        {
            problems.push(problem(
                FIELD,
                format!(
                    "{word:?}: 1 to 60 characters with a letter or digit, no control characters"
                ),
            ));
            return None;
        }
        if is_twilio_keyword(word) {
            problems.push(problem(
                FIELD,
                format!(
                    "{word:?} is one of Twilio's opt-out/help keywords; Twilio answers it itself"
                ),
            ));
            return None;
        }
        keywords.push(word.to_string());
    }
    Some(keywords)
}

/// Lower case, words separated by single spaces, no punctuation around.
fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    let trimmed = lower.trim_matches(|c: char| !c.is_alphanumeric());
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the whole message is one of Twilio's keywords.
pub fn is_twilio_keyword(body: &str) -> bool {
    let n = normalize(body);
    TWILIO_KEYWORDS.contains(&n.as_str())
}

/// Whether the sender is a phone number we may answer: E.164 with at least
/// seven digits (the shortest real numbers). Short codes (`12345`,
/// `+12345`) and alphanumeric sender IDs are not.
pub fn is_answerable_sender(sender: &str) -> bool {
    is_e164(sender) && sender.len() > 7
}

/// Whether a message looks sent by a machine: the markers above, or a
/// "code" next to a 4–8 digit number (one-time passwords).
pub fn looks_automated(body: &str) -> bool {
    let lower = body.to_lowercase();
    if AUTOMATED_MARKERS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    let has_code_word = lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "code" | "otp" | "pin"));
    has_code_word
        && lower
            .split(|c: char| !c.is_ascii_digit())
            .any(|run| (4..=8).contains(&run.len()))
}

/// Whether `body` matches `keyword` the `mode` way.
pub fn keyword_matches(keyword: &str, mode: KeywordMatch, body: &str) -> bool {
    let (keyword, body) = (normalize(keyword), normalize(body));
    if keyword.is_empty() {
        return false;
    }
    match mode {
        KeywordMatch::Exact => body == keyword,
        KeywordMatch::Contains => {
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
            body.match_indices(&keyword).any(|(at, _)| {
                boundary(body[..at].chars().next_back())
                    && boundary(body[at + keyword.len()..].chars().next())
            })
        }
    }
}

/// Why an incoming message is never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// A short code or alphanumeric sender.
    NotAPhoneNumber,
    /// One of our own numbers.
    OwnNumber,
    /// STOP/HELP/START…: Twilio's.
    TwilioKeyword,
    /// Looks automated.
    Automated,
}

/// The protection checks that need no database.
pub fn screen(sender: &str, body: &str) -> Result<(), Ineligible> {
    if !is_answerable_sender(sender) {
        return Err(Ineligible::NotAPhoneNumber);
    }
    if is_twilio_keyword(body) {
        return Err(Ineligible::TwilioKeyword);
    }
    if looks_automated(body) {
        return Err(Ineligible::Automated);
    }
    Ok(())
}

/// What holds right now for the number.
pub struct Conditions {
    /// The instant, for schedules.
    pub now: jiff::Timestamp,
    /// The household's zone.
    pub tz: TimeZone,
    /// Whether the number is in Do-Not-Disturb.
    pub dnd: bool,
}

/// Whether `trigger` holds for a message with `body`.
pub fn triggers(trigger: &Trigger, body: &str, now: &Conditions) -> bool {
    match trigger {
        Trigger::Dnd => now.dnd,
        Trigger::AfterHours { schedule } => schedule.active_at(now.now, &now.tz),
        Trigger::Keyword { keywords, mode } => {
            keywords.iter().any(|k| keyword_matches(k, *mode, body))
        }
    }
}

/// The first enabled rule whose trigger holds, in order.
pub fn first_match<'a>(
    rules: &'a [(AutoReply, Trigger)],
    body: &str,
    now: &Conditions,
) -> Option<&'a (AutoReply, Trigger)> {
    rules
        .iter()
        .find(|(rule, trigger)| rule.enabled && triggers(trigger, body, now))
}

/// Whether a rule that last answered at `last` may answer again at `now`.
pub fn window_open(last: Option<Timestamp>, now: Timestamp, window: Duration) -> bool {
    last.is_none_or(|last| now.since(last) >= window || now < last)
}

/// An auto-reply queued for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The outgoing message.
    pub message_id: i64,
    /// The rule that answered.
    pub auto_reply_id: i64,
}

/// Answers a message just stored (inside the caller's transaction): finds
/// the rule, applies the protection, stores the reply as an auto-reply and
/// queues its sending. `None` when nothing is sent.
pub fn respond(
    conn: &Connection,
    did: &Did,
    sender: &str,
    body: &str,
    window: Duration,
    now: Timestamp,
) -> Result<Option<Queued>, StoreError> {
    let rules: Vec<(AutoReply, Trigger)> = auto_replies::for_did(conn, did.id)?
        .into_iter()
        .filter(|r| r.enabled)
        .filter_map(|r| match Trigger::from_json(&r.trigger) {
            Ok(t) => Some((r, t)),
            Err(problems) => {
                tracing::warn!(
                    auto_reply = r.id,
                    ?problems,
                    "auto-reply with an unreadable trigger skipped"
                );
                None
            }
        })
        .collect();
    if rules.is_empty() {
        return Ok(None);
    }
    let screened = match screen(sender, body) {
        Ok(()) if dids::find_by_number(conn, sender)?.is_some() => Err(Ineligible::OwnNumber),
        other => other,
    };
    if let Err(why) = screened {
        tracing::info!(from = %sender, reason = ?why, "message not auto-replied");
        return Ok(None);
    }
    let tz = household_zone(conn)?;
    let dnd = if rules.iter().any(|(_, t)| *t == Trigger::Dnd) {
        number_in_dnd(conn, did.id, instant(now), &tz)?
    } else {
        false
    };
    let conditions = Conditions {
        now: instant(now),
        tz,
        dnd,
    };
    let Some((rule, trigger)) = first_match(&rules, body, &conditions) else {
        return Ok(None);
    };
    if !window_open(auto_replies::last_sent(conn, rule.id, sender)?, now, window) {
        tracing::info!(from = %sender, auto_reply = rule.id, "auto-reply already sent to this sender recently");
        return Ok(None);
    }
    let message_id = messages::insert_auto_reply(
        conn,
        &NewMessage {
            message_sid: None,
            direction: Direction::Outbound,
            did_id: did.id,
            from_number: &did.number,
            to_number: sender,
            body: &rule.reply_text,
            media: &Value::Array(Vec::new()),
            status: "pending",
        },
        now,
    )?;
    Outbox::enqueue_in(conn, &Task::SendMessage { message_id }, now)?;
    auto_replies::record_sent(conn, rule.id, sender, now)?;
    tracing::info!(from = %sender, auto_reply = rule.id, trigger = trigger.kind(), message = message_id, "auto-reply queued");
    Ok(Some(Queued {
        message_id,
        auto_reply_id: rule.id,
    }))
}

/// Whether the number is in Do-Not-Disturb now (system-wide, or every
/// user of the number), as the call engine sees it.
fn number_in_dnd(
    conn: &Connection,
    did_id: i64,
    now: jiff::Timestamp,
    tz: &TimeZone,
) -> Result<bool, StoreError> {
    Ok(crate::rules::dnd::view_for_did(conn, did_id, now, tz)?.number_dnd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};
    use serde_json::json;

    const SENDER: &str = "+15559870000";
    const HOUR: Duration = Duration::from_secs(3600);

    fn trigger(v: Value) -> Trigger {
        Trigger::from_json(&v).expect("valid trigger")
    }

    fn at(dnd: bool) -> Conditions {
        Conditions {
            now: instant(t(0)),
            tz: TimeZone::UTC,
            dnd,
        }
    }

    fn rule(id: i64, enabled: bool, trigger: &Trigger) -> (AutoReply, Trigger) {
        (
            AutoReply {
                id,
                did_id: 1,
                trigger: trigger.to_json(),
                reply_text: format!("reply {id}"),
                enabled,
            },
            trigger.clone(),
        )
    }

    #[test]
    fn exact_keywords_match_the_whole_message_in_any_case() {
        use KeywordMatch::Exact;
        assert!(keyword_matches("hours", Exact, "HOURS"));
        assert!(keyword_matches("Hours", Exact, "  hours?! "));
        assert!(keyword_matches("opening times", Exact, "Opening   Times"));
        assert!(!keyword_matches("hours", Exact, "what are your hours"));
        assert!(!keyword_matches("hours", Exact, "hour"));
        assert!(keyword_matches("öffnungszeiten", Exact, "ÖFFNUNGSZEITEN"));
    }

    #[test]
    fn contained_keywords_are_whole_words_or_phrases() {
        use KeywordMatch::Contains;
        assert!(keyword_matches(
            "hours",
            Contains,
            "What are your HOURS today?"
        ));
        assert!(keyword_matches("hours", Contains, "hours"));
        assert!(keyword_matches(
            "opening times",
            Contains,
            "your opening times, please"
        ));
        assert!(!keyword_matches("hours", Contains, "the hoursfoo"));
        assert!(!keyword_matches("hour", Contains, "your hours"));
        assert!(!keyword_matches("hours", Contains, ""));
        assert!(keyword_matches("wifi", Contains, "wifi password pls"));
    }

    #[test]
    fn twilio_keywords_are_whole_messages_only() {
        for k in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "stop all",
            "UNSUBSCRIBE",
            "cancel",
            "END",
            "quit",
            "revoke",
            "optout",
            "START",
            "yes",
            "unstop",
            "HELP",
            "info",
        ] {
            assert!(is_twilio_keyword(k), "{k}");
            assert_eq!(screen(SENDER, k), Err(Ineligible::TwilioKeyword), "{k}");
        }
        for k in [
            "please stop by later",
            "help me move the sofa",
            "stopping by",
            "yes please",
        ] {
            assert!(!is_twilio_keyword(k), "{k}");
        }
    }

    #[test]
    fn short_codes_and_sender_ids_are_never_answered() {
        for sender in [
            "12345",
            "123456",
            "+12345",
            "+123456",
            "AMAZON",
            "Google",
            "",
            "+1555abc0000",
        ] {
            assert_eq!(
                screen(sender, "hello"),
                Err(Ineligible::NotAPhoneNumber),
                "{sender}"
            );
        }
        for sender in [SENDER, "+447700900123", "+6834002"] {
            assert_eq!(screen(sender, "hello"), Ok(()), "{sender}");
        }
    }

    #[test]
    fn automated_looking_messages_are_never_answered() {
        for body in [
            "Your verification code is 482913",
            "G-482913 is your Google verification code.",
            "Your Uber code: 4829. Never share this code.",
            "123456 is your OTP",
            "This is an automated message from your pharmacy. Do not reply.",
            "Auto-reply: I'm driving and will get back to you",
            "Automatic reply: out of office until Monday",
            "Flash sale! 50% off. Reply STOP to opt out. Msg&data rates may apply",
            "Sent from a noreply address",
        ] {
            assert!(looks_automated(body), "{body}");
            assert_eq!(screen(SENDER, body), Err(Ineligible::Automated), "{body}");
        }
        for body in [
            "Are you home? Call me back",
            "The code for the gate is on the fridge",
            "Meet at 1830 by the station",
            "what are your hours",
        ] {
            assert!(!looks_automated(body), "{body}");
        }
    }

    #[test]
    fn the_first_enabled_matching_rule_answers() {
        let dnd = trigger(json!({"type": "dnd"}));
        let hours = trigger(json!({"type": "keyword", "keywords": ["hours"], "match": "contains"}));
        let rules = [
            rule(1, false, &hours),
            rule(2, true, &dnd),
            rule(3, true, &hours),
        ];
        let hit = |body: &str, dnd: bool| first_match(&rules, body, &at(dnd)).map(|(r, _)| r.id);
        assert_eq!(
            hit("your hours?", false),
            Some(3),
            "the disabled rule is skipped"
        );
        assert_eq!(hit("your hours?", true), Some(2), "order decides");
        assert_eq!(hit("hello", true), Some(2));
        assert_eq!(hit("hello", false), None);
    }

    #[test]
    fn after_hours_follows_the_schedule_in_the_household_zone() {
        // t(0) is Saturday 2026-11-21T10:00:00Z: 05:00 in New York, inside
        // Friday's night window.
        let night = trigger(json!({"type": "after_hours", "schedule": {
            "weekly": [{"days": ["fri"], "from": "21:00", "to": "07:00"}], "dates": []}}));
        let rules = [rule(1, true, &night)];
        let mut now = at(false);
        assert!(
            first_match(&rules, "hi", &now).is_none(),
            "10:00 in UTC is not after hours"
        );
        now.tz = TimeZone::get("America/New_York").expect("zone");
        assert!(
            first_match(&rules, "hi", &now).is_some(),
            "05:00 Saturday in New York is"
        );
        let holiday = trigger(json!({"type": "after_hours", "schedule": {
            "weekly": [], "dates": [{"from": "2026-11-21", "to": "2026-11-21", "label": "x"}]}}));
        assert!(triggers(&holiday, "hi", &at(false)));
    }

    #[test]
    fn the_window_allows_one_answer_per_period() {
        let window = 12 * HOUR;
        assert!(window_open(None, t(0), window));
        assert!(!window_open(Some(t(0)), t(60), window));
        assert!(!window_open(Some(t(0)), t(12 * 3600 - 1), window));
        assert!(window_open(Some(t(0)), t(12 * 3600), window));
        assert!(
            window_open(Some(t(60)), t(0), window),
            "a clock set back does not silence a rule for ever"
        );
    }

    #[test]
    fn triggers_are_validated_field_by_field() {
        let err = |v: Value| {
            Trigger::from_json(&v)
                .err()
                .map(|p| p.into_iter().map(|(f, _)| f).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(err(json!({"type": "moon"})), ["trigger.type"]);
        assert_eq!(err(json!({"type": "dnd", "x": 1})), ["trigger.x"]);
        assert_eq!(
            err(json!({"type": "keyword", "keywords": [], "match": "exact"})),
            ["trigger.keywords"]
        );
        assert_eq!(
            err(json!({"type": "keyword", "keywords": ["  "], "match": "exact"})),
            ["trigger.keywords"]
        );
        assert_eq!(
            err(json!({"type": "keyword", "keywords": ["Help"], "match": "exact"})),
            ["trigger.keywords"]
        );
        assert_eq!(
            err(json!({"type": "keyword", "keywords": ["hi"]})),
            ["trigger.match"]
        );
        assert_eq!(
            err(
                json!({"type": "after_hours", "schedule": {"weekly": [{"days": ["mon"], "from": "25:00", "to": "07:00"}], "dates": []}})
            ),
            ["trigger.schedule"]
        );
        let kw = trigger(json!({"type": "keyword", "keywords": [" hours "], "match": "exact"}));
        assert_eq!(
            kw.to_json(),
            json!({"type": "keyword", "keywords": ["hours"], "match": "exact"})
        );
        assert_eq!(Trigger::from_json(&kw.to_json()), Ok(kw));
    }

    fn household() -> (Connection, Did) {
        let conn = db();
        let id = crate::store::dids::tests::make(&conn, "+15551230001");
        let did = dids::get(&conn, id).expect("did");
        (conn, did)
    }

    fn add(conn: &Connection, did: i64, trigger: Value, text: &str) -> i64 {
        auto_replies::insert(
            conn,
            &AutoReply {
                id: 0,
                did_id: did,
                trigger,
                reply_text: text.into(),
                enabled: true,
            },
        )
        .expect("insert rule")
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn a_reply_is_a_flagged_message_with_its_outbox_job_once_per_window() {
        let (conn, did) = household();
        let rule = add(
            &conn,
            did.id,
            json!({"type": "keyword", "keywords": ["hours"], "match": "contains"}),
            "Open 9-5",
        );
        let window = 12 * HOUR;
        let q = respond(&conn, &did, SENDER, "your hours?", window, t(0))
            .expect("respond")
            .expect("answered");
        assert_eq!(q.auto_reply_id, rule);
        let m = messages::get(&conn, q.message_id).expect("message");
        assert_eq!(
            (
                m.direction,
                m.from_number.as_str(),
                m.to_number.as_str(),
                m.body.as_str(),
                m.status.as_str(),
                m.auto_reply
            ),
            (
                Direction::Outbound,
                "+15551230001",
                SENDER,
                "Open 9-5",
                "pending",
                true
            )
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM outbox"), 1);
        // Texting again within the window: nothing, and nothing written.
        for secs in [1, 3600, 12 * 3600 - 1] {
            assert_eq!(
                respond(&conn, &did, SENDER, "HOURS", window, t(secs)).expect("respond"),
                None
            );
        }
        assert_eq!(count(&conn, "SELECT count(*) FROM outbox"), 1);
        assert_eq!(count(&conn, "SELECT count(*) FROM messages"), 1);
        // Another sender is answered; the first again after the window.
        assert!(respond(&conn, &did, "+15559870001", "hours", window, t(5))
            .expect("respond")
            .is_some());
        assert!(respond(&conn, &did, SENDER, "hours", window, t(12 * 3600))
            .expect("respond")
            .is_some());
        assert_eq!(count(&conn, "SELECT count(*) FROM auto_reply_sent"), 2);
    }

    #[test]
    fn nothing_is_sent_to_ineligible_senders_or_without_a_match() {
        let (conn, did) = household();
        add(
            &conn,
            did.id,
            json!({"type": "keyword", "keywords": ["hours"], "match": "contains"}),
            "Open 9-5",
        );
        let other = crate::store::dids::tests::make(&conn, "+15551230002");
        let _ = other;
        for (sender, body) in [
            ("12345", "hours"),
            ("+15551230002", "hours"),
            (SENDER, "STOP"),
            (SENDER, "your hours: verification code 123456"),
            (SENDER, "hello"),
        ] {
            assert_eq!(
                respond(&conn, &did, sender, body, HOUR, t(0)).expect("respond"),
                None,
                "{sender} {body}"
            );
        }
        assert_eq!(count(&conn, "SELECT count(*) FROM auto_reply_sent"), 0);
        assert_eq!(count(&conn, "SELECT count(*) FROM outbox"), 0);
    }

    #[test]
    fn dnd_replies_follow_the_household_switch_once_per_sender() {
        use crate::store::dnd::{self, Scope};
        let (conn, did) = household();
        add(&conn, did.id, json!({"type": "dnd"}), "Not now");
        let hours = 12 * HOUR;
        assert_eq!(
            respond(&conn, &did, SENDER, "hi", hours, t(0)).expect("respond"),
            None
        );
        dnd::put(&conn, Scope::System, 0, true, None, t(1)).expect("dnd on");
        let replies: Vec<_> = (2..5)
            .filter_map(|s| respond(&conn, &did, SENDER, "hi?", hours, t(s)).expect("respond"))
            .collect();
        assert_eq!(replies.len(), 1, "three texts, one answer");
        dnd::put(&conn, Scope::System, 0, false, None, t(10)).expect("dnd off");
        assert_eq!(
            respond(&conn, &did, "+15559870001", "hi", hours, t(11)).expect("respond"),
            None
        );
    }
}
