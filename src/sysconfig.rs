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
/// Optional Twilio API key SID (`SK…`) used instead of the Account SID for REST calls.
pub const TWILIO_API_KEY_SID: &str = "twilio.api_key_sid";
/// The secret of that API key (secret).
pub const TWILIO_API_KEY_SECRET: &str = "twilio.api_key_secret";
/// The Twilio SIP Domain outgoing calls are sent to (`myhome.sip.twilio.com`).
pub const TWILIO_SIP_DOMAIN: &str = "twilio.sip_domain";
/// The SIP user name Twilio uses towards us and we use towards Twilio.
pub const TWILIO_SIP_USERNAME: &str = "twilio.sip_username";
/// Its password (secret).
pub const TWILIO_SIP_PASSWORD: &str = "twilio.sip_password";
/// Host Twilio dials for incoming calls (default: the host of `system.public_url`).
pub const TWILIO_SIP_PUBLIC_HOST: &str = "twilio.sip_public_host";
/// Port Twilio dials for incoming calls (SIP over TLS; default 5061).
pub const TWILIO_SIP_PUBLIC_PORT: &str = "twilio.sip_public_port";
/// Whether recordings and MMS media are deleted at Twilio once stored on
/// the appliance (privacy).
pub const TWILIO_DELETE_AFTER_DOWNLOAD: &str = "twilio.delete_after_download";
/// The text said to callers before the voicemail beep.
pub const TWILIO_VOICEMAIL_GREETING: &str = "twilio.voicemail_greeting";
/// Which e-mail service sends notifications: `smtp` or `postmark` (unset: no e-mail).
pub const NOTIFY_EMAIL_PROVIDER: &str = "notify.email_provider";
/// How long a voicemail e-mail waits for its transcript (seconds, default 120).
pub const NOTIFY_TRANSCRIPT_WAIT_SECS: &str = "notify.transcript_wait_secs";
/// SMTP security: `starttls` (default), `tls` (implicit, port 465) or `none`.
pub const SMTP_SECURITY: &str = "smtp.security";
/// Extra CA certificates (PEM file) for the SMTP server.
pub const SMTP_CA_FILE: &str = "smtp.ca_file";
/// Postmark's API base (default `https://api.postmarkapp.com`).
pub const POSTMARK_API_BASE: &str = "postmark.api_base";
/// Gotify priority for pushes (0–10; default: the notification's own).
pub const GOTIFY_PRIORITY: &str = "gotify.priority";
/// Default of [`TWILIO_SIP_PUBLIC_PORT`].
pub const DEFAULT_SIP_PUBLIC_PORT: u16 = 5061;

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
    /// `true` or `false`.
    Bool,
    /// Sealed in the `secrets` table; reported only as `<name>_set`.
    Secret,
    /// One of a few words.
    Choice(&'static [&'static str]),
    /// A dynamic-DNS name: `myhome` or `myhome.duckdns.org`.
    DdnsName,
    /// A whole number within bounds (inclusive).
    Number(i64, i64),
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
    f("twilio", "api_key_sid", Kind::Text),
    f("twilio", "api_key_secret", Kind::Secret),
    f("twilio", "sip_domain", Kind::Host),
    f("twilio", "sip_username", Kind::Text),
    f("twilio", "sip_password", Kind::Secret),
    f("twilio", "sip_public_host", Kind::Host),
    f("twilio", "sip_public_port", Kind::Port),
    f("twilio", "delete_after_download", Kind::Bool),
    f("twilio", "voicemail_greeting", Kind::Text),
    f("smtp", "host", Kind::Host),
    f("smtp", "port", Kind::Port),
    f("smtp", "username", Kind::Text),
    f("smtp", "password", Kind::Secret),
    f("smtp", "from", Kind::Email),
    f(
        "smtp",
        "security",
        Kind::Choice(&["starttls", "tls", "none"]),
    ),
    // A PEM file of extra CA certificates the SMTP server's certificate may
    // chain to (a LAN relay with its own CA); the web PKI roots always count.
    f("smtp", "ca_file", Kind::Text),
    f("postmark", "server_token", Kind::Secret),
    f("postmark", "from", Kind::Email),
    // Default https://api.postmarkapp.com; settable for a stand-in.
    f("postmark", "api_base", Kind::Url),
    f("gotify", "url", Kind::Url),
    f("gotify", "token", Kind::Secret),
    f("gotify", "priority", Kind::Number(0, 10)),
    f(
        "notify",
        "email_provider",
        Kind::Choice(&["smtp", "postmark"]),
    ),
    f("notify", "transcript_wait_secs", Kind::Number(0, 3600)),
    f("system", "timezone", Kind::Timezone),
    f("system", "public_url", Kind::Url),
    f("acme", "enabled", Kind::Bool),
    f("acme", "email", Kind::Email),
    // TLS-ALPN-01 is not implemented yet; HTTP-01 through port 80 is.
    f("acme", "challenge", Kind::Choice(&["http-01"])),
    f("router", "auto_forward", Kind::Bool),
    f("ddns", "provider", Kind::Choice(&["duckdns"])),
    f("ddns", "domain", Kind::DdnsName),
    f("ddns", "token", Kind::Secret),
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
            Kind::Number(..) => {
                let n = table.get(&key).and_then(|v| v.parse::<i64>().ok());
                group.insert(field.name.into(), json!(n));
            }
            Kind::Bool => {
                let b = table.get(&key).map(|v| v == "true");
                group.insert(field.name.into(), json!(b));
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
    if let Kind::Number(min, max) = field.kind {
        let n = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        return match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n.to_string())),
            _ => Err(format!("expected a whole number from {min} to {max}")),
        };
    }
    if field.kind == Kind::Bool {
        return match value {
            Value::Bool(b) => Ok(Some(b.to_string())),
            _ => Err("expected true or false, or null to clear".into()),
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
        Kind::Text | Kind::Secret | Kind::Port | Kind::Bool | Kind::Number(..) => {}
        Kind::Choice(words) => {
            if !words.contains(&text) {
                return Err(format!("expected one of: {}", words.join(", ")));
            }
        }
        Kind::DdnsName => {
            crate::netaddr::ddns::subdomain(text)?;
        }
        Kind::Email => crate::accounts::check_email(text)?,
        Kind::Host => check_host(text)?,
        Kind::Url => crate::settings::check_http_url(text)?,
        Kind::Timezone => check_timezone(text)?,
        Kind::AccountSid => {
            if !is_account_sid(text) {
                return Err("expected a Twilio Account SID: AC followed by 32 hex digits".into());
            }
        }
    }
    Ok(Some(text.to_string()))
}

