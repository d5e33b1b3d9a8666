//! Ownership: what a caller may see, decided in one place.
//!
//! An admin sees everything. A user sees the devices they own and the
//! numbers (DIDs) assigned to them, and through those numbers their
//! voicemail, messages and call history. Handlers turn the request's
//! principal into a [`Scope`] and pass its filters to the repositories
//! (`devices::list(owner)`, `cdrs::Filter.did_ids`, `voicemails::list(did_ids)`,
//! `messages::conversations(did_ids)`, `dids::list(user)`); single objects go
//! through the `check_*` methods.
//!
//! Another user's object answers "not found", exactly like a missing one, so
//! ids cannot be probed for existence (GoSIP let every user see and edit
//! everything).

use rusqlite::Connection;

use super::session::Principal;
use crate::store::devices::{self, Device};
use crate::store::users::Role;
use crate::store::{dids, StoreError};

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (an admin).
    All,
    /// One user's own things.
    Own {
        /// The user: owner of devices.
        user_id: i64,
        /// The numbers assigned to them, ascending.
        did_ids: Vec<i64>,
    },
}

impl Scope {
    /// The scope of `principal`, reading its number assignments now.
    pub fn load(conn: &Connection, principal: &Principal) -> Result<Scope, StoreError> {
        Ok(match principal.role {
            Role::Admin => Scope::All,
            Role::User => Scope::Own {
                user_id: principal.user_id,
                did_ids: dids::ids_of_user(conn, principal.user_id)?,
            },
        })
    }

    /// The owner filter for `devices::list` (and `dids::list`'s user filter).
    pub fn owner(&self) -> Option<i64> {
        match self {
            Scope::All => None,
            Scope::Own { user_id, .. } => Some(*user_id),
        }
    }

    /// The number filter for voicemail, messages and call history.
    pub fn did_ids(&self) -> Option<&[i64]> {
        match self {
            Scope::All => None,
            Scope::Own { did_ids, .. } => Some(did_ids),
        }
    }

    /// Whether number `did_id` is visible.
    pub fn sees_did(&self, did_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Own { did_ids, .. } => did_ids.binary_search(&did_id).is_ok(),
        }
    }

    /// `Ok` if number `did_id` is visible; otherwise the same not-found as
    /// for a number that does not exist.
    pub fn check_did(&self, did_id: i64) -> Result<(), StoreError> {
        if self.sees_did(did_id) {
            Ok(())
        } else {
            Err(StoreError::not_found("number", did_id))
        }
    }

    /// For an object that belongs to a number (a voicemail, a message, a call
    /// record): `Ok` if that number is visible, otherwise not-found as
    /// `entity` `id`. Objects with no number (`None`, e.g. an internal call)
    /// are visible to admins only.
    pub fn check_did_of(
        &self,
        entity: &'static str,
        id: i64,
        did_id: Option<i64>,
    ) -> Result<(), StoreError> {
        match (self, did_id) {
            (Scope::All, _) => Ok(()),
            (Scope::Own { .. }, Some(did)) if self.sees_did(did) => Ok(()),
            _ => Err(StoreError::not_found(entity, id)),
        }
    }

    /// The device `id` if visible; otherwise not-found, as for a missing one.
    pub fn check_device(
        &self,
        conn: &Connection,
        id: devices::DeviceId,
    ) -> Result<Device, StoreError> {
        let device = devices::get(conn, id)?;
        match self {
            Scope::All => Ok(device),
            Scope::Own { user_id, .. } if device.user_id == Some(*user_id) => Ok(device),
            Scope::Own { .. } => Err(StoreError::not_found("device", id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::db;
    use crate::store::{devices, dids, users, Page};

    fn principal(user_id: i64, role: Role) -> Principal {
        Principal {
            user_id,
            role,
            session_id: 0,
        }
    }

    #[test]
    fn users_see_their_own_admins_see_all() {
        let conn = db();
        let mum = users::tests::make(&conn, "mum@x.org", Role::Admin);
        let kid = users::tests::make(&conn, "kid@x.org", Role::User);
        let gran = users::tests::make(&conn, "gran@x.org", Role::User);
        let home = dids::tests::make(&conn, "+15551230001");
        let gran_line = dids::tests::make(&conn, "+15551230002");
        dids::assign(&conn, home, kid).expect("assign");
        dids::assign(&conn, gran_line, gran).expect("assign");
        let kid_phone = devices::tests::make(&conn, "kid-phone", Some(kid));
        let gran_phone = devices::tests::make(&conn, "gran-phone", Some(gran));
        let unowned = devices::tests::make(&conn, "hall", None);

        let admin = Scope::load(&conn, &principal(mum, Role::Admin)).expect("scope");
        assert_eq!(admin, Scope::All);
        assert_eq!((admin.owner(), admin.did_ids()), (None, None));
        for d in [kid_phone, gran_phone, unowned] {
            admin
                .check_device(&conn, d)
                .expect("admin sees every device");
        }
        admin.check_did(gran_line).expect("admin sees every number");
        admin
            .check_did_of("call", 1, None)
            .expect("and calls without a number");

        let scope = Scope::load(&conn, &principal(kid, Role::User)).expect("scope");
        assert_eq!(
            scope,
            Scope::Own {
                user_id: kid,
                did_ids: vec![home]
            }
        );
        scope.check_device(&conn, kid_phone).expect("own device");
        scope.check_did(home).expect("own number");
        scope
            .check_did_of("voicemail", 7, Some(home))
            .expect("own voicemail");
        for denied in [
            scope.check_device(&conn, gran_phone).map(|_| ()),
            scope.check_device(&conn, unowned).map(|_| ()),
            scope.check_did(gran_line),
            scope.check_did_of("voicemail", 8, Some(gran_line)),
            scope.check_did_of("call", 9, None),
        ] {
            assert!(
                matches!(denied, Err(StoreError::NotFound { .. })),
                "another user's object is simply not found: {denied:?}"
            );
        }
        let missing = scope
            .check_device(&conn, devices::DeviceId(9999))
            .map(|_| ())
            .unwrap_err();
        let foreign = scope
            .check_device(&conn, gran_phone)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            missing.to_string().replace("9999", "N"),
            foreign.to_string().replace(&gran_phone.to_string(), "N"),
            "same answer for missing and foreign"
        );

        // The filters give repositories exactly the user's rows.
        let listed = devices::list(&conn, scope.owner(), Page::ALL).expect("list");
        assert_eq!(
            listed.items.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![kid_phone]
        );
        let numbers = dids::list(&conn, scope.owner(), Page::ALL).expect("list");
        assert_eq!(
            numbers.items.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![home]
        );
        assert_eq!(scope.did_ids(), Some(&[home][..]));
    }

    #[test]
    fn a_demoted_admin_is_scoped_at_once() {
        let conn = db();
        let mum = users::tests::make(&conn, "mum@x.org", Role::User);
        let scope = Scope::load(&conn, &principal(mum, Role::User)).expect("scope");
        assert_eq!(
            scope,
            Scope::Own {
                user_id: mum,
                did_ids: vec![]
            }
        );
        assert!(scope.check_did(1).is_err());
    }
}
