//! The appliance as a user and systemd see it: the real binary on loopback.

mod common;

use std::time::Duration;

use common::{Homeline, NotifySocket, Start};

#[test]
fn health_and_readiness() {
    let h = Homeline::start();
    let r = h.get("/health");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["version"].as_str()),
        (Some("ok"), Some(env!("CARGO_PKG_VERSION")))
    );
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));

    let r = h.get("/api/health/ready");
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["ready"], true);
    assert_eq!(v["checks"]["database"]["ok"], true);
    assert_eq!(
        v["checks"]["database"]["schema_version"],
        common::migration_files().len()
    );
    assert_eq!(v["checks"]["storage"]["data_dir_writable"], true);
    assert_eq!(
        v["checks"]["listeners"]["bound"]["http"],
        h.http.to_string()
    );
    assert_eq!(v["checks"]["loops"]["ok"], true);
    assert_eq!(v["checks"]["loops"]["beats"]["http"]["ok"], true);
    assert_eq!(v["checks"]["loops"]["beats"]["db"]["ok"], true);
    for (name, check) in v["checks"].as_object().expect("checks") {
        assert!(check["ok"].is_boolean(), "every check has ok: {name}");
    }

    let head = h.request("HEAD", "/health", &[], b"");
    assert_eq!((head.status, head.body.len()), (200, 0));
}

#[test]
fn every_error_uses_the_json_format() {
    let h = Homeline::start();
    let r = h.get("/api/no/such/route");
    assert_eq!((r.status, r.error_code().as_str()), (404, "NOT_FOUND"));

    let r = h.request("DELETE", "/health", &[], b"");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (405, "VALIDATION_ERROR")
    );
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    // Oversized bodies, declared and chunked, are refused before being read whole.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = h.request(
        "GET",
        "/api/health/ready",
        &[("Content-Type", "application/json")],
        &big,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "VALIDATION_ERROR")
    );
    assert_eq!(r.json()["error"]["details"]["limit_bytes"], 1024 * 1024);
    let r = h.request(
        "GET",
        "/api/health/ready",
        &[("Transfer-Encoding", "chunked")],
        &big,
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "VALIDATION_ERROR")
    );

    // A missing file under /assets is a 404, not the SPA shell.
    let r = h.get("/assets/missing-0123abcd.js");
    assert_eq!((r.status, r.error_code().as_str()), (404, "NOT_FOUND"));

    // Garbage on the wire does not take the server down.
    let mut s = std::net::TcpStream::connect(h.http).expect("connect");
    std::io::Write::write_all(&mut s, b"\x00\x01 NOT HTTP\r\n\r\n").expect("write");
    drop(s);
    assert_eq!(h.get("/health").status, 200);
}

#[test]
fn serves_the_embedded_ui_with_spa_fallback_and_cache_headers() {
    let h = Homeline::start();
    let index = h.get("/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(index.header("content-security-policy").is_some());
    let html = String::from_utf8_lossy(&index.body).to_string();
    assert!(
        html.contains("<title>Homeline</title>") && html.contains("id=\"app\""),
        "{html}"
    );

    for client_route in ["/calls", "/settings", "/login", "/voicemail/42"] {
        let r = h.get(client_route);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, index.body.as_slice()),
            "{client_route}"
        );
    }

    let asset = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index.html references a hashed script")
        .to_string();
    let js = h.get(&asset);
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let etag = index.header("etag").expect("etag").to_string();
    let again = h.request("GET", "/", &[("If-None-Match", &etag)], b"");
    assert_eq!((again.status, again.body.len()), (304, 0));
}