/// Whether `sid` looks like a Twilio Account SID (`AC` + 32 hex digits).
pub fn is_account_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
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

/// Reading a configuration that includes sealed secrets.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed secret could not be opened (another key file, damaged data).
    #[error("a sealed setting could not be opened: {0}")]
    Secret(#[from] SecretError),
}

/// Random characters for generated SIP credentials (no look-alikes needed:
/// nobody types them, Twilio's console gets them by copy and paste).
const CREDENTIAL_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(len: usize) -> Result<String, SecretError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf).map_err(|_| SecretError::Random)?;
        // Rejection sampling keeps the distribution uniform (248 = 4 × 62).
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() < len {
                out.push(char::from(CREDENTIAL_ALPHABET[usize::from(*b) % 62]));
            }
        }
    }
    Ok(out)
}

/// A password Twilio's credential lists accept: at least 12 characters with
/// an upper-case letter, a lower-case letter and a digit.
fn strong_password() -> Result<String, SecretError> {
    loop {
        let p = random_text(24)?;
        if p.bytes().any(|b| b.is_ascii_uppercase())
            && p.bytes().any(|b| b.is_ascii_lowercase())
            && p.bytes().any(|b| b.is_ascii_digit())
        {
            return Ok(p);
        }
    }
}

/// The SIP user name and password shared with Twilio (our `<Sip username
/// password>` towards the phones' endpoint, and Twilio's credential list for
/// the SIP Domain). Generated on first use (random, strong) and stored, the
/// password sealed, so the SIP endpoint can verify Twilio's INVITE digest and
/// the admin can copy them into the Twilio console. An admin may also set
/// them through the settings API.
pub fn twilio_sip_credentials(
    conn: &Connection,
    secret_box: &SecretBox,
) -> Result<(String, String), ConfigError> {
    let username = config::get(conn, TWILIO_SIP_USERNAME)?;
    let password = open_secret(
        secret_box,
        TWILIO_SIP_PASSWORD,
        secrets::get(conn, TWILIO_SIP_PASSWORD)?,
    )?;
    if let (Some(u), Some(p)) = (&username, &password) {
        return Ok((u.clone(), p.clone()));
    }
    // Stored timestamps are records, not rules; the one clock lives in the
    // callers, which this contract does not pass in.
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let username = match username {
        Some(u) => u,
        None => {
            let u = format!("homeline{}", random_text(8)?.to_ascii_lowercase());
            config::set(conn, TWILIO_SIP_USERNAME, &u, now)?;
            u
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            let p = strong_password()?;
            let sealed = secret_box.seal(TWILIO_SIP_PASSWORD, p.as_bytes())?;
            secrets::set(conn, TWILIO_SIP_PASSWORD, &sealed, now)?;
            p
        }
    };
    Ok((username, password))
}

