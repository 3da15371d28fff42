//! `userdrop check-config`, `default-config` and `template`: the
//! configuration checked or printed, and the header row a tenant's file
//! starts from. This file only prints what the library decides; it must
//! never hold a rule of the product (validation lives in `crate::config`,
//! the header in the tenant's schema).

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::out;
use super::{load, tenant_of, usage};
use crate::ingest::layout::Layout;

pub(super) fn default_config() -> Result<ExitCode> {
    out!(no_newline; "{}", crate::config::EXAMPLE);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn check_config(config_path: Option<&Path>) -> Result<ExitCode> {
    // Every problem at once, the environment's (password_env) included.
    let c = crate::config::Config::load_for_check(config_path)?;
    out!(
        "{}: ok ({} tenant{}: {})",
        c.source_name,
        c.tenants.len(),
        if c.tenants.len() == 1 { "" } else { "s" },
        c.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn template(
    config_path: Option<&Path>,
    tenant: Option<&str>,
    layout: Option<&str>,
) -> Result<ExitCode> {
    if let Some(name) = layout {
        let layout = Layout::parse(name).ok_or_else(|| {
            usage(format!(
                "--layout {name:?} is not one of {}",
                Layout::names().join(", ")
            ))
        })?;
        // `generic` is the tenant's own header, below.
        if layout != Layout::Generic {
            let mut w = csv::Writer::from_writer(io::stdout().lock());
            w.write_record(layout.def().header)?;
            w.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let c = load(config_path)?;
    // Without --tenant only when there is no choice to make: tenants'
    // fields differ, and the first one is not necessarily the one meant.
    let t = match tenant {
        Some(name) => tenant_of(&c, name)?,
        None => match c.tenants.len() {
            0 => return Err(usage("the configuration has no tenant")),
            1 => c.tenants.values().next().expect("one tenant"),
            _ => {
                return Err(usage(format!(
                    "this configuration has {} tenants: say which with --tenant ({})",
                    c.tenants.len(),
                    c.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        },
    };
    let mut w = csv::Writer::from_writer(io::stdout().lock());
    w.write_record(t.schema.template_header())?;
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}
