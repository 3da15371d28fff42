//! Composes the messages userdrop sends: a job's report to the tenant's
//! `failed_import_email` (failed rows, a refused file, a held sync, or a
//! success summary) and an invitation to a new user. A report's subject
//! names tenant, file and counts; its plain-text body gives the counts, a
//! tally per reason, the first 20 failures and what happens next; its
//! attachment `<name>.failed.csv` is the failed-rows CSV of
//! [`crate::report::failed_csv`], byte for byte, cut at a row boundary when
//! larger than `max_attachment_bytes`. This module must never touch the
//! store or the network: it turns what it is given into bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lettre::message::header::{ContentTransferEncoding, ContentType, Header, HeaderName};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::config::{Invitation, Missing, Outgoing, Tenant};
use crate::report::failed_csv::{self, FailedRow};
use crate::report::summary::{Counts, JobReport, Status};
use crate::store::jobs::StoredError;
use crate::store::outbox::Invitee;
use crate::template::Values;

/// How many failures the body lists; the attachment has them all.
pub const LISTED_FAILURES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{what} {value:?} is not a mail address: {source}")]
    Address {
        what: &'static str,
        value: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("the message cannot be built: {0}")]
    Build(#[from] lettre::error::Error),
}

/// A job's failed rows as its report needs them, gathered one error at a
/// time from the ledger ([`Failures::push`]) so that a file with millions of
/// failures never sits in memory: the first errors for the body, a tally per
/// reason, and only as many rows as the attachment can hold.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    /// The first [`LISTED_FAILURES`] row errors, in order.
    pub first: Vec<StoredError>,
    pub reasons: BTreeMap<String, u64>,
    /// The first failed rows, enough to fill the attachment (and one more).
    pub rows: Vec<FailedRow>,
    /// The widest failed row, in cells.
    pub width: usize,
    /// Failed rows and row errors in all.
    pub total_rows: usize,
    pub total_errors: usize,
    max_bytes: u64,
    /// A lower bound of the CSV bytes of `rows`.
    raw_bytes: u64,
    last_row: Option<u64>,
}

impl Failures {
    pub fn new(max_attachment_bytes: u64) -> Failures {
        Failures {
            max_bytes: max_attachment_bytes,
            ..Default::default()
        }
    }

    /// Adds the next row error (in ledger order: a row's errors are together).
    pub fn push(&mut self, e: StoredError) {
        self.total_errors += 1;
        *self.reasons.entry(e.error.code.clone()).or_default() += 1;
        self.width = self.width.max(e.cells.len());
        if self.last_row == Some(e.error.row) {
            if let Some(last) = self.rows.last_mut().filter(|r| r.row == e.error.row) {
                self.raw_bytes += e.error.message.len() as u64 + 2;
                last.messages.push(e.error.message.clone());
            }
        } else {
            self.last_row = Some(e.error.row);
            self.total_rows += 1;
            // CSV never shrinks a cell: once the raw text is past the cap,
            // no later row can fit.
            if self.raw_bytes <= self.max_bytes {
                self.raw_bytes += e.cells.iter().map(|c| c.len() as u64 + 1).sum::<u64>()
                    + e.error.message.len() as u64
                    + 12;
                self.rows.push(FailedRow {
                    row: e.error.row,
                    cells: e.cells.clone(),
                    messages: vec![e.error.message.clone()],
                });
            }
        }
        if self.first.len() < LISTED_FAILURES {
            self.first.push(e);
        }
    }
}

/// A message ready for the outbox.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    /// The bare sender address of the SMTP envelope.
    pub envelope_from: String,
    pub recipients: Vec<String>,
    /// The RFC 5322 message, exactly as it will be sent.
    pub bytes: Vec<u8>,
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office replies and
/// the like are not sent back to the system address.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// `X-Userdrop-Job: 12`, for filters and for finding the job from a message.
#[derive(Clone)]
struct JobHeader(String);

impl Header for JobHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Userdrop-Job")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(JobHeader(s.to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

fn mailbox(what: &'static str, value: &str) -> Result<Mailbox, ComposeError> {
    value
        .trim()
        .parse()
        .map_err(|source| ComposeError::Address {
            what,
            value: value.to_string(),
            source,
        })
}

