//! System configuration edited from the web UI: typed groups (Twilio, SMTP,
//! Postmark, Gotify, system) over the `config` table, with their secrets
//! sealed in the `secrets` table.
//!
//! How this differs from [`crate::settings`]: settings are the process's
//! startup configuration (listen addresses, log level…), resolved once from
//! flags, environment, table and defaults. The groups here are read when a
//! feature uses them (the Twilio client, the mailer) and changed at runtime
//! through `PUT /api/system/config`; they have no flag or environment
//! variable. The two never share a key (a test checks it).
//!
//! Secrets are write-only: [`View`] tells whether each is set, never its
//! value, and no error message repeats one.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::secrets::{SecretBox, SecretError};
use crate::store::{config, secrets, StoreError};

/// `config` key recording that the setup wizard has run.
pub const SETUP_COMPLETED: &str = "setup.completed";
/// The Twilio Account SID.
pub const TWILIO_ACCOUNT_SID: &str = "twilio.account_sid";
/// The Twilio auth token (secret).
pub const TWILIO_AUTH_TOKEN: &str = "twilio.auth_token";
/// The household's time zone.
pub const SYSTEM_TIMEZONE: &str = "system.timezone";
/// The URL the appliance is reached at from outside (webhooks, CSRF origin).
pub const SYSTEM_PUBLIC_URL: &str = "system.public_url";

/// What kind of value a field holds, which decides its validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Email,
    Host,
    Port,
    Url,
    Timezone,
    AccountSid,
    /// Sealed in the `secrets` table; reported only as `<name>_set`.
    Secret,
}

/// One editable field: `group.name` is its key in `config` or `secrets`.
#[derive(Debug)]
struct Field {
    group: &'static str,
    name: &'static str,
    kind: Kind,
}

const fn f(group: &'static str, name: &'static str, kind: Kind) -> Field {
    Field { group, name, kind }
}

/// Every field of every group, in display order.
const FIELDS: &[Field] = &[
    f("twilio", "account_sid", Kind::AccountSid),
    f("twilio", "auth_token", Kind::Secret),
    f("smtp", "host", Kind::Host),
    f("smtp", "port", Kind::Port),
    f("smtp", "username", Kind::Text),
    f("smtp", "password", Kind::Secret),
    f("smtp", "from", Kind::Email),
    f("postmark", "server_token", Kind::Secret),
    f("postmark", "from", Kind::Email),
    f("gotify", "url", Kind::Url),
    f("gotify", "token", Kind::Secret),
    f("system", "timezone", Kind::Timezone),
    f("system", "public_url", Kind::Url),
];

impl Field {
    fn key(&self) -> String {
        format!("{}.{}", self.group, self.name)
    }
}

/// Every `config`/`secrets` key this module owns (for the collision test
/// against `settings::SPECS`, and for the secret-key list).
pub fn keys() -> Vec<(String, bool)> {
    FIELDS
        .iter()
        .map(|f| (f.key(), f.kind == Kind::Secret))
        .collect()
}

/// A field-level problem with an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `group.name`.
    pub field: String,
    /// What is wrong (never contains a secret value).
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// One validated change: set (`Some`) or clear (`None`) a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `group.name`.
    pub key: String,
    /// The new value, or `None` to remove it.
    pub value: Option<String>,
    /// Whether it goes to the `secrets` table.
    pub secret: bool,
}

impl Change {
    /// Whether this change sets `key` to a value.
    pub fn sets(&self, key: &str) -> bool {
        self.key == key && self.value.is_some()
    }
}

/// The configuration as the API shows it: every group, every field, secrets
/// as `<name>_set` booleans.
pub type View = Value;

/// Reads every group.
pub fn view(conn: &Connection) -> Result<View, StoreError> {
    let table = config::all(conn)?;
    let set = secrets::keys(conn)?;
    let mut groups: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for field in FIELDS {
        let key = field.key();
        let group = groups.entry(field.group).or_default();
        match field.kind {
            Kind::Secret => {
                group.insert(format!("{}_set", field.name), json!(set.contains(&key)));
            }
            Kind::Port => {
                let port = table.get(&key).and_then(|v| v.parse::<u16>().ok());
                group.insert(field.name.into(), json!(port));
            }
            _ => {
                group.insert(field.name.into(), json!(table.get(&key)));
            }
        }
    }
    Ok(Value::Object(
        groups
            .into_iter()
            .map(|(g, m)| (g.to_string(), Value::Object(m)))
            .collect(),
    ))
}

