//! Live updates: `GET /api/events`, server-sent events for the signed-in
//! session, fed by the one events channel ([`crate::events`]).
//!
//! Each client gets the events it may see (admins all, a user those of
//! their own phones and numbers, decided like `accounts::scope`), a `: hb`
//! comment every [`EVENTS_HEARTBEAT`], and on reconnecting with
//! `Last-Event-ID` what it missed from the backlog, or `event: resync` when
//! that is gone. A task per stream filters and formats events into a bounded
//! buffer ([`EVENTS_CLIENT_BUFFER`] frames); a client that leaves it full
//! for [`EVENTS_SLOW_CLIENT_GRACE`] is cut off, so a slow reader costs only
//! its own stream. The stream ends when
//! the session does: at once on logout, password or role change and account
//! deletion (they publish `SessionsChanged`), within a heartbeat on expiry.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::body::{self, Connection};
use super::error::{ApiError, ApiResult};
use super::request::ApiRequest;
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::accounts::session::Principal;
use crate::constants::{EVENTS_CLIENT_BUFFER, EVENTS_HEARTBEAT, EVENTS_SLOW_CLIENT_GRACE};
use crate::events::{Event, Published, Resume, StreamSlot};
use crate::store::{devices, sessions, StoreError};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route::new(Method::GET, "/api/events", Access::User, stream)]
}

/// Whom a stream is for and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The session's account (its role as of the last check).
    pub principal: Principal,
    /// Its numbers, ascending (`None`: an admin, everything).
    pub did_ids: Option<Vec<i64>>,
    /// Its phones, ascending.
    pub device_ids: Vec<i64>,
}

impl Viewer {
    /// Reads what `principal` may see now.
    pub fn load(conn: &rusqlite::Connection, principal: Principal) -> Result<Viewer, StoreError> {
        let scope = Scope::load(conn, &principal)?;
        let device_ids = match scope.owner() {
            Some(user) => devices::ids_of_user(conn, user)?
                .into_iter()
                .map(|d| d.0)
                .collect(),
            None => Vec::new(),
        };
        Ok(Viewer {
            principal,
            did_ids: scope.did_ids().map(<[i64]>::to_vec),
            device_ids,
        })
    }

    fn owns_did(&self, did: i64) -> bool {
        self.did_ids
            .as_ref()
            .is_none_or(|ids| ids.binary_search(&did).is_ok())
    }

    fn owns_device(&self, device: i64) -> bool {
        self.did_ids.is_none() || self.device_ids.binary_search(&device).is_ok()
    }

    /// Whether this viewer is shown `event`.
    pub fn sees(&self, event: &Event) -> bool {
        let admin = self.did_ids.is_none();
        match event {
            Event::Registration { device_id, .. } => self.owns_device(*device_id),
            Event::Call {
                did_id, device_ids, ..
            } => {
                admin
                    || did_id.is_some_and(|d| self.owns_did(d))
                    || device_ids.iter().any(|d| self.owns_device(*d))
            }
            Event::Voicemail { did_id, .. } | Event::Message { did_id, .. } => {
                self.owns_did(*did_id)
            }
            Event::Alert { .. }
            | Event::CertificateRenewed { .. }
            | Event::PublicAddressChanged { .. } => admin,
            Event::DndChanged {
                scope, subject_id, ..
            } => match *scope {
                "system" => true,
                "user" => admin || *subject_id == self.principal.user_id,
                _ => self.owns_device(*subject_id),
            },
            Event::SessionsChanged { .. } | Event::Closing | Event::DirectoryChanged { .. } => {
                false
            }
        }
    }
}

/// The SSE type name and `data` of a shown event (CONTRACTS.md §1).
pub fn wire(event: &Event) -> Option<(&'static str, serde_json::Value)> {
    Some(match event {
        Event::Registration {
            device_id,
            registered,
        } => (
            "registration",
            json!({ "device_id": device_id, "registered": registered }),
        ),
        Event::Call {
            call_id,
            state,
            ended,
            ..
        } => (
            "call",
            json!({ "call_id": call_id, "state": state, "ended": ended }),
        ),
        Event::Voicemail {
            voicemail_id,
            did_id,
            change,
        } => (
            "voicemail",
            json!({ "voicemail_id": voicemail_id, "did_id": did_id, "change": change }),
        ),
        Event::Message {
            message_id,
            did_id,
            change,
            status,
        } => (
            "message",
            json!({ "message_id": message_id, "did_id": did_id, "change": change, "status": status }),
        ),
        Event::Alert { alert_id, change } => {
            ("alert", json!({ "alert_id": alert_id, "change": change }))
        }
        Event::DndChanged {
            scope,
            subject_id,
            on,
            active,
        } => (
            "dnd",
            json!({ "scope": scope, "subject_id": subject_id, "on": on, "active": active }),
        ),
        Event::CertificateRenewed { name, not_after } => (
            "certificate",
            json!({ "name": name, "not_after": not_after }),
        ),
        Event::PublicAddressChanged { ip } => ("public_address", json!({ "ip": ip })),
        Event::SessionsChanged { .. } | Event::Closing | Event::DirectoryChanged { .. } => {
            return None
        }
    })
}