/// The domain of the system address: the right-hand side of Message-IDs.
pub fn id_domain(from: &str) -> String {
    from.parse::<Mailbox>()
        .map(|m| m.email.domain().to_string())
        .unwrap_or_else(|_| "userdrop.invalid".to_string())
}

/// `1250` → `1,250`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `users.csv` → `users.failed.csv`.
pub fn attachment_name(file: &str) -> String {
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    format!("{stem}.failed.csv")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// What went wrong with a refused file, in a few words, for the subject.
fn refusal_in_brief(code: &str) -> &'static str {
    match code {
        "unsupported_file_type" => "not a CSV file",
        "undecodable" => "the text cannot be read",
        "missing_required_column" => "a required column is missing",
        "ambiguous_header" => "two columns mean the same field",
        "unknown_column" => "a column is not known",
        "empty_file" => "the file is empty",
        "too_many_deletes" => "it would remove too many users",
        _ => "the file could not be read",
    }
}

/// What a sync does to the users a file leaves out, as a verb.
pub fn missing_verb(missing: Missing) -> &'static str {
    match missing {
        Missing::Deactivate => "deactivate",
        Missing::Delete => "delete",
    }
}

/// `users.csv` → `users.would-deactivate.csv`: the held sync's list of who.
pub fn held_attachment_name(file: &str, missing: Missing) -> String {
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    format!("{stem}.would-{}.csv", missing_verb(missing))
}

/// The subject of a job's report; `missing` is what the tenant's sync does
/// to the users a file leaves out.
pub fn subject(r: &JobReport, missing: Missing) -> String {
    let c = &r.counts;
    let (t, f) = (&r.tenant, &r.file);
    match r.status {
        Status::Ok => format!("{t}: {f} imported — {}", plural(c.rows, "row", "rows")),
        Status::RowsFailed => format!(
            "{t}: {f} — {} of {} failed",
            thousands(c.failed),
            plural(c.rows, "row", "rows")
        ),
        Status::Held => match &r.held {
            Some(h) => format!(
                "{t}: {f} on hold — it would {} {} of {} users",
                missing_verb(missing),
                thousands(h.would_touch),
                thousands(h.of_users)
            ),
            None => format!("{t}: {f} on hold — waiting for approval"),
        },
        Status::Rejected => match &r.file_error {
            Some(fe) => format!("{t}: {f} not imported — {}", refusal_in_brief(&fe.code)),
            None => format!(
                "{t}: {f} not imported — {} of {} failed",
                thousands(c.failed),
                plural(c.rows, "row", "rows")
            ),
        },
    }
}

