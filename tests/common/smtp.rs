//! The real SMTP server of the notification tests: aiosmtpd
//! (`tests/smtp/server.py`) on 127.0.0.1 with STARTTLS (a self-signed
//! certificate for 127.0.0.1 made by openssl) and AUTH. What it received is
//! read back as the summaries its Python `email` parse wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const USER: &str = "pi@home.example";
pub const PASSWORD: &str = "smtp-pass-123";

/// A running SMTP server; killed on drop.
pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts the server on `port` (0: a free one).
    pub fn start(port: u16) -> Smtp {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = if port == 0 {
            super::free_ports(1)
        } else {
            port
        };
        std::fs::create_dir_all(dir.path().join("mail")).expect("mail dir");
        // webpki refuses a self-signed CA as the server's own certificate:
        // a small CA signs a leaf for 127.0.0.1.
        let d = dir.path();
        std::fs::write(
            d.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext");
        let run = |args: &[&str]| {
            let st = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(st.success(), "openssl {args:?}");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=homeline test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        let mut s = Smtp {
            child: None,
            port,
            dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path().join("mail"))
            .arg(self.dir.path().join("cert.pem"))
            .arg(self.dir.path().join("key.pem"))
            .args([USER, PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 tests/smtp/server.py (pip install aiosmtpd)");
        let mut out = child.stdout.take().expect("stdout");
        let mut buf = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut buf).expect("server says ready");
        assert_eq!(&buf, b"ready\n");
        self.child = Some(child);
    }

    /// Stops it (connections are refused until [`Smtp::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and mail directory.
    pub fn resume(&mut self) {
        self.spawn();
    }

    /// The CA file the appliance must trust (`smtp.ca_file`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `PUT /api/system/config` body that points the appliance here.
    pub fn config(&self, password: &str) -> serde_json::Value {
        serde_json::json!({
            "notify": {"email_provider": "smtp"},
            "smtp": {"host": "127.0.0.1", "port": self.port, "security": "starttls",
                     "username": USER, "password": password, "from": "pi@home.example",
                     "ca_file": self.ca_file().to_string_lossy()},
        })
    }

    /// Every message received so far, in order (their JSON summaries).
    pub fn received(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for n in 1.. {
            let p = self.dir.path().join("mail").join(format!("{n}.json"));
            match std::fs::read(&p) {
                Ok(b) => out.push(serde_json::from_slice(&b).expect("summary")),
                Err(_) => break,
            }
        }
        out
    }

    /// Waits until `n` messages arrived.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        super::wait_for(within, || {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "{n} messages within {within:?}; got {}",
                self.received().len()
            )
        })
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}