/// One SSE frame: `id:`, `event:`, one `data:` line (JSON has no raw
/// newlines), blank line.
fn frame(p: &Published) -> Option<String> {
    let (kind, data) = wire(&p.event)?;
    Some(format!("id: {}\nevent: {kind}\ndata: {data}\n\n", p.id))
}

const RESYNC: &str = "event: resync\ndata: {}\n\n";
const HEARTBEAT: &[u8] = b": hb\n\n";
/// How long a browser waits before reconnecting after the stream ended.
const RETRY: &str = "retry: 3000\n\n";

/// `Last-Event-ID` (header, or `?last_event_id=` for clients that cannot
/// set headers): `Some(None)` for an id we cannot read, which asks for a
/// resync like an id from before the backlog.
fn last_event_id(req: &ApiRequest) -> Option<Option<u64>> {
    let raw = req
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            req.query()
                .into_iter()
                .find(|(k, _)| k == "last_event_id")
                .map(|(_, v)| v)
        })?;
    Some(raw.trim().parse().ok())
}

async fn stream(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Reverse proxies (nginx) must pass frames on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if req.method == Method::HEAD {
        return Ok(resp);
    }
    let slot = state.events.open_stream().ok_or_else(|| {
        ApiError::unavailable("too many live-update streams are open; retry shortly", 5)
    })?;
    let viewer = state
        .db
        .read(move |c| Viewer::load(c, me))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    let (rx, resume) = match last_event_id(&req) {
        None => state.events.resume(None),
        Some(None) => (state.events.subscribe(), Resume::Gap),
        Some(Some(id)) => state.events.resume(Some(id)),
    };
    let mut first = String::from(RETRY);
    match resume {
        Resume::Gap => first.push_str(RESYNC),
        Resume::Replay(missed) => missed
            .iter()
            .filter(|p| viewer.sees(&p.event))
            .filter_map(|p| frame(p))
            .for_each(|f| first.push_str(&f)),
    }
    let (tx, body_rx) = mpsc::channel(EVENTS_CLIENT_BUFFER);
    // Cannot fail: the channel is new and empty.
    let _ = tx.try_send(Bytes::from(first));
    tokio::spawn(pump(Pump {
        state,
        viewer,
        rx,
        tx,
        connection: req.connection.clone(),
        _slot: slot,
    }));
    Ok(body::streamed(resp, body_rx))
}

/// One client's stream, from the events channel to its body.
struct Pump {
    state: Arc<ServerState>,
    viewer: Viewer,
    rx: broadcast::Receiver<Arc<Published>>,
    tx: mpsc::Sender<Bytes>,
    connection: Connection,
    _slot: StreamSlot,
}

/// Why a stream ended (for the log).
#[derive(Debug)]
enum End {
    ClientLeft,
    SessionEnded,
    SlowClient,
    Closing,
}

