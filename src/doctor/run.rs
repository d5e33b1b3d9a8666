//! The runner: gathers the facts each check needs (database, settings,
//! registrar, Twilio's REST and Monitor APIs, the listeners) and runs every
//! check, for `GET /api/diagnostics` and `homeline doctor` alike.
//!
//! Everything here blocks: the HTTP handler calls [`run`] on a blocking
//! thread, never on the reactor and never on the SIP loop. Network facts are
//! gathered in parallel, each request bounded by [`NETWORK_TIMEOUT`] and the
//! whole by [`DEADLINE`]; what has not answered by then is reported as such.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::numbers::OurNumber;
use super::phones::PhoneState;
use super::sip_domain::{DomainFacts, Wanted};
use super::{alerts, clock, numbers, phones, ports, sip_domain, storage, twilio_account};
use super::{Check, Report};
use crate::clock::Timestamp;
use crate::secrets::SecretBox;
use crate::store::{config, devices, dids, registrations, Page};
use crate::sysconfig::{self, TwilioCredentials};
use crate::twilio::client::IncomingNumber;
use crate::twilio::monitor::Alert;
use crate::twilio::{AccountInfo, Client, TwilioError};

/// Longest wait for one network request (a Twilio call, a port probe).
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a whole run waits for its network facts.
pub const DEADLINE: Duration = Duration::from_secs(12);

/// What the database says (read only; nothing is written).
#[derive(Clone, Default)]
pub struct DbFacts {
    /// REST credentials, if set up and openable.
    pub credentials: Option<TwilioCredentials>,
    /// `system.public_url`.
    pub public_url: Option<String>,
    /// `twilio.sip_domain`.
    pub sip_domain: Option<String>,
    /// `twilio.sip_username`.
    pub sip_username: Option<String>,
    /// The household's numbers.
    pub numbers: Vec<OurNumber>,
    /// Phones: id, name, SIP user name.
    pub phones: Vec<(i64, String, String)>,
    /// Stored bindings per phone still valid at `now` (the durable copy).
    pub recorded_registrations: HashMap<i64, usize>,
}

/// Reads the facts the checks need. `secrets` is `None` when the secret
/// key is absent (then no credentials can be opened).
pub fn gather_db(
    conn: &Connection,
    secrets: Option<&SecretBox>,
    now: Timestamp,
) -> Result<DbFacts, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let credentials = match secrets {
        Some(s) => sysconfig::twilio_credentials(conn, s).map_err(|e| e.to_string())?,
        None => None,
    };
    let numbers = dids::list(conn, None, Page::ALL)
        .map_err(e)?
        .items
        .into_iter()
        .map(|d| OurNumber {
            number: d.number,
            twilio_sid: d.twilio_sid,
        })
        .collect();
    let phones = devices::list(conn, None, Page::ALL)
        .map_err(e)?
        .items
        .into_iter()
        .map(|d| (d.id.0, d.name, d.username))
        .collect();
    let mut recorded_registrations = HashMap::new();
    for b in registrations::all(conn).map_err(e)? {
        if Timestamp::parse_rfc3339(&b.expires_at).is_some_and(|t| t > now) {
            *recorded_registrations.entry(b.device_id).or_insert(0) += 1;
        }
    }
    Ok(DbFacts {
        credentials,
        public_url: sysconfig::public_url(conn).map_err(e)?,
        sip_domain: config::get(conn, sysconfig::TWILIO_SIP_DOMAIN).map_err(e)?,
        sip_username: config::get(conn, sysconfig::TWILIO_SIP_USERNAME).map_err(e)?,
        numbers,
        phones,
        recorded_registrations,
    })
}

/// Where phone registrations come from.
#[derive(Debug, Clone)]
pub enum Registrations {
    /// The running registrar's live contacts per phone.
    Live(HashMap<i64, usize>),
    /// The database's copy (the command line: refreshes are not written,
    /// so a phone that stopped refreshing shows until its expiry).
    Recorded,
}

/// Everything a run needs besides the database facts.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The data directory (its free space is checked).
    pub data_dir: PathBuf,
    /// `storage.min_free_mib`.
    pub storage_min_free_mib: u64,
    /// `twilio.api_base`.
    pub twilio_api_base: String,
    /// `twilio.sip_mode = trunk`.
    pub trunking: bool,
    /// The bound listeners (name, address); `None` when the running
    /// appliance could not be found.
    pub listeners: Option<Vec<(String, SocketAddr)>>,
    /// Where registrations are read.
    pub registrations: Registrations,
    /// Root of the file system holding systemd's time-sync marker (`/`).
    pub root: PathBuf,
    /// The certificate, public address and forwards facts (`None` when
    /// the database could not be read).
    pub reaching: Option<super::reaching::Facts>,
}

