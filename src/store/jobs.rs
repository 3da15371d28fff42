//! The job ledger: one row per file that reached the pipeline, its state
//! ([`JobState`]: `received`, then `applied`, `failed` or `held`; a held
//! job that is approved becomes `applied` or `failed`), its outcome as JSON,
//! and each failed row with its original cells. `archived_at` is set apart
//! from the state, by the daemon, once the file is in `.bak/` and its
//! `results/` are written; the job's mail has its own state in the outbox.
//! The ledger is what makes "exactly once" checkable after a crash. This
//! module must never interpret a report: it stores the JSON it is given.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, ToSql};

use super::{Db, StoreError};
use crate::ingest::error::RowError;

/// Where a job is in its life. Every job starts `Received`; the transaction
/// that decides it sets one of the other three, with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Recorded, not decided yet (a crash here runs the job again).
    Received,
    /// Its valid rows were applied (status `ok` or `rows_failed`).
    Applied,
    /// Nothing was applied (status `rejected`).
    Failed,
    /// A sync that would touch too many users, waiting for approval.
    Held,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Received,
        JobState::Applied,
        JobState::Failed,
        JobState::Held,
    ];

    /// The word stored in `jobs.state` and printed by `jobs`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Received => "received",
            JobState::Applied => "applied",
            JobState::Failed => "failed",
            JobState::Held => "held",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A `jobs.state` value that is none of [`JobState::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job state")]
pub struct UnknownJobState(pub String);

impl FromStr for JobState {
    type Err = UnknownJobState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownJobState(s.to_string()))
    }
}

impl PartialEq<str> for JobState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JobState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ToSql for JobState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e: UnknownJobState| FromSqlError::Other(Box::new(e)))
    }
}

/// How a decided job ended (`jobs.status`, and `status` in the JSON
/// outcome of docs/behaviour.md#the-json-outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every row went through.
    Ok,
    /// Valid rows were applied; some rows failed.
    RowsFailed,
    /// Nothing was applied: the file was refused, or a row failed with
    /// `on_error = "reject_file"`.
    Rejected,
    /// A sync would touch too many users; waiting for approval.
    Held,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RowsFailed => "rows_failed",
            Status::Rejected => "rejected",
            Status::Held => "held",
        }
    }
}

/// A status string that is none of [`Status::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job status")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Status::Ok,
            Status::RowsFailed,
            Status::Rejected,
            Status::Held,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Status {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e: UnknownStatus| FromSqlError::Other(Box::new(e)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub tenant: String,
    pub file: String,
    pub source: String,
    pub path: String,
    pub state: JobState,
    pub status: Option<Status>,
    pub report: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub approved_at: Option<String>,
    /// When the daemon moved the file to `.bak/` and wrote its results.
    pub archived_at: Option<String>,
}

/// A failed row as kept in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError {
    pub error: RowError,
    pub cells: Vec<String>,
}

const COLUMNS: &str = "id, tenant, file, source, path, state, status, report, created_at, finished_at, approved_at, archived_at";

fn job_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        file: r.get(2)?,
        source: r.get(3)?,
        path: r.get(4)?,
        state: r.get(5)?,
        status: r.get(6)?,
        report: r.get(7)?,
        created_at: r.get(8)?,
        finished_at: r.get(9)?,
        approved_at: r.get(10)?,
        archived_at: r.get(11)?,
    })
}

/// Records a new job in state [`JobState::Received`]; returns its id.
pub fn create(
    db: &impl Db,
    tenant: &str,
    file: &str,
    source: &str,
    path: &str,
) -> Result<i64, StoreError> {
    let conn = db.sql();
    conn.execute(
        "INSERT INTO jobs (tenant, file, source, path, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![tenant, file, source, path, JobState::Received, super::now_text()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Records a job the daemon is about to claim, with the spool path its
/// file will have (`<spool>/<id><.ext>`), in one transaction: the row exists
/// before the file moves, so a crash in between is found on restart.
pub fn create_claim(
    store: &mut super::Store,
    tenant: &str,
    file: &str,
    source: &str,
    spool: &std::path::Path,
) -> Result<(i64, std::path::PathBuf), StoreError> {
    let tx = store.write()?;
    let id = create(&tx, tenant, file, source, "")?;
    let ext = std::path::Path::new(file)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy().to_lowercase()))
        .unwrap_or_default();
    let path = spool.join(format!("{id}{ext}"));
    set_path(&tx, id, &path.to_string_lossy())?;
    tx.commit()?;
    Ok((id, path))
}

/// Forgets a job that never started: its file vanished before the claim.
pub fn delete_unstarted(db: &impl Db, id: i64) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute(
        "DELETE FROM jobs WHERE id = ?1 AND state = ?2",
        params![id, JobState::Received],
    )?;
    Ok(())
}

/// The file is in `.bak/` (at `path`) and the results are written.
pub fn mark_archived(db: &impl Db, id: i64, path: &str) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute(
        "UPDATE jobs SET archived_at = ?2, archived_as = ?3, path = ?3 WHERE id = ?1",
        params![id, super::now_text(), path],
    )?;
    Ok(())
}

