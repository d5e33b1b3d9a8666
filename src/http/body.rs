//! Response bodies: whole (every JSON answer) or streamed (server-sent
//! events, the call-history CSV export).
//!
//! Handlers keep returning `Response<Full<Bytes>>`; one that streams attaches
//! a [`Streamed`] receiver to its response with [`streamed`], and the server
//! sends what arrives on it as the body (chunked) until the sender is dropped.
//! A producer is never blocked by a slow client unless it chooses to be: it
//! owns the bounded channel and decides between `send().await` (back
//! pressure, the export) and `try_send` (drop the client, the event stream).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::Response;
use tokio::sync::{mpsc, Notify};

/// The body of every response the server sends.
#[derive(Debug)]
pub enum Body {
    /// Known in full.
    Full(Full<Bytes>),
    /// Chunks as a producer sends them; ends when it drops its sender.
    Stream(mpsc::Receiver<Bytes>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full).poll_frame(cx),
            Body::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// A response extension carrying the receiver of a streamed body
/// (extensions must be `Clone`, hence the shared slot).
#[derive(Clone, Debug)]
pub struct Streamed(Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>);

/// Marks `resp` to be sent with the chunks of `rx` as its body (its own
/// body is ignored).
pub fn streamed(
    mut resp: Response<Full<Bytes>>,
    rx: mpsc::Receiver<Bytes>,
) -> Response<Full<Bytes>> {
    resp.extensions_mut()
        .insert(Streamed(Arc::new(Mutex::new(Some(rx)))));
    resp
}

/// The response as sent: streamed if a handler attached a receiver (and
/// the request was not a HEAD), whole otherwise.
pub fn into_sent(resp: Response<Full<Bytes>>, head: bool) -> Response<Body> {
    let (mut parts, full) = resp.into_parts();
    let stream = parts
        .extensions
        .remove::<Streamed>()
        .and_then(|s| s.0.lock().ok().and_then(|mut slot| slot.take()));
    match stream {
        Some(rx) if !head => Response::from_parts(parts, Body::Stream(rx)),
        _ => Response::from_parts(parts, Body::Full(full)),
    }
}

/// Lets a streaming producer cut its client's connection at once (a client
/// that stopped reading would otherwise hold it, and a connection slot,
/// for as long as TCP keeps a zero window open).
#[derive(Clone, Debug, Default)]
pub struct Connection {
    cut: Arc<Notify>,
}

impl Connection {
    /// Closes the connection (the server drops it without a goodbye).
    pub fn cut(&self) {
        self.cut.notify_one();
    }

    /// Resolves once [`Connection::cut`] was called.
    pub async fn cut_off(&self) {
        self.cut.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn streamed_responses_send_what_arrives_until_the_sender_goes() {
        let (tx, rx) = mpsc::channel(2);
        let resp = streamed(Response::new(Full::new(Bytes::from_static(b"x"))), rx);
        let sent = into_sent(resp, false);
        tx.send(Bytes::from_static(b"a")).await.expect("send");
        tx.send(Bytes::from_static(b"b")).await.expect("send");
        drop(tx);
        let body = sent.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"ab");

        let (_tx, rx) = mpsc::channel(1);
        let head = into_sent(streamed(Response::new(Full::new(Bytes::new())), rx), true);
        assert!(matches!(head.body(), Body::Full(_)), "HEAD streams nothing");
        let plain = into_sent(Response::new(Full::new(Bytes::from_static(b"{}"))), false);
        assert!(plain.body().is_end_stream() || matches!(plain.body(), Body::Full(_)));
    }
}
