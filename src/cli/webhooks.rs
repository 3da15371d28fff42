//! `userdrop webhooks list`: the webhook deliveries, newest first, with
//! their state, attempts and last error. This file only parses, calls the
//! library and prints; it must never hold a rule of the product, nor print
//! a secret (the store has none).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::mail::MailState;
use super::open_store_read_only;
use super::out;
use crate::config::Config;
use crate::report::table::{self, Column};
use crate::store::{outbox, webhooks};

#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// The deliveries, newest first: queued, sent and failed.
    List {
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        state: Option<MailState>,
        /// How many deliveries to list (at least 1).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

const COLUMNS: [Column; 9] = [
    Column::right("id", 6),
    Column::left("created", 20),
    Column::left("tenant", 12),
    Column::right("job", 6),
    Column::left("event", 12),
    Column::left("state", 6),
    Column::right("tries", 5),
    Column::left("next attempt", 20),
    Column::left("url", 0),
];

pub(super) fn run(c: &Config, action: WebhooksAction) -> Result<ExitCode> {
    let WebhooksAction::List { state, limit, json } = action;
    let store = open_store_read_only(c)?;
    let list = webhooks::list(&store, state.map(MailState::as_str), limit)?;
    if json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id, "tenant": d.tenant, "job": d.job, "event": d.event,
                    "url": d.url, "state": d.state, "attempts": d.attempts, "bytes": d.size,
                    "created_at": d.created_at,
                    "next_attempt_at": (d.state == "queued").then(|| outbox::ms_text(d.next_attempt_at)),
                    "expires_at": outbox::ms_text(d.expires_at),
                    "last_attempt_at": d.last_attempt_at, "sent_at": d.sent_at,
                    "failed_at": d.failed_at, "last_status": d.last_status,
                    "last_error": d.last_error,
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        out!("no webhook deliveries");
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", table::header(&COLUMNS));
    for d in &list {
        let next = if d.state == "queued" {
            outbox::ms_text(d.next_attempt_at)
        } else {
            "-".to_string()
        };
        let cells = [
            d.id.to_string(),
            d.created_at.clone(),
            d.tenant.clone(),
            d.job.map(|j| j.to_string()).unwrap_or_else(|| "-".into()),
            d.event.clone(),
            d.state.clone(),
            d.attempts.to_string(),
            next,
            d.url.clone(),
        ];
        out!("{}", table::row(&COLUMNS, &cells));
        if let Some(e) = &d.last_error {
            out!("{:>8}last error: {e}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}
