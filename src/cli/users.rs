//! `userdrop users`: the tenant's users as CSV. This file only opens the
//! output and prints; it must never hold a rule of the product (which field
//! becomes which cell is `crate::report::export`'s).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::{open_store_read_only, tenant_of};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// The tenant's users as CSV, importable again unchanged.
    Export {
        #[arg(long)]
        tenant: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub(super) fn export(c: &Config, tenant: &str, output: Option<&Path>) -> Result<ExitCode> {
    let t = tenant_of(c, tenant)?;
    let store = open_store_read_only(c)?;
    let out: Box<dyn Write> = match output {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    crate::report::export::write_users(&store, t, out)?;
    Ok(ExitCode::SUCCESS)
}
