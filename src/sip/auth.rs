//! Digest authentication for the registrar and for calls (RFC 7616, RFC 8760
//! for SIP, RFC 2617 compatibility).
//!
//! Nonces are stateless: `hex(timestamp ‖ salt ‖ HMAC-SHA256(key, timestamp ‖ salt)[..16])`
//! (the random salt makes every challenge unique, so two phones challenged in
//! the same second do not share a nonce-count),
//! so any nonce we issued can be checked without remembering it, and an
//! expired one is answered with `stale=true` (the phone retries at once with
//! the new nonce instead of telling its user the password is wrong). The
//! only state is the highest nonce-count seen per nonce in use, which stops
//! replays and is pruned as nonces expire.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use md5::Digest as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::clock::Timestamp;

/// How long a nonce is good for before `stale=true`.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617; what most desk phones still use).
    Md5,
    /// SHA-256 (RFC 7616/8760), offered when enabled (see [`DigestAuth::challenges`]).
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Hex digest of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => {
                hex(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()).as_ref())
            }
        }
    }

    /// HA1 = H(username:realm:password), what a stored credential reduces to.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash(&format!("{username}:{realm}:{password}"))
    }

    /// Hex digest of the concatenation of `parts`, fed to the hash one by
    /// one: the same as [`Algorithm::hash`] of the joined text, without
    /// building it (every verified REGISTER hashes twice).
    fn hash_parts(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 => {
                let mut h = md5::Md5::new();
                for p in parts {
                    h.update(p.as_bytes());
                }
                hex(&h.finalize())
            }
            Algorithm::Sha256 => {
                let mut h = ring::digest::Context::new(&ring::digest::SHA256);
                for p in parts {
                    h.update(p.as_bytes());
                }
                hex(h.finish().as_ref())
            }
        }
    }
}

use crate::sip::random::hex;

/// The parsed `Authorization`/`Proxy-Authorization: Digest …` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// `username`
    pub username: String,
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `uri` (digest-uri)
    pub uri: String,
    /// `response`
    pub response: String,
    /// `algorithm` (MD5 when absent)
    pub algorithm: Option<String>,
    /// `cnonce`
    pub cnonce: Option<String>,
    /// `nc`, as sent (8 hex digits)
    pub nc: Option<String>,
    /// `qop`
    pub qop: Option<String>,
}

impl Credentials {
    /// Parses a Digest credentials header; `None` for other schemes or
    /// missing required fields.
    pub fn parse(value: &str) -> Option<Credentials> {
        let v = value.trim();
        let (scheme, rest) = v.split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        for (k, val) in auth_params(rest)? {
            let field = match k.len() {
                2 if k.eq_ignore_ascii_case("nc") => &mut c.nc,
                3 if k.eq_ignore_ascii_case("uri") => {
                    c.uri = val.into_owned();
                    continue;
                }
                3 if k.eq_ignore_ascii_case("qop") => &mut c.qop,
                5 if k.eq_ignore_ascii_case("realm") => {
                    c.realm = val.into_owned();
                    continue;
                }
                5 if k.eq_ignore_ascii_case("nonce") => {
                    c.nonce = val.into_owned();
                    continue;
                }
                6 if k.eq_ignore_ascii_case("cnonce") => &mut c.cnonce,
                8 if k.eq_ignore_ascii_case("username") => {
                    c.username = val.into_owned();
                    continue;
                }
                8 if k.eq_ignore_ascii_case("response") => {
                    c.response = val.into_owned();
                    continue;
                }
                9 if k.eq_ignore_ascii_case("algorithm") => &mut c.algorithm,
                _ => continue,
            };
            *field = Some(val.into_owned());
        }
        if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() || c.uri.is_empty()
        {
            return None;
        }
        Some(c)
    }

    /// The algorithm the client used, if we support it.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }
}

/// Answers a `WWW-Authenticate`/`Proxy-Authenticate` challenge as a client
/// (Homeline calling out through Twilio): the header value to send back,
/// or `None` for a challenge we cannot answer (not Digest, unknown
/// algorithm, a qop other than `auth`).
pub fn answer_challenge(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let v = challenge.trim();
    let (scheme, rest) = v.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let params = auth_params(rest)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| &**v)
    };
    let realm = get("realm")?;
    let nonce = get("nonce")?;
    let alg = match get("algorithm") {
        None => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
        Some(_) => return None,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(q) if q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")) => true,
        Some(_) => return None,
    };
    let ha1 = alg.ha1(username, realm, password);
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let mut out = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}",
        alg.name()
    );
    let response = if qop_auth {
        let nc = "00000001";
        out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        alg.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    out.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = get("opaque") {
        out.push_str(&format!(", opaque=\"{opaque}\""));
    }
    Some(out)
}

