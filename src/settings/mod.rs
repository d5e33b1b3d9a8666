//! The one source of configuration.
//!
//! Each setting is resolved once at startup, in this order of precedence:
//! command-line flag, then `HOMELINE_*` environment variable, then the
//! `config` table in the database, then the config file, then the built-in
//! default. The raw strings are validated into [`Settings`]; nothing else in
//! the program reads the environment or the config file.
//!
//! The config file ([`ConfigFile`], `key = value` lines, `#` comments) is how
//! the appliance image gives its layout (data on `/var/lib/homeline`, the web
//! UI on port 80, mDNS on) to a `homeline run` with no flags, while `make run`
//! on a developer machine, which has no such file, keeps the built-in
//! defaults. It sits below the `config` table because it is the image's
//! baseline, which the web UI may change; the data directory, which holds the
//! table, comes from flag, variable, file or default. [`SPECS`] is the table of every setting and is what the README's
//! configuration reference documents (a test keeps the two in step).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::constants::DEFAULT_STORAGE_MIN_FREE_MIB;

mod file;
mod specs;
#[cfg(test)]
mod tests;

pub use file::{ConfigFile, ConfigFileError, CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE};
pub use specs::{Spec, SPECS};

/// Where a setting's value came from, for the startup log and the settings API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// A `HOMELINE_*` environment variable.
    Env,
    /// The `config` table.
    Database,
    /// The config file ([`ConfigFile`]).
    File,
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::Database => "config table",
            Source::File => "config file",
            Source::Default => "default",
        })
    }
}

/// Where logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// journald when systemd started us (`JOURNAL_STREAM` is set), else stderr.
    Auto,
    /// The systemd journal.
    Journald,
    /// Standard error, human-readable.
    Stderr,
}

/// The validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// See [`SPECS`] `data_dir`.
    pub data_dir: PathBuf,
    /// See [`SPECS`] `http.listen`.
    pub http_listen: SocketAddr,
    /// See [`SPECS`] `http.tls_listen`; `None` when HTTPS is off.
    pub http_tls_listen: Option<SocketAddr>,
    /// See [`SPECS`] `acme.directory_url`.
    pub acme_directory_url: String,
    /// See [`SPECS`] `acme.ca_bundle`; `None` for the built-in roots.
    pub acme_ca_bundle: Option<PathBuf>,
    /// See [`SPECS`] `http.trusted_proxy`.
    pub http_trusted_proxy: Option<IpAddr>,
    /// See [`SPECS`] `sip.listen`.
    pub sip_listen: SocketAddr,
    /// See [`SPECS`] `sip.tls_listen`; `None` when TLS is off.
    pub sip_tls_listen: Option<SocketAddr>,
    /// See [`SPECS`] `sip.tls_cert` and `sip.tls_key` (both or neither).
    pub sip_tls_files: Option<(PathBuf, PathBuf)>,
    /// See [`SPECS`] `sip.tls_only`.
    pub sip_tls_only: bool,
    /// See [`SPECS`] `sip.digest_sha256`.
    pub sip_digest_sha256: bool,
    /// See [`SPECS`] `log.level`.
    pub log_level: String,
    /// See [`SPECS`] `log.target`.
    pub log_target: LogTarget,
    /// See [`SPECS`] `storage.min_free_mib`.
    pub storage_min_free_mib: u64,
    /// See [`SPECS`] `sip.guard.*`: auth failures, malformed messages and
    /// requests per minute, and the ban length in seconds.
    pub sip_guard: SipGuardSettings,
    /// See [`SPECS`] `twilio.api_base`; without a trailing slash.
    pub twilio_api_base: String,
    /// RTP relay settings.
    pub media: MediaSettings,
    /// Call handling and the dial plan.
    pub calls: CallSettings,
    /// SMS handling.
    pub messages: MessageSettings,
    /// Where outgoing calls go instead of the Twilio SIP Domain, if set.
    pub twilio_sip_edge: Option<SocketAddr>,
    /// See [`SPECS`] `dns.resolv_conf`.
    pub dns_resolv_conf: PathBuf,
    /// How Twilio's SIP side is trusted.
    pub twilio_sip: TwilioSip,
    /// The multicast DNS responder.
    pub mdns: MdnsSettings,
    /// Public address discovery and the router's port mappings (`net.*`).
    pub net: NetSettings,
    /// Where each value came from, by key.
    pub sources: BTreeMap<&'static str, Source>,
    /// Each value as resolved, before parsing, by key (what the settings
    /// API shows as in effect, and what a flag or variable pins).
    pub values: BTreeMap<&'static str, String>,
    /// The config file read at startup, if there was one.
    pub file: Option<ConfigFile>,
}