/// Exactly what to do about a refused file, by its code.
fn how_to_fix(code: &str, field: Option<&str>, tenant: &Tenant) -> String {
    match code {
        "unsupported_file_type" => "Save the file as CSV (in Excel: File > Save As > \"CSV UTF-8 (Comma delimited)\") and upload the .csv file. Workbooks (.xlsx, .xls), PDFs and archives cannot be imported.".into(),
        "undecodable" => "Export the file again as CSV text, preferably UTF-8 (in Excel: \"CSV UTF-8\"). Make sure the upload was complete: a file cut off in the middle, or one holding binary data, cannot be read.".into(),
        "missing_required_column" => {
            let names = field
                .and_then(|f| tenant.schema.fields.iter().find(|d| d.name == f))
                .map(|d| d.possible_names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let mut s = format!(
                "Add the {} column to the header row (the first line of the file) and fill it in for every user.",
                field.unwrap_or("missing")
            );
            if !names.is_empty() {
                let _ = write!(s, " Any of these header names is understood: {names}.");
            }
            s
        }
        "ambiguous_header" => "Keep one of the two columns named in the message and delete the other, so that each field has one column.".into(),
        "unknown_column" => "Remove the column named in the message, or ask the operator to add it to this inbox's fields.".into(),
        "empty_file" => "The file had nothing in it. Export it again with its header row and the users, and upload it.".into(),
        "too_many_deletes" => "If removing these users is intended, ask the operator to approve the job; otherwise upload a corrected, complete file.".into(),
        _ => "Upload the file again. If this keeps happening, contact the operator of this inbox.".into(),
    }
}

/// The plain-text body of a job's report. `attached`: (rows in the
/// attachment, failed rows in all) when there is an attachment; `held`:
/// the users listed in the held sync's attachment, when there is one.
pub fn body(
    r: &JobReport,
    tenant: &Tenant,
    failures: &Failures,
    attached: Option<(usize, usize)>,
    held: Option<usize>,
) -> String {
    let mut s = String::new();
    let job = r.job.map(|j| format!(" (job {j})")).unwrap_or_default();
    // Rows failed and none went through: nothing was applied, whatever the
    // status word says.
    let c = &r.counts;
    let none_applied = r.status == Status::RowsFailed
        && c.added + c.updated + c.unchanged + c.deleted + c.deactivated == 0;
    let verdict = match r.status {
        Status::Ok => "was imported",
        Status::RowsFailed if none_applied => {
            "was NOT imported: every row failed, so nothing in it was applied"
        }
        Status::RowsFailed => "was imported, but some rows failed",
        Status::Rejected => "was NOT imported: nothing in it was applied",
        Status::Held => "is ON HOLD: nothing in it was applied yet",
    };
    let _ = writeln!(s, "The file {} for {} {verdict}{job}.\n", r.file, r.tenant);

    if let Some(fe) = &r.file_error {
        let _ = writeln!(s, "Problem ({}):\n  {}\n", fe.code, fe.message);
        let _ = writeln!(
            s,
            "What to change:\n  {}\n",
            how_to_fix(&fe.code, fe.field.as_deref(), tenant)
        );
    }
    if r.file_error.is_none() || r.counts.rows > 0 {
        counts_section(&mut s, &r.counts);
    }
    if let Some(note) = r.managers_note() {
        let _ = writeln!(s, "Managers: {note}.\n");
    }
    reading_section(&mut s, r);
    if let (Some(h), Some(listed)) = (&r.held, held) {
        held_section(&mut s, r, h, tenant.missing, listed);
    }
    failures_section(&mut s, failures);
    if let Some((kept, total)) = attached {
        attachment_section(&mut s, r, kept, total);
    }

    let _ = writeln!(s, "What happens next:");
    let next = match (r.status, &r.file_error) {
        (Status::Ok, _) => "Nothing: every row went through.".to_string(),
        (Status::RowsFailed, _) if none_applied => "Nothing was changed. Correct the rows as each failure above says (the attachment has them all, with why) and upload the file again.".to_string(),
        (Status::RowsFailed, _) => "The other rows were applied. Correct the failed rows and upload them again: a file with just those rows is fine (start from the attachment and fix the cells; its \"row\" and \"error\" columns may stay, they are ignored). Rows that were imported already stay as they are when they come again.".to_string(),
        (Status::Held, _) => {
            let id = r.job.map(|j| j.to_string()).unwrap_or_else(|| "ID".into());
            format!("Nothing changes until the operator approves the job (userdrop jobs approve {id}). If the file is not what you meant to send, upload a corrected one instead.")
        }
        (Status::Rejected, Some(_)) => "Nothing was changed. Fix the file as described above and upload it again.".to_string(),
        (Status::Rejected, None) => "Nothing was changed: this inbox applies a file only when every row is valid. Correct the failed rows and upload the whole file again.".to_string(),
    };
    let _ = writeln!(s, "  {next}\n");
    let _ = writeln!(
        s,
        "-- \nThis message was sent automatically by userdrop; replies go to the operator."
    );
    s
}

fn counts_section(s: &mut String, c: &Counts) {
    let _ = writeln!(s, "Counts:");
    for (name, n) in [
        ("rows read", c.rows),
        ("added", c.added),
        ("updated", c.updated),
        ("unchanged", c.unchanged),
        ("deleted", c.deleted),
        ("deactivated", c.deactivated),
        ("roles added", c.roles_added),
        ("failed", c.failed),
    ] {
        let _ = writeln!(s, "  {name:<12} {:>9}", thousands(n));
    }
    s.push('\n');
}

/// How the file was read: its layout, skipped lines, ignored and secret columns.
fn reading_section(s: &mut String, r: &JobReport) {
    if let Some(layout) = r.layout.as_deref().filter(|l| *l != "generic") {
        let title = crate::ingest::layout::Layout::parse(layout)
            .map(|l| l.def().title)
            .unwrap_or(layout);
        let _ = writeln!(s, "Read as an export of {title} (layout {layout}).\n");
    }
    if !r.skipped_lines.is_empty() {
        let _ = writeln!(
            s,
            "Lines above the header row were skipped: {}\n",
            r.skipped_lines.join(" | ")
        );
    }
    if !r.ignored_columns.is_empty() {
        let _ = writeln!(
            s,
            "Columns ignored (not a known field): {}\n",
            r.ignored_columns.join(", ")
        );
    }
    if let Some(note) = r.secrets_note() {
        let _ = writeln!(s, "Passwords: {note}.\n");
    }
}

fn failures_section(s: &mut String, failures: &Failures) {
    let reasons = &failures.reasons;
    if reasons.is_empty() {
        return;
    }
    let _ = writeln!(s, "Failures by reason:");
    for (code, n) in reasons {
        let _ = writeln!(s, "  {code:<24} {:>9}", thousands(*n));
    }
    s.push('\n');
    let shown = failures.first.len();
    let _ = writeln!(
        s,
        "{} (row, key, reason, what to change):",
        if shown < failures.total_errors {
            format!(
                "The first {shown} of {} failures",
                thousands(failures.total_errors as u64)
            )
        } else {
            "The failures".to_string()
        }
    );
    for e in &failures.first {
        let e = &e.error;
        let key = if e.key.is_empty() {
            "(no key)".to_string()
        } else {
            e.key.clone()
        };
        let _ = writeln!(s, "  row {}  {key}  {}: {}", e.row, e.code, e.message);
    }
    s.push('\n');
}

/// Who a held sync would deactivate or delete: the first of them, and the
/// attachment that lists them.
fn held_section(
    s: &mut String,
    r: &JobReport,
    h: &crate::report::summary::Held,
    missing: Missing,
    listed: usize,
) {
    let verb = missing_verb(missing);
    let _ = writeln!(
        s,
        "Users this file would {verb} (they are not in it): {} of {}.",
        thousands(h.would_touch),
        thousands(h.of_users)
    );
    for u in h.users.iter().take(LISTED_FAILURES) {
        let name = format!("{} {}", u.first_name, u.last_name);
        let _ = writeln!(s, "  {}  {}  {}", u.key, name.trim(), u.email);
    }
    let name = held_attachment_name(&r.file, missing);
    if (listed as u64) < h.would_touch {
        let _ = writeln!(
            s,
            "Attached: {name}, the first {} of them (key, first name, last name, email; attachments are limited in size).\n",
            thousands(listed as u64)
        );
    } else {
        let _ = writeln!(
            s,
            "Attached: {name}, every one of them (key, first name, last name, email).\n"
        );
    }
}

fn attachment_section(s: &mut String, r: &JobReport, kept: usize, total: usize) {
    let name = attachment_name(&r.file);
    if kept < total {
        let _ = writeln!(
            s,
            "Attached: {name}, the first {} of {} failed rows (attachments are limited in size). \
             The complete list is in the results/ folder of your SFTP inbox, in the file ending in \"_{}.errors.csv\".\n",
            thousands(kept as u64),
            thousands(total as u64),
            r.file.rsplit_once('.').map(|(s, _)| s).unwrap_or(&r.file)
        );
    } else {
        let _ = writeln!(
            s,
            "Attached: {name}, every failed row with its original columns, then \"row\" (the spreadsheet row) and \"error\" (why it failed).\n"
        );
    }
}

fn base(
    out: &Outgoing,
    to: &[String],
    message_id: &str,
) -> Result<lettre::message::MessageBuilder, ComposeError> {
    let mut b = Message::builder()
        .from(mailbox("from", &out.from)?)
        .message_id(Some(message_id.to_string()))
        .header(AutoSubmitted)
        .date_now();
    if let Some(rt) = &out.reply_to {
        b = b.reply_to(mailbox("reply_to", rt)?);
    }
    for t in to {
        b = b.to(mailbox("recipient", t)?);
    }
    Ok(b)
}

fn rendered(subject: String, m: &Message) -> Rendered {
    let env = m.envelope();
    Rendered {
        subject,
        envelope_from: env.from().map(|a| a.to_string()).unwrap_or_default(),
        recipients: env.to().iter().map(|a| a.to_string()).collect(),
        bytes: m.formatted(),
    }
}

/// A job's report to `to`, with the failed rows attached when there are any.
pub fn job_report(
    tenant: &Tenant,
    to: &[String],
    message_id: &str,
    r: &JobReport,
    failures: &Failures,
) -> Result<Rendered, ComposeError> {
    let delimiter = failed_csv::delimiter_of(r);
    let attachment = (!failures.rows.is_empty()).then(|| {
        failed_csv::write_capped(
            delimiter,
            &r.columns,
            &failures.rows,
            failures.width.max(r.columns.len()),
            tenant.outgoing.max_attachment_bytes,
        )
    });
    let held = r.held.as_ref().filter(|h| !h.users.is_empty()).map(|h| {
        failed_csv::write_people(delimiter, &h.users, tenant.outgoing.max_attachment_bytes)
    });
    let subject = subject(r, tenant.missing);
    let text = body(
        r,
        tenant,
        failures,
        attachment
            .as_ref()
            .map(|(_, kept)| (*kept, failures.total_rows)),
        held.as_ref().map(|(_, kept)| *kept),
    );
    let mut b = base(&tenant.outgoing, to, message_id)?.subject(subject.clone());
    if let Some(job) = r.job {
        b = b.header(JobHeader(job.to_string()));
    }
    let text_part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(text);
    let mut files = Vec::new();
    if let Some((csv, _)) = held {
        files.push(csv_part(held_attachment_name(&r.file, tenant.missing), csv));
    }
    if let Some((csv, _)) = attachment {
        files.push(csv_part(attachment_name(&r.file), csv));
    }
    let m = if files.is_empty() {
        b.singlepart(text_part)?
    } else {
        let mut parts = MultiPart::mixed().singlepart(text_part);
        for f in files {
            parts = parts.singlepart(f);
        }
        b.multipart(parts)?
    };
    Ok(rendered(subject, &m))
}

/// A CSV attachment. base64, so that it arrives byte for byte: no line-end
/// rewriting on the way (base64 accepts any bytes).
fn csv_part(name: String, csv: Vec<u8>) -> SinglePart {
    let body =
        Body::new_with_encoding(csv, ContentTransferEncoding::Base64).unwrap_or_else(Body::new);
    let content_type = ContentType::parse("text/csv; charset=utf-8").expect("a valid content type");
    Attachment::new(name).body(body, content_type)
}

/// An invitation to a user a job created.
pub fn invitation(
    out: &Outgoing,
    inv: &Invitation,
    tenant: &str,
    user: &Invitee,
    message_id: &str,
) -> Result<Rendered, ComposeError> {
    let mut values = Values {
        tenant,
        user_id: &user.user_id,
        email: &user.email,
        first_name: &user.first_name,
        last_name: &user.last_name,
        link: "",
    };
    let link = inv
        .link
        .as_ref()
        .map(|l| l.render_url(&values))
        .unwrap_or_default();
    values.link = &link;
    let subject = inv.subject.render(&values).replace(['\r', '\n'], " ");
    let text = inv.body.render(&values);
    let m = base(out, std::slice::from_ref(&user.email), message_id)?
        .subject(subject.clone())
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )?;
    Ok(rendered(subject, &m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::Counts;

    #[test]
    fn subjects_name_tenant_file_and_counts() {
        let mut r = JobReport::new("acme", "users.csv", Some(3), false);
        r.status = Status::RowsFailed;
        r.counts = Counts {
            rows: 1250,
            failed: 2,
            ..Default::default()
        };
        let d = Missing::Deactivate;
        assert_eq!(subject(&r, d), "acme: users.csv — 2 of 1,250 rows failed");
        r.status = Status::Ok;
        assert_eq!(subject(&r, d), "acme: users.csv imported — 1,250 rows");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(attachment_name("users.csv"), "users.failed.csv");
        assert_eq!(attachment_name("export"), "export.failed.csv");
    }
}
