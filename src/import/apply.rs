//! Pass 2 of an import: the file read again and judged against the plan on
//! a reader thread, and applied by the writer (which owns the connection)
//! in the job's one transaction, with the row errors and the final state.
//! It must never decide what the plan already decided.

use crate::config::{Missing, Mode, OnError, Tenant};
use crate::ingest::decode::{self, RecordReader};
use crate::ingest::error::{quote, FileError, FileErrorCode, RowError};
use crate::ingest::plan;
use crate::ingest::schema::FieldKind;
use crate::ingest::validate::{self, ValidRow, Validator};
use crate::report::summary::{Counts, FileErrorJson, Held, JobReport, Status};
use crate::store::jobs::{self, JobState};
use crate::store::users::{self, Bound, Encoded, Refused, Writer, Written};
use crate::store::Tx;
use std::collections::BTreeSet;
use std::path::Path;

use super::{ImportError, ImportOptions, Outcome, Prepared, BATCH, DRY_RUN_JOB};

/// One failed row, waiting to be recorded once the transaction's fate is known.
struct Failure {
    row: u64,
    errors: Vec<RowError>,
    cells: Vec<String>,
}

/// A row refused because another user still holds its email: tried again
/// after the pass, when that user may have moved to another address.
struct Deferred {
    row: u64,
    flags: u8,
    cells: Vec<String>,
}

/// Judged rows, from the reader thread to the writing one. Text of all its
/// rows lives in one arena, so a row crosses threads without allocations
/// (memory freed on another thread than it was allocated on contends).
#[derive(Default)]
struct Batch {
    text: String,
    values: Vec<Bound>,
    items: Vec<Item>,
}

enum Item {
    Unchanged,
    Failed(Failure),
    Apply {
        row: u64,
        flags: u8,
        e: Encoded,
        raw_key: (u32, u32),
        /// The cells as received, joined by NUL (which no decoded file
        /// holds), for the failure report should the store refuse the row.
        cells: (u32, u32),
    },
}

fn split_cells(joined: &str) -> Vec<String> {
    joined.split('\0').map(str::to_string).collect()
}

fn slice(text: &str, (a, b): (u32, u32)) -> &str {
    &text[a as usize..b as usize]
}

/// Pass 2's reader: reads the file again and judges each row with the
/// plan, sending batches to the writer (and filling again those it sends
/// back through `spares`). Returns a problem with the file
/// (it broke or changed since pass 1), if any.
fn read_and_judge(
    path: &Path,
    p: &Prepared,
    tenant: &Tenant,
    v: &Validator<'_>,
    out: std::sync::mpsc::SyncSender<Batch>,
    spares: std::sync::mpsc::Receiver<Batch>,
) -> Option<FileError> {
    let mut reader = match RecordReader::open(path, &p.sniffed) {
        Ok(r) => r,
        Err(e) => return Some(e),
    };
    if let Err(e) = crate::ingest::headers::skip_header(&mut reader, &p.map) {
        return Some(e);
    }
    let mut batch = Batch::default();
    let mut i = 0usize;
    loop {
        let rec = match reader.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => return Some(e),
        };
        if rec.is_blank() {
            continue;
        }
        let Some(&flags) = p.plan.flags.get(i) else {
            return Some(FileError::new(
                FileErrorCode::Unreadable,
                "the file changed while it was being imported",
            ));
        };
        let idx = i as u32;
        i += 1;
        let item = judge(&rec, idx, flags, p, tenant, v, &mut batch);
        batch.items.push(item);
        if batch.items.len() == BATCH
            && out
                .send(std::mem::replace(
                    &mut batch,
                    spares.try_recv().unwrap_or_default(),
                ))
                .is_err()
        {
            // The writer stopped; it reports why.
            return None;
        }
    }
    if p.plan.flags.len() != i {
        return Some(FileError::new(
            FileErrorCode::Unreadable,
            "the file changed while it was being imported",
        ));
    }
    let _ = out.send(batch);
    None
}