/// How Twilio's INVITEs are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioSip {
    /// Elastic SIP Trunking (`trunk`): origination INVITEs carry no digest
    /// and are trusted by source address. Otherwise the SIP Domain mode.
    pub trunking: bool,
    /// Where Twilio's SIP traffic may come from (empty: anywhere).
    pub sources: IpRanges,
}

/// A list of addresses and CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRanges(Vec<(IpAddr, u8)>);

impl IpRanges {
    /// Parses `1.2.3.4, 54.172.60.0/30, 2001:db8::/32`.
    pub fn parse(s: &str) -> Result<IpRanges, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (ip, bits) = match part.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (part, None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("{part:?} is not an address or CIDR"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{part:?} has a bad prefix length"))?,
                None => max,
            };
            v.push((ip, bits));
        }
        Ok(IpRanges(v))
    }

    /// No ranges at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` falls in one of the ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if *bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - *bits as u32)
                };
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if *bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - *bits as u32)
                };
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// The multicast DNS responder (`mdns.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsSettings {
    /// `mdns.enabled`
    pub enabled: bool,
    /// `mdns.hostname`, lower-cased: one DNS label.
    pub hostname: String,
}

/// How media is relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// First port of the RTP range.
    pub rtp_first: u16,
    /// Last port of the RTP range.
    pub rtp_last: u16,
    /// Silence after which a call is hung up.
    pub timeout: std::time::Duration,
    /// The public address for SDP towards Twilio, when set.
    pub public_ip: Option<IpAddr>,
}

/// How the public address is learnt and the router asked for forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSettings {
    /// `net.discover_public_ip` (ignored when `media.public_ip` is set).
    pub discover_public_ip: bool,
    /// `net.stun_server` as `host:port`; `None` when empty.
    pub stun_server: Option<String>,
    /// `net.duckdns_url`, without a trailing slash.
    pub duckdns_url: String,
    /// `net.check_interval_secs`.
    pub check_interval: std::time::Duration,
    /// `net.mapping_lease_secs`.
    pub mapping_lease: std::time::Duration,
}

/// How calls are routed and guarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// How long phones ring.
    pub ring_timeout: std::time::Duration,
    /// The dial plan and toll-fraud limits.
    pub rules: crate::dialplan::DialRules,
    /// Refuse withheld caller IDs before the routing rules
    /// (`calls.reject_anonymous`).
    pub reject_anonymous: bool,
}

/// How messages are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSettings {
    /// `messages.auto_reply_hours`: how long after an auto-reply the same
    /// rule stays silent towards the same sender.
    pub auto_reply_window: std::time::Duration,
}

/// Thresholds of the SIP flood guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipGuardSettings {
    /// `sip.guard.max_auth_failures`
    pub max_auth_failures: u32,
    /// `sip.guard.max_garbage`
    pub max_garbage: u32,
    /// `sip.guard.max_requests`
    pub max_requests: u32,
    /// `sip.guard.ban_secs`
    pub ban_secs: u64,
}