/// Splits `a="x, y", b=z` into pairs, honouring quoted strings. The
/// pairs borrow from `s` (a value is copied only to remove escapes).
fn auth_params(s: &str) -> Option<Vec<(&str, Cow<'_, str>)>> {
    let mut out = Vec::with_capacity(10);
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().trim_start_matches(',').trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut end = None;
            let mut esc = false;
            for (i, c) in q.char_indices() {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let end = end?;
            value = unquote(&q[..end]);
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = Cow::Borrowed(rest[..end].trim());
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        if key.is_empty() {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

/// What a nonce check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and fresh.
    Fresh,
    /// Ours but expired: challenge again with `stale=true`.
    Stale,
    /// Not ours.
    Invalid,
}

/// The outcome of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right and the request is fresh.
    Ok,
    /// Right password, expired nonce: challenge with `stale=true`.
    Stale,
    /// Not an answer to a live challenge of ours (a nonce from before a
    /// restart, a replayed nonce-count, an unsupported algorithm): challenge
    /// afresh; this says nothing about the password.
    Rechallenge,
    /// An answer to our challenge with the wrong password: 403.
    Rejected,
}

/// Issues and checks nonces, and remembers nonce-counts.
pub struct DigestAuth {
    realm: String,
    offer_sha256: bool,
    key: hmac::Key,
    rng: crate::sip::random::RandomPool,
    /// The highest nonce-count seen per nonce, keyed by the nonce's
    /// authenticated head (timestamp and salt: unique per challenge), not
    /// its 64-character spelling.
    counts: HashMap<NonceHead, u32>,
    /// The same nonces in the order they were first answered, to forget
    /// them [`COUNT_HORIZON`] later a few at a time: a sweep of the whole
    /// table (hundreds of thousands of entries at 3,000 registrations/s)
    /// held the loop up for milliseconds once a minute.
    first_seen: VecDeque<(Timestamp, NonceHead)>,
}

/// The first 16 bytes of a nonce: issue time (8) and random salt (8).
type NonceHead = [u8; 16];

/// How long a nonce's count is remembered after its first use (well past
/// its lifetime, after which it is only ever answered `stale`).
const COUNT_HORIZON: Duration = Duration::from_secs(2 * NONCE_LIFETIME.as_secs());

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DigestAuth {{ realm: {:?}, nonces_in_use: {} }}",
            self.realm,
            self.counts.len()
        )
    }
}

impl DigestAuth {
    /// A verifier for `realm` with a fresh random nonce key; challenges
    /// offer SHA-256 too only when `offer_sha256` (see [`DigestAuth::challenges`]).
    pub fn new(realm: &str, offer_sha256: bool) -> Self {
        let mut key = [0u8; 32];
        // A failing system RNG leaves a zero key: nonces stay unforgeable
        // only by obscurity then, so log it loudly.
        if SystemRandom::new().fill(&mut key).is_err() {
            tracing::error!("system random generator failed; digest nonces are weak");
        }
        Self {
            realm: realm.to_string(),
            offer_sha256,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            rng: crate::sip::random::RandomPool::default(),
            counts: HashMap::new(),
            first_seen: VecDeque::new(),
        }
    }

