//! Wires the services together and runs them until shutdown.
//!
//! Startup order: data dir → database (migrated) → secret key → settings from
//! the `config` table → listeners → `run/ports.json` → `READY=1`. Besides the
//! HTTP server, the background tasks are the database probe, the storage
//! watch and the sweep of expired sessions. Shutdown
//! (SIGTERM): `STOPPING=1` → stop accepting → drain in-flight requests within
//! the grace period → checkpoint and close the database → remove ports.json.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::accounts::{self, password::HashPool};
use crate::clock::SharedClock;
use crate::constants::{
    HEARTBEAT_INTERVAL, HEARTBEAT_STALE_AFTER, MAX_CONCURRENT_PASSWORD_HASHES,
    STORAGE_SAMPLE_INTERVAL,
};
use crate::http::{self, router::Router, ServerState};
use crate::logging::LogHandle;
use crate::secrets::SecretBox;
use crate::settings::RawInputs;
use crate::storage::{self, StorageState};
use crate::store::{self, migrate, Db};
use crate::watchdog::{self, Heartbeats, Notice, Notifier};

/// Creates the data directory and its `run/` subdirectory (mode 0750).
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir.join("run"))
        .with_context(|| format!("creating data directory {}", dir.display()))
}

/// Opens and migrates the database of `data_dir`.
pub fn open_database(data_dir: &Path, clock: &SharedClock) -> anyhow::Result<rusqlite::Connection> {
    prepare_data_dir(data_dir)?;
    let path = data_dir.join("homeline.db");
    let mut conn = store::open_connection(&path)?;
    migrate::apply(&mut conn, clock.as_ref())
        .with_context(|| format!("migrating {}", path.display()))?;
    Ok(conn)
}

/// Runs the appliance until `shutdown` resolves.
pub async fn run(
    inputs: RawInputs,
    clock: SharedClock,
    log: LogHandle,
    notifier: Arc<dyn Notifier>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let data_dir = inputs.data_dir();
    notifier.notify(Notice::Status("opening the database".into()));
    let conn = {
        let (dir, clock) = (data_dir.clone(), clock.clone());
        tokio::task::spawn_blocking(move || open_database(&dir, &clock)).await??
    };
    let (db, db_thread) = Db::start(conn);
    let result = run_with_db(inputs, clock, log, notifier.clone(), shutdown, db.clone()).await;
    notifier.notify(Notice::Status("closing the database".into()));
    tokio::task::spawn_blocking(move || db_thread.close(&db)).await?;
    tracing::info!("stopped");
    result
}

