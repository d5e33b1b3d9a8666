//! `homeline doctor`: the same checks as the Diagnostics page, run from the
//! data directory beside a running appliance without disturbing it. The
//! database is opened read-only, the secret key is read but never created,
//! the listeners are the ones the appliance wrote to `run/ports.json`, and
//! registrations are the database's copy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::run::{self, DbFacts, Inputs, Registrations};
use super::{Check, Report, Status};
use crate::clock::Timestamp;
use crate::secrets::SecretBox;
use crate::settings::RawInputs;

/// Runs every check for the appliance whose data directory `raw` names.
pub fn run_from_data_dir(raw: &RawInputs, now: Timestamp) -> Report {
    let dir = raw.data_dir();
    let db = open_read_only(&dir.join("homeline.db"));
    let table = db
        .as_ref()
        .ok()
        .and_then(|c| crate::store::config::all(c).ok())
        .unwrap_or_default();
    let settings = match raw
        .resolve(&table)
        .or_else(|_| raw.resolve(&BTreeMap::new()))
    {
        Ok(s) => s,
        Err(e) => {
            let checks = vec![Check::error(
                "settings",
                "Settings",
                e.to_string(),
                "Correct the setting named (flag, environment or /etc/homeline/homeline.conf).",
            )];
            return Report::new(checks, now);
        }
    };
    let secrets = std::fs::read(dir.join("secret.key"))
        .ok()
        .and_then(|k| SecretBox::from_key(&k));
    let facts: Result<DbFacts, String> = match &db {
        Ok(c) => run::gather_db(c, secrets.as_ref(), now),
        Err(e) => Err(e.clone()),
    };
    let inputs = Inputs {
        data_dir: settings.data_dir.clone(),
        storage_min_free_mib: settings.storage_min_free_mib,
        twilio_api_base: settings.twilio_api_base.clone(),
        trunking: settings.twilio_sip.trunking,
        listeners: read_ports(&settings.run_dir().join("ports.json")),
        registrations: Registrations::Recorded,
        root: PathBuf::from("/"),
        reaching: db.as_ref().ok().and_then(|c| {
            super::reaching::gather(
                c,
                &settings.data_dir,
                settings.http_tls_listen.is_some(),
                settings.media.public_ip,
                None,
            )
            .ok()
        }),
    };
    run::run(&inputs, facts, now)
}

fn open_read_only(path: &Path) -> Result<Connection, String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    // The appliance may be writing: wait for its lock rather than fail.
    c.busy_timeout(std::time::Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    Ok(c)
}

/// The listeners the running appliance wrote, `None` without the file.
fn read_ports(path: &Path) -> Option<Vec<(String, SocketAddr)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text).ok()?;
    Some(
        map.into_iter()
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect(),
    )
}

/// The report as the command prints it: one line per check with ✓, ! or
/// ✗, the detail, and the fix under each that is not ok.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warning => "!",
            Status::Error => "✗",
        };
        let _ = writeln!(out, "{mark} {}: {}", c.title, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let verdict = match report.status {
        Status::Ok => "everything works",
        Status::Warning => "works, with warnings",
        Status::Error => "something is broken",
    };
    let errors = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .count();
    let warnings = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    let _ = writeln!(
        out,
        "\n{verdict}: {} checks, {errors} error(s), {warnings} warning(s) ({})",
        report.checks.len(),
        report.ran_at
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_marks_each_check_and_gives_the_fix() {
        let r = Report::new(
            vec![
                Check::ok("clock", "Clock synchronised", "synchronised"),
                Check::error(
                    "ports",
                    "Ports listening",
                    "SIP over TLS is not listening",
                    "Restart it.",
                ),
            ],
            Timestamp::from_unix_millis(0),
        );
        let text = render(&r);
        assert!(
            text.contains("✓ Clock synchronised: synchronised\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "✗ Ports listening: SIP over TLS is not listening\n    fix: Restart it.\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("something is broken: 2 checks, 1 error(s), 0 warning(s)"),
            "{text}"
        );
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn a_missing_database_is_reported_not_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut flags = BTreeMap::new();
        flags.insert("data_dir", dir.path().display().to_string());
        // No config file: a developer machine's /etc/homeline must not leak in.
        let raw = RawInputs {
            flags,
            ..RawInputs::default()
        };
        let r = run_from_data_dir(&raw, Timestamp::from_unix_millis(1_800_000_000_000));
        assert!(
            r.checks
                .iter()
                .any(|c| c.id == "database" && c.status == Status::Error),
            "{r:?}"
        );
        assert!(r
            .checks
            .iter()
            .any(|c| c.id == "ports" && c.detail.contains("not seem to be running")));
        assert!(!dir.path().join("homeline.db").exists());
        assert!(!dir.path().join("secret.key").exists());
        assert_eq!(r.exit_code(), 2);
    }
}