/// A network fact as it arrives.
enum Answer {
    Ports(Vec<ports::Probe>),
    Account(Result<AccountInfo, TwilioError>),
    Numbers(Result<Vec<IncomingNumber>, TwilioError>),
    Domain(Result<Option<DomainFacts>, TwilioError>),
    Alerts(Result<Vec<Alert>, TwilioError>),
}

/// Runs every check; `db` is the database facts or why they could not be read.
pub fn run(inputs: &Inputs, db: Result<DbFacts, String>, now: Timestamp) -> Report {
    let (tx, rx) = mpsc::channel::<Answer>();
    let mut expected = 0;
    if let Some(listeners) = inputs.listeners.clone() {
        let tx = tx.clone();
        expected += 1;
        std::thread::spawn(move || {
            let _ = tx.send(Answer::Ports(ports::probe_all(&listeners, NETWORK_TIMEOUT)));
        });
    }
    let facts = db.as_ref().ok();
    let client = facts.and_then(|f| f.credentials.as_ref()).map(|c| {
        Client::from_credentials(&inputs.twilio_api_base, c).with_timeout(NETWORK_TIMEOUT)
    });
    if let (Some(client), Some(f)) = (&client, facts) {
        expected += spawn_twilio(client, f, inputs.trunking, now, &tx);
    }
    drop(tx);

    let started = Instant::now();
    let (mut probes, mut account, mut listed, mut domain, mut alert_list) =
        (None, None, None, None, None);
    for _ in 0..expected {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(Answer::Ports(p)) => probes = Some(p),
            Ok(Answer::Account(a)) => account = Some(a),
            Ok(Answer::Numbers(n)) => listed = Some(n),
            Ok(Answer::Domain(d)) => domain = Some(d),
            Ok(Answer::Alerts(a)) => alert_list = Some(a),
            Err(_) => break,
        }
    }

    let mut checks = Vec::new();
    checks.push(clock::check(
        clock::sync_state(&inputs.root),
        now,
        clock::built_at(),
    ));
    let data_dir = inputs.data_dir.clone();
    let writable = nix::unistd::access(&data_dir, nix::unistd::AccessFlags::W_OK).is_ok();
    let sample =
        crate::storage::sample(&data_dir, inputs.storage_min_free_mib).map_err(|e| e.to_string());
    checks.push(storage::check(
        sample,
        writable,
        inputs.storage_min_free_mib,
    ));
    checks.push(match (&inputs.listeners, probes) {
        (None, _) => ports::check(&[], false),
        (Some(_), Some(p)) => ports::check(&p, true),
        (Some(_), None) => late("ports", "Ports listening"),
    });

    // How the internet reaches this home: certificate, public name and
    // address, the router's forwards (nothing when the database is unread:
    // the database check below says why).
    if let Some(facts) = &inputs.reaching {
        checks.extend(super::reaching::checks(facts, now));
    }

    let f = match db {
        Ok(f) => f,
        Err(e) => {
            checks.push(Check::error(
                "database",
                "Database",
                format!("the database could not be read: {e}"),
                "Check that the data directory is the appliance's (`--data-dir`) and readable; \
                 `journalctl -u homeline` shows the appliance's own errors.",
            ));
            return Report::new(checks, now);
        }
    };
    let (twilio, twilio_view) = twilio_checks(inputs, &f, account, listed, domain, alert_list);
    checks.extend(twilio);
    let (counts, source) = match &inputs.registrations {
        Registrations::Live(m) => (m, "live"),
        Registrations::Recorded => (&f.recorded_registrations, "as last recorded"),
    };
    let states: Vec<PhoneState> = f
        .phones
        .iter()
        .map(|(id, name, username)| PhoneState {
            name: name.clone(),
            username: username.clone(),
            contacts: counts.get(id).copied().unwrap_or(0),
        })
        .collect();
    checks.push(phones::check(&states, source));
    // Twilio's own view comes last: it explains what the checks above found.
    checks.extend(twilio_view);
    Report::new(checks, now)
}

/// Starts the Twilio requests; returns how many answers to expect.
fn spawn_twilio(
    client: &Client,
    f: &DbFacts,
    trunking: bool,
    now: Timestamp,
    tx: &mpsc::Sender<Answer>,
) -> usize {
    let spawn = |job: Box<dyn FnOnce() -> Answer + Send>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(job());
        });
    };
    let c = client.clone();
    spawn(Box::new(move || Answer::Account(c.check_credentials())));
    let c = client.clone();
    spawn(Box::new(move || Answer::Numbers(c.list_numbers())));
    let c = client.clone();
    let since =
        Timestamp::from_unix_millis(now.unix_millis() - (alerts::WINDOW_HOURS as i64) * 3_600_000);
    spawn(Box::new(move || Answer::Alerts(c.list_alerts(since))));
    let mut n = 3;
    if let (false, Some(name)) = (trunking, f.sip_domain.clone()) {
        let c = client.clone();
        spawn(Box::new(move || Answer::Domain(domain_facts(&c, &name))));
        n += 1;
    }
    n
}