/// The daemon's jobs a restart must carry on, oldest first: not yet decided,
/// or decided but not yet archived. Jobs of the CLI (`import`) are not the
/// daemon's: their file is the caller's.
pub fn resumable(db: &impl Db) -> Result<Vec<JobRow>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE source <> 'cli' AND (state = ?1 OR archived_at IS NULL) ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([JobState::Received], job_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The hash of the bytes the job took, if recorded (xxh3-128 as hex, see
/// `worker::content_hash`).
pub fn recorded_hash(db: &impl Db, id: i64) -> Result<Option<String>, StoreError> {
    let h = db
        .sql()
        .query_row(
            "SELECT content_hash FROM jobs WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(h.flatten())
}

/// Records the hash of the bytes the job took.
pub fn set_content_hash(db: &impl Db, id: i64, hash: &str) -> Result<(), StoreError> {
    db.sql().execute(
        "UPDATE jobs SET content_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    Ok(())
}

pub fn set_path(db: &impl Db, id: i64, path: &str) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute("UPDATE jobs SET path = ?2 WHERE id = ?1", params![id, path])?;
    Ok(())
}

/// Records the outcome. Called inside the job's transaction, so the users
/// it wrote and the job's final state commit together.
pub fn finish(
    db: &impl Db,
    id: i64,
    state: JobState,
    status: Status,
    report: &str,
) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute(
        "UPDATE jobs SET state = ?2, status = ?3, report = ?4, finished_at = ?5 WHERE id = ?1",
        params![id, state, status, report, super::now_text()],
    )?;
    Ok(())
}

/// Forgets the row errors of a job (a held job that is approved is judged again).
pub fn clear_errors(db: &impl Db, id: i64) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute("DELETE FROM job_errors WHERE job_id = ?1", [id])?;
    Ok(())
}

pub fn add_error(
    db: &impl Db,
    id: i64,
    seq: i64,
    e: &RowError,
    cells: &[&str],
) -> Result<(), StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO job_errors (job_id, seq, row, key, field, code, message, cells) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let cells = serde_json::to_string(cells).map_err(|source| StoreError::Json {
        column: "cells",
        source,
    })?;
    stmt.execute(params![
        id,
        seq,
        e.row as i64,
        e.key,
        e.field,
        e.code,
        e.message,
        cells
    ])?;
    Ok(())
}

pub fn get(db: &impl Db, id: i64) -> Result<Option<JobRow>, StoreError> {
    let conn = db.sql();
    // Cached: the HTTP API asks this of a job many times a second.
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?;
    Ok(stmt.query_row([id], job_from).optional()?)
}

/// Jobs newest first.
pub fn list(db: &impl Db, tenant: Option<&str>, limit: i64) -> Result<Vec<JobRow>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE ?1 IS NULL OR tenant = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![tenant, limit], job_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A tenant's jobs older than `before` (all when `None`), newest first:
/// one page of a keyset cursor, in one query.
pub fn page(
    db: &impl Db,
    tenant: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE tenant = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(params![tenant, before.unwrap_or(i64::MAX), limit], job_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn errors(db: &impl Db, id: i64) -> Result<Vec<StoredError>, StoreError> {
    let mut out = Vec::new();
    for_each_error(db, id, |e| out.push(e))?;
    Ok(out)
}

/// A job of the same tenant applied after `id`, if any: approving a held
/// job older than that would undo the newer file.
pub fn newer_applied(db: &impl Db, tenant: &str, id: i64) -> Result<Option<i64>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .query_row(
            "SELECT id FROM jobs WHERE tenant = ?1 AND id > ?2 AND status IN (?3, ?4) ORDER BY id LIMIT 1",
            params![tenant, id, Status::Ok, Status::RowsFailed],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn mark_approved(db: &impl Db, id: i64) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.execute(
        "UPDATE jobs SET approved_at = ?2 WHERE id = ?1",
        params![id, super::now_text()],
    )?;
    Ok(())
}

/// As [`errors`], one at a time in order, without holding them all (a
/// job's mail reads a few million failed rows this way).
pub fn for_each_error(
    db: &impl Db,
    id: i64,
    mut f: impl FnMut(StoredError),
) -> Result<(), StoreError> {
    errors_after(db, id, -1, i64::MAX, |_, e| f(e))
}

/// At most `limit` of a job's errors after the one numbered `after`, in
/// order, each with its number (`seq`): the cursor of a paged reader.
pub fn errors_after(
    db: &impl Db,
    id: i64,
    after: i64,
    limit: i64,
    mut f: impl FnMut(i64, StoredError),
) -> Result<(), StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare(
        "SELECT row, key, field, code, message, cells, seq FROM job_errors WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![id, after, limit])?;
    while let Some(r) = rows.next()? {
        let cells: String = r.get(5)?;
        f(
            r.get(6)?,
            StoredError {
                error: RowError {
                    row: r.get::<_, i64>(0)? as u64,
                    key: r.get(1)?,
                    field: r.get(2)?,
                    code: r.get(3)?,
                    message: r.get(4)?,
                },
                cells: serde_json::from_str(&cells).map_err(|source| StoreError::Json {
                    column: "cells",
                    source,
                })?,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// The words in `jobs.state` are what stores written by every earlier
    /// userdrop hold: the enum must read and write exactly those.
    #[test]
    fn job_states_are_stored_as_the_words_of_earlier_stores() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("userdrop.db")).unwrap();
        let raw = |id: i64| -> String {
            s.conn
                .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        let id = create(&s, "acme", "users.csv", "cli", "/x").unwrap();
        assert_eq!(raw(id), "received");
        assert_eq!(get(&s, id).unwrap().unwrap().state, JobState::Received);
        for (state, word) in [
            (JobState::Applied, "applied"),
            (JobState::Failed, "failed"),
            (JobState::Held, "held"),
        ] {
            finish(&s, id, state, Status::Ok, "{}").unwrap();
            assert_eq!(raw(id), word);
            let row = get(&s, id).unwrap().unwrap();
            assert_eq!(row.state, state);
            assert_eq!(row.state, word, "PartialEq<&str> compares the word");
            assert_eq!(word.parse::<JobState>(), Ok(state));
        }
        s.conn
            .execute("UPDATE jobs SET state = 'archived' WHERE id = ?1", [id])
            .unwrap();
        assert!(get(&s, id).is_err(), "an unknown state is an error");
    }
}
