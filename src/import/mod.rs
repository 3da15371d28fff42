//! Runs one file through the pipeline: the sequence the CLI's `import` and
//! the daemon's worker share. Pass 0 sniffs the file (encoding, delimiter,
//! binary), the header is mapped, pass 1 validates every row and gathers the
//! facts the cross-row rules need, and pass 2 reads the file again and
//! applies it in ONE transaction that also records the row errors and the
//! job's final state: a crash leaves the store before or after the whole
//! file. The file is streamed twice rather than held, so memory stays flat
//! whatever its size. The job's mail and webhooks are queued in that same transaction
//! ([`finish_job`]); this module must never move, archive or send files.

use std::path::Path;

use crate::config::Tenant;
use crate::ingest::decode::{self, Sniffed};
use crate::ingest::error::{FileError, FileErrorCode};
use crate::ingest::headers::{self, HeaderMap};
use crate::ingest::plan::{self, KeyList, Plan};
use crate::ingest::schema::KeyField;
use crate::ingest::validate::Validator;
use crate::report::summary::{FileErrorJson, JobReport, Status};
use crate::store::jobs::{self, JobState};
use crate::store::users::{self, Existing};
use crate::store::{Db, Store, StoreError, Tx};

mod apply;
mod graph;
mod held;
mod judge;

use apply::apply;
pub use held::{keep_if_held, KeepError};
use judge::judge_all;

#[derive(Debug, Clone)]
pub struct ImportOptions<'a> {
    /// The file's name as the customer dropped it (reports use it).
    pub file_name: &'a str,
    /// How the file arrived: cli, sftp, watcher, schedule, startup.
    pub source: &'a str,
    /// Compute everything, write nothing (not even a ledger row).
    pub dry_run: bool,
    /// Use this ledger row instead of creating one (a claimed or approved job).
    pub job: Option<i64>,
    /// Apply a sync even past `max_missing_percent` (`jobs approve`).
    pub approved: bool,
    /// How the rows are numbered in errors and reports.
    pub rows: RowNumbers,
}

/// How a job's rows are numbered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowNumbers {
    /// As a spreadsheet shows the file: the header is row 1.
    #[default]
    Lines,
    /// The file is a JSON array made into a table: a row's number is its
    /// object's place in the array, counted from 1.
    Objects,
}

