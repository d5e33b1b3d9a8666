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

/// Describes one setting: where it can come from and what it means.
#[derive(Debug)]
pub struct Spec {
    /// Key in the `config` table and in `--set`-style overrides.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Built-in default.
    pub default: &'static str,
    /// Whether the `config` table may set it (the data dir cannot: the table lives in it).
    pub in_db: bool,
    /// One line for the configuration reference.
    pub doc: &'static str,
}

/// Every setting Homeline reads.
pub const SPECS: &[Spec] = &[
    Spec {
        key: "data_dir",
        env: "HOMELINE_DATA_DIR",
        default: "./data",
        in_db: false,
        doc: "Directory for the database, keys, recordings and run/ports.json.",
    },
    Spec {
        key: "http.listen",
        env: "HOMELINE_HTTP_LISTEN",
        default: "0.0.0.0:8080",
        in_db: true,
        doc: "Address of the web UI, REST API and Twilio webhooks (port 0 picks a free port).",
    },
    Spec {
        key: "http.tls_listen",
        env: "HOMELINE_HTTP_TLS_LISTEN",
        default: "",
        in_db: true,
        doc: "Address of the HTTPS listener (same UI, API and webhooks, with the ACME certificate once there is one; port 0 picks a free port; empty: no HTTPS).",
    },
    Spec {
        key: "http.trusted_proxy",
        env: "HOMELINE_HTTP_TRUSTED_PROXY",
        default: "",
        in_db: true,
        doc: "IP address of a reverse proxy in front of the web UI; only requests from it may set the client address (last `X-Forwarded-For` hop) and HTTPS (`X-Forwarded-Proto`). Empty: no proxy is trusted.",
    },
    Spec {
        key: "sip.listen",
        env: "HOMELINE_SIP_LISTEN",
        default: "0.0.0.0:5060",
        in_db: true,
        doc: "Address of the SIP UDP/TCP listeners (port 0 picks a free port).",
    },
    Spec {
        key: "sip.tls_listen",
        env: "HOMELINE_SIP_TLS_LISTEN",
        default: "0.0.0.0:5061",
        in_db: true,
        doc: "Address of SIP over TLS (port 0 picks a free port; empty turns TLS off).",
    },
    Spec {
        key: "sip.tls_cert",
        env: "HOMELINE_SIP_TLS_CERT",
        default: "",
        in_db: true,
        doc: "PEM certificate chain for SIP over TLS; empty uses a self-signed one generated in <data>/tls/.",
    },
    Spec {
        key: "sip.tls_key",
        env: "HOMELINE_SIP_TLS_KEY",
        default: "",
        in_db: true,
        doc: "PEM private key matching sip.tls_cert.",
    },
    Spec {
        key: "sip.tls_only",
        env: "HOMELINE_SIP_TLS_ONLY",
        default: "false",
        in_db: true,
        doc: "`true` turns plain SIP (UDP and TCP) off, leaving only TLS.",
    },
    Spec {
        key: "sip.digest_sha256",
        env: "HOMELINE_SIP_DIGEST_SHA256",
        default: "false",
        in_db: true,
        doc: "`true` also challenges phones with SHA-256 digest (after MD5); some older clients fail on it.",
    },
    Spec {
        key: "sip.guard.max_auth_failures",
        env: "HOMELINE_SIP_GUARD_MAX_AUTH_FAILURES",
        default: "10",
        in_db: true,
        doc: "Failed SIP authentications per source IP per minute before the source is banned.",
    },
    Spec {
        key: "sip.guard.max_garbage",
        env: "HOMELINE_SIP_GUARD_MAX_GARBAGE",
        default: "30",
        in_db: true,
        doc: "Malformed SIP messages per source IP per minute before the source is banned.",
    },
    Spec {
        key: "sip.guard.max_requests",
        env: "HOMELINE_SIP_GUARD_MAX_REQUESTS",
        default: "600",
        in_db: true,
        doc: "SIP requests per minute accepted from a source with no registered phone (registered sources are not limited).",
    },
    Spec {
        key: "sip.guard.ban_secs",
        env: "HOMELINE_SIP_GUARD_BAN_SECS",
        default: "600",
        in_db: true,
        doc: "How long a banned SIP source is ignored, in seconds.",
    },
    Spec {
        key: "media.rtp_ports",
        env: "HOMELINE_MEDIA_RTP_PORTS",
        default: "10000-10199",
        in_db: true,
        doc: "UDP port range for RTP/RTCP pairs (two pairs per call); forward it on the router for Twilio calls.",
    },
    Spec {
        key: "media.timeout_secs",
        env: "HOMELINE_MEDIA_TIMEOUT_SECS",
        default: "60",
        in_db: true,
        doc: "A call whose phone or trunk sends no RTP/RTCP for this long (and no BYE) is hung up.",
    },
    Spec {
        key: "media.public_ip",
        env: "HOMELINE_MEDIA_PUBLIC_IP",
        default: "",
        in_db: true,
        doc: "The router's public IP written in SDP towards Twilio (empty: the address that routes to Twilio's edge).",
    },
    Spec {
        key: "calls.ring_timeout_secs",
        env: "HOMELINE_CALLS_RING_TIMEOUT_SECS",
        default: "30",
        in_db: true,
        doc: "How long phones ring before the caller is sent on (Twilio: to voicemail).",
    },
    Spec {
        key: "calls.home_country",
        env: "HOMELINE_CALLS_HOME_COUNTRY",
        default: "1",
        in_db: true,
        doc: "Home country calling code (digits): national numbers are dialled in its plan.",
    },
    Spec {
        key: "calls.allowed_prefixes",
        env: "HOMELINE_CALLS_ALLOWED_PREFIXES",
        default: "",
        in_db: true,
        doc: "Comma-separated E.164 prefixes (digits) phones may call; empty allows the home country only.",
    },
    Spec {
        key: "calls.max_concurrent_outgoing",
        env: "HOMELINE_CALLS_MAX_CONCURRENT_OUTGOING",
        default: "2",
        in_db: true,
        doc: "Toll-fraud guard: most calls to Twilio at once.",
    },
    Spec {
        key: "calls.max_outgoing_per_hour",
        env: "HOMELINE_CALLS_MAX_OUTGOING_PER_HOUR",
        default: "20",
        in_db: true,
        doc: "Toll-fraud guard: most calls to Twilio started per hour.",
    },
    Spec {
        key: "calls.reject_anonymous",
        env: "HOMELINE_CALLS_REJECT_ANONYMOUS",
        default: "false",
        in_db: true,
        doc: "Reject calls from withheld (anonymous) numbers before a number's routing rules run.",
    },
    Spec {
        key: "messages.auto_reply_hours",
        env: "HOMELINE_MESSAGES_AUTO_REPLY_HOURS",
        default: "12",
        in_db: true,
        doc: "SMS auto-replies: at most one per sender per trigger in this many hours (1 to 8760).",
    },
    Spec {
        key: "twilio.sip_mode",
        env: "HOMELINE_TWILIO_SIP_MODE",
        default: "domain",
        in_db: true,
        doc: "`domain` (Programmable Voice + SIP Domain: Twilio authenticates by digest) or `trunk` (Elastic SIP Trunking: origination INVITEs accepted from `twilio.sip_sources`).",
    },
    Spec {
        key: "twilio.sip_sources",
        env: "HOMELINE_TWILIO_SIP_SOURCES",
        default: "",
        in_db: true,
        doc: "Comma-separated addresses/CIDRs Twilio's SIP traffic comes from; required in `trunk` mode, an extra check in `domain` mode.",
    },
    Spec {
        key: "twilio.sip_edge",
        env: "HOMELINE_TWILIO_SIP_EDGE",
        default: "",
        in_db: true,
        doc: "`host:port` outgoing calls are sent to instead of the Twilio SIP Domain (tests point it at a stand-in; UDP).",
    },
    Spec {
        key: "dns.resolv_conf",
        env: "HOMELINE_DNS_RESOLV_CONF",
        default: "/etc/resolv.conf",
        in_db: true,
        doc: "resolv.conf(5) naming the DNS servers the Twilio SIP Domain is resolved with (`nameserver`, `options timeout:N attempts:N`); read for every lookup.",
    },
    Spec {
        key: "log.level",
        env: "HOMELINE_LOG_LEVEL",
        default: "info",
        in_db: true,
        doc: "Log filter: a level (error, warn, info, debug, trace) or tracing directives like `info,homeline::http=debug`.",
    },
    Spec {
        key: "log.target",
        env: "HOMELINE_LOG_TARGET",
        default: "auto",
        in_db: false,
        doc: "Where logs go: `journald`, `stderr`, or `auto` (journald when started by systemd).",
    },
    Spec {
        key: "twilio.api_base",
        env: "HOMELINE_TWILIO_API_BASE",
        default: "https://api.twilio.com",
        in_db: true,
        doc: "Base URL of Twilio's REST API (tests point it at a local stand-in).",
    },
    Spec {
        key: "acme.directory_url",
        env: "HOMELINE_ACME_DIRECTORY_URL",
        default: "https://acme-v02.api.letsencrypt.org/directory",
        in_db: true,
        doc: "Directory of the ACME certificate authority (nothing is asked until the acme group is enabled in the UI).",
    },
    Spec {
        key: "acme.ca_bundle",
        env: "HOMELINE_ACME_CA_BUNDLE",
        default: "",
        in_db: true,
        doc: "PEM file of the roots trusted when talking to the ACME server instead of the built-in web roots (a test CA such as Pebble); empty: the built-in roots.",
    },
    Spec {
        key: "storage.min_free_mib",
        env: "HOMELINE_STORAGE_MIN_FREE_MIB",
        default: "256",
        in_db: true,
        doc: "Free space on the data disk below which storage is reported `low` (a quarter of it is `critical`).",
    },
    Spec {
        key: "mdns.enabled",
        env: "HOMELINE_MDNS_ENABLED",
        default: "false",
        in_db: true,
        doc: "`true` answers multicast DNS on UDP 5353 on every LAN interface: `<mdns.hostname>.local` and the web UI as `_http._tcp` (the appliance image turns it on).",
    },
    Spec {
        key: "mdns.hostname",
        env: "HOMELINE_MDNS_HOSTNAME",
        default: "homeline",
        in_db: true,
        doc: "The name answered as `<name>.local` (one DNS label: letters, digits, hyphens); if another device has it, `<name>-2` and so on is taken.",
    },
    Spec {
        key: "net.discover_public_ip",
        env: "HOMELINE_NET_DISCOVER_PUBLIC_IP",
        default: "false",
        in_db: true,
        doc: "Learn the router's public address (NAT-PMP, UPnP-IGD, STUN) when media.public_ip is not set, and follow its changes.",
    },
    Spec {
        key: "net.stun_server",
        env: "HOMELINE_NET_STUN_SERVER",
        default: "global.stun.twilio.com:3478",
        in_db: true,
        doc: "STUN server (host:port) asked for the public address; empty: ask only the router.",
    },
    Spec {
        key: "net.duckdns_url",
        env: "HOMELINE_NET_DUCKDNS_URL",
        default: "https://www.duckdns.org/update",
        in_db: true,
        doc: "DuckDNS update URL (tests point it at a local stand-in).",
    },
    Spec {
        key: "net.check_interval_secs",
        env: "HOMELINE_NET_CHECK_INTERVAL_SECS",
        default: "300",
        in_db: true,
        doc: "How often the public address and the router's port mappings are checked, in seconds.",
    },
    Spec {
        key: "net.mapping_lease_secs",
        env: "HOMELINE_NET_MAPPING_LEASE_SECS",
        default: "3600",
        in_db: true,
        doc: "Lease asked of the router for each port mapping, in seconds; renewed at half of it.",
    },
];

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