/// A setting had a value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("setting {key} = {value:?} (from {origin}) is invalid: {reason}")]
pub struct SettingsError {
    /// The setting's key.
    pub key: &'static str,
    /// The offending value.
    pub value: String,
    /// Where it came from, so the user knows what to fix.
    pub origin: Source,
    /// What is wrong with it.
    pub reason: String,
}

/// The raw inputs before validation: flags given on the command line, the
/// process environment and the config file.
#[derive(Debug, Default, Clone)]
pub struct RawInputs {
    /// Values given as command-line flags, by key.
    pub flags: BTreeMap<&'static str, String>,
    /// `HOMELINE_*` environment variables, by variable name.
    pub env: BTreeMap<String, String>,
    /// The config file, if one was found.
    pub file: Option<ConfigFile>,
    /// Whether systemd started us (it sets `JOURNAL_STREAM` when stderr goes to the journal).
    pub under_systemd: bool,
}

impl RawInputs {
    /// Reads the `HOMELINE_*` variables of this process and the config file
    /// they name ([`CONFIG_FILE_ENV`], else [`DEFAULT_CONFIG_FILE`]). A
    /// missing file is no error; an unreadable one or a bad line is.
    pub fn from_process_env(
        flags: BTreeMap<&'static str, String>,
    ) -> Result<Self, ConfigFileError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("HOMELINE_"))
            .collect();
        let path = match env.get(CONFIG_FILE_ENV) {
            Some(p) if p.trim().is_empty() => None,
            Some(p) => Some(PathBuf::from(p)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)),
        };
        let file = match path {
            Some(p) => ConfigFile::load(&p)?,
            None => None,
        };
        let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
        Ok(Self {
            flags,
            env,
            file,
            under_systemd,
        })
    }

    fn lookup(&self, spec: &Spec, db: &BTreeMap<String, String>) -> (String, Source) {
        if let Some(v) = self.flags.get(spec.key) {
            return (v.clone(), Source::Flag);
        }
        if let Some(v) = self.env.get(spec.env) {
            return (v.clone(), Source::Env);
        }
        if spec.in_db {
            if let Some(v) = db.get(spec.key) {
                return (v.clone(), Source::Database);
            }
        }
        if let Some(v) = self.file.as_ref().and_then(|f| f.get(spec.key)) {
            return (v.to_string(), Source::File);
        }
        (spec.default.to_string(), Source::Default)
    }

    /// The data directory, which must be known before the database is opened.
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.lookup(spec("data_dir"), &BTreeMap::new()).0)
    }

    /// Resolves and validates every setting, given the `config` table's rows.
    /// A bad value from the config file is reported with its file and line.
    pub fn resolve(&self, db: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
        self.resolve_values(db).map_err(|mut e| {
            if let (Source::File, Some(file)) = (e.origin, &self.file) {
                if let Some((_, line)) = file.values.get(e.key) {
                    e.reason = format!("{} ({}, line {line})", e.reason, file.path.display());
                }
            }
            e
        })
    }

    fn resolve_values(&self, db: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
        let mut sources = BTreeMap::new();
        let mut values = BTreeMap::new();
        let mut get = |key: &'static str| {
            let (value, source) = self.lookup(spec(key), db);
            sources.insert(key, source);
            values.insert(key, value.clone());
            (key, value, source)
        };
        let data_dir = {
            let (key, value, source) = get("data_dir");
            if value.trim().is_empty() {
                return Err(invalid(key, value, source, "must not be empty"));
            }
            PathBuf::from(value)
        };
        let http_listen = parse_addr(get("http.listen"))?;
        let http_tls_listen = {
            let (key, value, source) = get("http.tls_listen");
            if value.trim().is_empty() {
                None
            } else {
                Some(parse_addr((key, value, source))?)
            }
        };
        let acme_directory_url = {
            let (key, value, source) = get("acme.directory_url");
            check_http_url(&value).map_err(|reason| invalid(key, value.clone(), source, reason))?;
            value
        };
        let acme_ca_bundle = {
            let (_, value, _) = get("acme.ca_bundle");
            (!value.trim().is_empty()).then(|| PathBuf::from(value.trim()))
        };
        let http_trusted_proxy = {
            let (key, value, source) = get("http.trusted_proxy");
            match value.trim() {
                "" => None,
                v => Some(v.parse::<IpAddr>().map_err(|_| {
                    invalid(
                        key,
                        value.clone(),
                        source,
                        "expected an IP address (no port), e.g. 192.168.1.2, or empty",
                    )
                })?),
            }
        };
        let sip_listen = parse_addr(get("sip.listen"))?;
        let log_level = {
            let (key, value, source) = get("log.level");
            check_log_filter(&value)
                .map_err(|reason| invalid(key, value.clone(), source, reason))?;
            value
        };
        let log_target = {
            let (key, value, source) = get("log.target");
            match value.as_str() {
                "auto" => LogTarget::Auto,
                "journald" => LogTarget::Journald,
                "stderr" => LogTarget::Stderr,
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        source,
                        "expected auto, journald or stderr",
                    ))
                }
            }
        };
        let storage_min_free_mib = {
            let (key, value, source) = get("storage.min_free_mib");
            value
                .parse::<u64>()
                .map_err(|e| invalid(key, value.clone(), source, e))?
        };
        let twilio_api_base = {
            let (key, value, source) = get("twilio.api_base");
            check_http_url(&value).map_err(|reason| invalid(key, value.clone(), source, reason))?;
            value.trim_end_matches('/').to_string()
        };
        debug_assert_eq!(
            spec("storage.min_free_mib").default,
            DEFAULT_STORAGE_MIN_FREE_MIB.to_string()
        );
        let sip_tls_listen = {
            let (key, value, source) = get("sip.tls_listen");
            if value.trim().is_empty() {
                None
            } else {
                Some(parse_addr((key, value, source))?)
            }
        };
        let sip_tls_files = {
            let (ck, cert, cs) = get("sip.tls_cert");
            let (_, key, _) = get("sip.tls_key");
            match (cert.trim().is_empty(), key.trim().is_empty()) {
                (true, true) => None,
                (false, false) => Some((PathBuf::from(cert), PathBuf::from(key))),
                _ => {
                    return Err(invalid(
                        ck,
                        cert,
                        cs,
                        "sip.tls_cert and sip.tls_key must be set together",
                    ))
                }
            }
        };
        let mut flag = |key: &'static str| -> Result<bool, SettingsError> {
            let (key, value, source) = get(key);
            match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(key, value, source, "expected true or false")),
            }
        };
        let sip_tls_only = flag("sip.tls_only")?;
        let mdns_enabled = flag("mdns.enabled")?;
        let sip_digest_sha256 = flag("sip.digest_sha256")?;
        let discover_public_ip = flag("net.discover_public_ip")?;
        let reject_anonymous = flag("calls.reject_anonymous")?;
        if sip_tls_only && sip_tls_listen.is_none() {
            return Err(invalid(
                "sip.tls_only",
                "true".into(),
                sources["sip.tls_only"],
                "TLS-only mode needs sip.tls_listen",
            ));
        }
        let mut number = |key: &'static str| -> Result<u64, SettingsError> {
            let (key, value, source) = get(key);
            value
                .parse::<u32>()
                .map(u64::from)
                .map_err(|e| invalid(key, value.clone(), source, e))
        };
        let sip_guard = SipGuardSettings {
            max_auth_failures: number("sip.guard.max_auth_failures")? as u32,
            max_garbage: number("sip.guard.max_garbage")? as u32,
            max_requests: number("sip.guard.max_requests")? as u32,
            ban_secs: number("sip.guard.ban_secs")?,
        };
        let media_timeout = number("media.timeout_secs")?.max(1);
        let check_interval = number("net.check_interval_secs")?.max(1);
        let mapping_lease = number("net.mapping_lease_secs")?.max(2);
        let ring_timeout = number("calls.ring_timeout_secs")?.max(1);
        let max_concurrent = number("calls.max_concurrent_outgoing")? as usize;
        let max_per_hour = number("calls.max_outgoing_per_hour")? as usize;
        let messages = {
            let hours = number("messages.auto_reply_hours")?;
            if !(1..=8760).contains(&hours) {
                let (key, value, source) = get("messages.auto_reply_hours");
                return Err(invalid(key, value, source, "expected 1 to 8760 hours"));
            }
            MessageSettings {
                auto_reply_window: std::time::Duration::from_secs(hours * 3600),
            }
        };
        let media = {
            let (key, value, source) = get("media.rtp_ports");
            let range = value
                .split_once('-')
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                })
                .filter(|(a, b)| *a >= 1024 && b > a && b - a >= 3);
            let Some((rtp_first, rtp_last)) = range else {
                return Err(invalid(
                    key,
                    value,
                    source,
                    "expected FIRST-LAST, ports 1024-65535 with room for two pairs",
                ));
            };
            let (key, value, source) = get("media.public_ip");
            let public_ip = if value.trim().is_empty() {
                None
            } else {
                Some(
                    value
                        .trim()
                        .parse::<IpAddr>()
                        .map_err(|e| invalid(key, value.clone(), source, e))?,
                )
            };
            MediaSettings {
                rtp_first,
                rtp_last,
                timeout: std::time::Duration::from_secs(media_timeout),
                public_ip,
            }
        };
        let calls = {
            let (key, value, source) = get("calls.home_country");
            let home_country = value.trim().trim_start_matches('+').to_string();
            if home_country.is_empty()
                || home_country.len() > 3
                || !home_country.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(
                    key,
                    value,
                    source,
                    "expected a country calling code like 1 or 44",
                ));
            }
            let (key, value, source) = get("calls.allowed_prefixes");
            let allowed_prefixes: Vec<String> = value
                .split(',')
                .map(|p| p.trim().trim_start_matches('+').to_string())
                .filter(|p| !p.is_empty())
                .collect();
            if allowed_prefixes
                .iter()
                .any(|p| !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid(
                    key,
                    value,
                    source,
                    "expected comma-separated digits like 1,44",
                ));
            }
            CallSettings {
                ring_timeout: std::time::Duration::from_secs(ring_timeout),
                rules: crate::dialplan::DialRules {
                    home_country,
                    allowed_prefixes,
                    max_concurrent,
                    max_per_hour,
                },
                reject_anonymous,
            }
        };
        let twilio_sip = {
            let (key, value, source) = get("twilio.sip_sources");
            let sources =
                IpRanges::parse(&value).map_err(|e| invalid(key, value.clone(), source, e))?;
            let (key, value, source) = get("twilio.sip_mode");
            let trunking = match value.trim() {
                "domain" => false,
                "trunk" => true,
                _ => return Err(invalid(key, value, source, "expected domain or trunk")),
            };
            if trunking && sources.is_empty() {
                return Err(invalid(
                    key,
                    value,
                    source,
                    "trunk mode needs twilio.sip_sources (Twilio's signalling addresses)",
                ));
            }
            TwilioSip { trunking, sources }
        };
        let twilio_sip_edge = {
            let (key, value, source) = get("twilio.sip_edge");
            if value.trim().is_empty() {
                None
            } else {
                Some(
                    value
                        .trim()
                        .parse::<SocketAddr>()
                        .map_err(|e| invalid(key, value.clone(), source, e))?,
                )
            }
        };
        let dns_resolv_conf = {
            let (key, value, source) = get("dns.resolv_conf");
            if value.trim().is_empty() {
                return Err(invalid(key, value, source, "expected a file path"));
            }
            PathBuf::from(value.trim())
        };
        let mdns = {
            let (key, value, source) = get("mdns.hostname");
            let name = value.trim().to_ascii_lowercase();
            check_host_label(&name)
                .map_err(|reason| invalid(key, value.clone(), source, reason))?;
            MdnsSettings {
                enabled: mdns_enabled,
                hostname: name,
            }
        };
        let net = {
            let (key, value, source) = get("net.stun_server");
            let stun_server = match value.trim() {
                "" => None,
                v if v.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                }) =>
                {
                    Some(v.to_string())
                }
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        source,
                        "expected host:port, e.g. global.stun.twilio.com:3478, or empty",
                    ))
                }
            };
            let (key, value, source) = get("net.duckdns_url");
            check_http_url(&value).map_err(|reason| invalid(key, value.clone(), source, reason))?;
            NetSettings {
                discover_public_ip,
                stun_server,
                duckdns_url: value.trim_end_matches('/').to_string(),
                check_interval: std::time::Duration::from_secs(check_interval),
                mapping_lease: std::time::Duration::from_secs(mapping_lease),
            }
        };
        Ok(Settings {
            net,
            dns_resolv_conf,
            media,
            calls,
            messages,
            twilio_sip_edge,
            twilio_sip,
            data_dir,
            http_listen,
            http_tls_listen,
            acme_directory_url,
            acme_ca_bundle,
            http_trusted_proxy,
            sip_listen,
            sip_tls_listen,
            sip_tls_files,
            sip_tls_only,
            sip_digest_sha256,
            log_level,
            log_target,
            storage_min_free_mib,
            sip_guard,
            twilio_api_base,
            mdns,
            sources,
            values,
            file: self.file.clone(),
        })
    }
}