async fn run_with_db(
    inputs: RawInputs,
    clock: SharedClock,
    log: LogHandle,
    notifier: Arc<dyn Notifier>,
    shutdown: impl Future<Output = ()>,
    db: Db,
) -> anyhow::Result<()> {
    let data_dir = inputs.data_dir();
    let secret_dir = data_dir.clone();
    let secrets =
        tokio::task::spawn_blocking(move || SecretBox::load_or_create(&secret_dir)).await??;
    let table = db.call(|c| store::config::all(c)).await?;
    let settings = inputs.resolve(&table)?;
    log.set_level(&settings.log_level);
    for (key, source) in &settings.sources {
        tracing::debug!(key, %source, "setting resolved");
    }

    let http_listener = TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", settings.http_listen))?;
    let http_addr = http_listener.local_addr()?;
    tracing::info!(addr = %http_addr, "HTTP listening");
    tracing::info!(
        addr = %settings.sip_listen,
        "SIP listener not started: the SIP core is not part of this build yet"
    );

    let heartbeats = Heartbeats::new();
    let listeners = vec![("http", http_addr)];
    let state = Arc::new(ServerState {
        settings: settings.clone(),
        db: db.clone(),
        clock: clock.clone(),
        heartbeats: heartbeats.clone(),
        listeners: listeners.clone(),
        started_at: clock.now(),
        router: Router::new(http::routes())?,
        secrets,
        hashes: HashPool::new(MAX_CONCURRENT_PASSWORD_HASHES),
        setup_lock: tokio::sync::Mutex::new(()),
        #[cfg(feature = "test-hooks")]
        stall_http_ms: Default::default(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let http_task = tokio::spawn(http::serve(
        http_listener,
        state.clone(),
        heartbeats.register("http"),
        stopped(),
    ));
    let db_probe = tokio::spawn(probe_database(
        db.clone(),
        heartbeats.register("db"),
        stopped(),
    ));
    let sweep_task = tokio::spawn(accounts::sweep_loop(db.clone(), clock.clone(), stopped()));
    let storage_task = tokio::spawn(watch_storage(
        settings.data_dir.clone(),
        settings.storage_min_free_mib,
        stopped(),
    ));
    let watchdog_task = watchdog::interval_from_env().map(|interval| {
        tracing::info!(
            interval_ms = interval.as_millis() as u64,
            "systemd watchdog enabled"
        );
        if interval <= HEARTBEAT_STALE_AFTER {
            tracing::warn!(
                "WatchdogSec is shorter than the stall threshold; a stall may be caught late"
            );
        }
        tokio::spawn(watchdog::supervise(
            heartbeats.clone(),
            interval,
            HEARTBEAT_STALE_AFTER,
            notifier.clone(),
            stopped(),
        ))
    });

    let ports_file = settings.run_dir().join("ports.json");
    write_ports_file(&ports_file, &listeners).await?;
    notifier.notify(Notice::Ready);
    notifier.notify(Notice::Status(format!("ready: web UI on {http_addr}")));
    tracing::info!(version = crate::VERSION, "ready");

    shutdown.await;
    tracing::info!("shutting down");
    notifier.notify(Notice::Stopping);
    notifier.notify(Notice::Status("stopping".into()));
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    let _ = db_probe.await;
    let _ = storage_task.await;
    let _ = sweep_task.await;
    if let Some(t) = watchdog_task {
        let _ = t.await;
    }
    if let Err(e) = tokio::fs::remove_file(&ports_file).await {
        tracing::warn!(error = %e, "could not remove {}", ports_file.display());
    }
    Ok(())
}

/// Proves the database thread is responsive, for the watchdog.
async fn probe_database(db: Db, heartbeat: watchdog::Heartbeat, stopped: impl Future<Output = ()>) {
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut stopped => return,
            r = db.call(|_| Ok(())) => match r {
                Ok(()) => heartbeat.beat(),
                Err(e) => tracing::error!(error = %e, "database probe failed"),
            },
        }
    }
}

/// Samples free space and logs when the state changes (no writes).
async fn watch_storage(
    dir: std::path::PathBuf,
    min_free_mib: u64,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(STORAGE_SAMPLE_INTERVAL);
    let mut last = StorageState::Ok;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || storage::sample(&d, min_free_mib)).await {
            Ok(Ok(r)) if r.state != last => {
                match r.state {
                    StorageState::Ok => {
                        tracing::info!(free_bytes = r.free_bytes, "storage back to normal")
                    }
                    StorageState::Low => {
                        tracing::warn!(free_bytes = r.free_bytes, min_free_mib, "storage low")
                    }
                    StorageState::Critical => {
                        tracing::error!(free_bytes = r.free_bytes, min_free_mib, "storage critical")
                    }
                }
                last = r.state;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "storage sample failed"),
            Err(e) => tracing::warn!(error = %e, "storage sample task failed"),
        }
    }
}

/// Writes `{"http":"127.0.0.1:8080",…}` atomically (temp file + rename), so a
/// reader never sees half a file.
async fn write_ports_file(
    path: &Path,
    listeners: &[(&'static str, SocketAddr)],
) -> anyhow::Result<()> {
    let map: serde_json::Map<String, serde_json::Value> = listeners
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, serde_json::Value::Object(map).to_string()).await?;
    tokio::fs::rename(&tmp, path)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
