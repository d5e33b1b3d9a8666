//! The P0 constants of the GoSIP implementation plan, in one place.
//!
//! Every rule that depends on one of these numbers uses the constant from here,
//! so a change is made once and a reader can find every user with one search.
//! Values that a household may want to tune are *defaults* for settings, and
//! are named `DEFAULT_*`.

use std::time::Duration;

// ---- Performance SLAs (targets, checked by benchmarks, not by timed tests) ----

/// A REGISTER must be answered within this (plan: < 500 ms).
pub const SIP_REGISTRATION_SLA: Duration = Duration::from_millis(500);
/// From INVITE to ringing the phones (plan: < 2 s).
pub const CALL_SETUP_SLA: Duration = Duration::from_secs(2);
/// 95th percentile of API GET responses (plan: < 200 ms).
pub const API_GET_SLA: Duration = Duration::from_millis(200);
/// 95th percentile of API POST responses (plan: < 500 ms).
pub const API_POST_SLA: Duration = Duration::from_millis(500);
/// Concurrent calls the appliance must carry at least.
pub const MIN_CONCURRENT_CALLS: usize = 5;
/// From process start to READY=1 (plan: < 30 s).
pub const SYSTEM_STARTUP_SLA: Duration = Duration::from_secs(30);

// ---- Security ----