/// One row of pass 2: its own errors, the cross-row errors of the plan, or
/// the valid row to apply.
fn judge(
    rec: &decode::Record<'_>,
    idx: u32,
    flags: u8,
    p: &Prepared,
    tenant: &Tenant,
    v: &Validator<'_>,
    batch: &mut Batch,
) -> Item {
    let schema = &tenant.schema;
    if flags & plan::UNCHANGED != 0 && tenant.mode != Mode::Insert {
        // Judged valid in pass 1, and identical to what is stored.
        return Item::Unchanged;
    }
    let checked = v.check(rec);
    let mut errors = match &checked {
        Err(e) => e.clone(),
        Ok(_) => Vec::new(),
    };
    // A row with the wrong number of fields reports only that.
    let flags = if rec.len() == p.map.columns.len() {
        flags
    } else {
        0
    };
    let raw_key = v.raw_key(rec);
    let error = |field: &str, code: &str, message: String| RowError {
        row: rec.row(),
        key: raw_key.to_string(),
        field: Some(field.to_string()),
        code: code.to_string(),
        message,
    };
    let cell_of = |kind: FieldKind| {
        p.map
            .column(schema, kind)
            .and_then(|c| rec.get(c))
            .map(validate::clean)
            .unwrap_or("")
    };
    let col = |kind: FieldKind, fallback: &'static str| p.map.column_name(schema, kind, fallback);
    let also = |flag: u8, what: String| {
        format!(
            "{what} also appears on {}; each user must be on one row only",
            p.plan
                .dups
                .get(&(idx, flag))
                .map(|d| d.describe())
                .unwrap_or_default()
        )
    };
    if flags & plan::DUP_USER_ID != 0 {
        errors.push(error(
            "user_id",
            "duplicate_user_id",
            also(
                plan::DUP_USER_ID,
                format!(
                    "{} {}",
                    col(FieldKind::UserId, "user_id"),
                    quote(cell_of(FieldKind::UserId))
                ),
            ),
        ));
    }
    if flags & plan::DUP_EMAIL != 0 {
        errors.push(error(
            "email",
            "duplicate_email",
            also(
                plan::DUP_EMAIL,
                format!(
                    "{} {}",
                    col(FieldKind::Email, "email"),
                    quote(cell_of(FieldKind::Email))
                ),
            ),
        ));
    }
    if flags & plan::DUP_KEY != 0 {
        let name = schema.key.name();
        errors.push(error(
            name,
            &format!("duplicate_{name}"),
            also(
                plan::DUP_KEY,
                format!("{} {}", col(schema.key.kind(), name), quote(raw_key)),
            ),
        ));
    }
    if flags & plan::UNKNOWN_REPORTS_TO != 0 {
        let manager = quote(cell_of(FieldKind::ReportsTo));
        let column = col(FieldKind::ReportsTo, "reports_to");
        let message = match p.managers.deleted_by.get(&users::hash96(&v.manager_key(rec))) {
            Some(n) => format!("{column} {manager} is deleted by row {n} of this file; name another manager or leave it empty"),
            None => format!("{column} {manager} is not the user_id of a user already imported or of a valid row in this file; add the manager, fix the id, or leave it empty"),
        };
        errors.push(error("reports_to", "unknown_reports_to", message));
    }
    if let Some(cycle) = p.managers.loops.get(&idx) {
        errors.push(error(
            "reports_to",
            "reports_to_cycle",
            format!(
                "{} {} makes a loop of managers ({}); a chain of managers must end with someone who reports to nobody: name another manager or leave it empty",
                col(FieldKind::ReportsTo, "reports_to"),
                quote(cell_of(FieldKind::ReportsTo)),
                super::graph::describe(cycle, &p.managers.names)
            ),
        ));
    }
    match checked {
        Ok(row) if errors.is_empty() => {
            let e = users::encode(schema, &row, &mut batch.text, &mut batch.values);
            let raw_key = push(&mut batch.text, [raw_key].into_iter());
            let cells = push(&mut batch.text, rec.iter());
            Item::Apply {
                row: rec.row(),
                flags,
                e,
                raw_key,
                cells,
            }
        }
        _ => Item::Failed(Failure {
            row: rec.row(),
            errors,
            cells: rec.iter().map(str::to_string).collect(),
        }),
    }
}

/// Appends strings to the arena, NUL-separated; returns their range.
fn push<'s>(text: &mut String, parts: impl Iterator<Item = &'s str>) -> (u32, u32) {
    let a = text.len() as u32;
    for (n, part) in parts.enumerate() {
        if n > 0 {
            text.push('\0');
        }
        text.push_str(part);
    }
    (a, text.len() as u32)
}

