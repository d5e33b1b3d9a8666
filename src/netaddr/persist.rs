//! The `network_state` and `port_mappings` tables (migration 010): what the
//! service found, kept across restarts. Callers write only on changes.

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension};

use super::{DdnsState, MappingState, MappingStatus, Protocol, Source};
use crate::clock::Timestamp;
use crate::store::StoreError;

/// The stored address and DNS state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The public address last found.
    pub public_ip: Option<IpAddr>,
    /// Where from.
    pub source: Option<Source>,
    /// When it changed.
    pub changed_at: Option<Timestamp>,
    /// The DNS name's last update.
    pub ddns: DdnsState,
}

fn ts(s: Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(Timestamp::parse_rfc3339)
}

/// Reads the stored state (defaults when none).
pub fn load(conn: &Connection) -> Result<(Stored, Vec<MappingState>), StoreError> {
    let stored = conn
        .query_row(
            "SELECT public_ip, source, changed_at, ddns_ip, ddns_status, ddns_error, ddns_updated_at
             FROM network_state WHERE id = 1",
            [],
            |r| {
                Ok(Stored {
                    public_ip: r.get::<_, Option<String>>(0)?.and_then(|s| s.parse().ok()),
                    source: Some(Source::parse(&r.get::<_, String>(1)?)),
                    changed_at: ts(r.get(2)?),
                    ddns: DdnsState {
                        provider: None,
                        name: None,
                        ip: r.get::<_, Option<String>>(3)?.and_then(|s| s.parse().ok()),
                        status: r.get(4)?,
                        error: r.get(5)?,
                        updated_at: ts(r.get(6)?),
                    },
                })
            },
        )
        .optional()?
        .unwrap_or_default();
    let mut stmt = conn.prepare(
        "SELECT name, protocol, external_first, external_last, internal_port, status, detail, via,
                expires_at, updated_at
         FROM port_mappings ORDER BY name",
    )?;
    let mappings = stmt
        .query_map([], |r| {
            Ok(MappingState {
                name: r.get(0)?,
                protocol: if r.get::<_, String>(1)? == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                external_first: r.get(2)?,
                external_last: r.get(3)?,
                internal_port: r.get(4)?,
                status: MappingStatus::parse(&r.get::<_, String>(5)?),
                detail: r.get(6)?,
                via: r.get::<_, Option<String>>(7)?.map(|s| Source::parse(&s)),
                expires_at: ts(r.get(8)?),
                updated_at: ts(r.get(9)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((stored, mappings))
}

/// What the doctor's router checks read (`doctor::public_address::check`,
/// `doctor::forwards::check`), from the stored state, so `homeline doctor`
/// (another process) sees what the running service found: the public
/// address and its source, the forwards, and whether the admin agreed.
pub fn doctor_facts(
    conn: &Connection,
) -> Result<(Option<IpAddr>, Source, Vec<MappingState>, bool), StoreError> {
    let (stored, mappings) = load(conn)?;
    let auto_forward = crate::sysconfig::flag(conn, "router.auto_forward")?;
    let mappings = if auto_forward { mappings } else { Vec::new() };
    Ok((
        stored.public_ip,
        stored.source.unwrap_or(Source::None),
        mappings,
        auto_forward,
    ))
}

/// Stores a new public address.
pub fn save_address(
    conn: &Connection,
    ip: Option<IpAddr>,
    source: Source,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO network_state (id, public_ip, source, changed_at, updated_at)
         VALUES (1, ?1, ?2, ?3, ?3)
         ON CONFLICT (id) DO UPDATE SET public_ip = ?1, source = ?2, changed_at = ?3, updated_at = ?3",
        params![ip.map(|i| i.to_string()), source.as_str(), now.to_string()],
    )?;
    Ok(())
}

/// Stores the outcome of a DNS update.
pub fn save_ddns(conn: &Connection, d: &DdnsState, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO network_state (id, ddns_ip, ddns_status, ddns_error, ddns_updated_at, updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET ddns_ip = ?1, ddns_status = ?2, ddns_error = ?3,
             ddns_updated_at = ?4, updated_at = ?5",
        params![
            d.ip.map(|i| i.to_string()),
            d.status,
            d.error,
            d.updated_at.map(|t| t.to_string()),
            now.to_string()
        ],
    )?;
    Ok(())
}

/// Stores a mapping's state.
pub fn save_mapping(conn: &Connection, m: &MappingState, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO port_mappings (name, protocol, external_first, external_last, internal_port,
             status, detail, via, expires_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (name) DO UPDATE SET protocol = ?2, external_first = ?3, external_last = ?4,
             internal_port = ?5, status = ?6, detail = ?7, via = ?8, expires_at = ?9, updated_at = ?10",
        params![
            m.name,
            m.protocol.as_str(),
            m.external_first,
            m.external_last,
            m.internal_port,
            m.status.as_str(),
            m.detail,
            m.via.map(Source::as_str),
            m.expires_at.map(|t| t.to_string()),
            now.to_string()
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{db, t};

    #[test]
    fn state_and_mappings_round_trip() {
        let conn = db();
        assert_eq!(load(&conn).expect("load").0, Stored::default());
        let ip: IpAddr = "203.0.113.5".parse().expect("ip");
        save_address(&conn, Some(ip), Source::Upnp, t(1)).expect("save");
        let d = DdnsState {
            ip: Some(ip),
            status: "ok".into(),
            updated_at: Some(t(2)),
            ..DdnsState::default()
        };
        save_ddns(&conn, &d, t(2)).expect("ddns");
        let m = MappingState {
            name: "rtp".into(),
            protocol: Protocol::Udp,
            external_first: 10000,
            external_last: 10003,
            internal_port: 10000,
            status: MappingStatus::Refused,
            detail: Some("UPnP error 718 ConflictInMappingEntry".into()),
            via: Some(Source::Upnp),
            expires_at: None,
            updated_at: Some(t(3)),
        };
        save_mapping(&conn, &m, t(3)).expect("mapping");
        let (s, ms) = load(&conn).expect("load");
        assert_eq!(s.public_ip, Some(ip));
        assert_eq!(s.source, Some(Source::Upnp));
        assert_eq!(s.changed_at, Some(t(1)));
        assert_eq!(s.ddns.ip, Some(ip));
        assert_eq!(s.ddns.status, "ok");
        assert_eq!(ms, vec![m.clone()]);
        let (ip_now, source, mappings, auto) = doctor_facts(&conn).expect("facts");
        assert_eq!(
            (ip_now, source, mappings.len(), auto),
            (Some(ip), Source::Upnp, 0, false)
        );
        crate::store::config::set(&conn, "router.auto_forward", "true", t(4)).expect("set");
        assert_eq!(doctor_facts(&conn).expect("facts").2, vec![m]);
    }
}
