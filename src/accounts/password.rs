//! Web-login passwords: argon2id hashing and the password policy.
//!
//! Parameters are argon2's defaults, which are OWASP's minimum for argon2id
//! (19 MiB, t=2, p=1). The PHC string stores them, so they can be raised later
//! without invalidating existing hashes. Hashing is CPU- and memory-heavy by
//! design: async callers must run it off the reactor (`spawn_blocking`).

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::constants::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};

/// Why a password is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Too short.
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters long")]
    TooShort,
    /// Too long.
    #[error("the password must be at most {MAX_PASSWORD_LEN} characters long")]
    TooLong,
    /// On the list of passwords attackers try first.
    #[error("this password is too common; choose another")]
    Common,
}

/// Hashing failed (out of memory, or a broken random generator).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Passwords attackers try first (the start of public breach lists), lower
/// case; compared case-insensitively.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "1q2w3e4r5t",
    "abcdefghij",
    "administrator",
    "aa12345678",
    "changeme123",
    "homeline123",
    "iloveyou12",
    "letmein123",
    "password",
    "password01",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "qwerty1234",
    "qwertyuiop",
    "welcome123",
    "1qaz2wsx3edc",
    "0987654321",
    "1111111111",
    "0000000000",
    "qwertyuiop123",
    "asdfghjkl1",
    "zxcvbnm123",
    "sunshine123",
    "football123",
];

/// Checks a new password against the policy.
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(PolicyError::TooShort);
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    let distinct = lower
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if COMMON.contains(&lower.as_str()) || distinct <= 2 {
        return Err(PolicyError::Common);
    }
    Ok(())
}

/// Hashes a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `phc`; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password nobody knows, with the same parameters as
/// [`hash`]: a login for an unknown e-mail is verified against it, so it costs
/// what a real check costs and its timing does not reveal which accounts exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ge/ctn8WuwE4hJTBd0zezw$P377AWwoZ/hSUY4HMVVR/nLdOrU7I9OiFfxShjsohZM";

/// Runs argon2 on tokio's blocking threads, at most a few at a time.
///
/// Why: a hash takes one core and 19 MiB for tens of milliseconds (more on a
/// Pi). On the reactor it would stall every other request; unbounded, a login
/// flood would run hundreds of 19 MiB jobs at once. With the semaphore the
/// flood waits in line and memory stays at `max × 19 MiB`.
#[derive(Debug, Clone)]
pub struct HashPool {
    permits: Arc<Semaphore>,
}

/// One place in the [`HashPool`]. A caller may hold it across several steps
/// (the login handler holds it from the lockout check to recording the
/// failure, so parallel guesses cannot all pass the check before any failure
/// is counted). A job that is running keeps the place until argon2 returns,
/// even if the slot is dropped, because a blocking thread cannot be stopped.
#[derive(Debug)]
pub struct HashSlot {
    permit: Arc<OwnedSemaphorePermit>,
}

impl HashPool {
    /// A pool that runs at most `max` hashes at once (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// Waits for a free place.
    pub async fn slot(&self) -> Result<HashSlot, HashError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError("the hashing pool is closed".into()))?;
        Ok(HashSlot {
            permit: Arc::new(permit),
        })
    }

    /// [`hash`] in a place of its own.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.slot().await?.hash(password).await
    }
}

impl HashSlot {
    async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let permit = self.permit.clone();
        tokio::task::spawn_blocking(move || {
            let r = job();
            drop(permit);
            r
        })
        .await
        .map_err(|e| HashError(format!("the hashing task failed: {e}")))
    }

    /// [`hash`], off the reactor.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash(&password)).await?
    }

    /// [`verify`] against `phc`, or against a dummy hash when the account does
    /// not exist (`None`): that never matches but costs the same time.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        self.run(move || match phc {
            Some(phc) => verify(&password, &phc),
            None => {
                let _ = verify(&password, DUMMY_HASH);
                false
            }
        })
        .await
    }
}

/// A random password for console recovery: 20 characters from an alphabet
/// without look-alikes (about 115 bits).
pub fn generate() -> Result<String, HashError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut b = [0u8; 1];
        rng.fill(&mut b)
            .map_err(|_| HashError("the system random generator failed".into()))?;
        // Rejection sampling keeps the choice uniform.
        let limit = 256 - 256 % ALPHABET.len();
        if (b[0] as usize) < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(
            hash("same").expect("hash"),
            hash("same").expect("hash"),
            "salted"
        );
    }

    #[test]
    fn policy() {
        assert_eq!(check_policy("short"), Err(PolicyError::TooShort));
        assert_eq!(check_policy(&"ab".repeat(200)), Err(PolicyError::TooLong));
        assert_eq!(check_policy("Password123"), Err(PolicyError::Common));
        assert_eq!(check_policy("aaaaaaaaaaaa"), Err(PolicyError::Common));
        assert_eq!(check_policy("blue kettle on the hob"), Ok(()));
    }

    #[test]
    fn dummy_hash_has_the_real_parameters() {
        let real = hash("anything at all").expect("hash");
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "well-formed");
    }

    #[tokio::test]
    async fn pool_hashes_and_verifies_off_the_reactor() {
        let pool = HashPool::new(1);
        let phc = pool
            .hash("blue kettle on the hob".into())
            .await
            .expect("hash");
        let slot = pool.slot().await.expect("slot");
        assert!(slot
            .verify("blue kettle on the hob".into(), Some(phc.clone()))
            .await
            .expect("verify"));
        assert!(!slot
            .verify("blue kettle on the pot".into(), Some(phc))
            .await
            .expect("verify"));
        assert!(!slot
            .verify("blue kettle on the hob".into(), None)
            .await
            .expect("unknown account never matches"));
        // The only place is taken while the slot is held.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), pool.slot())
                .await
                .is_err(),
            "a second caller waits"
        );
        drop(slot);
        assert!(pool.slot().await.is_ok());
    }

    /// The cost of one hash in this build; run in release to measure:
    /// `cargo test --release --lib -- --ignored --nocapture argon2_cost`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn argon2_cost() {
        let runs = 20;
        let _ = hash("warm up the allocator");
        let start = std::time::Instant::now();
        for i in 0..runs {
            let _ = hash(&format!("measure me {i}")).expect("hash");
        }
        let per = start.elapsed() / runs;
        println!("argon2id m=19456 KiB, t=2, p=1: {per:?} per hash");
    }

    #[test]
    fn generated_passwords_pass_the_policy_and_differ() {
        let a = generate().expect("generate");
        assert_eq!(a.len(), 20);
        assert_eq!(check_policy(&a), Ok(()));
        assert_ne!(a, generate().expect("generate"));
    }
}