/// Applies judged rows and keeps the counts.
struct Applier<'t, 'c> {
    tenant: &'t Tenant,
    writer: Writer<'c>,
    counts: Counts,
    /// The tenant's catalogue of roles, looked up for every role of every
    /// written row: a tree of a few names compares a couple of strings
    /// where a hash set hashed each one (SipHash, a hundredth of the
    /// writer's time on a million rows).
    known_roles: BTreeSet<String>,
    invitations: Vec<String>,
    failures: Vec<Failure>,
    /// Rows refused because another user still holds their email.
    deferred: Vec<Deferred>,
    /// The user_ids of the users deleted so far.
    gone: Vec<String>,
    /// The key's and the email's columns as the customer's header names
    /// them, for messages.
    key_column: String,
    email_column: String,
}

enum RowResult {
    Done,
    Refused(&'static str, String),
    EmailTaken,
}

impl Applier<'_, '_> {
    /// `flags` are the plan's for this row (STORED, UNCHANGED).
    fn apply(
        &mut self,
        text: &str,
        values: &[Bound],
        e: &Encoded,
        raw_key: &str,
        flags: u8,
    ) -> Result<RowResult, ImportError> {
        if e.delete {
            return Ok(if self.writer.delete(slice(text, e.key), &mut self.gone)? {
                self.counts.deleted += 1;
                RowResult::Done
            } else {
                RowResult::Refused(
                    "not_found",
                    format!(
                        "there is no user {} to delete; check the {}",
                        quote(raw_key),
                        self.key_column
                    ),
                )
            });
        }
        let stored = flags & plan::STORED != 0;
        if self.tenant.mode == Mode::Insert && stored {
            return Ok(RowResult::Refused(
                "already_exists",
                format!(
                    "a user with {} {} already exists, and this inbox only creates new users",
                    self.key_column,
                    quote(raw_key)
                ),
            ));
        }
        match self.writer.write(text, values, e, stored)? {
            Err(Refused::EmailTaken) => return Ok(RowResult::EmailTaken),
            Err(Refused::KeyExists) => {
                return Ok(RowResult::Refused(
                    "already_exists",
                    format!(
                        "a user with {} {} already exists",
                        self.key_column,
                        quote(raw_key)
                    ),
                ))
            }
            Ok(Written::Unchanged) => self.counts.unchanged += 1,
            Ok(written) => {
                if written == Written::Added {
                    self.counts.added += 1;
                    if e.notify_if_new_user {
                        self.invitations.push(slice(text, e.key).to_string());
                    }
                } else {
                    self.counts.updated += 1;
                }
                let roles = slice(text, e.roles);
                for r in roles.split('\0').filter(|r| !r.is_empty()) {
                    if !self.known_roles.contains(r) {
                        if self.writer.add_role(r)? {
                            self.counts.roles_added += 1;
                        }
                        self.known_roles.insert(r.to_string());
                    }
                }
            }
        }
        Ok(RowResult::Done)
    }

