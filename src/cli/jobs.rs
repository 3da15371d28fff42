//! `userdrop jobs`: the job history, one job's outcome, and approving a
//! held job. This file only parses, calls the library and prints; it must
//! never hold a rule of the product (which job may be approved, and what
//! approving it does, is decided by `crate::worker::approve`).

use std::io;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::out;
use super::{exit_for, open_store, open_store_read_only, print_report, tenant_of, usage};
use crate::config::Config;
use crate::report::summary::JobReport;
use crate::report::table::{self, Column};
use crate::store::{jobs, Store};
use crate::worker::{self, ApproveError};

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
        /// Print what the job changed, one line per field, as CSV (key, op,
        /// field, before, after) instead.
        #[arg(long, conflicts_with_all = ["json", "failed_csv"])]
        changes: bool,
    },
    /// Apply a held sync job.
    Approve { id: i64 },
}

const JOB_COLUMNS: [Column; 8] = [
    Column::right("job", 6),
    Column::left("created", 20),
    Column::left("tenant", 12),
    Column::left("state", 10),
    Column::left("status", 11),
    Column::right("rows", 8),
    Column::right("failed", 7),
    Column::left("file", 0),
];

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
    let list = jobs::list(&store, tenant, limit)?;
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
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        out!("no jobs yet");
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", table::header(&JOB_COLUMNS));
    for j in &list {
        let report: Option<JobReport> = j
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let (rows, failed) = report
            .map(|r| (r.counts.rows.to_string(), r.counts.failed.to_string()))
            .unwrap_or_default();
        let cells = [
            j.id.to_string(),
            j.created_at.clone(),
            j.tenant.clone(),
            j.state.to_string(),
            j.status.map_or("-", |s| s.as_str()).to_string(),
            rows,
            failed,
            j.file.clone(),
        ];
        out!("{}", table::row(&JOB_COLUMNS, &cells));
    }
    Ok(ExitCode::SUCCESS)
}

fn stored_report(
    store: &Store,
    id: i64,
) -> Result<(jobs::JobRow, Option<JobReport>, Vec<jobs::StoredError>)> {
    let job = jobs::get(store, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
    let stored = crate::report::ledger::stored_report(store, &job)
        .with_context(|| format!("job {id} has an unreadable report"))?;
    Ok(match stored {
        Some((report, errors)) => (job, Some(report), errors),
        None => (job, None, Vec::new()),
    })
}

pub(super) fn jobs_show(
    c: &Config,
    id: i64,
    json: bool,
    failed_csv: bool,
    changes: bool,
) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    if changes {
        let job = jobs::get(&store, id)?.ok_or_else(|| usage(format!("there is no job {id}")))?;
        let mut w = csv::Writer::from_writer(io::stdout().lock());
        w.write_record(["key", "op", "field", "before", "after"])?;
        let mut failed = None;
        crate::feed::job_rows(&store, &job.tenant, id, |r| {
            if failed.is_none() {
                failed = w.write_record(&r).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        w.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (job, report, errors) = stored_report(&store, id)?;
    let Some(report) = report else {
        out!(
            "job {id}: {} for tenant {}, {} (from {}), not finished",
            job.file,
            job.tenant,
            job.state,
            job.source
        );
        return Ok(ExitCode::SUCCESS);
    };
    if failed_csv {
        // The errors are read once, above.
        let bytes = crate::report::ledger::failed_csv_of(&report, &errors);
        io::Write::write_all(&mut io::stdout().lock(), &bytes)?;
    } else if json {
        // The users the SCIM application refused (docs/provision.md), when
        // there are any.
        let refused = crate::store::provision::refusals_of_job(&store, id)?;
        let mut v = serde_json::to_value(&report)?;
        if !refused.is_empty() {
            v["provision_refused"] = serde_json::to_value(&refused)?;
        }
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!(no_newline; "{}", report.human(usize::MAX));
        out!(
            "  state {}, from {}, received {}",
            job.state,
            job.source,
            job.created_at
        );
        // The users the SCIM application refused (docs/provision.md):
        // known only once the provisioner has pushed the job's changes.
        let refused = crate::store::provision::refusals_of_job(&store, id)?;
        if !refused.is_empty() {
            out!(
                "  the SCIM application refused {} user{}:",
                refused.len(),
                if refused.len() == 1 { "" } else { "s" }
            );
            for r in &refused {
                out!(
                    "    key {}: {} {} (seq {}, {})",
                    r.key,
                    r.status,
                    r.message,
                    r.seq,
                    r.at
                );
            }
        }
    }
    Ok(exit_for(report.status))
}

pub(super) fn jobs_approve(c: &Config, id: i64) -> Result<ExitCode> {
    let mut store = open_store(c)?;
    let outcome = worker::approve(&mut store, c, id).map_err(|e| match e {
        ApproveError::NoSuchJob(_)
        | ApproveError::NotHeld { .. }
        | ApproveError::NewerApplied { .. }
        | ApproveError::NoSuchTenant { .. } => usage(e.to_string()),
        other => other.into(),
    })?;
    print_report(&outcome.report, false)?;
    Ok(exit_for(outcome.report.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job list is read by eyes and by scripts: the shared table
    /// printer must lay it out as the list always was.
    #[test]
    fn job_list_lines_keep_their_layout() {
        assert_eq!(
            table::header(&JOB_COLUMNS),
            format!(
                "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  file",
                "job", "created", "tenant", "state", "status", "rows", "failed"
            )
        );
        let cells = [
            "42",
            "2026-11-21T10:15:00Z",
            "acme-with-a-long-name",
            "applied",
            "rows_failed",
            "1200",
            "3",
            "users.csv",
        ];
        assert_eq!(
            table::row(&JOB_COLUMNS, &cells),
            format!(
                "{:>6}  {:<20}  {:<12}  {:<10}  {:<11}  {:>8}  {:>7}  {}",
                42,
                cells[1],
                cells[2],
                crate::store::jobs::JobState::Applied,
                cells[4],
                cells[5],
                cells[6],
                cells[7]
            )
        );
    }
}