/// Environment variable naming the config file; set but empty means none.
pub const CONFIG_FILE_ENV: &str = "HOMELINE_CONFIG_FILE";
/// Where the config file is looked for when [`CONFIG_FILE_ENV`] is unset
/// (the appliance image installs it there).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/homeline/homeline.conf";

/// The values of a config file: `key = value` lines with [`SPECS`] keys;
/// blank lines and lines starting with `#` are ignored. Values are taken
/// as written (trimmed); there are no quotes and no comments after a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it was read from (named in error messages).
    pub path: PathBuf,
    /// Each value with the number of the line it is on.
    pub values: BTreeMap<&'static str, (String, usize)>,
}

/// The config file cannot be used: the program refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// It exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a known `key = value`.
    #[error("config file {path}, line {line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigFile {
    /// Reads `path`; `Ok(None)` if there is no such file.
    pub fn load(path: &std::path::Path) -> Result<Option<ConfigFile>, ConfigFileError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| ConfigFileError::BadLine {
                    path: path.to_path_buf(),
                    line: line_of(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
                    reason: "not UTF-8 text".into(),
                })?;
                ConfigFile::parse(path, &text).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigFileError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the text of a config file read from `path`.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<ConfigFile, ConfigFileError> {
        let mut values: BTreeMap<&'static str, (String, usize)> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |reason: String| ConfigFileError::BadLine {
                path: path.to_path_buf(),
                line,
                reason,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(bad(format!(
                    "expected `key = value` or a `#` comment, found {trimmed:?}"
                )));
            };
            let key = key.trim();
            let Some(spec) = SPECS.iter().find(|s| s.key == key) else {
                return Err(bad(format!(
                    "unknown setting {key:?} (the keys are those of the configuration reference, e.g. http.listen)"
                )));
            };
            if let Some((_, first)) = values.get(spec.key) {
                return Err(bad(format!("{key} is already set on line {first}")));
            }
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad(format!(
                    "the value of {key} contains control characters"
                )));
            }
            values.insert(spec.key, (value.trim().to_string(), line));
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }
}

