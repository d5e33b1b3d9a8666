//! Pebble (Debian's `pebble`, a real ACME server for tests) on loopback,
//! with `pebble-challtestsrv` as its DNS server answering 127.0.0.1 for
//! every name, so the HTTP-01 validation reaches the appliance under test.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::{free_ports, wait_for};

/// Pebble's addresses and its own HTTPS certificate, chosen before it
/// starts (the appliance needs the directory URL and the bundle at startup,
/// Pebble needs the appliance's HTTP port).
pub struct PebblePlan {
    pub dir: tempfile::TempDir,
    /// The ACME directory URL.
    pub directory: String,
    /// The PEM file that lets a client trust Pebble's own HTTPS API.
    pub ca_bundle: PathBuf,
    listen: u16,
    management: u16,
    dns: u16,
    dns_mgmt: u16,
}

/// A running Pebble and its DNS.
pub struct Pebble {
    pebble: Child,
    dns: Child,
    pub plan: PebblePlan,
}

/// How Pebble validates and issues.
pub struct PebbleOptions {
    /// The port Pebble's VA connects to for HTTP-01 (the appliance's plain
    /// HTTP listener, or a closed port to make validation fail).
    pub http_port: u16,
    /// Certificate lifetime in seconds (Pebble's default is years).
    pub validity_secs: Option<u64>,
}

impl PebblePlan {
    pub fn new() -> PebblePlan {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = free_ports(4);
        // Pebble's own HTTPS certificate (for its API), trusted by the
        // appliance through acme.ca_bundle.
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("pebble's cert");
        std::fs::write(dir.path().join("pebble.crt"), cert.pem()).expect("write");
        std::fs::write(dir.path().join("pebble.key"), key.serialize_pem()).expect("write");
        PebblePlan {
            directory: format!("https://127.0.0.1:{base}/dir"),
            ca_bundle: dir.path().join("pebble.crt"),
            listen: base,
            management: base + 1,
            dns: base + 2,
            dns_mgmt: base + 3,
            dir,
        }
    }

    /// The appliance's environment pointing at this CA.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOMELINE_ACME_DIRECTORY_URL".into(), self.directory.clone()),
            (
                "HOMELINE_ACME_CA_BUNDLE".into(),
                self.ca_bundle.display().to_string(),
            ),
        ]
    }

    pub fn start(self, opts: PebbleOptions) -> Pebble {
        let dir = self.dir.path();
        let mut config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.listen),
            "managementListenAddress": format!("127.0.0.1:{}", self.management),
            "certificate": dir.join("pebble.crt"),
            "privateKey": dir.join("pebble.key"),
            "httpPort": opts.http_port,
            "tlsPort": 1,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(v) = opts.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let dns_child = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{}", self.dns)])
            .args(["-management", &format!("127.0.0.1:{}", self.dns_mgmt)])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("start pebble-challtestsrv (apt-get install pebble)");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start pebble (apt-get install pebble)");
        let (listen, management) = (self.listen, self.management);
        let up = wait_for(Duration::from_secs(10), || {
            (TcpStream::connect(("127.0.0.1", listen)).is_ok()
                && TcpStream::connect(("127.0.0.1", management)).is_ok())
            .then_some(())
        });
        let p = Pebble {
            pebble,
            dns: dns_child,
            plan: self,
        };
        assert!(up.is_some(), "pebble did not start: {}", p.log());
        p
    }
}

impl Pebble {
    /// Pebble's log, for failure messages.
    pub fn log(&self) -> String {
        let read =
            |n: &str| std::fs::read_to_string(self.plan.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", read("pebble.log"), read("pebble.err"))
    }

    /// The root that signs what Pebble issues (`/roots/0` of its
    /// management API; it changes with every Pebble run).
    pub fn issuing_root(&self) -> rustls_pki_types::CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject;
        let pem = std::fs::read(&self.plan.ca_bundle).expect("bundle");
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            )
            .build()
            .into();
        let body = agent
            .get(&format!(
                "https://127.0.0.1:{}/roots/0",
                self.plan.management
            ))
            .call()
            .expect("pebble's management API")
            .body_mut()
            .read_to_vec()
            .expect("root");
        rustls_pki_types::CertificateDer::from_pem_slice(&body).expect("a PEM root")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.pebble.kill();
        let _ = self.pebble.wait();
        let _ = self.dns.kill();
        let _ = self.dns.wait();
    }
}

/// What a TLS server at `addr` presents for `name`, verified against `root`.
pub struct Handshake {
    pub leaf: Vec<u8>,
    pub stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

/// Connects with SNI `name`, trusting only `root`; panics on a failed
/// verification (a self-signed certificate, or a wrong name).
pub fn tls_connect(
    addr: std::net::SocketAddr,
    name: &str,
    root: &rustls_pki_types::CertificateDer<'static>,
    alpn: &[&[u8]],
) -> Result<Handshake, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server_name =
        rustls_pki_types::ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let conn =
        rustls::ClientConnection::new(Arc::new(config), server_name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    let leaf = stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no certificate")?;
    Ok(Handshake { leaf, stream })
}
