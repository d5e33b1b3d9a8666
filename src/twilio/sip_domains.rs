//! The SIP Domain resources the doctor reads: the account's domains, the
//! credential lists mapped to a domain for calls, and a list's user names
//! (never passwords: Twilio does not return them).

use serde::{Deserialize, Serialize};

use super::client::{is_sid, Client, TwilioError};

/// A SIP Domain (`SD…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipDomain {
    /// `SD…`.
    pub sid: String,
    /// `myhome.sip.twilio.com`.
    pub domain_name: String,
    /// *A call comes in*.
    #[serde(default)]
    pub voice_url: Option<String>,
    /// `POST` or `GET`.
    #[serde(default)]
    pub voice_method: Option<String>,
    /// Secure media: TLS signalling and SRTP required.
    #[serde(default)]
    pub secure: bool,
}

/// A credential list mapped to a domain (`CL…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialListRef {
    /// `CL…`.
    pub sid: String,
    /// Its name in the console.
    #[serde(default)]
    pub friendly_name: String,
}

impl Client {
    /// Every SIP Domain of the account.
    pub fn list_sip_domains(&self) -> Result<Vec<SipDomain>, TwilioError> {
        #[derive(Deserialize)]
        struct Page {
            domains: Vec<SipDomain>,
        }
        let p: Page = self.get_json_from(
            self.base_url(),
            &self.account_resource("/SIP/Domains.json?PageSize=1000"),
        )?;
        Ok(p.domains)
    }

    /// The credential lists that authenticate calls to domain `sid`.
    pub fn call_credential_lists(&self, sid: &str) -> Result<Vec<CredentialListRef>, TwilioError> {
        if !is_sid(sid, "SD") {
            return Err(TwilioError::Refused(format!(
                "not a SIP Domain SID: {sid:?}"
            )));
        }
        #[derive(Deserialize)]
        struct Page {
            contents: Vec<CredentialListRef>,
        }
        let p: Page = self.get_json_from(
            self.base_url(),
            &self.account_resource(&format!(
                "/SIP/Domains/{sid}/Auth/Calls/CredentialListMappings.json"
            )),
        )?;
        Ok(p.contents)
    }

    /// The user names of credential list `sid`.
    pub fn credential_usernames(&self, sid: &str) -> Result<Vec<String>, TwilioError> {
        if !is_sid(sid, "CL") {
            return Err(TwilioError::Refused(format!(
                "not a credential list SID: {sid:?}"
            )));
        }
        #[derive(Deserialize)]
        struct Credential {
            username: String,
        }
        #[derive(Deserialize)]
        struct Page {
            credentials: Vec<Credential>,
        }
        let p: Page = self.get_json_from(
            self.base_url(),
            &self.account_resource(&format!("/SIP/CredentialLists/{sid}/Credentials.json")),
        )?;
        Ok(p.credentials.into_iter().map(|c| c.username).collect())
    }
}
