//! `userdrop import`: runs one file through the library's pipeline and
//! prints the outcome, deciding as the daemon would for the same file: a
//! name the tenant's `accept` does not match is refused as a whole
//! (`crate::pickup::admit::accepted`, the worker's own check), a dry run
//! included. A recorded job of a tenant with an inbox leaves what an upload
//! leaves (`crate::archive::archive`): `results/` and a copy of the file in
//! `.bak/`, so the customer can fetch the failed rows over SFTP whichever
//! way the file came in. A held job's file is kept for `jobs approve`
//! (`crate::import::keep_if_held`). This file must never hold a rule of the
//! product: what a file may be and what happens to it is decided in the
//! library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{exit_for, open_store, print_report, tenant_of, usage};
use crate::config::{Config, Tenant};
use crate::import::{self, ImportOptions, RowNumbers};
use crate::pickup::admit::accepted;
use crate::report::ledger::stored_report;
use crate::report::summary::JobReport;
use crate::store::{jobs, Store};

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
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    if dry_run {
        let report = match accepted(t, &file_name) {
            Ok(()) => {
                let mut store = open_store(c)?;
                run(&mut store, t, file, &file_name, true)?
            }
            Err(err) => JobReport::refused(&t.name, &file_name, None, true, &err),
        };
        print_report(&report, json)?;
        return Ok(exit_for(report.status));
    }
    let mut store = open_store(c)?;
    let report = match accepted(t, &file_name) {
        Ok(()) => run(&mut store, t, file, &file_name, false)?,
        Err(err) => {
            let id = jobs::create(&store, &t.name, &file_name, "cli", &file.to_string_lossy())?;
            import::refuse(&mut store, t, id, &file_name, &err)?.report
        }
    };
    let kept = import::keep_if_held(&store, c, &report, file, &file_name)?;
    if let Some(id) = report.job {
        write_results(&store, c, id, file, &file_name, kept)?;
    }
    print_report(&report, json)?;
    Ok(exit_for(report.status))
}

fn run(
    store: &mut Store,
    t: &Tenant,
    file: &Path,
    file_name: &str,
    dry_run: bool,
) -> Result<JobReport> {
    let opts = ImportOptions {
        file_name,
        source: "cli",
        dry_run,
        job: None,
        approved: false,
        rows: RowNumbers::Lines,
    };
    Ok(import::run(store, t, file, &opts)?.report)
}

/// Whether the tenant has an inbox a customer can read `results/` from:
/// an SFTP account, or a tenant root the daemon has made.
fn has_inbox(c: &Config, tenant: &str) -> bool {
    c.tenant(tenant).is_some_and(|t| !t.accounts.is_empty()) || c.tenant_root(tenant).is_dir()
}

/// Archives job `id` as the daemon archives an upload's: its outcome in
/// `results/` and the file in `.bak/`. The caller's file stays where it
/// is: a copy in the spool (the held file's, when `kept`) is what moves.
fn write_results(
    store: &Store,
    c: &Config,
    id: i64,
    file: &Path,
    file_name: &str,
    kept: Option<PathBuf>,
) -> Result<()> {
    let job = jobs::get(store, id)?.context("the job just recorded")?;
    if !has_inbox(c, &job.tenant) {
        return Ok(());
    }
    let root = c.tenant_root(&job.tenant);
    crate::sftp::fs::ensure_tenant_root(&root)
        .with_context(|| format!("creating the tenant root {}", root.display()))?;
    if kept.is_none() {
        let dir = c.spool_dir(&job.tenant);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let copy = dir.join(format!("{id}_{file_name}"));
        std::fs::copy(file, &copy)
            .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
        jobs::set_path(store, id, &copy.to_string_lossy())?;
    }
    let job = jobs::get(store, id)?.context("the job just recorded")?;
    let (report, errors) = stored_report(store, &job)?.context("a decided job has a report")?;
    let bak = crate::archive::archive(&root, &job, &report, &errors)
        .with_context(|| format!("writing results/ and .bak/ in {}", root.display()))?;
    jobs::mark_archived(store, id, &bak.to_string_lossy())?;
    Ok(())
}
