//! Twilio's own view of what went wrong: the Monitor API's Alerts
//! (`GET https://monitor.twilio.com/v1/Alerts`), the debugger's log of
//! webhook failures, SIP errors and refused messages.
//!
//! Only the list representation is read (code, level, time, request URL,
//! text); the full HTTP exchange of one alert is not needed to explain it.

use serde::{Deserialize, Deserializer, Serialize};

use super::client::{encode_component, Client, TwilioError};
use crate::clock::Timestamp;

/// Most alerts read in one run (one page; a household sees a handful).
const PAGE_SIZE: u32 = 200;

/// One alert of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// `NO…`.
    #[serde(default)]
    pub sid: String,
    /// Twilio's error code (`11200`); the API sends it as a string.
    #[serde(default, deserialize_with = "code")]
    pub error_code: Option<u32>,
    /// `error`, `warning`, `notice` or `debug`.
    #[serde(default)]
    pub log_level: String,
    /// ISO 8601 (`2026-12-01T10:00:00Z`).
    #[serde(default)]
    pub date_created: Option<String>,
    /// What Twilio wrote about it (often form-encoded `Msg=…&url=…`).
    #[serde(default)]
    pub alert_text: Option<String>,
    /// The URL of the request that failed (our webhook, for 11200).
    #[serde(default)]
    pub request_url: Option<String>,
    /// The call or message it concerns (`CA…`, `SM…`).
    #[serde(default)]
    pub resource_sid: Option<String>,
}

/// `"11200"`, `11200` or null.
fn code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    })
}

impl Client {
    /// Alerts created at or after `since` (Twilio keeps 30 days), newest first.
    pub fn list_alerts(&self, since: Timestamp) -> Result<Vec<Alert>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            alerts: Vec<Alert>,
        }
        // Twilio takes `YYYY-MM-DDThh:mm:ssZ` (no fraction).
        let start = since.to_string();
        let start = format!("{}Z", start.get(..19).unwrap_or(&start));
        let page: Page = self.get_json_from(
            &self.monitor_base(),
            &format!(
                "/v1/Alerts?StartDate={}&PageSize={PAGE_SIZE}",
                encode_component(&start)
            ),
        )?;
        Ok(page.alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_list_format_is_read() {
        let page = r#"{"alerts":[{"account_sid":"AC0123456789abcdef0123456789abcdef","alert_text":"Msg=HTTP+Connection+Failure&url=https%3A%2F%2Fhome.example.org%2Fapi%2Fwebhooks%2Fvoice%2Fincoming","api_version":"2010-04-01","date_created":"2026-12-01T10:00:00Z","date_generated":"2026-12-01T10:00:00Z","date_updated":"2026-12-01T10:00:01Z","error_code":"11200","log_level":"error","more_info":"https://www.twilio.com/docs/errors/11200","request_method":"POST","request_url":"https://home.example.org/api/webhooks/voice/incoming","resource_sid":"CA0123456789abcdef0123456789abcdef","service_sid":null,"sid":"NO0123456789abcdef0123456789abcdef","url":"https://monitor.twilio.com/v1/Alerts/NO0123456789abcdef0123456789abcdef"}],"meta":{"page":0,"page_size":200,"next_page_url":null,"key":"alerts"}}"#;
        #[derive(Deserialize)]
        struct Page {
            alerts: Vec<Alert>,
        }
        let p: Page = serde_json::from_str(page).expect("documented format");
        assert_eq!(p.alerts[0].error_code, Some(11200));
        assert_eq!(p.alerts[0].log_level, "error");
        let numeric: Alert = serde_json::from_str(r#"{"error_code":32209}"#).expect("numeric");
        assert_eq!(numeric.error_code, Some(32209));
    }

    #[test]
    fn the_monitor_lives_beside_the_api() {
        let c = Client::new("https://api.twilio.com", "AC0", "t");
        assert_eq!(c.monitor_base(), "https://monitor.twilio.com");
        let c = Client::new("http://127.0.0.1:9", "AC0", "t");
        assert_eq!(c.monitor_base(), "http://127.0.0.1:9");
        assert!(matches!(
            c.get_json_from::<serde_json::Value>("http://evil.example", "/v1/Alerts"),
            Err(TwilioError::Refused(_))
        ));
    }
}
