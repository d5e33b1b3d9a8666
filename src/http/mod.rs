//! The HTTP server: web UI, REST API and Twilio webhooks.
//!
//! A hyper 1 HTTP/1.1 server with a bounded number of connections, a header
//! read timeout, bodies capped before they are read, panics caught per
//! request, an access log line and an `X-Request-Id` on every response, and
//! errors always in the one JSON format ([`error::ApiError`]).
//!
//! Security is applied once per request, before the handler runs, from the
//! route's declared [`router::Access`] (see [`auth`]): handlers receive the
//! authenticated principal and never check sessions, roles or CSRF
//! themselves; what a user may see is narrowed by `accounts::scope`.

pub mod acme_routes;
pub mod assets;
pub mod auth;
pub mod auto_replies;
pub mod blocklist;
pub mod body;
pub mod calls;
pub mod devices;
pub mod diagnostics;
pub mod dids;
pub mod dnd;
pub mod error;
pub mod events;
pub mod greetings;
pub mod health;
pub mod hold_music;
pub mod https_only;
pub mod login;
pub mod messages;
pub mod network;
pub mod notifications;
pub mod openapi;
pub mod request;
pub mod router;
pub mod rules;
pub mod setup;
pub mod setup_steps;
pub mod signed;
pub mod sip;
pub mod startup;
pub mod system;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls_listener;
pub mod twilio_admin;
pub mod users;
pub mod voicemails;
pub mod webhooks;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, SET_COOKIE};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::error::ApiError;
use self::request::ApiRequest;
use self::router::{Access, Lookup, Route, Router};
use crate::accounts::password::HashPool;
use crate::clock::{SharedClock, Timestamp};
use crate::constants::{
    HEARTBEAT_INTERVAL, HTTP_HEADER_READ_TIMEOUT, MAX_HTTP_CONNECTIONS, MAX_JSON_BODY_BYTES,
    SHUTDOWN_GRACE,
};
use crate::secrets::SecretBox;
use crate::settings::Settings;
use crate::store::Db;
use crate::watchdog::{Heartbeat, Heartbeats};

/// What handlers can reach.
#[derive(Debug)]
pub struct ServerState {
    /// The run's settings.
    pub settings: Settings,
    /// The database.
    pub db: Db,
    /// The clock.
    pub clock: SharedClock,
    /// Core-loop heartbeats, for readiness.
    pub heartbeats: Heartbeats,
    /// Bound listeners by name (`http`, `sip_udp`…).
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// When the process became ready.
    pub started_at: Timestamp,
    /// The route table.
    pub router: Router,
    /// The SIP endpoint (registrations, bans); absent in HTTP-only tests.
    pub sip: Option<crate::endpoint::SipHandle>,
    /// Seals and opens the secrets of the system configuration (shared with
    /// the SIP credential loader).
    pub secrets: std::sync::Arc<SecretBox>,
    /// Where password hashes are computed (bounded, off the reactor).
    pub hashes: HashPool,
    /// The durable outbox (enqueue side effects, wake its worker).
    pub outbox: crate::outbox::Outbox,
    /// What happened, for MWI and notifications.
    pub events: crate::events::Events,
    /// The public address and the router's forwards (`/api/network`).
    pub network: crate::netaddr::NetHandle,
    /// Serialises setup-wizard completions (the first one wins, the others
    /// find setup completed).
    pub setup_lock: tokio::sync::Mutex<()>,
    /// The toll-fraud hourly cap for calls a routing rule forwards out
    /// through Twilio (the call layer counts the phones' own calls).
    pub forwards: std::sync::Mutex<crate::dialplan::TollGuard>,
    /// The certificate service (HTTP-01 answers, the served certificate);
    /// absent in HTTP-only tests.
    pub acme: Option<crate::acme::Acme>,
    /// Test builds only: milliseconds the accept loop must block once.
    #[cfg(feature = "test-hooks")]
    pub stall_http_ms: AtomicU64,
}

