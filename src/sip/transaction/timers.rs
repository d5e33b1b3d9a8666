//! RFC 3261 timer names and values (§17, Table 4).

use std::time::Duration;

/// A transaction timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Client INVITE retransmit (unreliable transports).
    A,
    /// Client INVITE timeout.
    B,
    /// Client INVITE: wait for response retransmissions in Completed.
    D,
    /// Client non-INVITE retransmit.
    E,
    /// Client non-INVITE timeout.
    F,
    /// Server INVITE: final response retransmit.
    G,
    /// Server INVITE: wait for ACK.
    H,
    /// Server INVITE: absorb ACK retransmissions.
    I,
    /// Server non-INVITE: absorb request retransmissions.
    J,
    /// Client non-INVITE: absorb response retransmissions.
    K,
    /// RFC 6026 server INVITE Accepted state.
    L,
    /// RFC 6026 client INVITE Accepted state.
    M,
}

impl Timer {
    /// Every timer.
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];
}

/// T1, T2, T4 and whether the transport is reliable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
    /// TCP/TLS: no retransmissions, zero-length wait timers.
    pub reliable: bool,
}

impl TimerConfig {
    /// RFC 3261 defaults for an unreliable (UDP) transport.
    pub const UDP: TimerConfig = TimerConfig {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        t4: Duration::from_secs(5),
        reliable: false,
    };

    /// RFC 3261 defaults for a reliable (TCP/TLS) transport.
    pub const RELIABLE: TimerConfig = TimerConfig {
        reliable: true,
        ..TimerConfig::UDP
    };

    /// 64·T1: the transaction timeout (B, F, H, J, L, M).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// `d` on unreliable transports, zero on reliable ones (D, I, J, K).
    pub fn wait(&self, d: Duration) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            d
        }
    }
}
