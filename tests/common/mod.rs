//! Test harness: starts the real `homeline` binary on loopback port 0 with a
//! temporary data dir, waits for `run/ports.json`, and speaks raw HTTP/1.1
//! (with the session cookie and CSRF header the web UI sends, for API calls).

#![allow(dead_code)]

pub mod baresip;
pub mod calls;
pub mod gotify;
pub mod household;
pub mod netns;
pub mod pebble;
pub mod postmark;
pub mod recorder;
pub mod smtp;
pub mod twilio;
pub mod webhook_receiver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_homeline");

/// The binary as a command, with no config file: a developer machine's
/// `/etc/homeline/homeline.conf` must never leak into a test.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HOMELINE_CONFIG_FILE", "");
    cmd
}

/// A running appliance.
pub struct Homeline {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub http: SocketAddr,
    env: Vec<(String, String)>,
    stderr: Option<PathBuf>,
    sip_listen: Option<String>,
}

/// How to start it.
#[derive(Default)]
pub struct Start {
    pub env: Vec<(String, String)>,
    pub dir: Option<tempfile::TempDir>,
    /// Append the server's stderr (its log) to this file instead of
    /// `<data>/server.log`.
    pub stderr: Option<PathBuf>,
    /// SIP listen address (default 127.0.0.1:0).
    pub sip_listen: Option<String>,
}

impl Homeline {
    pub fn start() -> Homeline {
        Self::start_with(Start::default())
    }

    pub fn start_with(opts: Start) -> Homeline {
        let dir = opts
            .dir
            .unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let (child, http) = spawn(
            dir.path(),
            &opts.env,
            opts.stderr.as_deref(),
            opts.sip_listen.as_deref(),
        );
        Homeline {
            child,
            dir,
            http,
            env: opts.env,
            stderr: opts.stderr,
            sip_listen: opts.sip_listen,
        }
    }

    /// Stops the appliance with SIGTERM and starts it again on the same data
    /// dir and environment.
    pub fn restart(&mut self) {
        assert!(self.terminate(Duration::from_secs(15)).success());
        self.respawn();
    }

    /// Kills the appliance with SIGKILL (no shutdown at all) and starts it
    /// again on the same data dir with `env` instead of the old environment.
    pub fn kill9_and_restart(&mut self, env: Vec<(String, String)>) {
        signal(self.child.id(), "KILL");
        wait_exit(&mut self.child, Duration::from_secs(10)).expect("homeline dies on SIGKILL");
        self.env = env;
        self.respawn();
    }

    fn respawn(&mut self) {
        let (child, http) = spawn(
            self.dir.path(),
            &self.env,
            self.stderr.as_deref(),
            self.sip_listen.as_deref(),
        );
        self.child = child;
        self.http = http;
    }

    pub fn get(&self, path: &str) -> Resp {
        request(self.http, "GET", path, &[], b"")
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.http, method, path, headers, body)
    }

    /// An API call as the web UI makes it: JSON body if given, the CSRF
    /// header, and the session cookie if a token is given.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Resp {
        self.call_with(method, path, token, body, &[])
    }

    /// [`Homeline::call`] with extra headers.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let cookie = token.map(|t| format!("homeline_session={t}"));
        let mut headers: Vec<(&str, &str)> = vec![("X-Requested-With", "homeline")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        headers.extend_from_slice(extra);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(self.http, method, path, &headers, body.as_bytes())
    }

    /// Logs in: the session token, or the failed response.
    pub fn login(&self, email: &str, password: &str) -> Result<String, Resp> {
        let r = self.call(
            "POST",
            "/api/auth/login",
            None,
            Some(&serde_json::json!({ "email": email, "password": password })),
        );
        match (r.status, r.session_token()) {
            (200, Some(t)) => Ok(t),
            _ => Err(r),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        signal(self.child.id(), "TERM");
        wait_exit(&mut self.child, within).expect("homeline exits after SIGTERM")
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts the binary on `dir` and waits for its ports file.
fn spawn(
    dir: &Path,
    env: &[(String, String)],
    stderr: Option<&Path>,
    sip_listen: Option<&str>,
) -> (Child, SocketAddr) {
    let ports = dir.join("run/ports.json");
    let _ = std::fs::remove_file(&ports);
    let mut cmd = command();
    cmd.args([
        "run",
        "--http-listen",
        "127.0.0.1:0",
        "--sip-tls-listen",
        "127.0.0.1:0",
        "--log-target",
        "stderr",
    ])
    .arg("--sip-listen")
    .arg(sip_listen.unwrap_or("127.0.0.1:0"))
    .arg("--data-dir")
    .arg(dir)
    .env_remove("NOTIFY_SOCKET")
    .env_remove("WATCHDOG_USEC")
    .env_remove("JOURNAL_STREAM")
    .env("HOMELINE_LOG_LEVEL", "info,homeline::endpoint=debug")
    .stdout(Stdio::null());
    // By default the server's log lands in <data>/server.log, for failure messages.
    let default_log = dir.join("server.log");
    match stderr.or(Some(default_log.as_path())) {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the stderr log");
            cmd.stderr(file);
        }
        None => {
            cmd.stderr(Stdio::null());
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn homeline");
    let http = wait_for(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&ports).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["http"].as_str()?.parse().ok()
    })
    .expect("homeline wrote run/ports.json");
    (child, http)
}

impl Drop for Homeline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    wait_for(within, || child.try_wait().ok().flatten())
}

pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The session token set by a `Set-Cookie: homeline_session=…`, if any.
    pub fn session_token(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .filter_map(|(_, v)| v.strip_prefix("homeline_session="))
            .filter_map(|v| v.split(';').next())
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The body as text (for "contains" checks).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the plan's error format and returns the code.
    pub fn error_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let v = self.json();
        let e = &v["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error.message: {v}"
        );
        assert!(e.get("details").is_some(), "error.details present: {v}");
        e["code"].as_str().expect("error.code").to_string()
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !chunked && (!body.is_empty() || method == "POST" || method == "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write head");
    if chunked {
        for chunk in body.chunks(64 * 1024) {
            let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = s.write_all(chunk);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
    } else {
        // The server may answer (413) and close before reading it all.
        let _ = s.write_all(body);
    }
    parse(&read_answer(&mut s))
}

/// Reads an answer to EOF; an event stream (`GET /api/events`) never ends,
/// so for one only the head and what came with it are read.
fn read_answer(s: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            if head.contains("content-type: text/event-stream") {
                return raw;
            }
        }
    }
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + size]);
        b = &b[pos + 2 + size + 2..];
    }
    out
}

/// A fake systemd `NOTIFY_SOCKET` that records what the service sends.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        NotifySocket {
            path,
            sock,
            _dir: dir,
        }
    }

    /// Every message received within `window`, as `(elapsed, text)`.
    pub fn collect(&self, window: Duration) -> Vec<(Duration, String)> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < window {
            if let Ok(n) = self.sock.recv(&mut buf) {
                out.push((
                    start.elapsed(),
                    String::from_utf8_lossy(&buf[..n]).to_string(),
                ));
            }
        }
        out
    }

    /// Waits until a message containing `needle` arrives.
    pub fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < within {
            if let Ok(n) = self.sock.recv(&mut buf) {
                if String::from_utf8_lossy(&buf[..n]).contains(needle) {
                    return true;
                }
            }
        }
        false
    }
}

/// Creates phones (SIP user name, password) in a data dir before start,
/// sealing the passwords exactly as the application does.
pub fn provision_devices(dir: &Path, devices: &[(&str, &str)]) {
    use homeline::store::devices::{self, DeviceFields, DeviceType, SIP_PASSWORD_CONTEXT};
    let clock: homeline::clock::SharedClock = std::sync::Arc::new(homeline::clock::SystemClock);
    let conn = homeline::app::open_database(dir, &clock).expect("open database");
    let secrets = homeline::secrets::SecretBox::load_or_create(dir).expect("secret key");
    for (username, password) in devices {
        let sealed = secrets
            .seal(SIP_PASSWORD_CONTEXT, password.as_bytes())
            .expect("seal");
        let f = DeviceFields {
            user_id: None,
            name: username,
            username,
            device_type: DeviceType::Softphone,
            recording_enabled: false,
        };
        devices::insert(&conn, &f, &sealed, clock.now()).expect("insert device");
    }
}

