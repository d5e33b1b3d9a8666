//! Debian's baresip 1.0 as a headless softphone: a profile from the
//! verified generator in tests/baresip, driven over its ctrl_tcp interface
//! (JSON in netstrings), with what it receives dumped to WAV by sndfile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port with its neighbour free too (baresip also binds
/// SIP/TLS on port + 1), and its ctrl port (port + 1000) free.
pub fn free_port_pair() -> u16 {
    loop {
        let a = super::free_ports(2);
        if super::port_is_free(a + 1000) {
            return a;
        }
    }
}

/// Writes a profile: `user` registering through `registrar` (`host:port`,
/// optionally `;transport=tcp|tls`), sending `source` (`sine:FREQ` or a WAV).
pub fn profile(
    dir: &Path,
    user: &str,
    pass: &str,
    registrar: &str,
    port: u16,
    rtp: &str,
    source: &str,
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/baresip/make_profile.sh");
    let out = Command::new("sh")
        .arg(script)
        .arg(dir)
        .args([
            user,
            pass,
            &port.to_string(),
            rtp,
            source,
            "",
            registrar,
            &(port + 1000).to_string(),
        ])
        .output()
        .expect("make_profile.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails the test with a clear message when baresip is missing.
pub fn require() {
    let which = Command::new("sh")
        .args(["-c", "command -v baresip"])
        .output()
        .expect("sh");
    assert!(
        which.status.success(),
        "baresip is not installed: run `make test-deps`"
    );
}

/// A running baresip.
pub struct Baresip {
    child: Child,
    /// Its profile directory (holds `rec/` and `out.log`).
    pub dir: tempfile::TempDir,
    ctrl: Option<TcpStream>,
    buf: Vec<u8>,
    /// Events seen so far (JSON).
    pub events: Vec<serde_json::Value>,
    ctrl_port: u16,
    token: u32,
}

impl Baresip {
    /// Starts a softphone registering `user` at `registrar`.
    pub fn start(user: &str, pass: &str, registrar: &str, rtp: &str, source: &str) -> Baresip {
        require();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port_pair();
        profile(dir.path(), user, pass, registrar, port, rtp, source);
        let child = Command::new("timeout")
            .args(["60", "baresip", "-4", "-f"])
            .arg(dir.path())
            .args(["-t", "55"])
            .stdin(Stdio::null())
            .stdout(
                std::fs::File::create(dir.path().join("out.log"))
                    .map(Stdio::from)
                    .expect("log"),
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip");
        Baresip {
            child,
            dir,
            ctrl: None,
            buf: Vec::new(),
            events: Vec::new(),
            ctrl_port: port + 1000,
            token: 0,
        }
    }

    fn ctrl(&mut self) -> &mut TcpStream {
        if self.ctrl.is_none() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", self.ctrl_port)) {
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .expect("timeout");
                    self.ctrl = Some(s);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "baresip ctrl_tcp never came up:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.ctrl.as_mut().expect("ctrl")
    }

    /// Sends a command (`dial sip:…`, `hangup`, `hold`, `resume`) and waits
    /// for its response; returns it.
    pub fn command(&mut self, line: &str) -> serde_json::Value {
        self.token += 1;
        let token = self.token.to_string();
        let (cmd, params) = line.split_once(' ').unwrap_or((line, ""));
        let mut msg = serde_json::json!({ "command": cmd, "token": token });
        if !params.is_empty() {
            msg["params"] = params.into();
        }
        let body = msg.to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl().write_all(frame.as_bytes()).expect("ctrl write");
        let want = token.clone();
        self.wait_for(Duration::from_secs(5), move |v| {
            v["response"] == true && v["token"] == want.as_str()
        })
        .unwrap_or_else(|| panic!("no response to {line}"))
    }

    /// Waits for an event of `kind` (`CALL_ESTABLISHED`…), seen before or now.
    pub fn wait_event(&mut self, kind: &str, within: Duration) -> Option<serde_json::Value> {
        if let Some(v) = self.events.iter().find(|e| e["type"] == kind) {
            return Some(v.clone());
        }
        let kind = kind.to_string();
        self.wait_for(within, move |v| {
            v["event"] == true && v["type"] == kind.as_str()
        })
    }

    fn wait_for(
        &mut self,
        within: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            while let Some(v) = self.next_frame() {
                let hit = want(&v);
                if v["event"] == true {
                    self.events.push(v.clone());
                }
                if hit {
                    return Some(v);
                }
            }
            let mut chunk = [0u8; 4096];
            match self.ctrl().read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
        None
    }

    fn next_frame(&mut self) -> Option<serde_json::Value> {
        let colon = self.buf.iter().position(|b| *b == b':')?;
        let n: usize = std::str::from_utf8(&self.buf[..colon]).ok()?.parse().ok()?;
        if self.buf.len() < colon + 1 + n + 1 {
            return None;
        }
        let payload = self.buf[colon + 1..colon + 1 + n].to_vec();
        self.buf.drain(..colon + 1 + n + 1);
        serde_json::from_slice(&payload).ok()
    }

    /// Its console output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    /// The WAV of what it received in its (first) call.
    pub fn received_wav(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path().join("rec"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }

    /// Stops it (its dumps are complete afterwards).
    pub fn stop(&mut self) {
        let _ = self.command_nowait("quit");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn command_nowait(&mut self, cmd: &str) -> std::io::Result<()> {
        let body = serde_json::json!({ "command": cmd, "token": "q" }).to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl().write_all(frame.as_bytes())
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs tests/data/media/tone_check.py: whether `wav` holds `freq` for at
/// least `seconds`; its report either way.
pub fn tone_check(wav: &Path, freq: f64, seconds: f64) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media/tone_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(wav)
        .arg(freq.to_string())
        .args(["--min-seconds", &seconds.to_string()])
        .output()
        .expect("python3");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}
