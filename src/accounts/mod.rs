//! Web accounts: password hashing and policy. Sessions, roles and login
//! protection build on this module.

pub mod password;