/// A host name label (RFC 952/1123): 1 to 63 letters, digits and hyphens,
/// not starting or ending with a hyphen.
fn check_host_label(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("expected one label of letters, digits and hyphens (1 to 63, e.g. homeline), without .local".into())
    }
}

/// Accepts `LEVEL` or `target=LEVEL` directives, comma-separated. Stricter
/// than tracing's parser, which reads a misspelt level as a target name.
fn check_log_filter(value: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |s: &str| LEVELS.contains(&s.trim().to_ascii_lowercase().as_str());
    let parts: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err("expected a level (error, warn, info, debug, trace, off)".into());
    }
    for part in parts {
        let ok = match part.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(part),
        };
        if !ok {
            return Err(format!(
                "{part:?} is not a level or a target=level directive"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Accepts an absolute `http://` or `https://` URL with a host and no query,
/// fragment or credentials (they would end up in logs).
pub fn check_http_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or("expected an absolute http:// or https:// URL")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host".into());
    }
    if host.contains('@') {
        return Err("the URL must not contain credentials".into());
    }
    if value.contains(['?', '#']) || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not contain a query, a fragment or spaces".into());
    }
    Ok(())
}

fn spec(key: &str) -> &'static Spec {
    SPECS
        .iter()
        .find(|s| s.key == key)
        .expect("every key used in resolve() is in SPECS")
}

fn parse_addr(
    (key, value, source): (&'static str, String, Source),
) -> Result<SocketAddr, SettingsError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            value.clone(),
            source,
            "expected IP:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
        )
    })
}

fn invalid(
    key: &'static str,
    value: String,
    source: Source,
    reason: impl fmt::Display,
) -> SettingsError {
    SettingsError {
        key,
        value,
        origin: source,
        reason: reason.to_string(),
    }
}

impl Settings {
    /// `<data>/homeline.db`.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("homeline.db")
    }

    /// `<data>/run`, where `ports.json` is written once listeners are bound.
    pub fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }

    /// What `key` is when neither a flag, a variable nor the `config` table
    /// sets it: the config file's value, else the built-in default.
    pub fn fallback(&self, key: &str) -> String {
        self.file
            .as_ref()
            .and_then(|f| f.get(key))
            .map(str::to_string)
            .unwrap_or_else(|| {
                SPECS
                    .iter()
                    .find(|s| s.key == key)
                    .map_or("", |s| s.default)
                    .to_string()
            })
    }
}