async fn pump(mut p: Pump) {
    let user_id = p.viewer.principal.user_id;
    let start = tokio::time::Instant::now() + EVENTS_HEARTBEAT;
    let mut beat = tokio::time::interval_at(start, EVENTS_HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        let out: Bytes = tokio::select! {
            _ = p.tx.closed() => break End::ClientLeft,
            _ = beat.tick() => {
                if !recheck(&p.state, &mut p.viewer).await {
                    break End::SessionEnded;
                }
                Bytes::from_static(HEARTBEAT)
            }
            got = p.rx.recv() => match got {
                Ok(published) => match &published.event {
                    Event::Closing => break End::Closing,
                    Event::SessionsChanged { user_id: u } => {
                        if *u == user_id && !recheck(&p.state, &mut p.viewer).await {
                            break End::SessionEnded;
                        }
                        continue;
                    }
                    e if p.viewer.sees(e) => match frame(&published) {
                        Some(f) => Bytes::from(f),
                        None => continue,
                    },
                    _ => continue,
                },
                // This task fell behind the channel (starved): the client
                // missed events and must reload.
                Err(broadcast::error::RecvError::Lagged(_)) => Bytes::from_static(RESYNC.as_bytes()),
                Err(broadcast::error::RecvError::Closed) => break End::Closing,
            },
        };
        match p.tx.try_send(out) {
            Ok(()) => {}
            // A burst: give the client a moment to catch up. Only this
            // task waits; events meanwhile queue in the channel (or lag,
            // which becomes a resync).
            Err(mpsc::error::TrySendError::Full(out)) => {
                match tokio::time::timeout(EVENTS_SLOW_CLIENT_GRACE, p.tx.send(out)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break End::ClientLeft,
                    Err(_) => break End::SlowClient,
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break End::ClientLeft,
        }
    };
    if matches!(end, End::SlowClient) {
        // Its buffer is full, so it is not reading: a clean end would wait
        // behind the unread frames forever.
        p.connection.cut();
        tracing::info!(user_id, "event stream dropped: the client is not reading");
    } else {
        tracing::debug!(user_id, ?end, "event stream ended");
    }
}

/// Re-reads the stream's session: `false` once it has ended; otherwise the
/// viewer is refreshed (role, numbers and phones may have changed).
async fn recheck(state: &ServerState, viewer: &mut Viewer) -> bool {
    let (principal, now) = (viewer.principal, state.clock.now());
    let found = state
        .db
        .read(move |c| {
            let Some(role) = sessions::live_role(c, principal.session_id, now)? else {
                return Ok(None);
            };
            Viewer::load(c, Principal { role, ..principal }).map(Some)
        })
        .await;
    match found {
        Ok(Some(v)) => {
            *viewer = v;
            true
        }
        Ok(None) => false,
        Err(StoreError::Closed) => false,
        Err(e) => {
            tracing::warn!(error = %e, "could not re-check an event stream's session; keeping it");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::events::{AlertChange, MessageChange, VoicemailChange};
    use crate::http::testing::TestServer;
    use crate::store::users::Role;
    use crate::store::{alerts, dids};

    const PW: &str = "correct horse battery";

    /// One SSE frame as a client sees it.
    #[derive(Debug, Clone, PartialEq)]
    struct Frame {
        id: Option<u64>,
        kind: String,
        data: serde_json::Value,
    }

    /// A client of `GET /api/events`, decoding the chunked body itself.
    struct Client {
        sock: TcpStream,
        raw: Vec<u8>,
        body: String,
        status: u16,
        head: String,
    }

    impl Client {
        async fn open(s: &TestServer, token: &str, extra: &str) -> Client {
            Self::open_on(
                TcpStream::connect(s.addr).await.expect("connect"),
                token,
                extra,
            )
            .await
        }

        async fn open_on(mut sock: TcpStream, token: &str, extra: &str) -> Client {
            let req = format!(
                "GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: homeline_session={token}\r\n{extra}\r\n"
            );
            sock.write_all(req.as_bytes()).await.expect("write");
            let mut c = Client {
                sock,
                raw: Vec::new(),
                body: String::new(),
                status: 0,
                head: String::new(),
            };
            while !c.raw.windows(4).any(|w| w == b"\r\n\r\n") {
                assert!(c.read_more(Duration::from_secs(5)).await, "headers");
            }
            let end = c
                .raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("end")
                + 4;
            c.head = String::from_utf8_lossy(&c.raw[..end]).into_owned();
            c.raw.drain(..end);
            c.status = c.head[9..12].parse().expect("status");
            c
        }

        /// Reads more bytes; false at EOF or timeout.
        async fn read_more(&mut self, wait: Duration) -> bool {
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(wait, self.sock.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    self.raw.extend_from_slice(&buf[..n]);
                    true
                }
                _ => false,
            }
        }

        /// Moves complete chunks into `body`; true once the last chunk came.
        fn dechunk(&mut self) -> bool {
            loop {
                let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                    return false;
                };
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&self.raw[..eol]).trim(), 16)
                        .expect("chunk size");
                if size == 0 {
                    return true;
                }
                if self.raw.len() < eol + 2 + size + 2 {
                    return false;
                }
                let chunk = self.raw[eol + 2..eol + 2 + size].to_vec();
                self.body.push_str(&String::from_utf8_lossy(&chunk));
                self.raw.drain(..eol + 2 + size + 2);
            }
        }

        /// The next event (comments and `retry:` skipped), if one comes
        /// within `wait`.
        async fn next(&mut self, wait: Duration) -> Option<Frame> {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                self.dechunk();
                while let Some(end) = self.body.find("\n\n") {
                    let block: String = self.body.drain(..end + 2).collect();
                    let mut f = Frame {
                        id: None,
                        kind: String::new(),
                        data: serde_json::Value::Null,
                    };
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            f.id = v.parse().ok();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            f.kind = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            f.data = serde_json::from_str(v).expect("one-line JSON");
                        }
                    }
                    if !f.kind.is_empty() {
                        return Some(f);
                    }
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() || !self.read_more(left).await {
                    return None;
                }
            }
        }

        /// Every event that arrives within `wait`.
        async fn drain(&mut self, wait: Duration) -> Vec<Frame> {
            let mut v = Vec::new();
            while let Some(f) = self.next(wait).await {
                v.push(f);
            }
            v
        }

        /// Whether the response ends (last chunk or EOF) within `wait`.
        async fn ends(&mut self, wait: Duration) -> bool {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                if self.dechunk() {
                    return true;
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return false;
                }
                let mut buf = [0u8; 4096];
                match tokio::time::timeout(left, self.sock.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
                    Err(_) => return false,
                }
            }
        }
    }

    /// An admin and a user (`kid`) with a number and a phone each, and the
    /// other family's number and phone.
    struct Household {
        s: TestServer,
        admin: String,
        kid: String,
        kid_id: i64,
        kid_did: i64,
        kid_phone: i64,
        other_did: i64,
        other_phone: i64,
    }

    async fn household() -> Household {
        let s = TestServer::start().await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        let kid_id = s.seed_user("kid@x.org", Role::User, PW).await;
        let (kid_did, kid_phone, other_did, other_phone) = s
            .state
            .db
            .call(move |c| {
                let kid_did = dids::tests::make(c, "+15551230001");
                let other_did = dids::tests::make(c, "+15551230002");
                dids::assign(c, kid_did, kid_id)?;
                Ok::<_, crate::store::StoreError>((
                    kid_did,
                    devices::tests::make(c, "kid-phone", Some(kid_id)).0,
                    other_did,
                    devices::tests::make(c, "hall", None).0,
                ))
            })
            .await
            .expect("seed");
        let admin = s.login("mum@x.org", PW).await.expect("admin login");
        let kid = s.login("kid@x.org", PW).await.expect("kid login");
        Household {
            s,
            admin,
            kid,
            kid_id,
            kid_did,
            kid_phone,
            other_did,
            other_phone,
        }
    }

    const SHORT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn each_event_reaches_exactly_those_who_may_see_it() {
        let h = household().await;
        let mut admin = Client::open(&h.s, &h.admin, "").await;
        let mut kid = Client::open(&h.s, &h.kid, "").await;
        for c in [&admin, &kid] {
            assert_eq!(c.status, 200, "{}", c.head);
            let head = c.head.to_ascii_lowercase();
            assert!(head.contains("content-type: text/event-stream"), "{head}");
            assert!(head.contains("cache-control: no-store"), "{head}");
        }
        let events = &h.s.state.events;
        // (event, whether kid sees it); the admin sees every one.
        let cases = [
            (
                Event::Registration {
                    device_id: h.kid_phone,
                    registered: true,
                },
                true,
            ),
            (
                Event::Registration {
                    device_id: h.other_phone,
                    registered: false,
                },
                false,
            ),
            (
                Event::Call {
                    call_id: 1,
                    state: "ringing",
                    ended: false,
                    did_id: Some(h.kid_did),
                    device_ids: vec![],
                },
                true,
            ),
            (
                Event::Call {
                    call_id: 2,
                    state: "answered",
                    ended: false,
                    did_id: None,
                    device_ids: vec![h.other_phone, h.kid_phone],
                },
                true,
            ),
            (
                Event::Call {
                    call_id: 3,
                    state: "ended",
                    ended: true,
                    did_id: Some(h.other_did),
                    device_ids: vec![h.other_phone],
                },
                false,
            ),
            (
                Event::Voicemail {
                    voicemail_id: Some(4),
                    did_id: h.kid_did,
                    change: VoicemailChange::Transcribed,
                },
                true,
            ),
            (
                Event::Voicemail {
                    voicemail_id: None,
                    did_id: h.other_did,
                    change: VoicemailChange::Created,
                },
                false,
            ),
            (
                Event::Message {
                    message_id: 5,
                    did_id: h.kid_did,
                    change: MessageChange::Status,
                    status: Some("delivered".into()),
                },
                true,
            ),
            (
                Event::Message {
                    message_id: 6,
                    did_id: h.other_did,
                    change: MessageChange::Received,
                    status: None,
                },
                false,
            ),
            (
                Event::Alert {
                    alert_id: 7,
                    change: AlertChange::Raised,
                },
                false,
            ),
            (
                Event::DndChanged {
                    scope: "system",
                    subject_id: 0,
                    on: true,
                    active: true,
                },
                true,
            ),
            (
                Event::DndChanged {
                    scope: "user",
                    subject_id: h.kid_id,
                    on: false,
                    active: true,
                },
                true,
            ),
            (
                Event::DndChanged {
                    scope: "device",
                    subject_id: h.other_phone,
                    on: true,
                    active: true,
                },
                false,
            ),
            (
                Event::DndChanged {
                    scope: "device",
                    subject_id: h.kid_phone,
                    on: false,
                    active: false,
                },
                true,
            ),
        ];
        for (e, _) in &cases {
            events.publish(e.clone());
        }
        events.publish(Event::SessionsChanged { user_id: 999 });
        let got_admin = admin.drain(SHORT).await;
        let got_kid = kid.drain(SHORT).await;
        let wire_of = |e: &Event| wire(e).map(|(k, d)| (k.to_string(), d)).expect("shown");
        assert_eq!(
            got_admin
                .iter()
                .map(|f| (f.kind.clone(), f.data.clone()))
                .collect::<Vec<_>>(),
            cases.iter().map(|(e, _)| wire_of(e)).collect::<Vec<_>>(),
            "admins see everything, internal events nobody"
        );
        assert_eq!(
            got_kid
                .iter()
                .map(|f| (f.kind.clone(), f.data.clone()))
                .collect::<Vec<_>>(),
            cases
                .iter()
                .filter(|(_, kid)| *kid)
                .map(|(e, _)| wire_of(e))
                .collect::<Vec<_>>(),
            "a user sees only their own phones and numbers"
        );
        let ids: Vec<u64> = got_admin.iter().filter_map(|f| f.id).collect();
        assert_eq!(ids.len(), cases.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
        assert_eq!(
            got_kid[0].data,
            json!({ "device_id": h.kid_phone, "registered": true })
        );
        assert_eq!(
            got_kid[1].data,
            json!({ "call_id": 1, "state": "ringing", "ended": false })
        );

        // A route publishes: an admin dismisses an alert.
        let alert =
            h.s.state
                .db
                .call(|c| alerts::raise_id(c, "outbox:1", "failing", crate::store::testing::t(0)))
                .await
                .expect("raise")
                .expect("new");
        let r =
            h.s.call(
                "DELETE",
                &format!("/api/system/alerts/{alert}"),
                Some(&h.admin),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let f = admin
            .next(Duration::from_secs(2))
            .await
            .expect("alert event");
        assert_eq!(
            (f.kind.as_str(), f.data),
            ("alert", json!({ "alert_id": alert, "change": "dismissed" }))
        );
        assert_eq!(kid.next(SHORT).await, None, "alerts are for admins");
    }

    #[tokio::test]
    async fn a_reconnecting_client_gets_what_it_missed_or_a_resync() {
        let h = household().await;
        let events = &h.s.state.events;
        let vm = |id| Event::Voicemail {
            voicemail_id: Some(id),
            did_id: h.kid_did,
            change: VoicemailChange::Read,
        };
        let mut first = Client::open(&h.s, &h.kid, "").await;
        events.publish(vm(1));
        let seen = first.next(Duration::from_secs(2)).await.expect("event");
        drop(first);
        events.publish(vm(2));
        events.publish(Event::Alert {
            alert_id: 1,
            change: AlertChange::Raised,
        });
        events.publish(vm(3));
        let last = seen.id.expect("id");
        let mut back = Client::open(&h.s, &h.kid, &format!("Last-Event-ID: {last}\r\n")).await;
        let missed = back.drain(SHORT).await;
        assert_eq!(
            missed
                .iter()
                .map(|f| f.data["voicemail_id"].clone())
                .collect::<Vec<_>>(),
            [json!(2), json!(3)],
            "the missed events it may see, in order: {missed:?}"
        );
        events.publish(vm(4));
        assert_eq!(
            back.next(Duration::from_secs(2)).await.expect("live").data["voicemail_id"],
            json!(4),
            "then live ones"
        );
        let mut by_query = Client::open_on(
            TcpStream::connect(h.s.addr).await.expect("connect"),
            &h.kid,
            "",
        )
        .await;
        assert_eq!(by_query.next(SHORT).await, None, "no id: nothing replayed");
        drop(by_query);
        // The query form, for clients that cannot set the header.
        let mut sock = TcpStream::connect(h.s.addr).await.expect("connect");
        sock.write_all(
            format!(
                "GET /api/events?last_event_id={last} HTTP/1.1\r\nHost: x\r\nCookie: homeline_session={}\r\n\r\n",
                h.kid
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        let mut q = Client {
            sock,
            raw: Vec::new(),
            body: String::new(),
            status: 0,
            head: String::new(),
        };
        while !q.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(q.read_more(Duration::from_secs(5)).await);
        }
        let end = q
            .raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end")
            + 4;
        q.raw.drain(..end);
        assert_eq!(q.drain(SHORT).await.len(), 3, "2, 3 and 4");

        for stale in ["1", "garbage"] {
            let mut old = Client::open(&h.s, &h.kid, &format!("Last-Event-ID: {stale}\r\n")).await;
            let f = old.next(Duration::from_secs(2)).await.expect("resync");
            assert_eq!((f.kind.as_str(), f.data), ("resync", json!({})), "{stale}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_is_dropped_and_the_server_carries_on() {
        let h = household().await;
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.set_recv_buffer_size(4096).expect("small buffer");
        let sock = sock.connect(h.s.addr).await.expect("connect");
        let _stalled = Client::open_on(sock, &h.admin, "").await;
        let mut reader = Client::open(&h.s, &h.admin, "").await;
        let events = h.s.state.events.clone();
        assert_eq!(events.open_streams(), 2);
        let big = "x".repeat(2000);
        let started = std::time::Instant::now();
        let mut published = 0;
        while events.open_streams() == 2 {
            assert!(started.elapsed() < Duration::from_secs(20), "never dropped");
            for _ in 0..200 {
                events.publish(Event::Message {
                    message_id: published,
                    did_id: 1,
                    change: MessageChange::Status,
                    status: Some(big.clone()),
                });
                published += 1;
            }
            // The reader keeps up.
            while reader.next(Duration::from_millis(1)).await.is_some() {}
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(events.open_streams(), 1, "only the stalled client went");
        let r = h.s.call("GET", "/api/me", Some(&h.admin), None, &[]).await;
        assert_eq!(r.status, 200, "the server still answers");
        events.publish(Event::Alert {
            alert_id: 9,
            change: AlertChange::Raised,
        });
        let mut last = None;
        while let Some(f) = reader.next(Duration::from_millis(500)).await {
            last = Some(f);
        }
        assert_eq!(
            last.expect("events").data["alert_id"],
            json!(9),
            "the reader still gets events"
        );
    }

    #[tokio::test]
    async fn the_stream_ends_with_the_session() {
        let h = household().await;
        // Logout ends that session's stream, not the others.
        let second = h.s.login("kid@x.org", PW).await.expect("second session");
        let mut a = Client::open(&h.s, &h.kid, "").await;
        let mut b = Client::open(&h.s, &second, "").await;
        let r =
            h.s.call("POST", "/api/auth/logout", Some(&h.kid), None, &[])
                .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            a.ends(Duration::from_secs(3)).await,
            "the logged-out stream ended"
        );
        assert!(!b.ends(SHORT).await, "the other session's stream is open");
        // Deleting the account ends the rest.
        let r =
            h.s.call(
                "DELETE",
                &format!("/api/users/{}", h.kid_id),
                Some(&h.admin),
                None,
                &[],
            )
            .await;
        assert!(r.status < 300, "{} {}", r.status, r.body);
        assert!(
            b.ends(Duration::from_secs(3)).await,
            "the deleted account's stream ended"
        );
        assert_eq!(h.s.state.events.open_streams(), 0);
        let again = Client::open(&h.s, &second, "").await;
        assert_eq!(again.status, 401, "no new stream without a session");
    }

    #[tokio::test]
    async fn shutdown_ends_open_streams_at_once() {
        let h = household().await;
        let mut c = Client::open(&h.s, &h.admin, "").await;
        let started = std::time::Instant::now();
        let Household { s, .. } = h;
        drop(s);
        assert!(c.ends(Duration::from_secs(3)).await, "ended");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "not after the grace period"
        );
    }
}