/// Failed logins (per client IP and per account) before a lockout.
pub const MAX_FAILED_LOGIN_ATTEMPTS: u32 = 5;
/// How long a lockout lasts (really 15 minutes, unlike GoSIP's one).
pub const LOGIN_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Web session lifetime, extended on activity.
pub const SESSION_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Sessions slide forward on activity.
pub const SESSION_REFRESH_ON_ACTIVITY: bool = true;
/// Calls with a spam score above this are blocked.
pub const SPAM_SCORE_THRESHOLD: f64 = 0.7;
/// Shortest acceptable web-login password.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest accepted password (bounds argon2 input and request size).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Failed logins count towards a lockout only within this window from the
/// first failure (the same length as the lockout, so "5 failures in 15
/// minutes" is the rule, and slow typos spread over a day never lock anyone).
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A session's expiry slides forward at most once per this interval: an
/// active browser costs one small write every 5 minutes, not one per request
/// (SD-card wear). The session therefore lives between 24 h and 24 h 5 min
/// after the last request.
pub const SESSION_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How often expired sessions and stale login-failure counters are deleted.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Argon2 hashes computed at once (each takes 19 MiB and one core for about
/// 50 ms on an x86 server core, an estimated 0.15–0.25 s on a Pi 4 core): a
/// login flood queues instead of exhausting RAM, and the other cores stay free
/// for calls.
pub const MAX_CONCURRENT_PASSWORD_HASHES: usize = 2;
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "homeline_session";
/// Twilio REST: time to establish a connection.
pub const TWILIO_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Twilio REST: time for a whole request, connection included.
pub const TWILIO_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// ---- Voicemail ----

/// Ring the phones this long before voicemail answers.
pub const VOICEMAIL_RING_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest voicemail recording.
pub const VOICEMAIL_MAX_LENGTH: Duration = Duration::from_secs(180);
/// Recordings shorter than this are discarded.
pub const VOICEMAIL_MIN_LENGTH: Duration = Duration::from_secs(3);
/// Silence that ends a recording.
pub const VOICEMAIL_SILENCE_TIMEOUT: Duration = Duration::from_secs(10);

// ---- API ----

/// Items per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Largest request body the API reads (uploads get their own limit).
pub const MAX_JSON_BODY_BYTES: usize = 1024 * 1024;

// ---- Retry / recovery ----

/// Consecutive Twilio failures before an admin alert.
pub const TWILIO_ALERT_AFTER_FAILURES: u32 = 3;
/// First retry delay of the outbox; doubles per attempt.
pub const RETRY_BASE_DELAY: Duration = Duration::from_secs(1);
/// Cap of the doubling retry delay.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(30);
/// Outbox: attempts on the doubling schedule before the slow one.
pub const RETRY_FAST_ATTEMPTS: u32 = 10;
/// Outbox: delay between attempts once the doubling schedule is used up
/// (about 3.5 minutes of fast retries; then every 5 minutes, forever: a
/// queued message is never dropped, an admin alert says it is stuck).
pub const RETRY_SLOW_DELAY: Duration = Duration::from_secs(5 * 60);
/// Outbox: each delay is scaled by a random factor within ±this percent.
pub const RETRY_JITTER_PERCENT: u32 = 20;
/// Outbox: the longest `Retry-After` honoured as given.
pub const RETRY_MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// Outbox: a job whose previous attempt's outcome is unknown (crash or
/// timeout after the request left) is reconciled no sooner than this after
/// that attempt started, so the lost request can no longer be in flight
/// (longer than [`TWILIO_REQUEST_TIMEOUT`]).
pub const OUTBOX_RECONCILE_AFTER: Duration = Duration::from_secs(15);
/// Finished outbox rows are kept this long (for the API), then pruned.
pub const OUTBOX_KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Twilio downloads (recordings, MMS media): time for the whole transfer.
pub const TWILIO_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest recording downloaded (180 s of MP3 is well under 1 MiB).
pub const MAX_RECORDING_BYTES: u64 = 16 * 1024 * 1024;
/// Largest MMS media item downloaded (Twilio's own limit is 5 MB).
pub const MAX_MMS_MEDIA_BYTES: u64 = 5 * 1024 * 1024;
/// E-mail: attempts before giving up.
pub const EMAIL_MAX_RETRIES: u32 = 3;
/// E-mail: the retries are spread over this window.
pub const EMAIL_RETRY_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Gotify push: attempts before failing silently.
pub const GOTIFY_MAX_RETRIES: u32 = 3;

// ---- Appliance operation ----

/// After SIGTERM, in-flight HTTP requests get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A slow client gets this long to send its request headers.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Concurrent HTTP connections served; more wait in the kernel backlog.
pub const MAX_HTTP_CONNECTIONS: usize = 256;
/// How often core loops report progress to the watchdog.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// A core loop whose last beat is older than this is stalled (three missed beats).
pub const HEARTBEAT_STALE_AFTER: Duration = Duration::from_millis(1500);
/// The longest a DNS lookup may take, whatever resolv.conf's timeout and
/// attempts add up to: an outgoing call waiting on it is answered 503 then.
pub const DNS_LOOKUP_LIMIT: Duration = Duration::from_secs(10);
/// How often free space on the data disk is sampled (a statvfs, no write).
pub const STORAGE_SAMPLE_INTERVAL: Duration = Duration::from_secs(60);
/// Default low-space threshold for the data disk, in MiB.
pub const DEFAULT_STORAGE_MIN_FREE_MIB: u64 = 256;
/// SQLite waits this long for a lock before reporting busy.
pub const DB_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most read-only database connections opened beside the writer.
pub const DB_MAX_READERS: usize = 4;

// ---- Live updates (`GET /api/events`) ----

/// A comment line is sent this often on an idle event stream, so proxies
/// and browsers keep it open and a dead client is noticed; the session is
/// re-checked at the same pace (expiry, role and number changes).
pub const EVENTS_HEARTBEAT: Duration = Duration::from_secs(15);
/// Events kept for `Last-Event-ID` resumption (older ones ask for a resync).
pub const EVENTS_BACKLOG: usize = 256;
/// Frames queued for one client; a client that falls this far behind is
/// dropped (it reconnects and resumes), so it never slows the server.
pub const EVENTS_CLIENT_BUFFER: usize = 64;
/// A client whose buffer is full gets this long to catch up (a burst of
/// events) before it is dropped.
pub const EVENTS_SLOW_CLIENT_GRACE: Duration = Duration::from_secs(2);
/// Event streams open at once; further ones get 503 so that streams cannot
/// take all of [`MAX_HTTP_CONNECTIONS`].
pub const MAX_EVENT_STREAMS: usize = 64;