#[derive(Debug)]
pub struct Outcome {
    pub report: JobReport,
    /// Keys of users created by this job whose row asked for an invitation.
    pub invitations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queueing mail: {0}")]
    Mail(#[from] crate::mail::queue::QueueError),
}

/// The job id dry runs write under: no ledger row has it.
const DRY_RUN_JOB: i64 = 0;

/// Rows per batch handed between threads, in both passes.
const BATCH: usize = 512;

pub fn run(
    store: &mut Store,
    tenant: &Tenant,
    path: &Path,
    opts: &ImportOptions<'_>,
) -> Result<Outcome, ImportError> {
    let job = if opts.dry_run {
        None
    } else {
        Some(match opts.job {
            Some(j) => j,
            None => jobs::create(
                store,
                &tenant.name,
                opts.file_name,
                opts.source,
                &path.to_string_lossy(),
            )?,
        })
    };
    let mut report = JobReport::new(&tenant.name, opts.file_name, job, opts.dry_run);
    // The write lock is taken before the store is read, so the plan (who is
    // stored, who is unchanged) cannot go stale under another writer.
    let tx = store.write()?;
    let outcome = match prepare(&tx, tenant, path, opts.rows, &mut report) {
        Ok(prepared) => apply(tx, tenant, path, opts, job, prepared, report)?,
        Err(fe) => {
            report.status = Status::Rejected;
            report.file_error = Some(FileErrorJson::from(&fe));
            if let Some(id) = job {
                jobs::clear_errors(&tx, id)?;
                finish_job(&tx, tenant, id, JobState::Failed, &report, &[])?;
                tx.commit()?;
            }
            Outcome {
                report,
                invitations: Vec::new(),
            }
        }
    };
    log_outcome(&outcome.report);
    Ok(outcome)
}

/// Ends a recorded job without reading its file: the daemon refuses a file
/// as a whole before the pipeline (a name that `accept` does not match).
pub fn refuse(
    store: &mut Store,
    tenant: &Tenant,
    job: i64,
    file_name: &str,
    error: &FileError,
) -> Result<Outcome, ImportError> {
    let report = JobReport::refused(&tenant.name, file_name, Some(job), false, error);
    let tx = store.write()?;
    jobs::clear_errors(&tx, job)?;
    finish_job(&tx, tenant, job, JobState::Failed, &report, &[])?;
    tx.commit()?;
    log_outcome(&report);
    Ok(Outcome {
        report,
        invitations: Vec::new(),
    })
}

/// Records a job's outcome inside the transaction that decided it. Every job
/// ends here, so whatever must commit with its final state is added once.
///
/// The job's mail (its report, as `notify` says, and the invitations of
/// `invitations`: keys of users it created whose row asked for one) and its
/// webhook deliveries are queued here, so they commit with the job or not
/// at all.
pub(crate) fn finish_job(
    tx: &Tx<'_>,
    tenant: &Tenant,
    id: i64,
    state: JobState,
    report: &JobReport,
    invitations: &[String],
) -> Result<(), ImportError> {
    jobs::finish(tx, id, state, report.status, &report.ledger_json())?;
    crate::mail::queue::job_finished(tx, tenant, id, report, invitations)?;
    crate::webhook::queue::job_finished(tx, tenant, id, report)?;
    Ok(())
}

/// The one log line every job ends with.
fn log_outcome(r: &JobReport) {
    tracing::info!(
        tenant = %r.tenant,
        file = %r.file,
        job = r.job,
        status = r.status.as_str(),
        rows = r.counts.rows,
        added = r.counts.added,
        updated = r.counts.updated,
        unchanged = r.counts.unchanged,
        deleted = r.counts.deleted,
        deactivated = r.counts.deactivated,
        roles_added = r.counts.roles_added,
        failed = r.counts.failed,
        file_error = r.file_error.as_ref().map(|e| e.code.as_str()),
        dry_run = r.dry_run,
        "job finished"
    );
}

struct Prepared {
    sniffed: Sniffed,
    map: HeaderMap,
    plan: Plan,
    /// The tenant's users before the file (the sync threshold's base).
    stored_users: u64,
    /// DN → user_id of the file's own rows (Active Directory), stored with
    /// an applied job.
    file_dns: std::collections::HashMap<String, String>,
    /// Rows whose manager is deleted by the file or who are on a loop.
    managers: graph::Managers,
}

fn delimiter_name(d: u8) -> String {
    (d as char).to_string()
}

fn key_list(key: KeyField) -> KeyList {
    match key {
        KeyField::UserId => KeyList::UserIds,
        KeyField::Email => KeyList::Emails,
        KeyField::MobileNumber => KeyList::Keys,
    }
}

/// Pass 0, the header and pass 1.
fn prepare(
    db: &impl Db,
    tenant: &Tenant,
    path: &Path,
    rows: RowNumbers,
    report: &mut JobReport,
) -> Result<Prepared, FileError> {
    tracing::debug!(file = %path.display(), "sniffing");
    let mut sniffed = decode::sniff(path, &tenant.decode_options())?;
    if rows == RowNumbers::Objects {
        sniffed.uncounted_rows = 1;
    }
    tracing::debug!(encoding = %sniffed.label, "sniffed");
    report.encoding = Some(sniffed.label.clone());
    report.delimiter = Some(delimiter_name(sniffed.delimiter));
    // `report.columns` is filled before the header is judged: a refused
    // header still tells the customer's automation what was read.
    let (mut reader, mut map) =
        headers::find(path, &sniffed, tenant.header_rules(), &mut report.columns)?;
    // An Active Directory file names managers by DN: its own rows' DNs are
    // remembered with the job, and a DN the file lacks is looked up among
    // the users earlier files described.
    let file_dns = if map.dn_column.is_some() {
        let file_dns = map.managers.clone();
        for (dn, uid) in users::dns(db, &tenant.name).map_err(unreadable_store)? {
            map.managers.entry(dn).or_insert(uid);
        }
        file_dns
    } else {
        Default::default()
    };
    report.columns = map.columns.clone();
    report.ignored_columns = map.ignored.clone();
    report.read_header(&map);

    let schema = &tenant.schema;
    let v = Validator::new(
        schema,
        &map,
        &tenant.name,
        &tenant.date_format,
        &tenant.role_separator,
    );
    // Only a tenant with stored users needs the rows' fingerprints. The
    // stored users are read on this thread while pass 1 reads the file.
    let stored = users::any(db, &tenant.name).map_err(unreadable_store)?;
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    let (facts, existing) = judge_all(&mut reader, &map, schema, &v, stored, file_len, || {
        Existing::load(db, &tenant.name, schema.key == KeyField::UserId)
    })?;
    let existing = existing.map_err(unreadable_store)?;
    tracing::debug!(rows = facts.flags.len(), users = existing.count(), "judged");
    let keys = key_list(schema.key);
    let (mut facts, dups) = plan::mark(facts, keys);
    tracing::debug!("marked");
    // The managers are judged here, whole (the plan's own `reports_to`
    // list is left empty): unknown, deleted by the file, or on a loop.
    let mut managers = graph::judge(&mut facts, |h| existing.has_user_id(h), db, &tenant.name)
        .map_err(unreadable_store)?;
    if !managers.loops.is_empty() {
        managers.names = graph::loop_names(db, tenant, path, &sniffed, &map, &managers)?;
    }
    let mut plan = plan::resolve(facts, dups, keys, |h| existing.has_user_id(h));
    plan.match_stored(&existing.keys);
    tracing::debug!("planned");
    Ok(Prepared {
        sniffed,
        map,
        plan,
        stored_users: existing.count() as u64,
        file_dns,
        managers,
    })
}

fn unreadable_store(e: StoreError) -> FileError {
    FileError::new(
        FileErrorCode::Unreadable,
        format!("the store could not be read: {e}"),
    )
}
