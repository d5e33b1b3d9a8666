//! A local stand-in for Twilio's REST API: answers
//! `GET /2010-04-01/Accounts/{Sid}.json` like Twilio does, 200 with the
//! account for the right Basic credentials and 401 with Twilio's error JSON
//! otherwise. Point the appliance at it with `HOMELINE_TWILIO_API_BASE`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;

/// A test Account SID.
pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Its auth token (distinctive, so tests can search logs and bodies for it).
pub const TOKEN: &str = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// A running stand-in.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`, for `HOMELINE_TWILIO_API_BASE`.
    pub base: String,
    /// How many requests it has answered.
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Serves the account `sid` for `token` until dropped.
    pub fn start(sid: &'static str, token: &'static str) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (st, rq) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    rq.fetch_add(1, Ordering::SeqCst);
                    answer(s, sid, token);
                }
            }
        });
        StandIn {
            base,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(mut s: TcpStream, sid: &str, token: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
    let authorized = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim() == format!("Basic {basic}")
        });
    let (status, body) = if path == format!("/2010-04-01/Accounts/{sid}.json") && authorized {
        (
            "200 OK",
            format!(
                r#"{{"sid":"{sid}","friendly_name":"Stand-in household","status":"active","type":"Full","uri":"/2010-04-01/Accounts/{sid}.json"}}"#
            ),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#
                .to_string(),
        )
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A base URL where nothing listens (a port bound, then released).
pub fn unreachable_base() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
