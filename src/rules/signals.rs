//! What Twilio tells us about a caller, read from the voice webhook's
//! parameters in their real formats, defensively: a missing, malformed or
//! failed signal is "unknown", never "spam" or "withheld".
//!
//! * Withheld caller ID: Twilio's `From` is then an alpha string such as
//!   `anonymous`, `restricted`, `unknown`, `unavailable`, `private` or
//!   `blocked` (any case), or, on older calls, the same word spelled on a
//!   phone keypad (`+266696687` is ANONYMOUS), or empty.
//! * Spam score: a spam-screening Marketplace add-on installed on the
//!   number puts its result in the `AddOns` parameter, a JSON document
//!   `{"status":"successful","results":{"<addon>":{"status":"successful",
//!   "result":{…}}}}`. Nomorobo Spam Score's result is `{"score":0|1}`;
//!   Marchex Clean Call's is `{"result":{"recommendation":"PASS"|"FLAG"|"BLOCK"}}`;
//!   other scorers give a 0–1 `score` or a 0–100 `spam_score`/`risk_level`.
//!   The call's score is the highest any successful add-on gave.
//! * Caller verification: STIR/SHAKEN's result is `StirVerstat`
//!   (`TN-Validation-Passed-A`, `TN-Validation-Failed-B`, `No-TN-Validation`…).

use serde_json::Value;

/// The facts about one incoming call the engine decides on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallFacts {
    /// The number called (one of ours, E.164).
    pub to: String,
    /// The caller as Twilio sent it (E.164, or `anonymous` and the like).
    pub from: String,
    /// Caller name (CNAM) if Twilio looked it up.
    pub caller_name: Option<String>,
    /// The caller ID is withheld.
    pub withheld: bool,
    /// 0.0 (clean) to 1.0 (spam); `None` when no add-on said.
    pub spam_score: Option<f64>,
    /// `StirVerstat`, if Twilio sent one.
    pub verstat: Option<String>,
}

/// Words Twilio (and carriers) put in `From` for a withheld caller ID.
const WITHHELD_WORDS: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "private",
    "blocked",
    "withheld",
];

/// The same words spelled on a phone keypad, as Twilio used to send them.
const WITHHELD_DIGITS: &[&str] = &[
    "266696687",   // ANONYMOUS
    "7378742833",  // RESTRICTED
    "8656696",     // UNKNOWN
    "86282452253", // UNAVAILABLE
    "7748283",     // PRIVATE
    "2562533",     // BLOCKED
];

/// Whether `from` (Twilio's `From`) is a withheld caller ID.
pub fn is_withheld(from: &str) -> bool {
    let f = from.trim();
    let user = crate::twilio::routing::sip_user(f);
    if user.is_empty() || user == "+" {
        return true;
    }
    if WITHHELD_WORDS.iter().any(|w| user.eq_ignore_ascii_case(w)) {
        return true;
    }
    let digits = user.strip_prefix('+').unwrap_or(user);
    WITHHELD_DIGITS.contains(&digits)
}

/// A 0–1 score from one add-on's `result`, if it carries one we know.
fn score_of(result: &Value) -> Option<f64> {
    let unit = |v: &Value| v.as_f64().filter(|s| (0.0..=1.0).contains(s));
    let percent = |v: &Value| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|s| (0.0..=100.0).contains(s))
            .map(|s| s / 100.0)
    };
    if let Some(s) = result.get("score").and_then(unit) {
        return Some(s);
    }
    if let Some(s) = result.get("spam_score").and_then(percent) {
        return Some(s);
    }
    if let Some(s) = result.get("risk_level").and_then(percent) {
        return Some(s);
    }
    // Marchex Clean Call nests its verdict one level down.
    let rec = result
        .get("result")
        .and_then(|r| r.get("recommendation"))
        .or_else(|| result.get("recommendation"))
        .and_then(Value::as_str)?;
    match rec.to_ascii_uppercase().as_str() {
        "BLOCK" => Some(1.0),
        "FLAG" => Some(0.5),
        "PASS" => Some(0.0),
        _ => None,
    }
}

/// The spam score in an `AddOns` parameter: the highest score of any
/// add-on whose own status is `successful`; `None` for an absent,
/// malformed or failed document, or one with no scorer in it.
pub fn spam_score(add_ons: &str) -> Option<f64> {
    let doc: Value = serde_json::from_str(add_ons.trim()).ok()?;
    if doc.get("status").and_then(Value::as_str) != Some("successful") {
        return None;
    }
    doc.get("results")?
        .as_object()?
        .values()
        .filter(|r| r.get("status").and_then(Value::as_str) == Some("successful"))
        .filter_map(|r| r.get("result").and_then(score_of))
        .fold(None, |best: Option<f64>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        })
}

