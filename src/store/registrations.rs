//! The `registrations` table: the durable copy of SIP bindings.
//!
//! The registrar keeps bindings in RAM and calls this module only when a
//! binding is created, changes (contact, transport, source) or is removed —
//! never for a plain refresh — so re-registering phones cost the SD card
//! nothing. After a restart the rows let phones keep ringing until they
//! re-register.

use rusqlite::{params, Connection, Row};
use serde::Serialize;

use super::StoreError;
use crate::clock::Timestamp;

text_enum! {
    /// The transport a binding was made over; always stored in lower case.
    pub enum Transport { Udp = "udp", Tcp = "tcp", Tls = "tls", Ws = "ws", Wss = "wss" }
}

impl Transport {
    /// Parses a Via transport token, which phones send in upper case (`UDP`).
    pub fn from_via(token: &str) -> Option<Transport> {
        token.to_ascii_lowercase().parse().ok()
    }
}

/// One stored binding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    /// The phone.
    pub device_id: i64,
    /// The Contact URI the phone registered.
    pub contact_uri: String,
    /// When it lapses unless refreshed.
    pub expires_at: String,
    /// The phone's User-Agent.
    pub user_agent: Option<String>,
    /// Where the REGISTER came from (ip:port), for NATed phones.
    pub source_addr: String,
    /// Over which transport.
    pub transport: Transport,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        device_id: r.get(0)?,
        contact_uri: r.get(1)?,
        expires_at: r.get(2)?,
        user_agent: r.get(3)?,
        source_addr: r.get(4)?,
        transport: r.get(5)?,
    })
}

/// Stores a new or changed binding.
pub fn upsert(conn: &Connection, b: &Binding, now: Timestamp) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO registrations (device_id, contact_uri, expires_at, user_agent, source_addr, transport, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (device_id, contact_uri) DO UPDATE SET expires_at = excluded.expires_at,
             user_agent = excluded.user_agent, source_addr = excluded.source_addr, transport = excluded.transport",
        params![b.device_id, b.contact_uri, b.expires_at, b.user_agent, b.source_addr, b.transport, now.to_string()],
    )
    .map_err(|e| super::conflict_as(e, "no such device"))?;
    Ok(())
}

/// Removes one binding; returns whether it existed.
pub fn remove(conn: &Connection, device_id: i64, contact_uri: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM registrations WHERE device_id = ?1 AND contact_uri = ?2",
        params![device_id, contact_uri],
    )? > 0)
}

/// Removes every binding of a phone (`Contact: *`).
pub fn remove_all(conn: &Connection, device_id: i64) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "DELETE FROM registrations WHERE device_id = ?1",
        [device_id],
    )? as u64)
}

/// Removes bindings that lapsed before `now`.
pub fn remove_expired(conn: &Connection, now: Timestamp) -> Result<u64, StoreError> {
    Ok(conn.execute(
        "DELETE FROM registrations WHERE expires_at < ?1",
        [now.to_string()],
    )? as u64)
}

/// Every stored binding, for loading the registrar at startup.
pub fn all(conn: &Connection) -> Result<Vec<Binding>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, contact_uri, expires_at, user_agent, source_addr, transport FROM registrations
         ORDER BY device_id, contact_uri",
    )?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::devices;
    use crate::store::testing::{db, t};

    fn binding(device_id: i64, contact: &str, expires: Timestamp) -> Binding {
        Binding {
            device_id,
            contact_uri: contact.into(),
            expires_at: expires.to_string(),
            user_agent: Some("Grandstream GXP1760W".into()),
            source_addr: "192.0.2.10:5060".into(),
            transport: Transport::from_via("UDP").expect("upper-case Via token"),
        }
    }

    #[test]
    fn upsert_remove_and_expire() {
        let conn = db();
        let phone = devices::tests::make(&conn, "kitchen", None).0;
        upsert(
            &conn,
            &binding(phone, "sip:kitchen@192.0.2.10", t(60)),
            t(0),
        )
        .expect("insert");
        upsert(
            &conn,
            &binding(phone, "sip:kitchen@192.0.2.10", t(120)),
            t(1),
        )
        .expect("update same contact");
        upsert(
            &conn,
            &binding(phone, "sip:kitchen@198.51.100.7", t(30)),
            t(1),
        )
        .expect("second contact");
        assert_eq!(all(&conn).expect("all").len(), 2);
        assert_eq!(remove_expired(&conn, t(60)).expect("expire"), 1);
        let left = all(&conn).expect("all");
        assert_eq!(
            (left.len(), left[0].expires_at.as_str(), left[0].transport),
            (1, "2026-11-21T10:02:00Z", Transport::Udp)
        );
        assert!(remove(&conn, phone, "sip:kitchen@192.0.2.10").expect("remove"));
        upsert(&conn, &binding(phone, "sip:a@h", t(60)), t(0)).expect("insert");
        devices::delete(&conn, devices::DeviceId(phone)).expect("delete device");
        assert!(
            all(&conn).expect("all").is_empty(),
            "bindings go with their device"
        );
    }

    #[test]
    fn transport_check_is_case_insensitive_and_every_variant_fits() {
        let conn = db();
        let phone = devices::tests::make(&conn, "p", None).0;
        conn.execute(
            "INSERT INTO registrations (device_id, contact_uri, expires_at, source_addr, transport, created_at)
             VALUES (?1, 'sip:x@h', 'x', 'h:1', 'TLS', 'x')",
            [phone],
        )
        .expect("GoSIP's bug: upper-case Via transports violated the CHECK");
        for (i, tr) in Transport::ALL.iter().enumerate() {
            let mut b = binding(phone, &format!("sip:{i}@h"), t(60));
            b.transport = *tr;
            upsert(&conn, &b, t(0)).expect("every transport fits");
        }
        assert_eq!(
            remove_all(&conn, phone).expect("remove all"),
            1 + Transport::ALL.len() as u64
        );
        assert_eq!(Transport::from_via("SCTP"), None);
    }
}
