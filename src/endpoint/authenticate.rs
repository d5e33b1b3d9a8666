//! Who sent an INVITE: a phone (digest), or Twilio (digest with the trunk
//! credentials, or its source address in trunking mode).

use std::net::SocketAddr;

use crate::b2bua::{Caller, DeviceId};
use crate::sip::auth::{Algorithm, Credentials, DigestAuth, Verdict};
use crate::sip::message::build::reply;
use crate::sip::message::{HeaderName, Request, Response};

use super::{Endpoint, REALM};

impl Endpoint {
    /// Authenticates an INVITE: the caller, or `Err(answer)` (407
    /// challenge, 403).
    ///
    /// Phones and Twilio's SIP Domain answer a 407 digest challenge. In
    /// Elastic SIP Trunking mode Twilio's origination INVITEs carry no
    /// credentials and are trusted by source address (`twilio.sip_sources`);
    /// in either mode a configured address list also confines the Twilio
    /// credentials to those addresses.
    pub(super) fn authenticate_caller(
        &mut self,
        req: &Request,
        source: SocketAddr,
        tag: &str,
    ) -> Result<Caller, Response> {
        let now = self.clock.now();
        let trunk = self.calls.directory().trunk.as_ref();
        let from_twilio = self.twilio_sip.sources.contains(source.ip());
        if self.twilio_sip.trunking && from_twilio && trunk.is_some() {
            return Ok(Caller::Twilio);
        }
        let creds = req
            .headers
            .lines(&HeaderName::ProxyAuthorization)
            .filter_map(Credentials::parse)
            .find(|c| c.realm == REALM);
        let challenge = |auth: &DigestAuth, stale: bool| {
            let mut r = reply(req, 407, tag);
            for c in auth.challenges(now, stale) {
                r.headers.push(HeaderName::ProxyAuthenticate, c);
            }
            r
        };
        let Some(creds) = creds.filter(|c| c.algorithm().is_some()) else {
            return Err(challenge(&self.auth, false));
        };
        let alg = creds.algorithm().unwrap_or(Algorithm::Md5);
        let phone = self.devices.get(&creds.username).cloned();
        let trunk = trunk
            .filter(|t| t.credential.username == creds.username)
            .map(|t| t.credential.clone());
        let caller = phone.clone().or(trunk);
        let ha1 = caller
            .as_ref()
            .map(|d| d.ha1(alg).to_string())
            .unwrap_or_else(|| alg.hash("no such user"));
        match self.auth.verify(&creds, "INVITE", &ha1, now) {
            Verdict::Ok if caller.is_some() => {}
            Verdict::Stale => return Err(challenge(&self.auth, true)),
            Verdict::Rechallenge => return Err(challenge(&self.auth, false)),
            Verdict::Ok | Verdict::Rejected => {
                tracing::info!(%source, username = %creds.username, "SIP authentication failed for a call");
                self.guard.auth_failed(source.ip(), now);
                return Err(reply(req, 403, tag));
            }
        }
        match phone {
            Some(p) => Ok(Caller::Phone {
                device: DeviceId(p.device_id),
                username: p.username,
            }),
            None if !self.twilio_sip.sources.is_empty() && !from_twilio => {
                tracing::warn!(%source, "Twilio's SIP credentials used from an address outside twilio.sip_sources");
                let mut r = reply(req, 403, tag);
                r.reason = "Forbidden (not a Twilio address)".into();
                Err(r)
            }
            None => Ok(Caller::Twilio),
        }
    }
}
