//! Do the Twilio credentials work? One REST call (`GET /Accounts/{Sid}.json`)
//! proves the Account SID and Auth Token (or API key) and says whether the
//! account is active.

use super::Check;
use crate::twilio::{AccountInfo, TwilioError};

const ID: &str = "twilio_credentials";
const TITLE: &str = "Twilio credentials";

/// `None`: no credentials are configured.
pub fn check(answer: Option<&Result<AccountInfo, TwilioError>>) -> Check {
    let Some(answer) = answer else {
        return Check::error(
            ID,
            TITLE,
            "no Twilio account is set up: calls from outside and text messages cannot reach the house",
            "Enter the Account SID and Auth Token from the Twilio console in Settings → Twilio.",
        );
    };
    match answer {
        Ok(info) if info.status == "active" || info.status.is_empty() => Check::ok(
            ID,
            TITLE,
            format!(
                "accepted by Twilio for account {} ({})",
                info.sid, info.friendly_name
            ),
        ),
        Ok(info) => Check::error(
            ID,
            TITLE,
            format!("the Twilio account {} is {}", info.sid, info.status),
            "Log in to the Twilio console: a suspended account needs its balance topped up or \
             Twilio support; a closed one needs a new account.",
        ),
        Err(e) => error(e),
    }
}

/// An answer that says why Twilio could not be used, for the checks that
/// depend on the credentials.
pub fn error(e: &TwilioError) -> Check {
    match e {
        TwilioError::Unauthorized { code, .. } => Check::error(
            ID,
            TITLE,
            format!(
                "the Auth Token was rejected by Twilio (error {})",
                code.map_or("20003".to_string(), |c| c.to_string())
            ),
            "Copy the Account SID and Auth Token again from the Twilio console (Account → API \
             keys & tokens) into Settings → Twilio. If the token was changed at Twilio, the new \
             one is needed here too (webhooks are signed with it).",
        ),
        TwilioError::InvalidAccountSid => Check::error(
            ID,
            TITLE,
            "the Account SID is not one (AC followed by 32 hex digits)",
            "Copy the Account SID from the Twilio console into Settings → Twilio.",
        ),
        TwilioError::Unreachable(why) | TwilioError::Timeout(why) => Check::error(
            ID,
            TITLE,
            format!("Twilio could not be reached: {why}"),
            "Check the Pi's internet connection and DNS (`ping api.twilio.com`).",
        ),
        other => Check::error(
            ID,
            TITLE,
            format!("Twilio did not accept the check: {other}"),
            "Try again in a few minutes; if it persists, status.twilio.com says whether Twilio has an outage.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn info(status: &str) -> AccountInfo {
        AccountInfo {
            sid: "AC0123456789abcdef0123456789abcdef".into(),
            friendly_name: "Home".into(),
            status: status.into(),
        }
    }

    #[test]
    fn an_active_account_is_ok() {
        assert_eq!(check(Some(&Ok(info("active")))).status, Status::Ok);
        assert_eq!(check(Some(&Ok(info("suspended")))).status, Status::Error);
    }

    #[test]
    fn a_rejected_token_says_so() {
        let c = check(Some(&Err(TwilioError::Unauthorized {
            code: Some(20003),
            message: "Authenticate".into(),
        })));
        assert_eq!(c.status, Status::Error);
        assert!(c.detail.starts_with("the Auth Token was rejected"), "{c:?}");
        assert_eq!(check(None).status, Status::Error);
        let c = check(Some(&Err(TwilioError::Unreachable("refused".into()))));
        assert!(c.detail.contains("could not be reached"));
    }
}