/// The configured domain as Twilio has it, with its call credential lists.
fn domain_facts(c: &Client, name: &str) -> Result<Option<DomainFacts>, TwilioError> {
    let Some(domain) = c
        .list_sip_domains()?
        .into_iter()
        .find(|d| d.domain_name.eq_ignore_ascii_case(name))
    else {
        return Ok(None);
    };
    let mut credential_lists = Vec::new();
    for list in c.call_credential_lists(&domain.sid)? {
        let users = c.credential_usernames(&list.sid)?;
        credential_lists.push((list, users));
    }
    Ok(Some(DomainFacts {
        domain,
        credential_lists,
    }))
}

/// A network check that did not answer before the deadline.
fn late(id: &'static str, title: &str) -> Check {
    Check::error(
        id,
        title,
        format!("no answer within {} s", DEADLINE.as_secs()),
        "Check the Pi's internet connection, then run the diagnostics again.",
    )
}

/// A check that could not run because Twilio could not be used.
fn skipped(id: &'static str, title: &str, why: &str) -> Check {
    Check::warning(
        id,
        title,
        format!("not checked: {why}"),
        "Fix the Twilio credentials first (see that check).",
    )
}

fn twilio_checks(
    inputs: &Inputs,
    f: &DbFacts,
    account: Option<Result<AccountInfo, TwilioError>>,
    listed: Option<Result<Vec<IncomingNumber>, TwilioError>>,
    domain: Option<Result<Option<DomainFacts>, TwilioError>>,
    alert_list: Option<Result<Vec<Alert>, TwilioError>>,
) -> (Vec<Check>, Vec<Check>) {
    const NUMBERS: &str = "Numbers point at this appliance";
    const DOMAIN: &str = "SIP Domain settings";
    const ALERTS: &str = "Twilio's error log";
    let wanted = Wanted {
        trunking: inputs.trunking,
        domain: f.sip_domain.as_deref(),
        username: f.sip_username.as_deref(),
        public_url: f.public_url.as_deref(),
    };
    if f.credentials.is_none() {
        let why = "Twilio is not set up";
        return (
            vec![
                twilio_account::check(None),
                skipped("numbers", NUMBERS, why),
                skipped("sip_domain", DOMAIN, why),
            ],
            vec![skipped("twilio_alerts", ALERTS, why)],
        );
    }
    let mut out = Vec::new();
    let account_ok = matches!(account, Some(Ok(_)));
    out.push(match &account {
        Some(a) => twilio_account::check(Some(a)),
        None => late("twilio_credentials", "Twilio credentials"),
    });
    let why = "the Twilio credentials do not work";
    out.push(match listed {
        _ if !account_ok => skipped("numbers", NUMBERS, why),
        Some(Ok(l)) => numbers::check(&f.numbers, &l, f.public_url.as_deref()),
        Some(Err(e)) => failed("numbers", NUMBERS, &e),
        None => late("numbers", NUMBERS),
    });
    out.push(match domain {
        _ if inputs.trunking || f.sip_domain.is_none() => sip_domain::check(wanted, None),
        _ if !account_ok => skipped("sip_domain", DOMAIN, why),
        Some(Ok(d)) => sip_domain::check(wanted, d.as_ref()),
        Some(Err(e)) => failed("sip_domain", DOMAIN, &e),
        None => late("sip_domain", DOMAIN),
    });
    let view = match alert_list {
        _ if !account_ok => vec![skipped("twilio_alerts", ALERTS, why)],
        Some(Ok(a)) => alerts::checks(&a),
        Some(Err(e)) => vec![failed("twilio_alerts", ALERTS, &e)],
        None => vec![late("twilio_alerts", ALERTS)],
    };
    (out, view)
}

/// A Twilio request that failed although the credentials work.
fn failed(id: &'static str, title: &str, e: &TwilioError) -> Check {
    let fix = if matches!(e, TwilioError::Unauthorized { .. }) {
        "An API key needs access to this resource: use the Auth Token, or a Main API key, in Settings → Twilio."
    } else {
        "Run the diagnostics again in a minute; status.twilio.com says whether Twilio has an outage."
    };
    Check::error(id, title, format!("Twilio could not be asked: {e}"), fix)
}