    /// Applies a row judged outside a batch (a deferred retry).
    fn apply_row(
        &mut self,
        row: &ValidRow<'_>,
        raw_key: &str,
        flags: u8,
    ) -> Result<RowResult, ImportError> {
        let (mut text, mut values) = (String::new(), Vec::new());
        let e = users::encode(&self.tenant.schema, row, &mut text, &mut values);
        self.apply(&text, &values, &e, raw_key, flags)
    }
}

/// Finds rows of `deferred` that wait on each other in a ring (the holder
/// of each one's address is the user of the next row) and parks the
/// address of one user of the ring, so that the ring can be applied. The
/// parked user's own row, part of the ring, writes its new address over the
/// placeholder. Returns false when there is no ring.
fn park_a_ring(
    tx: &Tx<'_>,
    writer: &mut Writer<'_>,
    tenant: &Tenant,
    v: &Validator<'_>,
    deferred: &[Deferred],
) -> Result<bool, ImportError> {
    let schema = &tenant.schema;
    // Per deferred row: its user's key and the key of its address's holder.
    let mut waits: std::collections::HashMap<String, String> = Default::default();
    for d in deferred {
        let cells: Vec<&str> = d.cells.iter().map(String::as_str).collect();
        let fields = (d.row, &cells[..]);
        let Ok(row) = v.check(&fields) else { continue };
        let Some(email) = row.cell(schema, FieldKind::Email).text() else {
            continue;
        };
        let (mut text, mut values) = (String::new(), Vec::new());
        let e = users::encode(schema, &row, &mut text, &mut values);
        let key = slice(&text, e.key).to_string();
        if let Some(holder) = users::holder_of_email(tx, &tenant.name, email)? {
            waits.insert(key, holder);
        }
    }
    for start in waits.keys() {
        let mut at = start;
        for _ in 0..waits.len() {
            match waits.get(at) {
                Some(next) if next == start => {
                    writer.park_email(start)?;
                    return Ok(true);
                }
                Some(next) => at = next,
                None => break,
            }
        }
    }
    Ok(false)
}

/// Pass 2: applies the plan in one transaction.
pub(super) fn apply(
    tx: Tx<'_>,
    tenant: &Tenant,
    path: &Path,
    opts: &ImportOptions<'_>,
    job: Option<i64>,
    p: Prepared,
    mut report: JobReport,
) -> Result<Outcome, ImportError> {
    let schema = &tenant.schema;
    tx.tentative()?;
    let job_id = job.unwrap_or(DRY_RUN_JOB);
    let present: Vec<bool> = p.map.column_of.iter().map(Option::is_some).collect();
    let v = Validator::new(
        schema,
        &p.map,
        &tenant.name,
        &tenant.date_format,
        &tenant.role_separator,
    );
    let mut applier = Applier {
        tenant,
        writer: Writer::prepare(&tx, schema, &present, &tenant.name, job_id)?,
        counts: Counts::default(),
        known_roles: users::role_names(&tx, &tenant.name)?.into_iter().collect(),
        invitations: Vec::new(),
        failures: Vec::new(),
        deferred: Vec::new(),
        gone: Vec::new(),
        key_column: p
            .map
            .column_name(schema, schema.key.kind(), schema.key.name())
            .to_string(),
        email_column: p
            .map
            .column_name(schema, FieldKind::Email, "email")
            .to_string(),
    };
    tracing::debug!(rows = p.plan.flags.len(), "applying");
    let file_problem = applier.pass(path, &p, &v)?;
    tracing::debug!("pass 2 read");
    applier.retry_deferred(&tx, &v)?;
    applier.writer.finish()?;
    let mut counts = std::mem::take(&mut applier.counts);
    let mut invitations = std::mem::take(&mut applier.invitations);
    let mut failures = std::mem::take(&mut applier.failures);
    let mut gone = std::mem::take(&mut applier.gone);
    drop(applier);
    failures.sort_by_key(|f| f.row);
    counts.failed = failures.len() as u64;

    let held = match file_problem {
        None => sync_step(
            &tx,
            tenant,
            &p,
            opts.approved,
            job_id,
            &mut counts,
            &mut gone,
        )?,
        Some(_) => None,
    };
    // Nobody may report to a user who no longer exists.
    let lost = users::clear_managers(&tx, &tenant.name, &gone, job_id)?;
    counts.managers_cleared = lost.len() as u64;
    report.managers_lost = lost
        .into_iter()
        .take(crate::report::summary::LOST_SHOWN)
        .map(|l| crate::report::summary::LostManagerJson {
            key: l.key,
            manager: l.manager,
        })
        .collect();
    report.counts = counts;
    let (state, status) = decide(&tx, tenant, &mut report, file_problem, held, &mut failures)?;
    report_failures(&mut report, &failures);
    report.status = status;
    if status == Status::Rejected || status == Status::Held {
        invitations.clear();
    }
    if state == JobState::Applied {
        users::set_dns(&tx, &tenant.name, p.file_dns.iter())?;
    }
    record(tx, tenant, opts, state, &failures, &report, &invitations)?;
    Ok(Outcome {
        report,
        invitations,
    })
}

impl Applier<'_, '_> {
    /// Reads and judges the file again on a reader thread while this one
    /// (which owns the connection) only writes, so validation costs no wall
    /// time. Returns a problem with the file (it broke or changed since
    /// pass 1), if any.
    fn pass(
        &mut self,
        path: &Path,
        p: &Prepared,
        v: &Validator<'_>,
    ) -> Result<Option<FileError>, ImportError> {
        let tenant = self.tenant;
        let (batches, received) = std::sync::mpsc::sync_channel::<Batch>(8);
        // Batches go back to the reader to be filled again: memory touched
        // for the first time costs more than the work done in it, and
        // memory freed on another thread than it was allocated on contends.
        let (spare, spares) = std::sync::mpsc::channel::<Batch>();
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| read_and_judge(path, p, tenant, v, batches, spares));
            let written = self.write_batches(&received, &spare);
            // Stops the reader if writing failed.
            drop(received);
            let read = reader.join().expect("the reader thread does not panic");
            written.map(|()| read)
        })
    }

    /// Applies the batches the reader sends, and sends each back emptied
    /// through `spare` for the reader to fill again.
    fn write_batches(
        &mut self,
        received: &std::sync::mpsc::Receiver<Batch>,
        spare: &std::sync::mpsc::Sender<Batch>,
    ) -> Result<(), ImportError> {
        let key_field = self.tenant.schema.key.name();
        for mut batch in received {
            let (text, values) = (&batch.text, &batch.values);
            for item in batch.items.drain(..) {
                self.counts.rows += 1;
                let (row, flags, e, raw_key, cells) = match item {
                    Item::Unchanged => {
                        self.counts.unchanged += 1;
                        continue;
                    }
                    Item::Failed(f) => {
                        self.failures.push(f);
                        continue;
                    }
                    Item::Apply {
                        row,
                        flags,
                        e,
                        raw_key,
                        cells,
                    } => (row, flags, e, slice(text, raw_key), cells),
                };
                match self.apply(text, values, &e, raw_key, flags)? {
                    RowResult::Done => {}
                    RowResult::Refused(code, message) => self.failures.push(Failure {
                        row,
                        errors: vec![RowError {
                            row,
                            key: raw_key.to_string(),
                            field: Some(key_field.to_string()),
                            code: code.to_string(),
                            message,
                        }],
                        cells: split_cells(slice(text, cells)),
                    }),
                    RowResult::EmailTaken => self.deferred.push(Deferred {
                        row,
                        flags,
                        cells: split_cells(slice(text, cells)),
                    }),
                }
            }
            batch.text.clear();
            batch.values.clear();
            // The reader may have finished; the batch is then dropped here.
            let _ = spare.send(batch);
        }
        Ok(())
    }

    /// Rows whose email another user held: that user may have moved on
    /// later in the file. Retry while anything changes. Rows that wait on
    /// each other in a ring (U1 takes U2's address and U2 takes U1's) never
    /// move on their own: one address of the ring is parked, then retried.
    /// What still waits at the end fails `duplicate_email`.
    fn retry_deferred(&mut self, tx: &Tx<'_>, v: &Validator<'_>) -> Result<(), ImportError> {
        let mut deferred = std::mem::take(&mut self.deferred);
        for _ in 0..=deferred.len() {
            loop {
                let before = deferred.len();
                let mut still = Vec::new();
                for d in deferred {
                    let cells: Vec<&str> = d.cells.iter().map(String::as_str).collect();
                    let fields = (d.row, &cells[..]);
                    // The same cells passed the same checks in the pass.
                    let Ok(row) = v.check(&fields) else { continue };
                    if let RowResult::EmailTaken =
                        self.apply_row(&row, v.raw_key(&fields), d.flags)?
                    {
                        still.push(d);
                    }
                }
                deferred = still;
                if deferred.is_empty() || deferred.len() == before {
                    break;
                }
            }
            if deferred.is_empty() || !park_a_ring(tx, &mut self.writer, self.tenant, v, &deferred)?
            {
                break;
            }
        }
        let tenant = &self.tenant.name;
        for d in deferred {
            let cells: Vec<&str> = d.cells.iter().map(String::as_str).collect();
            let fields = (d.row, &cells[..]);
            let email = v
                .check(&fields)
                .ok()
                .and_then(|r| {
                    r.cell(&self.tenant.schema, FieldKind::Email)
                        .text()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let holder = users::holder_of_email(tx, tenant, &email)?.unwrap_or_default();
            self.failures.push(Failure {
                row: d.row,
                errors: vec![RowError {
                    row: d.row,
                    key: v.raw_key(&fields).to_string(),
                    field: Some("email".into()),
                    code: "duplicate_email".into(),
                    message: format!(
                        "{} {} already belongs to user {}; each user needs their own address",
                        self.email_column,
                        quote(&email),
                        quote(&holder)
                    ),
                }],
                cells: d.cells,
            });
        }
        Ok(())
    }
}

/// How many of the users a held sync would touch its mail lists.
const HELD_LISTED: usize = 50_000;

/// The sync step: users absent from the file are deactivated or deleted.
/// Returns the hold when that touches more than the tenant allows and the
/// job is not approved (the caller then undoes it).
fn sync_step(
    tx: &Tx<'_>,
    tenant: &Tenant,
    p: &Prepared,
    approved: bool,
    job_id: i64,
    counts: &mut Counts,
    gone: &mut Vec<String>,
) -> Result<Option<Held>, ImportError> {
    let applied_rows = counts.added + counts.updated + counts.unchanged + counts.deleted;
    if tenant.mode != Mode::Sync || applied_rows == 0 {
        return Ok(None);
    }
    let only_enabled = tenant.missing == Missing::Deactivate;
    let ids = users::absent_users(tx, &tenant.name, |h| p.plan.names(h), only_enabled)?;
    let of_users = p.stored_users;
    let percent = if of_users == 0 {
        0.0
    } else {
        ids.len() as f64 * 100.0 / of_users as f64
    };
    let mut held = None;
    if !ids.is_empty() && percent > tenant.max_missing_percent && !approved {
        held = Some(Held {
            would_touch: ids.len() as u64,
            of_users,
            percent,
            max_missing_percent: tenant.max_missing_percent,
            users: users::named(tx, &ids, HELD_LISTED)?,
        });
    }
    match tenant.missing {
        Missing::Deactivate => counts.deactivated = users::deactivate(tx, &ids, job_id)? as u64,
        Missing::Delete => counts.deleted += users::delete_ids(tx, &ids, job_id, gone)? as u64,
    }
    Ok(held)
}

/// The job's end: applied, or the tentative part undone because the file
/// broke, the sync is held, or a failed row rejects the whole file.
fn decide(
    tx: &Tx<'_>,
    tenant: &Tenant,
    report: &mut JobReport,
    file_problem: Option<FileError>,
    held: Option<Held>,
    failures: &mut Vec<Failure>,
) -> Result<(JobState, Status), ImportError> {
    let decided = if let Some(fe) = file_problem {
        // The file changed or broke between the passes: apply nothing.
        failures.clear();
        report.counts = Default::default();
        report.managers_lost.clear();
        report.file_error = Some(FileErrorJson::from(&fe));
        (JobState::Failed, Status::Rejected)
    } else if let Some(h) = held {
        report.file_error = Some(FileErrorJson {
            code: FileErrorCode::TooManyDeletes.as_str().into(),
            field: None,
            message: format!(
                "this file would {} {} of the {} users ({:.1}%), more than the {}% allowed; if that is intended the operator can approve the job, otherwise upload a corrected file",
                if tenant.missing == Missing::Delete { "delete" } else { "deactivate" },
                h.would_touch,
                h.of_users,
                h.percent,
                h.max_missing_percent
            ),
        });
        report.held = Some(h);
        (JobState::Held, Status::Held)
    } else if tenant.on_error == OnError::RejectFile && report.counts.failed > 0 {
        let c = &mut report.counts;
        (
            c.added,
            c.updated,
            c.unchanged,
            c.deleted,
            c.deactivated,
            c.roles_added,
            c.managers_cleared,
        ) = (0, 0, 0, 0, 0, 0, 0);
        report.managers_lost.clear();
        (JobState::Failed, Status::Rejected)
    } else if report.counts.failed > 0 {
        (JobState::Applied, Status::RowsFailed)
    } else {
        (JobState::Applied, Status::Ok)
    };
    if decided.0 == JobState::Applied {
        tx.keep()?;
    } else {
        tx.undo()?;
    }
    Ok(decided)
}

/// Puts the failed rows' errors and reason counts into the report.
fn report_failures(report: &mut JobReport, failures: &[Failure]) {
    for f in failures {
        for e in &f.errors {
            *report.reasons.entry(e.code.clone()).or_default() += 1;
            report.errors.push(e.into());
        }
    }
}

/// Records the failed rows and the job's end, and commits (a dry run, with
/// no job, rolls everything back).
fn record(
    tx: Tx<'_>,
    tenant: &Tenant,
    opts: &ImportOptions<'_>,
    state: JobState,
    failures: &[Failure],
    report: &JobReport,
    invitations: &[String],
) -> Result<(), ImportError> {
    let Some(id) = report.job else {
        tx.rollback()?;
        return Ok(());
    };
    jobs::clear_errors(&tx, id)?;
    let mut seq = 0;
    for f in failures {
        let cells: Vec<&str> = f.cells.iter().map(String::as_str).collect();
        for e in &f.errors {
            seq += 1;
            jobs::add_error(&tx, id, seq, e, &cells)?;
        }
    }
    if opts.approved {
        jobs::mark_approved(&tx, id)?;
    }
    super::finish_job(&tx, tenant, id, state, report, invitations)?;
    tx.commit()?;
    Ok(())
}
