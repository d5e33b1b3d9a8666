//! Random bytes for the SIP stack's tokens (tags, branches, Call-IDs,
//! nonce salts), and their hex spelling.
//!
//! Every REGISTER costs a few tokens; asking the kernel for each (ring's
//! `SystemRandom` is one `getrandom` system call per fill) showed up in
//! `benches/register_load.sh` profiles. The pool draws from the same
//! system CSPRNG a block at a time and hands the bytes out in order, each
//! byte once.

use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes fetched from the kernel at once.
const BLOCK: usize = 512;

/// A buffer of system randomness (its lock is uncontended: one owner task).
pub struct RandomPool {
    rng: SystemRandom,
    buf: Mutex<(Box<[u8; BLOCK]>, usize)>,
}

impl Default for RandomPool {
    fn default() -> Self {
        Self {
            rng: SystemRandom::new(),
            buf: Mutex::new((Box::new([0u8; BLOCK]), BLOCK)),
        }
    }
}

impl std::fmt::Debug for RandomPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RandomPool")
    }
}

impl RandomPool {
    /// Fills `out` with random bytes.
    pub fn fill(&self, out: &mut [u8]) {
        if out.len() > BLOCK / 4 {
            if self.rng.fill(out).is_err() {
                tracing::error!("system random generator failed");
            }
            return;
        }
        let mut guard = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let (buf, used) = &mut *guard;
        if *used + out.len() > BLOCK {
            if self.rng.fill(&mut buf[..]).is_err() {
                tracing::error!("system random generator failed");
            }
            *used = 0;
        }
        out.copy_from_slice(&buf[*used..*used + out.len()]);
        // Handed out once: never again, not even in a later block.
        buf[*used..*used + out.len()].fill(0);
        *used += out.len();
    }

    /// `N` random bytes, spelled in lower-case hex.
    pub fn hex<const N: usize>(&self) -> String {
        let mut b = [0u8; N];
        self.fill(&mut b);
        hex(&b)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn tokens_do_not_repeat_across_blocks() {
        let pool = RandomPool::default();
        let tokens: std::collections::HashSet<String> =
            (0..2000).map(|_| pool.hex::<12>()).collect();
        assert_eq!(tokens.len(), 2000);
        let mut big = [0u8; 300];
        pool.fill(&mut big);
        assert!(big.iter().any(|b| *b != 0));
    }
}