/// The route table of the appliance. Every route declares its [`Access`];
/// the access-matrix test walks this table.
pub fn routes() -> Vec<Route> {
    let mut routes = vec![
        Route::new(Method::GET, "/health", Access::Public, health::live),
        Route::new(
            Method::GET,
            "/api/health/ready",
            Access::Public,
            health::ready,
        ),
    ];
    routes.extend(login::routes());
    routes.extend(users::routes());
    routes.extend(setup::routes());
    routes.extend(setup_steps::routes());
    routes.extend(system::routes());
    routes.extend(startup::routes());
    routes.extend(dids::routes());
    routes.extend(devices::routes());
    routes.extend(diagnostics::routes());
    routes.extend(dnd::routes());
    routes.extend(sip::routes());
    routes.extend(blocklist::routes());
    routes.extend(calls::routes());
    routes.extend(events::routes());
    routes.extend(hold_music::routes());
    routes.extend(webhooks::routes());
    routes.extend(notifications::routes());
    routes.extend(voicemails::routes());
    routes.extend(messages::routes());
    routes.extend(auto_replies::routes());
    routes.extend(twilio_admin::routes());
    routes.extend(greetings::routes());
    routes.extend(rules::routes());
    routes.extend(acme_routes::routes());
    routes.extend(network::routes());
    routes.extend(openapi::routes());
    #[cfg(feature = "test-hooks")]
    routes.extend(test_hooks::routes());
    routes
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

fn request_id(headers: &hyper::HeaderMap) -> String {
    // A caller-supplied id (a reverse proxy's) is kept if it is tame.
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        if !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return id.to_string();
        }
    }
    format!(
        "{:08x}-{:06}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Accepts connections until `shutdown` resolves, then lets in-flight
/// requests finish for up to [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    heartbeat: Heartbeat,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_on(listener, None, state, heartbeat, shutdown).await
}

/// Like [`serve`], over TLS (see [`tls_listener`]): each accepted connection
/// shakes hands in its own task, and its requests are marked HTTPS.
pub(crate) async fn serve_on(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<ServerState>,
    heartbeat: Heartbeat,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tokio::pin!(shutdown);
    // A connection slot is taken before accepting, so at the limit new
    // clients wait in the kernel backlog; the heartbeat keeps beating either
    // way, because waiting for a slot or a client is not a stall.
    let mut slot: Option<tokio::sync::OwnedSemaphorePermit> = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                heartbeat.beat();
                #[cfg(feature = "test-hooks")]
                test_hooks::maybe_stall(&state);
            }
            p = permits.clone().acquire_owned(), if slot.is_none() => match p {
                Ok(p) => slot = Some(p),
                Err(_) => break,
            },
            accepted = listener.accept(), if slot.is_some() => match accepted {
                Ok((stream, peer)) => {
                    let permit = slot.take();
                    let state = state.clone();
                    let watcher = graceful.watcher();
                    match &tls {
                        None => {
                            tokio::spawn(async move {
                                serve_connection(TokioIo::new(stream), state, peer, false, watcher).await;
                                drop(permit);
                            });
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let shake = tokio::time::timeout(HTTP_HEADER_READ_TIMEOUT, acceptor.accept(stream));
                                match shake.await {
                                    Ok(Ok(tls_stream)) => {
                                        serve_connection(TokioIo::new(tls_stream), state, peer, true, watcher).await
                                    }
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                                drop(permit);
                            });
                        }
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    // Event streams never finish on their own: end them now, so that they
    // do not hold the shutdown for the whole grace period.
    state.events.close();
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("HTTP connections drained"),
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("HTTP connections still open after the grace period; closing"),
    }
}

