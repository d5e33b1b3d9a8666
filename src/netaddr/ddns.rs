//! Dynamic DNS with DuckDNS (free): its documented update API
//! `GET https://www.duckdns.org/update?domains=<sub>&token=<token>&ip=<ip>`
//! answers `OK` or `KO`. The base URL is the setting `net.duckdns_url`, so
//! the tests use a stand-in on loopback.

use std::net::IpAddr;
use std::time::Duration;

use super::NetError;

/// The zone DuckDNS names live in.
pub const DUCKDNS_ZONE: &str = "duckdns.org";
/// Time limit of one update.
const UPDATE_LIMIT: Duration = Duration::from_secs(20);

/// The DuckDNS subdomain of `name` (`myhome` or `myhome.duckdns.org`).
pub fn subdomain(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let sub = name
        .strip_suffix(&format!(".{DUCKDNS_ZONE}"))
        .unwrap_or(&name)
        .to_string();
    let valid = !sub.is_empty()
        && sub.len() <= 63
        && !sub.starts_with('-')
        && !sub.ends_with('-')
        && sub
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(sub)
    } else {
        Err("expected a DuckDNS name: letters, digits and hyphens, e.g. myhome or myhome.duckdns.org".into())
    }
}

/// The full name of a subdomain.
pub fn full_name(sub: &str) -> String {
    format!("{sub}.{DUCKDNS_ZONE}")
}

/// The update URL (the token is in it: never log it). Without `ip`,
/// DuckDNS takes the address the request comes from (its documented
/// behaviour), which is the public one when no proxy is in the way.
pub fn update_url(base: &str, sub: &str, token: &str, ip: Option<IpAddr>) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut url = format!("{base}?domains={}&token={}", enc(sub), enc(token));
    match ip {
        Some(ip @ IpAddr::V6(_)) => url.push_str(&format!("&ipv6={ip}")),
        Some(ip) => url.push_str(&format!("&ip={ip}")),
        None => url.push_str("&ip="),
    }
    url
}

/// Tells DuckDNS that `sub` points at `ip` (or at the request's source).
pub async fn update(
    base: &str,
    sub: &str,
    token: &str,
    ip: Option<IpAddr>,
) -> Result<(), NetError> {
    let url = update_url(base, sub, token, ip);
    let outcome = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(UPDATE_LIMIT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("homeline/{}", crate::VERSION))
            .build()
            .into();
        let mut resp = agent.get(&url).call().map_err(|e| {
            // ureq's message may contain the URL (and so the token): keep
            // only its kind.
            NetError::Unreachable(match e {
                ureq::Error::Timeout(_) => "DuckDNS did not answer in time".to_string(),
                ureq::Error::HostNotFound => "cannot resolve DuckDNS's address".to_string(),
                _ => "cannot reach DuckDNS".to_string(),
            })
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        Ok::<_, NetError>((status, body))
    })
    .await
    .map_err(|_| NetError::Unreachable("the DuckDNS update task failed".into()))?;
    let (status, body) = outcome?;
    match (status, body.trim()) {
        (200, b) if b.starts_with("OK") => Ok(()),
        (200, b) if b.starts_with("KO") => Err(NetError::Refused(
            "DuckDNS answered KO: the name or the token is wrong".into(),
        )),
        (s, _) => Err(NetError::Refused(format!("DuckDNS answered HTTP {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn names_are_read_with_or_without_the_zone() {
        assert_eq!(subdomain("MyHome.duckdns.org.").as_deref(), Ok("myhome"));
        assert_eq!(subdomain("my-home").as_deref(), Ok("my-home"));
        assert!(subdomain("bad_name").is_err());
        assert!(subdomain("-x").is_err());
        assert!(subdomain("").is_err());
        assert_eq!(full_name("myhome"), "myhome.duckdns.org");
    }

    #[test]
    fn the_update_url_is_duckdns_documented_one() {
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(
            update_url(
                "https://www.duckdns.org/update",
                "myhome",
                "a b&c",
                Some(ip)
            ),
            "https://www.duckdns.org/update?domains=myhome&token=a%20b%26c&ip=203.0.113.9"
        );
        assert_eq!(
            update_url("http://x/update", "myhome", "t", None),
            "http://x/update?domains=myhome&token=t&ip="
        );
    }

    /// A one-shot stand-in answering `body`; returns its URL and the
    /// request line it saw.
    async fn stand_in(body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/update", l.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.expect("read");
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.expect("write");
            req.lines().next().unwrap_or_default().to_string()
        });
        (url, task)
    }

    #[tokio::test]
    async fn ok_updates_and_ko_is_a_clear_refusal() {
        let ip: IpAddr = "203.0.113.9".parse().expect("ip");
        let (url, seen) = stand_in("OK").await;
        update(&url, "myhome", "tok", Some(ip)).await.expect("ok");
        assert_eq!(
            seen.await.expect("line"),
            "GET /update?domains=myhome&token=tok&ip=203.0.113.9 HTTP/1.1"
        );
        let (url, _seen) = stand_in("KO").await;
        let err = update(&url, "myhome", "SECRET-xyz", Some(ip))
            .await
            .expect_err("ko");
        assert!(err.to_string().contains("KO"), "{err}");
        assert!(!err.to_string().contains("SECRET"));
    }
}
