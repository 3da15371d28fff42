//! A job's outcome: the stable JSON object of docs/behaviour.md#the-json-outcome (`import --json`,
//! `jobs show --json`, `results/*.summary.json`) and its human rendering.
//! Field names here are a published interface: add fields, never rename or
//! remove one. This module must never query the store or read files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ingest::error::{FileError, RowError};
use crate::ingest::headers::HeaderMap;

/// The outcome word of a job, as the ledger keeps it.
pub use crate::store::jobs::{Status, UnknownStatus};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Data rows read (blank rows are not counted).
    pub rows: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub deactivated: u64,
    pub roles_added: u64,
    /// Rows that failed (a row with three problems counts once).
    pub failed: u64,
    /// Users whose manager the job deleted: their `reports_to` was cleared
    /// (`managers_lost` names them). Written only when not zero, so the
    /// counts of every other job read as they always did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub managers_cleared: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How many of the users who lost their manager a report names.
pub const LOST_SHOWN: usize = 100;

/// A user whose manager the job deleted, so their `reports_to` was cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostManagerJson {
    /// The user's key.
    pub key: String,
    /// The user_id of the deleted manager.
    pub manager: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileErrorJson {
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

impl From<&FileError> for FileErrorJson {
    fn from(e: &FileError) -> Self {
        FileErrorJson {
            code: e.code.as_str().to_string(),
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorJson {
    pub row: u64,
    pub key: String,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

impl From<&RowError> for ErrorJson {
    fn from(e: &RowError) -> Self {
        ErrorJson {
            row: e.row,
            key: e.key.clone(),
            field: e.field.clone(),
            code: e.code.clone(),
            message: e.message.clone(),
        }
    }
}

/// Why a sync job was held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// Users the sync step would deactivate or delete.
    pub would_touch: u64,
    /// The tenant's users before the file.
    pub of_users: u64,
    pub percent: f64,
    pub max_missing_percent: f64,
    /// Who the sync would touch (the first of them, by key), for the
    /// mail's list; not part of the JSON outcome.
    #[serde(skip)]
    pub users: Vec<crate::store::users::Named>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The ledger id; null for a dry run.
    pub job: Option<i64>,
    pub tenant: String,
    pub file: String,
    pub dry_run: bool,
    pub status: Status,
    pub file_error: Option<FileErrorJson>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub ignored_columns: Vec<String>,
    /// The header cells as received (the failed-rows CSV repeats them).
    pub columns: Vec<String>,
    /// The export layout the file was read as (`okta`, `oneroster`, ...,
    /// `generic`); null when the file was refused before its header.
    #[serde(default)]
    pub layout: Option<String>,
    /// Lines above the header that were skipped (a PowerShell `#TYPE`
    /// line, a report's title lines).
    #[serde(default)]
    pub skipped_lines: Vec<String>,
    /// Columns holding passwords or hashes: never read, stored or written
    /// back (their cells are blank in every CSV userdrop writes).
    #[serde(default)]
    pub secret_columns: Vec<String>,
    pub counts: Counts,
    /// How many errors of each reason code.
    pub reasons: BTreeMap<String, u64>,
    pub held: Option<Held>,
    /// Users whose manager the job deleted (the first [`LOST_SHOWN`]; the
    /// count is `counts.managers_cleared`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers_lost: Vec<LostManagerJson>,
    pub errors: Vec<ErrorJson>,
}

impl JobReport {
    pub fn new(tenant: &str, file: &str, job: Option<i64>, dry_run: bool) -> JobReport {
        JobReport {
            job,
            tenant: tenant.to_string(),
            file: file.to_string(),
            dry_run,
            status: Status::Ok,
            file_error: None,
            encoding: None,
            delimiter: None,
            ignored_columns: Vec::new(),
            columns: Vec::new(),
            layout: None,
            skipped_lines: Vec::new(),
            secret_columns: Vec::new(),
            counts: Counts::default(),
            reasons: BTreeMap::new(),
            held: None,
            managers_lost: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// A sentence naming who lost their manager, if anyone: for the
    /// summary and the mail.
    pub fn managers_note(&self) -> Option<String> {
        let n = self.counts.managers_cleared;
        (n > 0).then(|| {
            let shown: Vec<String> = self
                .managers_lost
                .iter()
                .map(|l| format!("{} (was {})", l.key, l.manager))
                .collect();
            let more = n.saturating_sub(shown.len() as u64);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "{n} user(s) reported to a manager this file deleted; their manager is now empty: {}{more}",
                shown.join(", ")
            )
        })
    }

    /// What reading the header found: the layout, the skipped lines, the
    /// secret columns.
    /// The outcome of a file refused as a whole before it was read (a name
    /// `accept` does not match): the one shape every door reports it in.
    pub fn refused(
        tenant: &str,
        file: &str,
        job: Option<i64>,
        dry_run: bool,
        error: &FileError,
    ) -> JobReport {
        let mut r = JobReport::new(tenant, file, job, dry_run);
        r.status = Status::Rejected;
        r.file_error = Some(FileErrorJson::from(error));
        r
    }

    pub fn read_header(&mut self, map: &HeaderMap) {
        self.layout = Some(map.layout.name().to_string());
        self.skipped_lines.clone_from(&map.preamble);
        self.secret_columns = map.secret.iter().map(|&c| map.columns[c].clone()).collect();
    }

    /// A sentence on the secret columns, if any: for the summary and the mail.
    pub fn secrets_note(&self) -> Option<String> {
        (!self.secret_columns.is_empty()).then(|| {
            format!(
                "columns holding passwords or hashes ({}) were not read: nothing of them is stored, and their cells are blank in every file userdrop writes back",
                self.secret_columns.join(", ")
            )
        })
    }

    /// The object stored in the ledger: the report without its errors
    /// (those are rows of `job_errors`).
    pub fn ledger_json(&self) -> String {
        let mut copy = self.clone();
        copy.errors.clear();
        serde_json::to_string(&copy).expect("a report serialises")
    }

    /// The outcome for a person at a terminal.
    pub fn human(&self, max_errors: usize) -> String {
        let mut s = String::new();
        let c = &self.counts;
        let job = match self.job {
            Some(id) => format!("job {id}"),
            None => "dry run, nothing written".to_string(),
        };
        let verdict = match self.status {
            Status::Ok => "imported",
            Status::RowsFailed => "imported with failed rows",
            Status::Rejected => "REJECTED, nothing applied",
            Status::Held => "HELD, nothing applied until approved",
        };
        let _ = writeln!(s, "{}: {} — {verdict} ({job})", self.tenant, self.file);
        if let Some(fe) = &self.file_error {
            let _ = writeln!(s, "  {}: {}", fe.code, fe.message);
        }
        if let Some(h) = &self.held {
            let _ = writeln!(
                s,
                "  the sync would touch {} of {} users ({:.1}%), more than max_missing_percent = {}; approve with `userdrop jobs approve {}` or upload a corrected file",
                h.would_touch,
                h.of_users,
                h.percent,
                h.max_missing_percent,
                self.job.map(|j| j.to_string()).unwrap_or_else(|| "ID".into())
            );
        }
        if self.file_error.is_none() || c.rows > 0 {
            let _ = writeln!(
                s,
                "  rows {}: added {}, updated {}, unchanged {}, deleted {}, deactivated {}, roles added {}, failed {}",
                c.rows, c.added, c.updated, c.unchanged, c.deleted, c.deactivated, c.roles_added, c.failed
            );
        }
        if let (Some(enc), Some(delim)) = (&self.encoding, &self.delimiter) {
            let _ = writeln!(s, "  read as {enc}, delimiter {delim:?}");
        }
        if let Some(layout) = self.layout.as_deref().filter(|l| *l != "generic") {
            let _ = writeln!(s, "  layout: {layout}");
        }
        if !self.skipped_lines.is_empty() {
            let _ = writeln!(
                s,
                "  skipped above the header: {}",
                self.skipped_lines.join(" | ")
            );
        }
        if !self.ignored_columns.is_empty() {
            let _ = writeln!(s, "  ignored columns: {}", self.ignored_columns.join(", "));
        }
        if let Some(note) = self.secrets_note() {
            let _ = writeln!(s, "  {note}");
        }
        if let Some(note) = self.managers_note() {
            let _ = writeln!(s, "  {note}");
        }
        for e in self.errors.iter().take(max_errors) {
            let key = if e.key.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.key)
            };
            let _ = writeln!(s, "  row {}{key} {}: {}", e.row, e.code, e.message);
        }
        if self.errors.len() > max_errors {
            let _ = writeln!(
                s,
                "  … and {} more (all of them: `userdrop jobs show {}`)",
                self.errors.len() - max_errors,
                self.job
                    .map(|j| j.to_string())
                    .unwrap_or_else(|| "ID".into())
            );
        }
        s
    }
}