/// Validates an update `{"group": {"name": value | null}}`. Absent fields are
/// left alone, `null` clears, a value sets. Unknown groups or fields are
/// errors (a typo must not be silently ignored).
pub fn parse_update(body: &Value) -> Result<Vec<Change>, Vec<Invalid>> {
    let Some(groups) = body.as_object() else {
        return Err(vec![invalid(
            "",
            "expected an object of setting groups, e.g. {\"smtp\": {\"host\": \"…\"}}",
        )]);
    };
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for (group, fields) in groups {
        if !FIELDS.iter().any(|f| f.group == group) {
            errors.push(invalid(group.clone(), "unknown settings group"));
            continue;
        }
        let Some(fields) = fields.as_object() else {
            errors.push(invalid(group.clone(), "expected an object of fields"));
            continue;
        };
        for (name, value) in fields {
            let Some(field) = FIELDS.iter().find(|f| f.group == group && f.name == name) else {
                errors.push(invalid(format!("{group}.{name}"), "unknown setting"));
                continue;
            };
            match check(field, value) {
                Ok(value) => changes.push(Change {
                    key: field.key(),
                    value,
                    secret: field.kind == Kind::Secret,
                }),
                Err(message) => errors.push(invalid(field.key(), message)),
            }
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

/// Validates one value; `Ok(None)` clears.
fn check(field: &Field, value: &Value) -> Result<Option<String>, String> {
    if value.is_null() {
        return Ok(None);
    }
    if field.kind == Kind::Port {
        let port = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        return match port {
            Some(p @ 1..=65535) => Ok(Some(p.to_string())),
            _ => Err("expected a port number from 1 to 65535".into()),
        };
    }
    let Some(text) = value.as_str() else {
        return Err("expected a string, or null to clear".into());
    };
    // Secrets are taken verbatim (a token may legitimately contain spaces at
    // neither end, but we do not guess); other text is trimmed.
    let text = if field.kind == Kind::Secret {
        text
    } else {
        text.trim()
    };
    if text.is_empty() {
        return Err("must not be empty; send null to clear".into());
    }
    if text.len() > 1024 {
        return Err("too long (at most 1024 bytes)".into());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    match field.kind {
        Kind::Text | Kind::Secret | Kind::Port => {}
        Kind::Email => crate::accounts::check_email(text)?,
        Kind::Host => check_host(text)?,
        Kind::Url => crate::settings::check_http_url(text)?,
        Kind::Timezone => check_timezone(text)?,
        Kind::AccountSid => {
            if !crate::twilio::client::is_account_sid(text) {
                return Err("expected a Twilio Account SID: AC followed by 32 hex digits".into());
            }
        }
    }
    Ok(Some(text.to_string()))
}

/// A host name or IP address (for SMTP).
fn check_host(host: &str) -> Result<(), String> {
    let ok = host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        && !host.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err("expected a host name or IP address, e.g. smtp.example.org".into())
    }
}

/// The IANA areas a zone name starts with.
const TZ_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// `UTC` or an IANA-looking `Area/City` (`America/Argentina/Buenos_Aires`,
/// `Etc/GMT+5`). Without a tz database this cannot prove the zone exists;
/// it rejects what cannot be one (offsets like `+01:00`, abbreviations like
/// `CET`, free text).
pub fn check_timezone(tz: &str) -> Result<(), String> {
    if tz == "UTC" {
        return Ok(());
    }
    let mut parts = tz.split('/');
    let area = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let segment_ok = |s: &&str| {
        !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_uppercase() || (area == "Etc" && c == 'G'))
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    };
    if TZ_AREAS.contains(&area)
        && !rest.is_empty()
        && rest.len() <= 2
        && rest.iter().all(segment_ok)
    {
        Ok(())
    } else {
        Err("expected an IANA time zone like Europe/London or America/New_York, or UTC".into())
    }
}

/// A change ready to be written: secrets already sealed.
#[derive(Debug)]
pub enum Write {
    /// Set a `config` row.
    Config(String, String),
    /// Remove a `config` row.
    ClearConfig(String),
    /// Set a sealed secret.
    Secret(String, Vec<u8>),
    /// Remove a secret.
    ClearSecret(String),
}

/// Seals the secrets of `changes` (before the database call, so the box
/// stays out of the database thread).
pub fn seal(changes: &[Change], secret_box: &SecretBox) -> Result<Vec<Write>, SecretError> {
    changes
        .iter()
        .map(|c| {
            Ok(match (&c.value, c.secret) {
                (Some(v), true) => {
                    Write::Secret(c.key.clone(), secret_box.seal(&c.key, v.as_bytes())?)
                }
                (None, true) => Write::ClearSecret(c.key.clone()),
                (Some(v), false) => Write::Config(c.key.clone(), v.clone()),
                (None, false) => Write::ClearConfig(c.key.clone()),
            })
        })
        .collect()
}

/// Applies sealed writes (the caller wraps them in a transaction with
/// whatever else must happen atomically).
pub fn apply(conn: &Connection, writes: &[Write], now: Timestamp) -> Result<(), StoreError> {
    for w in writes {
        match w {
            Write::Config(k, v) => {
                config::set(conn, k, v, now)?;
            }
            Write::ClearConfig(k) => {
                config::delete(conn, k)?;
            }
            Write::Secret(k, sealed) => secrets::set(conn, k, sealed, now)?,
            Write::ClearSecret(k) => {
                secrets::delete(conn, k)?;
            }
        }
    }
    Ok(())
}

/// Whether the setup wizard has completed.
pub fn setup_completed(conn: &Connection) -> Result<bool, StoreError> {
    Ok(config::get(conn, SETUP_COMPLETED)?.as_deref() == Some("true"))
}

/// Opens the secret `key`, if set. `Err` only if the sealed value cannot be
/// opened (another key file, damaged data).
pub fn open_secret(
    secret_box: &SecretBox,
    key: &str,
    sealed: Option<Vec<u8>>,
) -> Result<Option<String>, SecretError> {
    sealed
        .map(|s| {
            let plain = secret_box.open(key, &s)?;
            String::from_utf8(plain).map_err(|_| SecretError::Open)
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    fn changes(v: Value) -> Vec<Change> {
        parse_update(&v).expect("valid update")
    }

    #[test]
    fn never_collides_with_startup_settings() {
        for (key, _) in keys() {
            assert!(
                !crate::settings::SPECS.iter().any(|s| s.key == key),
                "{key} is both a startup setting and a system config field"
            );
        }
        assert!(!keys().iter().any(|(k, _)| k == SETUP_COMPLETED));
    }

    #[test]
    fn view_shows_values_and_only_whether_secrets_are_set() {
        let conn = db();
        let sb = SecretBox::from_key(&[7; 32]).expect("key");
        let ch = changes(json!({
            "twilio": {"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "tok-SECRET"},
            "smtp": {"host": "smtp.example.org", "port": 587, "password": "pw-SECRET"},
            "system": {"timezone": "Europe/London", "public_url": "https://home.example.org"}
        }));
        apply(&conn, &seal(&ch, &sb).expect("seal"), t(0)).expect("apply");
        let v = view(&conn).expect("view");
        assert_eq!(
            v["twilio"],
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token_set": true})
        );
        assert_eq!(v["smtp"]["port"], 587);
        assert_eq!(v["smtp"]["password_set"], true);
        assert_eq!(
            v["postmark"],
            json!({"server_token_set": false, "from": null})
        );
        assert_eq!(v["gotify"]["token_set"], false);
        assert_eq!(v["system"]["timezone"], "Europe/London");
        let text = v.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        let sealed = secrets::get(&conn, TWILIO_AUTH_TOKEN).expect("get");
        assert!(!sealed
            .as_deref()
            .unwrap_or_default()
            .windows(10)
            .any(|w| w == b"tok-SECRET"));
        assert_eq!(
            open_secret(&sb, TWILIO_AUTH_TOKEN, sealed).expect("open"),
            Some("tok-SECRET".into())
        );

        let clear = changes(json!({"smtp": {"password": null, "host": null}}));
        apply(&conn, &seal(&clear, &sb).expect("seal"), t(1)).expect("apply");
        let v = view(&conn).expect("view");
        assert_eq!(
            (v["smtp"]["password_set"].clone(), v["smtp"]["host"].clone()),
            (json!(false), Value::Null)
        );
    }

    #[test]
    fn validation_names_each_field_and_never_echoes_values() {
        let errs = parse_update(&json!({
            "smtp": {"port": 70000, "host": "bad host!", "from": "not-an-email", "password": 5},
            "gotify": {"url": "ftp://x"},
            "system": {"timezone": "CET", "public_url": "homeline.local"},
            "twilio": {"account_sid": "AC123", "auth_token": ""},
            "nope": {},
            "postmark": {"colour": "blue"}
        }))
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "smtp.port",
            "smtp.host",
            "smtp.from",
            "smtp.password",
            "gotify.url",
            "system.timezone",
            "system.public_url",
            "twilio.account_sid",
            "twilio.auth_token",
            "nope",
            "postmark.colour",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(parse_update(&json!([1])).is_err());
    }

    #[test]
    fn timezones() {
        for ok in [
            "UTC",
            "Europe/London",
            "America/New_York",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "America/Port-au-Prince",
        ] {
            assert_eq!(check_timezone(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "utc",
            "CET",
            "+01:00",
            "Europe",
            "Europe/",
            "Mars/Olympus",
            "Europe/london",
            "Europe/London/Soho/Street",
            "Europe/Lon don",
        ] {
            assert!(check_timezone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn setup_flag() {
        let conn = db();
        assert!(!setup_completed(&conn).expect("read"));
        config::set(&conn, SETUP_COMPLETED, "true", t(0)).expect("set");
        assert!(setup_completed(&conn).expect("read"));
    }
}
