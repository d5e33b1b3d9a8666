//! An in-process server for tests of time-based rules (session expiry and
//! sliding, lockout release): the real router, dispatch and handlers over an
//! in-memory database, driven by a [`ManualClock`], on a loopback port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::router::{Route, Router};
use super::{routes, serve, ServerState};
use crate::accounts::password::{self, HashPool};
use crate::clock::{Clock, ManualClock, SharedClock, Timestamp};
use crate::secrets::SecretBox;
use crate::settings::RawInputs;
use crate::store::users::{self, NewUser, Role};
use crate::store::{self, Db};
use crate::watchdog::Heartbeats;

/// A running in-process server.
pub(crate) struct TestServer {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub state: Arc<ServerState>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The session token a `Set-Cookie` carries, if any.
    pub fn session_token(&self) -> Option<String> {
        let c = self.header("set-cookie")?;
        let v = c.strip_prefix("homeline_session=")?.split(';').next()?;
        (!v.is_empty()).then(|| v.to_string())
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(RawInputs::default()).await
    }

    pub async fn start_with(inputs: RawInputs) -> TestServer {
        Self::start_with_inputs_and_routes(inputs, Vec::new()).await
    }

    /// A server with the real routes and these `extra` ones.
    pub async fn start_with_routes(extra: Vec<Route>) -> TestServer {
        Self::start_with_inputs_and_routes(RawInputs::default(), extra).await
    }

    async fn start_with_inputs_and_routes(inputs: RawInputs, extra: Vec<Route>) -> TestServer {
        let mut all = routes();
        all.extend(extra);
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_795_255_200_000,
        )));
        let shared: SharedClock = clock.clone();
        let (db, _thread) = Db::start(store::open_in_memory().expect("database"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heartbeats = Heartbeats::new();
        let outbox = crate::outbox::Outbox::new(db.clone(), shared.clone());
        let state = Arc::new(ServerState {
            settings: inputs.resolve(&BTreeMap::new()).expect("settings"),
            db,
            clock: shared.clone(),
            heartbeats: heartbeats.clone(),
            listeners: vec![("http", addr)],
            started_at: shared.now(),
            router: Router::new(all).expect("routes"),
            sip: None,
            secrets: Arc::new(SecretBox::from_key(&[7; 32]).expect("key")),
            hashes: HashPool::new(2),
            setup_lock: tokio::sync::Mutex::new(()),
            forwards: Default::default(),
            outbox,
            events: crate::events::Events::new(),
            acme: None,
            network: Default::default(),
            #[cfg(feature = "test-hooks")]
            stall_http_ms: Default::default(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            state.clone(),
            heartbeats.register("http"),
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            clock,
            state,
            stop: Some(stop),
        }
    }

    /// Creates an account directly in the database.
    pub async fn seed_user(&self, email: &str, role: Role, pw: &str) -> i64 {
        let hash = password::hash(pw).expect("hash");
        let (email, now) = (email.to_string(), self.clock.now());
        self.state
            .db
            .call(move |c| {
                users::insert(
                    c,
                    &NewUser {
                        email: &email,
                        display_name: "",
                        password_hash: &hash,
                        role,
                    },
                    now,
                )
            })
            .await
            .expect("seed user")
    }

    /// One request as our web UI sends it (JSON, the CSRF header), with the
    /// session `token` as cookie if given, plus `extra` headers.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut headers: Vec<(String, String)> =
            vec![("X-Requested-With".into(), "homeline".into())];
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        if let Some(t) = token {
            headers.push(("Cookie".into(), format!("homeline_session={t}")));
        }
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.raw(method, path, &headers, body.unwrap_or("")).await
    }

    /// Logs in; the session token, or the failed response.
    pub async fn login(&self, email: &str, pw: &str) -> Result<String, Resp> {
        let body = serde_json::json!({ "email": email, "password": pw }).to_string();
        let r = self
            .call("POST", "/api/auth/login", None, Some(&body), &[])
            .await;
        match (r.status, r.session_token()) {
            (200, Some(t)) => Ok(t),
            _ => Err(r),
        }
    }

    /// One request with exactly these headers (plus Host, Connection and
    /// Content-Length).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Resp {
        let mut s = TcpStream::connect(self.addr).await.expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.expect("write");
        s.write_all(body.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
            .await
            .expect("answer in time")
            .expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("header end");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    }
}