/// The line number of the end of `prefix` (1-based).
fn line_of(prefix: &[u8]) -> usize {
    prefix.iter().filter(|b| **b == b'\n').count() + 1
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(flags: &[(&'static str, &str)], env: &[(&str, &str)]) -> RawInputs {
        RawInputs {
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            under_systemd: false,
            file: None,
        }
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(std::path::Path::new("/etc/homeline/homeline.conf"), text)
            .expect("valid file")
    }

    #[test]
    fn the_file_sits_between_the_table_and_the_defaults() {
        let mut raw = inputs(
            &[("sip.listen", "127.0.0.1:9")],
            &[("HOMELINE_LOG_LEVEL", "warn")],
        );
        raw.file = Some(file(
            "# the image's layout\n\n  data_dir = /var/lib/homeline\nhttp.listen=0.0.0.0:80\nsip.listen = 0.0.0.0:5060\nlog.level = debug\nmdns.enabled = true\nstorage.min_free_mib = 64\n",
        ));
        let db = BTreeMap::from([("storage.min_free_mib".to_string(), "128".to_string())]);
        let s = raw.resolve(&db).expect("valid");
        assert_eq!(raw.data_dir(), PathBuf::from("/var/lib/homeline"));
        assert_eq!(
            (s.data_dir.to_str(), s.sources["data_dir"]),
            (Some("/var/lib/homeline"), Source::File)
        );
        assert_eq!(
            (s.http_listen.port(), s.sources["http.listen"]),
            (80, Source::File)
        );
        assert_eq!(
            (s.sip_listen.port(), s.sources["sip.listen"]),
            (9, Source::Flag)
        );
        assert_eq!(
            (s.log_level.as_str(), s.sources["log.level"]),
            ("warn", Source::Env)
        );
        assert_eq!(
            (s.storage_min_free_mib, s.sources["storage.min_free_mib"]),
            (128, Source::Database)
        );
        assert!(s.mdns.enabled);
        assert_eq!(
            (s.mdns.hostname.as_str(), s.sources["mdns.hostname"]),
            ("homeline", Source::Default)
        );
        assert_eq!(s.fallback("http.listen"), "0.0.0.0:80");
        assert_eq!(s.fallback("sip.tls_only"), "false");
    }

    #[test]
    fn bad_file_lines_name_the_file_and_line() {
        let path = std::path::Path::new("/etc/homeline/homeline.conf");
        for (text, line, words) in [
            (
                "http.listen = 0.0.0.0:80\nhttp.lisen = 1\n",
                2,
                "unknown setting \"http.lisen\"",
            ),
            ("# c\nmdns.enabled true\n", 2, "expected `key = value`"),
            (
                "mdns.enabled = true\nmdns.enabled = false\n",
                2,
                "already set on line 1",
            ),
            ("= true\n", 1, "unknown setting \"\""),
        ] {
            let err = ConfigFile::parse(path, text).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("/etc/homeline/homeline.conf")
                    && msg.contains(&format!("line {line}"))
                    && msg.contains(words),
                "{msg}"
            );
        }
        let mut raw = inputs(&[], &[]);
        raw.file = Some(file("\n\nhttp.listen = port80\n"));
        let msg = raw.resolve(&BTreeMap::new()).unwrap_err().to_string();
        assert!(
            msg.contains("config file") && msg.contains("homeline.conf, line 3"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_file_is_no_error_and_others_are() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ConfigFile::load(&dir.path().join("none.conf")).unwrap(),
            None
        );
        let bin = dir.path().join("bin.conf");
        std::fs::write(&bin, b"log.level = info\n\xff\n").unwrap();
        let msg = ConfigFile::load(&bin).unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("UTF-8"), "{msg}");
        let msg = ConfigFile::load(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("cannot read config file"), "{msg}");
    }

    #[test]
    fn the_image_file_is_valid() {
        let text = include_str!("../image/files/etc/homeline/homeline.conf");
        let mut raw = inputs(&[], &[]);
        raw.file = Some(file(text));
        let s = raw
            .resolve(&BTreeMap::new())
            .expect("the image's config file is valid");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/homeline"));
        assert_eq!(s.http_listen.port(), 80);
        assert!(s.mdns.enabled);
        let from_file = s.sources.values().filter(|v| **v == Source::File).count();
        assert_eq!(from_file, 5, "every line of the file is used");
    }

    #[test]
    fn mdns_hostname_is_one_label() {
        let s = inputs(&[], &[("HOMELINE_MDNS_HOSTNAME", "Kitchen-Pi")])
            .resolve(&BTreeMap::new())
            .unwrap();
        assert_eq!(s.mdns.hostname, "kitchen-pi");
        assert!(!s.mdns.enabled);
        for bad in ["", "homeline.local", "-x", "x-", "a b", &"x".repeat(64)] {
            assert!(
                inputs(&[], &[("HOMELINE_MDNS_HOSTNAME", bad)])
                    .resolve(&BTreeMap::new())
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = inputs(&[], &[])
            .resolve(&BTreeMap::new())
            .expect("defaults are valid");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.http_listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.sip_listen.to_string(), "0.0.0.0:5060");
        assert_eq!(s.log_target, LogTarget::Auto);
        assert_eq!(s.storage_min_free_mib, DEFAULT_STORAGE_MIN_FREE_MIB);
        assert!(s.sources.values().all(|src| *src == Source::Default));
    }

    #[test]
    fn flag_beats_env_beats_table_beats_default() {
        let db: BTreeMap<String, String> = [
            ("http.listen", "127.0.0.1:3"),
            ("sip.listen", "127.0.0.1:4"),
            ("log.level", "debug"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let raw = inputs(
            &[("http.listen", "127.0.0.1:1")],
            &[
                ("HOMELINE_HTTP_LISTEN", "127.0.0.1:2"),
                ("HOMELINE_SIP_LISTEN", "127.0.0.1:5"),
            ],
        );
        let s = raw.resolve(&db).expect("valid");
        assert_eq!(
            (s.http_listen.port(), s.sources["http.listen"]),
            (1, Source::Flag)
        );
        assert_eq!(
            (s.sip_listen.port(), s.sources["sip.listen"]),
            (5, Source::Env)
        );
        assert_eq!(
            (s.log_level.as_str(), s.sources["log.level"]),
            ("debug", Source::Database)
        );
        assert_eq!(s.sources["log.target"], Source::Default);
    }

    #[test]
    fn tls_settings_come_together() {
        let s = inputs(&[], &[("HOMELINE_SIP_TLS_ONLY", "true")])
            .resolve(&BTreeMap::new())
            .expect("valid");
        assert!(s.sip_tls_only && s.sip_tls_listen.is_some() && s.sip_tls_files.is_none());
        let err = inputs(&[], &[("HOMELINE_SIP_TLS_CERT", "/x.pem")])
            .resolve(&BTreeMap::new())
            .unwrap_err();
        assert_eq!(err.key, "sip.tls_cert");
        let err = inputs(
            &[],
            &[
                ("HOMELINE_SIP_TLS_ONLY", "true"),
                ("HOMELINE_SIP_TLS_LISTEN", ""),
            ],
        )
        .resolve(&BTreeMap::new())
        .unwrap_err();
        assert_eq!(err.key, "sip.tls_only");
        assert!(inputs(&[], &[("HOMELINE_SIP_TLS_LISTEN", "")])
            .resolve(&BTreeMap::new())
            .expect("off")
            .sip_tls_listen
            .is_none());
    }

    #[test]
    fn data_dir_cannot_come_from_the_table() {
        let db = BTreeMap::from([("data_dir".to_string(), "/elsewhere".to_string())]);
        let s = inputs(&[], &[]).resolve(&db).expect("valid");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn invalid_values_name_key_value_and_source() {
        let err = inputs(&[], &[("HOMELINE_HTTP_LISTEN", "localhost")])
            .resolve(&BTreeMap::new())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("http.listen")
                && msg.contains("\"localhost\"")
                && msg.contains("environment"),
            "{msg}"
        );
        let err = inputs(&[("log.level", "loud")], &[])
            .resolve(&BTreeMap::new())
            .unwrap_err();
        assert_eq!((err.key, err.origin), ("log.level", Source::Flag));
        assert!(inputs(&[("log.level", "info,homeline::http=debug")], &[])
            .resolve(&BTreeMap::new())
            .is_ok());
        assert!(inputs(&[("log.level", "info,hyper=")], &[])
            .resolve(&BTreeMap::new())
            .is_err());
        let err = inputs(&[], &[("HOMELINE_LOG_TARGET", "syslog")])
            .resolve(&BTreeMap::new())
            .unwrap_err();
        assert_eq!(err.key, "log.target");
    }

    #[test]
    fn trusted_proxy_and_twilio_base() {
        let s = inputs(&[], &[])
            .resolve(&BTreeMap::new())
            .expect("defaults");
        assert_eq!(s.http_trusted_proxy, None, "no proxy is trusted by default");
        assert_eq!(s.twilio_api_base, "https://api.twilio.com");
        let s = inputs(
            &[],
            &[
                ("HOMELINE_HTTP_TRUSTED_PROXY", "192.168.1.2"),
                ("HOMELINE_TWILIO_API_BASE", "http://127.0.0.1:9/"),
            ],
        )
        .resolve(&BTreeMap::new())
        .expect("valid");
        assert_eq!(s.http_trusted_proxy, "192.168.1.2".parse().ok());
        assert_eq!(s.twilio_api_base, "http://127.0.0.1:9");
        for (var, bad) in [
            ("HOMELINE_HTTP_TRUSTED_PROXY", "192.168.1.2:80"),
            ("HOMELINE_HTTP_TRUSTED_PROXY", "proxy.lan"),
            ("HOMELINE_TWILIO_API_BASE", "api.twilio.com"),
            ("HOMELINE_TWILIO_API_BASE", "https://user:pw@api.twilio.com"),
            ("HOMELINE_TWILIO_API_BASE", "https://"),
        ] {
            assert!(
                inputs(&[], &[(var, bad)])
                    .resolve(&BTreeMap::new())
                    .is_err(),
                "{var}={bad}"
            );
        }
    }

    #[test]
    fn twilio_sources_and_modes() {
        let r = IpRanges::parse("54.172.60.0/30, 127.0.0.1, 2001:db8::/32").unwrap();
        for (ip, inside) in [
            ("54.172.60.3", true),
            ("54.172.60.4", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("2001:db8::5", true),
            ("2001:db9::5", false),
        ] {
            assert_eq!(r.contains(ip.parse().unwrap()), inside, "{ip}");
        }
        assert!(IpRanges::parse("10.0.0.0/33").is_err());
        assert!(IpRanges::parse("twilio").is_err());
        let err = inputs(&[("twilio.sip_mode", "trunk")], &[])
            .resolve(&BTreeMap::new())
            .unwrap_err();
        assert_eq!(
            err.key, "twilio.sip_mode",
            "trunk mode without sources is refused"
        );
        let s = inputs(
            &[
                ("twilio.sip_mode", "trunk"),
                ("twilio.sip_sources", "10.1.0.0/16"),
            ],
            &[],
        )
        .resolve(&BTreeMap::new())
        .unwrap();
        assert!(
            s.twilio_sip.trunking && s.twilio_sip.sources.contains("10.1.2.3".parse().unwrap())
        );
    }

    #[test]
    fn readme_documents_every_setting() {
        let readme = include_str!("../README.md");
        for spec in SPECS {
            assert!(
                readme.contains(spec.env),
                "README.md does not document {}",
                spec.env
            );
            assert!(
                readme.contains(&format!("`{}`", spec.key)),
                "README.md does not document key {}",
                spec.key
            );
        }
    }
}
