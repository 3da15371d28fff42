//! What userdrop tells people about a job: the outcome object printed by
//! `import --json` / `jobs show --json` and stored in the ledger
//! ([`summary`]), and the failed-rows CSV that automation fetches from
//! `results/` and the failure email attaches ([`failed_csv`]), a tenant's
//! users as CSV ([`export`]), and the plain-text tables the job and mail
//! lists print ([`table`]). This module
//! must never decide an outcome; it only presents one.

pub mod export;
pub mod failed_csv;
pub mod ledger;
pub mod summary;
pub mod table;