    /// The realm challenged with.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A new nonce for `now`.
    pub fn nonce(&self, now: Timestamp) -> String {
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&now.unix_secs().to_be_bytes());
        self.rng.fill(&mut head[8..]);
        let tag = hmac::sign(&self.key, &head);
        format!("{}{}", hex(&head), hex(&tag.as_ref()[..16]))
    }

    /// Whether `nonce` is one of ours, and fresh.
    pub fn check_nonce(&self, nonce: &str, now: Timestamp) -> NonceState {
        self.check_nonce_head(nonce, now).0
    }

    /// [`DigestAuth::check_nonce`], with the nonce's head when it is ours.
    fn check_nonce_head(&self, nonce: &str, now: Timestamp) -> (NonceState, NonceHead) {
        let mut bytes = [0u8; 32];
        if !unhex_into(nonce, &mut bytes) {
            return (NonceState::Invalid, [0; 16]);
        }
        let mut head = [0u8; 16];
        head.copy_from_slice(&bytes[..16]);
        let expected = hmac::sign(&self.key, &head);
        if !constant_time_eq(&expected.as_ref()[..16], &bytes[16..]) {
            return (NonceState::Invalid, head);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[..8]);
        let issued = i64::from_be_bytes(ts);
        let age = now.unix_secs() - issued;
        let state = if age < -5 {
            NonceState::Invalid
        } else if age as u64 > NONCE_LIFETIME.as_secs() {
            NonceState::Stale
        } else {
            NonceState::Fresh
        };
        (state, head)
    }

    /// `WWW-Authenticate`/`Proxy-Authenticate` values: MD5, and SHA-256
    /// after it when enabled.
    ///
    /// Why MD5 only by default: clients that predate RFC 8760 break on a
    /// SHA-256 challenge even when an MD5 one is present. Measured here:
    /// sipp 3.6.1 reads only the first challenge and refuses SHA-256
    /// ("authentication must use MD5"); baresip 1.0 (libre 1.1) walks every
    /// challenge and aborts the registration with ENOSYS on the SHA-256 one.
    /// SHA-256 answers are verified whenever they are offered.
    pub fn challenges(&self, now: Timestamp, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let algorithms: &[Algorithm] = if self.offer_sha256 {
            &[Algorithm::Md5, Algorithm::Sha256]
        } else {
            &[Algorithm::Md5]
        };
        algorithms
            .iter()
            .map(|a| {
                let mut v = format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    self.realm,
                    a.name()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Checks `c` for `method` given the stored HA1 for its algorithm.
    /// `ha1` is looked up by the caller from `c.username` and the algorithm.
    pub fn verify(&mut self, c: &Credentials, method: &str, ha1: &str, now: Timestamp) -> Verdict {
        let Some(alg) = c.algorithm() else {
            return Verdict::Rejected;
        };
        if c.realm != self.realm {
            return Verdict::Rejected;
        }
        let (nonce_state, head) = self.check_nonce_head(&c.nonce, now);
        if nonce_state == NonceState::Invalid {
            return Verdict::Rejected;
        }
        let ha2 = alg.hash_parts(&[method, ":", &c.uri]);
        let expected = match c.qop.as_deref() {
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (c.nc.as_deref(), c.cnonce.as_deref()) else {
                    return Verdict::Rejected;
                };
                alg.hash_parts(&[ha1, ":", &c.nonce, ":", nc, ":", cnonce, ":auth:", &ha2])
            }
            Some(_) => return Verdict::Rejected,
            None => alg.hash_parts(&[ha1, ":", &c.nonce, ":", &ha2]),
        };
        if !constant_time_eq_ignore_case(expected.as_bytes(), c.response.as_bytes()) {
            return Verdict::Rejected;
        }
        if nonce_state == NonceState::Stale {
            return Verdict::Stale;
        }
        if let Some(nc) = c.nc.as_deref() {
            let Ok(n) = u32::from_str_radix(nc, 16) else {
                return Verdict::Rejected;
            };
            self.prune(now);
            let seen = match self.counts.entry(head) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    self.first_seen.push_back((now, head));
                    e.insert(0)
                }
            };
            if n <= *seen {
                return Verdict::Rejected;
            }
            *seen = n;
        }
        Verdict::Ok
    }

    /// Forgets the nonce-counts first seen more than [`COUNT_HORIZON`] ago
    /// (oldest first, so each check pays only for what expired since the
    /// last one).
    fn prune(&mut self, now: Timestamp) {
        while let Some(&(first, head)) = self.first_seen.front() {
            if now.since(first) < COUNT_HORIZON {
                break;
            }
            self.first_seen.pop_front();
            self.counts.remove(&head);
        }
    }
}

/// Removes quoted-pair escapes (`\\x` → `x`) from a quoted-string body.
fn unquote(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Decodes exactly `out.len()` bytes of hex (either case); false for any
/// other length or a non-hex digit.
fn unhex_into(s: &str, out: &mut [u8]) -> bool {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return false;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (Some(h), Some(l)) = (digit(pair[0]), digit(pair[1])) else {
            return false;
        };
        *o = h << 4 | l;
    }
    true
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// [`constant_time_eq`] with `b` read in lower case (`a` is our lower-case
/// hex; phones may send upper-case digits).
fn constant_time_eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
            == 0
}

