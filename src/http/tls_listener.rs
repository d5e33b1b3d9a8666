//! The HTTPS listener (`http.tls_listen`, 443 on the image): the same routes
//! and handlers as plain HTTP, over TLS with the certificate of the shared
//! [`CertStore`], asked on every handshake so a renewed certificate is
//! served at once. Requests that came through it are HTTPS for cookies
//! (`Secure`) and CSRF; Twilio refuses self-signed certificates, so its
//! webhooks only work here once the ACME certificate is installed.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::ServerState;
use crate::certs::CertStore;
use crate::watchdog::Heartbeat;

/// Serves HTTPS on `listener` until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    store: Arc<CertStore>,
    state: Arc<ServerState>,
    heartbeat: Heartbeat,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), rustls::Error> {
    let config = store.server_config(&[b"http/1.1"])?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    super::serve_on(listener, Some(acceptor), state, heartbeat, shutdown).await;
    Ok(())
}
