//! `userdrop provision status` and `userdrop provision resync`: where each
//! tenant's SCIM provisioning stands (cursor, lag, refusals), and marking
//! every user of a tenant to be pushed again. The daemon's provisioner does
//! the pushing (`crate::provision`); this file only reads and marks, and
//! must never call the application.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{open_store, open_store_read_only, out, tenant_of, usage};
use crate::config::Config;
use crate::store::provision;

#[derive(Debug, Subcommand)]
pub enum ProvisionAction {
    /// Per tenant with [provision]: the cursor, how many changes (and how
    /// old the oldest) wait, the refusals and the newest of them.
    Status {
        #[arg(long)]
        tenant: Option<String>,
        /// How many of the newest refusals to show.
        #[arg(long, default_value_t = 5)]
        errors: i64,
        #[arg(long)]
        json: bool,
    },
    /// Mark every user of the tenant to be pushed again (PUT, or POST when
    /// the application lost them); the running daemon does it within 30 s,
    /// or at its next start.
    Resync {
        #[arg(long)]
        tenant: String,
    },
}

pub(super) fn status(
    c: &Config,
    tenant: Option<&str>,
    errors: i64,
    json: bool,
) -> Result<ExitCode> {
    let names: Vec<String> = match tenant {
        Some(t) => {
            if tenant_of(c, t)?.provision.is_none() {
                return Err(usage(format!(
                    "tenant {t:?} has no [tenants.{t}.provision] table in {}",
                    c.source_name
                )));
            }
            vec![t.to_string()]
        }
        None => c
            .tenants
            .values()
            .filter(|t| t.provision.is_some())
            .map(|t| t.name.clone())
            .collect(),
    };
    if names.is_empty() {
        out!("no tenant has a [provision] table in {}", c.source_name);
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store_read_only(c)?;
    let now = chrono::Utc::now();
    for name in names {
        let s = provision::standing(&store, &name, errors.max(0))?;
        let lag_seconds = s
            .oldest_pending_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or(0, |at| {
                (now - at.with_timezone(&chrono::Utc)).num_seconds().max(0)
            });
        if json {
            let mut v = serde_json::to_value(&s)?;
            v["lag_seconds"] = lag_seconds.into();
            out!("{v}");
            continue;
        }
        let url = c
            .tenant(&name)
            .and_then(|t| t.provision.as_ref())
            .map_or("", |p| p.scim_url.as_str());
        out!("{name}: {url}");
        out!(
            "  cursor {} of {} (lag {} changes, {lag_seconds} s); resync pending {}; refused {}",
            s.cursor,
            s.last_seq,
            s.lag_changes,
            s.resync_pending,
            s.errors
        );
        for e in &s.last_errors {
            out!(
                "  {} seq {} job {} key {}: {} {}",
                e.at,
                e.seq,
                e.job,
                e.key,
                e.status,
                e.message
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn resync(c: &Config, tenant: &str) -> Result<ExitCode> {
    if tenant_of(c, tenant)?.provision.is_none() {
        return Err(usage(format!(
            "tenant {tenant:?} has no [tenants.{tenant}.provision] table in {}",
            c.source_name
        )));
    }
    let mut store = open_store(c)?;
    let tx = store.write()?;
    let n = provision::mark_resync(&tx, tenant)?;
    tx.commit()?;
    out!("{tenant}: {n} users marked to be pushed again; `userdrop serve` pushes them (within 30 s while running)");
    Ok(ExitCode::SUCCESS)
}