impl CallFacts {
    /// The facts of a voice webhook, from its parameters by name (missing
    /// ones read as empty).
    pub fn from_twilio<'a>(param: impl Fn(&str) -> &'a str) -> CallFacts {
        let from = param("From").trim().to_string();
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        CallFacts {
            to: param("To").trim().to_string(),
            withheld: is_withheld(&from),
            from,
            caller_name: non_empty(param("CallerName")),
            spam_score: spam_score(param("AddOns")),
            verstat: non_empty(param("StirVerstat")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn withheld_caller_ids() {
        for w in [
            "anonymous",
            "Anonymous",
            "RESTRICTED",
            "unknown",
            "Unavailable",
            "private",
            "+266696687",
            "266696687",
            "+7378742833",
            "+86282452253",
            "+8656696",
            "",
            "  ",
            "sip:anonymous@anonymous.invalid",
        ] {
            assert!(is_withheld(w), "{w:?}");
        }
        for n in [
            "+15551230001",
            "+442079460000",
            "+2666966870",
            "sip:+15551230001@x",
        ] {
            assert!(!is_withheld(n), "{n:?}");
        }
    }

    fn addons(results: serde_json::Value) -> String {
        json!({"status":"successful","message":null,"code":null,"results":results}).to_string()
    }

    #[test]
    fn spam_scores_from_real_add_on_documents() {
        let nomorobo = |score: serde_json::Value| {
            addons(
                json!({"nomorobo_spamscore":{"request_sid":"XR1","status":"successful",
                "message":null,"code":null,"result":{"status":"success","message":"success","score":score}}}),
            )
        };
        assert_eq!(spam_score(&nomorobo(json!(1))), Some(1.0));
        assert_eq!(spam_score(&nomorobo(json!(0))), Some(0.0));
        assert_eq!(spam_score(&nomorobo(json!(0.9))), Some(0.9));
        assert_eq!(spam_score(&nomorobo(json!("high"))), None);
        assert_eq!(
            spam_score(&nomorobo(json!(7))),
            None,
            "out of range is unknown"
        );
        let marchex = |rec: &str| {
            addons(
                json!({"marchex_cleancall":{"request_sid":"XR2","status":"successful",
                "message":null,"code":null,"result":{"result":{"recommendation":rec,"reason":"x"}}}}),
            )
        };
        assert_eq!(spam_score(&marchex("BLOCK")), Some(1.0));
        assert_eq!(spam_score(&marchex("PASS")), Some(0.0));
        assert_eq!(spam_score(&marchex("FLAG")), Some(0.5));
        assert_eq!(spam_score(&marchex("MAYBE")), None);
        // One add-on timed out, the other passed: the pass counts.
        let mixed = addons(json!({
            "nomorobo_spamscore":{"status":"failed","message":"Request timed out","code":61001,"result":{}},
            "marchex_cleancall":{"status":"successful","result":{"result":{"recommendation":"PASS"}}}
        }));
        assert_eq!(spam_score(&mixed), Some(0.0));
        // The highest of two scorers wins.
        let two = addons(json!({
            "a":{"status":"successful","result":{"score":0.2}},
            "b":{"status":"successful","result":{"spam_score":"85"}}
        }));
        assert_eq!(spam_score(&two), Some(0.85));
    }

    #[test]
    fn missing_or_failed_add_ons_are_unknown() {
        for doc in [
            "".to_string(),
            "not json".to_string(),
            "[]".to_string(),
            json!({"status":"failed","results":{"nomorobo_spamscore":{"status":"successful","result":{"score":1}}}}).to_string(),
            addons(json!({"nomorobo_spamscore":{"status":"failed","code":61001,"result":{}}})),
            addons(json!({})),
            addons(json!({"whitepages_pro_caller_id":{"status":"successful","result":{"name":"x"}}})),
            json!({"status":"successful","results":[]}).to_string(),
        ] {
            assert_eq!(spam_score(&doc), None, "{doc}");
        }
    }

    #[test]
    fn facts_from_webhook_parameters() {
        let doc =
            addons(json!({"nomorobo_spamscore":{"status":"successful","result":{"score":1}}}));
        let params = [
            ("To", "+15551230001"),
            ("From", "+15557654321"),
            ("CallerName", " GRANDMA "),
            ("AddOns", doc.as_str()),
            ("StirVerstat", "TN-Validation-Passed-A"),
        ];
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .unwrap_or("")
        };
        let f = CallFacts::from_twilio(get);
        assert_eq!(f.to, "+15551230001");
        assert_eq!(f.caller_name.as_deref(), Some("GRANDMA"));
        assert_eq!(f.spam_score, Some(1.0));
        assert_eq!(f.verstat.as_deref(), Some("TN-Validation-Passed-A"));
        assert!(!f.withheld);
        let anon = CallFacts::from_twilio(|k| if k == "From" { "anonymous" } else { "" });
        assert!(anon.withheld);
        assert_eq!(
            (anon.spam_score, anon.verstat, anon.caller_name),
            (None, None, None)
        );
    }
}
