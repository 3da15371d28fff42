//! SCIM 2.0 provisioning (docs/provision.md): the change ledger of each
//! tenant with `[tenants.NAME.provision]`, pushed in order into an
//! application's `/Users`. One concern per file: [`client`] (HTTP),
//! [`mapping`] (user → SCIM JSON), [`state`] (the store, off the runtime),
//! [`runner`] (the loop `userdrop serve` starts), [`meter`] (its numbers
//! for /metrics). This module must never change a user.

pub mod client;
pub mod mapping;
pub mod meter;
pub mod runner;
pub mod state;

pub use runner::run;