impl Homeline {
    /// The SIP address from ports.json (`sip_udp`; TCP shares the port).
    pub fn sip(&self) -> SocketAddr {
        let text = std::fs::read_to_string(self.data().join("run/ports.json")).expect("ports.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["sip_udp"]
            .as_str()
            .expect("sip_udp")
            .parse()
            .expect("addr")
    }
}

/// Runs Debian's sipp (package sip-tester) with a scenario from tests/sipp,
/// in a scratch directory; returns the exit code and its output.
pub fn sipp(target: SocketAddr, scenario: &str, args: &[&str]) -> (i32, String) {
    let which = Command::new("sh")
        .args(["-c", "command -v sipp"])
        .output()
        .expect("sh");
    assert!(
        which.status.success(),
        "sipp is not installed: run `make test-deps` (Debian package sip-tester)"
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    let sf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    // Tests run in parallel: never let two sipps default to port 5060.
    let free_port;
    let mut extra: Vec<&str> = Vec::new();
    if !args.contains(&"-p") {
        free_port = free_udp_port().to_string();
        extra.extend(["-p", free_port.as_str()]);
    }
    let out = Command::new("timeout")
        .arg("30")
        .arg("sipp")
        .arg(target.to_string())
        .arg("-sf")
        .arg(&sf)
        .args([
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-timeout",
            "15s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
        ])
        .args(args)
        .args(&extra)
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir(scratch.path())
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().ends_with("errors.log") {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    (out.status.code().unwrap_or(-1), text)
}

/// Completes the setup wizard with an admin account; returns its session.
pub fn setup_admin(h: &Homeline, email: &str, password: &str) -> String {
    let r = h.call(
        "POST",
        "/api/setup/complete",
        None,
        Some(&serde_json::json!({ "admin": { "email": email, "password": password }, "timezone": "UTC" })),
    );
    assert_eq!(r.status, 201, "setup: {}", String::from_utf8_lossy(&r.body));
    r.session_token().expect("setup logs the admin in")
}

/// A sipp running in the background (a UAS waiting for a call, a UAC
/// with media), in a scratch directory that holds `media/` (the raw
/// G.711 files `rtp_stream` plays, relative to the working directory).
pub struct SippRun {
    child: Child,
    scratch: tempfile::TempDir,
}

impl SippRun {
    /// Starts sipp with `scenario` from tests/sipp; `target` is the
    /// remote address (none for a UAS).
    pub fn spawn(target: Option<SocketAddr>, scenario: &str, args: &[&str]) -> SippRun {
        let scratch = tempfile::tempdir().expect("tempdir");
        let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media");
        std::os::unix::fs::symlink(&media, scratch.path().join("media")).expect("media link");
        let sf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let mut cmd = Command::new("timeout");
        cmd.arg("40").arg("sipp");
        if let Some(t) = target {
            cmd.arg(t.to_string());
        }
        // Tests run in parallel: never let two sipps default to port 5060.
        let port = free_udp_port().to_string();
        if !args.contains(&"-p") {
            cmd.args(["-p", &port]);
        }
        cmd.arg("-sf")
            .arg(&sf)
            .args([
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-m",
                "1",
                "-nostdin",
                "-trace_err",
                "-trace_msg",
                "-timeout",
                "35s",
                "-timeout_error",
            ])
            .args(args)
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("run sipp");
        SippRun { child, scratch }
    }

    /// Waits for sipp to finish; its exit code and output plus its
    /// message and error logs.
    pub fn wait(mut self, within: Duration) -> (i32, String) {
        let status = wait_exit(&mut self.child, within);
        if status.is_none() {
            self.stop();
        }
        let mut text = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut text);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        for entry in std::fs::read_dir(self.scratch.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with("errors.log") || name.ends_with("messages.log") {
                text.push_str(&format!("\n--- {name}\n"));
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        (status.and_then(|s| s.code()).unwrap_or(-1), text)
    }
}

impl SippRun {
    /// Ends sipp: SIGTERM to `timeout`, which passes it on (killing
    /// `timeout` itself would orphan sipp, holding its ports).
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            if wait_exit(&mut self.child, Duration::from_secs(2)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl Drop for SippRun {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ports a test hands to a peer that must know its port in advance come
/// from here: below Linux's ephemeral range (32768–60999), so no socket
/// the kernel numbers itself (a server's `:0` listener, an HTTP client, a
/// peer's helper socket) can take one between the test picking it and the
/// peer binding it. The fixed media ranges the tests name sit below, in
/// 20000–27999.
const DYNAMIC_PORTS: std::ops::Range<u16> = 28000..32000;

/// Next port of [`DYNAMIC_PORTS`] to try; every test of a binary shares it,
/// so two tests never get the same port. Starts at a place that depends on
/// the process id, so a peer left over by the previous test binary is
/// unlikely to sit on the first ports tried (the bind check skips it anyway).
fn next_dynamic(step: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(DYNAMIC_PORTS.end - DYNAMIC_PORTS.start);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 97) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let n = NEXT.fetch_add(u32::from(step), Ordering::Relaxed) % span;
    DYNAMIC_PORTS.start + u16::try_from(n).expect("within the range")
}

/// Whether nothing holds `port` on 127.0.0.1, for UDP and TCP alike.
pub fn port_is_free(port: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `count` consecutive free ports (UDP and TCP) on 127.0.0.1, outside the
/// ephemeral range; returns the first.
pub fn free_ports(count: u16) -> u16 {
    for _ in 0..2000 {
        let first = next_dynamic(count);
        if first + count <= DYNAMIC_PORTS.end && (first..first + count).all(port_is_free) {
            return first;
        }
    }
    panic!("no {count} free consecutive ports in {DYNAMIC_PORTS:?}");
}

/// The names of the embedded migrations (`001_initial_schema`, …), in order:
/// the files of `migrations/`, which build.rs embeds without gaps.
pub fn migration_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// A free UDP port on 127.0.0.1 (for a peer that must know its port in
/// advance), outside the ephemeral range: see [`DYNAMIC_PORTS`].
pub fn free_udp_port() -> u16 {
    free_ports(1)
}

/// The SIP credentials Twilio and Homeline share in the tests.
pub const TRUNK_USER: &str = "homeline-trunk";
/// Its password (the stand-in edge's scenario checks digests against it).
pub const TRUNK_PASSWORD: &str = "twilio-sip-secret";

/// A household in a data dir before start: a user owning `number`, their
/// phones (SIP user, password), and the Twilio SIP credentials.
pub fn provision_household(dir: &Path, number: &str, phones: &[(&str, &str)]) {
    use homeline::store::{config, devices, dids, secrets as sealed, users};
    let clock: homeline::clock::SharedClock = std::sync::Arc::new(homeline::clock::SystemClock);
    let conn = homeline::app::open_database(dir, &clock).expect("open database");
    let secrets = homeline::secrets::SecretBox::load_or_create(dir).expect("secret key");
    let now = clock.now();
    let user = users::insert(
        &conn,
        &users::NewUser {
            email: "gran@home.test",
            display_name: "Gran",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            role: users::Role::User,
        },
        now,
    )
    .expect("user");
    let did = dids::insert(&conn, number, "Home", None, now).expect("did");
    dids::assign(&conn, did, user).expect("assign");
    for (username, password) in phones {
        let s = secrets
            .seal(devices::SIP_PASSWORD_CONTEXT, password.as_bytes())
            .expect("seal");
        let f = devices::DeviceFields {
            user_id: Some(user),
            name: username,
            username,
            device_type: devices::DeviceType::Softphone,
            recording_enabled: false,
        };
        devices::insert(&conn, &f, &s, now).expect("device");
    }
    config::set(&conn, "twilio.sip_username", TRUNK_USER, now).expect("config");
    config::set(&conn, "twilio.sip_domain", "home.sip.twilio.com", now).expect("config");
    let s = secrets
        .seal("twilio.sip_password", TRUNK_PASSWORD.as_bytes())
        .expect("seal");
    sealed::set(&conn, "twilio.sip_password", &s, now).expect("secret");
}

/// Set in the environment of a test re-run inside its own network namespace.
const NETNS_MARK: &str = "HOMELINE_BROWSER_NETNS";

/// Runs `test` again inside `unshare -n` (loopback only) when that is
/// possible and not done yet; returns true when it did (the caller returns).
pub fn rerun_in_private_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_MARK).is_some() {
        return false;
    }
    let is_root = is_root();
    let can = is_root
        && Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !can {
        eprintln!(
            "browser test: not root or no unshare; running without a private network namespace"
        );
        return false;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_MARK, "1")
        .status()
        .expect("unshare");
    assert!(status.success(), "the browser test failed in its namespace");
    true
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
