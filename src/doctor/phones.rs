//! Are the phones registered? A phone rings only while it has a live
//! registration; one that lost it (wrong password, changed address, turned
//! off) misses calls without anyone noticing.

use super::Check;

const ID: &str = "phones";
const TITLE: &str = "Phones registered";

/// One phone and whether it holds a live registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneState {
    /// Its name ("Kitchen").
    pub name: String,
    /// Its SIP user name.
    pub username: String,
    /// Live contacts.
    pub contacts: usize,
}

/// The check. `source` says where registrations were read ("live" or "as
/// last recorded").
pub fn check(phones: &[PhoneState], source: &str) -> Check {
    if phones.is_empty() {
        return Check::warning(
            ID,
            TITLE,
            "no phone is set up",
            "Add a phone on the Phones page and enter its SIP login in the phone.",
        );
    }
    let missing: Vec<String> = phones
        .iter()
        .filter(|p| p.contacts == 0)
        .map(|p| format!("{} ({})", p.name, p.username))
        .collect();
    let total = phones.len();
    if missing.is_empty() {
        return Check::ok(
            ID,
            TITLE,
            format!("all {total} phone(s) registered ({source})"),
        );
    }
    let detail = format!(
        "{} of {total} phone(s) not registered ({source}): {}",
        missing.len(),
        missing.join(", ")
    );
    let fix = "Check the phone is on and on the home network, and that its SIP server is this \
               appliance's address with the user name and password of the Phones page (realm \
               homeline); the phone's own status page shows why registration failed.";
    if missing.len() == total {
        Check::error(ID, TITLE, detail, fix)
    } else {
        Check::warning(ID, TITLE, detail, fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn phone(name: &str, contacts: usize) -> PhoneState {
        PhoneState {
            name: name.into(),
            username: name.to_lowercase(),
            contacts,
        }
    }

    #[test]
    fn registered_phones_are_ok() {
        assert_eq!(check(&[phone("Kitchen", 1)], "live").status, Status::Ok);
    }

    #[test]
    fn unregistered_phones_are_named() {
        let c = check(&[phone("Kitchen", 1), phone("Attic", 0)], "live");
        assert_eq!(c.status, Status::Warning);
        assert!(c.detail.contains("Attic (attic)"), "{c:?}");
        assert_eq!(check(&[phone("Attic", 0)], "live").status, Status::Error);
        assert_eq!(check(&[], "live").status, Status::Warning);
    }
}
