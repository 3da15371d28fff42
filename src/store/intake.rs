//! Jobs for files that arrive whole through a door other than an inbox
//! (the HTTP API): the job row, the request's options and the client's
//! idempotency key are committed in one transaction, with the file put in
//! place before the commit, so an answer of "queued" always has its file
//! and its row. Also the paged reads those doors need. This module stores
//! what it is told; it must never read the file or judge the options.

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::jobs::{self, JobRow, StoredError};
use super::{Db, Store, StoreError};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_HOURS: i64 = 24;

/// A file on its way to becoming a job.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub tenant: &'a str,
    /// The name the client gave the file (reports use it).
    pub file: &'a str,
    pub source: &'a str,
    /// xxh3-128 of the bytes, as the worker checks it.
    pub content_hash: &'a str,
    /// JSON of the request's options, applied by the worker.
    pub options: Option<&'a str>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
}

/// What became of a [`NewJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// A new job; its file is at `path`.
    Created { id: i64, path: PathBuf },
    /// The idempotency key was used before, for the same bytes: that job.
    Replayed { id: i64 },
    /// The idempotency key was used before for other bytes.
    KeyReused { id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("putting the file in the spool: {0}")]
    Place(#[source] std::io::Error),
}

impl From<rusqlite::Error> for IntakeError {
    fn from(e: rusqlite::Error) -> IntakeError {
        IntakeError::Store(e.into())
    }
}

/// Records the job and calls `place(path)` to move its file to the spool
/// path chosen here (`<spool>/<id><.ext>`), inside the transaction: if
/// placing fails nothing is committed, and once committed the file is
/// there.
pub fn submit(
    store: &mut Store,
    job: &NewJob<'_>,
    spool: &Path,
    place: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<Intake, IntakeError> {
    let tx = store.write()?;
    let conn = super::sealed::Sql::sql(&tx);
    if let Some(key) = job.idempotency_key {
        let cutoff = (chrono::Utc::now() - chrono::Duration::hours(IDEMPOTENCY_HOURS))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        conn.execute(
            "DELETE FROM idempotency WHERE tenant = ?1 AND created_at < ?2",
            params![job.tenant, cutoff],
        )?;
        let known: Option<(String, i64)> = conn
            .query_row(
                "SELECT body_hash, job FROM idempotency WHERE tenant = ?1 AND key = ?2",
                params![job.tenant, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((hash, id)) = known {
            return Ok(if hash == job.content_hash {
                Intake::Replayed { id }
            } else {
                Intake::KeyReused { id }
            });
        }
    }
    let id = jobs::create(&tx, job.tenant, job.file, job.source, "")?;
    let ext = Path::new(job.file)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy().to_lowercase()))
        .unwrap_or_default();
    let path = spool.join(format!("{id}{ext}"));
    conn.execute(
        "UPDATE jobs SET path = ?2, content_hash = ?3, options = ?4 WHERE id = ?1",
        params![id, path.to_string_lossy(), job.content_hash, job.options],
    )?;
    if let Some(key) = job.idempotency_key {
        conn.execute(
            "INSERT INTO idempotency (tenant, key, body_hash, job, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![job.tenant, key, job.content_hash, id, super::now_text()],
        )?;
    }
    place(&path).map_err(IntakeError::Place)?;
    tx.commit()?;
    Ok(Intake::Created { id, path })
}

/// The options a job was submitted with, if any.
pub fn options(db: &impl Db, id: i64) -> Result<Option<String>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .query_row("SELECT options FROM jobs WHERE id = ?1", [id], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten())
}

/// One tenant's job, or `None` when the id is another tenant's or unknown.
pub fn job_of(db: &impl Db, tenant: &str, id: i64) -> Result<Option<JobRow>, StoreError> {
    Ok(jobs::get(db, id)?.filter(|j| j.tenant == tenant))
}

/// At most `limit` of a job's row errors after the one numbered `after`
/// (0: from the first), each with its number, the next page's cursor.
pub fn errors_page(
    db: &impl Db,
    id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, StoredError)>, StoreError> {
    let mut out = Vec::new();
    jobs::errors_after(db, id, after, limit, |seq, e| out.push((seq, e)))?;
    Ok(out)
}

/// How many row errors a job recorded.
pub fn error_count(db: &impl Db, id: i64) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn.query_row(
        "SELECT count(*) FROM job_errors WHERE job_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// What a metrics scrape reads from the ledger.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerGauges {
    /// Jobs received and not yet decided.
    pub undecided: i64,
    /// Per tenant, when its last job that applied rows finished.
    pub last_success: Vec<(String, String)>,
    /// Outbox messages by state.
    pub outbox: Vec<(String, i64)>,
}

pub fn gauges(db: &impl Db) -> Result<LedgerGauges, StoreError> {
    let conn = db.sql();
    let undecided = conn.query_row(
        "SELECT count(*) FROM jobs WHERE state = ?1",
        [jobs::JobState::Received],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT tenant, max(finished_at) FROM jobs WHERE status IN (?1, ?2) AND finished_at IS NOT NULL GROUP BY tenant",
    )?;
    let last_success = stmt
        .query_map(params![jobs::Status::Ok, jobs::Status::RowsFailed], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let outbox = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(LedgerGauges {
        undecided,
        last_success,
        outbox,
    })
}