/// The digest realm phones are challenged with.
pub const REALM: &str = "homeline";

/// A phone's credentials, reduced to what digest checks need.
#[derive(Clone)]
pub struct DeviceCredential {
    /// The phone's row id.
    pub device_id: i64,
    /// Its SIP user name.
    pub username: String,
    ha1_md5: String,
    ha1_sha256: String,
}

impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceCredential {{ device_id: {}, username: {:?} }}",
            self.device_id, self.username
        )
    }
}

impl DeviceCredential {
    /// Computes the HA1s for [`REALM`]; the password itself is not kept.
    pub fn new(device_id: i64, username: &str, password: &str) -> Self {
        Self {
            device_id,
            username: username.to_string(),
            ha1_md5: Algorithm::Md5.ha1(username, REALM, password),
            ha1_sha256: Algorithm::Sha256.ha1(username, REALM, password),
        }
    }

    /// The stored HA1 for `alg`.
    pub fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_255_200_000 + secs * 1000)
    }

    /// A client computing its answer the way phones do.
    fn answer(
        auth: &DigestAuth,
        alg: Algorithm,
        nonce: &str,
        nc: u32,
        password: &str,
    ) -> Credentials {
        let ha1 = alg.ha1("kitchen", auth.realm(), password);
        let ha2 = alg.hash("REGISTER:sip:homeline.local");
        let nc = format!("{nc:08x}");
        Credentials {
            username: "kitchen".into(),
            realm: auth.realm().into(),
            nonce: nonce.into(),
            uri: "sip:homeline.local".into(),
            response: alg.hash(&format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}")),
            algorithm: Some(alg.name().into()),
            cnonce: Some("0a4f113b".into()),
            nc: Some(nc),
            qop: Some("auth".into()),
        }
    }

    #[test]
    fn our_client_answer_passes_our_own_check() {
        let mut auth = DigestAuth::new("homeline", false);
        let now = t(0);
        for challenge in auth.challenges(now, false) {
            let header = answer_challenge(
                &challenge,
                "INVITE",
                "sip:+15550100@trunk",
                "pbx",
                "s3cret",
                "c0ffee",
            )
            .expect("answerable");
            let creds = Credentials::parse(&header).expect("parses");
            let ha1 = Algorithm::Md5.ha1("pbx", "homeline", "s3cret");
            assert_eq!(auth.verify(&creds, "INVITE", &ha1, now), Verdict::Ok);
        }
        assert_eq!(
            answer_challenge("Basic realm=x", "INVITE", "sip:x", "u", "p", "c"),
            None
        );
    }

    #[test]
    fn rfc2617_md5_example_response() {
        // RFC 2617 §3.5: Mufasa / Circle Of Life.
        let ha1 = Algorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let ha2 = Algorithm::Md5.hash("GET:/dir/index.html");
        let resp = Algorithm::Md5.hash(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
        ));
        assert_eq!(resp, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_example_response() {
        // RFC 7616 §3.9.1.
        let alg = Algorithm::Sha256;
        let ha1 = alg.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        let ha2 = alg.hash("GET:/dir/index.html");
        let resp = alg.hash(&format!(
            "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
        ));
        assert_eq!(
            resp,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn accepts_right_password_rejects_wrong_and_replays() {
        let mut auth = DigestAuth::new("homeline", true);
        let nonce = auth.nonce(t(0));
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let ha1 = alg.ha1("kitchen", "homeline", "s3cret");
            let nonce = auth.nonce(t(1));
            assert_eq!(
                auth.verify(
                    &answer(&auth, alg, &nonce, 1, "s3cret"),
                    "REGISTER",
                    &ha1,
                    t(2)
                ),
                Verdict::Ok
            );
            assert_eq!(
                auth.verify(
                    &answer(&auth, alg, &nonce, 1, "s3cret"),
                    "REGISTER",
                    &ha1,
                    t(3)
                ),
                Verdict::Rejected,
                "nc replay"
            );
            assert_eq!(
                auth.verify(
                    &answer(&auth, alg, &nonce, 2, "s3cret"),
                    "REGISTER",
                    &ha1,
                    t(4)
                ),
                Verdict::Ok,
                "nc moves on"
            );
            assert_eq!(
                auth.verify(
                    &answer(&auth, alg, &nonce, 3, "wrong"),
                    "REGISTER",
                    &ha1,
                    t(5)
                ),
                Verdict::Rejected
            );
            assert_eq!(
                auth.verify(
                    &answer(&auth, alg, &nonce, 4, "s3cret"),
                    "INVITE",
                    &ha1,
                    t(5)
                ),
                Verdict::Rejected,
                "method is bound"
            );
        }
        let ha1 = Algorithm::Md5.ha1("kitchen", "homeline", "s3cret");
        let other = DigestAuth::new("homeline", true);
        let forged = other.nonce(t(0));
        assert_eq!(
            auth.verify(
                &answer(&auth, Algorithm::Md5, &forged, 1, "s3cret"),
                "REGISTER",
                &ha1,
                t(1)
            ),
            Verdict::Rejected
        );
        assert_eq!(auth.check_nonce(&nonce, t(10)), NonceState::Fresh);
        assert_eq!(auth.check_nonce("zz", t(10)), NonceState::Invalid);
        assert_ne!(auth.nonce(t(0)), auth.nonce(t(0)), "unique within a second");
    }

    #[test]
    fn expired_nonce_is_stale_not_rejected() {
        let mut auth = DigestAuth::new("homeline", true);
        let nonce = auth.nonce(t(0));
        let ha1 = Algorithm::Md5.ha1("kitchen", "homeline", "s3cret");
        let late = t(NONCE_LIFETIME.as_secs() as i64 + 1);
        assert_eq!(
            auth.verify(
                &answer(&auth, Algorithm::Md5, &nonce, 1, "s3cret"),
                "REGISTER",
                &ha1,
                late
            ),
            Verdict::Stale
        );
        assert_eq!(
            auth.verify(
                &answer(&auth, Algorithm::Md5, &nonce, 2, "wrong"),
                "REGISTER",
                &ha1,
                late
            ),
            Verdict::Rejected
        );
        assert!(auth
            .challenges(late, true)
            .iter()
            .all(|c| c.ends_with("stale=true")));
    }

    #[test]
    fn nonce_counts_are_forgotten_oldest_first_after_the_horizon() {
        let mut auth = DigestAuth::new("homeline", false);
        let ha1 = Algorithm::Md5.ha1("kitchen", "homeline", "s3cret");
        let (early, late) = (auth.nonce(t(0)), auth.nonce(t(100)));
        for (nonce, at) in [(&early, t(1)), (&late, t(101))] {
            let creds = answer(&auth, Algorithm::Md5, nonce, 1, "s3cret");
            assert_eq!(auth.verify(&creds, "REGISTER", &ha1, at), Verdict::Ok);
        }
        assert_eq!(auth.counts.len(), 2);
        // Nonce-counts are kept per challenge, whatever the hex case.
        let upper = answer(
            &auth,
            Algorithm::Md5,
            &late.to_ascii_uppercase(),
            1,
            "s3cret",
        );
        assert_eq!(
            auth.verify(&upper, "REGISTER", &ha1, t(102)),
            Verdict::Rejected,
            "the same nonce in upper case is a replay"
        );
        let fresh = auth.nonce(t(602));
        let creds = answer(&auth, Algorithm::Md5, &fresh, 1, "s3cret");
        assert_eq!(auth.verify(&creds, "REGISTER", &ha1, t(602)), Verdict::Ok);
        assert_eq!(auth.counts.len(), 2, "the first nonce's count is gone");
        assert_eq!(auth.first_seen.len(), 2);
    }

    #[test]
    fn parses_authorization_headers() {
        let c = Credentials::parse(
            r#"Digest username="kitchen", realm="homeline",nonce="abc", uri="sip:h", response="d41d", algorithm=MD5, cnonce="x,y", nc=00000001, qop=auth"#,
        )
        .expect("parse");
        assert_eq!(
            (
                c.username.as_str(),
                c.cnonce.as_deref(),
                c.nc.as_deref(),
                c.algorithm()
            ),
            (
                "kitchen",
                Some("x,y"),
                Some("00000001"),
                Some(Algorithm::Md5)
            )
        );
        assert!(
            Credentials::parse("NoOneKnowsThisScheme opaque-data=here").is_none(),
            "regaut01"
        );
        assert!(Credentials::parse("Digest username=\"a\"").is_none());
        assert!(Credentials::parse("Digest username=\"a, realm=x").is_none());
    }
}
