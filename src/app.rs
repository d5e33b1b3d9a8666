//! Wires the services together and runs them until shutdown.
//!
//! Startup order: data dir → database (migrated) → secret key → settings from
//! the `config` table → listeners → `run/ports.json` → `READY=1`. Besides the
//! HTTP server, the background tasks are the database probe, the storage
//! watch, the sweep of expired sessions and the outbox worker. Shutdown
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
use crate::endpoint::{self, DeviceCredential, EndpointSetup};
use crate::http::{self, router::Router, ServerState};
use crate::logging::LogHandle;
use crate::registrar::Persist;
use crate::secrets::SecretBox;
use crate::settings::RawInputs;
use crate::sip::guard::GuardConfig;
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
    let path = data_dir.join("homeline.db");
    let (db, db_thread) = Db::start_with_readers(conn, &path, store::reader_count())
        .with_context(|| format!("opening read connections to {}", path.display()))?;
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
    let secrets = Arc::new(
        tokio::task::spawn_blocking(move || SecretBox::load_or_create(&secret_dir)).await??,
    );
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
    let heartbeats = Heartbeats::new();
    let (stop_tx, stop_rx) = watch::channel(false);

    let devices = load_device_credentials(&db, &secrets).await?;
    let stored_bindings = db.call(|c| store::registrations::all(c)).await?;
    let (persist_tx, persist_rx) = tokio::sync::mpsc::unbounded_channel();
    let persist_task = tokio::spawn(persist_bindings(db.clone(), clock.clone(), persist_rx));
    let (cdr_tx, cdr_rx) = tokio::sync::mpsc::unbounded_channel();
    let cdr_task = tokio::spawn(write_cdrs(db.clone(), cdr_rx));
    let (dnd_tx, dnd_rx) = tokio::sync::mpsc::unbounded_channel();
    // The certificate served by HTTPS and SIP over TLS: the self-signed one
    // until the ACME service installs one from the CA (stored ones are
    // loaded before the listeners start).
    let certs = {
        let dir = settings.data_dir.clone();
        let initial = tokio::task::spawn_blocking(move || {
            crate::sip::tls::initial_certificate(&dir, None, None)
        })
        .await??;
        crate::certs::CertStore::new(initial)
    };
    let events = crate::events::Events::new();
    let acme = crate::acme::Acme::new(crate::acme::service::AcmeSetup {
        certs: certs.clone(),
        db: db.clone(),
        secrets: secrets.clone(),
        clock: clock.clone(),
        events: events.clone(),
        directory_url: settings.acme_directory_url.clone(),
        ca_bundle: settings.acme_ca_bundle.clone(),
    });
    acme.load_stored().await?;
    let tls = match settings.sip_tls_listen {
        Some(addr) => {
            // Explicit sip.tls_cert/sip.tls_key pin SIP to those files.
            let store = match settings.sip_tls_files.clone() {
                Some((cert, key)) => {
                    let dir = settings.data_dir.clone();
                    let pinned = tokio::task::spawn_blocking(move || {
                        crate::sip::tls::initial_certificate(&dir, Some(&cert), Some(&key))
                    })
                    .await??;
                    crate::certs::CertStore::new(pinned)
                }
                None => certs.clone(),
            };
            Some((addr, crate::sip::tls::server_config(&store)?))
        }
        None => None,
    };
    let https_listener = match settings.http_tls_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HTTPS on {addr}"))?,
        ),
        None => None,
    };
    let listen = crate::sip::transport::Listen {
        plain: (!settings.sip_tls_only).then_some(settings.sip_listen),
        tls,
    };
    let setup = EndpointSetup {
        listen,
        clock: clock.clone(),
        devices,
        stored_bindings,
        persist: persist_tx,
        guard: GuardConfig {
            max_auth_failures: settings.sip_guard.max_auth_failures,
            max_garbage: settings.sip_guard.max_garbage,
            max_requests: settings.sip_guard.max_requests,
            ban: std::time::Duration::from_secs(settings.sip_guard.ban_secs),
        },
        heartbeat: heartbeats.register("sip"),
        offer_sha256: settings.sip_digest_sha256,
        directory: load_directory(&db, &secrets).await?,
        media: endpoint::MediaSetup {
            pool: crate::media::ports::PortPool::new(
                settings.sip_listen.ip(),
                settings.media.rtp_first,
                settings.media.rtp_last,
            ),
            music: crate::media::music::HoldMusic::load(&settings.data_dir),
            timeout: settings.media.timeout,
            public_ip: settings.media.public_ip,
        },
        calls: settings.calls.clone(),
        cdrs: Some(cdr_tx),
        dnd: Some(dnd_tx),
        trunk_edge: settings.twilio_sip_edge,
        dns: crate::dns::ResolverFiles::system(settings.dns_resolv_conf.clone()),
        twilio_sip: settings.twilio_sip.clone(),
        events: events.clone(),
    };
    let (sip, sip_task) = endpoint::start(setup, stop_rx.clone())
        .await
        .with_context(|| {
            format!(
                "binding SIP on {} (TLS {:?})",
                settings.sip_listen, settings.sip_tls_listen
            )
        })?;
    tracing::info!(udp = ?sip.udp_addr, tcp = ?sip.tcp_addr, tls = ?sip.tls_addr, "SIP listening");
    let mut listeners = vec![("http", http_addr)];
    if let Some(l) = &https_listener {
        let addr = l.local_addr()?;
        tracing::info!(%addr, "HTTPS listening");
        listeners.push(("https", addr));
    }
    for (name, addr) in [
        ("sip_udp", sip.udp_addr),
        ("sip_tcp", sip.tcp_addr),
        ("sip_tls", sip.tls_addr),
    ] {
        if let Some(addr) = addr {
            listeners.push((name, addr));
        }
    }
    let outbox = crate::outbox::Outbox::new(db.clone(), clock.clone()).with_events(events.clone());
    let (network, network_task) = {
        let mut rx = stop_rx.clone();
        crate::netaddr::service::start(
            crate::netaddr::service::NetSetup {
                db: db.clone(),
                clock: clock.clone(),
                secrets: secrets.clone(),
                sip: sip.clone(),
                events: events.clone(),
                settings: settings.net.clone(),
                manual_ip: settings.media.public_ip,
                listeners: listeners.clone(),
                rtp: (settings.media.rtp_first, settings.media.rtp_last),
            },
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        )
    };
    let state = Arc::new(ServerState {
        settings: settings.clone(),
        db: db.clone(),
        clock: clock.clone(),
        heartbeats: heartbeats.clone(),
        listeners: listeners.clone(),
        started_at: clock.now(),
        router: Router::new(http::routes())?,
        sip: Some(sip.clone()),
        secrets: secrets.clone(),
        hashes: HashPool::new(MAX_CONCURRENT_PASSWORD_HASHES),
        setup_lock: tokio::sync::Mutex::new(()),
        forwards: Default::default(),
        outbox: outbox.clone(),
        events,
        acme: Some(acme.clone()),
        network,
        #[cfg(feature = "test-hooks")]
        stall_http_ms: Default::default(),
    });

    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Attached before the HTTP server starts, so no change goes unseen.
    let reload_task = tokio::spawn(reload_on_directory_change(
        state.events.directory_reloader(),
        sip.clone(),
        db.clone(),
        secrets.clone(),
        stopped(),
    ));

    let dnd_task = tokio::spawn(store_dnd_codes(
        db.clone(),
        clock.clone(),
        state.events.clone(),
        dnd_rx,
    ));

    let http_task = tokio::spawn(http::serve(
        http_listener,
        state.clone(),
        heartbeats.register("http"),
        stopped(),
    ));
    let https_task = https_listener.map(|listener| {
        let (store, state, beat, stop) = (
            certs.clone(),
            state.clone(),
            heartbeats.register("https"),
            stopped(),
        );
        tokio::spawn(async move {
            if let Err(e) = http::tls_listener::serve_tls(listener, store, state, beat, stop).await
            {
                tracing::error!(error = %e, "HTTPS could not start");
            }
        })
    });
    let acme_task = tokio::spawn(acme.run(stopped()));
    let db_probe = tokio::spawn(probe_database(
        db.clone(),
        heartbeats.register("db"),
        stopped(),
    ));
    let sweep_task = tokio::spawn(accounts::sweep_loop(db.clone(), clock.clone(), stopped()));
    let twilio_jobs = crate::twilio::jobs::TwilioJobs::new(
        outbox.clone(),
        secrets.clone(),
        &settings.twilio_api_base,
        &settings.data_dir,
    );
    let jobs = crate::notify::deliver::AppJobs {
        twilio: twilio_jobs,
        notifier: crate::notify::deliver::Notifier::new(db.clone(), secrets.clone(), clock.clone()),
    };
    let outbox_task = tokio::spawn(crate::outbox::worker::Worker::new(outbox, jobs).run(stopped()));
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

    let mdns_task = settings.mdns.enabled.then(|| {
        let (name_tx, name_rx) = watch::channel(crate::mdns::DEFAULT_INSTANCE.to_string());
        tokio::spawn(follow_household_name(db.clone(), name_tx, stopped()));
        tokio::spawn(crate::mdns::run(
            crate::mdns::Config {
                hostname: settings.mdns.hostname.clone(),
                http_port: http_addr.port(),
                instance: name_rx,
            },
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
    if let Some(t) = https_task {
        let _ = t.await;
    }
    let _ = acme_task.await;
    let _ = reload_task.await;
    // Before the endpoint goes: the forwards are removed at the router.
    let _ = network_task.await;
    let _ = sip_task.await;
    drop(sip);
    // The endpoint is gone, so the registrar's sender is too: the writer
    // drains what is queued and ends.
    let _ = persist_task.await;
    let _ = cdr_task.await;
    let _ = dnd_task.await;
    let _ = db_probe.await;
    let _ = storage_task.await;
    let _ = sweep_task.await;
    let _ = outbox_task.await;
    if let Some(t) = watchdog_task {
        let _ = t.await;
    }
    if let Some(t) = mdns_task {
        let _ = t.await;
    }
    if let Err(e) = tokio::fs::remove_file(&ports_file).await {
        tracing::warn!(error = %e, "could not remove {}", ports_file.display());
    }
    Ok(())
}

/// How often the household's name is read for the mDNS service name.
const MDNS_NAME_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the mDNS service name equal to the household's name (saved by the
/// setup wizard, perhaps long after startup), "Homeline" while it has none.
/// A read every few seconds; nothing is written.
async fn follow_household_name(
    db: Db,
    name: watch::Sender<String>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(MDNS_NAME_REFRESH);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        let read = db
            .call(|c| store::config::get(c, crate::http::setup_steps::SETUP_HOUSEHOLD_NAME))
            .await;
        let wanted = match read {
            Ok(Some(n)) if !n.trim().is_empty() => n.trim().to_string(),
            Ok(_) => crate::mdns::DEFAULT_INSTANCE.to_string(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the household name for mDNS");
                continue;
            }
        };
        name.send_if_modified(|current| {
            let changed = *current != wanted;
            if changed {
                current.clone_from(&wanted);
            }
            changed
        });
    }
}

/// Reads every phone's credentials and unseals their SIP passwords into
/// HA1s; a phone whose password cannot be opened is skipped with an error
/// (it cannot register until its password is set again).
pub async fn load_device_credentials(
    db: &Db,
    secrets: &Arc<SecretBox>,
) -> anyhow::Result<Vec<DeviceCredential>> {
    let rows = db.call(|c| store::devices::all_credentials(c)).await?;
    let secrets = secrets.clone();
    let creds = tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .filter_map(|(id, username, sealed)| match secrets.open(store::devices::SIP_PASSWORD_CONTEXT, &sealed) {
                Ok(pw) => Some(DeviceCredential::new(id.0, &username, &String::from_utf8_lossy(&pw))),
                Err(e) => {
                    tracing::error!(device_id = id.0, %username, error = %e, "cannot open the SIP password of a phone");
                    None
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(creds)
}

/// Builds the call router's directory from the database: phones, the
/// numbers and who they ring, and the Twilio SIP credentials (sealed).
pub async fn load_directory(
    db: &Db,
    secrets: &Arc<SecretBox>,
) -> anyhow::Result<endpoint::Directory> {
    let secret_box = secrets.clone();
    let (phones, numbers, firsts, credentials, domain, dnd) = db
        .call(move |c| {
            // Generated (and stored) on first use: the same pair goes into
            // the TwiML <Sip> and into Twilio's credential list.
            let credentials = crate::sysconfig::twilio_sip_credentials(c, &secret_box);
            Ok::<_, crate::store::StoreError>((
                store::devices::routing(c)?,
                store::dids::routing(c)?,
                store::dids::first_number_of_users(c)?,
                credentials,
                store::config::get(c, crate::sysconfig::TWILIO_SIP_DOMAIN)?,
                crate::rules::dnd::DndTable::load(c)?,
            ))
        })
        .await?;
    let firsts: std::collections::HashMap<i64, String> = firsts.into_iter().collect();
    let mut dir = endpoint::Directory {
        dnd,
        ..endpoint::Directory::default()
    };
    for (id, username, name, user_id) in phones {
        let device_id = id.0;
        let caller_id = user_id.and_then(|u| firsts.get(&u).cloned());
        dir.phones.insert(
            device_id,
            endpoint::Phone {
                device_id,
                username,
                name,
                caller_id,
            },
        );
    }
    for (did_id, number, device_ids) in numbers {
        dir.numbers
            .insert(number, endpoint::Number { did_id, device_ids });
    }
    match credentials {
        Ok((user, password)) => {
            dir.trunk = Some(endpoint::Trunk {
                credential: DeviceCredential::new(0, &user, &password),
                password,
                domain: domain.unwrap_or_default(),
                edge: None,
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "no Twilio SIP credentials: calls from and to Twilio are refused")
        }
    }
    Ok(dir)
}

/// Reloads the SIP endpoint's phones and directory whenever the HTTP API
/// announces a change ([`crate::events::Event::DirectoryChanged`]), and
/// acknowledges each reload so the announcing request can answer after it.
async fn reload_on_directory_change(
    mut reloader: crate::events::DirectoryReloader,
    sip: endpoint::SipHandle,
    db: Db,
    secrets: Arc<SecretBox>,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    loop {
        let generation = tokio::select! {
            _ = &mut stopped => return,
            g = reloader.next() => match g {
                Some(g) => g,
                None => return,
            },
        };
        reload_sip(&sip, &db, &secrets).await;
        reloader.applied(generation);
    }
}

/// Tells the SIP endpoint about changed phones, numbers or Twilio settings.
async fn reload_sip(sip: &endpoint::SipHandle, db: &Db, secrets: &Arc<SecretBox>) {
    match load_device_credentials(db, secrets).await {
        Ok(creds) => sip.reload_devices(creds).await,
        Err(e) => tracing::error!(error = %e, "could not reload phone credentials for SIP"),
    }
    match load_directory(db, secrets).await {
        Ok(d) => sip.reload_directory(d).await,
        Err(e) => tracing::error!(error = %e, "could not reload the call directory"),
    }
}

/// Writes each finished call's CDR.
async fn write_cdrs(db: Db, mut rx: tokio::sync::mpsc::UnboundedReceiver<store::cdrs::Cdr>) {
    while let Some(cdr) = rx.recv().await {
        if let Err(e) = db.call(move |c| store::cdrs::insert(c, &cdr)).await {
            tracing::error!(error = %e, "could not store a call record");
        }
    }
}

/// Stores what the phones' DND feature codes asked for, announces it and
/// lets the call router reload (the call layer never writes itself).
async fn store_dnd_codes(
    db: Db,
    clock: SharedClock,
    events: crate::events::Events,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::b2bua::DndRequest>,
) {
    use crate::rules::dnd::{household_zone, instant, DndState};
    use crate::store::dnd::{set_on, Scope};
    while let Some(req) = rx.recv().await {
        let now = clock.now();
        let stored = db
            .call(move |c| {
                let s = set_on(c, Scope::Device, req.device.0, req.on, now)?;
                Ok::<_, crate::store::StoreError>((s, household_zone(c)?))
            })
            .await;
        match stored {
            Ok((setting, tz)) => {
                let new = DndState::of(&setting, instant(now), &tz);
                tracing::info!(
                    device = req.device.0,
                    on = req.on,
                    active = new.active,
                    "DND set from the phone"
                );
                http::dnd::announce(&events, &new).await;
            }
            Err(e) => {
                tracing::error!(device = req.device.0, error = %e, "could not store a phone's DND change")
            }
        }
    }
}

/// Writes binding changes to SQLite in the order they happened.
async fn persist_bindings(
    db: Db,
    clock: SharedClock,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Persist>,
) {
    while let Some(op) = rx.recv().await {
        let result = match op {
            Persist::Upsert(b) => {
                let now = clock.now();
                db.call(move |c| store::registrations::upsert(c, &b, now))
                    .await
            }
            Persist::Remove { device_id, contact } => {
                db.call(move |c| store::registrations::remove(c, device_id, &contact).map(|_| ()))
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not store a registration change");
        }
    }
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
            r = db.call(|_| Ok::<_, crate::store::StoreError>(())) => match r {
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