/// Serves the requests of one connection (plain or TLS) until it ends.
async fn serve_connection<IO>(
    io: TokioIo<IO>,
    state: Arc<ServerState>,
    peer: SocketAddr,
    tls: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = body::Connection::default();
    let cut = connection.clone();
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let connection = connection.clone();
        async move { Ok::<_, Infallible>(handle(state, peer, req, connection, tls).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_READ_TIMEOUT)
        .serve_connection(io, svc);
    let conn = watcher.watch(conn);
    tokio::select! {
        ended = conn => if let Err(e) = ended {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        },
        // A streaming response gave up on its client.
        _ = cut.cut_off() => tracing::debug!(%peer, "connection cut"),
    }
}

/// Answers one request; never fails (errors become JSON error responses).
/// `connection` lets a streaming handler cut its client off; `tls` says
/// it came over our own HTTPS listener.
pub async fn handle(
    state: Arc<ServerState>,
    peer: SocketAddr,
    req: Request<Incoming>,
    connection: body::Connection,
    tls: bool,
) -> Response<body::Body> {
    let started = Instant::now();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = dispatch(state, peer, req, &id, connection, tls).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    tracing::info!(
        target: "homeline::access",
        request_id = %id, %peer, %method, path = %path, status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
    );
    body::into_sent(resp, method == Method::HEAD)
}

async fn dispatch(
    state: Arc<ServerState>,
    peer: SocketAddr,
    req: Request<Incoming>,
    id: &str,
    connection: body::Connection,
    tls: bool,
) -> Response<Full<Bytes>> {
    let trusted = state.settings.http_trusted_proxy;
    let client_ip = auth::client_ip(trusted, peer, req.headers());
    let https = tls || auth::is_https(trusted, peer, req.headers());
    let plain_from_internet = https_only::must_redirect(
        state.settings.http_tls_listen.is_some(),
        https,
        client_ip,
        req.uri().path(),
    );
    let (route, params) = match state.router.lookup(req.method(), req.uri().path()) {
        Lookup::Found(route, _) if plain_from_internet && route.access != Access::Webhook => {
            return https_only::redirect(req.headers(), req.uri())
        }
        Lookup::Found(route, params) => (route.clone(), params),
        Lookup::MethodNotAllowed(allow) => {
            return ApiError::method_not_allowed(req.method().as_str(), req.uri().path(), allow)
                .into_response()
        }
        Lookup::NotFound => {
            let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
            if is_read && plain_from_internet {
                return https_only::redirect(req.headers(), req.uri());
            }
            if is_read {
                if let Some(asset) = assets::resolve(req.uri().path()) {
                    return assets::respond(asset, req.method(), req.headers());
                }
            }
            return ApiError::not_found(format!(
                "no route for {} {}",
                req.method(),
                req.uri().path()
            ))
            .into_response();
        }
    };
    let (parts, body) = req.into_parts();
    // Who is calling and whether they may: decided here, once, for every
    // route, before the body is read (so anonymous clients cannot make us
    // buffer a megabyte on a protected route).
    let gate = match auth::check(
        &state,
        route.access,
        &parts.method,
        &parts.headers,
        https,
        id,
    )
    .await
    {
        Ok(gate) => gate,
        Err(e) => return e.into_response(),
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BODY_BYTES as u64) {
        return ApiError::payload_too_large(MAX_JSON_BODY_BYTES).into_response();
    }
    let body = match Limited::new(body, MAX_JSON_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return ApiError::payload_too_large(MAX_JSON_BODY_BYTES).into_response()
        }
        Err(e) => {
            return ApiError::validation(format!("could not read the request body: {e}"))
                .into_response()
        }
    };
    let is_head = parts.method == Method::HEAD;
    let mut api_req = ApiRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        params,
        peer,
        client_ip,
        https,
        principal: gate.principal,
        request_id: id.to_string(),
        connection,
        signed: None,
    };
    // Twilio's webhooks prove themselves by signature, checked here for
    // every such route so that a new one cannot forget it.
    if route.access == Access::Webhook {
        match signed::verify(&state, &api_req).await {
            Ok(s) => api_req.signed = Some(s),
            Err(e) => return e.into_response(),
        }
    }
    // The handler runs as its own task so a panic is contained to this request.
    let outcome = tokio::spawn(route.call(state, api_req)).await;
    let mut resp = match outcome {
        Ok(Ok(resp)) => resp,
        Ok(Err(api_err)) => api_err.into_response(),
        Err(join) if join.is_panic() => {
            ApiError::internal(id, &"the request handler panicked").into_response()
        }
        Err(join) => ApiError::internal(id, &join).into_response(),
    };
    // A slid session re-sends its cookie so the browser's Max-Age slides
    // too, unless the handler set the cookie itself (login, logout).
    if let Some(cookie) = gate.refresh_cookie {
        if !resp.headers().contains_key(SET_COOKIE) {
            resp.headers_mut().insert(SET_COOKIE, cookie);
        }
    }
    if is_head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}