#[test]
fn migrations_apply_once_and_change_nothing_the_second_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let migrate = || {
        let out = common::command()
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("run migrate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let schema = || {
        let conn = homeline::store::open_connection(&dir.path().join("homeline.db")).expect("open");
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
            .expect("prepare");
        let rows: Vec<(String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let applied: Vec<(u32, String, String)> = conn
            .prepare("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        (rows, applied)
    };
    let first = migrate();
    let files = common::migration_files();
    for name in &files {
        assert!(
            first.contains(&format!("applied {name}")),
            "{name}: {first}"
        );
    }
    let before = schema();
    let second = migrate();
    assert!(
        !second.contains("applied"),
        "nothing applied twice: {second}"
    );
    assert!(
        second.contains(&format!("at migration {:03}", files.len())),
        "{second}"
    );
    assert_eq!(schema(), before, "schema and migration records unchanged");
}

#[test]
fn sigterm_shuts_down_gracefully_and_systemd_hears_about_it() {
    let notify = NotifySocket::new();
    let mut h = Homeline::start_with(Start {
        env: vec![
            ("NOTIFY_SOCKET".into(), notify.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        ..Start::default()
    });
    let msgs = notify.collect(Duration::from_millis(2500));
    let texts: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    assert!(texts.iter().any(|m| m.contains("READY=1")), "{texts:?}");
    assert!(
        texts.iter().any(|m| m.contains("STATUS=ready")),
        "{texts:?}"
    );
    let pings = texts.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(
        pings >= 3,
        "about two pings a second with WatchdogSec=1s: {texts:?}"
    );

    assert_eq!(h.get("/health").status, 200);
    let ports = h.data().join("run/ports.json");
    assert!(ports.exists());
    let status = h.terminate(Duration::from_secs(15));
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(!ports.exists(), "ports.json removed on shutdown");
    let wal = h.data().join("homeline.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
        "WAL checkpointed on exit"
    );
}

#[test]
fn stopping_is_announced() {
    let notify = NotifySocket::new();
    let mut h = Homeline::start_with(Start {
        env: vec![("NOTIFY_SOCKET".into(), notify.path.display().to_string())],
        ..Start::default()
    });
    assert!(notify.wait_for("READY=1", Duration::from_secs(5)));
    common::signal(h.child.id(), "TERM");
    assert!(
        notify.wait_for("STOPPING=1", Duration::from_secs(10)),
        "STOPPING=1 after SIGTERM"
    );
    assert!(h.terminate(Duration::from_secs(15)).success());
}

#[test]
fn invalid_settings_fail_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::command()
        .args(["run", "--data-dir"])
        .arg(dir.path())
        .env("HOMELINE_HTTP_LISTEN", "localhost:http")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.listen")
            && err.contains("localhost:http")
            && err.contains("environment"),
        "{err}"
    );
}

#[test]
fn settings_from_the_config_table_apply_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let clock: homeline::clock::SharedClock = std::sync::Arc::new(homeline::clock::SystemClock);
        let conn = homeline::app::open_database(dir.path(), &clock).expect("open");
        // A port taken by us: the table's value must be what the server tries.
        homeline::store::config::set(&conn, "storage.min_free_mib", "999999999", clock.now())
            .expect("set");
    }
    let h = Homeline::start_with(Start {
        dir: Some(dir),
        ..Start::default()
    });
    let v = h.get("/api/health/ready").json();
    assert_eq!(
        v["checks"]["storage"]["state"], "critical",
        "the table's threshold is in force: {v}"
    );
    assert_eq!(v["ready"], false);
    assert_eq!(h.get("/api/health/ready").status, 503);
}

#[test]
fn admin_can_reset_a_password_from_the_console() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: homeline::clock::SharedClock = std::sync::Arc::new(homeline::clock::SystemClock);
    {
        let conn = homeline::app::open_database(dir.path(), &clock).expect("open");
        let hash = homeline::accounts::password::hash("old password here").expect("hash");
        let u = homeline::store::users::NewUser {
            email: "mum@example.org",
            display_name: "Mum",
            password_hash: &hash,
            role: homeline::store::users::Role::Admin,
        };
        homeline::store::users::insert(&conn, &u, clock.now()).expect("insert");
    }
    let out = common::command()
        .args([
            "admin",
            "reset-password",
            "--email",
            "MUM@example.org",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let new_password = stdout
        .trim()
        .rsplit(' ')
        .next()
        .expect("password printed")
        .to_string();
    assert_eq!(new_password.len(), 20, "{stdout}");
    let conn = homeline::store::open_connection(&dir.path().join("homeline.db")).expect("open");
    let (_, hash) = homeline::store::users::password_hash_by_email(&conn, "mum@example.org")
        .expect("query")
        .expect("user");
    assert!(homeline::accounts::password::verify(&new_password, &hash));
    assert!(!homeline::accounts::password::verify(
        "old password here",
        &hash
    ));

    let out = common::command()
        .args([
            "admin",
            "reset-password",
            "--email",
            "nobody@example.org",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));

    let mut child = common::command()
        .args([
            "admin",
            "reset-password",
            "--password-stdin",
            "--email",
            "mum@example.org",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"short\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(1),
        "policy applies to console resets too"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least"));
}

#[test]
fn version_names_the_build() {
    let out = common::command().arg("version").output().expect("run");
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.starts_with(&format!("homeline {} (git ", env!("CARGO_PKG_VERSION")))
            && s.contains("sqlite 3."),
        "{s}"
    );
}