/// Credentials for Twilio's REST API: the Account SID and who signs in (the
/// Account SID and auth token, or an API key and its secret).
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioCredentials {
    /// The account every path names.
    pub account_sid: String,
    /// The Basic-auth user: the Account SID or an API key SID.
    pub username: String,
    /// The Basic-auth password: the auth token or the API key secret.
    pub password: String,
    /// The auth token, which signs webhooks (API keys do not).
    pub auth_token: String,
}

impl std::fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The Twilio credentials, if the account SID and auth token are set.
pub fn twilio_credentials(
    conn: &Connection,
    secret_box: &SecretBox,
) -> Result<Option<TwilioCredentials>, ConfigError> {
    let sid = config::get(conn, TWILIO_ACCOUNT_SID)?;
    let token = open_secret(
        secret_box,
        TWILIO_AUTH_TOKEN,
        secrets::get(conn, TWILIO_AUTH_TOKEN)?,
    )?;
    let (Some(account_sid), Some(auth_token)) = (sid, token) else {
        return Ok(None);
    };
    let key_sid = config::get(conn, TWILIO_API_KEY_SID)?;
    let key_secret = open_secret(
        secret_box,
        TWILIO_API_KEY_SECRET,
        secrets::get(conn, TWILIO_API_KEY_SECRET)?,
    )?;
    let (username, password) = match (key_sid, key_secret) {
        (Some(k), Some(s)) => (k, s),
        _ => (account_sid.clone(), auth_token.clone()),
    };
    Ok(Some(TwilioCredentials {
        account_sid,
        username,
        password,
        auth_token,
    }))
}

/// `system.public_url` without a trailing slash, if set.
pub fn public_url(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(config::get(conn, SYSTEM_PUBLIC_URL)?.map(|u| u.trim_end_matches('/').to_string()))
}

/// Where Twilio sends incoming calls: `sip_public_host` (default: the host of
/// `system.public_url`) and `sip_public_port` (default 5061).
pub fn sip_public_target(conn: &Connection) -> Result<Option<(String, u16)>, StoreError> {
    let host = match config::get(conn, TWILIO_SIP_PUBLIC_HOST)? {
        Some(h) => Some(h),
        None => public_url(conn)?.and_then(|u| url_host(&u)),
    };
    let port = config::get(conn, TWILIO_SIP_PUBLIC_PORT)?
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_SIP_PUBLIC_PORT);
    Ok(host.map(|h| (h, port)))
}

