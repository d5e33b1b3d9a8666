//! A household as the setup wizard leaves it: the administrator, Twilio's
//! credentials (checked against the REST stand-in), one number, then the
//! system settings the test needs (the public URL at least).

use serde_json::{json, Value};

use super::Homeline;

/// The administrator's e-mail.
pub const ADMIN_EMAIL: &str = "mum@x.org";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "blue kettle on the hob";

/// What the set-up made.
pub struct Household {
    /// The administrator's session token.
    pub admin: String,
    /// The id of the household's number.
    pub did: i64,
}

/// Completes setup on `h` with Twilio account `sid`/`token` and the number
/// `number` ("Home"), then `PUT /api/system/config` with `config` (e.g.
/// `{"system": {"public_url": …}}`).
pub fn set_up(h: &Homeline, sid: &str, token: &str, number: &str, config: Value) -> Household {
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&json!({
            "admin": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            "timezone": "Europe/London",
            "twilio": {"account_sid": sid, "auth_token": token},
            "phone_numbers": [{"number": number, "name": "Home"}],
        })),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let admin = r.session_token().expect("admin session");
    let r = h.call("PUT", "/api/system/config", Some(&admin), Some(&config));
    assert_eq!(r.status, 200, "{}", r.text());
    let did = h.call("GET", "/api/dids", Some(&admin), None).json()["items"][0]["id"]
        .as_i64()
        .expect("did id");
    Household { admin, did }
}
