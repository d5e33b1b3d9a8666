//! Transports: UDP and TCP on one address (RFC 3261 §18), the only SIP code
//! that touches sockets.
//!
//! Incoming bytes are framed and parsed here and handed up once as
//! [`Received`]. Requests get `received`/`rport` stamped into their top Via
//! (RFC 3581) so responses find NATed phones. TCP connections are kept in a
//! table by peer address and reused for responses and for requests to that
//! peer; a CRLF-CRLF ping is answered with CRLF (RFC 5626 §3.5.1).
//!
//! Back-pressure: the queue to the upper layer is bounded; when it is full a
//! UDP datagram is dropped (a flood never blocks the socket reader) and a TCP
//! reader waits (slowing only that peer).
//!
//! The endpoint reads UDP itself ([`Transport::bind_with_udp_receiver`],
//! [`UdpReceiver`]): a datagram is then received, parsed and answered on one
//! task, with no queue and no task wake-up between the socket and the SIP
//! loop, and a burst is drained in one go. There the kernel's socket buffer
//! is the bounded queue: under a flood the kernel drops what the loop cannot
//! take.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::message::{
    parse_datagram_with_via, parse_stream, Framing, HeaderName, Message, ParseError, Request, Via,
    MAX_MESSAGE_BYTES,
};

/// Which transport a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Protocol {
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }

    /// Whether the transport retransmits for us.
    pub fn reliable(self) -> bool {
        !matches!(self, Protocol::Udp)
    }
}

/// A message (or why it could not be read) and where it came from.
#[derive(Debug)]
pub struct Received {
    /// The parsed message, or the parse error with the reply it deserves.
    pub message: Result<Message, ParseError>,
    /// The peer's address (the packet's source, not what the Via claims).
    pub source: SocketAddr,
    /// The transport it arrived on.
    pub protocol: Protocol,
}

/// Reads, frames and parses datagrams from the UDP socket for one owner
/// (the SIP loop), with one reusable buffer.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: Arc<UdpSocket>,
    buf: Box<[u8]>,
}

impl UdpReceiver {
    fn new(socket: Arc<UdpSocket>) -> Self {
        Self {
            socket,
            buf: vec![0u8; MAX_MESSAGE_BYTES + 1].into_boxed_slice(),
        }
    }