/// The host of an `http(s)://host[:port]/…` URL (IPv6 literals keep brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Whether a boolean field is `true`.
pub fn flag(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(config::get(conn, key)?.as_deref() == Some("true"))
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
            (
                v["twilio"]["account_sid"].clone(),
                v["twilio"]["auth_token_set"].clone(),
                v["twilio"]["sip_password_set"].clone(),
                v["twilio"]["delete_after_download"].clone()
            ),
            (
                json!("AC0123456789abcdef0123456789abcdef"),
                json!(true),
                json!(false),
                Value::Null
            )
        );
        assert_eq!(v["smtp"]["port"], 587);
        assert_eq!(v["smtp"]["password_set"], true);
        assert_eq!(
            v["postmark"],
            json!({"server_token_set": false, "from": null, "api_base": null})
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
            "gotify": {"url": "ftp://x", "priority": 11},
            "notify": {"email_provider": "sendmail", "transcript_wait_secs": -1},
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
            "gotify.priority",
            "notify.email_provider",
            "notify.transcript_wait_secs",
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
        let ok = parse_update(
            &json!({"gotify": {"priority": "7"}, "notify": {"transcript_wait_secs": 0}}),
        )
        .expect("valid");
        assert_eq!(ok[0].value.as_deref(), Some("7"));
        assert_eq!(ok[1].value.as_deref(), Some("0"));
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

    #[test]
    fn sip_credentials_are_generated_once_strong_and_sealed() {
        let conn = db();
        let sb = SecretBox::from_key(&[7; 32]).expect("key");
        let (user, pw) = twilio_sip_credentials(&conn, &sb).expect("generate");
        assert!(user.starts_with("homeline") && user.len() <= 32, "{user}");
        assert!(pw.len() >= 12);
        assert!(pw.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(pw.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(pw.bytes().any(|b| b.is_ascii_digit()));
        assert_eq!(
            twilio_sip_credentials(&conn, &sb).expect("again"),
            (user.clone(), pw.clone()),
            "stored, not regenerated"
        );
        let sealed = secrets::get(&conn, TWILIO_SIP_PASSWORD)
            .expect("get")
            .expect("stored");
        assert!(!sealed.windows(pw.len()).any(|w| w == pw.as_bytes()));
        assert_eq!(
            view(&conn).expect("view")["twilio"]["sip_username"],
            json!(user)
        );
        let other = SecretBox::from_key(&[8; 32]).expect("key");
        assert!(twilio_sip_credentials(&conn, &other).is_err());
    }

    #[test]
    fn sip_target_defaults_to_the_public_url_host_and_5061() {
        let conn = db();
        assert_eq!(sip_public_target(&conn).expect("read"), None);
        config::set(
            &conn,
            SYSTEM_PUBLIC_URL,
            "https://home.example.org:8443/",
            t(0),
        )
        .expect("set");
        assert_eq!(
            sip_public_target(&conn).expect("read"),
            Some(("home.example.org".into(), 5061))
        );
        assert_eq!(
            public_url(&conn).expect("read").as_deref(),
            Some("https://home.example.org:8443")
        );
        let ch = changes(
            json!({"twilio": {"sip_public_host": "sip.example.org", "sip_public_port": 5071, "delete_after_download": true}}),
        );
        let sb = SecretBox::from_key(&[7; 32]).expect("key");
        apply(&conn, &seal(&ch, &sb).expect("seal"), t(1)).expect("apply");
        assert_eq!(
            sip_public_target(&conn).expect("read"),
            Some(("sip.example.org".into(), 5071))
        );
        assert!(flag(&conn, TWILIO_DELETE_AFTER_DOWNLOAD).expect("flag"));
        assert_eq!(
            view(&conn).expect("view")["twilio"]["delete_after_download"],
            json!(true)
        );
        assert!(parse_update(&json!({"twilio": {"delete_after_download": "yes"}})).is_err());
        assert_eq!(url_host("http://[::1]:8080/x").as_deref(), Some("[::1]"));
    }
}
