//! `userdrop jobs`: the job history, one job's outcome, and approving a
//! held job. This file only parses, calls the library and prints; it must
//! never hold a rule of the product (which job may be approved is decided in
//! `crate::import`).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;

use super::{exit_for, open_store, open_store_read_only, print_report, tenant_of, usage};
use crate::config::Config;
use crate::import::{self, ImportOptions};
use crate::report::summary::JobReport;
use crate::store::{jobs, Store};

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// A job's outcome and every failed row.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        /// Print the failed-rows CSV (original columns + row + error) instead.
        #[arg(long, conflicts_with = "json")]
        failed_csv: bool,
    },
    /// Apply a held sync job.
    Approve { id: i64 },
}

pub(super) fn jobs_list(
    c: &Config,
    tenant: Option<&str>,
    limit: i64,
    json: bool,
) -> Result<ExitCode> {
    if let Some(t) = tenant {
        tenant_of(c, t)?;
    }
    let store = open_store_read_only(c)?;
    let list = jobs::list(&store.conn, tenant, limit)?;
    if json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|j| {
                let report: Option<serde_json::Value> = j
                    .report
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok());
                serde_json::json!({
                    "job": j.id, "tenant": j.tenant, "file": j.file, "source": j.source,
                    "state": j.state, "status": j.status, "created_at": j.created_at,
                    "finished_at": j.finished_at,
                    "counts": report.as_ref().and_then(|r| r.get("counts").cloned()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no jobs yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  file",
        "job", "created", "tenant", "state", "status", "rows", "failed"
    );
    for j in &list {
        let report: Option<JobReport> = j
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let (rows, failed) = report
            .map(|r| (r.counts.rows.to_string(), r.counts.failed.to_string()))
            .unwrap_or_default();
        println!(
            "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  {}",
            j.id,
            j.created_at,
            j.tenant,
            j.state,
            j.status.as_deref().unwrap_or("-"),
            rows,
            failed,
            j.file
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stored_report(
    store: &Store,
    id: i64,
) -> Result<(jobs::JobRow, Option<JobReport>, Vec<jobs::StoredError>)> {
    let job = jobs::get(&store.conn, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
    let stored = crate::report::ledger::stored_report(&store.conn, &job)
        .with_context(|| format!("job {id} has an unreadable report"))?;
    Ok(match stored {
        Some((report, errors)) => (job, Some(report), errors),
        None => (job, None, Vec::new()),
    })
}

pub(super) fn jobs_show(c: &Config, id: i64, json: bool, failed_csv: bool) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let (job, report, errors) = stored_report(&store, id)?;
    let Some(report) = report else {
        println!(
            "job {id}: {} for tenant {}, {} (from {}), not finished",
            job.file, job.tenant, job.state, job.source
        );
        return Ok(ExitCode::SUCCESS);
    };
    if failed_csv {
        let rows = crate::report::failed_csv::group(&errors);
        crate::report::failed_csv::write(io::stdout().lock(), &report.columns, &rows)?;
    } else if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.human(usize::MAX));
        println!(
            "  state {}, from {}, received {}",
            job.state, job.source, job.created_at
        );
    }
    Ok(exit_for(report.status))
}

pub(super) fn jobs_approve(c: &Config, id: i64) -> Result<ExitCode> {
    let mut store = open_store(c)?;
    let job = jobs::get(&store.conn, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
    if job.status.as_deref() != Some("held") {
        return Err(usage(format!(
            "job {id} is not held (its status is {}); only held sync jobs can be approved",
            job.status.as_deref().unwrap_or("not decided yet")
        )));
    }
    if let Some(newer) = jobs::newer_applied(&store.conn, &job.tenant, id)? {
        return Err(usage(format!(
            "job {newer} of tenant {} was applied after job {id}; approving the older file would undo it. Upload the file again if it is still wanted",
            job.tenant
        )));
    }
    let t = tenant_of(c, &job.tenant)?;
    let path = PathBuf::from(&job.path);
    if !path.is_file() {
        bail!(
            "the held file of job {id} is no longer at {}",
            path.display()
        );
    }
    let opts = ImportOptions {
        file_name: &job.file,
        source: &job.source,
        dry_run: false,
        job: Some(id),
        approved: true,
    };
    let outcome = import::run(&mut store, t, &path, &opts)?;
    if job.archived_at.is_some() {
        // The daemon's job: its results/ say "held"; write the new outcome
        // under the same names (the .bak/ copy stays where it is).
        let job = jobs::get(&store.conn, id)?.ok_or_else(|| anyhow!("job {id} vanished"))?;
        if let Some((report, errors)) = crate::report::ledger::stored_report(&store.conn, &job)? {
            crate::archive::archive(&c.tenant_root(&job.tenant), &job, &report, &errors)
                .with_context(|| format!("updating results/ of job {id}"))?;
        }
    }
    print_report(&outcome.report, false)?;
    Ok(exit_for(outcome.report.status))
}
