//! Just enough DER to read what the appliance needs from an X.509
//! certificate: its validity, its DNS names, its issuer's name and whether
//! it is self-signed. A full X.509 parser would be a new dependency for four
//! fields; the certificates read here are ones we made or an ACME CA issued,
//! and anything unexpected is an error, never a panic.

use crate::clock::Timestamp;

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the certificate could not be read: {0}")]
pub struct DerError(&'static str);

/// What [`read`] found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// The DNS names of the subject alternative name extension.
    pub names: Vec<String>,
    /// The issuer's common name (or organisation when it has none).
    pub issuer: String,
    /// The issuer and subject names are the same.
    pub self_signed: bool,
}

/// One DER element: its tag, its content and what follows it.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    let (&tag, after) = input.split_first().ok_or(DerError("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tags are not used in certificates"));
    }
    let (&first, after) = after.split_first().ok_or(DerError("truncated length"))?;
    let (len, after) = if first < 0x80 {
        (usize::from(first), after)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || after.len() < n {
            return Err(DerError("bad length"));
        }
        let len = after[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &after[n..])
    };
    if after.len() < len {
        return Err(DerError("element longer than its input"));
    }
    Ok(Tlv {
        tag,
        body: &after[..len],
        rest: &after[len..],
    })
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let t = tlv(input)?;
    if t.tag != tag {
        return Err(DerError(what));
    }
    Ok(t)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];

/// Reads the fields of [`Parsed`] from a DER certificate.
pub fn read(der: &[u8]) -> Result<Parsed, DerError> {
    let cert = expect(der, SEQUENCE, "not a certificate")?;
    let tbs = expect(cert.body, SEQUENCE, "no certificate body")?;
    let mut at = tbs.body;
    // [0] EXPLICIT version, optional.
    if tlv(at)?.tag == 0xa0 {
        at = tlv(at)?.rest;
    }
    let serial = expect(at, 0x02, "no serial number")?;
    let sig_alg = expect(serial.rest, SEQUENCE, "no signature algorithm")?;
    let issuer = expect(sig_alg.rest, SEQUENCE, "no issuer")?;
    let validity = expect(issuer.rest, SEQUENCE, "no validity")?;
    let subject = expect(validity.rest, SEQUENCE, "no subject")?;
    let not_before = tlv(validity.body)?;
    let not_after = tlv(not_before.rest)?;
    let spki = expect(subject.rest, SEQUENCE, "no public key")?;
    let mut names = Vec::new();
    let mut rest = spki.rest;
    while !rest.is_empty() {
        let t = tlv(rest)?;
        if t.tag == 0xa3 {
            names = san_names(t.body)?;
        }
        rest = t.rest;
    }
    Ok(Parsed {
        not_before: time(not_before.tag, not_before.body)?,
        not_after: time(not_after.tag, not_after.body)?,
        names,
        issuer: name_of(issuer.body)?,
        self_signed: issuer.body == subject.body,
    })
}

/// The dNSName entries of the subjectAltName extension in `[3] Extensions`.
fn san_names(explicit: &[u8]) -> Result<Vec<String>, DerError> {
    let exts = expect(explicit, SEQUENCE, "bad extensions")?;
    let mut at = exts.body;
    while !at.is_empty() {
        let ext = expect(at, SEQUENCE, "bad extension")?;
        at = ext.rest;
        let oid = expect(ext.body, OID, "extension without an identifier")?;
        if oid.body != OID_SAN {
            continue;
        }
        let mut value = tlv(oid.rest)?;
        if value.tag == 0x01 {
            // critical BOOLEAN
            value = tlv(value.rest)?;
        }
        if value.tag != 0x04 {
            return Err(DerError("extension value is not an octet string"));
        }
        let list = expect(value.body, SEQUENCE, "bad subject alternative names")?;
        let mut names = Vec::new();
        let mut g = list.body;
        while !g.is_empty() {
            let t = tlv(g)?;
            if t.tag == 0x82 {
                names.push(String::from_utf8_lossy(t.body).into_owned());
            }
            g = t.rest;
        }
        return Ok(names);
    }
    Ok(Vec::new())
}

/// The common name of an X.501 name, else its organisation, else `?`.
fn name_of(name: &[u8]) -> Result<String, DerError> {
    let (mut cn, mut org) = (None, None);
    let mut at = name;
    while !at.is_empty() {
        let set = expect(at, SET, "bad name")?;
        at = set.rest;
        let mut attrs = set.body;
        while !attrs.is_empty() {
            let attr = expect(attrs, SEQUENCE, "bad name attribute")?;
            attrs = attr.rest;
            let oid = expect(attr.body, OID, "name attribute without a type")?;
            let value = tlv(oid.rest)?;
            let text = String::from_utf8_lossy(value.body).into_owned();
            if oid.body == OID_CN {
                cn = Some(text);
            } else if oid.body == OID_O {
                org = Some(text);
            }
        }
    }
    Ok(cn.or(org).unwrap_or_else(|| "?".into()))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, body: &[u8]) -> Result<Timestamp, DerError> {
    let s = std::str::from_utf8(body).map_err(|_| DerError("bad time"))?;
    let full = match (tag, s.len()) {
        (0x17, 13) => {
            let yy: u32 = s[..2].parse().map_err(|_| DerError("bad time"))?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 15) => s.to_string(),
        _ => return Err(DerError("unsupported time format")),
    };
    let b = full.as_bytes();
    if !b[..14].iter().all(u8::is_ascii_digit) || b[14] != b'Z' {
        return Err(DerError("bad time"));
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    Timestamp::parse_rfc3339(&rfc).ok_or(DerError("bad time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_generated_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["pi.example.net".into(), "homeline.local".into()])
                .expect("params");
        params.not_before = rcgen::date_time_ymd(2026, 1, 2);
        params.not_after = rcgen::date_time_ymd(2051, 3, 4);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let p = read(cert.der()).expect("parsed");
        assert_eq!(p.names, vec!["pi.example.net", "homeline.local"]);
        assert_eq!(p.not_before.to_string(), "2026-01-02T00:00:00Z");
        assert_eq!(
            p.not_after.to_string(),
            "2051-03-04T00:00:00Z",
            "GeneralizedTime after 2049"
        );
        assert_eq!(p.issuer, "Test Root");
        assert!(p.self_signed);
    }

    #[test]
    fn an_issued_certificate_is_not_self_signed() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Pebble");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["a.example".into()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let p = read(leaf.der()).expect("parsed");
        assert!(!p.self_signed);
        assert_eq!(
            p.issuer, "Pebble",
            "organisation when there is no common name"
        );
        assert_eq!(read(ca_cert.der()).expect("ca").names, Vec::<String>::new());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x03, 0x02, 0x01],
        ] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = cert.der().to_vec();
        for cut in 0..der.len() {
            let _ = read(&der[..cut]);
        }
    }
}
