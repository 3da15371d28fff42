//! The provisioner's numbers for `/metrics`: per tenant, the deliveries by
//! outcome (the lag is read from the store at scrape time).
//! Kept in the process (the provisioner and the HTTP API run in the same
//! `userdrop serve`). This module must never hold a key or a user.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::provision::Outcome;

#[derive(Debug, Default, Clone)]
pub struct Numbers {
    /// (tenant, outcome) → count; outcome: holds | gone | refused | retried.
    pub deliveries: BTreeMap<(String, &'static str), u64>,
}

static NUMBERS: Mutex<Option<Numbers>> = Mutex::new(None);

fn with(f: impl FnOnce(&mut Numbers)) {
    let mut g = NUMBERS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Numbers::default));
}

pub fn count(tenant: &str, outcome: &Outcome) {
    let label = match outcome {
        Outcome::Holds(_) => "pushed",
        Outcome::Gone => "deleted",
        Outcome::Refused { .. } => "refused",
    };
    with(|n| *n.deliveries.entry((tenant.to_string(), label)).or_default() += 1);
}

pub fn count_retry(tenant: &str) {
    with(|n| {
        *n.deliveries
            .entry((tenant.to_string(), "retried"))
            .or_default() += 1
    });
}

/// A copy of the numbers now.
pub fn read() -> Numbers {
    NUMBERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}