    /// Waits for the next datagram (CRLF keep-alives are skipped). Cancel
    /// safe: a datagram is only taken off the socket by a completed call.
    pub async fn recv(&mut self) -> Received {
        loop {
            match self.socket.recv_from(&mut self.buf).await {
                Ok((n, source)) => {
                    if let Some(r) = self.framed(n, source) {
                        return r;
                    }
                }
                // ICMP port unreachable surfaces here on Linux; keep going.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
        }
    }

    /// The next datagram already waiting in the socket, without waiting;
    /// `None` when there is none.
    pub fn try_recv(&mut self) -> Option<Received> {
        // A few errors (ICMP reports) may be queued before a datagram.
        for _ in 0..8 {
            match self.socket.try_recv_from(&mut self.buf) {
                Ok((n, source)) => {
                    if let Some(r) = self.framed(n, source) {
                        return Some(r);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            }
        }
        None
    }

    fn framed(&self, n: usize, source: SocketAddr) -> Option<Received> {
        let data = &self.buf[..n];
        if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return None; // keep-alive
        }
        Some(Received {
            message: parse_datagram_with_via(data).map(|(m, top)| match (m, top) {
                (Message::Request(mut req), Some(top)) => {
                    stamp_via(&mut req, Some(top), source);
                    Message::Request(req)
                }
                (m, _) => stamp(m, source),
            }),
            source,
            protocol: Protocol::Udp,
        })
    }
}

/// Idle TCP connections are closed after this.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// At most this many TCP/TLS connections at once.
pub const MAX_TCP_CONNECTIONS: usize = 512;
/// A TLS client must finish its handshake within this.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to listen on.
#[derive(Clone)]
pub struct Listen {
    /// UDP and TCP on one address; `None` in TLS-only mode.
    pub plain: Option<SocketAddr>,
    /// TLS, with its server configuration.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
}

/// The bound sockets and the table of live stream connections.
#[derive(Debug)]
pub struct Transport {
    udp: Option<Arc<UdpSocket>>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    conns: Mutex<HashMap<SocketAddr, (Protocol, mpsc::Sender<Bytes>)>>,
    up: mpsc::Sender<Received>,
    stop: watch::Receiver<bool>,
}

impl Transport {
    /// Binds what `listen` asks for (UDP and TCP share a port; with port 0,
    /// TCP takes the port UDP got) and starts the readers. Received messages
    /// go to `up`.
    pub async fn bind(
        listen: Listen,
        up: mpsc::Sender<Received>,
        stop: watch::Receiver<bool>,
    ) -> io::Result<Arc<Transport>> {
        let (transport, udp) = Self::bind_with_udp_receiver(listen, up, stop).await?;
        if let Some(udp) = udp {
            tokio::spawn(transport.clone().udp_loop(udp));
        }
        Ok(transport)
    }

    /// [`Transport::bind`], except that UDP datagrams are not sent to `up`:
    /// the caller reads them from the returned [`UdpReceiver`] (none in
    /// TLS-only mode). TCP and TLS messages still go to `up`.
    pub async fn bind_with_udp_receiver(
        listen: Listen,
        up: mpsc::Sender<Received>,
        stop: watch::Receiver<bool>,
    ) -> io::Result<(Arc<Transport>, Option<UdpReceiver>)> {
        let (udp, tcp) = match listen.plain {
            Some(addr) => {
                let (u, t) = bind_pair(addr).await?;
                (Some(u), Some(t))
            }
            None => (None, None),
        };
        let tls = match &listen.tls {
            Some((addr, config)) => Some((
                TcpListener::bind(addr).await?,
                tokio_rustls::TlsAcceptor::from(config.clone()),
            )),
            None => None,
        };
        let transport = Arc::new(Transport {
            udp_addr: udp.as_ref().map(UdpSocket::local_addr).transpose()?,
            tcp_addr: tcp.as_ref().map(TcpListener::local_addr).transpose()?,
            tls_addr: tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
            udp: udp.map(Arc::new),
            conns: Mutex::new(HashMap::new()),
            up,
            stop,
        });
        let receiver = transport.udp.clone().map(UdpReceiver::new);
        if let Some(tcp) = tcp {
            tokio::spawn(transport.clone().accept_loop(tcp, None));
        }
        if let Some((listener, acceptor)) = tls {
            tokio::spawn(transport.clone().accept_loop(listener, Some(acceptor)));
        }
        Ok((transport, receiver))
    }

    /// The bound UDP address (none in TLS-only mode).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The bound TCP address (none in TLS-only mode).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The bound TLS address, if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Sends bytes to `dest`. Over TCP an open connection is reused, else one
    /// is opened; over TLS only an open connection can be used (phones
    /// connect to us).
    pub async fn send(
        self: &Arc<Self>,
        protocol: Protocol,
        dest: SocketAddr,
        bytes: Bytes,
    ) -> io::Result<()> {
        match protocol {
            Protocol::Udp => match &self.udp {
                Some(udp) => udp.send_to(&bytes, dest).await.map(|_| ()),
                None => Err(io::Error::other("UDP is off (TLS-only mode)")),
            },
            Protocol::Tcp | Protocol::Tls => {
                let existing = self
                    .conns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&dest)
                    .map(|(_, tx)| tx.clone());
                let tx = match (existing, protocol) {
                    (Some(tx), _) => tx,
                    (None, Protocol::Tcp) if self.tcp_addr.is_some() => self.connect(dest).await?,
                    (None, _) => {
                        return Err(io::Error::other(format!(
                            "no open {} connection to {dest}",
                            protocol.via_token()
                        )))
                    }
                };
                tx.try_send(bytes)
                    .map_err(|e| io::Error::other(format!("connection to {dest}: {e}")))
            }
        }
    }

    async fn connect(self: &Arc<Self>, dest: SocketAddr) -> io::Result<mpsc::Sender<Bytes>> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(dest))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {dest}"))
            })??;
        let _ = stream.set_nodelay(true);
        Ok(self.adopt(stream, dest, Protocol::Tcp))
    }

    fn forget(&self, peer: SocketAddr) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer);
    }

    /// Number of open TCP and TLS connections.
    pub fn stream_connections(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Hands UDP datagrams to `up` (for users of [`Transport::bind`]).
    async fn udp_loop(self: Arc<Self>, mut udp: UdpReceiver) {
        let (mut dropped, mut last_report) =
            (0u64, std::time::Instant::now() - Duration::from_secs(2));
        let stop = stopped(self.stop.clone());
        tokio::pin!(stop);
        loop {
            let received = tokio::select! {
                _ = &mut stop => return,
                r = udp.recv() => r,
            };
            if self.up.try_send(received).is_err() {
                // One line per second at most: under overload a line per
                // datagram would itself flood the log (and the SD card).
                dropped += 1;
                if last_report.elapsed() >= Duration::from_secs(1) {
                    tracing::warn!(dropped, "SIP input queue full; UDP datagrams dropped");
                    dropped = 0;
                    last_report = std::time::Instant::now();
                }
            }
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let stop = stopped(self.stop.clone());
        tokio::pin!(stop);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut stop => return,
                r = listener.accept() => match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "SIP stream accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if self.stream_connections() >= MAX_TCP_CONNECTIONS {
                tracing::warn!(%peer, "too many SIP stream connections; refusing");
                continue;
            }
            let _ = stream.set_nodelay(true);
            match &tls {
                None => drop(self.adopt(stream, peer, Protocol::Tcp)),
                Some(acceptor) => {
                    // The handshake runs in its own task so a slow client
                    // cannot hold up the accept loop.
                    let (me, acceptor) = (self.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => drop(me.adopt(tls_stream, peer, Protocol::Tls)),
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    }

    /// Registers a connection (accepted or opened by us, plain or TLS) and
    /// starts its reader and writer; the table entry goes when the reader ends.
    fn adopt<S>(
        self: &Arc<Self>,
        stream: S,
        peer: SocketAddr,
        protocol: Protocol,
    ) -> mpsc::Sender<Bytes>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, (protocol, tx.clone()));
        let (reader, writer) = tokio::io::split(stream);
        tokio::spawn(write_loop(writer, rx));
        let me = self.clone();
        let up = self.up.clone();
        let stop = self.stop.clone();
        let pong = tx.clone();
        tokio::spawn(async move {
            read_stream(reader, peer, protocol, pong, up, stop).await;
            me.forget(peer);
        });
        tx
    }
}

async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Bytes>,
) {
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = writer.write_all(&bytes).await {
            tracing::debug!(error = %e, "TCP write failed");
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_stream<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    peer: SocketAddr,
    protocol: Protocol,
    pong: mpsc::Sender<Bytes>,
    up: mpsc::Sender<Received>,
    stop: watch::Receiver<bool>,
) {
    let stop = stopped(stop);
    tokio::pin!(stop);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Drain every complete message in the buffer.
        loop {
            match parse_stream(&buf) {
                Framing::Incomplete => break,
                Framing::KeepAlive { consumed, ping } => {
                    buf.drain(..consumed);
                    if ping {
                        let _ = pong.try_send(Bytes::from_static(b"\r\n"));
                    }
                }
                Framing::Message { result, consumed } => {
                    buf.drain(..consumed.min(buf.len()));
                    let fatal = result.as_ref().err().is_some_and(|e| e.fatal_framing);
                    let message = result.map(|m| stamp(m, peer));
                    if up
                        .send(Received {
                            message,
                            source: peer,
                            protocol,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if fatal {
                        // Framing is lost; give the error reply a moment, then close.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return;
                    }
                }
            }
        }
        let n = tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(TCP_IDLE_TIMEOUT) => return,
            r = reader.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_MESSAGE_BYTES * 2 {
            return;
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Binds UDP then TCP on the same port; with port 0 the pair is retried
/// until both get the same free port.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        let mut tcp_addr = addr;
        tcp_addr.set_port(udp.local_addr()?.port());
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free port for both UDP and TCP on {}", addr.ip()),
    ))
}

/// RFC 3581 / RFC 3261 §18.2.1: write `received` (and `rport`) into the top
/// Via of a request so the response can follow the packet's real path.
pub fn stamp(msg: Message, source: SocketAddr) -> Message {
    match msg {
        Message::Request(mut req) => {
            stamp_via(&mut req, None, source);
            Message::Request(req)
        }
        other => other,
    }
}

/// Stamps the top Via; `parsed` is that Via as the parser's validator
/// already read it (`None`: parse it here).
fn stamp_via(req: &mut Request, parsed: Option<Via>, source: SocketAddr) {
    for (name, line) in req.headers.iter_mut() {
        if *name != HeaderName::Via {
            continue;
        }
        let values = super::message::split_list(line);
        let Some(mut top) = parsed.or_else(|| values.first().and_then(|v| Via::parse(v))) else {
            return;
        };
        let ip = match source.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let wants_rport = top.params.get("rport").is_some();
        if wants_rport {
            top.params.set("rport", Some(source.port().to_string()));
        }
        if wants_rport || !top.host.eq_ignore_ascii_case(&ip) {
            top.params.set(
                "received",
                Some(ip.trim_start_matches('[').trim_end_matches(']').to_string()),
            );
        }
        let mut rebuilt = top.to_value();
        for rest in &values[1..] {
            rebuilt.push_str(", ");
            rebuilt.push_str(rest);
        }
        *line = rebuilt;
        return;
    }
}

/// Where a response to a request goes (RFC 3261 §18.2.2 with RFC 3581):
/// over a reliable transport, back to the connection's peer; over UDP, to the
/// packet's source address (which is what `received` records) at the
/// `rport`, else the Via port, else 5060. The IP never comes from the
/// message, so a forged or malformed Via cannot aim an answer anywhere else
/// and no name is ever resolved.
pub fn response_destination(top_via: &str, source: SocketAddr, protocol: Protocol) -> SocketAddr {
    if protocol.reliable() {
        return source;
    }
    match Via::parse(top_via) {
        Some(via) => response_destination_of(&via, source, protocol),
        None => source,
    }
}

/// [`response_destination`] for a top Via already parsed.
pub fn response_destination_of(via: &Via, source: SocketAddr, protocol: Protocol) -> SocketAddr {
    if protocol.reliable() {
        return source;
    }
    let port = match via.params.get("rport") {
        Some(Some(p)) => p.parse().unwrap_or(source.port()),
        Some(None) => source.port(),
        None => via.port.unwrap_or(5060),
    };
    SocketAddr::new(source.ip(), port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::parse_datagram;

    fn options(via: &str) -> Request {
        let raw = format!(
            "OPTIONS sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match parse_datagram(raw.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_datagram_is_stamped_from_the_validators_via_as_from_a_fresh_parse() {
        let src: SocketAddr = "198.51.100.7:40123".parse().expect("addr");
        for via in [
            "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1, SIP/2.0/UDP p",
            "SIP / 2.0 / UDP 198.51.100.7;branch=z9hG4bK2",
            "SIP/2.0/UDP [2001:db8::1]:5070;BRANCH=z9hG4bK3;rport=9",
        ] {
            let raw = format!(
                "OPTIONS sip:h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let (Ok((Message::Request(mut fast), Some(top))), Ok(slow)) = (
                parse_datagram_with_via(raw.as_bytes()),
                parse_datagram(raw.as_bytes()),
            ) else {
                panic!("{via} parses")
            };
            stamp_via(&mut fast, Some(top), src);
            assert_eq!(Message::Request(fast), stamp(slow, src), "{via}");
        }
    }

    #[test]
    fn rfc3581_rport_and_received() {
        let src: SocketAddr = "198.51.100.7:40123".parse().expect("addr");
        let Message::Request(r) = stamp(
            Message::Request(options(
                "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1, SIP/2.0/UDP p",
            )),
            src,
        ) else {
            panic!()
        };
        let top = r.headers.values(&HeaderName::Via)[0].to_string();
        assert_eq!(
            top,
            "SIP/2.0/UDP 10.0.0.5:5060;rport=40123;branch=z9hG4bK1;received=198.51.100.7"
        );
        assert_eq!(
            r.headers.values(&HeaderName::Via).len(),
            2,
            "other Via values kept"
        );
        assert_eq!(
            response_destination(&top, src, Protocol::Udp),
            src,
            "NATed phone: back to the packet's source"
        );

        let Message::Request(r) = stamp(
            Message::Request(options("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1")),
            src,
        ) else {
            panic!()
        };
        let top = r.headers.values(&HeaderName::Via)[0].to_string();
        assert!(top.ends_with(";received=198.51.100.7"), "{top}");
        assert_eq!(
            response_destination(&top, src, Protocol::Udp),
            "198.51.100.7:5070".parse().expect("addr"),
            "no rport: the Via port"
        );

        let same: SocketAddr = "10.0.0.5:5060".parse().expect("addr");
        let Message::Request(r) = stamp(
            Message::Request(options("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1")),
            same,
        ) else {
            panic!()
        };
        assert_eq!(
            r.headers.values(&HeaderName::Via)[0],
            "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1",
            "no received when it matches"
        );
        assert_eq!(
            response_destination(r.headers.values(&HeaderName::Via)[0], same, Protocol::Udp),
            same
        );
        assert_eq!(response_destination("garbage", src, Protocol::Tcp), src);
        assert_eq!(
            response_destination(
                "SIP/2.0/UDP 192.0.2.53:5062;branch=z9hG4bK1",
                src,
                Protocol::Udp
            ),
            "198.51.100.7:5062".parse().expect("addr"),
            "a Via naming another host never redirects the answer"
        );
    }

    #[tokio::test]
    async fn udp_and_tcp_share_a_port_and_tcp_answers_pings() {
        let (tx, mut rx) = mpsc::channel(8);
        let (_stop_tx, stop) = watch::channel(false);
        let listen = Listen {
            plain: Some("127.0.0.1:0".parse().expect("addr")),
            tls: None,
        };
        let t = Transport::bind(listen, tx, stop).await.expect("bind");
        let (udp_addr, tcp_addr) = (t.udp_addr().expect("udp"), t.tcp_addr().expect("tcp"));
        assert_eq!(udp_addr.port(), tcp_addr.port());
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let msg = options("SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bK9").to_bytes();
        client.send_to(&msg, udp_addr).await.expect("send");
        let got = rx.recv().await.expect("received");
        assert_eq!(
            (got.protocol, got.source),
            (Protocol::Udp, client.local_addr().expect("addr"))
        );
        assert!(got.message.is_ok());

        let mut tcp = TcpStream::connect(tcp_addr).await.expect("connect");
        tcp.write_all(b"\r\n\r\n").await.expect("ping");
        let mut pong = [0u8; 2];
        tcp.read_exact(&mut pong).await.expect("pong");
        assert_eq!(&pong, b"\r\n");
        let mut two = msg.clone();
        two.extend_from_slice(&msg);
        tcp.write_all(&two).await.expect("pipelined");
        for _ in 0..2 {
            let got = rx.recv().await.expect("received");
            assert_eq!(got.protocol, Protocol::Tcp);
            let peer = got.source;
            t.send(
                Protocol::Tcp,
                peer,
                Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"),
            )
            .await
            .expect("reuse connection");
        }
        let mut back = [0u8; 18];
        tcp.read_exact(&mut back)
            .await
            .expect("response on the same connection");
        assert_eq!(&back, b"SIP/2.0 200 OK\r\n\r\n");
    }
}
