//! A finished job's outcome read back from the ledger: the stored report
//! with its row errors put back, as `jobs show`, `results/` and the mail
//! need it. This module must never write to the store.

use super::summary::JobReport;
use crate::store::jobs::{self, JobRow, StoredError};
use crate::store::{Db, StoreError};

/// The job's report with its errors, or `None` while it is undecided.
pub fn stored_report(
    db: &impl Db,
    job: &JobRow,
) -> Result<Option<(JobReport, Vec<StoredError>)>, StoreError> {
    let Some(text) = job.report.as_deref() else {
        return Ok(None);
    };
    let mut report: JobReport = serde_json::from_str(text).map_err(|source| StoreError::Json {
        column: "report",
        source,
    })?;
    let errors = jobs::errors(db, job.id)?;
    report.errors = errors.iter().map(|e| (&e.error).into()).collect();
    Ok(Some((report, errors)))
}

/// The failed-rows CSV of a decided job, as `jobs show --failed-csv`
/// prints it, the HTTP API serves it and the mail attaches it: one function
/// so the bytes are the same whichever door asks. `None` while undecided.
pub fn failed_csv(db: &impl Db, job: &JobRow) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(stored_report(db, job)?.map(|(report, errors)| failed_csv_of(&report, &errors)))
}

/// The same bytes from a report and errors already read.
pub fn failed_csv_of(report: &JobReport, errors: &[StoredError]) -> Vec<u8> {
    let rows = super::failed_csv::group(errors);
    let mut out = Vec::new();
    super::failed_csv::write_report(&mut out, report, &rows)
        .expect("writing CSV to memory does not fail");
    out
}
