//! The RTP port range: even/odd pairs (RTP on the even port, RTCP on the
//! next, RFC 3550 §11), handed out round-robin so a port just released is
//! not reused at once (late packets of the old call would land in the new).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// The configured range and which pairs are taken.
#[derive(Debug)]
pub struct PortPool {
    bind: IpAddr,
    first: u16,
    last: u16,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    next: u16,
    in_use: HashSet<u16>,
}

/// Why no pair could be had.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every pair of the range is in use (or bound by another program).
    #[error("no free RTP port pair in {first}-{last}")]
    Exhausted {
        /// Start of the range.
        first: u16,
        /// End of the range.
        last: u16,
    },
}

/// Two bound sockets; the pair goes back to the pool when dropped.
#[derive(Debug)]
pub struct PortPair {
    /// The RTP socket (even port).
    pub rtp: UdpSocket,
    /// The RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl PortPair {
    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        if let Ok(mut s) = self.pool.state.lock() {
            s.in_use.remove(&self.port);
        }
    }
}

impl PortPool {
    /// A pool over `first..=last` (rounded to even starts), binding on `bind`.
    pub fn new(bind: IpAddr, first: u16, last: u16) -> Arc<PortPool> {
        let first = first + (first & 1);
        Arc::new(PortPool {
            bind,
            first,
            last,
            state: Mutex::new(PoolState {
                next: first,
                in_use: HashSet::new(),
            }),
        })
    }

    /// Where another relay of this machine reaches a port of this pool
    /// (joined calls send to each other over loopback).
    pub fn loopback_ip(&self) -> IpAddr {
        match self.bind {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        }
    }

    /// How many pairs the range holds.
    pub fn capacity(&self) -> usize {
        if self.last <= self.first {
            return 0;
        }
        (self.last - self.first).div_ceil(2) as usize
    }

    /// Binds the next free pair. Must run inside a tokio runtime.
    pub fn allocate(self: &Arc<Self>) -> Result<PortPair, PortError> {
        let exhausted = PortError::Exhausted {
            first: self.first,
            last: self.last,
        };
        let Ok(mut s) = self.state.lock() else {
            return Err(exhausted);
        };
        for _ in 0..self.capacity() {
            let port = s.next;
            s.next = if port.saturating_add(3) > self.last {
                self.first
            } else {
                port + 2
            };
            if s.in_use.contains(&port) {
                continue;
            }
            let (Ok(rtp), Ok(rtcp)) = (bind(self.bind, port), bind(self.bind, port + 1)) else {
                continue; // taken by something else on the machine
            };
            s.in_use.insert(port);
            return Ok(PortPair {
                rtp,
                rtcp,
                port,
                pool: self.clone(),
            });
        }
        Err(exhausted)
    }
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_even_odd_pairs_and_takes_them_back() {
        // A range of its own so parallel tests do not collide.
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41001, 41006);
        assert_eq!(pool.capacity(), 2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a.port() % 2, b.port() % 2), (0, 0));
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.port() + 1);
        assert!(matches!(pool.allocate(), Err(PortError::Exhausted { .. })));
        let freed = a.port();
        drop(a);
        assert_eq!(pool.allocate().unwrap().port(), freed);
    }
}
