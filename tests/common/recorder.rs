//! A tiny HTTP/1.1 server on 127.0.0.1 that records every request and
//! answers what its rule says: the base of the Postmark, Gotify and webhook
//! stand-ins.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// The answer: status and JSON body.
pub type Rule = dyn Fn(&Request) -> (u16, serde_json::Value) + Send + Sync;

/// A running recorder.
pub struct Recorder {
    pub base: String,
    seen: Arc<Mutex<Vec<Request>>>,
    rule: Arc<Mutex<Arc<Rule>>>,
}

impl Recorder {
    pub fn start(
        rule: impl Fn(&Request) -> (u16, serde_json::Value) + Send + Sync + 'static,
    ) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Mutex<Arc<Rule>>> = Arc::new(Mutex::new(Arc::new(rule)));
        let (s, r) = (seen.clone(), rule.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    let req = Request {
                        method,
                        path,
                        headers,
                        body,
                    };
                    let rule = r.lock().unwrap().clone();
                    let (status, answer) = rule(&req);
                    s.lock().unwrap().push(req);
                    let text = answer.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                });
            }
        });
        Recorder { base, seen, rule }
    }

    /// Changes the answers from now on.
    pub fn answer(
        &self,
        rule: impl Fn(&Request) -> (u16, serde_json::Value) + Send + Sync + 'static,
    ) {
        *self.rule.lock().unwrap() = Arc::new(rule);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits for `n` requests.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        super::wait_for(within, || {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "{n} requests within {within:?}; got {}",
                self.requests().len()
            )
        })
    }
}
