//! Which DNS servers to ask and how patiently: `resolv.conf(5)`'s
//! `nameserver` lines and its `timeout:`/`attempts:` options, and
//! `hosts(5)`, the file names that never need a server.
//!
//! Both files are read for every lookup (off the SIP loop): a DHCP client
//! rewriting resolv.conf takes effect on the next call without a restart.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// glibc's defaults (resolv.conf(5)).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ATTEMPTS: u32 = 2;
/// glibc reads at most three `nameserver` lines; so do we.
const MAX_SERVERS: usize = 3;

/// The servers and their patience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Where queries go (port 53), in order.
    pub servers: Vec<SocketAddr>,
    /// How long one server is waited for, per attempt.
    pub timeout: Duration,
    /// Rounds over all servers.
    pub attempts: u32,
}

impl ResolvConf {
    /// Reads resolv.conf text; with no usable `nameserver`, the local one
    /// (127.0.0.1, as glibc does).
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (fe80::1%eth0) keeps only the address.
                    let ip = words
                        .next()
                        .map(|w| w.split('%').next().unwrap_or(w))
                        .and_then(|w| w.parse::<IpAddr>().ok());
                    if let Some(ip) = ip {
                        if conf.servers.len() < MAX_SERVERS {
                            conf.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                Some("options") => {
                    for opt in words {
                        if let Some(n) = opt.strip_prefix("timeout:") {
                            if let Ok(n) = n.parse::<u64>() {
                                conf.timeout = Duration::from_secs(n.clamp(1, 30));
                            }
                        } else if let Some(n) = opt.strip_prefix("attempts:") {
                            if let Ok(n) = n.parse::<u32>() {
                                conf.attempts = n.clamp(1, 5);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        conf
    }
}

/// The addresses `hosts(5)` text gives `name` (case-insensitive).
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name);
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            words.any(|w| w.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_options_are_read() {
        let c = ResolvConf::parse(
            "# comment\nsearch lan\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n\
             nameserver bogus\noptions ndots:1 timeout:2 attempts:1\n",
        );
        assert_eq!(
            c.servers,
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.attempts, 1);
    }

    #[test]
    fn defaults_are_glibcs() {
        let c = ResolvConf::parse("");
        assert_eq!(c.servers, vec!["127.0.0.1:53".parse().unwrap()]);
        assert_eq!((c.timeout, c.attempts), (Duration::from_secs(5), 2));
        let c = ResolvConf::parse("nameserver 1.1.1.1\nnameserver 1.0.0.1\nnameserver 8.8.8.8\nnameserver 9.9.9.9\noptions timeout:0 attempts:99");
        assert_eq!(c.servers.len(), 3);
        assert_eq!((c.timeout, c.attempts), (Duration::from_secs(1), 5));
    }

    #[test]
    fn hosts_names_are_matched_whole_and_caselessly() {
        let hosts = "127.0.0.1 localhost\n192.0.2.7  Edge.Example edge # pbx\n::1 localhost ip6-localhost\n";
        assert_eq!(
            hosts_lookup(hosts, "edge.example."),
            vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(hosts_lookup(hosts, "localhost").len(), 2);
        assert!(hosts_lookup(hosts, "example").is_empty());
    }
}
