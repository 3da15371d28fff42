//! `userdrop mail`: the outbox listed, one message shown, a message queued
//! again, the queue flushed once. This file only parses, calls the library
//! and prints; it must never hold a rule of the product.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::out;
use super::{open_store, open_store_read_only, usage};
use crate::config::Config;
use crate::report::table::{self, Column};
use crate::store::outbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MailState {
    Queued,
    Sent,
    Failed,
}

impl MailState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// Queue a failed (given up) or waiting message again, due now, with a
    /// fresh give_up_after.
    Retry { id: i64 },
    /// Try every queued message once now, then exit: 0 when nothing is left
    /// queued, 1 otherwise. Works with or without the daemon running.
    Flush,
    /// Print a message exactly as it is (or was) sent.
    Show { id: i64 },
}

const MAIL_COLUMNS: [Column; 9] = [
    Column::right("id", 6),
    Column::left("created", 20),
    Column::left("tenant", 12),
    Column::right("job", 6),
    Column::left("kind", 10),
    Column::left("state", 6),
    Column::right("tries", 5),
    Column::left("next attempt", 20),
    Column::left("subject", 0),
];

pub(super) fn mail_list(
    c: &Config,
    state: Option<MailState>,
    limit: i64,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let list = outbox::list(&store, state.map(MailState::as_str), limit)?;
    if json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "tenant": m.tenant, "job": m.job, "kind": m.kind,
                    "state": m.state, "attempts": m.attempts, "to": m.recipients,
                    "subject": m.subject, "message_id": m.message_id, "bytes": m.size,
                    "created_at": m.created_at,
                    "next_attempt_at": (m.state == "queued").then(|| outbox::ms_text(m.next_attempt_at)),
                    "expires_at": outbox::ms_text(m.expires_at),
                    "last_attempt_at": m.last_attempt_at, "sent_at": m.sent_at,
                    "failed_at": m.failed_at, "last_error": m.last_error,
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        out!("no mail");
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", table::header(&MAIL_COLUMNS));
    for m in &list {
        let next = if m.state == "queued" {
            outbox::ms_text(m.next_attempt_at)
        } else {
            "-".to_string()
        };
        let cells = [
            m.id.to_string(),
            m.created_at.clone(),
            m.tenant.clone(),
            m.job.map(|j| j.to_string()).unwrap_or_else(|| "-".into()),
            m.kind.clone(),
            m.state.clone(),
            m.attempts.to_string(),
            next,
            m.subject.clone(),
        ];
        out!("{}", table::row(&MAIL_COLUMNS, &cells));
        out!("{:>8}to {}", "", m.recipients.join(", "));
        if let Some(e) = &m.last_error {
            out!("{:>8}last error: {e}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn mail_retry(c: &Config, id: i64) -> Result<ExitCode> {
    let store = open_store(c)?;
    let m = outbox::get(&store, id)?
        .ok_or_else(|| usage(format!("there is no message {id} in the outbox")))?;
    if m.state == "sent" {
        return Err(usage(format!(
            "message {id} was sent at {}; queueing it again would deliver it twice",
            m.sent_at.as_deref().unwrap_or("an earlier time")
        )));
    }
    let now = outbox::now_ms();
    let expires =
        now.saturating_add(i64::try_from(c.mail.give_up_after.as_millis()).unwrap_or(i64::MAX));
    outbox::requeue(&store, id, now, expires)?;
    out!(
        "message {id} is queued again, due now; the daemon sends it within a minute, or run `userdrop mail flush`"
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn mail_flush(c: &Config) -> Result<ExitCode> {
    // Creates the store if needed: flushing an empty outbox is not an error.
    drop(open_store(c)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pass = rt.block_on(crate::mail::sender::deliver(&c.db_path(), &c.mail, true))?;
    let store = open_store_read_only(c)?;
    let queued = outbox::count(&store, "queued")?;
    out!(
        "sent {}, will retry {}, gave up {}; {} queued",
        pass.sent,
        pass.retrying,
        pass.failed,
        queued
    );
    Ok(if queued == 0 && pass.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) fn mail_show(c: &Config, id: i64) -> Result<ExitCode> {
    let store = open_store_read_only(c)?;
    let bytes = outbox::message(&store, id)?
        .ok_or_else(|| usage(format!("there is no message {id} in the outbox")))?;
    io::stdout().lock().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared table printer lays the outbox out as it always was.
    #[test]
    fn mail_list_lines_keep_their_layout() {
        assert_eq!(
            table::header(&MAIL_COLUMNS),
            format!(
                "{:>6}  {:<20}  {:<12}  {:>6}  {:<10}  {:<6}  {:>5}  {:<20}  subject",
                "id", "created", "tenant", "job", "kind", "state", "tries", "next attempt"
            )
        );
        let cells = [
            "7",
            "2026-11-21T10:15:00Z",
            "acme",
            "-",
            "report",
            "queued",
            "2",
            "2026-11-21T11:15:00Z",
            "userdrop: users.csv: 3 rows failed",
        ];
        assert_eq!(
            table::row(&MAIL_COLUMNS, &cells),
            format!(
                "{:>6}  {:<20}  {:<12}  {:>6}  {:<10}  {:<6}  {:>5}  {:<20}  {}",
                7, cells[1], cells[2], cells[3], cells[4], cells[5], 2, cells[7], cells[8]
            )
        );
    }
}
