//! Who rings when: the routing-rule model, the schedules rules and
//! Do-Not-Disturb share, and the one decision function every incoming call
//! goes through ([`engine`]).
//!
//! Pure logic over values: nothing here waits on the network, and only
//! the submodules named `store` touch the database.

pub mod dnd;
pub mod engine;
pub mod model;
pub mod schedule;
pub mod signals;
pub mod store;
