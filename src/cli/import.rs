//! `userdrop import`: runs one file through the library's pipeline and
//! prints the outcome; a held job's file is kept in the spool for `jobs
//! approve`. This file must never hold a rule of the product: what a file
//! may be and what happens to it is decided in `crate::import`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{exit_for, open_store, print_report, tenant_of, usage};
use crate::config::Config;
use crate::import::{self, ImportOptions};
use crate::report::summary::Status;
use crate::store::jobs;

pub(super) fn import_cmd(
    c: &Config,
    tenant: &str,
    file: &Path,
    dry_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let t = tenant_of(c, tenant)?;
    if !file.is_file() {
        return Err(usage(format!("{} is not a file", file.display())));
    }
    let mut store = open_store(c)?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let opts = ImportOptions {
        file_name: &file_name,
        source: "cli",
        dry_run,
        job: None,
        approved: false,
    };
    let outcome = import::run(&mut store, t, file, &opts)?;
    let report = &outcome.report;
    if let (Status::Held, Some(id)) = (report.status, report.job) {
        // Keep the file for `jobs approve`: the caller's copy may change.
        let dir = c.spool_dir(tenant);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let kept = dir.join(format!("{id}_{file_name}"));
        std::fs::copy(file, &kept)
            .with_context(|| format!("keeping a copy of the held file in {}", kept.display()))?;
        jobs::set_path(&store.conn, id, &kept.to_string_lossy())?;
    }
    print_report(report, json)?;
    Ok(exit_for(report.status))
}
