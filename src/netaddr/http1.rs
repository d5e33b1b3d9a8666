//! Just enough HTTP/1.1 for a router on the LAN (UPnP description and SOAP
//! control): one request per connection, a time limit for the whole
//! exchange, a size limit on the answer. Plain HTTP only: that is what
//! UPnP speaks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::NetError;

/// The largest answer read (a device description is a few kilobytes).
const MAX_ANSWER: usize = 256 * 1024;

/// An `http://host:port/path` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port` (port 80 added when missing).
    pub authority: String,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses an absolute `http://` URL.
    pub fn parse(url: &str) -> Result<Url, NetError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| NetError::Refused(format!("not an http:// URL: {url}")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(NetError::Refused(format!("no host in {url}")));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Url {
            authority,
            path: path.to_string(),
        })
    }

    /// `reference` (absolute, or a path) resolved against this URL.
    pub fn join(&self, reference: &str) -> Result<Url, NetError> {
        if reference.starts_with("http://") {
            return Url::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_string()
        } else {
            let dir = self.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            format!("{dir}/{reference}")
        };
        Ok(Url {
            authority: self.authority.clone(),
            path,
        })
    }
}

/// An answer: the status and the body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body (de-chunked).
    pub body: String,
}

/// Sends one request and reads the whole answer within `limit`.
pub async fn exchange(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &str,
    limit: Duration,
) -> Result<Answer, NetError> {
    tokio::time::timeout(limit, exchange_inner(method, url, headers, body))
        .await
        .map_err(|_| {
            NetError::NoAnswer(format!("no answer from http://{} in time", url.authority))
        })?
}

async fn exchange_inner(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Answer, NetError> {
    let mut stream = TcpStream::connect(&url.authority)
        .await
        .map_err(|e| NetError::Unreachable(format!("cannot connect to {}: {e}", url.authority)))?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: homeline/{} UPnP/1.1\r\nContent-Length: {}\r\n",
        url.path,
        url.authority,
        crate::VERSION,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let io =
        |e: std::io::Error| NetError::Unreachable(format!("talking to {}: {e}", url.authority));
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_ANSWER {
            return Err(NetError::Refused("the router's answer is too large".into()));
        }
    }
    parse_answer(&raw)
}

/// Reads a full HTTP/1.x answer (Content-Length, chunked or until close).
pub fn parse_answer(raw: &[u8]) -> Result<Answer, NetError> {
    let bad = || NetError::Refused("the router's HTTP answer is malformed".into());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(bad)?;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k == "content-length" {
            if let Ok(n) = v.parse::<usize>() {
                body = &body[..n.min(body.len())];
            }
        }
    }
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
            let size_text = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad())?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size {
                return Err(bad());
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
        out
    } else {
        body.to_vec()
    };
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_join() {
        let u = Url::parse("http://192.168.1.1:5000/rootDesc.xml").expect("url");
        assert_eq!(u.authority, "192.168.1.1:5000");
        assert_eq!(u.path, "/rootDesc.xml");
        assert_eq!(u.join("/ctl/IPConn").expect("j").path, "/ctl/IPConn");
        assert_eq!(u.join("ctl").expect("j").path, "/ctl");
        assert_eq!(Url::parse("http://gw").expect("url").authority, "gw:80");
        assert!(Url::parse("https://gw/").is_err());
    }

    #[test]
    fn answers_are_read_with_length_or_chunks() {
        let a = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello!!").expect("a");
        assert_eq!((a.status, a.body.as_str()), (200, "hello"));
        let c = parse_answer(
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .expect("c");
        assert_eq!((c.status, c.body.as_str()), (500, "abcde"));
        assert!(parse_answer(b"garbage").is_err());
    }
}
